// Every voice session ends, and frees its slot: a user who leaves right after the agent joined,
// one who leaves before the agent finished joining, a room deleted under the agent, and many short
// sessions in a row. A real nats-server, the shared livekit-server, an actor host and an agent
// worker process on the provider fixture; the worker's slots are read from its /metrics.
import { randomUUID } from "node:crypto";
import { connect } from "@nats-io/transport-node";
import type { NatsConnection } from "@nats-io/transport-node";
import {
  AudioFrame,
  AudioSource,
  LocalAudioTrack,
  ParticipantKind,
  Room,
  RoomEvent,
  TrackPublishOptions,
  TrackSource,
} from "@livekit/rtc-node";
import type { RemoteParticipant } from "@livekit/rtc-node";
import { RoomServiceClient } from "livekit-server-sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openPlatformStore, openTenantStore, provisionTenantDatabase } from "../../actors/index.ts";
import type { JobEvent, PlatformStore, TenantStore, TriggerReply } from "../../actors/index.ts";
import { createSubjects, decodeBody, requestReply } from "../../bus/index.ts";
import { waitFor } from "../helpers/deadline.ts";
import { NatsTestServer } from "../helpers/nats_server.ts";
import { defaultPlatformSchema, spawnActorHost, spawnTs, testKeyring } from "../helpers/processes.ts";
import type { TestProcess } from "../helpers/processes.ts";
import { sharedServices } from "../helpers/services.ts";
import { fixtureVoiceSettings } from "../helpers/stack.ts";
import { startProviderFixture } from "../fixtures/providers/provider_fixture.ts";
import type { ProviderFixture } from "../fixtures/providers/provider_fixture.ts";

const P = 16;
const subjects = createSubjects({ partitions: P });
const lk = sharedServices();
/** The worker's voice bounds (SF_VOICE_*_MS below). */
const DRAIN_TIMEOUT_MS = 3000;
const CLOSE_TIMEOUT_MS = 3000;
const EMPTY_ROOM_TIMEOUT_MS = 4000;
/** After the user left: the drain, the close, leaving the room, and a margin. */
const DONE_WITHIN_MS = DRAIN_TIMEOUT_MS + 2 * CLOSE_TIMEOUT_MS + 3000;
/** What the worker logs when a deadline, not the session, ended a close. */
const DEADLINE_LINES = ["did not finish in time", "did not close in time"];

interface Env {
  server: NatsTestServer;
  fixture: ProviderFixture;
  host: TestProcess;
  worker: TestProcess;
  metricsPort: number;
  platform: PlatformStore;
  nc: NatsConnection;
  tenant: { id: string; store: TenantStore };
  /** Job events by job id and type, as they arrive on `<prefix>.job.<tenant>.<job>.<type>`. */
  events: Map<string, Map<string, JobEvent>>;
}

let env: Env;

function rooms(): RoomServiceClient {
  return new RoomServiceClient(lk.livekitUrl.replace(/^ws/, "http"), lk.livekitApiKey, lk.livekitApiSecret);
}

function event(jobId: string, type: JobEvent["type"]): JobEvent | undefined {
  return env.events.get(jobId)?.get(type);
}

/** Waits for the job's event; a final failure of the job fails the wait at once. */
function jobEvent(jobId: string, type: "joined" | "done", timeoutMs: number): Promise<JobEvent> {
  return waitFor(
    `the ${type} event of job ${jobId}`,
    () => {
      const failed = event(jobId, "failed");
      if (failed?.type === "failed" && failed.final) {
        throw new Error(`job ${jobId} failed: ${failed.error.code} ${failed.error.message}`);
      }
      return event(jobId, type);
    },
    { timeoutMs },
  ).catch((err: unknown) => {
    const failed = event(jobId, "failed");
    if (failed?.type === "failed" && failed.final) {
      throw new Error(`job ${jobId} failed: ${failed.error.code} ${failed.error.message}`);
    }
    throw new Error(`${String(err)}\nworker:\n${env.worker.tail(20)}`);
  });
}

async function metric(name: string): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${env.metricsPort}/metrics`, {
    signal: AbortSignal.timeout(2000),
  });
  const m = new RegExp(`^${name}\\s+([\\d.e+-]+)$`, "m").exec(await res.text());
  if (m?.[1] === undefined) throw new Error(`no ${name} on the worker's /metrics`);
  return Number(m[1]);
}

/** The worker's slots are all free again. */
async function slotsFree(): Promise<void> {
  await waitFor("the worker's slots to be free", async () => (await metric("sf_worker_slots_in_use")) === 0, {
    timeoutMs: 5000,
  });
}

async function trigger(slug: string, room: string): Promise<TriggerReply> {
  const { body } = await requestReply<TriggerReply>(
    env.nc,
    subjects.tenantOp(env.tenant.id, "trigger"),
    { agent_slug: slug, mode: "voice", user_id: "wp-user-9", room_name: room },
    { tenant: env.tenant.id, timeoutMs: 20_000 },
  );
  return body;
}

function roomName(what: string): string {
  return `sf-test-end-${what}-${randomUUID().slice(0, 8)}`;
}

/** A user connected with the trigger's token; `agent` resolves when the agent participant is seen. */
async function joinAsUser(reply: TriggerReply): Promise<{ room: Room; agent: Promise<void> }> {
  const voice = reply.voice;
  if (voice === undefined) throw new Error("the trigger reply has no voice info");
  const room = new Room();
  const agent = new Promise<void>((resolve) => {
    room.on(RoomEvent.ParticipantConnected, (p: RemoteParticipant) => {
      if (p.kind === ParticipantKind.AGENT) resolve();
    });
  });
  await room.connect(voice.server_url, voice.user_token, { autoSubscribe: true, dynacast: false });
  const present = [...room.remoteParticipants.values()].some((p) => p.kind === ParticipantKind.AGENT);
  return { room, agent: present ? Promise.resolve() : agent };
}

/** A microphone track of quiet noise (the agent listens; nothing is transcribed). */
async function publishMicrophone(room: Room): Promise<AudioSource> {
  const source = new AudioSource(16_000, 1);
  const track = LocalAudioTrack.createAudioTrack("mic", source);
  await room.localParticipant?.publishTrack(
    track,
    new TrackPublishOptions({ source: TrackSource.SOURCE_MICROPHONE }),
  );
  const noise = new Int16Array(320);
  for (let i = 0; i < noise.length; i++) noise[i] = Math.round((Math.random() * 2 - 1) * 20);
  await source.captureFrame(new AudioFrame(noise, 16_000, 1, 320));
  return source;
}

/**
 * The job's session closed by itself: no deadline had to cut it short. The worker's log line is
 * read from its stdout pipe, which can trail the job's `done` event on NATS: waited for.
 */
async function closedCleanly(jobId: string): Promise<void> {
  const ended = (l: string): boolean => l.includes(jobId) && l.includes("voice session ended");
  await waitFor("the worker's voice session ended line", () => env.worker.lines.some(ended), {
    timeoutMs: 5_000,
  });
  const lines = env.worker.lines.filter((l) => l.includes(jobId));
  expect(lines.filter((l) => DEADLINE_LINES.some((d) => l.includes(d)))).toEqual([]);
}

/** Trigger, join as the user, wait for the agent's `joined`, leave at once; the job must be done. */
async function joinAndLeave(slug: string, microphone: boolean): Promise<number> {
  const reply = await trigger(slug, roomName("quick"));
  const { room } = await joinAsUser(reply);
  let source: AudioSource | undefined;
  try {
    await jobEvent(reply.job_id, "joined", 20_000);
    if (microphone) source = await publishMicrophone(room);
  } finally {
    await source?.close();
    await room.disconnect();
  }
  const left = performance.now();
  await jobEvent(reply.job_id, "done", DONE_WITHIN_MS);
  const tookMs = performance.now() - left;
  await closedCleanly(reply.job_id);
  return tookMs;
}

beforeAll(async () => {
  const server = await NatsTestServer.start();
  const fixture = await startProviderFixture();
  const host = await spawnActorHost({ natsUrl: server.url, hostId: "h1", partitions: P });
  const worker = await spawnTs("worker", "agent-worker/main.ts", {
    readyLine: "agent worker ready",
    env: {
      NATS_URL: server.url,
      SF_PARTITIONS: String(P),
      SF_WORKER_ID: "w-end",
      SF_WORKER_SLOTS: "4",
      SF_METRICS_PORT: "0",
      SF_VOICE_DRAIN_TIMEOUT_MS: String(DRAIN_TIMEOUT_MS),
      SF_VOICE_CLOSE_TIMEOUT_MS: String(CLOSE_TIMEOUT_MS),
      SF_VOICE_EMPTY_ROOM_TIMEOUT_MS: String(EMPTY_ROOM_TIMEOUT_MS),
      SF_PROVIDER_ENDPOINTS: JSON.stringify(fixture.endpoints()),
      // Full collections and live object counts on SIGUSR2 (the last test).
      NODE_OPTIONS: [process.env["NODE_OPTIONS"], "--expose-gc"].filter(Boolean).join(" "),
      SF_WORKER_MEMORY_DIAGNOSTICS: "1",
    },
  });
  const ready = await worker.waitForLine("agent worker ready");
  const metricsPort = (JSON.parse(ready) as { metricsPort: number }).metricsPort;
  const platform = await openPlatformStore({
    database: { kind: "postgres", url: lk.databaseUrl, schema: defaultPlatformSchema(server.url) },
    keyring: testKeyring(),
  });
  const nc = await connect({ servers: server.url });
  const client = await platform.createClient({ slug: `end-${server.port}`, name: "end" });
  const database = { kind: "postgres", url: lk.databaseUrl, schema: `voice_end_${server.port}` } as const;
  await provisionTenantDatabase({ tenantId: client.id, database, vector: "optional" });
  await platform.setTenantDatabase(client.id, database);
  const store = await openTenantStore({ tenantId: client.id, database, keyring: testKeyring() });
  await platform.setLivekitCredentials(client.id, {
    url: lk.livekitUrl,
    apiKey: lk.livekitApiKey,
    apiSecret: lk.livekitApiSecret,
  });
  await store.setProviderKey("groq", fixture.keys.groq);
  await store.setProviderKey("deepgram", fixture.keys.deepgram);
  await store.setProviderKey("elevenlabs", fixture.keys.elevenlabs);
  await store.createAgent({
    slug: "texter",
    name: "Texter",
    voiceSettings: { llm_provider: "groq", llm_model: "llama-3.3-70b-versatile" },
  });
  await store.createAgent({ slug: "speaker", name: "Speaker", voiceSettings: fixtureVoiceSettings() });
  const events = new Map<string, Map<string, JobEvent>>();
  nc.subscribe(`${subjects.prefix}.job.${client.id}.*.*`, {
    callback: (err, msg) => {
      if (err !== null) return;
      const ev = decodeBody(msg.data) as JobEvent;
      const byType = events.get(ev.jobId) ?? new Map<string, JobEvent>();
      events.set(ev.jobId, byType);
      if (!byType.has(ev.type)) byType.set(ev.type, ev);
    },
  });
  await nc.flush();
  env = {
    server,
    fixture,
    host,
    worker,
    metricsPort,
    platform,
    nc,
    tenant: { id: client.id, store },
    events,
  };
}, 60_000);

afterAll(async () => {
  if (env === undefined) return;
  await env.nc.close();
  await env.tenant.store.close();
  await env.platform.close();
  await env.worker[Symbol.asyncDispose]();
  await env.host[Symbol.asyncDispose]();
  await env.fixture[Symbol.asyncDispose]();
  await env.server[Symbol.asyncDispose]();
}, 60_000);

describe("voice - every session ends and frees its slot", () => {
  it("a user who leaves as soon as the agent joined: the job is done in bounded time, its slot free again", async () => {
    const tookMs = await joinAndLeave("speaker", false);
    expect(tookMs).toBeLessThan(DONE_WITHIN_MS);
    await slotsFree();
  });

  it("the same with a microphone track published", async () => {
    await joinAndLeave("speaker", true);
    await slotsFree();
  });

  it("a text-only agent whose user leaves at once", async () => {
    await joinAndLeave("texter", false);
    await slotsFree();
  });

  it("a user who leaves as the agent appears, before it said joined: the job still ends", async () => {
    const reply = await trigger("speaker", roomName("early"));
    const { room, agent } = await joinAsUser(reply);
    try {
      await agent;
    } finally {
      await room.disconnect();
    }
    // The agent saw the user leave (last_user_left), or never saw the user (nobody_joined).
    await jobEvent(reply.job_id, "done", EMPTY_ROOM_TIMEOUT_MS + DONE_WITHIN_MS);
    await closedCleanly(reply.job_id);
    await slotsFree();
  });

  it("a user who leaves before the agent is in the room: the job ends once the room stayed empty", async () => {
    const reply = await trigger("speaker", roomName("gone"));
    const { room } = await joinAsUser(reply);
    await room.disconnect();
    await jobEvent(reply.job_id, "done", EMPTY_ROOM_TIMEOUT_MS + DONE_WITHIN_MS);
    await closedCleanly(reply.job_id);
    await slotsFree();
  });

  it("the room deleted while the agent is in it: the job is done, the slot is free", async () => {
    const name = roomName("deleted");
    const reply = await trigger("speaker", name);
    const { room, agent } = await joinAsUser(reply);
    try {
      await jobEvent(reply.job_id, "joined", 20_000);
      await agent;
      await rooms().deleteRoom(name);
      await jobEvent(reply.job_id, "done", DONE_WITHIN_MS);
    } finally {
      await room.disconnect();
    }
    await closedCleanly(reply.job_id);
    await slotsFree();
  });

  it("ten short sessions in a row: each is done, the slots return to 0, the worker's memory levels off", async () => {
    const rssMib = async (): Promise<number> => (await metric("sf_process_resident_memory_bytes")) / 2 ** 20;
    await joinAndLeave("speaker", true);
    await slotsFree();
    const before = await rssMib();
    for (let i = 0; i < 10; i++) {
      await joinAndLeave("speaker", i % 2 === 0);
      await slotsFree();
    }
    const after = await rssMib();
    // A session held open costs the worker 6-8 MiB of RSS (bench/results/voice.quick.json), so ten
    // kept sessions would add 60-80 MiB. Ten that ended were seen to add 0-20 MiB before V8 and the
    // allocator give memory back (30 in a row: flat). What a session leaves behind is checked
    // object by object in voice_session_close.test.ts; this bounds the process as a whole.
    expect(after - before).toBeLessThan(40);
  }, 180_000);

  it("once every session of this file ended (a room deleted under the agent among them), a full collection in the worker leaves no session and no room", async () => {
    await slotsFree();
    interface Reading {
      heap_used_mib: number;
      live: Record<string, number>;
    }
    let seq = 0;
    let last: Reading | undefined;
    // The worker's diagnostics (SF_WORKER_MEMORY_DIAGNOSTICS): a full collection, then the count
    // of live instances; polled, since the sessions' last scheduled work may still be running.
    await waitFor(
      "no VoiceSession or Room left in the worker",
      async () => {
        seq += 1;
        env.worker.signal("SIGUSR2");
        const line = await env.worker.waitForLine(`"diag":"m${seq}"`, 30_000);
        last = (JSON.parse(line) as { memory: Reading }).memory;
        return last.live["VoiceSession"] === 0 && last.live["Room"] === 0;
      },
      { timeoutMs: 20_000, intervalMs: 500 },
    ).catch((err: unknown) => {
      throw new Error(`${String(err)}: ${JSON.stringify(last)}`);
    });
  }, 60_000);
});
