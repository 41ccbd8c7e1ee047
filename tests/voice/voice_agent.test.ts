// Voice end to end: a real nats-server, the shared dev livekit-server, a real actor host and a
// real agent worker process with the provider fixture. The trigger creates the room and mints the
// user's token from the tenant's LiveKit credentials (platform store); a test participant joins
// with it, talks to the agent over LiveKit text streams, and leaves.
import { randomUUID } from "node:crypto";
import { ParticipantKind, Room } from "@livekit/rtc-node";
import { TokenVerifier } from "livekit-server-sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { TriggerReply } from "../../actors/index.ts";
import { createSubjects, requestReply } from "../../bus/index.ts";
import { waitFor } from "../helpers/deadline.ts";
import {
  countLoudFrames,
  publishMicrophone,
  sharedRoomService,
  speakTone,
  waitForParticipantToLeave,
} from "../helpers/livekit.ts";
import { sharedServices } from "../helpers/services.ts";
import {
  addHelperAgent,
  createPostgresTenant,
  fixtureVoiceSettings,
  helperAgent,
  startVoiceStack,
} from "../helpers/stack.ts";
import type { VoiceStack } from "../helpers/stack.ts";
import { defaultChatReply } from "../fixtures/providers/provider_fixture.ts";
import type { FixtureProvider } from "../fixtures/providers/provider_fixture.ts";

const P = 16;
const subjects = createSubjects({ partitions: P });
const lk = sharedServices();

let env: VoiceStack;

function roomName(what: string): string {
  return `sf-test-${what}-${randomUUID().slice(0, 8)}`;
}

function trigger(tenantId: string, body: Record<string, unknown>): Promise<{ body: TriggerReply }> {
  return requestReply<TriggerReply>(
    env.nc,
    subjects.tenantOp(tenantId, "trigger"),
    { agent_slug: "helper", mode: "voice", user_id: "wp-user-7", ...body },
    { tenant: tenantId, timeoutMs: 20_000 },
  );
}

/**
 * A participant joined with the user's token. On lk.transcription the agent publishes its replies
 * (sender: the agent) and the transcripts of what the user said (sender: the user, on whose behalf
 * it publishes them), as stock LiveKit frontends expect: they are collected apart, the user's final
 * transcripts (`lk.transcription_final: "true"`) apart from the interim ones a streaming STT gives
 * while the user still speaks.
 */
async function joinAsUser(
  reply: TriggerReply,
): Promise<{ room: Room; replies: string[]; transcripts: string[]; interims: string[] }> {
  const voice = reply.voice;
  if (voice === undefined) throw new Error("the trigger reply has no voice info");
  const room = new Room();
  const replies: string[] = [];
  const transcripts: string[] = [];
  const interims: string[] = [];
  room.registerTextStreamHandler("lk.transcription", (reader, from) => {
    const final = reader.info.attributes?.["lk.transcription_final"] !== "false";
    const into = from.identity !== voice.user_identity ? replies : final ? transcripts : interims;
    void reader.readAll().then(
      (text) => into.push(text),
      (err: unknown) => into.push(`read failed: ${String(err)}`),
    );
  });
  await room.connect(voice.server_url, voice.user_token, { autoSubscribe: true, dynacast: false });
  return { room, replies, transcripts, interims };
}

beforeAll(async () => {
  env = await startVoiceStack({ subjects, tenant: "voice" });
  await addHelperAgent(env.tenant.store, env.fixture, { systemPrompt: "You are the Acme helper." });
}, 60_000);

afterAll(async () => {
  await env?.[Symbol.asyncDispose]();
}, 60_000);

/**
 * Waits for the job's `failed` event and checks it is final with `error`, and (given `secret`, a key
 * the provider refused) that the key appears nowhere in it.
 */
async function expectJobFailed(
  jobId: string,
  error: Record<string, unknown>,
  options: { timeoutMs: number; secret?: string },
): Promise<void> {
  const failed = await waitFor(
    "the job's failure",
    () => env.events.find((e) => e.type === "failed" && e.jobId === jobId),
    { timeoutMs: options.timeoutMs },
  );
  expect(failed).toMatchObject({ final: true, error });
  if (options.secret !== undefined) expect(JSON.stringify(failed)).not.toContain(options.secret);
}

/** A recorded turn's `metadata.timings`. */
function turnTimings(metadata: Record<string, unknown> | undefined): Record<string, unknown> {
  const timings = metadata?.["timings"];
  expect(typeof timings).toBe("object");
  return timings as Record<string, unknown>;
}

function expectTimings(timings: Record<string, unknown>, names: string[]): void {
  for (const name of names) {
    expect(typeof timings[name], name).toBe("number");
    expect(timings[name] as number, name).toBeGreaterThanOrEqual(0);
  }
  expect(timings["llm_ms"] as number).toBeGreaterThanOrEqual(timings["llm_first_token_ms"] as number);
}

describe("voice - LiveKit rooms, tokens and the agent in the room", () => {
  it("trigger → room with metadata and a contract user token; the agent joins, answers lk.chat on lk.transcription, records the turn, and leaves after the user", async () => {
    const name = roomName("chat");
    const reply = (await trigger(env.tenant.id, { room_name: name })).body;
    expect(reply).toMatchObject({ worker_id: "w1", agent: { slug: "helper" } });
    const voice = reply.voice;
    expect(voice).toMatchObject({
      room_name: name,
      room_status: "created",
      server_url: lk.livekitUrl,
      user_identity: "user_wp-user-7",
    });
    expect(JSON.stringify(reply)).not.toContain(lk.livekitApiSecret);

    // The user's token: identity, 1 hour, join/publish/subscribe/data in this room only.
    const claims = await new TokenVerifier(lk.livekitApiKey, lk.livekitApiSecret).verify(
      voice?.user_token ?? "",
    );
    expect(claims.sub).toBe("user_wp-user-7");
    expect(claims.video).toEqual({
      room: name,
      roomJoin: true,
      canPublish: true,
      canSubscribe: true,
      canPublishData: true,
    });
    const ttlS = (claims.exp ?? 0) - Date.now() / 1000;
    expect(ttlS).toBeGreaterThan(3600 - 120);
    expect(ttlS).toBeLessThanOrEqual(3600 + 5);

    // The room exists on the server and its metadata names tenant, agent, conversation and job.
    const [info] = await sharedRoomService().listRooms([name]);
    expect(info?.name).toBe(name);
    expect(JSON.parse(info?.metadata ?? "{}")).toEqual({
      tenant: env.tenant.id,
      agent_slug: "helper",
      agent_name: "sidekick-agent",
      conversation_id: reply.conversation_id,
      job_id: reply.job_id,
    });

    const { room, replies } = await joinAsUser(reply);
    let answer = "";
    try {
      const agent = await waitFor(
        "the agent participant",
        () => [...room.remoteParticipants.values()].find((p) => p.identity === "agent-helper"),
        { timeoutMs: 15_000 },
      );
      expect(agent.kind).toBe(ParticipantKind.AGENT);
      await waitFor("the joined event", () =>
        env.events.find((e) => e.type === "joined" && e.jobId === reply.job_id),
      );

      await room.localParticipant?.sendText("What is the capital of France?", { topic: "lk.chat" });
      answer = await waitFor("the agent's reply", () => replies[0], { timeoutMs: 15_000 });
      expect(env.fixture.chatTurns).toHaveLength(1);
      expect(answer).toBe(defaultChatReply(env.fixture.chatTurns[0]!));
      expect(env.fixture.chatTurns[0]?.messages).toEqual([
        { role: "system", content: "You are the Acme helper." },
        { role: "user", content: "What is the capital of France?" },
      ]);
      const rows = await waitFor("the recorded exchange", async () => {
        const found = await env.tenant.store.listTranscripts(reply.conversation_id);
        return found.length === 2 ? found : undefined;
      });
      expect(rows.map((r) => [r.role, r.content, r.source])).toEqual([
        ["user", "What is the capital of France?", "voice"],
        ["assistant", answer, "voice"],
      ]);
      // A typed turn's timings (ms): the LLM call and the reply's first words; nothing was spoken.
      const timings = turnTimings(rows[1]?.metadata);
      expectTimings(timings, ["llm_first_token_ms", "llm_ms", "response_ms"]);
      expect(Object.keys(timings)).not.toContain("stt_ms");
      expect(Object.keys(timings)).not.toContain("tts_first_audio_ms");
    } finally {
      await room.disconnect();
    }

    // The user left: the agent leaves and the job is done.
    await waitFor(
      "the job's done event",
      () => env.events.find((e) => e.type === "done" && e.jobId === reply.job_id),
      { timeoutMs: 15_000 },
    );
    await waitForParticipantToLeave("the agent to leave the room", name, "agent-helper");

    // The room is still there: a new session in it is "existing" and carries the first exchange.
    const again = (await trigger(env.tenant.id, { room_name: name, conversation_id: reply.conversation_id }))
      .body;
    expect(again.voice?.room_status).toBe("existing");
    const second = await joinAsUser(again);
    try {
      await waitFor(
        "the agent participant again",
        () => [...second.room.remoteParticipants.values()].find((p) => p.identity === "agent-helper"),
        { timeoutMs: 15_000 },
      );
      await second.room.localParticipant?.sendText("And of Italy?", { topic: "lk.chat" });
      await waitFor("the second reply", () => second.replies[0], { timeoutMs: 15_000 });
      expect(env.fixture.chatTurns[1]?.messages.map((m) => m.content)).toEqual([
        "You are the Acme helper.",
        "What is the capital of France?",
        answer,
        "And of Italy?",
      ]);
    } finally {
      await second.room.disconnect();
    }
    await waitFor(
      "the second job's done event",
      () => env.events.find((e) => e.type === "done" && e.jobId === again.job_id),
      { timeoutMs: 15_000 },
    );
    for (const line of [...env.host.lines, ...env.worker.lines]) {
      expect(line).not.toContain(lk.livekitApiSecret);
    }
  });

  it("missing room_name → SF_ERR_INVALID_ARGUMENT naming the field", async () => {
    await expect(trigger(env.tenant.id, {})).rejects.toMatchObject({
      code: "SF_ERR_INVALID_ARGUMENT",
      details: { field: "room_name" },
    });
  });

  it("a tenant without LiveKit credentials → SF_ERR_LIVEKIT_NOT_CONFIGURED naming what is missing", async () => {
    const other = await createPostgresTenant(env.platform, {
      slug: `nolk-${env.server.port}`,
      schema: `nolk_${env.server.port}`,
    });
    try {
      await other.store.createAgent(helperAgent());
      await expect(trigger(other.id, { room_name: roomName("nolk") })).rejects.toMatchObject({
        code: "SF_ERR_LIVEKIT_NOT_CONFIGURED",
        details: { missing: "livekit_credentials" },
      });
    } finally {
      await other.store.close();
    }
  });

  it("an agent with voice chat disabled → SF_ERR_MODE_DISABLED", async () => {
    await env.tenant.store.createAgent({
      slug: "texty",
      name: "Texty",
      voiceChatEnabled: false,
      voiceSettings: { llm_provider: "groq", llm_model: "llama-3.3-70b-versatile" },
    });
    await expect(
      trigger(env.tenant.id, { agent_slug: "texty", room_name: roomName("off") }),
    ).rejects.toMatchObject({ code: "SF_ERR_MODE_DISABLED" });
  });

  it("a misconfigured provider ends the voice job with an error naming it; no provider is called", async () => {
    await env.tenant.store.createAgent({
      slug: "keyless",
      name: "Keyless",
      voiceSettings: { llm_provider: "openai", llm_model: "gpt-4o-mini" },
    });
    const calls = env.fixture.calls.length;
    const reply = (await trigger(env.tenant.id, { agent_slug: "keyless", room_name: roomName("nokey") }))
      .body;
    await expectJobFailed(
      reply.job_id,
      {
        code: "SF_ERR_PROVIDER_MISCONFIGURED",
        details: { kind: "llm", provider: "openai", missing: "api_key" },
      },
      { timeoutMs: 15_000 },
    );
    expect(env.fixture.calls.length).toBe(calls);
  });

  /**
   * A spoken exchange: the user's microphone (800 ms of tone between silences, in 20 ms frames at
   * real time) → VAD → STT → LLM → TTS → the agent's audio track; the transcript recorded.
   */
  async function spokenExchange(
    slug: string,
    voiceSettings: Record<string, string>,
    expectCalls: { stt: FixtureProvider; tts: FixtureProvider },
  ): Promise<{ timings: Record<string, unknown>; interims: string[] }> {
    await env.tenant.store.createAgent({ slug, name: slug, systemPrompt: "You speak.", voiceSettings });
    env.fixture.queueTranscript("Tell me something nice.", expectCalls.stt);
    const sttCalls = env.fixture.callsTo(expectCalls.stt, "stt").length;
    const ttsCalls = env.fixture.callsTo(expectCalls.tts, "tts").length;
    const reply = (await trigger(env.tenant.id, { agent_slug: slug, room_name: roomName("speech") })).body;
    const { room, replies, transcripts, interims } = await joinAsUser(reply);
    let timings: Record<string, unknown> = {};
    const loudFrames = countLoudFrames(
      room,
      (from) => from === `agent-${slug}`,
      (error) => replies.push(error),
    );
    try {
      await waitFor(
        "the speaking agent",
        () => [...room.remoteParticipants.values()].find((p) => p.identity === `agent-${slug}`),
        { timeoutMs: 15_000 },
      );
      const source = await publishMicrophone(room);
      await speakTone(source);
      const answer = await waitFor("the spoken exchange's text", () => replies[0], { timeoutMs: 20_000 });
      // What the user said, as the agent transcribed it, published on the user's behalf.
      expect(await waitFor("the user's transcript", () => transcripts[0])).toBe("Tell me something nice.");
      await waitFor("the agent's voice", () => loudFrames() > 5, { timeoutMs: 20_000 });
      expect(env.fixture.callsTo(expectCalls.stt, "stt").length).toBeGreaterThan(sttCalls);
      expect(env.fixture.callsTo(expectCalls.tts, "tts").length).toBeGreaterThan(ttsCalls);
      const rows = await waitFor("the spoken exchange recorded", async () => {
        const found = await env.tenant.store.listTranscripts(reply.conversation_id);
        return found.length >= 2 ? found : undefined;
      });
      expect(rows.slice(0, 2).map((r) => [r.role, r.content, r.source])).toEqual([
        ["user", "Tell me something nice.", "voice"],
        ["assistant", answer, "voice"],
      ]);
      // A spoken turn's timings (ms): end of speech → transcript, the LLM call, the first synthesized
      // audio, and end of speech → the agent's first audio.
      timings = turnTimings(rows[1]?.metadata);
      expectTimings(timings, ["stt_ms", "llm_first_token_ms", "llm_ms", "tts_first_audio_ms", "response_ms"]);
      await source.close();
    } finally {
      await room.disconnect();
    }
    await waitFor(
      "the speech job's done event",
      () => env.events.find((e) => e.type === "done" && e.jobId === reply.job_id),
      { timeoutMs: 15_000 },
    );
    return { timings, interims };
  }

  it("speech - the user's microphone → VAD → fixture STT → LLM → fixture TTS → the agent's audio track", async () => {
    await env.tenant.store.setProviderKey("deepgram", env.fixture.keys.deepgram);
    await env.tenant.store.setProviderKey("elevenlabs", env.fixture.keys.elevenlabs);
    const sttBefore = env.fixture.callsTo("deepgram", "stt").length;
    const liveBefore = env.fixture.liveSessions.length;
    const { timings, interims } = await spokenExchange(
      "speaker",
      {
        llm_provider: "groq",
        llm_model: "llama-3.3-70b-versatile",
        stt_provider: "deepgram",
        tts_provider: "elevenlabs",
        voice_id: "voice-1",
      },
      { stt: "deepgram", tts: "elevenlabs" },
    );
    // Deepgram transcribes live: the microphone was streamed over its WebSocket as the user spoke,
    // and no utterance was uploaded after the end of speech (that would be a POST /v1/listen).
    const calls = env.fixture.callsTo("deepgram", "stt").slice(sttBefore);
    expect(calls.length).toBeGreaterThan(0);
    for (const call of calls) {
      expect(call).toMatchObject({
        method: "GET",
        path: "/v1/listen",
        status: 101,
        authorized: true,
        query: { encoding: "linear16", sample_rate: "16000", model: "nova-3", interim_results: "true" },
      });
    }
    const sessions = await waitFor("the live session's end", () =>
      env.fixture.liveSessions.length > liveBefore ? env.fixture.liveSessions.slice(liveBefore) : undefined,
    );
    expect(sessions[0]?.audioBytes).toBeGreaterThan(0);
    expect(sessions[0]?.results).toBeGreaterThan(0);
    // Heard while the user still spoke: interim transcripts, published on the user's behalf.
    expect(interims.length).toBeGreaterThan(0);
    for (const interim of interims) expect("Tell me something nice.".startsWith(interim)).toBe(true);
    // The live final transcript comes after the provider's endpointing silence, so the time from
    // the end of speech to it is never 0.
    expect(timings["stt_ms"]).toBeGreaterThan(0);
  });

  it("speech - OpenAI's audio API: Whisper-style transcriptions in, 24 kHz speech out on the agent's track", async () => {
    await env.tenant.store.setProviderKey("openai", env.fixture.keys.openai);
    await spokenExchange(
      "whisperer",
      {
        llm_provider: "openai",
        llm_model: "gpt-4o-mini",
        stt_provider: "openai",
        tts_provider: "openai",
        voice_id: "alloy",
      },
      { stt: "openai", tts: "openai" },
    );
    const [speech] = env.fixture.callsTo("openai", "tts");
    expect(speech?.body).toMatchObject({ response_format: "pcm", voice: "alloy" });
  });

  it("a Deepgram key refused at the live socket's handshake ends the job with its error, naming deepgram", async () => {
    await env.tenant.store.createAgent({
      slug: "deaf",
      name: "Deaf",
      voiceSettings: fixtureVoiceSettings(),
    });
    await env.tenant.store.setProviderKey("elevenlabs", env.fixture.keys.elevenlabs);
    // Resolving succeeds; the live socket the session opens for the user's speech gets a 401.
    await env.tenant.store.setProviderKey("deepgram", "dg_revoked_00000000000000000000");
    const refusedBefore = env.fixture
      .callsTo("deepgram", "stt")
      .filter((c) => c.status === 401 && c.method === "GET").length;
    const reply = (await trigger(env.tenant.id, { agent_slug: "deaf", room_name: roomName("deaf") })).body;
    const { room } = await joinAsUser(reply);
    try {
      await expectJobFailed(
        reply.job_id,
        { code: "SF_ERR_PROVIDER_AUTH", details: { kind: "stt", provider: "deepgram", status: 401 } },
        { timeoutMs: 20_000, secret: "dg_revoked_00000000000000000000" },
      );
      // Refused at the live API's handshake, not at an upload.
      const refused = env.fixture
        .callsTo("deepgram", "stt")
        .filter((c) => c.status === 401 && c.method === "GET");
      expect(refused.length).toBeGreaterThan(refusedBefore);
      expect(env.worker.running).toBe(true);
    } finally {
      await room.disconnect();
      await env.tenant.store.setProviderKey("deepgram", env.fixture.keys.deepgram);
    }
  });

  it("a provider that refuses during the session ends the job with its error, naming it", async () => {
    await env.tenant.store.createAgent({
      slug: "refused",
      name: "Refused",
      voiceSettings: {
        llm_provider: "groq",
        llm_model: "llama-3.3-70b-versatile",
        stt_provider: "cartesia",
        tts_provider: "cartesia",
        voice_id: "voice-2",
      },
    });
    // A key the provider does not accept: resolving succeeds, the first synthesis gets a 401.
    await env.tenant.store.setProviderKey("cartesia", "sk_car_revoked_0000000000");
    const reply = (await trigger(env.tenant.id, { agent_slug: "refused", room_name: roomName("refused") }))
      .body;
    const { room } = await joinAsUser(reply);
    try {
      await waitFor("the joined event", () =>
        env.events.find((e) => e.type === "joined" && e.jobId === reply.job_id),
      );
      await room.localParticipant?.sendText("Say something.", { topic: "lk.chat" });
      await expectJobFailed(
        reply.job_id,
        { code: "SF_ERR_PROVIDER_AUTH", details: { kind: "tts", provider: "cartesia", status: 401 } },
        { timeoutMs: 20_000, secret: "sk_car_revoked_0000000000" },
      );
      // The worker process, which hosts every other session too, is still up.
      await new Promise((resolve) => setTimeout(resolve, 500));
      expect(env.worker.running).toBe(true);
      await waitForParticipantToLeave(
        "the agent to leave the room",
        reply.voice?.room_name ?? "",
        "agent-refused",
      );
    } finally {
      await room.disconnect();
    }
  });
});
