/**
 * LiveKit rooms and participant tokens for voice jobs, from one tenant's credentials. The room is
 * created with an explicit dispatch entry for the agent name `sidekick-agent`, so LiveKit's
 * automatic dispatch never fires (our workers join with an agent token instead of registering
 * with LiveKit's worker protocol). Errors never carry the API secret.
 */
import { AccessToken, RoomAgentDispatch, RoomServiceClient } from "livekit-server-sdk";
import type { LivekitCredentials } from "../store/index.ts";
import { LivekitUnavailableError, RoomConflictError } from "./errors.ts";

/** The agent name rooms and workers agree on (explicit dispatch). */
export const SIDEKICK_AGENT_NAME = "sidekick-agent";
/** The user's token is valid this long (v1 contract: 1 hour). */
export const USER_TOKEN_TTL_SECONDS = 3600;
/**
 * The agent's token. It also authorises the worker's presence checks (`ListParticipants` for
 * its room only, as a bearer token), so it lasts as long as a long session.
 */
export const AGENT_TOKEN_TTL_SECONDS = 6 * 3600;

/** What the room's metadata (JSON) says about the session it was created for. */
export interface VoiceRoomMetadata {
  tenant: string;
  agent_slug: string;
  agent_name: typeof SIDEKICK_AGENT_NAME;
  conversation_id: string;
  job_id: string;
}

export interface EnsureRoomOptions {
  name: string;
  metadata: VoiceRoomMetadata;
  /** Seconds an empty room is kept. Default 300. */
  emptyTimeoutSeconds?: number;
  /** Seconds a room is kept after its last participant left. Default 20. */
  departureTimeoutSeconds?: number;
}

export type RoomStatus = "created" | "existing";

function httpUrl(url: string): string {
  return url.replace(/^ws(s?):\/\//, "http$1://");
}

/** The text with every JWT (LiveKit access token) in it replaced by `[token]`. */
export function redactTokens(text: string): string {
  return text.replace(/eyJ[\w-]*\.[\w-]*\.[\w-]*/g, "[token]");
}

function livekitFailure(what: string, err: unknown): LivekitUnavailableError {
  const status = (err as { status?: unknown }).status;
  return new LivekitUnavailableError(`LiveKit ${what} failed`, {
    details: {
      operation: what,
      ...(typeof status === "number" ? { status } : {}),
      // Twirp errors quote the request's token: never pass one on.
      reason: err instanceof Error ? redactTokens(err.message).slice(0, 200) : "unknown",
    },
  });
}

function ownerTenant(metadata: string): string | undefined {
  if (metadata === "") return undefined;
  try {
    const parsed = JSON.parse(metadata) as unknown;
    if (typeof parsed === "object" && parsed !== null) {
      const tenant = (parsed as Record<string, unknown>)["tenant"];
      return typeof tenant === "string" ? tenant : undefined;
    }
    return undefined;
  } catch (err) {
    // A room someone else created with non-JSON metadata: it names no tenant.
    void err;
    return undefined;
  }
}

/**
 * Creates the room, or finds it: "existing" when it was already there (its metadata is then
 * brought up to date). A room whose metadata names another tenant is refused.
 */
export async function ensureVoiceRoom(
  credentials: LivekitCredentials,
  options: EnsureRoomOptions,
): Promise<RoomStatus> {
  const rooms = new RoomServiceClient(httpUrl(credentials.url), credentials.apiKey, credentials.apiSecret);
  const metadata = JSON.stringify(options.metadata);
  let existing;
  try {
    existing = (await rooms.listRooms([options.name])).find((room) => room.name === options.name);
  } catch (err) {
    throw livekitFailure("listRooms", err);
  }
  if (existing !== undefined) {
    const owner = ownerTenant(existing.metadata);
    if (owner !== undefined && owner !== options.metadata.tenant) {
      throw new RoomConflictError("the room is in use by another client", {
        details: { room_name: options.name },
      });
    }
    try {
      await rooms.updateRoomMetadata(options.name, metadata);
    } catch (err) {
      throw livekitFailure("updateRoomMetadata", err);
    }
    return "existing";
  }
  try {
    await rooms.createRoom({
      name: options.name,
      metadata,
      emptyTimeout: options.emptyTimeoutSeconds ?? 300,
      departureTimeout: options.departureTimeoutSeconds ?? 20,
      agents: [new RoomAgentDispatch({ agentName: SIDEKICK_AGENT_NAME, metadata })],
    });
  } catch (err) {
    throw livekitFailure("createRoom", err);
  }
  return "created";
}

/** The user's token: identity `user_<user_id>`, 1 hour, join/publish/subscribe/data in this room only. */
export async function mintUserToken(
  credentials: LivekitCredentials,
  roomName: string,
  userId: string,
): Promise<{ identity: string; token: string }> {
  const identity = `user_${userId}`;
  const at = new AccessToken(credentials.apiKey, credentials.apiSecret, {
    identity,
    ttl: USER_TOKEN_TTL_SECONDS,
  });
  at.addGrant({
    room: roomName,
    roomJoin: true,
    canPublish: true,
    canSubscribe: true,
    canPublishData: true,
  });
  return { identity, token: await at.toJwt() };
}

/**
 * The agent's token: identity `agent-<slug>`, kind agent, naming the agent `sidekick-agent`; room
 * admin of this room only, so the worker can list the room's participants (LiveKit's events can
 * miss a participant who joins while the agent is still connecting).
 */
export async function mintAgentToken(
  credentials: LivekitCredentials,
  roomName: string,
  agentSlug: string,
  jobId: string,
): Promise<{ identity: string; token: string }> {
  const identity = `agent-${agentSlug}`;
  const at = new AccessToken(credentials.apiKey, credentials.apiSecret, {
    identity,
    ttl: AGENT_TOKEN_TTL_SECONDS,
    metadata: JSON.stringify({ agent_name: SIDEKICK_AGENT_NAME, agent_slug: agentSlug, job_id: jobId }),
    attributes: { "lk.agent.name": SIDEKICK_AGENT_NAME },
  });
  at.kind = "agent";
  at.addGrant({
    room: roomName,
    roomJoin: true,
    canPublish: true,
    canSubscribe: true,
    canPublishData: true,
    roomAdmin: true,
    agent: true,
  });
  return { identity, token: await at.toJwt() };
}
