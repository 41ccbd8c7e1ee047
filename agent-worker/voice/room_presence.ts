/**
 * Who is in a LiveKit room, asked of the server (`RoomService.ListParticipants`, Twirp JSON) with
 * the agent's own token, which is room admin of that room only. The SDK's participant events can
 * miss a participant who joins while the agent is still connecting, so the session checks the
 * server before deciding that nobody is left.
 */
import { SfError } from "../../bus/index.ts";

export interface RoomPresenceOptions {
  /** The room's LiveKit URL (ws:// or wss:// is turned into http(s)://). */
  url: string;
  roomName: string;
  /** The agent's token (bearer). */
  token: string;
  /** The agent's own identity, left out of the answer. */
  selfIdentity: string;
  /** Deadline of one call. Default 5000 ms. */
  timeoutMs?: number;
}

interface ParticipantJson {
  identity?: string;
  kind?: string | number;
}

/** The identities of the room's participants that are not agents (not this one, not others). */
export async function listRoomUsers(options: RoomPresenceOptions): Promise<string[]> {
  const base = options.url.replace(/^ws(s?):\/\//, "http$1://").replace(/\/+$/, "");
  const response = await fetch(`${base}/twirp/livekit.RoomService/ListParticipants`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${options.token}` },
    body: JSON.stringify({ room: options.roomName }),
    signal: AbortSignal.timeout(options.timeoutMs ?? 5000),
  });
  if (!response.ok) {
    await response.body?.cancel();
    throw new SfError("SF_ERR_LIVEKIT_UNAVAILABLE", "listing the room's participants failed", {
      retryable: true,
      details: { status: response.status },
    });
  }
  const body = (await response.json()) as { participants?: ParticipantJson[] };
  return (body.participants ?? [])
    .filter((p) => p.identity !== undefined && p.identity !== options.selfIdentity)
    .filter((p) => p.kind !== "AGENT" && p.kind !== 4)
    .map((p) => p.identity as string);
}
