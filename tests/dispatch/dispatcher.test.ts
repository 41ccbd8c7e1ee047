import { connect } from "@nats-io/transport-node";
import type { NatsConnection } from "@nats-io/transport-node";
import { jetstreamManager } from "@nats-io/jetstream";
import { randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import { createLogger, Dispatcher, DispatchErrorCodes } from "../../actors/index.ts";
import type { DispatchJob } from "../../actors/index.ts";
import { JobConsumer } from "../../agent-worker/index.ts";
import type { JobHandler } from "../../agent-worker/index.ts";
import { createSubjects, provisionBus, SfError } from "../../bus/index.ts";
import { waitFor } from "../helpers/deadline.ts";
import { NatsTestServer } from "../helpers/nats_server.ts";

const subjects = createSubjects({ partitions: 16 });
const log = createLogger({ name: "test", level: "silent" });

function job(message = "hi"): DispatchJob {
  return {
    jobId: randomUUID(),
    tenant: "acme",
    mode: "text",
    agentSlug: "helper",
    conversationId: randomUUID(),
    sessionId: "s1",
    userId: "u1",
    message,
    createdAt: Date.now(),
  };
}

async function worker(server: NatsTestServer, handler: JobHandler): Promise<{ stop(): Promise<void> }> {
  const nc = await connect({ servers: server.url });
  const consumer = new JobConsumer({ nc, subjects, workerId: "w1", log, slots: 2, maxDeliver: 2, handler });
  await consumer.start();
  return {
    stop: async () => {
      await consumer.stop();
      await nc.close();
    },
  };
}

async function setup(
  server: NatsTestServer,
  claimTimeoutMs = 5000,
): Promise<{ nc: NatsConnection; d: Dispatcher }> {
  const nc = await connect({ servers: server.url });
  await provisionBus(nc, subjects);
  const d = new Dispatcher({ nc, subjects, log, claimTimeoutMs });
  d.start();
  return { nc, d };
}

describe("dispatch - confirmed dispatch", () => {
  it("claim - the caller is answered once a worker claims the job, and learns when it is done", async () => {
    await using server = await NatsTestServer.start();
    const { nc, d } = await setup(server);
    const handled: string[] = [];
    const w = await worker(server, (j) => {
      handled.push(j.jobId);
      return Promise.resolve();
    });
    const j = job();
    const { claim, outcome } = await d.dispatch(j);
    expect(claim).toMatchObject({ jobId: j.jobId, workerId: "w1", duplicate: false });
    expect(claim.claimMs).toBeGreaterThanOrEqual(0);
    await outcome;
    // A retried trigger with the same job id makes no second job: it gets the recorded claim.
    const again = await d.dispatch(j);
    expect(again.claim).toMatchObject({ jobId: j.jobId, workerId: "w1", duplicate: true });
    await again.outcome;
    expect(handled).toEqual([j.jobId]);
    await w.stop();
    await d.stop();
    await nc.close();
  });

  it("capacity - with no worker the job is withdrawn and the caller gets SF_ERR_NO_AGENT_CAPACITY", async () => {
    await using server = await NatsTestServer.start();
    const { nc, d } = await setup(server, 500);
    const j = job();
    await expect(d.dispatch(j)).rejects.toMatchObject({
      code: DispatchErrorCodes.NO_AGENT_CAPACITY,
      retryable: true,
    });
    const info = await (await jetstreamManager(nc)).streams.info(subjects.streams.dispatch);
    expect(info.state.messages).toBe(0);
    // A worker that starts afterwards never runs the withdrawn job.
    const handled: string[] = [];
    const w = await worker(server, (x) => {
      handled.push(x.jobId);
      return Promise.resolve();
    });
    const probe = job();
    await (
      await d.dispatch(probe)
    ).outcome;
    expect(handled).toEqual([probe.jobId]);
    await w.stop();
    await d.stop();
    await nc.close();
  });

  it("fencing - at the claim deadline a host that lost its tenant withdraws nothing; the job is claimed later", async () => {
    await using server = await NatsTestServer.start();
    const { nc, d } = await setup(server, 500);
    // The deadline falls after the lease lapsed (a frozen owner waking): the job is the new owner's.
    const checks: boolean[] = [];
    const j = job();
    await expect(
      d.dispatch(j, {
        stillOwner: () => {
          checks.push(false);
          return false;
        },
      }),
    ).rejects.toMatchObject({ code: DispatchErrorCodes.NO_AGENT_CAPACITY });
    expect(checks).toEqual([false]);
    const jsm = await jetstreamManager(nc);
    expect((await jsm.streams.info(subjects.streams.dispatch)).state.messages).toBe(1);
    // The new owner's dispatch of the same job (found by its id) is claimed and answered once.
    const successor = new Dispatcher({ nc, subjects, log, claimTimeoutMs: 30_000 });
    successor.start();
    const handled: string[] = [];
    const again = successor.dispatch(j);
    const w = await worker(server, (x) => {
      handled.push(x.jobId);
      return Promise.resolve();
    });
    const { claim, outcome } = await again;
    expect(claim).toMatchObject({ jobId: j.jobId, workerId: "w1", duplicate: true });
    await outcome;
    expect(handled).toEqual([j.jobId]);
    await w.stop();
    await successor.stop();
    await d.stop();
    await nc.close();
  });

  it("failure - a job that fails for good rejects its outcome with the worker's last error", async () => {
    await using server = await NatsTestServer.start();
    const { nc, d } = await setup(server);
    const w = await worker(server, () =>
      Promise.reject(
        new SfError("SF_ERR_PROVIDER_MISCONFIGURED", "groq has no api key", {
          details: { provider: "groq" },
        }),
      ),
    );
    const { outcome } = await d.dispatch(job());
    const err = await outcome.catch((e: unknown) => e);
    expect(err).toMatchObject({
      code: DispatchErrorCodes.JOB_FAILED,
      details: { error: { code: "SF_ERR_PROVIDER_MISCONFIGURED", details: { provider: "groq" } } },
    });
    await waitFor("the stream to be empty", async () => {
      const info = await (await jetstreamManager(nc)).streams.info(subjects.streams.dispatch);
      return info.state.messages === 0;
    });
    await w.stop();
    await d.stop();
    await nc.close();
  });
});
