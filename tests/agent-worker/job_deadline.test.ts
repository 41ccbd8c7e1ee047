// A job's deadline on the work queue (real nats-server): a handler that never returns is ended at
// its deadline with SF_ERR_JOB_TIMEOUT, reported failed for good (never redelivered), its signal
// aborted and its slot freed for the next job; until then working() keeps it from being redelivered
// although it outlives the ack wait.
import { connect } from "@nats-io/transport-node";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { describe, expect, it } from "vitest";
import { createLogger } from "../../actors/index.ts";
import type { DispatchJob, JobEvent } from "../../actors/index.ts";
import { createSubjects, decodeBody, encodeBody, provisionBus } from "../../bus/index.ts";
import { AgentWorkerErrorCodes, JobConsumer } from "../../agent-worker/index.ts";
import { waitFor } from "../helpers/deadline.ts";
import { NatsTestServer } from "../helpers/nats_server.ts";

const subjects = createSubjects({ partitions: 16 });
const log = createLogger({ name: "test", level: "silent" });
const ACK_WAIT_MS = 1500;
const DEADLINE_MS = 4500;

function job(id: string): DispatchJob {
  return {
    jobId: id,
    tenant: "tenant-1",
    mode: "text",
    agentSlug: "helper",
    conversationId: `conv-${id}`,
    sessionId: `sess-${id}`,
    userId: "user-1",
    message: id.startsWith("hang") ? "hang" : "answer",
    createdAt: Date.now(),
  };
}

describe("job deadline - a hung job ends and frees its slot", () => {
  it("deadline - handlers that never return are failed for good with SF_ERR_JOB_TIMEOUT, their signals aborted, and the freed slots run the next job", async () => {
    await using server = await NatsTestServer.start();
    const nc = await connect({ servers: server.url });
    await provisionBus(nc, subjects);
    const events: JobEvent[] = [];
    nc.subscribe(`${subjects.prefix}.job.>`, {
      callback: (_e, m) => {
        events.push(decodeBody(m.data) as JobEvent);
      },
    });
    const aborted: Array<{ jobId: string; reason: unknown }> = [];
    const timedOut: string[] = [];
    const handled: string[] = [];
    const wnc = await connect({ servers: server.url });
    const consumer = new JobConsumer({
      nc: wnc,
      subjects,
      workerId: "w1",
      log,
      slots: 2,
      ackWaitMs: ACK_WAIT_MS,
      jobTimeoutMs: DEADLINE_MS,
      onJobTimeout: (j) => timedOut.push(j.jobId),
      handler: (j, ctx) => {
        handled.push(j.jobId);
        if (j.message !== "hang") return Promise.resolve();
        ctx.signal.addEventListener("abort", () =>
          aborted.push({ jobId: j.jobId, reason: ctx.signal.reason }),
        );
        // A runtime that hangs: it never settles, whatever its signal says.
        return new Promise<void>(() => undefined);
      },
    });
    await consumer.start();
    const js = jetstream(nc);
    for (const j of [job("hang-1"), job("hang-2")]) {
      await js.publish(subjects.dispatch(j.tenant, j.mode), encodeBody(j), { msgID: j.jobId });
    }
    await waitFor("both slots to hold a hung job", () => consumer.inFlight === 2);
    // Both slots are taken: the next job waits for a slot the deadline frees.
    const next = job("next");
    await js.publish(subjects.dispatch(next.tenant, next.mode), encodeBody(next), { msgID: next.jobId });

    const failures = await waitFor(
      "both hung jobs to fail at their deadline",
      () => {
        const failed = events.filter((e) => e.type === "failed");
        return failed.length === 2 ? failed : false;
      },
      { timeoutMs: DEADLINE_MS + 10_000 },
    );
    for (const f of failures) {
      expect(f.type === "failed" && f.final).toBe(true);
      expect(f.type === "failed" && f.delivery).toBe(1);
      expect(f.type === "failed" && f.error.code).toBe(AgentWorkerErrorCodes.JOB_TIMEOUT);
      expect(f.type === "failed" && f.error.retryable).toBe(false);
      expect(f.type === "failed" && f.error.details).toMatchObject({ limit_ms: DEADLINE_MS, mode: "text" });
    }
    expect(aborted.map((a) => a.jobId).sort()).toEqual(["hang-1", "hang-2"]);
    for (const a of aborted)
      expect((a.reason as { code?: string }).code).toBe(AgentWorkerErrorCodes.JOB_TIMEOUT);
    expect(timedOut.sort()).toEqual(["hang-1", "hang-2"]);

    await waitFor("the next job to run in a freed slot", () =>
      events.some((e) => e.type === "done" && e.jobId === "next"),
    );
    expect(handled.filter((id) => id === "next")).toHaveLength(1);
    // Nothing is left to redeliver: the hung jobs were given up, the next one acked.
    await waitFor("the stream to be empty", async () => {
      const info = await (await jetstreamManager(nc)).streams.info(subjects.streams.dispatch);
      return info.state.messages === 0;
    });
    expect(consumer.inFlight).toBe(0);
    // Each hung job ran once: working() kept it from being redelivered although it outlived the
    // ack wait, and once given up it was not redelivered either.
    expect(events.filter((e) => e.type === "claimed" && e.jobId.startsWith("hang"))).toHaveLength(2);
    expect(handled.filter((id) => id.startsWith("hang"))).toHaveLength(2);
    await consumer.stop(1000);
    await wnc.close();
    await nc.close();
  }, 60_000);
});
