/**
 * Ingestion jobs (stream SF_INGEST). A document job extracts the upload's text (or takes the
 * stored text when re-embedding), chunks it by headings and sentences, embeds the chunks in
 * batches no larger than the provider takes, retrying 429/5xx with backoff (Retry-After honoured),
 * and writes them through the tenant actor, reporting progress on the document (`extracting`,
 * `embedding 40/120`, `ready`, `failed: <reason>`). A transcripts job (re-embedding) embeds every
 * stored user turn again. Problems of the document or its provider end the job with the document
 * marked failed; a tenant actor that cannot be reached makes the job come back later.
 */
import type { NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "pino";
import { BusErrorCodes, requestReply, SfError, toWireError } from "../../bus/index.ts";
import type { Subjects } from "../../bus/index.ts";
import { RagErrorCodes, StoreErrorCodes } from "../../actors/index.ts";
import type { IngestContextReply, IngestJob } from "../../actors/index.ts";
import type { EmbeddingsClient } from "../providers/embeddings_client.ts";
import type { ProviderEndpoints } from "../providers/registry.ts";
import { providerSettingsForAgent, resolveProviders } from "../providers/resolve_providers.ts";
import type { ProviderClientOptions } from "../providers/resolve_providers.ts";
import { withProviderRetry } from "../providers/retry.ts";
import type { ProviderRetryOptions } from "../providers/retry.ts";
import type { JobContext } from "../worker/job_consumer.ts";
import { chunkDocument } from "./chunker.ts";
import type { ChunkOptions } from "./chunker.ts";
import { extractText } from "./extract.ts";
import { NO_RAG_METRICS } from "./rag_metrics.ts";
import type { IngestDocumentOutcome, RagMetrics } from "./rag_metrics.ts";

export interface IngestJobOptions {
  nc: NatsConnection;
  subjects: Subjects;
  log: Logger;
  endpoints?: ProviderEndpoints;
  providerOptions?: ProviderClientOptions;
  chunking?: ChunkOptions;
  /** Retries of one embedding batch. Default 5 attempts, backoff from 500 ms, waits up to 30 s. */
  retry?: Omit<ProviderRetryOptions, "signal" | "onRetry">;
  /** Chunks per embedding request, below the provider's own maximum. Default 32. */
  batchSize?: number;
  /** Deadline of each call to the tenant actor. Default 15 000 ms. */
  actorTimeoutMs?: number;
  /** Where chunks written and document outcomes are counted. Default: nowhere. */
  metrics?: RagMetrics;
}

/** Transport problems: the job comes back later instead of failing the document. */
const TRANSIENT_BUS_CODES: ReadonlySet<string> = new Set([
  BusErrorCodes.TIMEOUT,
  BusErrorCodes.NO_RESPONDERS,
  BusErrorCodes.NOT_OWNER,
  BusErrorCodes.OVERLOADED,
  BusErrorCodes.UNAVAILABLE,
  BusErrorCodes.CONNECTION_CLOSED,
]);

/** Stops the job without a failure: the document was deleted or queued again meanwhile. */
class Superseded extends Error {}

export function ingestJobHandler(
  options: IngestJobOptions,
): (job: IngestJob, ctx: JobContext) => Promise<void> {
  const { nc, subjects, log } = options;
  const actorTimeoutMs = options.actorTimeoutMs ?? 15_000;
  const batchSize = options.batchSize ?? 32;
  const retry = { maxAttempts: 5, baseDelayMs: 500, maxDelayMs: 30_000, ...options.retry };
  const metrics = options.metrics ?? NO_RAG_METRICS;

  const call = async <T>(tenant: string, op: string, body: Record<string, unknown>): Promise<T> => {
    try {
      const { body: reply } = await requestReply<T>(nc, subjects.tenantOp(tenant, op), body, {
        tenant,
        timeoutMs: actorTimeoutMs,
      });
      return reply;
    } catch (err) {
      const code = err instanceof SfError ? err.code : (err as { code?: unknown }).code;
      if (code === RagErrorCodes.STALE_JOB || code === StoreErrorCodes.NOT_FOUND)
        throw new Superseded(String(code));
      throw err;
    }
  };

  const embedder = (context: IngestContextReply): EmbeddingsClient =>
    resolveProviders(
      providerSettingsForAgent(
        { voiceSettings: {}, model: null },
        ["embeddings"] as const,
        context.embedding,
      ),
      context.provider_keys,
      options.endpoints ?? {},
      options.providerOptions ?? {},
    ).embeddings;

  const embedBatch = (
    client: EmbeddingsClient,
    texts: string[],
    target: "documents" | "conversations",
    ctx: JobContext,
    jobLog: Logger,
  ): Promise<number[][]> =>
    withProviderRetry(() => client.embed(texts, { target, role: "passage", signal: ctx.signal }), {
      ...retry,
      signal: ctx.signal,
      onRetry: ({ attempt, delayMs, error }) =>
        jobLog.warn({ attempt, delayMs, code: error.code }, "embedding batch failed; retrying"),
    });

  /** How the document ended; a throw means the job comes back (or, on its last delivery, fails). */
  async function documentJob(
    job: Extract<IngestJob, { kind: "document" }>,
    ctx: JobContext,
  ): Promise<IngestDocumentOutcome> {
    const jobLog = log.child({ tenant: job.tenant, documentId: job.documentId, generation: job.generation });
    const ids = { document_id: job.documentId, generation: job.generation };
    const progress = (status: string, extra: Record<string, unknown> = {}): Promise<unknown> =>
      call(job.tenant, "document-progress", { ...ids, status, ...extra });
    try {
      const context = await call<IngestContextReply>(job.tenant, "ingest-context", {
        ...ids,
        with_content: job.data === undefined,
      });
      if (!context.current) throw new Superseded("generation");
      let text: string;
      let title: string | null = null;
      if (job.data !== undefined) {
        await progress("extracting");
        const extracted = await extractText(job.data, job.fileType);
        text = extracted.text;
        title = extracted.title;
      } else {
        if (context.content === undefined || context.content.trim() === "") {
          throw new SfError("SF_ERR_DOCUMENT_UNREADABLE", "the document has no stored text to embed again");
        }
        text = context.content;
      }
      const chunks = chunkDocument(text, options.chunking);
      if (chunks.length === 0) throw new SfError("SF_ERR_DOCUMENT_UNREADABLE", "the document has no text");
      await progress(`embedding 0/${chunks.length}`, {
        ...(job.data !== undefined ? { content: text } : {}),
        ...(title !== null ? { title: title.slice(0, 500) } : {}),
      });
      const client = embedder(context);
      const size = Math.max(1, Math.min(batchSize, client.maxBatchSize));
      for (let start = 0; start < chunks.length; start += size) {
        const batch = chunks.slice(start, start + size);
        const vectors = await embedBatch(
          client,
          batch.map((c) => c.content),
          "documents",
          ctx,
          jobLog,
        );
        await call(job.tenant, "document-chunks", {
          ...ids,
          fingerprint: context.fingerprint,
          chunks: batch.map((c, i) => ({
            chunk_index: c.index,
            content: c.content,
            embedding: vectors[i],
            chunk_metadata: { heading_path: c.headingPath, tokens: c.tokens },
          })),
        });
        metrics.chunksIngested(batch.length);
        await progress(`embedding ${start + batch.length}/${chunks.length}`);
      }
      await progress("ready", { chunk_count: chunks.length, fingerprint: context.fingerprint });
      jobLog.info({ chunks: chunks.length }, "document ingested");
      return "ready";
    } catch (err) {
      if (err instanceof Superseded) {
        jobLog.info({ reason: err.message }, "ingestion superseded; nothing more to do");
        return "superseded";
      }
      if (ctx.signal.aborted) throw err;
      const wire = toWireError(err);
      if (TRANSIENT_BUS_CODES.has(wire.code) && !ctx.finalAttempt) throw err;
      jobLog.warn({ err: wire }, "document ingestion failed");
      try {
        await progress(`failed: ${wire.message}`);
      } catch (reportErr) {
        if (reportErr instanceof Superseded) return "superseded";
        throw reportErr;
      }
      return "failed";
    }
  }

  async function transcriptsJob(
    job: Extract<IngestJob, { kind: "transcripts" }>,
    ctx: JobContext,
  ): Promise<void> {
    const jobLog = log.child({ tenant: job.tenant, job: job.jobId });
    const context = await call<IngestContextReply>(job.tenant, "ingest-context", {});
    const client = embedder(context);
    let after: string | undefined;
    let written = 0;
    for (;;) {
      const page = await call<{ rows: Array<{ id: string; turn_id: string | null; content: string }> }>(
        job.tenant,
        "transcripts-page",
        { ...(after === undefined ? {} : { after_id: after }), limit: 100 },
      );
      if (page.rows.length === 0) break;
      after = page.rows[page.rows.length - 1]?.id;
      const rows = page.rows.filter(
        (r): r is { id: string; turn_id: string; content: string } =>
          r.turn_id !== null && r.content.trim() !== "",
      );
      const size = Math.max(1, Math.min(batchSize, client.maxBatchSize));
      for (let start = 0; start < rows.length; start += size) {
        const batch = rows.slice(start, start + size);
        const vectors = await embedBatch(
          client,
          batch.map((r) => r.content),
          "conversations",
          ctx,
          jobLog,
        );
        const result = await call<{ written: number }>(job.tenant, "transcript-embeddings", {
          fingerprint: context.fingerprint,
          items: batch.map((r, i) => ({ turn_id: r.turn_id, embedding: vectors[i] })),
        });
        written += result.written;
      }
    }
    jobLog.info({ written }, "transcripts re-embedded");
  }

  return async (job, ctx) => {
    if (job.kind === "document") {
      let outcome: IngestDocumentOutcome = ctx.finalAttempt && !ctx.signal.aborted ? "failed" : "requeued";
      try {
        outcome = await documentJob(job, ctx);
      } finally {
        metrics.documentIngested(outcome);
      }
    } else {
      try {
        await transcriptsJob(job, ctx);
      } catch (err) {
        if (err instanceof Superseded) return;
        throw err;
      }
    }
  };
}
