/** A WebSocket client of the gateway's /ws that keeps every frame it receives, parsed. */
import WebSocket from "ws";
import { waitFor } from "./deadline.ts";

export interface WsClient<F> {
  ws: WebSocket;
  /** Every frame received so far, in order (JSON-parsed). */
  frames: F[];
  /** Resolves with the close code once the socket is closed. */
  closed: Promise<number>;
}

/**
 * Opens `url` (as a browser of `origin`, when given) and resolves once it is open. The socket is
 * added to `sockets` (when given) before it opens, so the caller's clean-up terminates it even
 * when the open fails.
 */
export async function openWsClient<F>(
  url: string,
  options: { sockets?: WebSocket[]; origin?: string } = {},
): Promise<WsClient<F>> {
  const ws = new WebSocket(url, options.origin === undefined ? {} : { origin: options.origin });
  options.sockets?.push(ws);
  const frames: F[] = [];
  ws.on("message", (data: Buffer) => frames.push(JSON.parse(data.toString("utf8")) as F));
  const closed = new Promise<number>((resolve) => ws.on("close", (code: number) => resolve(code)));
  await new Promise<void>((resolve, reject) => {
    ws.once("open", () => resolve());
    ws.once("error", reject);
  });
  return { ws, frames, closed };
}

/** The first frame `client` has received, or receives before the deadline, that `match` accepts. */
export function nextFrame<F>(
  client: WsClient<F>,
  what: string,
  match: (frame: F) => boolean,
  timeoutMs = 60_000,
): Promise<F> {
  return waitFor(what, () => client.frames.find(match), { timeoutMs });
}
