/**
 * Publishing ingestion jobs to SF_INGEST, deduplicated by `Nats-Msg-Id` (one job per document
 * version), and waiting for the stream's acknowledgement.
 */
import { jetstream } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { BusErrorCodes, encodeBody, SfError } from "../../bus/index.ts";
import type { Subjects } from "../../bus/index.ts";
import type { IngestJob } from "./ingest_job.ts";

const PUBLISH_TIMEOUT_MS = 5000;

export function ingestPublisher(
  nc: NatsConnection,
  subjects: Subjects,
): (job: IngestJob, msgId: string) => Promise<void> {
  const js = jetstream(nc);
  return async (job, msgId) => {
    try {
      await js.publish(subjects.ingest(job.tenant), encodeBody(job), {
        msgID: msgId,
        timeout: PUBLISH_TIMEOUT_MS,
      });
    } catch (err) {
      throw new SfError(BusErrorCodes.UNAVAILABLE, "the ingestion job could not be queued", {
        cause: err,
        retryable: true,
        details: { job: job.jobId },
      });
    }
  };
}
