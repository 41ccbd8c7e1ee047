import { connect } from "@nats-io/transport-node";
import type { NatsConnection } from "@nats-io/transport-node";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { describe, expect, it } from "vitest";
import { createLogger } from "../../actors/index.ts";
import type { DispatchJob, JobEvent } from "../../actors/index.ts";
import { createSubjects, decodeBody, encodeBody, provisionBus, SfError } from "../../bus/index.ts";
import { AgentWorkerErrorCodes, JobConsumer } from "../../agent-worker/index.ts";
import type { DuplicateDelivery } from "../../agent-worker/index.ts";
import { waitFor } from "../helpers/deadline.ts";
import { NatsTestServer } from "../helpers/nats_server.ts";
import { spawnTs } from "../helpers/processes.ts";

const subjects = createSubjects({ partitions: 16 });
const log = createLogger({ name: "test", level: "silent" });

function job(i: number, message = `hello ${i}`): DispatchJob {
  return {
    jobId: `job-${i}`,
    tenant: `tenant-${i % 5}`,
    mode: "text",
    agentSlug: "helper",
    conversationId: `conv-${i}`,
    sessionId: `sess-${i}`,
    userId: "user-1",
    message,
    createdAt: Date.now(),
  };
}

async function publishJobs(nc: NatsConnection, jobs: DispatchJob[]): Promise<void> {
  const js = jetstream(nc);
  for (const j of jobs) {
    await js.publish(subjects.dispatch(j.tenant, j.mode), encodeBody(j), { msgID: j.jobId });
  }
}

/** Collects the lifecycle events of every job from SF_EVENTS (core subscription, live). */
/** A promise the test settles itself: handlers wait on `released` until the test calls `release`. */
function gate(): { released: Promise<void>; release: () => void } {
  let release!: () => void;
  const released = new Promise<void>((resolve) => {
    release = resolve;
  });
  return { released, release };
}

/** SF_DISPATCH is empty and the workers' consumer has nothing pending after `deliveries` deliveries. */
async function expectAllAcked(nc: NatsConnection, deliveries: number): Promise<void> {
  const jsm = await jetstreamManager(nc);
  expect((await jsm.streams.info(subjects.streams.dispatch)).state.messages).toBe(0);
  const info = await jsm.consumers.info(subjects.streams.dispatch, JobConsumer.durableName(subjects));
  expect(info.num_ack_pending).toBe(0);
  expect(info.delivered.consumer_seq).toBe(deliveries);
}

function collectEvents(nc: NatsConnection): JobEvent[] {
  const events: JobEvent[] = [];
  nc.subscribe(`${subjects.prefix}.job.>`, {
    callback: (_e, m) => {
      events.push(decodeBody(m.data) as JobEvent);
    },
  });
  return events;
}

describe("dispatch - JobConsumer on SF_DISPATCH", () => {
  it("work queue - 120 jobs (some published twice) across 3 workers are each handled exactly once", async () => {
    await using server = await NatsTestServer.start();
    const nc = await connect({ servers: server.url });
    await provisionBus(nc, subjects);
    const events = collectEvents(nc);
    const handled: Array<{ jobId: string; workerId: string }> = [];
    const workers = await Promise.all(
      ["w1", "w2", "w3"].map(async (workerId) => {
        const wnc = await connect({ servers: server.url });
        const consumer = new JobConsumer({
          nc: wnc,
          subjects,
          workerId,
          log,
          slots: 4,
          handler: async (j) => {
            handled.push({ jobId: j.jobId, workerId });
            await wnc.flush();
          },
        });
        await consumer.start();
        return { consumer, wnc };
      }),
    );
    const jobs = Array.from({ length: 120 }, (_, i) => job(i));
    await publishJobs(nc, jobs);
    await publishJobs(nc, jobs.slice(0, 30)); // retried publishes: deduplicated by job id
    await waitFor("every job to be done", () => events.filter((e) => e.type === "done").length >= 120);
    for (const w of workers) await w.consumer.stop();
    expect(handled).toHaveLength(120);
    expect(new Set(handled.map((h) => h.jobId)).size).toBe(120);
    expect(new Set(handled.map((h) => h.workerId)).size).toBeGreaterThan(1);
    expect(events.filter((e) => e.type === "claimed")).toHaveLength(120);
    const info = await (await jetstreamManager(nc)).streams.info(subjects.streams.dispatch);
    expect(info.state.messages).toBe(0);
    for (const w of workers) await w.wnc.close();
    await nc.close();
  });

  it("redelivery - a worker killed while holding a job: another worker finishes it, once", async () => {
    await using server = await NatsTestServer.start();
    const nc = await connect({ servers: server.url });
    await provisionBus(nc, subjects);
    const handled: Array<{ jobId: string; workerId: string; delivery: number }> = [];
    const blocked: Array<{ jobId: string; workerId: string }> = [];
    nc.subscribe("test.handled", {
      callback: (_e, m) => {
        handled.push(decodeBody(m.data) as never);
      },
    });
    nc.subscribe("test.blocked", {
      callback: (_e, m) => {
        blocked.push(decodeBody(m.data) as never);
      },
    });
    await nc.flush();
    const env = { NATS_URL: server.url, ACK_WAIT_MS: "1000" };
    await using doomed = await spawnTs("worker doomed", "tests/fixtures/workers/recording_worker.ts", {
      readyLine: "recording worker ready",
      env: { ...env, WORKER_ID: "doomed" },
    });
    await publishJobs(nc, [job(1, "block")]);
    await waitFor("the doomed worker to hold the job", () => blocked.length === 1);
    await doomed.kill();
    await using survivor = await spawnTs("worker survivor", "tests/fixtures/workers/recording_worker.ts", {
      readyLine: "recording worker ready",
      env: { ...env, WORKER_ID: "survivor" },
    });
    // The survivor gets the job again after the ack wait; it blocks too, so it reports it blocked.
    await waitFor("the job to be redelivered to the survivor", () => blocked.length === 2, {
      timeoutMs: 15_000,
    });
    expect(blocked[1]?.workerId).toBe("survivor");
    // A normal job published now is handled once by the survivor.
    await publishJobs(nc, [job(2)]);
    await waitFor("job 2 to be handled", () => handled.some((h) => h.jobId === "job-2"));
    expect(handled.filter((h) => h.jobId === "job-2")).toHaveLength(1);
    expect(handled.find((h) => h.jobId === "job-2")?.workerId).toBe("survivor");
    void survivor;
    await nc.close();
  });

  it("failures - a retryable failure is retried, then given up after MaxDeliver with the last error", async () => {
    await using server = await NatsTestServer.start();
    const nc = await connect({ servers: server.url });
    await provisionBus(nc, subjects);
    const events = collectEvents(nc);
    const wnc = await connect({ servers: server.url });
    let attempts = 0;
    const consumer = new JobConsumer({
      nc: wnc,
      subjects,
      workerId: "w1",
      log,
      slots: 1,
      maxDeliver: 3,
      handler: () => {
        attempts += 1;
        return Promise.reject(
          new SfError("SF_ERR_PROVIDER_UNAVAILABLE", `attempt ${attempts}`, { retryable: true }),
        );
      },
    });
    await consumer.start();
    await publishJobs(nc, [job(7)]);
    await waitFor("the job to fail for good", () => events.some((e) => e.type === "failed" && e.final), {
      timeoutMs: 15_000,
    });
    const failed = events.filter((e): e is Extract<JobEvent, { type: "failed" }> => e.type === "failed");
    expect(failed.map((e) => [e.delivery, e.final])).toEqual([
      [1, false],
      [2, false],
      [3, true],
    ]);
    expect(failed[2]?.error).toMatchObject({ code: "SF_ERR_PROVIDER_UNAVAILABLE", message: "attempt 3" });
    expect(events.some((e) => e.type === "done")).toBe(false);
    await consumer.stop();
    await wnc.close();
    await nc.close();
  });

  it("failures - a permanent error ends the job at its first delivery", async () => {
    await using server = await NatsTestServer.start();
    const nc = await connect({ servers: server.url });
    await provisionBus(nc, subjects);
    const events = collectEvents(nc);
    const wnc = await connect({ servers: server.url });
    const consumer = new JobConsumer({
      nc: wnc,
      subjects,
      workerId: "w1",
      log,
      slots: 1,
      handler: () => Promise.reject(new SfError("SF_ERR_PROVIDER_MISCONFIGURED", "groq has no api key")),
    });
    await consumer.start();
    await publishJobs(nc, [job(8)]);
    await waitFor("the job to fail", () => events.some((e) => e.type === "failed"));
    const failed = events.filter((e) => e.type === "failed");
    expect(failed).toHaveLength(1);
    expect(failed[0]).toMatchObject({
      final: true,
      delivery: 1,
      error: { code: "SF_ERR_PROVIDER_MISCONFIGURED" },
    });
    await consumer.stop();
    await wnc.close();
    await nc.close();
  });

  it("redelivery - a job redelivered to the worker still running it is not run twice; its one run acks it", async () => {
    await using server = await NatsTestServer.start();
    const nc = await connect({ servers: server.url });
    await provisionBus(nc, subjects);
    const events = collectEvents(nc);
    const wnc = await connect({ servers: server.url });
    const ackWaitMs = 500;
    const duplicates: DuplicateDelivery[] = [];
    const runs: number[] = [];
    const { released, release } = gate();
    const consumer = new JobConsumer({
      nc: wnc,
      subjects,
      workerId: "w1",
      log,
      slots: 2,
      ackWaitMs,
      // The free slot's pull stays open on the server while the event loop is blocked below.
      pullExpiresMs: 3 * ackWaitMs * 2,
      onDuplicateDelivery: (_job, kind) => duplicates.push(kind),
      handler: async (_j, ctx) => {
        runs.push(ctx.delivery);
        if (runs.length === 1) {
          // A stuck event loop: no heartbeat goes out, the ack wait lapses, the server redelivers.
          const until = Date.now() + 3 * ackWaitMs;
          while (Date.now() < until) {
            // busy on purpose
          }
        }
        await released;
      },
    });
    await consumer.start();
    await publishJobs(nc, [job(11)]);
    await waitFor("the redelivery to reach the worker", () => duplicates.length > 0 || runs.length > 1, {
      timeoutMs: 15_000,
    });
    expect(runs).toEqual([1]);
    expect(duplicates[0]).toBe("adopted");
    release();
    await waitFor("the job to be done", () => events.some((e) => e.type === "done"));
    await consumer.stop();
    expect(runs).toEqual([1]);
    // Blocked for three ack waits, the job may have come back more than once: every delivery
    // was adopted by the one run, which claimed it again under each; nothing failed or ran again.
    expect(duplicates.length).toBeGreaterThanOrEqual(1);
    expect(duplicates.every((d) => d === "adopted")).toBe(true);
    const claims = events.filter((e) => e.type === "claimed");
    expect(claims.map((e) => [e.workerId, e.delivery])).toEqual(
      Array.from({ length: duplicates.length + 1 }, (_, i) => ["w1", i + 1]),
    );
    expect(events.filter((e) => e.type === "failed")).toEqual([]);
    expect(events.filter((e) => e.type === "done")).toHaveLength(1);
    await expectAllAcked(nc, duplicates.length + 1);
    await wnc.close();
    await nc.close();
  });

  it("redelivery - another worker's later claim aborts the stuck run: one outcome, no failure, no third delivery", async () => {
    await using server = await NatsTestServer.start();
    const nc = await connect({ servers: server.url });
    await provisionBus(nc, subjects);
    const events = collectEvents(nc);
    const seen: Record<string, Array<Record<string, unknown>>> = { stalled: [], aborted: [], handled: [] };
    for (const what of Object.keys(seen)) {
      nc.subscribe(`test.${what}`, {
        callback: (_e, m) => {
          seen[what]?.push(decodeBody(m.data) as Record<string, unknown>);
        },
      });
    }
    await nc.flush();
    const ackWaitMs = 500;
    // One slot: the redelivery cannot come back to the stuck worker, it goes to the other one.
    await using stuck = await spawnTs("worker stuck", "tests/fixtures/workers/recording_worker.ts", {
      readyLine: "recording worker ready",
      env: {
        NATS_URL: server.url,
        WORKER_ID: "stuck",
        SLOTS: "1",
        ACK_WAIT_MS: String(ackWaitMs),
        STALL_MS: String(4 * ackWaitMs),
      },
    });
    await publishJobs(nc, [job(12, "stall")]);
    await waitFor("the stuck worker to claim the job", () =>
      events.some((e) => e.type === "claimed" && e.workerId === "stuck"),
    );
    const wnc = await connect({ servers: server.url });
    const runs: number[] = [];
    const { released, release } = gate();
    const other = new JobConsumer({
      nc: wnc,
      subjects,
      workerId: "other",
      log,
      slots: 1,
      ackWaitMs,
      handler: async (_j, ctx) => {
        runs.push(ctx.delivery);
        await released;
      },
    });
    await other.start();
    await waitFor("the stuck run to be aborted", () => seen["aborted"]?.length === 1, { timeoutMs: 15_000 });
    expect(seen["aborted"]?.[0]).toMatchObject({
      workerId: "stuck",
      code: AgentWorkerErrorCodes.JOB_SUPERSEDED,
    });
    expect(runs).toEqual([2]);
    release();
    await waitFor("the job to be done", () => events.some((e) => e.type === "done"));
    await other.stop();
    await expectAllAcked(nc, 2);
    expect(events.filter((e) => e.type === "claimed").map((e) => [e.workerId, e.delivery])).toEqual([
      ["stuck", 1],
      ["other", 2],
    ]);
    // The superseded run recorded nothing: no failure, no nak that would start a third run.
    expect(events.filter((e) => e.type === "failed")).toEqual([]);
    expect(events.filter((e) => e.type === "done").map((e) => e.workerId)).toEqual(["other"]);
    expect(seen["handled"]).toEqual([]);
    void stuck;
    await wnc.close();
    await nc.close();
  });
});
