/**
 * The worker's NATS service `sf-agent-worker` (contract: actors/dispatch/worker_stats.ts): each
 * live worker answers `$SRV.STATS` with its slots per queue and the provider errors its calls met
 * (read from the same counter `/metrics` serves), so a reader sees every worker of the
 * deployment at once without knowing where their metrics ports are.
 */
import { Svcm } from "@nats-io/services";
import type { Service } from "@nats-io/services";
import type { NatsConnection } from "@nats-io/transport-node";
import type { Counter } from "prom-client";
import type { Logger } from "pino";
import { WORKER_SERVICE } from "../../actors/index.ts";
import type { QueueSlots, WorkerStatsReply } from "../../actors/index.ts";
import { encodeBody } from "../../bus/index.ts";
import type { Subjects } from "../../bus/index.ts";

export interface WorkerServiceOptions {
  nc: NatsConnection;
  subjects: Subjects;
  workerId: string;
  log: Logger;
  /** Slots and jobs running, per queue. */
  queues: () => { text: QueueSlots; voice: QueueSlots; ingest: QueueSlots };
  /** `sf_provider_errors_total{provider,kind,code}` (provider_metrics.ts). */
  providerErrors: Counter<"provider" | "kind" | "code">;
}

export async function workerStats(
  o: Pick<WorkerServiceOptions, "workerId" | "queues" | "providerErrors">,
  startedAt: number,
): Promise<WorkerStatsReply> {
  const metric = await o.providerErrors.get();
  const provider_errors = metric.values
    .filter((v) => v.value > 0)
    .map((v) => ({
      provider: String(v.labels["provider"] ?? ""),
      kind: String(v.labels["kind"] ?? ""),
      code: String(v.labels["code"] ?? ""),
      count: v.value,
    }));
  return { worker: o.workerId, queues: o.queues(), provider_errors, started_at: startedAt };
}

/** Registers the service; stop it (`service.stop()`) when the worker shuts down. */
export async function serveWorkerStats(o: WorkerServiceOptions): Promise<Service> {
  const startedAt = Date.now();
  const service = await new Svcm(o.nc).add({
    name: WORKER_SERVICE,
    version: "0.1.0",
    description: "Sidekick Forge agent worker: slots per queue and provider errors",
    metadata: { worker: o.workerId, prefix: o.subjects.prefix },
    queue: "",
    statsHandler: () => workerStats(o, startedAt),
  });
  service.addEndpoint("stats", {
    subject: o.subjects.workerControl(o.workerId, "stats"),
    handler: (err, msg) => {
      if (err) {
        o.log.warn({ err: err.message }, "worker stats endpoint error");
        return;
      }
      workerStats(o, startedAt).then(
        (stats) => msg.respond(encodeBody(stats)),
        (e: unknown) => {
          o.log.warn({ err: (e as Error).message }, "worker stats failed");
          msg.respondError(500, "worker stats failed");
        },
      );
    },
    metadata: { description: "this worker's slots and provider errors" },
  });
  return service;
}
