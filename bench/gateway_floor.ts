/**
 * The floor of the `gateway` bench: the thinnest HTTP-to-NATS bridge that makes the trigger's
 * hops, on uWebSockets.js like the gateway. It is what any gateway on this machine costs before
 * it does any work of its own: no auth, no validation, no rate limit, no metrics, no logging, no
 * envelope or headers on the NATS messages.
 *
 * `POST /api/v2/trigger-agent`: reads the body, then
 * - FLOOR_HOPS=1: `nc.request("bench.rr")` with a payload of FLOOR_REQUEST_BYTES (the size of a
 *   trigger request), answered by bench/gateway_backend.ts with a reply of a trigger reply's size;
 * - FLOOR_HOPS=2: the same request to `bench.turn`, whose responder also publishes one frame of a
 *   final message's size to the subject named on the payload's first line; the bridge waits for
 *   both (the gateway's trigger reply and final frame);
 * and answers 200 with a JSON body of FLOOR_RESPONSE_BYTES (the size of the gateway's answer).
 * The requests read in one loop turn are started together (gateway/loop_batch.ts), so their NATS
 * messages leave in one write: without that the bridge costs more than the gateway does.
 */
import uws from "@trufflesuite/uws-js-unofficial";
import { connect } from "@nats-io/transport-node";
import { LoopBatch } from "../gateway/index.ts";
import { bareTurnCaller } from "./bare_turn.ts";

const env = process.env;
const hops = Number(env["FLOOR_HOPS"] ?? "2");
const requestBytes = Number(env["FLOOR_REQUEST_BYTES"] ?? "0");
const responseBytes = Number(env["FLOOR_RESPONSE_BYTES"] ?? "0");
if ((hops !== 1 && hops !== 2) || !(requestBytes > 0) || !(responseBytes > 2)) {
  throw new Error("FLOOR_HOPS (1 or 2), FLOOR_REQUEST_BYTES and FLOOR_RESPONSE_BYTES are required");
}
const nc = await connect({
  servers: env["NATS_URL"] ?? "nats://127.0.0.1:4222",
  name: "bench-gateway-floor",
});

// The answer: a JSON string of the gateway's answer size.
const answer = `"${"a".repeat(responseBytes - 2)}"`;
const bareTurns = bareTurnCaller(nc, `bench.floor.${process.pid}`, requestBytes);

async function bridge(): Promise<void> {
  if (hops === 2) return bareTurns.turn();
  await nc.request("bench.rr", new Uint8Array(requestBytes).fill(0x71), { timeout: 10_000 });
}

const batch = new LoopBatch((err) => console.error(err));
const app = uws.App();
app.post("/api/v2/trigger-agent", (res, _req) => {
  let aborted = false;
  res.onAborted(() => {
    aborted = true;
  });
  res.onData((_chunk, last) => {
    if (!last) return;
    // Started with the other requests of this loop turn, so their NATS messages leave in one
    // write, as the gateway does (gateway/loop_batch.ts).
    batch.push(() => respond(res, () => aborted));
  });
});

function respond(res: uws.HttpResponse, aborted: () => boolean): void {
  bridge().then(
    () => {
      if (aborted()) return;
      res.cork(() => {
        res.writeStatus("200 OK").writeHeader("content-type", "application/json").end(answer);
      });
    },
    (err: unknown) => {
      if (aborted()) return;
      res.cork(() => {
        res.writeStatus("502 Bad Gateway").end(String(err));
      });
    },
  );
}
app.any("/*", (res) => {
  res.writeStatus("404 Not Found").end();
});

const listen = await new Promise<uws.us_listen_socket>((resolve, reject) => {
  app.listen("127.0.0.1", 0, (socket) => (socket ? resolve(socket) : reject(new Error("listen failed"))));
});
await nc.flush();
console.log(JSON.stringify({ msg: "gateway floor ready", port: uws.us_socket_local_port(listen) }));
process.on("SIGTERM", () => {
  uws.us_listen_socket_close(listen);
  void nc.drain().then(() => process.exit(0));
});
