// Voice with several users in one room, end to end: a real nats-server, the shared dev
// livekit-server, a real actor host and a real agent worker process with the provider fixture.
// Two users join (the first keeps an open, silent microphone); the SECOND one speaks and is
// answered aloud, the turn recorded under their identity; the first leaves and the second is still
// heard and answered; the agent leaves only when the last user has left.
import { randomUUID } from "node:crypto";
import { connect } from "@nats-io/transport-node";
import type { NatsConnection } from "@nats-io/transport-node";
import {
  AudioFrame,
  AudioSource,
  AudioStream,
  LocalAudioTrack,
  Room,
  RoomEvent,
  TrackKind,
  TrackPublishOptions,
  TrackSource,
} from "@livekit/rtc-node";
import type { RemoteParticipant, RemoteTrack } from "@livekit/rtc-node";
import { AccessToken, RoomServiceClient } from "livekit-server-sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openPlatformStore, openTenantStore, provisionTenantDatabase } from "../../actors/index.ts";
import type { JobEvent, PlatformStore, TenantStore, TriggerReply } from "../../actors/index.ts";
import { createSubjects, decodeBody, requestReply } from "../../bus/index.ts";
import { waitFor } from "../helpers/deadline.ts";
import { NatsTestServer } from "../helpers/nats_server.ts";
import { defaultPlatformSchema, spawnActorHost, spawnTs, testKeyring } from "../helpers/processes.ts";
import type { TestProcess } from "../helpers/processes.ts";
import { sharedServices } from "../helpers/services.ts";
import { sineTonePcm } from "../fixtures/providers/audio.ts";
import { startProviderFixture } from "../fixtures/providers/provider_fixture.ts";
import type { ProviderFixture } from "../fixtures/providers/provider_fixture.ts";

const P = 16;
const RATE = 16_000;
const FRAME = 320; // 20 ms
const subjects = createSubjects({ partitions: P });
const lk = sharedServices();

interface Env {
  server: NatsTestServer;
  fixture: ProviderFixture;
  host: TestProcess;
  worker: TestProcess;
  platform: PlatformStore;
  nc: NatsConnection;
  tenant: { id: string; store: TenantStore };
  events: JobEvent[];
}

let env: Env;

beforeAll(async () => {
  const server = await NatsTestServer.start();
  const fixture = await startProviderFixture();
  const host = await spawnActorHost({ natsUrl: server.url, hostId: "h1", partitions: P });
  const worker = await spawnTs("worker", "agent-worker/main.ts", {
    readyLine: "agent worker ready",
    env: {
      NATS_URL: server.url,
      SF_PARTITIONS: String(P),
      SF_WORKER_ID: "w1",
      SF_METRICS_PORT: "0",
      SF_PROVIDER_ENDPOINTS: JSON.stringify(fixture.endpoints()),
    },
  });
  const platform = await openPlatformStore({
    database: { kind: "postgres", url: lk.databaseUrl, schema: defaultPlatformSchema(server.url) },
    keyring: testKeyring(),
  });
  const nc = await connect({ servers: server.url });
  const client = await platform.createClient({ slug: `multi-${server.port}`, name: "multi" });
  const database = { kind: "postgres" as const, url: lk.databaseUrl, schema: `multi_${server.port}` };
  await provisionTenantDatabase({ tenantId: client.id, database, vector: "optional" });
  await platform.setTenantDatabase(client.id, database);
  const store = await openTenantStore({ tenantId: client.id, database, keyring: testKeyring() });
  await platform.setLivekitCredentials(client.id, {
    url: lk.livekitUrl,
    apiKey: lk.livekitApiKey,
    apiSecret: lk.livekitApiSecret,
  });
  await store.createAgent({
    slug: "listener",
    name: "Listener",
    systemPrompt: "You speak.",
    voiceSettings: {
      llm_provider: "groq",
      llm_model: "llama-3.3-70b-versatile",
      stt_provider: "deepgram",
      tts_provider: "elevenlabs",
      voice_id: "voice-1",
    },
  });
  await store.setProviderKey("groq", fixture.keys.groq);
  await store.setProviderKey("deepgram", fixture.keys.deepgram);
  await store.setProviderKey("elevenlabs", fixture.keys.elevenlabs);
  const events: JobEvent[] = [];
  nc.subscribe(`${subjects.prefix}.job.>`, {
    callback: (_err, msg) => {
      events.push(decodeBody(msg.data) as JobEvent);
    },
  });
  await nc.flush();
  env = { server, fixture, host, worker, platform, nc, tenant: { id: client.id, store }, events };
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

function rooms(): RoomServiceClient {
  return new RoomServiceClient(lk.livekitUrl.replace(/^ws/, "http"), lk.livekitApiKey, lk.livekitApiSecret);
}

/** A user in the room, with a microphone, what the agent said (text and loud audio frames) and the transcripts published for each identity. */
interface User {
  identity: string;
  room: Room;
  mic: AudioSource;
  replies: string[];
  transcripts: { from: string; text: string }[];
  agentLoudFrames: () => number;
}

async function join(url: string, token: string, identity: string): Promise<User> {
  const room = new Room();
  const replies: string[] = [];
  const transcripts: { from: string; text: string }[] = [];
  room.registerTextStreamHandler("lk.transcription", (reader, from) => {
    void reader.readAll().then(
      (text) => {
        if (from.identity.startsWith("agent-")) replies.push(text);
        else transcripts.push({ from: from.identity, text });
      },
      (err: unknown) => replies.push(`read failed: ${String(err)}`),
    );
  });
  let loud = 0;
  room.on(RoomEvent.TrackSubscribed, (track: RemoteTrack, _pub, participant: RemoteParticipant) => {
    if (!participant.identity.startsWith("agent-") || track.kind !== TrackKind.KIND_AUDIO) return;
    const reader = new AudioStream(track, { sampleRate: RATE, numChannels: 1 }).getReader();
    const read = async (): Promise<void> => {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) return;
        let sum = 0;
        for (const v of value.data) sum += v * v;
        if (Math.sqrt(sum / Math.max(1, value.data.length)) > 1000) loud += 1;
      }
    };
    void read().catch((err: unknown) => replies.push(`audio read failed: ${String(err)}`));
  });
  await room.connect(url, token, { autoSubscribe: true, dynacast: false });
  const mic = new AudioSource(RATE, 1);
  await room.localParticipant?.publishTrack(
    LocalAudioTrack.createAudioTrack("mic", mic),
    new TrackPublishOptions({ source: TrackSource.SOURCE_MICROPHONE }),
  );
  return { identity, room, mic, replies, transcripts, agentLoudFrames: () => loud };
}

/** Real-time microphone audio: 300 ms of silence, 800 ms of tone, 1 s of silence. */
async function speak(mic: AudioSource): Promise<void> {
  const tone = new Int16Array(new Uint8Array(sineTonePcm(800, RATE)).buffer);
  const audio = new Int16Array(RATE * 2.1);
  audio.set(tone, RATE * 0.3);
  for (let at = 0; at < audio.length; at += FRAME) {
    await mic.captureFrame(new AudioFrame(audio.slice(at, at + FRAME), RATE, 1, FRAME));
  }
}

/** A microphone that is open and silent until `stop()` (a participant who listens). */
function keepSilent(mic: AudioSource): { stop: () => Promise<void> } {
  let stopped = false;
  const running = (async () => {
    const silence = new Int16Array(FRAME);
    while (!stopped) await mic.captureFrame(new AudioFrame(silence, RATE, 1, FRAME));
  })();
  return {
    stop: async () => {
      stopped = true;
      await running;
    },
  };
}

describe("voice - several users in one room", () => {
  it("the second user is heard and answered, still after the first left; the turns name who spoke; the agent leaves after the last user", async () => {
    const name = `sf-test-multi-${randomUUID().slice(0, 8)}`;
    const reply = (
      await requestReply<TriggerReply>(
        env.nc,
        subjects.tenantOp(env.tenant.id, "trigger"),
        { agent_slug: "listener", mode: "voice", user_id: "caller-1", room_name: name },
        { tenant: env.tenant.id, timeoutMs: 20_000 },
      )
    ).body;
    const voice = reply.voice;
    if (voice === undefined) throw new Error("the trigger reply has no voice info");

    // The caller joins first, with an open (silent) microphone; then a colleague joins.
    const first = await join(voice.server_url, voice.user_token, voice.user_identity);
    const firstMic = keepSilent(first.mic);
    const colleague = new AccessToken(lk.livekitApiKey, lk.livekitApiSecret, {
      identity: "user_colleague",
      ttl: "10m",
    });
    colleague.addGrant({
      room: name,
      roomJoin: true,
      canPublish: true,
      canSubscribe: true,
      canPublishData: true,
    });
    const second = await join(voice.server_url, await colleague.toJwt(), "user_colleague");
    let firstLeft = false;
    try {
      for (const user of [first, second]) {
        await waitFor(
          "the agent in the room",
          () => [...user.room.remoteParticipants.values()].find((p) => p.identity === "agent-listener"),
          { timeoutMs: 15_000 },
        );
      }
      await waitFor("the joined event", () =>
        env.events.find((e) => e.type === "joined" && e.jobId === reply.job_id),
      );

      // The second user speaks: transcribed, answered in text and aloud, recorded as theirs.
      env.fixture.queueTranscript("This is the colleague speaking.", "deepgram");
      await speak(second.mic);
      const answer = await waitFor("the answer to the second user", () => second.replies[0], {
        timeoutMs: 20_000,
      });
      expect(
        await waitFor("the second user's transcript", () =>
          second.transcripts.find((t) => t.text === "This is the colleague speaking."),
        ),
      ).toEqual({ from: "user_colleague", text: "This is the colleague speaking." });
      await waitFor("the agent's voice", () => second.agentLoudFrames() > 5, { timeoutMs: 20_000 });
      const rows = await waitFor("the second user's turn recorded", async () => {
        const found = await env.tenant.store.listTranscripts(reply.conversation_id);
        return found.length >= 2 ? found : undefined;
      });
      expect(rows.slice(0, 2).map((r) => [r.role, r.content, r.metadata["participant_identity"]])).toEqual([
        ["user", "This is the colleague speaking.", "user_colleague"],
        ["assistant", answer, "user_colleague"],
      ]);

      // The first user (the one the library's room I/O links) leaves; the second stays.
      await firstMic.stop();
      await first.room.disconnect();
      firstLeft = true;
      await waitFor(
        "the first user gone from the room",
        async () => !(await rooms().listParticipants(name)).some((p) => p.identity === voice.user_identity),
      );
      expect(env.events.some((e) => e.type === "done" && e.jobId === reply.job_id)).toBe(false);

      // The second user speaks again and is still heard and answered.
      env.fixture.queueTranscript("Are you still listening to me?", "deepgram");
      const loudBefore = second.agentLoudFrames();
      await speak(second.mic);
      const again = await waitFor("the second answer", () => second.replies[1], { timeoutMs: 20_000 });
      await waitFor("the agent's voice again", () => second.agentLoudFrames() > loudBefore + 5, {
        timeoutMs: 20_000,
      });
      const all = await waitFor("the second turn recorded", async () => {
        const found = await env.tenant.store.listTranscripts(reply.conversation_id);
        return found.length >= 4 ? found : undefined;
      });
      expect(all.slice(2, 4).map((r) => [r.role, r.content, r.metadata["participant_identity"]])).toEqual([
        ["user", "Are you still listening to me?", "user_colleague"],
        ["assistant", again, "user_colleague"],
      ]);
      // Nothing was published as said by the first user, who never spoke.
      expect(first.transcripts.filter((t) => t.from === voice.user_identity)).toEqual([]);
      expect(second.transcripts.filter((t) => t.from !== "user_colleague")).toEqual([]);
    } finally {
      if (!firstLeft) {
        await firstMic.stop();
        await first.room.disconnect();
      }
      await second.room.disconnect();
    }

    // The last user left: the job is done and the agent leaves.
    await waitFor(
      "the job's done event",
      () => env.events.find((e) => e.type === "done" && e.jobId === reply.job_id),
      { timeoutMs: 15_000 },
    );
    await waitFor(
      "the agent to leave the room",
      async () => !(await rooms().listParticipants(name)).some((p) => p.identity === "agent-listener"),
    );
  });
});
