/**
 * The actor host's configuration: the one place that reads the environment. Everything else
 * takes the parsed, frozen object.
 */
import { hostname } from "node:os";
import { join } from "node:path";
import { parseKeyringOptions, parseMasterKeysSpec } from "./crypto/index.ts";
import type { Keyring } from "./crypto/index.ts";
import { ConfigError } from "./errors.ts";
import { envInt as int } from "./runtime/process_env.ts";
import type { Env } from "./runtime/process_env.ts";
import type { PlatformDatabaseConfig } from "./store/index.ts";

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
  /** Interface the /metrics server binds (SF_METRICS_HOST, default loopback; 0.0.0.0 in containers). */
  readonly metricsHost: string;
  readonly logLevel: string;
  readonly streamReplicas: number;
  /** How long a dispatched job may wait for a worker to claim it. */
  readonly claimTimeoutMs: number;
  /** Jobs one tenant may have in flight at once (its concurrent-session quota). */
  readonly tenantMaxJobs: number;
  /**
   * How long a tenant database may take to accept a connection (SF_TENANT_DB_CONNECT_TIMEOUT_MS)
   * and a Supabase request to answer (SF_TENANT_DB_REQUEST_TIMEOUT_MS). Both stay below the
   * gateway's SF_GATEWAY_REQUEST_TIMEOUT_MS (5 s), so an unreachable tenant database answers
   * 503 SF_ERR_DATABASE_UNAVAILABLE before the gateway gives up on the turn with a 504.
   */
  readonly tenantDbConnectTimeoutMs: number;
  readonly tenantDbRequestTimeoutMs: number;
  /** The platform database: Postgres when SF_PLATFORM_DATABASE_URL is set, else embedded PGlite. */
  readonly platformDatabase: PlatformDatabaseConfig;
  /** Master keys for the credential envelope (SF_MASTER_KEYS, SF_MASTER_KEY_ACTIVE). */
  readonly keyring: Keyring;
}

export function parseActorHostConfig(env: Env = process.env): ActorHostConfig {
  const hostId = env["SF_HOST_ID"] ?? `host-${hostname().replace(/[^A-Za-z0-9_-]/g, "-")}-${process.pid}`;
  if (!/^[A-Za-z0-9_-]{1,128}$/.test(hostId))
    throw new ConfigError("SF_HOST_ID must be 1-128 of A-Z a-z 0-9 _ -");
  const schema = env["SF_PLATFORM_SCHEMA"];
  const url = env["SF_PLATFORM_DATABASE_URL"];
  const dataDir = env["SF_DATA_DIR"] ?? "./.sidekick";
  const platformDatabase: PlatformDatabaseConfig =
    url !== undefined && url !== ""
      ? { kind: "postgres", url, ...(schema === undefined ? {} : { schema }) }
      : { kind: "pglite", dataDir: join(dataDir, "platform"), ...(schema === undefined ? {} : { schema }) };
  return Object.freeze({
    platformDatabase,
    keyring: parseKeyring(env),
    natsUrl: env["NATS_URL"] ?? "nats://127.0.0.1:4222",
    subjectPrefix: env["SF_SUBJECT_PREFIX"] ?? "sf",
    partitions: int(env, "SF_PARTITIONS", 256, 1, 65_536),
    hostId,
    leaseTtlMs: int(env, "SF_LEASE_TTL_MS", 3000, 500, 600_000),
    balanceIntervalMs: int(env, "SF_BALANCE_INTERVAL_MS", 500, 50, 60_000),
    mailboxCapacity: int(env, "SF_MAILBOX_CAPACITY", 1024, 1, 1_000_000),
    idlePassivateMs: int(env, "SF_IDLE_PASSIVATE_MS", 300_000, 1000, 86_400_000),
    metricsPort: int(env, "SF_METRICS_PORT", 9464, 0, 65_535),
    metricsHost: env["SF_METRICS_HOST"] ?? "127.0.0.1",
    logLevel: env["SF_LOG_LEVEL"] ?? "info",
    streamReplicas: int(env, "SF_STREAM_REPLICAS", 1, 1, 5),
    claimTimeoutMs: int(env, "SF_CLAIM_TIMEOUT_MS", 10_000, 100, 600_000),
    tenantMaxJobs: int(env, "SF_TENANT_MAX_JOBS", 100, 1, 1_000_000),
    tenantDbConnectTimeoutMs: int(env, "SF_TENANT_DB_CONNECT_TIMEOUT_MS", 3000, 100, 600_000),
    tenantDbRequestTimeoutMs: int(env, "SF_TENANT_DB_REQUEST_TIMEOUT_MS", 4000, 100, 600_000),
  });
}

/**
 * SF_MASTER_KEYS is `id:<base64|hex>[,id:…]` (the only secret taken from the environment);
 * SF_MASTER_KEY_ACTIVE names the key that encrypts new secrets (default: the last listed).
 */
function parseKeyring(env: Env): Keyring {
  const spec = env["SF_MASTER_KEYS"];
  if (spec === undefined || spec.trim() === "") {
    throw new ConfigError("SF_MASTER_KEYS is required: id:<32-byte key, base64 or hex>[,id:key…]");
  }
  const keys = parseMasterKeysSpec(spec);
  const ids = Object.keys(keys);
  const activeKeyId = env["SF_MASTER_KEY_ACTIVE"] ?? ids[ids.length - 1] ?? "";
  return parseKeyringOptions({ keys, activeKeyId });
}
