// The provider fixture itself, over raw HTTP: each provider's auth check and 401 body, no secret
// in what it records, the SSE wire format of a streamed chat completion, and OpenAI's audio API
// (transcriptions, also Groq's Whisper; speech as real PCM/WAV). The client tests
// rely on these behaviours, so they are pinned here independently of the product code.
import { describe, expect, it } from "vitest";
import { readWav, sineTonePcm, speechDurationMs, wavFile } from "../fixtures/providers/audio.ts";
import { FIXTURE_PROVIDERS, PROVIDER_WIRE } from "../fixtures/providers/wire_formats.ts";
import type { FixtureProvider } from "../fixtures/providers/wire_formats.ts";
import type { ProviderFixture } from "../fixtures/providers/provider_fixture.ts";
import { useProviderFixture } from "../helpers/provider_fixture_hooks.ts";

let fixture: ProviderFixture;

useProviderFixture((f) => (fixture = f));

/** A request each provider serves, with its own way of carrying `key`. */
function probe(provider: FixtureProvider, key: string): { path: string; init: RequestInit } {
  const json = (body: unknown, headers: Record<string, string>): RequestInit => ({
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify(body),
  });
  switch (provider) {
    case "deepgram":
      return {
        path: "/listen?model=nova-3",
        init: {
          method: "POST",
          headers: { authorization: `Token ${key}`, "content-type": "audio/wav" },
          body: Buffer.alloc(3200),
        },
      };
    case "elevenlabs":
      return {
        path: "/text-to-speech/v1?output_format=pcm_16000",
        init: json({ text: "hi", model_id: "eleven_turbo_v2_5" }, { "xi-api-key": key }),
      };
    case "cartesia":
      return {
        path: "/tts/bytes",
        init: json(
          {
            model_id: "sonic-3",
            transcript: "hi",
            voice: { mode: "id", id: "v" },
            output_format: { container: "raw", encoding: "pcm_s16le", sample_rate: 16000 },
          },
          { "x-api-key": key, "cartesia-version": "2025-04-16" },
        ),
      };
    case "jina":
      return {
        path: "/embeddings",
        init: json({ model: "jina-embeddings-v3", input: ["hi"] }, { authorization: `Bearer ${key}` }),
      };
    default:
      return {
        path: PROVIDER_WIRE[provider].kinds.includes("chat") ? "/chat/completions" : "/embeddings",
        init: json(
          { model: "m", messages: [{ role: "user", content: "hi" }], input: ["hi"] },
          { authorization: `Bearer ${key}` },
        ),
      };
  }
}

describe("provider fixture", () => {
  it.each(FIXTURE_PROVIDERS)(
    "fixture - %s refuses a wrong key with a 401 and accepts its own",
    async (provider) => {
      const wrong = `wrong-${provider}-secret-0000`;
      const bad = probe(provider, wrong);
      const refused = await fetch(`${fixture.endpoints()[provider]}${bad.path}`, bad.init);
      expect(refused.status).toBe(401);
      const body = await refused.json();
      expect(JSON.stringify(body)).not.toContain(wrong);
      const good = probe(provider, fixture.keys[provider]);
      const served = await fetch(`${fixture.endpoints()[provider]}${good.path}`, good.init);
      expect(served.status).toBe(200);
      await served.arrayBuffer();
      expect(fixture.calls.map((c) => [c.provider, c.authorized])).toEqual([
        [provider, false],
        [provider, true],
      ]);
      const recorded = JSON.stringify(fixture.calls.map((c) => c.headers));
      expect(recorded).not.toContain(wrong);
      expect(recorded).not.toContain(fixture.keys[provider]);
    },
  );

  it("fixture - the 401 bodies are the providers' own shapes", async () => {
    const bodyOf = async (provider: FixtureProvider): Promise<unknown> => {
      const { path, init } = probe(provider, "nope-nope-nope");
      return (await fetch(`${fixture.endpoints()[provider]}${path}`, init)).json();
    };
    expect(await bodyOf("groq")).toEqual({
      error: { message: "Invalid API Key", type: "invalid_request_error", code: "invalid_api_key" },
    });
    expect(await bodyOf("deepgram")).toMatchObject({
      err_code: "INVALID_AUTH",
      err_msg: "Invalid credentials.",
    });
    expect(await bodyOf("elevenlabs")).toEqual({
      detail: { status: "invalid_api_key", message: "Invalid API key" },
    });
    expect(await bodyOf("siliconflow")).toBe("Invalid token");
  });

  it("fixture - a streamed chat completion is SSE chunks ending in data: [DONE]", async () => {
    fixture.queueChatReply("one two three");
    const response = await fetch(`${fixture.endpoints().openai}/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${fixture.keys.openai}`, "content-type": "application/json" },
      body: JSON.stringify({
        model: "gpt-4o-mini",
        stream: true,
        messages: [{ role: "user", content: "count" }],
      }),
    });
    expect(response.headers.get("content-type")).toBe("text/event-stream");
    const text = await response.text();
    const events = text.split("\n\n").filter((e) => e !== "");
    expect(events.every((e) => e.startsWith("data: "))).toBe(true);
    expect(events.at(-1)).toBe("data: [DONE]");
    const chunks = events.slice(0, -1).map(
      (e) =>
        JSON.parse(e.slice(6)) as {
          object: string;
          choices: Array<{ delta: { content?: string }; finish_reason: string | null }>;
        },
    );
    expect(chunks.every((c) => c.object === "chat.completion.chunk")).toBe(true);
    expect(chunks.map((c) => c.choices[0]?.delta.content ?? "").join("")).toBe("one two three");
    expect(chunks.at(-1)?.choices[0]?.finish_reason).toBe("stop");
  });

  it("fixture - faults apply the given number of times, in order", async () => {
    fixture.addFault({ provider: "jina", times: 2, fault: { type: "rate_limit", retryAfterSeconds: 7 } });
    const statuses: Array<[number, string | null]> = [];
    for (let i = 0; i < 3; i += 1) {
      const { path, init } = probe("jina", fixture.keys.jina);
      const response = await fetch(`${fixture.endpoints().jina}${path}`, init);
      statuses.push([response.status, response.headers.get("retry-after")]);
      await response.arrayBuffer();
    }
    expect(statuses).toEqual([
      [429, "7"],
      [429, "7"],
      [200, null],
    ]);
  });
});

/** A multipart transcription request, as OpenAI's SDKs send it. */
function transcriptionForm(fields: Record<string, string>, file: Buffer | null): FormData {
  const form = new FormData();
  if (file !== null) form.append("file", new Blob([file], { type: "audio/wav" }), "speech.wav");
  for (const [name, value] of Object.entries(fields)) form.append(name, value);
  return form;
}

/** One second of 16 kHz mono "speech" as a WAV file. */
const second = wavFile(sineTonePcm(1_000, 16_000, 220), 16_000);

describe("provider fixture - OpenAI audio API", () => {
  const transcribe = (
    provider: "openai" | "groq",
    fields: Record<string, string>,
    file: Buffer | null = second,
    key: string = fixture.keys[provider],
  ): Promise<Response> =>
    fetch(`${fixture.endpoints()[provider]}/audio/transcriptions`, {
      method: "POST",
      headers: { authorization: `Bearer ${key}` },
      body: transcriptionForm(fields, file),
    });
  const speak = (body: Record<string, unknown>, key: string = fixture.keys.openai): Promise<Response> =>
    fetch(`${fixture.endpoints().openai}/audio/speech`, {
      method: "POST",
      headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
      body: JSON.stringify(body),
    });

  it("fixture - /v1/audio/transcriptions: multipart file + model answers { text }, recorded as stt", async () => {
    fixture.queueTranscript("Where is my parcel?", "openai");
    const response = await transcribe("openai", { model: "gpt-4o-mini-transcribe", language: "en" });
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toContain("application/json");
    expect(await response.json()).toEqual({
      text: "Where is my parcel?",
      usage: { type: "duration", seconds: 1 },
    });
    const [call] = fixture.callsTo("openai", "stt");
    expect(call?.path).toBe("/v1/audio/transcriptions");
    const body = call?.body as { fields: Record<string, string>; file: { name: string; data: Buffer } };
    expect(body.fields).toEqual({ model: "gpt-4o-mini-transcribe", language: "en" });
    expect(body.file.name).toBe("speech.wav");
    expect(readWav(body.file.data)).toMatchObject({ sampleRate: 16_000, durationMs: 1_000 });
  });

  it("fixture - response_format text answers the bare transcript; verbose_json adds duration and segments", async () => {
    fixture.queueTranscript("Cancel my order.");
    const text = await transcribe("openai", { model: "whisper-1", response_format: "text" });
    expect(text.headers.get("content-type")).toContain("text/plain");
    expect(await text.text()).toBe("Cancel my order.\n");
    const verbose = await transcribe("openai", { model: "whisper-1", response_format: "verbose_json" });
    const body = (await verbose.json()) as { text: string; duration: number; segments: unknown[] };
    expect(body).toMatchObject({ task: "transcribe", language: "english", duration: 1 });
    expect(body.text).toMatch(/^utterance [0-9a-f]{8}$/);
    expect(body.segments).toHaveLength(1);
    const srt = await transcribe("openai", { model: "whisper-1", response_format: "srt" });
    expect(await srt.text()).toMatch(/^1\n00:00:00,000 --> 00:00:01,000\nutterance [0-9a-f]{8}\n/);
  });

  it("fixture - transcription errors are OpenAI's 400 shape naming the parameter", async () => {
    const noFile = await transcribe("openai", { model: "whisper-1" }, null);
    expect(noFile.status).toBe(400);
    expect(await noFile.json()).toMatchObject({ error: { type: "invalid_request_error", param: "file" } });
    const noModel = await transcribe("openai", {});
    expect(await noModel.json()).toMatchObject({ error: { param: "model" } });
    const tooShort = await transcribe("openai", { model: "whisper-1" }, wavFile(Buffer.alloc(320), 16_000));
    const short = (await tooShort.json()) as { error: { message: string } };
    expect(short.error.message).toContain("0.1 seconds");
    // gpt-4o transcription models answer json or text only.
    const format = await transcribe("openai", { model: "gpt-4o-transcribe", response_format: "srt" });
    expect(await format.json()).toMatchObject({ error: { param: "response_format" } });
    expect(fixture.violations).toHaveLength(4);
  });

  it("fixture - Groq's Whisper at /openai/v1/audio/transcriptions, with its own key and formats", async () => {
    fixture.queueTranscript("Hello from Groq.", "groq");
    const response = await transcribe("groq", { model: "whisper-large-v3-turbo" });
    const body = (await response.json()) as { text: string; x_groq: { id: string } };
    expect(body.text).toBe("Hello from Groq.");
    expect(body.x_groq.id).toMatch(/^req_[0-9a-f]{32}$/);
    expect(fixture.callsTo("groq", "stt")[0]?.path).toBe("/openai/v1/audio/transcriptions");
    const refused = await transcribe(
      "groq",
      { model: "whisper-large-v3-turbo" },
      second,
      "gsk_wrong_key_000",
    );
    expect(refused.status).toBe(401);
    const srt = await transcribe("groq", { model: "whisper-large-v3", response_format: "srt" });
    expect(srt.status).toBe(400);
  });

  it("fixture - /v1/audio/speech pcm is raw 24 kHz 16-bit mono audio of the text's length", async () => {
    const input = "Your parcel left the warehouse this morning.";
    const response = await speak({ model: "gpt-4o-mini-tts", input, voice: "alloy", response_format: "pcm" });
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toBe("audio/pcm");
    const pcm = Buffer.from(await response.arrayBuffer());
    expect(pcm.length).toBe(Math.round((speechDurationMs(input) / 1000) * 24_000) * 2);
    const samples = new Int16Array(pcm.buffer, pcm.byteOffset, pcm.length / 2);
    expect(Math.max(...samples.slice(0, 2_400))).toBeGreaterThan(5_000);
    const [call] = fixture.callsTo("openai", "tts");
    expect(call?.path).toBe("/v1/audio/speech");
    expect(call?.body).toEqual({ model: "gpt-4o-mini-tts", input, voice: "alloy", response_format: "pcm" });
  });

  it("fixture - /v1/audio/speech wav is a RIFF file of the same audio; speed shortens it", async () => {
    const input = "Hello there.";
    const wav = Buffer.from(
      await (await speak({ model: "tts-1", input, voice: "nova", response_format: "wav" })).arrayBuffer(),
    );
    expect(readWav(wav)).toMatchObject({
      sampleRate: 24_000,
      channels: 1,
      bitsPerSample: 16,
      durationMs: speechDurationMs(input),
    });
    const fast = Buffer.from(
      await (
        await speak({ model: "tts-1", input, voice: "nova", response_format: "pcm", speed: 2 })
      ).arrayBuffer(),
    );
    expect(fast.length).toBe((wav.length - 44) / 2);
  });

  it("fixture - speech errors: unknown voice, missing input, and mp3 (the default) as a fixture limit", async () => {
    const voice = await speak({ model: "tts-1", input: "hi", voice: "robot", response_format: "pcm" });
    expect(voice.status).toBe(400);
    expect(await voice.json()).toMatchObject({ error: { type: "invalid_request_error", param: "voice" } });
    const input = await speak({ model: "tts-1", voice: "alloy", response_format: "pcm" });
    expect(await input.json()).toMatchObject({ error: { param: "input" } });
    const mp3 = await speak({ model: "tts-1", input: "hi", voice: "alloy" });
    expect(mp3.status).toBe(400);
    expect(JSON.stringify(await mp3.json())).toContain("pcm or wav");
    const refused = await speak({ model: "tts-1", input: "hi", voice: "alloy" }, "sk-wrong-0000000000");
    expect(refused.status).toBe(401);
    expect(await refused.json()).toMatchObject({ error: { code: "invalid_api_key" } });
  });

  it("fixture - faults and latency apply to the audio routes like any other kind", async () => {
    fixture.addFault({
      provider: "openai",
      kind: "tts",
      times: 1,
      fault: { type: "rate_limit", retryAfterSeconds: 2 },
    });
    fixture.addFault({
      provider: "openai",
      kind: "stt",
      times: 1,
      fault: { type: "server_error", status: 503 },
    });
    const body = { model: "tts-1", input: "hi", voice: "alloy", response_format: "pcm" };
    const limited = await speak(body);
    expect([limited.status, limited.headers.get("retry-after")]).toEqual([429, "2"]);
    await limited.arrayBuffer();
    expect((await speak(body)).status).toBe(200);
    const failed = await transcribe("openai", { model: "whisper-1" });
    expect(failed.status).toBe(503);
    await failed.arrayBuffer();
    fixture.setLatency({ responseDelayMs: 150 });
    const started = performance.now();
    await (await transcribe("openai", { model: "whisper-1" })).arrayBuffer();
    expect(performance.now() - started).toBeGreaterThanOrEqual(140);
    expect(fixture.callsTo("openai").map((c) => [c.kind, c.status])).toEqual([
      ["tts", 429],
      ["tts", 200],
      ["stt", 503],
      ["stt", 200],
    ]);
  });
});
