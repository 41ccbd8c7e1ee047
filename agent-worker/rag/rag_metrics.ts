/**
 * What retrieval and ingestion report, and its Prometheus form. `retrieve` and the ingestion job
 * see only the `RagMetrics` interface (`RetrievalDeps.metrics`, `IngestJobOptions.metrics`), so a
 * test can give them a registry of its own; the worker passes one built on its `/metrics` registry.
 * Every label has a fixed set of values.
 */
import { Counter, Histogram } from "prom-client";
import type { Registry } from "prom-client";

/**
 * `embed`: the query's embedding call(s); `search`: the `rag-search` round trip to the tenant
 * actor (documents and transcripts); `assemble`: building the context within the token budget;
 * `total`: all of retrieval.
 */
export type RagStep = "embed" | "search" | "assemble" | "total";

/**
 * How a document job ended: `ready` (embedded and written), `failed` (the document is marked
 * failed), `superseded` (deleted or queued again meanwhile), `requeued` (the job comes back
 * later: the tenant actor could not be reached, or the worker stopped).
 */
export type IngestDocumentOutcome = "ready" | "failed" | "superseded" | "requeued";

export interface RagMetrics {
  /** A retrieval step completed in `seconds`. */
  retrievalStep(step: RagStep, seconds: number): void;
  /** `count` document chunks were embedded and written. */
  chunksIngested(count: number): void;
  documentIngested(outcome: IngestDocumentOutcome): void;
}

/** Reports nothing: the default when no metrics are passed. */
export const NO_RAG_METRICS: RagMetrics = Object.freeze({
  retrievalStep: () => undefined,
  chunksIngested: () => undefined,
  documentIngested: () => undefined,
});

export interface PrometheusRagMetrics extends RagMetrics {
  readonly stepDuration: Histogram<"step">;
  readonly chunks: Counter;
  readonly documents: Counter<"outcome">;
}

/** `sf_rag_step_seconds{step}`, `sf_ingest_chunks_total` and `sf_ingest_documents_total{outcome}` on `registry`. */
export function createRagMetrics(registry: Registry): PrometheusRagMetrics {
  const stepDuration = new Histogram({
    name: "sf_rag_step_seconds",
    help: "Retrieval for a turn, by step: embed (query embedding), search (rag-search through the tenant actor), assemble (context within the token budget), total",
    labelNames: ["step"],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  const chunks = new Counter({
    name: "sf_ingest_chunks_total",
    help: "Document chunks embedded and written by ingestion jobs",
    registers: [registry],
  });
  const documents = new Counter({
    name: "sf_ingest_documents_total",
    help: "Document ingestion jobs ended, by outcome (ready, failed, superseded, requeued)",
    labelNames: ["outcome"],
    registers: [registry],
  });
  return {
    stepDuration,
    chunks,
    documents,
    retrievalStep(step, seconds) {
      stepDuration.observe({ step }, seconds);
    },
    chunksIngested(count) {
      chunks.inc(count);
    },
    documentIngested(outcome) {
      documents.inc({ outcome });
    },
  };
}
