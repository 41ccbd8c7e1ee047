/**
 * The ingestion contract between tenant actors (producers) and agent workers (consumers): one job
 * per document version on `<prefix>.ingest.<tenant>` (stream SF_INGEST, `Nats-Msg-Id` =
 * `<document>.<generation>`), and one job per transcript re-embedding. Workers extract, chunk and
 * embed, and write everything back through the tenant actor, which drops writes of a generation
 * that is no longer current.
 */

export const DOCUMENT_FILE_TYPES = ["text", "markdown", "html", "pdf"] as const;
export type DocumentFileType = (typeof DOCUMENT_FILE_TYPES)[number];

export type IngestJob =
  | {
      readonly jobId: string;
      readonly tenant: string;
      readonly mode: "ingest";
      readonly kind: "document";
      readonly documentId: string;
      /** Increases each time the document is queued again (upload retry, re-embedding). */
      readonly generation: number;
      readonly fileType: DocumentFileType;
      /** The uploaded file; absent when re-embedding from the stored text. */
      readonly data?: Uint8Array;
      readonly title: string;
      readonly sourceUrl: string | null;
      readonly createdAt: number;
    }
  | {
      readonly jobId: string;
      readonly tenant: string;
      readonly mode: "ingest";
      readonly kind: "transcripts";
      /** The re-embedding run this job belongs to. */
      readonly generation: number;
      readonly createdAt: number;
    };

/** Checks a decoded ingestion job; returns a reason when it is not one. */
export function ingestJobProblem(value: unknown): string | undefined {
  if (typeof value !== "object" || value === null) return "an ingestion job is an object";
  const v = value as Record<string, unknown>;
  for (const field of ["jobId", "tenant"]) {
    if (typeof v[field] !== "string" || v[field] === "") return `job.${field} must be a non-empty string`;
  }
  if (v["mode"] !== "ingest") return "job.mode must be ingest";
  if (typeof v["generation"] !== "number" || !Number.isInteger(v["generation"])) {
    return "job.generation must be an integer";
  }
  if (v["kind"] === "transcripts") return undefined;
  if (v["kind"] !== "document") return "job.kind must be document or transcripts";
  if (typeof v["documentId"] !== "string" || v["documentId"] === "") return "job.documentId must be a string";
  if (!(DOCUMENT_FILE_TYPES as readonly unknown[]).includes(v["fileType"]))
    return "job.fileType is not supported";
  if (v["data"] !== undefined && !(v["data"] instanceof Uint8Array)) return "job.data must be bytes";
  return undefined;
}
