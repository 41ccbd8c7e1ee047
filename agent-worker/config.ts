/** The agent worker's configuration: the one place that reads its environment. */
import { availableParallelism, hostname } from "node:os";
import { ConfigError, envInt as int } from "../actors/index.ts";
import type { Env } from "../actors/index.ts";
import type { ProviderEndpoints } from "./providers/registry.ts";

export interface WorkerConfig {
  readonly natsUrl: string;
  readonly subjectPrefix: string;
  readonly partitions: number;
  readonly workerId: string;
  /** Text jobs in flight at most (SF_WORKER_SLOTS, default 32). */
  readonly slots: number;
  /**
   * Voice sessions at most (SF_WORKER_VOICE_SLOTS; 0 = this worker runs no voice). Default 5 per
   * core: what held on the voice bench (10 sessions on 2 shared cores; 25 did not, docs/capacity.md).
   */
  readonly voiceSlots: number;
  /**
   * The worker takes no new voice session while its event loop's p99 delay over the last second is
   * above this (SF_WORKER_MAX_EVENT_LOOP_DELAY_MS, default 200), …
   */
  readonly maxEventLoopDelayMs: number;
  /** …or while it used more than this share of the machine's cores (SF_WORKER_MAX_CPU_PERCENT, 90). */
  readonly maxCpuRatio: number;
  /** How long a text job may run, claim to outcome (SF_JOB_TIMEOUT_MS, default 300000). */
  readonly jobTimeoutMs: number;
  /** How long a voice session may run, claim to outcome (SF_VOICE_JOB_TIMEOUT_MS, default 3600000). */
  readonly voiceJobTimeoutMs: number;
  /** How long a document ingestion job may run (SF_INGEST_JOB_TIMEOUT_MS, default 1800000). */
  readonly ingestJobTimeoutMs: number;
  /** Document ingestion jobs in flight at most (SF_WORKER_INGEST_SLOTS; 0 = no ingestion here). */
  readonly ingestSlots: number;
  readonly ackWaitMs: number;
  readonly maxDeliver: number;
  /** The worker takes no new job while its resident memory is above this. */
  readonly maxRssMb: number;
  /** …or while the machine has less free memory than this. */
  readonly minFreeMemoryMb: number;
  readonly providerEndpoints: ProviderEndpoints;
  readonly metricsPort: number;
  /** Interface the /metrics server binds (SF_METRICS_HOST, default loopback; 0.0.0.0 in containers). */
  readonly metricsHost: string;
  /**
   * Replicas of the streams and buckets this worker provisions (SF_STREAM_REPLICAS, default 1): must
   * match the actor hosts', or each side would set the streams' replica count back to its own.
   */
  readonly streamReplicas: number;
  /** Voice sessions' bounds, in ms (SF_VOICE_*_MS). */
  readonly voice: VoiceTimeouts;
  readonly logLevel: string;
  /**
   * Memory diagnostics on SIGUSR2 (SF_WORKER_MEMORY_DIAGNOSTICS=1; needs `node --expose-gc`), for
   * benches and investigations: worker/memory_diagnostics.ts. Off by default; no deployment sets it.
   */
  readonly memoryDiagnostics: boolean;
  /** Where those diagnostics write heap snapshots (SF_WORKER_HEAP_SNAPSHOT_DIR); absent: none. */
  readonly heapSnapshotDir: string | undefined;
}

export interface VoiceTimeouts {
  /** How long the agent stays in a room nobody joins (SF_VOICE_EMPTY_ROOM_TIMEOUT_MS, 30000). */
  readonly emptyRoomTimeoutMs: number;
  /** How long a reply in progress may finish after the last user left (SF_VOICE_DRAIN_TIMEOUT_MS, 10000). */
  readonly drainTimeoutMs: number;
  /** How long closing the agent session, then leaving the room, may each take (SF_VOICE_CLOSE_TIMEOUT_MS, 5000). */
  readonly closeTimeoutMs: number;
  /** How long joining the room and starting the agent may take (SF_VOICE_JOIN_TIMEOUT_MS, 30000). */
  readonly joinTimeoutMs: number;
}

function endpoints(env: Env): ProviderEndpoints {
  const raw = env["SF_PROVIDER_ENDPOINTS"];
  if (raw === undefined || raw.trim() === "") return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch (err) {
    throw new ConfigError("SF_PROVIDER_ENDPOINTS must be a JSON object of provider name to base URL", {
      cause: err,
    });
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new ConfigError("SF_PROVIDER_ENDPOINTS must be a JSON object of provider name to base URL");
  }
  for (const [name, url] of Object.entries(parsed)) {
    if (typeof url !== "string" || !/^https?:\/\//.test(url)) {
      throw new ConfigError(`SF_PROVIDER_ENDPOINTS.${name} must be an http(s) URL`);
    }
  }
  return parsed as ProviderEndpoints;
}

function flag(env: Env, name: string): boolean {
  const raw = env[name];
  if (raw === undefined || raw === "" || raw === "0") return false;
  if (raw === "1") return true;
  throw new ConfigError(`${name} must be 0 or 1, got ${JSON.stringify(raw)}`);
}

function nonEmpty(raw: string | undefined): string | undefined {
  return raw === undefined || raw.trim() === "" ? undefined : raw;
}

export function parseWorkerConfig(env: Env = process.env): WorkerConfig {
  const workerId =
    env["SF_WORKER_ID"] ?? `worker-${hostname().replace(/[^A-Za-z0-9_-]/g, "-")}-${process.pid}`;
  if (!/^[A-Za-z0-9_-]{1,128}$/.test(workerId)) {
    throw new ConfigError("SF_WORKER_ID must be 1-128 of A-Z a-z 0-9 _ -");
  }
  return Object.freeze({
    natsUrl: env["NATS_URL"] ?? "nats://127.0.0.1:4222",
    subjectPrefix: env["SF_SUBJECT_PREFIX"] ?? "sf",
    partitions: int(env, "SF_PARTITIONS", 256, 1, 65_536),
    workerId,
    slots: int(env, "SF_WORKER_SLOTS", 32, 1, 10_000),
    voiceSlots: int(env, "SF_WORKER_VOICE_SLOTS", 5 * availableParallelism(), 0, 10_000),
    maxEventLoopDelayMs: int(env, "SF_WORKER_MAX_EVENT_LOOP_DELAY_MS", 200, 10, 60_000),
    maxCpuRatio: int(env, "SF_WORKER_MAX_CPU_PERCENT", 90, 1, 100) / 100,
    jobTimeoutMs: int(env, "SF_JOB_TIMEOUT_MS", 300_000, 1000, 86_400_000),
    voiceJobTimeoutMs: int(env, "SF_VOICE_JOB_TIMEOUT_MS", 3_600_000, 1000, 86_400_000),
    ingestJobTimeoutMs: int(env, "SF_INGEST_JOB_TIMEOUT_MS", 1_800_000, 1000, 86_400_000),
    ingestSlots: int(env, "SF_WORKER_INGEST_SLOTS", 2, 0, 64),
    ackWaitMs: int(env, "SF_JOB_ACK_WAIT_MS", 30_000, 500, 3_600_000),
    maxDeliver: int(env, "SF_JOB_MAX_DELIVER", 3, 1, 100),
    maxRssMb: int(env, "SF_WORKER_MAX_RSS_MB", 4096, 64, 1_000_000),
    minFreeMemoryMb: int(env, "SF_WORKER_MIN_FREE_MEMORY_MB", 256, 0, 1_000_000),
    providerEndpoints: endpoints(env),
    metricsPort: int(env, "SF_METRICS_PORT", 9465, 0, 65_535),
    metricsHost: env["SF_METRICS_HOST"] ?? "127.0.0.1",
    streamReplicas: int(env, "SF_STREAM_REPLICAS", 1, 1, 5),
    voice: Object.freeze({
      emptyRoomTimeoutMs: int(env, "SF_VOICE_EMPTY_ROOM_TIMEOUT_MS", 30_000, 100, 3_600_000),
      drainTimeoutMs: int(env, "SF_VOICE_DRAIN_TIMEOUT_MS", 10_000, 0, 600_000),
      closeTimeoutMs: int(env, "SF_VOICE_CLOSE_TIMEOUT_MS", 5000, 100, 600_000),
      joinTimeoutMs: int(env, "SF_VOICE_JOIN_TIMEOUT_MS", 30_000, 1000, 600_000),
    }),
    logLevel: env["SF_LOG_LEVEL"] ?? "info",
    memoryDiagnostics: flag(env, "SF_WORKER_MEMORY_DIAGNOSTICS"),
    heapSnapshotDir: nonEmpty(env["SF_WORKER_HEAP_SNAPSHOT_DIR"]),
  });
}
