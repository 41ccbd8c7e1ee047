/**
 * The agent worker process: `node --import tsx agent-worker/main.ts`. Pulls dispatch jobs from
 * SF_DISPATCH into a fixed number of slots, runs text jobs, reports its capacity in KV, and on
 * SIGTERM stops pulling, finishes its jobs and hands back what it cannot finish.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import { createLogger, onShutdown, serveMetrics } from "../actors/index.ts";
import type { DispatchJob } from "../actors/index.ts";
import {
  connectBus,
  createSubjects,
  provisionBus,
  SfError,
  toWireError,
  watchBusStatus,
} from "../bus/index.ts";
import { parseWorkerConfig } from "./config.ts";
import { textJobHandler } from "./text/text_job.ts";
import { voiceJobHandler } from "./voice/voice_job.ts";
import { Capacity } from "./worker/capacity.ts";
import { JobConsumer, ingestQueue } from "./worker/job_consumer.ts";
import { ingestJobHandler } from "./rag/ingest_job.ts";
import { ProviderCheckService } from "./worker/provider_check.ts";
import { createProviderMetrics } from "./providers/provider_metrics.ts";
import { createRagMetrics } from "./rag/rag_metrics.ts";
import type { JobContext } from "./worker/job_consumer.ts";

const config = parseWorkerConfig();
const log = createLogger({ name: "agent-worker", level: config.logLevel });

async function main(): Promise<void> {
  const nc = await connectBus({ servers: config.natsUrl, name: `sf-worker-${config.workerId}` });
  void watchBusStatus(nc, (event) => log.info({ event }, "nats status"));
  const subjects = createSubjects({ prefix: config.subjectPrefix, partitions: config.partitions });
  const { workers } = await provisionBus(nc, subjects, { replicas: config.streamReplicas });

  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: "sf_" });
  const jobs = new Counter({
    name: "sf_worker_jobs_total",
    help: "Jobs finished by this worker, by mode and outcome",
    labelNames: ["mode", "outcome"],
    registers: [registry],
  });
  const duration = new Histogram({
    name: "sf_worker_job_duration_seconds",
    help: "Time from claim to recorded outcome",
    labelNames: ["mode"],
    buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers: [registry],
  });

  const providerOptions = { metrics: createProviderMetrics(registry) };
  const ragMetrics = createRagMetrics(registry);
  const endpoints = config.providerEndpoints;
  const text = textJobHandler({ nc, subjects, log, endpoints, providerOptions, ragMetrics });
  const ingestHandler = ingestJobHandler({
    nc,
    subjects,
    log,
    endpoints,
    providerOptions,
    metrics: ragMetrics,
  });
  const voice = voiceJobHandler({
    nc,
    subjects,
    log,
    endpoints,
    providerOptions,
    ragMetrics,
    ...config.voice,
  });
  const handler = async (job: DispatchJob, ctx: JobContext): Promise<void> => {
    const started = performance.now();
    try {
      if (job.mode === "voice") await voice(job, ctx);
      else if (job.mode === "text") await text(job, ctx);
      else {
        throw new SfError("SF_ERR_MODE_UNAVAILABLE", `this worker does not run ${String(job.mode)} jobs`, {
          details: { mode: job.mode },
        });
      }
      jobs.inc({ mode: job.mode, outcome: "done" });
    } catch (err) {
      jobs.inc({ mode: job.mode, outcome: "failed" });
      throw err;
    } finally {
      duration.observe({ mode: job.mode }, (performance.now() - started) / 1000);
    }
  };
  const inFlight = { count: (): number => 0 };
  const capacity = new Capacity({
    kv: workers,
    workerId: config.workerId,
    slots: config.slots,
    inFlight: () => inFlight.count(),
    maxRssMb: config.maxRssMb,
    minFreeMemoryMb: config.minFreeMemoryMb,
  });
  // Each free slot asks again every 100 ms while the worker refuses work for memory.
  const refusals = new Counter({
    name: "sf_worker_admission_refusals_total",
    help: "Times a free slot did not pull a job because the worker is over its memory limits (SF_WORKER_MAX_RSS_MB, SF_WORKER_MIN_FREE_MEMORY_MB), by queue; each free slot asks again every 100 ms",
    labelNames: ["queue"],
    registers: [registry],
  });
  const admitting = (queue: "dispatch" | "ingest") => (): boolean => {
    const admitted = capacity.admit();
    if (!admitted) refusals.inc({ queue });
    return admitted;
  };
  const consumer = new JobConsumer({
    nc,
    subjects,
    workerId: config.workerId,
    handler,
    log,
    slots: config.slots,
    ackWaitMs: config.ackWaitMs,
    maxDeliver: config.maxDeliver,
    admit: admitting("dispatch"),
  });
  const ingest =
    config.ingestSlots === 0
      ? undefined
      : new JobConsumer({
          nc,
          subjects,
          workerId: config.workerId,
          queue: ingestQueue(subjects),
          handler: async (job, ctx) => {
            const started = performance.now();
            try {
              await ingestHandler(job, ctx);
              jobs.inc({ mode: "ingest", outcome: "done" });
            } catch (err) {
              jobs.inc({ mode: "ingest", outcome: "failed" });
              throw err;
            } finally {
              duration.observe({ mode: "ingest" }, (performance.now() - started) / 1000);
            }
          },
          log,
          slots: config.ingestSlots,
          ackWaitMs: config.ackWaitMs,
          maxDeliver: config.maxDeliver,
          admit: admitting("ingest"),
        });
  inFlight.count = () => consumer.inFlight + (ingest?.inFlight ?? 0);
  new Gauge({
    name: "sf_worker_slots_in_use",
    help: "Jobs running on this worker",
    registers: [registry],
    collect() {
      this.set(consumer.inFlight);
    },
  });
  new Gauge({
    name: "sf_worker_slots_total",
    help: "Dispatch job slots of this worker (SF_WORKER_SLOTS)",
    registers: [registry],
  }).set(config.slots);
  // Diagnostics for `sidekick doctor`: cheap real calls to a tenant's providers from this worker.
  const providerChecks = new ProviderCheckService({
    nc,
    subjects,
    workerId: config.workerId,
    log,
    endpoints: config.providerEndpoints,
  });
  await consumer.start();
  await ingest?.start();
  providerChecks.start();
  await capacity.publish();
  const timer = setInterval(() => {
    capacity.publish().catch((err: unknown) => log.warn({ err: toWireError(err) }, "capacity report failed"));
  }, 1000);
  const metricsServer = await serveMetrics(registry, config.metricsPort, config.metricsHost);
  log.info(
    { worker: config.workerId, slots: config.slots, metricsPort: metricsServer.port, nats: config.natsUrl },
    "agent worker ready",
  );

  onShutdown(log, [
    () => {
      log.info({ inFlight: consumer.inFlight }, "agent worker stopping");
      clearInterval(timer);
      return capacity.withdraw();
    },
    () =>
      Promise.all([consumer.stop(config.ackWaitMs), ingest?.stop(config.ackWaitMs), providerChecks.stop()]),
    () => nc.drain(),
    () => metricsServer.close(),
  ]);
}

main().catch((err: unknown) => {
  log.fatal({ err: toWireError(err) }, "agent worker failed to start");
  process.exit(1);
});
