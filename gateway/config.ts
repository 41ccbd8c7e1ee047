/**
 * The gateway's configuration: the one place that reads the environment. Everything else
 * takes the parsed, frozen object.
 */
import { ConfigError } from "../actors/index.ts";

export interface GatewayConfig {
  readonly natsUrl: string;
  readonly subjectPrefix: string;
  readonly partitions: number;
  /** HTTP port; 0 picks a free one (the bound port is logged). */
  readonly port: number;
  readonly host: string;
  readonly maxBodyBytes: number;
  /** Allowed CORS origins; `*` allows any. */
  readonly corsOrigins: readonly string[];
  readonly logLevel: string;
  /** How long shutdown waits for in-flight requests. */
  readonly shutdownGraceMs: number;
}

type Env = Record<string, string | undefined>;

const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"];

function int(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === "") return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new ConfigError(`${name} must be an integer from ${min} to ${max}, got ${JSON.stringify(raw)}`);
  }
  return value;
}

function origins(raw: string | undefined): string[] {
  if (raw === undefined || raw.trim() === "") return [];
  const list = raw
    .split(",")
    .map((o) => o.trim().replace(/\/+$/, ""))
    .filter((o) => o !== "");
  for (const o of list) {
    if (o === "*") continue;
    let url: URL;
    try {
      url = new URL(o);
    } catch (err) {
      throw new ConfigError(`SF_GATEWAY_CORS_ORIGINS: ${JSON.stringify(o)} is not an origin`, { cause: err });
    }
    if (url.origin !== o) {
      throw new ConfigError(
        `SF_GATEWAY_CORS_ORIGINS: ${JSON.stringify(o)} must be scheme://host[:port] only`,
      );
    }
  }
  return list;
}

export function parseGatewayConfig(env: Env = process.env): GatewayConfig {
  const logLevel = env["SF_LOG_LEVEL"] ?? "info";
  if (!LOG_LEVELS.includes(logLevel)) {
    throw new ConfigError(`SF_LOG_LEVEL must be one of ${LOG_LEVELS.join(", ")}`);
  }
  return Object.freeze({
    natsUrl: env["NATS_URL"] ?? "nats://127.0.0.1:4222",
    subjectPrefix: env["SF_SUBJECT_PREFIX"] ?? "sf",
    partitions: int(env, "SF_PARTITIONS", 256, 1, 65_536),
    port: int(env, "SF_GATEWAY_PORT", 8080, 0, 65_535),
    host: env["SF_GATEWAY_HOST"] ?? "127.0.0.1",
    maxBodyBytes: int(env, "SF_GATEWAY_MAX_BODY_BYTES", 1024 * 1024, 1, 1024 * 1024 * 1024),
    corsOrigins: Object.freeze(origins(env["SF_GATEWAY_CORS_ORIGINS"])),
    logLevel,
    shutdownGraceMs: int(env, "SF_GATEWAY_SHUTDOWN_GRACE_MS", 10_000, 0, 600_000),
  });
}
