/**
 * Retrieval for one turn: embed the user's words once with the tenant's configured embedding
 * provider (a second call only when transcripts use another model), then run both RPCs on the
 * tenant's database through its actor (`rag-search`), and build the context within the agent's
 * token budget. No fallback: with RAG on, a failed or timed-out embedding call fails the turn with
 * an error that names it; it never answers without its context.
 */
import type { NatsConnection } from "@nats-io/transport-node";
import { requestReply, SfError } from "../../bus/index.ts";
import type { Subjects } from "../../bus/index.ts";
import { agentRagSettings, embeddingFingerprint, RagErrorCodes } from "../../actors/index.ts";
import type { AgentRecord, EmbeddingFingerprint, RagJobInfo, RagSearchReply } from "../../actors/index.ts";
import type { EmbeddingsClient } from "../providers/embeddings_client.ts";
import type { ProviderEndpoints } from "../providers/registry.ts";
import { providerSettingsForAgent, resolveProviders } from "../providers/resolve_providers.ts";
import type { ProviderClientOptions, ProviderKeys } from "../providers/resolve_providers.ts";
import { buildRagContext } from "./context.ts";
import type { RagContext } from "./context.ts";
import { NO_RAG_METRICS } from "./rag_metrics.ts";
import type { RagMetrics } from "./rag_metrics.ts";

export interface RetrievalDeps {
  nc: NatsConnection;
  subjects: Subjects;
  endpoints?: ProviderEndpoints;
  providerOptions?: ProviderClientOptions;
  /** Deadline of the call to the tenant actor. Default 10 000 ms. */
  actorTimeoutMs?: number;
  /** Where each step's duration is reported (`sf_rag_step_seconds`). Default: nowhere. */
  metrics?: RagMetrics;
}

/** What a job handler's options carry that retrieval needs. */
export interface RetrievalDepsSource {
  nc: NatsConnection;
  subjects: Subjects;
  endpoints?: ProviderEndpoints | undefined;
  providerOptions?: ProviderClientOptions | undefined;
  ragMetrics?: RagMetrics | undefined;
}

/** The retrieval dependencies of a job handler, from its options. */
export function retrievalDeps(options: RetrievalDepsSource, actorTimeoutMs: number): RetrievalDeps {
  return {
    nc: options.nc,
    subjects: options.subjects,
    actorTimeoutMs,
    ...(options.endpoints === undefined ? {} : { endpoints: options.endpoints }),
    ...(options.providerOptions === undefined ? {} : { providerOptions: options.providerOptions }),
    ...(options.ragMetrics === undefined ? {} : { metrics: options.ragMetrics }),
  };
}

export interface RetrievalInput {
  tenant: string;
  agent: AgentRecord;
  rag: RagJobInfo | null;
  providerKeys: ProviderKeys;
  /** The user's words for this turn. */
  query: string;
  /** The caller's user id (as in the trigger). */
  userId: string;
  signal?: AbortSignal;
}

export interface Retrieval {
  context: RagContext;
  /** The client that embedded the query: reuse it for the turn's transcript embedding. */
  embeddings: EmbeddingsClient;
  fingerprint: EmbeddingFingerprint;
  timings: { embed_ms: number; documents_ms: number; transcripts_ms: number; total_ms: number };
}

/** The tenant's embeddings client for an agent, or null when the tenant has no embedding settings. */
export function embeddingsFor(
  input: Pick<RetrievalInput, "agent" | "rag" | "providerKeys">,
  deps: Pick<RetrievalDeps, "endpoints" | "providerOptions">,
  requestTimeoutMs?: number,
): { client: EmbeddingsClient; fingerprint: EmbeddingFingerprint } | null {
  const embedding = input.rag?.embedding ?? null;
  if (embedding === null) return null;
  const { embeddings } = resolveProviders(
    providerSettingsForAgent(input.agent, ["embeddings"] as const, embedding),
    input.providerKeys,
    deps.endpoints ?? {},
    { ...deps.providerOptions, ...(requestTimeoutMs === undefined ? {} : { requestTimeoutMs }) },
  );
  return { client: embeddings, fingerprint: embeddingFingerprint(embedding) };
}

/**
 * The client that embeds a recorded turn for later retrieval: null when the agent has RAG off or
 * the tenant has no embedding settings.
 */
export function turnEmbedder(
  input: Pick<RetrievalInput, "agent" | "rag" | "providerKeys">,
  deps: Pick<RetrievalDeps, "endpoints" | "providerOptions">,
): { client: EmbeddingsClient; fingerprint: EmbeddingFingerprint } | null {
  return agentRagSettings(input.agent).enabled ? embeddingsFor(input, deps) : null;
}

/** Null when the agent has RAG off, or has nothing to search (no embedding settings, no documents). */
export async function retrieve(input: RetrievalInput, deps: RetrievalDeps): Promise<Retrieval | null> {
  const settings = agentRagSettings(input.agent);
  if (!settings.enabled || input.rag === null) return null;
  if (input.rag.embedding === null) {
    if (input.rag.documents === 0) return null;
    throw new SfError(
      RagErrorCodes.EMBEDDINGS_NOT_CONFIGURED,
      `agent ${input.agent.slug} has ${input.rag.documents} documents, and this tenant has no embedding provider configured (settings.embedding.provider); set one or turn the agent's RAG off`,
      { details: { kind: "embeddings", missing: "embedding_provider", agent: input.agent.slug } },
    );
  }
  const started = performance.now();
  const resolved = embeddingsFor(input, deps, settings.embedTimeoutMs);
  if (resolved === null) return null;
  const { client, fingerprint } = resolved;
  const failed = (err: unknown): never => {
    if (!(err instanceof SfError)) throw err;
    // The turn fails now, with the provider's own code: retrying it would only make the user wait.
    throw new SfError(
      err.code,
      `retrieval for agent ${input.agent.slug} failed, so it does not answer without its knowledge base: ${err.message}`,
      { cause: err, retryable: false, ...(err.details === undefined ? {} : { details: err.details }) },
    );
  };
  let embedding: number[];
  let conversationEmbedding: number[] | undefined;
  try {
    const signal = input.signal === undefined ? {} : { signal: input.signal };
    embedding = await client.embedOne(input.query, { target: "documents", role: "query", ...signal });
    if (client.modelFor("conversations") !== client.modelFor("documents")) {
      conversationEmbedding = await client.embedOne(input.query, {
        target: "conversations",
        role: "query",
        ...signal,
      });
    }
  } catch (err) {
    return failed(err);
  }
  const metrics = deps.metrics ?? NO_RAG_METRICS;
  const embedMs = performance.now() - started;
  metrics.retrievalStep("embed", embedMs / 1000);
  const searchStarted = performance.now();
  let reply: RagSearchReply;
  try {
    ({ body: reply } = await requestReply<RagSearchReply>(
      deps.nc,
      deps.subjects.tenantOp(input.tenant, "rag-search"),
      {
        agent_slug: input.agent.slug,
        user_id: input.userId,
        embedding,
        ...(conversationEmbedding === undefined ? {} : { conversation_embedding: conversationEmbedding }),
        fingerprint,
      },
      { tenant: input.tenant, timeoutMs: deps.actorTimeoutMs ?? 10_000 },
    ));
  } catch (err) {
    return failed(err);
  }
  const assembleStarted = performance.now();
  metrics.retrievalStep("search", (assembleStarted - searchStarted) / 1000);
  const context = buildRagContext(reply.documents, reply.transcripts, settings.contextTokens);
  const ended = performance.now();
  metrics.retrievalStep("assemble", (ended - assembleStarted) / 1000);
  metrics.retrievalStep("total", (ended - started) / 1000);
  return {
    context,
    embeddings: client,
    fingerprint,
    timings: {
      embed_ms: embedMs,
      documents_ms: reply.timings.documents_ms,
      transcripts_ms: reply.timings.transcripts_ms,
      total_ms: ended - started,
    },
  };
}

/**
 * Writes the embedding of a recorded turn's user message (what match_conversation_transcripts_secure
 * searches). Called after the reply went out, so the chat path never waits on it.
 */
export async function embedTurn(
  deps: RetrievalDeps,
  tenant: string,
  embeddings: { client: EmbeddingsClient; fingerprint: EmbeddingFingerprint },
  turnId: string,
  userMessage: string,
  signal?: AbortSignal,
): Promise<void> {
  const vector = await embeddings.client.embedOne(userMessage, {
    target: "conversations",
    role: "passage",
    ...(signal === undefined ? {} : { signal }),
  });
  await requestReply(
    deps.nc,
    deps.subjects.tenantOp(tenant, "transcript-embeddings"),
    { fingerprint: embeddings.fingerprint, items: [{ turn_id: turnId, embedding: vector }] },
    { tenant, timeoutMs: deps.actorTimeoutMs ?? 10_000 },
  );
}
