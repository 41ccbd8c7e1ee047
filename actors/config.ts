/**
 * The actor host's configuration: the one place that reads the environment. Everything else
 * takes the parsed, frozen object.
 */
import { hostname } from "node:os";
import { ConfigError } from "./errors.ts";

export interface ActorHostConfig {
  readonly natsUrl: string;
  readonly subjectPrefix: string;
  readonly partitions: number;
  readonly hostId: string;
  readonly leaseTtlMs: number;
  readonly balanceIntervalMs: number;
  readonly mailboxCapacity: number;
  readonly idlePassivateMs: number;
  readonly metricsPort: number;
  readonly logLevel: string;
  readonly streamReplicas: number;
}

type Env = Record<string, string | undefined>;

function int(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === "") return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new ConfigError(`${name} must be an integer from ${min} to ${max}, got ${JSON.stringify(raw)}`);
  }
  return value;
}

export function parseActorHostConfig(env: Env = process.env): ActorHostConfig {
  const hostId = env["SF_HOST_ID"] ?? `host-${hostname().replace(/[^A-Za-z0-9_-]/g, "-")}-${process.pid}`;
  if (!/^[A-Za-z0-9_-]{1,128}$/.test(hostId))
    throw new ConfigError("SF_HOST_ID must be 1-128 of A-Z a-z 0-9 _ -");
  return Object.freeze({
    natsUrl: env["NATS_URL"] ?? "nats://127.0.0.1:4222",
    subjectPrefix: env["SF_SUBJECT_PREFIX"] ?? "sf",
    partitions: int(env, "SF_PARTITIONS", 256, 1, 65_536),
    hostId,
    leaseTtlMs: int(env, "SF_LEASE_TTL_MS", 3000, 500, 600_000),
    balanceIntervalMs: int(env, "SF_BALANCE_INTERVAL_MS", 500, 50, 60_000),
    mailboxCapacity: int(env, "SF_MAILBOX_CAPACITY", 1024, 1, 1_000_000),
    idlePassivateMs: int(env, "SF_IDLE_PASSIVATE_MS", 300_000, 1000, 86_400_000),
    metricsPort: int(env, "SF_METRICS_PORT", 9464, 0, 65_535),
    logLevel: env["SF_LOG_LEVEL"] ?? "info",
    streamReplicas: int(env, "SF_STREAM_REPLICAS", 1, 1, 5),
  });
}
