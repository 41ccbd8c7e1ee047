// Provider call metrics: the clients, built by resolveProviders with metrics on a registry of the
// test's own, are run against the provider fixture, and the exported series are read back:
// sf_provider_request_duration_seconds{provider,kind,outcome}, sf_provider_errors_total{provider,
// kind,code} and sf_provider_first_token_seconds{provider,kind}.
import { Registry } from "prom-client";
import { beforeEach, describe, expect, it } from "vitest";
import {
  AgentWorkerErrorCodes,
  createProviderMetrics,
  errorCodeLabel,
  resolveProviders,
  withProviderRetry,
} from "../../agent-worker/index.ts";
import type { ChatRequest, PrometheusProviderMetrics, ProviderKind } from "../../agent-worker/index.ts";
import { StoreErrorCodes } from "../../actors/index.ts";
import { sineTonePcm } from "../fixtures/providers/audio.ts";
import type { ProviderFixture } from "../fixtures/providers/provider_fixture.ts";
import { drain, rejection } from "./provider_test_kit.ts";
import { useProviderFixture } from "../helpers/provider_fixture_hooks.ts";

const codes = AgentWorkerErrorCodes;
let fixture: ProviderFixture;
let registry: Registry;
let metrics: PrometheusProviderMetrics;

useProviderFixture((f) => (fixture = f));
beforeEach(() => {
  registry = new Registry();
  metrics = createProviderMetrics(registry);
});

/** The value of the sample `name` whose labels include `labels` (summed if several); 0 if none. */
async function sample(name: string, labels: Record<string, string> = {}): Promise<number> {
  let total = 0;
  for (const metric of await registry.getMetricsAsJSON()) {
    for (const value of metric.values) {
      const sampleName = (value as { metricName?: string }).metricName ?? metric.name;
      if (sampleName !== name) continue;
      if (Object.entries(labels).every(([k, v]) => String(value.labels[k]) === v)) total += value.value;
    }
  }
  return total;
}

const calls = (provider: string, kind: ProviderKind, outcome: string) =>
  sample("sf_provider_request_duration_seconds_count", { provider, kind, outcome });
const seconds = (provider: string, kind: ProviderKind, outcome: string) =>
  sample("sf_provider_request_duration_seconds_sum", { provider, kind, outcome });
const errors = (labels: Record<string, string> = {}) => sample("sf_provider_errors_total", labels);

function llm() {
  return resolveProviders(
    { kinds: ["llm"], voiceSettings: { llm_provider: "groq" } },
    { groq: fixture.keys.groq },
    fixture.endpoints(),
    { metrics },
  ).llm;
}

function embeddings() {
  return resolveProviders(
    { kinds: ["embeddings"], embedding: { provider: "siliconflow", dimension: 1024 } },
    { siliconflow: fixture.keys.siliconflow },
    fixture.endpoints(),
    { metrics },
  ).embeddings;
}

const request: ChatRequest = { messages: [{ role: "user", content: "Where is my parcel?" }] };

describe("provider metrics", () => {
  it("provider metrics - a streamed LLM answer is one ok call, with its time to first token", async () => {
    fixture.setLatency({ firstTokenDelayMs: 30, tokenDelayMs: 5 });
    fixture.queueChatReply("Your parcel left the depot this morning and arrives tomorrow.", "groq");
    const { deltas, error } = await drain(llm().stream(request));
    expect(error).toBeUndefined();
    expect(deltas.length).toBeGreaterThan(3);

    expect(await calls("groq", "llm", "ok")).toBe(1);
    expect(await calls("groq", "llm", "error")).toBe(0);
    expect(await errors()).toBe(0);
    const total = await seconds("groq", "llm", "ok");
    const firstToken = await sample("sf_provider_first_token_seconds_sum", { provider: "groq", kind: "llm" });
    expect(await sample("sf_provider_first_token_seconds_count", { provider: "groq", kind: "llm" })).toBe(1);
    expect(firstToken).toBeGreaterThanOrEqual(0.025);
    // The whole answer takes longer than its first token (the later deltas are 5 ms apart).
    expect(total).toBeGreaterThan(firstToken);
    // Bucketed too: the +Inf bucket holds the call.
    expect(
      await sample("sf_provider_request_duration_seconds_bucket", {
        provider: "groq",
        kind: "llm",
        outcome: "ok",
        le: "+Inf",
      }),
    ).toBe(1);
  });

  it("provider metrics - an injected HTTP 500 counts one error with its code, timed as an error", async () => {
    fixture.addFault({ provider: "groq", kind: "chat", times: 1, fault: { type: "server_error" } });
    const { error } = await drain(llm().stream(request));
    expect(error?.code).toBe(codes.PROVIDER_UNAVAILABLE);

    expect(await calls("groq", "llm", "error")).toBe(1);
    expect(await calls("groq", "llm", "ok")).toBe(0);
    expect(await errors({ provider: "groq", kind: "llm", code: codes.PROVIDER_UNAVAILABLE })).toBe(1);
    expect(await errors()).toBe(1);
    expect(await sample("sf_provider_first_token_seconds_count")).toBe(0);

    // The next call succeeds: the counts add up per outcome.
    const { error: again } = await drain(llm().stream(request));
    expect(again).toBeUndefined();
    expect(await calls("groq", "llm", "ok")).toBe(1);
    expect(await errors()).toBe(1);
  });

  it("provider metrics - a stream cut after its first tokens is an error that still had a first token", async () => {
    fixture.addFault({ provider: "groq", kind: "chat", fault: { type: "cut_stream", afterTokens: 2 } });
    const { deltas, error } = await drain(llm().stream(request));
    expect(deltas).toHaveLength(2);
    expect(error?.code).toBe(codes.PROVIDER_STREAM_INTERRUPTED);
    expect(await errors({ provider: "groq", kind: "llm", code: codes.PROVIDER_STREAM_INTERRUPTED })).toBe(1);
    expect(await sample("sf_provider_first_token_seconds_count", { provider: "groq" })).toBe(1);
  });

  it("provider metrics - a caller's abort and a reader that stops early are aborted calls, not errors", async () => {
    const controller = new AbortController();
    fixture.setLatency({ tokenDelayMs: 20 });
    const aborted = drain(llm().stream(request, { signal: controller.signal }));
    setTimeout(() => controller.abort(), 30);
    expect((await aborted).error?.code).toBe(codes.PROVIDER_ABORTED);

    for await (const delta of llm().stream(request)) {
      expect(delta).not.toBe("");
      break;
    }

    expect(await calls("groq", "llm", "aborted")).toBe(2);
    expect(await calls("groq", "llm", "error")).toBe(0);
    expect(await errors()).toBe(0);
  });

  it("provider metrics - embeddings (callProvider): each retried 429 counts, then the ok call", async () => {
    fixture.addFault({
      provider: "siliconflow",
      kind: "embeddings",
      times: 2,
      fault: { type: "rate_limit", retryAfterSeconds: 0 },
    });
    const vectors = await withProviderRetry(() => embeddings().embed(["refund policy", "parcel damage"]), {
      maxAttempts: 3,
      baseDelayMs: 1,
    });
    expect(vectors).toHaveLength(2);
    expect(
      await errors({ provider: "siliconflow", kind: "embeddings", code: codes.PROVIDER_RATE_LIMITED }),
    ).toBe(2);
    expect(await calls("siliconflow", "embeddings", "error")).toBe(2);
    expect(await calls("siliconflow", "embeddings", "ok")).toBe(1);
  });

  it("provider metrics - a malformed answer (wrong dimension) is measured as the failed call it is", async () => {
    fixture.addFault({
      provider: "siliconflow",
      kind: "embeddings",
      fault: { type: "wrong_dimension", dimension: 8 },
    });
    await rejection(embeddings().embedOne("refund policy"), StoreErrorCodes.EMBEDDING_DIMENSION_MISMATCH);
    expect(
      await errors({
        provider: "siliconflow",
        kind: "embeddings",
        code: StoreErrorCodes.EMBEDDING_DIMENSION_MISMATCH,
      }),
    ).toBe(1);
    expect(await calls("siliconflow", "embeddings", "ok")).toBe(0);
  });

  it("provider metrics - STT and TTS calls carry their kind; a refused key is counted by its code", async () => {
    const { stt, tts } = resolveProviders(
      {
        kinds: ["stt", "tts"],
        voiceSettings: { stt_provider: "deepgram", tts_provider: "elevenlabs", voice_id: "voice-1" },
      },
      { deepgram: fixture.keys.deepgram, elevenlabs: "not-the-key" },
      fixture.endpoints(),
      { metrics },
    );
    fixture.queueTranscript("where is my parcel", "deepgram");
    const transcript = await stt.transcribe({
      pcm: sineTonePcm(500, 16_000, 220),
      sampleRate: 16_000,
      channels: 1,
    });
    expect(transcript.text).toBe("where is my parcel");
    await rejection(tts.synthesize("Hello."), codes.PROVIDER_AUTH);

    expect(await calls("deepgram", "stt", "ok")).toBe(1);
    expect(await calls("elevenlabs", "tts", "error")).toBe(1);
    expect(await errors({ provider: "elevenlabs", kind: "tts", code: codes.PROVIDER_AUTH })).toBe(1);
  });

  it("provider metrics - the code label is an SF_ERR_ code or SF_ERR_UNKNOWN, nothing else", () => {
    expect(errorCodeLabel(codes.PROVIDER_TIMEOUT)).toBe(codes.PROVIDER_TIMEOUT);
    expect(errorCodeLabel(undefined)).toBe("SF_ERR_UNKNOWN");
    expect(errorCodeLabel("ECONNRESET")).toBe("SF_ERR_UNKNOWN");
    expect(errorCodeLabel("SF_ERR_x/../user-42")).toBe("SF_ERR_UNKNOWN");
  });
});
