// STT and TTS clients against the provider fixture: the providers' REST formats (Deepgram,
// Cartesia, ElevenLabs, and OpenAI's audio API, also Groq's Whisper), PCM out of TTS, transcripts
// out of STT, and their errors.
import { describe, expect, it } from "vitest";
import {
  AgentWorkerErrorCodes,
  CARTESIA_VERSION,
  pcmDurationMs,
  resolveProviders,
} from "../../agent-worker/index.ts";
import type { PcmAudio, SttClient, TtsClient } from "../../agent-worker/index.ts";
import { readWav, sineTonePcm, speechDurationMs } from "../fixtures/providers/audio.ts";
import { digest } from "../fixtures/providers/provider_fixture.ts";
import type { ProviderFixture } from "../fixtures/providers/provider_fixture.ts";
import { expectNoSecret, rejection } from "./provider_test_kit.ts";
import { useProviderFixture } from "../helpers/provider_fixture_hooks.ts";

let fixture: ProviderFixture;

useProviderFixture((f) => (fixture = f));

const VOICE = "694f9389-aac1-45b6-b726-9d9369183238";

function tts(provider: "elevenlabs" | "cartesia" | "openai", key?: string, voice = VOICE): TtsClient {
  return resolveProviders(
    { kinds: ["tts"], voiceSettings: { tts_provider: provider, voice_id: voice } },
    { [provider]: key ?? fixture.keys[provider] },
    fixture.endpoints(),
  ).tts;
}

function stt(provider: "deepgram" | "cartesia" | "openai" | "groq"): SttClient {
  return resolveProviders(
    { kinds: ["stt"], voiceSettings: { stt_provider: provider } },
    { ...fixture.keys },
    fixture.endpoints(),
  ).stt;
}

/** One second of 16 kHz mono speech stand-in. */
const utterance: PcmAudio = { pcm: sineTonePcm(1_000, 16_000, 220), sampleRate: 16_000, channels: 1 };

describe("tts clients", () => {
  const text = "Your parcel left the warehouse this morning.";

  it("tts - ElevenLabs returns 16 kHz s16le PCM of plausible length", async () => {
    const audio = await tts("elevenlabs").synthesize(text);
    expect(audio.sampleRate).toBe(16_000);
    expect(audio.channels).toBe(1);
    expect(audio.pcm.byteLength).toBe(Math.round((speechDurationMs(text) / 1000) * 16_000) * 2);
    expect(pcmDurationMs(audio)).toBeGreaterThan(1_000);
    // Real audio, not silence.
    const samples = new Int16Array(audio.pcm.buffer, audio.pcm.byteOffset, audio.pcm.byteLength / 2);
    expect(Math.max(...samples.slice(0, 2_000))).toBeGreaterThan(5_000);
    const [call] = fixture.callsTo("elevenlabs", "tts");
    expect(call?.path).toBe(`/v1/text-to-speech/${VOICE}/stream`);
    expect(call?.query).toEqual({ output_format: "pcm_16000" });
    expect(call?.body).toEqual({ text, model_id: "eleven_turbo_v2_5" });
    expect(call?.headers["xi-api-key"]).toBeUndefined();
    expect(fixture.violations).toEqual([]);
  });

  it("tts - Cartesia /tts/bytes with the version header, raw pcm_s16le at 16 kHz", async () => {
    const audio = await tts("cartesia").synthesize(text);
    expect(pcmDurationMs(audio)).toBeCloseTo(speechDurationMs(text), 0);
    const [call] = fixture.callsTo("cartesia", "tts");
    expect(call?.path).toBe("/tts/bytes");
    expect(call?.headers["cartesia-version"]).toBe(CARTESIA_VERSION);
    expect(call?.body).toEqual({
      model_id: "sonic-3",
      transcript: text,
      voice: { mode: "id", id: VOICE },
      output_format: { container: "raw", encoding: "pcm_s16le", sample_rate: 16_000 },
      language: "en",
    });
  });

  it("tts - OpenAI /v1/audio/speech asks for pcm and returns its 24 kHz mono audio", async () => {
    const client = tts("openai", undefined, "alloy");
    expect(client.sampleRate).toBe(24_000);
    const audio = await client.synthesize(text);
    expect(audio.sampleRate).toBe(24_000);
    expect(audio.channels).toBe(1);
    expect(pcmDurationMs(audio)).toBeCloseTo(speechDurationMs(text), 0);
    const [call] = fixture.callsTo("openai", "tts");
    expect(call?.path).toBe("/v1/audio/speech");
    expect(call?.body).toEqual({
      model: "gpt-4o-mini-tts",
      input: text,
      voice: "alloy",
      response_format: "pcm",
    });
    expect(call?.headers["authorization"]).toBeUndefined();
    expect(fixture.violations).toEqual([]);
  });

  it("tts - OpenAI refuses an unknown voice: REQUEST_REJECTED, not retryable, naming the provider", async () => {
    const err = await rejection(
      tts("openai", undefined, "robot").synthesize(text),
      AgentWorkerErrorCodes.PROVIDER_REQUEST_REJECTED,
    );
    expect(err.retryable).toBe(false);
    expect(err.details).toMatchObject({ provider: "openai", kind: "tts", status: 400 });
    expect(String(err.details?.["excerpt"])).toContain("voice");
  });

  it("tts - ElevenLabs and Cartesia say 16 kHz", () => {
    expect(tts("elevenlabs").sampleRate).toBe(16_000);
    expect(tts("cartesia").sampleRate).toBe(16_000);
  });

  it("tts - a longer text gives longer audio", async () => {
    const client = tts("cartesia");
    const short = await client.synthesize("Hi.");
    const long = await client.synthesize("Hi. ".repeat(30));
    expect(long.pcm.byteLength).toBeGreaterThan(short.pcm.byteLength * 10);
  });

  it("tts - a refused key is AUTH with the provider's 401 body excerpt and no key", async () => {
    const key = "xi-wrong-key-0123456789";
    const err = await rejection(tts("elevenlabs", key).synthesize(text), AgentWorkerErrorCodes.PROVIDER_AUTH);
    expect(err.details).toMatchObject({ provider: "elevenlabs", kind: "tts", status: 401 });
    expect(String(err.details?.["excerpt"])).toContain("invalid_api_key");
    expectNoSecret(err, key);
  });

  it("tts - 5xx is UNAVAILABLE and retryable", async () => {
    fixture.addFault({
      provider: "cartesia",
      kind: "tts",
      times: 1,
      fault: { type: "server_error", status: 502 },
    });
    const err = await rejection(tts("cartesia").synthesize(text), AgentWorkerErrorCodes.PROVIDER_UNAVAILABLE);
    expect(err.retryable).toBe(true);
  });
});

describe("tts streaming", () => {
  const text = "Your parcel left the warehouse this morning and should arrive tomorrow.";
  const RATES = { elevenlabs: 16_000, cartesia: 16_000, openai: 24_000 } as const;
  const VOICES = { elevenlabs: VOICE, cartesia: VOICE, openai: "alloy" } as const;

  function client(provider: keyof typeof RATES): TtsClient {
    return tts(provider, undefined, VOICES[provider]);
  }

  it.each(["elevenlabs", "cartesia", "openai"] as const)(
    "tts stream - %s: audio arrives while the provider still holds the rest, whole samples, all of it",
    async (provider) => {
      // Odd chunks split samples across network reads; the stream holds after its first chunk.
      fixture.setLatency({ audioChunkBytes: 1_001 });
      const release = fixture.holdAudio(1);
      const ended = fixture.nextAudioEnd();
      const stream = client(provider).stream(text);
      const first = await stream.next();
      // The provider has sent one chunk and waits: the first audio came before its last byte.
      expect(first.done).toBe(false);
      expect(fixture.audioStreams).toEqual([]);
      const chunks = [first.value as Uint8Array];
      release();
      for await (const chunk of stream) chunks.push(chunk);
      for (const chunk of chunks) expect(chunk.byteLength % 2).toBe(0);
      expect(chunks[0]?.byteLength).toBeLessThanOrEqual(1_000);
      expect(chunks.length).toBeGreaterThan(5);
      const expected = sineTonePcm(speechDurationMs(text), RATES[provider]);
      expect(digest(Buffer.concat(chunks))).toBe(digest(expected));
      expect(Buffer.concat(chunks).byteLength).toBe(expected.byteLength);
      expect(await ended).toMatchObject({ provider, outcome: "complete", sentBytes: expected.byteLength });
      expect(fixture.violations).toEqual([]);
    },
  );

  it("tts stream - aborting mid-stream fails with ABORTED and closes the provider's connection", async () => {
    const release = fixture.holdAudio(1);
    const ended = fixture.nextAudioEnd();
    const abort = new AbortController();
    const stream = client("elevenlabs").stream(text, { signal: abort.signal });
    expect((await stream.next()).done).toBe(false);
    abort.abort();
    // The fixture sees the connection close while it still had audio to send.
    const end = await ended;
    expect(end).toMatchObject({ provider: "elevenlabs", outcome: "client_closed", chunks: 1 });
    expect(end.sentBytes).toBeLessThan(end.totalBytes);
    const err = await rejection(stream.next(), AgentWorkerErrorCodes.PROVIDER_ABORTED);
    expect(err.details).toMatchObject({ provider: "elevenlabs", kind: "tts" });
    release();
  });

  it("tts stream - a reader that stops early closes the provider's connection", async () => {
    const release = fixture.holdAudio(1);
    const ended = fixture.nextAudioEnd();
    const stream = client("cartesia").stream(text);
    expect((await stream.next()).done).toBe(false);
    await stream.return(undefined);
    expect(await ended).toMatchObject({ provider: "cartesia", outcome: "client_closed", chunks: 1 });
    release();
  });

  it("tts stream - a stream cut mid-way fails with STREAM_INTERRUPTED naming the provider", async () => {
    fixture.setLatency({ audioChunkBytes: 2_000 });
    fixture.addFault({
      provider: "cartesia",
      kind: "tts",
      times: 1,
      fault: { type: "cut_audio", afterBytes: 5_001 },
    });
    const received: Uint8Array[] = [];
    const consume = async (): Promise<void> => {
      for await (const chunk of client("cartesia").stream(text)) received.push(chunk);
    };
    const err = await rejection(consume(), AgentWorkerErrorCodes.PROVIDER_STREAM_INTERRUPTED);
    // What arrived before the cut was delivered (the odd last byte never completed a sample).
    expect(Buffer.concat(received).byteLength).toBe(5_000);
    expect(err.message).toContain("cartesia tts");
    expect(err.retryable).toBe(false);
    expect(err.details).toMatchObject({ provider: "cartesia", kind: "tts", delivered: 5_000 });
    expect(fixture.audioStreams).toMatchObject([{ provider: "cartesia", outcome: "cut", sentBytes: 5_001 }]);
  });

  it("tts stream - synthesize of a stream cut mid-way fails, never returns the partial audio", async () => {
    fixture.addFault({
      provider: "openai",
      kind: "tts",
      times: 1,
      fault: { type: "cut_audio", afterBytes: 8_192 },
    });
    const err = await rejection(
      client("openai").synthesize(text),
      AgentWorkerErrorCodes.PROVIDER_STREAM_INTERRUPTED,
    );
    expect(err.details).toMatchObject({ provider: "openai", kind: "tts" });
  });
});

describe("stt clients", () => {
  it("stt - Deepgram returns the scripted transcript from its JSON shape", async () => {
    fixture.queueTranscript("Where is my parcel?", "deepgram");
    const transcript = await stt("deepgram").transcribe(utterance);
    expect(transcript.text).toBe("Where is my parcel?");
    expect(transcript.confidence).toBeGreaterThan(0.5);
    expect(transcript.durationMs).toBe(1_000);
    const [call] = fixture.callsTo("deepgram", "stt");
    expect(call?.path).toBe("/v1/listen");
    expect(call?.query).toMatchObject({ model: "nova-3", smart_format: "true" });
    expect(call?.headers["content-type"]).toBe("audio/wav");
    expect(call?.body).toMatchObject({ contentType: "audio/wav", bytes: 44 + utterance.pcm.byteLength });
  });

  it("stt - without a script the transcript is deterministic per audio", async () => {
    const client = stt("deepgram");
    const a = await client.transcribe(utterance);
    const b = await client.transcribe(utterance);
    expect(a.text).toBe(b.text);
    expect(a.text).toMatch(/^utterance [0-9a-f]{8}$/);
    const other = await client.transcribe({ ...utterance, pcm: sineTonePcm(500, 16_000, 330) });
    expect(other.text).not.toBe(a.text);
  });

  it("stt - Cartesia /stt takes a multipart WAV file with model ink-whisper", async () => {
    fixture.queueTranscript("Cancel my order.", "cartesia");
    const transcript = await stt("cartesia").transcribe(utterance, { language: "en" });
    expect(transcript).toEqual({ text: "Cancel my order.", durationMs: 1_000 });
    const [call] = fixture.callsTo("cartesia", "stt");
    expect(call?.path).toBe("/stt");
    expect(call?.headers["cartesia-version"]).toBe(CARTESIA_VERSION);
    const body = call?.body as { fields: Record<string, string>; file: { type: string; data: Buffer } };
    expect(body.fields).toEqual({ model: "ink-whisper", language: "en" });
    expect(body.file.type).toBe("audio/wav");
    expect(readWav(body.file.data)).toMatchObject({ sampleRate: 16_000, channels: 1, bitsPerSample: 16 });
    expect(digest(body.file.data.subarray(44))).toBe(digest(Buffer.from(utterance.pcm)));
  });

  it("stt - 429 is RATE_LIMITED with the wait the provider asked for", async () => {
    fixture.addFault({ provider: "deepgram", times: 1, fault: { type: "rate_limit", retryAfterSeconds: 3 } });
    const err = await rejection(
      stt("deepgram").transcribe(utterance),
      AgentWorkerErrorCodes.PROVIDER_RATE_LIMITED,
    );
    expect(err.details).toMatchObject({ provider: "deepgram", kind: "stt", retryAfterMs: 3_000 });
  });

  it("stt - OpenAI /v1/audio/transcriptions takes a multipart WAV with model, language and json", async () => {
    fixture.queueTranscript("Track my order.", "openai");
    const transcript = await stt("openai").transcribe(utterance, { language: "de" });
    expect(transcript).toEqual({ text: "Track my order.", durationMs: 1_000 });
    const [call] = fixture.callsTo("openai", "stt");
    expect(call?.path).toBe("/v1/audio/transcriptions");
    const body = call?.body as { fields: Record<string, string>; file: { type: string; data: Buffer } };
    expect(body.fields).toEqual({ model: "gpt-4o-mini-transcribe", language: "de", response_format: "json" });
    expect(body.file.type).toBe("audio/wav");
    expect(readWav(body.file.data)).toMatchObject({ sampleRate: 16_000, channels: 1, durationMs: 1_000 });
    expect(fixture.violations).toEqual([]);
  });

  it("stt - Groq's Whisper speaks the same API at its own base URL, with its key", async () => {
    fixture.queueTranscript("Hola.", "groq");
    expect((await stt("groq").transcribe(utterance)).text).toBe("Hola.");
    const [call] = fixture.callsTo("groq", "stt");
    expect(call?.path).toBe("/openai/v1/audio/transcriptions");
    expect((call?.body as { fields: Record<string, string> }).fields["model"]).toBe("whisper-large-v3-turbo");
  });

  it("stt - OpenAI: a refused key is AUTH without the key; 5xx is retryable", async () => {
    const key = "sk-wrong-key-0123456789";
    const client = resolveProviders(
      { kinds: ["stt"], voiceSettings: { stt_provider: "openai" } },
      { openai: key },
      fixture.endpoints(),
    ).stt;
    const err = await rejection(client.transcribe(utterance), AgentWorkerErrorCodes.PROVIDER_AUTH);
    expect(err.details).toMatchObject({ provider: "openai", kind: "stt", status: 401 });
    expectNoSecret(err, key);
    fixture.addFault({
      provider: "openai",
      kind: "stt",
      times: 1,
      fault: { type: "server_error", status: 503 },
    });
    const down = await rejection(
      stt("openai").transcribe(utterance),
      AgentWorkerErrorCodes.PROVIDER_UNAVAILABLE,
    );
    expect(down.retryable).toBe(true);
  });
});
