/**
 * Opening stores from their descriptions: the platform store (PostgreSQL URL or the embedded
 * PGlite under `./.sidekick/platform`), tenant provisioning (migrations on PostgreSQL/PGlite, a
 * schema check on Supabase) and tenant stores.
 */
import type { Keyring } from "../crypto/index.ts";
import { EmbeddingDimensionMismatchError, InvalidStoreOptionsError } from "./errors.ts";
import { applyMigrations, DEFAULT_EMBEDDING_DIMENSION } from "./migrations.ts";
import type { MigrationReport } from "./migrations.ts";
import { PgliteInstances } from "./pglite_instances.ts";
import { createPostgresDatabase } from "./sql_database.ts";
import type { SqlDatabase } from "./sql_database.ts";
import { SqlPlatformStore } from "./sql_platform_store.ts";
import { SqlTenantStore } from "./sql_tenant_store.ts";
import { SupabaseTenantStore, verifySupabaseSchema } from "./supabase_tenant_store.ts";
import { parseTenantDatabaseConfig } from "./tenant_database_config.ts";
import type { TenantDatabaseConfig, TenantStore } from "./types.ts";

/** Where the embedded platform database lives when none is configured. */
export const DEFAULT_PLATFORM_DATA_DIR = "./.sidekick/platform";
/** Parent of embedded tenant databases (`<dir>/<tenant slug>`), when the platform chooses. */
export const DEFAULT_TENANT_DATA_DIR = "./.sidekick/tenants";

export interface ConnectionOptions {
  /** Connections per PostgreSQL pool; default 5. */
  poolMax?: number;
  /** Default 30 s. */
  idleTimeoutMs?: number;
  /** Default 10 s. */
  connectTimeoutMs?: number;
  /** Default none. */
  statementTimeoutMs?: number;
  /** Supabase request timeout; default 15 s. */
  requestTimeoutMs?: number;
}

export interface ResolvedConnectionOptions {
  readonly poolMax: number;
  readonly idleTimeoutMs: number;
  readonly connectTimeoutMs: number;
  readonly statementTimeoutMs: number | undefined;
  readonly requestTimeoutMs: number;
}

function positiveInt(value: number | undefined, fallback: number, name: string): number {
  const v = value ?? fallback;
  if (!Number.isInteger(v) || v <= 0)
    throw new InvalidStoreOptionsError(`${name} must be a positive integer`);
  return v;
}

export function parseConnectionOptions(options: ConnectionOptions = {}): ResolvedConnectionOptions {
  return Object.freeze({
    poolMax: positiveInt(options.poolMax, 5, "poolMax"),
    idleTimeoutMs: positiveInt(options.idleTimeoutMs, 30_000, "idleTimeoutMs"),
    connectTimeoutMs: positiveInt(options.connectTimeoutMs, 10_000, "connectTimeoutMs"),
    statementTimeoutMs:
      options.statementTimeoutMs === undefined
        ? undefined
        : positiveInt(options.statementTimeoutMs, 0, "statementTimeoutMs"),
    requestTimeoutMs: positiveInt(options.requestTimeoutMs, 15_000, "requestTimeoutMs"),
  });
}

function openSqlDatabase(
  config: { kind: "postgres"; url: string } | { kind: "pglite"; dataDir: string },
  connection: ResolvedConnectionOptions,
  pglite: PgliteInstances,
): Promise<SqlDatabase> {
  if (config.kind === "pglite") return pglite.acquire(config.dataDir);
  const options: Parameters<typeof createPostgresDatabase>[0] = {
    connectionString: config.url,
    maxConnections: connection.poolMax,
    idleTimeoutMs: connection.idleTimeoutMs,
    connectTimeoutMs: connection.connectTimeoutMs,
  };
  if (connection.statementTimeoutMs !== undefined) options.statementTimeoutMs = connection.statementTimeoutMs;
  return Promise.resolve(createPostgresDatabase(options));
}

// ---- platform --------------------------------------------------------------------------------

export type PlatformDatabaseConfig =
  { kind: "postgres"; url: string; schema?: string } | { kind: "pglite"; dataDir: string; schema?: string };

export interface OpenPlatformStoreOptions {
  /** Default: embedded PGlite at `./.sidekick/platform`. */
  database?: PlatformDatabaseConfig;
  keyring: Keyring;
  /** Apply the platform migrations first; default true. */
  migrate?: boolean;
  connection?: ConnectionOptions;
  /** Share PGlite instances with tenant stores of this process. */
  pglite?: PgliteInstances;
  migrationsDir?: string;
}

export async function openPlatformStore(options: OpenPlatformStoreOptions): Promise<SqlPlatformStore> {
  const database = options.database ?? { kind: "pglite", dataDir: DEFAULT_PLATFORM_DATA_DIR };
  const connection = parseConnectionOptions(options.connection);
  const db = await openSqlDatabase(database, connection, options.pglite ?? new PgliteInstances());
  const schema = database.schema ?? "public";
  try {
    if (options.migrate ?? true) {
      const migrate: Parameters<typeof applyMigrations>[1] = { set: "platform", schema };
      if (options.migrationsDir !== undefined) migrate.migrationsDir = options.migrationsDir;
      await applyMigrations(db, migrate);
    }
    return new SqlPlatformStore({ db, keyring: options.keyring, schema });
  } catch (err) {
    await db.close();
    throw err;
  }
}

// ---- tenants ---------------------------------------------------------------------------------

export interface ProvisionTenantOptions {
  tenantId: string;
  database: TenantDatabaseConfig;
  /**
   * Dimension of new vector columns (default 1024). When the database already has them with
   * another dimension, provisioning fails with SF_ERR_EMBEDDING_DIMENSION_MISMATCH.
   */
  embeddingDimension?: number;
  /** When the server lacks pgvector: fail (default) or provision everything else. */
  vector?: "required" | "optional";
  connection?: ConnectionOptions;
  pglite?: PgliteInstances;
  migrationsDir?: string;
  /** Supabase only: replaces fetch. */
  fetch?: typeof fetch;
}

export type ProvisionReport =
  | { kind: "supabase"; verified: true }
  | ({ kind: "postgres" | "pglite" } & MigrationReport & {
        vector: boolean;
        embeddingDimension: number | null;
      });

/**
 * Makes a tenant database ready: applies the tenant migrations on PostgreSQL/PGlite (an
 * existing database of the old service keeps its tables and rows; only what is missing is
 * added) or, on Supabase, verifies the schema and fails naming what is missing.
 */
export async function provisionTenantDatabase(options: ProvisionTenantOptions): Promise<ProvisionReport> {
  const config = parseTenantDatabaseConfig(options.database);
  if (config.kind === "supabase") {
    const verify: Parameters<typeof verifySupabaseSchema>[0] = {
      tenantId: options.tenantId,
      url: config.url,
      serviceRoleKey: config.serviceRoleKey,
      embeddingDimension:
        options.embeddingDimension ?? config.embeddingDimension ?? DEFAULT_EMBEDDING_DIMENSION,
    };
    if (config.schema !== undefined) verify.schema = config.schema;
    if (options.fetch !== undefined) verify.fetch = options.fetch;
    await verifySupabaseSchema(verify);
    return { kind: "supabase", verified: true };
  }
  const connection = parseConnectionOptions(options.connection);
  const db = await openSqlDatabase(config, connection, options.pglite ?? new PgliteInstances());
  try {
    const schema = config.schema ?? "public";
    const migrate: Parameters<typeof applyMigrations>[1] = {
      set: "tenant",
      schema,
      vector: options.vector ?? "required",
      params: { embeddingDimension: options.embeddingDimension ?? DEFAULT_EMBEDDING_DIMENSION },
    };
    if (options.migrationsDir !== undefined) migrate.migrationsDir = options.migrationsDir;
    const report = await applyMigrations(db, migrate);
    // Open once to read what the database now offers (and check the dimension).
    const store = await SqlTenantStore.open({ db, tenantId: options.tenantId, schema, ownsDatabase: false });
    const dimension = store.capabilities.embeddingDimension;
    if (
      options.embeddingDimension !== undefined &&
      dimension !== null &&
      dimension !== options.embeddingDimension
    ) {
      throw new EmbeddingDimensionMismatchError(
        `tenant ${options.tenantId} stores ${dimension}-dimensional embeddings; provisioning asked for ${options.embeddingDimension}`,
        { details: { stored: dimension, requested: options.embeddingDimension } },
      );
    }
    return { kind: config.kind, ...report, vector: store.capabilities.vector, embeddingDimension: dimension };
  } finally {
    await db.close();
  }
}

export interface OpenTenantStoreOptions {
  tenantId: string;
  database: TenantDatabaseConfig;
  keyring: Keyring;
  connection?: ConnectionOptions;
  pglite?: PgliteInstances;
  /** Supabase only: replaces fetch. */
  fetch?: typeof fetch;
}

/** Opens a store on a provisioned tenant database (no migrations are run here). */
export async function openTenantStore(options: OpenTenantStoreOptions): Promise<TenantStore> {
  const config = parseTenantDatabaseConfig(options.database);
  const connection = parseConnectionOptions(options.connection);
  if (config.kind === "supabase") {
    const supabase: ConstructorParameters<typeof SupabaseTenantStore>[0] = {
      tenantId: options.tenantId,
      url: config.url,
      serviceRoleKey: config.serviceRoleKey,
      keyring: options.keyring,
      requestTimeoutMs: connection.requestTimeoutMs,
    };
    if (config.schema !== undefined) supabase.schema = config.schema;
    if (config.embeddingDimension !== undefined) supabase.embeddingDimension = config.embeddingDimension;
    if (options.fetch !== undefined) supabase.fetch = options.fetch;
    return new SupabaseTenantStore(supabase);
  }
  const db = await openSqlDatabase(config, connection, options.pglite ?? new PgliteInstances());
  try {
    return await SqlTenantStore.open({
      db,
      tenantId: options.tenantId,
      schema: config.schema ?? "public",
      keyring: options.keyring,
    });
  } catch (err) {
    await db.close();
    throw err;
  }
}
