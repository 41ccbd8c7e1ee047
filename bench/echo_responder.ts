/** A bare NATS request/reply echo in its own process: the baseline for actor-rr. */
import { connect } from "@nats-io/transport-node";

const nc = await connect({ servers: process.env["NATS_URL"] ?? "nats://127.0.0.1:4222", name: "bench-echo" });
nc.subscribe(process.env["ECHO_SUBJECT"] ?? "bench.echo", {
  callback: (_err, msg) => {
    msg.respond(msg.data);
  },
});
await nc.flush();
console.log("echo responder ready");
process.on("SIGTERM", () => {
  void nc.drain().then(() => process.exit(0));
});
