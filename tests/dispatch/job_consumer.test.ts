import { connect } from "@nats-io/transport-node";
import type { NatsConnection } from "@nats-io/transport-node";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { describe, expect, it } from "vitest";
import { createLogger } from "../../actors/index.ts";
import type { DispatchJob, JobEvent } from "../../actors/index.ts";
import { createSubjects, decodeBody, encodeBody, provisionBus, SfError } from "../../bus/index.ts";
import { JobConsumer } from "../../agent-worker/index.ts";
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
});
