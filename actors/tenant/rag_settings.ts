/**
 * What decides retrieval for an agent and a tenant: the agent's `tools_config.rag` (on or off,
 * similarity threshold, how many past turns, the context's token budget, the embedding call's
 * deadline) and the tenant's embedding settings, reduced to a fingerprint that stored vectors and
 * queries must share.
 */
import { SfError } from "../../bus/index.ts";
import { DEFAULT_EMBEDDING_DIMENSION } from "../store/index.ts";
import type { AgentRecord, EmbeddingIndexInfo, EmbeddingSettings } from "../store/index.ts";

export const RagErrorCodes = {
  /** The tenant's stored vectors were made with other embedding settings than its current ones. */
  EMBEDDINGS_STALE: "SF_ERR_EMBEDDINGS_STALE",
  /** Retrieval needs embeddings and the tenant has no embedding provider configured. */
  EMBEDDINGS_NOT_CONFIGURED: "SF_ERR_EMBEDDINGS_NOT_CONFIGURED",
  /** A worker wrote for a document version that is no longer current. */
  STALE_JOB: "SF_ERR_STALE_JOB",
} as const;

export interface AgentRagSettings {
  /** `tools_config.rag.enabled`; default true. Off: no embedding call, no retrieval. */
  enabled: boolean;
  /** Minimum cosine similarity of a chunk or past turn; `tools_config.rag.match_threshold`, default 0.3. */
  matchThreshold: number;
  /** Chunks per turn: the agent's `rag_results_limit` (0 = no document search). */
  documentCount: number;
  /** Past turns of the same user per turn: `tools_config.rag.transcript_results`, default 3. */
  transcriptCount: number;
  /** Token budget of the retrieved context: `tools_config.rag.context_tokens`, default 2000. */
  contextTokens: number;
  /** Deadline of the query's embedding call: `tools_config.rag.embed_timeout_ms`, default 10000. */
  embedTimeoutMs: number;
}

function num(value: unknown, fallback: number, min: number, max: number): number {
  return typeof value === "number" && Number.isFinite(value) && value >= min && value <= max
    ? value
    : fallback;
}

export function agentRagSettings(
  agent: Pick<AgentRecord, "toolsConfig" | "ragResultsLimit">,
): AgentRagSettings {
  const raw = agent.toolsConfig?.["rag"];
  const rag =
    typeof raw === "object" && raw !== null && !Array.isArray(raw) ? (raw as Record<string, unknown>) : {};
  return {
    enabled: rag["enabled"] !== false,
    matchThreshold: num(rag["match_threshold"], 0.3, -1, 1),
    documentCount: Math.floor(num(agent.ragResultsLimit, 5, 0, 100)),
    transcriptCount: Math.floor(num(rag["transcript_results"], 3, 0, 50)),
    contextTokens: Math.floor(num(rag["context_tokens"], 2000, 100, 100_000)),
    embedTimeoutMs: Math.floor(num(rag["embed_timeout_ms"], 10_000, 100, 120_000)),
  };
}

/** The parts of the embedding settings that make vectors comparable. */
export type EmbeddingFingerprint = Omit<EmbeddingIndexInfo, "updated_at">;

function setting(value: string | null | undefined): string {
  return typeof value === "string" ? value.trim() : "";
}

export function embeddingFingerprint(settings: EmbeddingSettings | EmbeddingIndexInfo): EmbeddingFingerprint {
  const documentModel = setting(settings.document_model);
  return {
    provider: setting(settings.provider).toLowerCase(),
    document_model: documentModel,
    conversation_model: setting(settings.conversation_model) || documentModel,
    dimension: settings.dimension ?? DEFAULT_EMBEDDING_DIMENSION,
  };
}

export function fingerprintKey(f: EmbeddingFingerprint): string {
  return `${f.provider}|${f.document_model}|${f.conversation_model}|${f.dimension}`;
}

export function describeFingerprint(f: EmbeddingFingerprint): string {
  const models =
    f.document_model === f.conversation_model
      ? f.document_model || "its default model"
      : `${f.document_model || "its default model"} / ${f.conversation_model}`;
  return `${f.provider} ${models} (${f.dimension} dimensions)`;
}

export function staleEmbeddingsError(tenant: string, stored: string, wanted: string): SfError {
  return new SfError(
    RagErrorCodes.EMBEDDINGS_STALE,
    `this tenant's stored embeddings were made with ${stored}, its embedding settings now name ${wanted}: ` +
      `re-embed them (npm run rag:reembed -- --client ${tenant}, or POST /api/v2/clients/${tenant}/embeddings/reembed)`,
    { details: { stored, configured: wanted } },
  );
}

export function embeddingsNotConfiguredError(what: string): SfError {
  return new SfError(
    RagErrorCodes.EMBEDDINGS_NOT_CONFIGURED,
    `${what} needs embeddings, and this tenant has no embedding provider configured (settings.embedding.provider)`,
    { details: { kind: "embeddings", missing: "embedding_provider" } },
  );
}
