/**
 * The agent worker process: `node --import tsx agent-worker/main.ts`. Pulls dispatch jobs from
 * SF_DISPATCH, text and voice each into their own slots (a voice session is admitted only while
 * the worker has memory and is not saturated: load_pressure.ts), runs them, reports its capacity
 * in KV, and on SIGTERM stops pulling, finishes its jobs and hands back what it cannot finish.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import { createLogger, onShutdown, serveMetrics } from "../actors/index.ts";
import type { DispatchJob } from "../actors/index.ts";
import {
  connectBus,
  createSubjects,
  provisionBus,
  retryWhileUnavailable,
  SfError,
  toWireError,
  watchBusStatus,
} from "../bus/index.ts";
import { parseWorkerConfig } from "./config.ts";
import { textJobHandler } from "./text/text_job.ts";
import { voiceJobHandler } from "./voice/voice_job.ts";
import { Capacity } from "./worker/capacity.ts";
import { JobConsumer, ingestQueue, voiceQueue } from "./worker/job_consumer.ts";
import { LoadPressure } from "./worker/load_pressure.ts";
import type { AdmissionQueue } from "./worker/capacity.ts";
import { ingestJobHandler } from "./rag/ingest_job.ts";
import { ProviderCheckService } from "./worker/provider_check.ts";
import { serveWorkerStats } from "./worker/worker_service.ts";
import { createProviderMetrics } from "./providers/provider_metrics.ts";
import { createRagMetrics } from "./rag/rag_metrics.ts";
import type { JobContext } from "./worker/job_consumer.ts";
import { serveMemoryDiagnostics } from "./worker/memory_diagnostics.ts";
import { VoiceSession } from "./voice/voice_session.ts";
import { AudioFrame, Room } from "@livekit/rtc-node";

const config = parseWorkerConfig();
const log = createLogger({ name: "agent-worker", level: config.logLevel });

function startupRetryLog(what: string, attempt: number, err: unknown): void {
  log.warn({ attempt, err: toWireError(err) }, `${what}: NATS did not answer; trying again`);
}

async function main(): Promise<void> {
  const nc = await connectBus({ servers: config.natsUrl, name: `sf-worker-${config.workerId}` });
  void watchBusStatus(nc, (event) => log.info({ event }, "nats status"));
  const subjects = createSubjects({ prefix: config.subjectPrefix, partitions: config.partitions });
  // Streams and consumers are made while the cluster may still be electing their leaders.
  const { workers } = await retryWhileUnavailable(
    "provisioning streams and buckets",
    () => provisionBus(nc, subjects, { replicas: config.streamReplicas }),
    { onRetry: startupRetryLog },
  );

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
  const inFlight = { count: (): number => 0, voice: (): number => 0 };
  const pressure = new LoadPressure({
    maxEventLoopDelayMs: config.maxEventLoopDelayMs,
    maxCpuRatio: config.maxCpuRatio,
  });
  pressure.start();
  const capacity = new Capacity({
    kv: workers,
    workerId: config.workerId,
    slots: config.slots,
    inFlight: () => inFlight.count(),
    maxRssMb: config.maxRssMb,
    minFreeMemoryMb: config.minFreeMemoryMb,
    voiceSlots: config.voiceSlots,
    voiceInFlight: () => inFlight.voice(),
    pressure,
  });
  // Each free slot asks again every 100 ms while the worker refuses work.
  const refusals = new Counter({
    name: "sf_worker_admission_refusals_total",
    help: "Times a free slot did not pull a job, by queue (dispatch: text, voice, ingest) and reason (memory: over SF_WORKER_MAX_RSS_MB or under SF_WORKER_MIN_FREE_MEMORY_MB; saturated: event loop delay or CPU over SF_WORKER_MAX_EVENT_LOOP_DELAY_MS / SF_WORKER_MAX_CPU_PERCENT, voice only; voice_slots); each free slot asks again every 100 ms",
    labelNames: ["queue", "reason"],
    registers: [registry],
  });
  const admitting = (queue: AdmissionQueue) => (): boolean => {
    const refused = capacity.refusal(queue);
    if (refused !== undefined) refusals.inc({ queue, reason: refused });
    return refused === undefined;
  };
  const timeouts = new Counter({
    name: "sf_worker_job_timeouts_total",
    help: "Jobs ended at their deadline (SF_JOB_TIMEOUT_MS, SF_VOICE_JOB_TIMEOUT_MS, SF_INGEST_JOB_TIMEOUT_MS), by queue",
    labelNames: ["queue"],
    registers: [registry],
  });
  const duplicates = new Counter({
    name: "sf_worker_duplicate_deliveries_total",
    help: "Deliveries of a job that started no run here, by queue and kind: adopted (a redelivery of a job running here), settled (it crossed this worker's ack), superseded (the run here was aborted: another worker claimed a later delivery)",
    labelNames: ["queue", "kind"],
    registers: [registry],
  });
  const consumer = new JobConsumer({
    nc,
    subjects,
    workerId: config.workerId,
    handler,
    log,
    slots: config.slots,
    ackWaitMs: config.ackWaitMs,
    maxDeliver: config.maxDeliver,
    jobTimeoutMs: config.jobTimeoutMs,
    admit: admitting("dispatch"),
    onJobTimeout: () => timeouts.inc({ queue: "dispatch" }),
    onDuplicateDelivery: (_job, kind) => duplicates.inc({ queue: "dispatch", kind }),
  });
  const voiceConsumer =
    config.voiceSlots === 0
      ? undefined
      : new JobConsumer({
          nc,
          subjects,
          workerId: config.workerId,
          queue: voiceQueue(subjects),
          handler,
          log,
          slots: config.voiceSlots,
          ackWaitMs: config.ackWaitMs,
          maxDeliver: config.maxDeliver,
          jobTimeoutMs: config.voiceJobTimeoutMs,
          admit: admitting("voice"),
          onJobTimeout: () => timeouts.inc({ queue: "voice" }),
          onDuplicateDelivery: (_job, kind) => duplicates.inc({ queue: "voice", kind }),
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
          jobTimeoutMs: config.ingestJobTimeoutMs,
          admit: admitting("ingest"),
          onJobTimeout: () => timeouts.inc({ queue: "ingest" }),
          onDuplicateDelivery: (_job, kind) => duplicates.inc({ queue: "ingest", kind }),
        });
  inFlight.count = () => consumer.inFlight + (ingest?.inFlight ?? 0);
  inFlight.voice = () => voiceConsumer?.inFlight ?? 0;
  new Gauge({
    name: "sf_worker_slots_in_use",
    help: "Dispatch jobs (text and voice) running on this worker",
    registers: [registry],
    collect() {
      this.set(consumer.inFlight + inFlight.voice());
    },
  });
  new Gauge({
    name: "sf_worker_slots_total",
    help: "Text dispatch job slots of this worker (SF_WORKER_SLOTS)",
    registers: [registry],
  }).set(config.slots);
  new Gauge({
    name: "sf_worker_voice_slots_in_use",
    help: "Voice sessions running on this worker",
    registers: [registry],
    collect() {
      this.set(inFlight.voice());
    },
  });
  new Gauge({
    name: "sf_worker_voice_slots_total",
    help: "Voice session slots of this worker (SF_WORKER_VOICE_SLOTS)",
    registers: [registry],
  }).set(config.voiceSlots);
  new Gauge({
    name: "sf_worker_saturated",
    help: "1 while the worker's event loop delay or CPU is over its limit and it takes no voice session",
    registers: [registry],
    collect() {
      this.set(pressure.saturated ? 1 : 0);
    },
  });
  new Gauge({
    name: "sf_worker_event_loop_delay_p99_seconds",
    help: "p99 event loop delay over the last admission window (1 s), as voice admission reads it",
    registers: [registry],
    collect() {
      this.set(pressure.state.reading.eventLoopDelayMs / 1000);
    },
  });
  new Gauge({
    name: "sf_worker_cpu_ratio",
    help: "CPU the worker process used over the last admission window (1 s), as a share of the machine's cores",
    registers: [registry],
    collect() {
      this.set(pressure.state.reading.cpuRatio);
    },
  });
  // Diagnostics for `sidekick doctor`: cheap real calls to a tenant's providers from this worker.
  const providerChecks = new ProviderCheckService({
    nc,
    subjects,
    workerId: config.workerId,
    log,
    endpoints: config.providerEndpoints,
  });
  // The text consumer first: it narrows a consumer made before the per-mode split, which a work
  // queue requires before the voice consumer can exist.
  await retryWhileUnavailable("starting the text consumer", () => consumer.start(), {
    onRetry: startupRetryLog,
  });
  if (voiceConsumer !== undefined) {
    await retryWhileUnavailable("starting the voice consumer", () => voiceConsumer.start(), {
      onRetry: startupRetryLog,
    });
  }
  if (ingest !== undefined) {
    await retryWhileUnavailable("starting the ingestion consumer", () => ingest.start(), {
      onRetry: startupRetryLog,
    });
  }
  providerChecks.start();
  // Slots per queue and provider errors, for the console's dashboard (worker_service.ts).
  const statsService = await serveWorkerStats({
    nc,
    subjects,
    workerId: config.workerId,
    log,
    queues: () => ({
      text: { slots: config.slots, in_flight: consumer.inFlight },
      voice: { slots: config.voiceSlots, in_flight: inFlight.voice() },
      ingest: { slots: config.ingestSlots, in_flight: ingest?.inFlight ?? 0 },
    }),
    providerErrors: providerOptions.metrics.errors,
  });
  await capacity.publish();
  const timer = setInterval(() => {
    capacity.publish().catch((err: unknown) => log.warn({ err: toWireError(err) }, "capacity report failed"));
  }, 1000);
  const metricsServer = await serveMetrics(registry, config.metricsPort, config.metricsHost);
  if (config.memoryDiagnostics) {
    serveMemoryDiagnostics({
      log,
      ...(config.heapSnapshotDir === undefined ? {} : { heapSnapshotDir: config.heapSnapshotDir }),
      count: { VoiceSession, Room, AudioFrame },
      countWhen: () => inFlight.voice() === 0,
    });
  }
  log.info(
    {
      worker: config.workerId,
      slots: config.slots,
      voiceSlots: config.voiceSlots,
      metricsPort: metricsServer.port,
      nats: config.natsUrl,
    },
    "agent worker ready",
  );

  onShutdown(log, [
    () => {
      log.info({ inFlight: consumer.inFlight, voice: inFlight.voice() }, "agent worker stopping");
      clearInterval(timer);
      return capacity.withdraw();
    },
    () =>
      Promise.all([
        consumer.stop(config.ackWaitMs),
        voiceConsumer?.stop(config.ackWaitMs),
        ingest?.stop(config.ackWaitMs),
        providerChecks.stop(),
        statsService.stop(),
      ]),
    () => {
      pressure.stop();
      return Promise.resolve();
    },
    () => nc.drain(),
    () => metricsServer.close(),
  ]);
}

main().catch((err: unknown) => {
  log.fatal({ err: toWireError(err) }, "agent worker failed to start");
  process.exit(1);
});
