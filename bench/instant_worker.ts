/**
 * An instant agent worker for the `gateway` bench, in its own process: the worker's real
 * `JobConsumer` on SF_DISPATCH (same durable consumer, `claimed` and `done` on SF_EVENTS, ack
 * after the outcome) with a handler that publishes the job's final `{type:"message"}` frame on
 * the session's chat subject at once: no job context, no LLM, no turn record.
 */
import { chatSubject, createLogger } from "../actors/index.ts";
import type { ChatFrame } from "../actors/index.ts";
import { JobConsumer } from "../agent-worker/index.ts";
import { connectBus, createSubjects, encodeBody, provisionBus } from "../bus/index.ts";

const env = process.env;
const subjects = createSubjects({
  prefix: env["SF_SUBJECT_PREFIX"] ?? "sf",
  partitions: Number(env["SF_PARTITIONS"] ?? "256"),
});
const nc = await connectBus({
  servers: env["NATS_URL"] ?? "nats://127.0.0.1:4222",
  name: "bench-instant-worker",
});
await provisionBus(nc, subjects);
// Warn level: the consumer logs every claim and every done at info.
const log = createLogger({ name: "bench-instant-worker", level: "warn" });
const REPLY_TEXT = "Hello! I am the bench's instant responder; the worker was not involved.";

const consumer = new JobConsumer({
  nc,
  subjects,
  workerId: env["SF_WORKER_ID"] ?? "bench-instant",
  log,
  slots: Number(env["SF_WORKER_SLOTS"] ?? "128"),
  handler: (job) => {
    const frame: ChatFrame = {
      type: "message",
      job_id: job.jobId,
      conversation_id: job.conversationId,
      text: REPLY_TEXT,
      citations: [],
      seq: 0,
    };
    nc.publish(chatSubject(subjects, job), encodeBody(frame));
    return Promise.resolve();
  },
});
await consumer.start();
console.log("instant worker ready");
process.on("SIGTERM", () => {
  void consumer
    .stop(1000)
    .then(() => nc.drain())
    .then(() => process.exit(0));
});
