/**
 * The CLI's configuration: the one place it reads the environment (as the actor host and the
 * gateway do). Secrets are never taken from the command line; `secrets rotate-key` reads the
 * actor host's configuration (SF_MASTER_KEYS, the platform database) through
 * `parseActorHostConfig`.
 */
import { envInt } from "../../runtime/process_env.ts";
import type { Env } from "../../runtime/process_env.ts";

export interface CliConfig {
  readonly natsUrl: string;
  readonly subjectPrefix: string;
  readonly partitions: number;
  /** Overall deadline of one request to the platform (SF_CLI_TIMEOUT_MS). Default 10000 ms. */
  readonly requestTimeoutMs: number;
  /** Give up connecting to NATS after this long (SF_CLI_CONNECT_TIMEOUT_MS). Default 3000 ms. */
  readonly connectTimeoutMs: number;
  /** Colors in tables (stdout is a terminal and NO_COLOR is unset). */
  readonly color: boolean;
  /** A progress line on stderr (stderr is a terminal). */
  readonly progress: boolean;
}

export function parseCliConfig(env: Env = process.env): CliConfig {
  return Object.freeze({
    natsUrl: env["NATS_URL"] ?? "nats://127.0.0.1:4222",
    subjectPrefix: env["SF_SUBJECT_PREFIX"] ?? "sf",
    partitions: envInt(env, "SF_PARTITIONS", 256, 1, 65_536),
    requestTimeoutMs: envInt(env, "SF_CLI_TIMEOUT_MS", 10_000, 100, 600_000),
    connectTimeoutMs: envInt(env, "SF_CLI_CONNECT_TIMEOUT_MS", 3000, 100, 120_000),
    color: process.stdout.isTTY && (env["NO_COLOR"] ?? "") === "",
    progress: process.stderr.isTTY,
  });
}
