/**
 * From an agent's `voice_settings`, the tenant's embedding settings and the tenant's decrypted
 * provider keys, the typed clients a job needs. No fallbacks: an unknown provider, a provider
 * with no key, or a missing required setting throws `SF_ERR_PROVIDER_MISCONFIGURED` with
 * `details: { kind, provider, missing }`, before any client exists or any provider is called.
 * Only the kinds the caller asks for are checked, so a text job is not refused over a voice
 * setting it does not use.
 */
import { DEFAULT_EMBEDDING_DIMENSION } from "../../actors/index.ts";
import type { AgentRecord, EmbeddingSettings, VoiceSettings } from "../../actors/index.ts";
import { ProviderMisconfiguredError } from "../errors.ts";
import { HttpEmbeddingsClient } from "./embeddings_client.ts";
import type { EmbeddingsClient } from "./embeddings_client.ts";
import type { FetchFn, ProviderTarget } from "./http.ts";
import { OpenAiCompatibleLlmClient } from "./llm_client.ts";
import type { LlmClient } from "./llm_client.ts";
import { NO_PROVIDER_METRICS } from "./provider_metrics.ts";
import type { ProviderMetrics } from "./provider_metrics.ts";
import {
  EMBEDDING_PROVIDERS,
  LLM_PROVIDERS,
  STT_PROVIDERS,
  TTS_PROVIDERS,
  isEmbeddingProvider,
  isLlmProvider,
  isSttProvider,
  isTtsProvider,
  knownProviders,
} from "./registry.ts";
import type { ProviderEndpoints, ProviderKind } from "./registry.ts";
import { CartesiaSttClient, DeepgramSttClient, OpenAiTranscriptionSttClient } from "./stt_client.ts";
import type { SttClient } from "./stt_client.ts";
import { DeepgramLiveSttClient } from "./stt_live.ts";
import type { LiveSttClient } from "./stt_live.ts";
import { CartesiaTtsClient, ElevenLabsTtsClient, OpenAiSpeechTtsClient } from "./tts_client.ts";
import type { TtsClient } from "./tts_client.ts";

/** The tenant's `embedding` settings (keys as stored); defined with the store's client settings. */
export type { EmbeddingSettings };

export interface ProviderSettings<K extends ProviderKind = ProviderKind> {
  /** The kinds this job needs (text: `llm` and maybe `embeddings`; voice: all four). */
  kinds: readonly K[];
  voiceSettings?: VoiceSettings | null;
  embedding?: EmbeddingSettings | null;
}

/** Provider name → decrypted API key, for one tenant. Never logged. */
export type ProviderKeys = Readonly<Record<string, string | null | undefined>>;

export interface ProviderClients {
  llm: LlmClient;
  embeddings: EmbeddingsClient;
  stt: SttClient;
  tts: TtsClient;
}

/**
 * With `stt`: the STT provider's streaming API when it has one we speak (Deepgram's live
 * `/v1/listen` WebSocket), built with the same key, model and endpoint as `stt` (an endpoint
 * override `http(s)://host/path` is reached as `ws(s)://host/path`); `null` for a provider that
 * only transcribes whole utterances (Cartesia, OpenAI, Groq).
 */
export type LiveSttClients<K extends ProviderKind> = "stt" extends K
  ? { sttLive: LiveSttClient | null }
  : unknown;

export interface ProviderClientOptions {
  /** Deadline of one non-streamed call (embeddings, STT, TTS). Default 30 000. */
  requestTimeoutMs?: number;
  /** Deadline for the first LLM token. Default 15 000. */
  llmFirstTokenTimeoutMs?: number;
  /** Deadline for a whole LLM answer. Default 120 000. */
  llmOverallTimeoutMs?: number;
  /** Inputs per embeddings request, per provider, below the provider's own maximum. */
  embeddingBatchSizes?: Readonly<Record<string, number>>;
  /** Default: Node's global `fetch`. */
  fetch?: FetchFn;
  /** Where each call's duration and outcome are reported. Default: nowhere. */
  metrics?: ProviderMetrics;
}

export interface ResolvedProviderClientOptions {
  readonly requestTimeoutMs: number;
  readonly llmFirstTokenTimeoutMs: number;
  readonly llmOverallTimeoutMs: number;
  readonly embeddingBatchSizes: Readonly<Record<string, number>>;
  readonly fetch: FetchFn;
  readonly metrics: ProviderMetrics;
}

function positiveMs(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isFinite(value) || value <= 0) {
    throw new ProviderMisconfiguredError(`provider option ${name} must be a positive number of ms`, {
      details: { option: name },
    });
  }
  return value;
}

export function parseProviderClientOptions(
  options: ProviderClientOptions = {},
): ResolvedProviderClientOptions {
  const sizes = options.embeddingBatchSizes ?? {};
  for (const [provider, size] of Object.entries(sizes)) {
    if (!Number.isInteger(size) || size < 1) {
      throw new ProviderMisconfiguredError(
        `embedding batch size for ${provider} must be a positive integer`,
        {
          details: { option: "embeddingBatchSizes", provider },
        },
      );
    }
  }
  return Object.freeze({
    requestTimeoutMs: positiveMs("requestTimeoutMs", options.requestTimeoutMs, 30_000),
    llmFirstTokenTimeoutMs: positiveMs("llmFirstTokenTimeoutMs", options.llmFirstTokenTimeoutMs, 15_000),
    llmOverallTimeoutMs: positiveMs("llmOverallTimeoutMs", options.llmOverallTimeoutMs, 120_000),
    embeddingBatchSizes: Object.freeze({ ...sizes }),
    fetch: options.fetch ?? ((input: string | URL, init?: RequestInit) => fetch(input, init)),
    metrics: options.metrics ?? NO_PROVIDER_METRICS,
  });
}

/** The settings for an agent: `voice_settings.llm_model`, else the agent's `model` column. */
export function providerSettingsForAgent<K extends ProviderKind>(
  agent: Pick<AgentRecord, "voiceSettings" | "model">,
  kinds: readonly K[],
  embedding?: EmbeddingSettings | null,
): ProviderSettings<K> {
  const voiceSettings: VoiceSettings = { ...agent.voiceSettings };
  if (text(voiceSettings.llm_model) === undefined && text(agent.model) !== undefined) {
    voiceSettings.llm_model = text(agent.model);
  }
  return { kinds, voiceSettings, embedding: embedding ?? null };
}

function text(value: unknown): string | undefined {
  if (typeof value !== "string") return undefined;
  const trimmed = value.trim();
  return trimmed === "" ? undefined : trimmed;
}

function providerName(value: unknown): string | undefined {
  return text(value)?.toLowerCase();
}

function misconfigured(kind: ProviderKind, provider: string | null, missing: string, message: string): never {
  const details: Record<string, unknown> = { kind, provider, missing };
  if (missing === "known_provider") details["known"] = knownProviders(kind);
  throw new ProviderMisconfiguredError(message, { details });
}

function requireProvider(kind: ProviderKind, value: unknown, setting: string): string {
  const provider = providerName(value);
  if (provider === undefined) {
    misconfigured(kind, null, setting, `no ${kind} provider configured (${setting} is empty)`);
  }
  return provider;
}

function unknownProvider(kind: ProviderKind, provider: string): never {
  misconfigured(
    kind,
    provider,
    "known_provider",
    `${kind} provider "${provider}" is not supported (known: ${knownProviders(kind).join(", ")})`,
  );
}

interface Planned {
  kind: ProviderKind;
  provider: string;
  apiKey: string;
  baseUrl: string;
}

function plan(
  kind: ProviderKind,
  provider: string,
  defaultBaseUrl: string,
  keys: ProviderKeys,
  endpoints: ProviderEndpoints,
): Planned {
  const apiKey = keys[provider];
  if (typeof apiKey !== "string" || apiKey.trim() === "") {
    misconfigured(kind, provider, "api_key", `${kind} provider "${provider}" has no API key for this tenant`);
  }
  const override = endpoints[provider];
  const baseUrl = override ?? defaultBaseUrl;
  if (override !== undefined) {
    const valid = URL.canParse(override) && /^https?:$/.test(new URL(override).protocol);
    if (!valid) {
      misconfigured(
        kind,
        provider,
        "valid_endpoint",
        `the endpoint configured for "${provider}" is not an http(s) URL`,
      );
    }
  }
  return { kind, provider, apiKey: apiKey.trim(), baseUrl };
}

/** Builds the clients for `settings.kinds`; throws before building any if one is misconfigured. */
export function resolveProviders<K extends ProviderKind>(
  settings: ProviderSettings<K>,
  keys: ProviderKeys,
  endpoints: ProviderEndpoints = {},
  options: ProviderClientOptions | ResolvedProviderClientOptions = {},
): Pick<ProviderClients, K> & LiveSttClients<K> {
  const resolved = parseProviderClientOptions(options);
  const voice: VoiceSettings = settings.voiceSettings ?? {};
  const builders: Array<
    [ProviderKind | "sttLive", () => ProviderClients[ProviderKind] | LiveSttClient | null]
  > = [];
  const target = (p: Planned): ProviderTarget => ({
    provider: p.provider,
    kind: p.kind,
    apiKey: p.apiKey,
    fetch: resolved.fetch,
    metrics: resolved.metrics,
  });

  for (const kind of new Set<ProviderKind>(settings.kinds)) {
    switch (kind) {
      case "llm": {
        const provider = requireProvider(kind, voice.llm_provider, "llm_provider");
        if (!isLlmProvider(provider)) unknownProvider(kind, provider);
        const spec: { baseUrl: string; defaultModel?: string } = LLM_PROVIDERS[provider];
        const model = text(voice.llm_model) ?? spec.defaultModel;
        if (model === undefined) {
          misconfigured(
            kind,
            provider,
            "llm_model",
            `llm provider "${provider}" needs llm_model (no default model)`,
          );
        }
        const p = plan(kind, provider, spec.baseUrl, keys, endpoints);
        builders.push([
          kind,
          () =>
            new OpenAiCompatibleLlmClient({
              target: target(p),
              baseUrl: p.baseUrl,
              model,
              firstTokenTimeoutMs: resolved.llmFirstTokenTimeoutMs,
              overallTimeoutMs: resolved.llmOverallTimeoutMs,
            }),
        ]);
        break;
      }
      case "embeddings": {
        const embedding = settings.embedding ?? {};
        const provider = requireProvider(kind, embedding.provider, "embedding_provider");
        if (!isEmbeddingProvider(provider)) unknownProvider(kind, provider);
        const spec = EMBEDDING_PROVIDERS[provider];
        const defaultModel: string | undefined = "defaultModel" in spec ? spec.defaultModel : undefined;
        const documentModel = text(embedding.document_model) ?? defaultModel;
        if (documentModel === undefined) {
          misconfigured(
            kind,
            provider,
            "document_model",
            `embedding provider "${provider}" needs document_model`,
          );
        }
        const conversationModel = text(embedding.conversation_model) ?? documentModel;
        const dimension = embedding.dimension ?? DEFAULT_EMBEDDING_DIMENSION;
        if (!Number.isInteger(dimension) || dimension < 1) {
          misconfigured(kind, provider, "valid_dimension", `embedding dimension must be a positive integer`);
        }
        const maxBatchSize = Math.min(
          resolved.embeddingBatchSizes[provider] ?? spec.maxBatchSize,
          spec.maxBatchSize,
        );
        const p = plan(kind, provider, spec.baseUrl, keys, endpoints);
        builders.push([
          kind,
          () =>
            new HttpEmbeddingsClient({
              target: target(p),
              baseUrl: p.baseUrl,
              documentModel,
              conversationModel,
              dimension,
              maxBatchSize,
              sendDimensions: spec.supportsDimensions,
              dialect: spec.dialect,
              requestTimeoutMs: resolved.requestTimeoutMs,
            }),
        ]);
        break;
      }
      case "stt": {
        const provider = requireProvider(kind, voice.stt_provider, "stt_provider");
        if (!isSttProvider(provider)) unknownProvider(kind, provider);
        const spec = STT_PROVIDERS[provider];
        const model = text(voice["stt_model"]) ?? spec.defaultModel;
        const p = plan(kind, provider, spec.baseUrl, keys, endpoints);
        const Client = {
          deepgram: DeepgramSttClient,
          cartesia: CartesiaSttClient,
          openai: OpenAiTranscriptionSttClient,
        }[spec.api];
        builders.push([
          kind,
          () =>
            new Client({
              target: target(p),
              baseUrl: p.baseUrl,
              model,
              requestTimeoutMs: resolved.requestTimeoutMs,
            }),
        ]);
        builders.push([
          "sttLive",
          () =>
            spec.api === "deepgram"
              ? new DeepgramLiveSttClient({
                  target: target(p),
                  baseUrl: p.baseUrl,
                  model,
                  requestTimeoutMs: resolved.requestTimeoutMs,
                })
              : null,
        ]);
        break;
      }
      case "tts": {
        const provider = requireProvider(kind, voice.tts_provider ?? voice.provider, "tts_provider");
        if (!isTtsProvider(provider)) unknownProvider(kind, provider);
        const spec = TTS_PROVIDERS[provider];
        const voiceId = text(voice.voice_id);
        if (voiceId === undefined) {
          misconfigured(kind, provider, "voice_id", `tts provider "${provider}" needs voice_id`);
        }
        const model = text(voice.model) ?? spec.defaultModel;
        const p = plan(kind, provider, spec.baseUrl, keys, endpoints);
        const Client = {
          elevenlabs: ElevenLabsTtsClient,
          cartesia: CartesiaTtsClient,
          openai: OpenAiSpeechTtsClient,
        }[spec.api];
        builders.push([
          kind,
          () =>
            new Client({
              target: target(p),
              baseUrl: p.baseUrl,
              model,
              voiceId,
              requestTimeoutMs: resolved.requestTimeoutMs,
            }),
        ]);
        break;
      }
    }
  }

  const clients: Partial<ProviderClients> & { sttLive?: LiveSttClient | null } = {};
  for (const [kind, build] of builders) {
    (clients as Record<ProviderKind | "sttLive", unknown>)[kind] = build();
  }
  return clients as Pick<ProviderClients, K> & LiveSttClients<K>;
}
