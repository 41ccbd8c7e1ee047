/** A bare JetStream worker for the dispatch bench: consume from a work queue, reply on core NATS. */
import { jetstream } from "@nats-io/jetstream";
import { connectBus } from "../bus/index.ts";

const nc = await connectBus({
  servers: process.env["NATS_URL"] ?? "nats://127.0.0.1:4222",
  name: "bench-js-worker",
});
const consumer = await jetstream(nc).consumers.get("BENCH_JS", "bench-js");
const messages = await consumer.consume({ max_messages: 256 });
console.log("js echo worker ready");
process.on("SIGTERM", () => {
  void messages
    .close()
    .then(() => nc.drain())
    .then(() => process.exit(0));
});
for await (const m of messages) {
  const reply = m.headers?.get("Bench-Reply") ?? "";
  if (reply !== "") nc.publish(reply, m.data);
  m.ack();
}
