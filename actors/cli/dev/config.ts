/**
 * The configuration of `npm run dev`'s helpers (the supervisor and the demo seeding): the one
 * place they read the environment. `deploy/dev.sh` exports what they need (the services'
 * addresses, SF_ADMIN_TOKEN, SF_GATEWAY_PORT, SF_MASTER_KEYS) before it starts them.
 */
import { join } from "node:path";
import { envInt, withWorkerMallocEnv } from "../../runtime/process_env.ts";
import type { Env } from "../../runtime/process_env.ts";
import type { LivekitCredentials } from "../../store/index.ts";
import { parseCliConfig } from "../sidekick/config.ts";
import type { CliConfig } from "../sidekick/config.ts";

export interface SeedDemoConfig {
  /** NATS address, subject prefix, partitions and request deadline, as the `sidekick` CLI reads them. */
  readonly cli: CliConfig;
  /** The demo tenant's embedded database (SF_DEMO_TENANT_DIR, default `<SF_DATA_DIR>/tenants/demo`). */
  readonly tenantDataDir: string;
  /** Where the demo API key is kept, mode 0600 (SF_DEMO_API_KEY_FILE, default `<SF_DATA_DIR>/demo-api-key`). */
  readonly apiKeyFile: string;
  /** The gateway as printed (SF_GATEWAY_URL, default `http://127.0.0.1:<SF_GATEWAY_PORT or 8080>`). */
  readonly gatewayUrl: string;
  /** SF_ADMIN_TOKEN, printed in the banner; undefined when the gateway has no token login. */
  readonly adminToken: string | undefined;
  /** LIVEKIT_URL, LIVEKIT_API_KEY, LIVEKIT_API_SECRET: given to the demo tenant (voice) when all are set. */
  readonly livekit: LivekitCredentials | undefined;
  /** How long to wait for an actor host to answer (SF_SEED_PLATFORM_WAIT_MS). Default 120000 ms. */
  readonly platformWaitMs: number;
  /** How long to wait for the gateway's /health before printing (SF_SEED_GATEWAY_WAIT_MS). Default 60000 ms. */
  readonly gatewayWaitMs: number;
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === "" ? undefined : value;
}

export function parseSeedDemoConfig(env: Env = process.env): SeedDemoConfig {
  const dataDir = nonEmpty(env["SF_DATA_DIR"]) ?? "./.sidekick";
  const port = envInt(env, "SF_GATEWAY_PORT", 8080, 1, 65_535);
  const livekitUrl = nonEmpty(env["LIVEKIT_URL"]);
  const livekitKey = nonEmpty(env["LIVEKIT_API_KEY"]);
  const livekitSecret = nonEmpty(env["LIVEKIT_API_SECRET"]);
  return Object.freeze({
    cli: parseCliConfig(env),
    tenantDataDir: nonEmpty(env["SF_DEMO_TENANT_DIR"]) ?? join(dataDir, "tenants", "demo"),
    apiKeyFile: nonEmpty(env["SF_DEMO_API_KEY_FILE"]) ?? join(dataDir, "demo-api-key"),
    gatewayUrl: (nonEmpty(env["SF_GATEWAY_URL"]) ?? `http://127.0.0.1:${port}`).replace(/\/+$/, ""),
    adminToken: nonEmpty(env["SF_ADMIN_TOKEN"]),
    livekit:
      livekitUrl !== undefined && livekitKey !== undefined && livekitSecret !== undefined
        ? { url: livekitUrl, apiKey: livekitKey, apiSecret: livekitSecret }
        : undefined,
    platformWaitMs: envInt(env, "SF_SEED_PLATFORM_WAIT_MS", 120_000, 100, 3_600_000),
    gatewayWaitMs: envInt(env, "SF_SEED_GATEWAY_WAIT_MS", 60_000, 0, 3_600_000),
  });
}

export interface DevSupervisorConfig {
  /** SIGTERM → SIGKILL grace when stopping (SF_DEV_STOP_GRACE_MS). Default 15000 ms. */
  readonly stopGraceMs: number;
  /** First restart delay (SF_DEV_RESTART_BACKOFF_MS). Default 1000 ms, doubling to 30000 ms. */
  readonly initialBackoffMs: number;
  readonly maxBackoffMs: number;
  /** A run this long resets the backoff. Default 60000 ms. */
  readonly resetAfterMs: number;
  /** SF_DEV_SEED=0 skips the demo seeding. */
  readonly seed: boolean;
  /**
   * The agent worker's whole environment: the supervisor's, with the worker's glibc malloc
   * settings (WORKER_MALLOC_ENV: MALLOC_ARENA_MAX=2) unless it sets them, as in the image.
   */
  readonly workerEnv: Env;
}

export function parseDevSupervisorConfig(env: Env = process.env): DevSupervisorConfig {
  return Object.freeze({
    stopGraceMs: envInt(env, "SF_DEV_STOP_GRACE_MS", 15_000, 0, 600_000),
    initialBackoffMs: envInt(env, "SF_DEV_RESTART_BACKOFF_MS", 1000, 1, 600_000),
    maxBackoffMs: 30_000,
    resetAfterMs: 60_000,
    seed: (env["SF_DEV_SEED"] ?? "1") !== "0",
    workerEnv: Object.freeze(withWorkerMallocEnv(env)),
  });
}
