/**
 * The providers an agent may name, with their real base URLs and default models
 * (SEED_CONTRACT.md, "Provider configuration"). Each is called through its own HTTP API; a
 * base URL can be overridden per provider by platform configuration (`ProviderEndpoints`),
 * e.g. for a self-hosted gateway or a test fixture.
 *
 * Sources for the values below (checked against each provider's public API reference):
 * - Groq `https://api.groq.com/openai/v1`, OpenAI `https://api.openai.com/v1`, Cerebras
 *   `https://api.cerebras.ai/v1`, DeepInfra `https://api.deepinfra.com/v1/openai`: the
 *   OpenAI-compatible `POST /chat/completions` with `stream: true` (SSE, `data: [DONE]`).
 * - SiliconFlow `https://api.siliconflow.cn/v1/embeddings` (accounts on the international
 *   platform use `https://api.siliconflow.com/v1`: set it as the endpoint); `dimensions` only
 *   for the Qwen3-Embedding series (0.6B: 64…1024); batches above 32–64 inputs are refused.
 * - Novita `https://api.novita.ai/openai/v1/embeddings` (its current API reference; the older
 *   `https://api.novita.ai/v3/openai` base serves the same OpenAI-compatible routes).
 * - Jina `https://api.jina.ai/v1/embeddings` with `task` (`retrieval.query` /
 *   `retrieval.passage`) and `dimensions` (Matryoshka, jina-embeddings-v3 default 1024).
 * - Deepgram `POST https://api.deepgram.com/v1/listen?model=nova-3`, `Authorization: Token`,
 *   audio bytes as the body; JSON `results.channels[0].alternatives[0].transcript`.
 * - Cartesia `https://api.cartesia.ai`: `POST /tts/bytes` and `POST /stt` (multipart `file`,
 *   `model=ink-whisper`), `X-API-Key` + `Cartesia-Version`.
 * - ElevenLabs `POST https://api.elevenlabs.io/v1/text-to-speech/{voice_id}/stream?output_format=pcm_16000`
 *   with `xi-api-key`: raw 16 kHz s16le PCM.
 * - OpenAI audio, Bearer auth: `POST /v1/audio/transcriptions` (multipart `file`, `model`,
 *   `language`, `response_format=json` → `{ text }`; Groq serves Whisper at the same path under
 *   `https://api.groq.com/openai/v1`) and `POST /v1/audio/speech` (JSON `{ model, input, voice,
 *   response_format: "pcm" }` → raw s16le PCM at 24 kHz mono, OpenAI's fixed rate).
 */

export const PROVIDER_KINDS = ["llm", "embeddings", "stt", "tts"] as const;
export type ProviderKind = (typeof PROVIDER_KINDS)[number];

export interface LlmProviderSpec {
  baseUrl: string;
  /** Used when the agent names no `llm_model`; absent = the agent must name one. */
  defaultModel?: string;
}

export interface EmbeddingProviderSpec {
  baseUrl: string;
  defaultModel?: string;
  /** Inputs per request; larger lists are split into batches of this size. */
  maxBatchSize: number;
  /** Whether `dimensions` may be sent for this model (Matryoshka / reducible models). */
  supportsDimensions: (model: string) => boolean;
  /** The request body field set this provider speaks. */
  dialect: "openai" | "jina";
}

export interface SttProviderSpec {
  baseUrl: string;
  defaultModel: string;
  /** The HTTP API it speaks. */
  api: "deepgram" | "cartesia" | "openai";
}

export interface TtsProviderSpec {
  baseUrl: string;
  defaultModel: string;
  /** The HTTP API it speaks. */
  api: "elevenlabs" | "cartesia" | "openai";
  /** Sample rate of the PCM we ask for (OpenAI's `pcm` is always 24 kHz). */
  sampleRate: number;
}

export const LLM_PROVIDERS = {
  groq: { baseUrl: "https://api.groq.com/openai/v1", defaultModel: "llama-3.3-70b-versatile" },
  openai: { baseUrl: "https://api.openai.com/v1" },
  cerebras: { baseUrl: "https://api.cerebras.ai/v1" },
  deepinfra: { baseUrl: "https://api.deepinfra.com/v1/openai" },
} as const satisfies Record<string, LlmProviderSpec>;

export const EMBEDDING_PROVIDERS = {
  siliconflow: {
    baseUrl: "https://api.siliconflow.cn/v1",
    defaultModel: "Qwen/Qwen3-Embedding-0.6B",
    maxBatchSize: 32,
    supportsDimensions: (model: string) => model.startsWith("Qwen/Qwen3-Embedding"),
    dialect: "openai",
  },
  openai: {
    baseUrl: "https://api.openai.com/v1",
    defaultModel: "text-embedding-3-small",
    maxBatchSize: 512,
    supportsDimensions: (model: string) => model.startsWith("text-embedding-3"),
    dialect: "openai",
  },
  novita: {
    baseUrl: "https://api.novita.ai/openai/v1",
    maxBatchSize: 32,
    supportsDimensions: () => false,
    dialect: "openai",
  },
  jina: {
    baseUrl: "https://api.jina.ai/v1",
    defaultModel: "jina-embeddings-v3",
    maxBatchSize: 128,
    supportsDimensions: (model: string) => /^jina-(embeddings-v[34]|clip-v2)/.test(model),
    dialect: "jina",
  },
} as const satisfies Record<string, EmbeddingProviderSpec>;

export const STT_PROVIDERS = {
  deepgram: { baseUrl: "https://api.deepgram.com/v1", defaultModel: "nova-3", api: "deepgram" },
  cartesia: { baseUrl: "https://api.cartesia.ai", defaultModel: "ink-whisper", api: "cartesia" },
  openai: { baseUrl: "https://api.openai.com/v1", defaultModel: "gpt-4o-mini-transcribe", api: "openai" },
  groq: { baseUrl: "https://api.groq.com/openai/v1", defaultModel: "whisper-large-v3-turbo", api: "openai" },
} as const satisfies Record<string, SttProviderSpec>;

export const TTS_PROVIDERS = {
  elevenlabs: {
    baseUrl: "https://api.elevenlabs.io/v1",
    defaultModel: "eleven_turbo_v2_5",
    api: "elevenlabs",
    sampleRate: 16_000,
  },
  cartesia: {
    baseUrl: "https://api.cartesia.ai",
    defaultModel: "sonic-3",
    api: "cartesia",
    sampleRate: 16_000,
  },
  openai: {
    baseUrl: "https://api.openai.com/v1",
    defaultModel: "gpt-4o-mini-tts",
    api: "openai",
    sampleRate: 24_000,
  },
} as const satisfies Record<string, TtsProviderSpec>;

export type LlmProviderName = keyof typeof LLM_PROVIDERS;
export type EmbeddingProviderName = keyof typeof EMBEDDING_PROVIDERS;
export type SttProviderName = keyof typeof STT_PROVIDERS;
export type TtsProviderName = keyof typeof TTS_PROVIDERS;

/** The `Cartesia-Version` header value we speak (documented with `X-API-Key` auth). */
export const CARTESIA_VERSION = "2025-04-16";

/** Per-provider base-URL overrides (platform configuration), keyed by provider name. */
export type ProviderEndpoints = Readonly<Record<string, string>>;

export function isLlmProvider(name: string): name is LlmProviderName {
  return Object.hasOwn(LLM_PROVIDERS, name);
}
export function isEmbeddingProvider(name: string): name is EmbeddingProviderName {
  return Object.hasOwn(EMBEDDING_PROVIDERS, name);
}
export function isSttProvider(name: string): name is SttProviderName {
  return Object.hasOwn(STT_PROVIDERS, name);
}
export function isTtsProvider(name: string): name is TtsProviderName {
  return Object.hasOwn(TTS_PROVIDERS, name);
}

/** Names a kind accepts, for error details. */
export function knownProviders(kind: ProviderKind): string[] {
  switch (kind) {
    case "llm":
      return Object.keys(LLM_PROVIDERS);
    case "embeddings":
      return Object.keys(EMBEDDING_PROVIDERS);
    case "stt":
      return Object.keys(STT_PROVIDERS);
    case "tts":
      return Object.keys(TTS_PROVIDERS);
  }
}
