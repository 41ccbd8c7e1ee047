/**
 * The bare NATS turn of the `gateway` bench: a request to `bench.turn` whose responder
 * (bench/gateway_backend.ts) answers it and publishes one frame to the subject named on the
 * payload's first line, the gateway's two hops without any envelope. The bench process calls it
 * as a NATS baseline, and bench/gateway_floor.ts behind HTTP.
 */
import type { NatsConnection } from "@nats-io/transport-node";

/**
 * One caller of bare turns on `nc`: each call sends a payload of `requestBytes` (or just the
 * subject line, if longer) and settles once both the reply and the frame have arrived. Frames
 * come through one wildcard subscription, `<inbox>.<call id>`; `close()` drops it.
 */
export function bareTurnCaller(
  nc: NatsConnection,
  inbox: string,
  requestBytes: number,
): { turn: () => Promise<void>; close: () => void } {
  const waiting = new Map<number, () => void>();
  const sub = nc.subscribe(`${inbox}.*`, {
    callback: (_err, msg) => {
      const id = Number(msg.subject.slice(inbox.length + 1));
      waiting.get(id)?.();
      waiting.delete(id);
    },
  });
  const encoder = new TextEncoder();
  let nextId = 0;
  return {
    turn: async () => {
      const id = nextId++;
      const frame = new Promise<void>((resolve) => waiting.set(id, resolve));
      const head = encoder.encode(`${inbox}.${id}\n`);
      const data = new Uint8Array(Math.max(requestBytes, head.byteLength)).fill(0x71);
      data.set(head);
      await nc.request("bench.turn", data, { timeout: 10_000 });
      await frame;
    },
    close: () => sub.unsubscribe(),
  };
}
