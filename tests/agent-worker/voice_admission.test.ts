// Voice admission on the dispatch work queue (real nats-server): voice jobs have their own durable
// consumer, so a worker at its voice cap, or saturated, pulls no voice job and leaves it to another
// worker while it still takes text; a consumer made before the split is narrowed to text.
import { connect } from "@nats-io/transport-node";
import type { NatsConnection } from "@nats-io/transport-node";
import { AckPolicy, jetstream, jetstreamManager } from "@nats-io/jetstream";
import { describe, expect, it } from "vitest";
import { createLogger } from "../../actors/index.ts";
import type { DispatchJob, JobEvent } from "../../actors/index.ts";
import { createSubjects, decodeBody, encodeBody, provisionBus } from "../../bus/index.ts";
import { JobConsumer, dispatchQueue, voiceQueue } from "../../agent-worker/index.ts";
import type { JobHandler } from "../../agent-worker/index.ts";
import { waitFor } from "../helpers/deadline.ts";
import { NatsTestServer } from "../helpers/nats_server.ts";

const subjects = createSubjects({ partitions: 16 });
const log = createLogger({ name: "test", level: "silent" });

function job(id: string, mode: "text" | "voice"): DispatchJob {
  return {
    jobId: id,
    tenant: "tenant-1",
    mode,
    agentSlug: "helper",
    conversationId: `conv-${id}`,
    sessionId: `sess-${id}`,
    userId: "user-1",
    message: "hello",
    ...(mode === "voice" ? { roomName: `room-${id}` } : {}),
    createdAt: Date.now(),
  };
}

async function publish(nc: NatsConnection, ...jobs: DispatchJob[]): Promise<void> {
  const js = jetstream(nc);
  for (const j of jobs)
    await js.publish(subjects.dispatch(j.tenant, j.mode), encodeBody(j), { msgID: j.jobId });
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

function claimedBy(events: JobEvent[], jobId: string): string | undefined {
  const claim = events.find((e) => e.type === "claimed" && e.jobId === jobId);
  return claim?.type === "claimed" ? claim.workerId : undefined;
}

interface Worker extends AsyncDisposable {
  consumer: JobConsumer;
}

async function worker(
  url: string,
  workerId: string,
  options: { voice: boolean; slots: number; handler: JobHandler; admit?: () => boolean },
): Promise<Worker> {
  const wnc = await connect({ servers: url });
  const consumer = new JobConsumer({
    nc: wnc,
    subjects,
    workerId,
    log,
    slots: options.slots,
    handler: options.handler,
    ...(options.voice ? { queue: voiceQueue(subjects) } : {}),
    ...(options.admit === undefined ? {} : { admit: options.admit }),
  });
  await consumer.start();
  return {
    consumer,
    async [Symbol.asyncDispose]() {
      await consumer.stop(2000);
      await wnc.close();
    },
  };
}

async function pendingOf(
  nc: NatsConnection,
  durable: string,
): Promise<{ pending: number; ackPending: number }> {
  const info = await (await jetstreamManager(nc)).consumers.info(subjects.streams.dispatch, durable);
  return { pending: info.num_pending, ackPending: info.num_ack_pending };
}

describe("voice admission - per-mode consumers on SF_DISPATCH", () => {
  it("cap - a worker holding its voice sessions pulls no more; the next voice job goes to another worker", async () => {
    await using server = await NatsTestServer.start();
    const nc = await connect({ servers: server.url });
    await provisionBus(nc, subjects);
    const events = collectEvents(nc);
    let release!: () => void;
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    const started: Array<{ jobId: string; workerId: string }> = [];
    const holding =
      (workerId: string): JobHandler =>
      async (j) => {
        started.push({ jobId: j.jobId, workerId });
        await released;
      };
    await using a = await worker(server.url, "a", { voice: true, slots: 2, handler: holding("a") });
    await publish(nc, job("v1", "voice"), job("v2", "voice"), job("v3", "voice"));
    await waitFor("worker a to hold two sessions", () => started.length === 2);
    expect(started.map((s) => s.workerId)).toEqual(["a", "a"]);
    expect(a.consumer.inFlight).toBe(2);
    // The third waits in the stream, unclaimed: nobody else holds it.
    expect(await pendingOf(nc, voiceQueue(subjects).durable)).toEqual({ pending: 1, ackPending: 2 });
    await using b = await worker(server.url, "b", { voice: true, slots: 1, handler: holding("b") });
    await waitFor("worker b to take the third session", () => started.length === 3);
    const third = ["v1", "v2", "v3"].find((id) => !started.slice(0, 2).some((s) => s.jobId === id));
    expect(started[2]).toEqual({ jobId: third, workerId: "b" });
    expect(claimedBy(events, third as string)).toBe("b");
    release();
    await waitFor("every session to be done", () => events.filter((e) => e.type === "done").length === 3);
    expect(b.consumer.inFlight).toBe(0);
    await nc.close();
  });

  it("load - a saturated worker pulls no voice job but still takes text; once recovered it takes voice again", async () => {
    await using server = await NatsTestServer.start();
    const nc = await connect({ servers: server.url });
    await provisionBus(nc, subjects);
    const events = collectEvents(nc);
    const load = { saturated: true, asked: 0 };
    const handled: Array<{ jobId: string; workerId: string; mode: string }> = [];
    const recording =
      (workerId: string): JobHandler =>
      (j) => {
        handled.push({ jobId: j.jobId, workerId, mode: j.mode });
        return Promise.resolve();
      };
    const admitVoice = (): boolean => {
      load.asked += 1;
      return !load.saturated;
    };
    await using aText = await worker(server.url, "a", { voice: false, slots: 2, handler: recording("a") });
    const aVoice = await worker(server.url, "a", {
      voice: true,
      slots: 2,
      handler: recording("a"),
      admit: admitVoice,
    });
    await publish(nc, job("v1", "voice"), job("t1", "text"));
    await waitFor("the text job to be done by worker a", () =>
      handled.some((h) => h.jobId === "t1" && h.workerId === "a"),
    );
    // Worker a's free voice slots keep asking and keep being refused: v1 stays in the stream.
    const asked = load.asked;
    await waitFor("worker a's voice slots to ask again", () => load.asked >= asked + 4);
    expect(handled.some((h) => h.jobId === "v1")).toBe(false);
    expect(await pendingOf(nc, voiceQueue(subjects).durable)).toEqual({ pending: 1, ackPending: 0 });

    const b = await worker(server.url, "b", { voice: true, slots: 1, handler: recording("b") });
    await waitFor("worker b to take the voice job", () => handled.some((h) => h.jobId === "v1"));
    expect(handled.find((h) => h.jobId === "v1")?.workerId).toBe("b");
    await b[Symbol.asyncDispose]();

    load.saturated = false;
    await publish(nc, job("v2", "voice"));
    await waitFor("the recovered worker a to take voice again", () => handled.some((h) => h.jobId === "v2"));
    expect(handled.find((h) => h.jobId === "v2")?.workerId).toBe("a");
    expect(claimedBy(events, "v2")).toBe("a");
    await aVoice[Symbol.asyncDispose]();
    void aText;
    await nc.close();
  });

  it("split - a consumer of every mode made before the split is narrowed to text; until then no voice consumer can exist", async () => {
    await using server = await NatsTestServer.start();
    const nc = await connect({ servers: server.url });
    await provisionBus(nc, subjects);
    const jsm = await jetstreamManager(nc);
    const textDurable = dispatchQueue(subjects).durable;
    await jsm.consumers.add(subjects.streams.dispatch, {
      durable_name: textDurable,
      filter_subject: `${subjects.prefix}.dispatch.>`,
      ack_policy: AckPolicy.Explicit,
    });
    const handled: Array<{ jobId: string; queue: string }> = [];
    const into =
      (queue: string): JobHandler =>
      (j) => {
        handled.push({ jobId: j.jobId, queue });
        return Promise.resolve();
      };
    // A work queue refuses a second consumer whose filter overlaps the first one's.
    const early = new JobConsumer({
      nc,
      subjects,
      workerId: "early",
      log,
      queue: voiceQueue(subjects),
      handler: into("voice"),
    });
    await expect(early.start()).rejects.toThrow();

    await using text = await worker(server.url, "w", { voice: false, slots: 1, handler: into("text") });
    const narrowed = await jsm.consumers.info(subjects.streams.dispatch, textDurable);
    expect(narrowed.config.filter_subject).toBe(`${subjects.prefix}.dispatch.*.text`);
    await using voice = await worker(server.url, "w", { voice: true, slots: 1, handler: into("voice") });
    await publish(nc, job("t1", "text"), job("v1", "voice"));
    await waitFor("both jobs to be handled", () => handled.length === 2);
    expect(handled.sort((x, y) => x.jobId.localeCompare(y.jobId))).toEqual([
      { jobId: "t1", queue: "text" },
      { jobId: "v1", queue: "voice" },
    ]);
    void text;
    void voice;
    await nc.close();
  });
});
