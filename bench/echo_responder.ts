/** A bare NATS request/reply echo in its own process: the baseline for actor-rr. */
import { connectBus, readRequest, replyHeaders } from "../bus/index.ts";

const nc = await connectBus({
  servers: process.env["NATS_URL"] ?? "nats://127.0.0.1:4222",
  name: "bench-echo",
});
nc.subscribe(process.env["ECHO_SUBJECT"] ?? "bench.echo", {
  callback: (_err, msg) => {
    msg.respond(msg.data);
  },
});
// The same echo behind our envelope: reads the request envelope, answers with reply headers.
nc.subscribe("bench.envelope", {
  callback: (_err, msg) => {
    readRequest(msg);
    msg.respond(msg.data, { headers: replyHeaders("ok", { host: "echo", epoch: 1 }) });
  },
});
await nc.flush();
console.log("echo responder ready");
process.on("SIGTERM", () => {
  void nc.drain().then(() => process.exit(0));
});
