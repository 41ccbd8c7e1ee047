// resolveProviders: the clients an agent's settings name, with no fallbacks. Misconfiguration is
// refused before any provider is called (the fixture records every call), and the error names
// the provider and what is missing without ever carrying a key.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import {
  AgentWorkerErrorCodes,
  providerSettingsForAgent,
  resolveProviders,
} from "../../agent-worker/index.ts";
import type { ProviderKeys, ProviderKind, ProviderSettings } from "../../agent-worker/index.ts";
import { SfError } from "../../bus/index.ts";
import { startProviderFixture } from "../fixtures/providers/provider_fixture.ts";
import type { ProviderFixture } from "../fixtures/providers/provider_fixture.ts";
import { expectNoSecret } from "./provider_test_kit.ts";

let fixture: ProviderFixture;
let allKeys: ProviderKeys;

beforeAll(async () => {
  fixture = await startProviderFixture();
  allKeys = { ...fixture.keys };
});
afterAll(async () => {
  await fixture.close();
});
beforeEach(() => {
  fixture.reset();
});

const voiceAgent = {
  llm_provider: "groq",
  stt_provider: "deepgram",
  tts_provider: "cartesia",
  voice_id: "694f9389-aac1-45b6-b726-9d9369183238",
};
const embedding = { provider: "siliconflow", dimension: 1024 };

function misconfigured<K extends ProviderKind>(
  settings: ProviderSettings<K>,
  keys: ProviderKeys = allKeys,
): SfError {
  let caught: unknown;
  try {
    resolveProviders(settings, keys, fixture.endpoints());
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(SfError);
  const err = caught as SfError;
  expect(err.code).toBe(AgentWorkerErrorCodes.PROVIDER_MISCONFIGURED);
  expect(err.retryable).toBe(false);
  for (const key of Object.values(keys)) if (typeof key === "string" && key !== "") expectNoSecret(err, key);
  return err;
}

describe("resolveProviders", () => {
  it("providers - a voice agent gets its four clients with the contract's default models", async () => {
    const clients = resolveProviders(
      { kinds: ["llm", "embeddings", "stt", "tts"], voiceSettings: voiceAgent, embedding },
      allKeys,
      fixture.endpoints(),
    );
    expect(clients.llm).toMatchObject({ provider: "groq", model: "llama-3.3-70b-versatile" });
    expect(clients.stt).toMatchObject({ provider: "deepgram", model: "nova-3" });
    expect(clients.tts).toMatchObject({
      provider: "cartesia",
      model: "sonic-3",
      voiceId: voiceAgent.voice_id,
    });
    expect(clients.embeddings).toMatchObject({ provider: "siliconflow", dimension: 1024 });
    expect(clients.embeddings.modelFor("documents")).toBe("Qwen/Qwen3-Embedding-0.6B");
    expect(clients.embeddings.modelFor("conversations")).toBe("Qwen/Qwen3-Embedding-0.6B");
    // Resolving calls nobody.
    expect(fixture.calls).toEqual([]);
    // And each client reaches its own provider only.
    await clients.llm.complete({ messages: [{ role: "user", content: "hello" }] });
    expect(fixture.calls.map((c) => c.provider)).toEqual(["groq"]);
  });

  it("providers - Deepgram STT comes with its live client on the same key, model and endpoint; others with none", async () => {
    const deepgram = resolveProviders(
      { kinds: ["stt"], voiceSettings: { stt_provider: "deepgram", stt_model: "nova-2" } },
      allKeys,
      fixture.endpoints(),
    );
    expect(deepgram.sttLive).toMatchObject({ provider: "deepgram", model: "nova-2" });
    // The endpoint override's ws:// form, the tenant's key.
    const live = await deepgram.sttLive?.listen({ sampleRate: 16_000 });
    live?.close();
    for await (const _ of live ?? []) void _;
    expect(fixture.calls).toMatchObject([
      { provider: "deepgram", method: "GET", path: "/v1/listen", status: 101, query: { model: "nova-2" } },
    ]);
    const cartesia = resolveProviders(
      { kinds: ["stt"], voiceSettings: { stt_provider: "cartesia" } },
      allKeys,
      fixture.endpoints(),
    );
    expect(cartesia.sttLive).toBeNull();
  });

  it("providers - `provider` stands for tts_provider, `model` names the TTS model, agent.model the LLM's", () => {
    const clients = resolveProviders(
      providerSettingsForAgent(
        {
          model: "gpt-4o-mini",
          voiceSettings: {
            llm_provider: "OpenAI ",
            provider: "elevenlabs",
            voice_id: "voice-1",
            model: "eleven_flash_v2_5",
          },
        },
        ["llm", "tts"],
      ),
      allKeys,
      fixture.endpoints(),
    );
    expect(clients.llm).toMatchObject({ provider: "openai", model: "gpt-4o-mini" });
    expect(clients.tts).toMatchObject({
      provider: "elevenlabs",
      model: "eleven_flash_v2_5",
      voiceId: "voice-1",
    });
  });

  it("providers - an unknown LLM provider is refused, naming it, and nothing is called", () => {
    const err = misconfigured({
      kinds: ["llm", "tts"],
      voiceSettings: { ...voiceAgent, llm_provider: "anthropic-ish" },
    });
    expect(err.details).toMatchObject({ kind: "llm", provider: "anthropic-ish", missing: "known_provider" });
    expect(err.details?.["known"]).toEqual(["groq", "openai", "cerebras", "deepinfra"]);
    expect(err.message).toContain("anthropic-ish");
    expect(fixture.calls).toEqual([]);
  });

  it("providers - a provider without a key is refused; no other provider stands in", async () => {
    const keys = { ...allKeys, groq: "" };
    const err = misconfigured({ kinds: ["llm"], voiceSettings: voiceAgent }, keys);
    expect(err.details).toEqual({ kind: "llm", provider: "groq", missing: "api_key" });
    expect(err.message).toContain("groq");
    // Other LLM keys were available; none was used.
    const { groq: _dropped, ...withoutGroq } = allKeys;
    const again = misconfigured({ kinds: ["llm"], voiceSettings: voiceAgent }, withoutGroq);
    expect(again.details).toMatchObject({ provider: "groq", missing: "api_key" });
    expect(fixture.calls).toEqual([]);
    // The same settings with the key do reach groq (the check above is not vacuous).
    const { llm } = resolveProviders(
      { kinds: ["llm"], voiceSettings: voiceAgent },
      allKeys,
      fixture.endpoints(),
    );
    await llm.complete({ messages: [{ role: "user", content: "x" }] });
    expect(fixture.calls.map((c) => c.provider)).toEqual(["groq"]);
  });

  it.each(["cartesia", "elevenlabs"])("providers - %s TTS without voice_id is refused", (tts) => {
    const err = misconfigured({ kinds: ["tts"], voiceSettings: { tts_provider: tts, voice_id: "  " } });
    expect(err.details).toEqual({ kind: "tts", provider: tts, missing: "voice_id" });
    expect(err.message).toContain(tts);
    expect(err.message).toContain("voice_id");
  });

  it("providers - every missing setting is named", () => {
    expect(misconfigured({ kinds: ["llm"], voiceSettings: {} }).details).toMatchObject({
      kind: "llm",
      provider: null,
      missing: "llm_provider",
    });
    expect(
      misconfigured({ kinds: ["llm"], voiceSettings: { llm_provider: "cerebras" } }).details,
    ).toMatchObject({
      provider: "cerebras",
      missing: "llm_model",
    });
    expect(
      misconfigured({ kinds: ["stt"], voiceSettings: { stt_provider: "whisper-local" } }).details,
    ).toMatchObject({
      kind: "stt",
      missing: "known_provider",
    });
    expect(misconfigured({ kinds: ["tts"], voiceSettings: {} }).details).toMatchObject({
      kind: "tts",
      missing: "tts_provider",
    });
    expect(misconfigured({ kinds: ["embeddings"], embedding: null }).details).toMatchObject({
      kind: "embeddings",
      missing: "embedding_provider",
    });
    expect(misconfigured({ kinds: ["embeddings"], embedding: { provider: "novita" } }).details).toMatchObject(
      {
        provider: "novita",
        missing: "document_model",
      },
    );
    expect(
      misconfigured({ kinds: ["embeddings"], embedding: { provider: "jina", dimension: 0 } }).details,
    ).toMatchObject({
      missing: "valid_dimension",
    });
    expect(
      misconfigured({ kinds: ["embeddings"], embedding: { provider: "local-model" } }).details,
    ).toMatchObject({
      provider: "local-model",
      missing: "known_provider",
    });
    expect(fixture.calls).toEqual([]);
  });

  it("providers - one misconfigured kind refuses the whole set, before any client exists", () => {
    const err = misconfigured({
      kinds: ["llm", "embeddings", "stt", "tts"],
      voiceSettings: { ...voiceAgent, voice_id: undefined },
      embedding,
    });
    expect(err.details).toMatchObject({ kind: "tts", missing: "voice_id" });
    expect(fixture.calls).toEqual([]);
  });

  it("providers - only the kinds a job needs are checked", () => {
    const settings = { voiceSettings: { llm_provider: "groq", tts_provider: "cartesia" }, embedding };
    const text = resolveProviders(
      { kinds: ["llm", "embeddings"], ...settings },
      allKeys,
      fixture.endpoints(),
    );
    expect(Object.keys(text).sort()).toEqual(["embeddings", "llm"]);
    misconfigured({ kinds: ["llm", "tts"], ...settings });
  });

  it("providers - an endpoint override that is not an http(s) URL is refused", () => {
    let caught: unknown;
    try {
      resolveProviders({ kinds: ["llm"], voiceSettings: voiceAgent }, allKeys, { groq: "ftp://example.org" });
    } catch (err) {
      caught = err;
    }
    expect((caught as SfError).code).toBe(AgentWorkerErrorCodes.PROVIDER_MISCONFIGURED);
    expect((caught as SfError).details).toMatchObject({ provider: "groq", missing: "valid_endpoint" });
  });
});
