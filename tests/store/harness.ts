// Targets the store suite runs against: the embedded PGlite (with pgvector) and the native
// PostgreSQL server that deploy/services.sh starts (no pgvector there). Each test gets its own
// fresh schema, dropped afterwards.
import { randomBytes } from "node:crypto";
import { sharedServices } from "../helpers/services.ts";
import { createPostgresDatabase, PgliteInstances, quoteIdent } from "./api.ts";
import type { PlatformDatabaseConfig, SqlDatabase, TenantDatabaseConfig } from "./api.ts";
import { generateMasterKey, parseKeyringOptions } from "./api.ts";
import type { Keyring } from "./api.ts";

export interface FreshSchema {
  schema: string;
  /** The tenant-database description of this schema. */
  database: Extract<TenantDatabaseConfig, { kind: "postgres" | "pglite" }>;
  /** The same schema as a platform-database description. */
  platformDatabase: PlatformDatabaseConfig;
  drop(): Promise<void>;
}

export interface StoreTarget {
  readonly name: "pglite" | "postgres";
  /** The server offers pgvector. */
  readonly vector: boolean;
  /** The Supabase roles (anon, authenticated, service_role) exist or provisioning can create them. */
  readonly supabaseRoles: boolean;
  /** PGlite instances to pass to the store functions (shared with `sql`). */
  readonly pglite: PgliteInstances;
  /** A direct handle for assertions. */
  readonly sql: SqlDatabase;
  freshSchema(prefix?: string): Promise<FreshSchema>;
  close(): Promise<void>;
}

export function uniqueName(prefix: string): string {
  return `${prefix}_${randomBytes(5).toString("hex")}`;
}

export function testKeyring(ids: readonly string[] = ["k1"], active?: string): Keyring {
  const keys: Record<string, string> = {};
  for (const id of ids) keys[id] = generateMasterKey();
  return parseKeyringOptions({ keys, activeKeyId: active ?? ids[0] ?? "k1" });
}

async function rolesAvailable(sql: SqlDatabase): Promise<boolean> {
  const rows = await sql.query<{ ok: boolean }>(
    `select (select count(*) from pg_roles where rolname in ('anon', 'authenticated', 'service_role')) = 3
         or (select rolsuper or rolcreaterole from pg_roles where rolname = current_user) as ok`,
  );
  return rows[0]?.ok === true;
}

/** One in-memory PGlite instance (with pgvector) for a test file. */
export async function pgliteTarget(): Promise<StoreTarget> {
  const pglite = new PgliteInstances();
  const location = `memory://${uniqueName("store")}`;
  const sql = await pglite.acquire(location);
  return {
    name: "pglite",
    vector: true,
    supabaseRoles: await rolesAvailable(sql),
    pglite,
    sql,
    freshSchema(prefix = "t") {
      const schema = uniqueName(prefix);
      return Promise.resolve({
        schema,
        database: { kind: "pglite", dataDir: location, schema },
        platformDatabase: { kind: "pglite", dataDir: location, schema },
        drop: () => sql.exec(`drop schema if exists ${quoteIdent(schema)} cascade`),
      });
    },
    close: () => sql.close(),
  };
}

/**
 * The native PostgreSQL of `deploy/services.sh` (`sharedServices().databaseUrl`). Throws, with
 * the way to start it, when it is not running: the suite fails rather than skips.
 */
export async function postgresTarget(): Promise<StoreTarget> {
  const url = sharedServices().databaseUrl;
  const sql = createPostgresDatabase({ connectionString: url, maxConnections: 3 });
  let vector: boolean;
  let supabaseRoles: boolean;
  try {
    const rows = await sql.query<{ ok: boolean }>(
      "select exists (select 1 from pg_available_extensions where name = 'vector') as ok",
    );
    vector = rows[0]?.ok === true;
    supabaseRoles = await rolesAvailable(sql);
  } catch (err) {
    await sql.close();
    throw new Error(
      `PostgreSQL at ${url.replace(/:[^:@/]*@/, ":***@")} is not reachable; run deploy/services.sh up`,
      {
        cause: err,
      },
    );
  }
  return {
    name: "postgres",
    vector,
    supabaseRoles,
    pglite: new PgliteInstances(),
    sql,
    freshSchema(prefix = "t") {
      const schema = uniqueName(prefix);
      return Promise.resolve({
        schema,
        database: { kind: "postgres", url, schema },
        platformDatabase: { kind: "postgres", url, schema },
        drop: () => sql.exec(`drop schema if exists ${quoteIdent(schema)} cascade`),
      });
    },
    close: () => sql.close(),
  };
}

/** A 1024-d unit-ish vector pointing mostly along `axis`, a little along `axis + 1`. */
export function vec(axis: number, tilt = 0, dimension = 1024): number[] {
  const v = new Array<number>(dimension).fill(0);
  v[axis % dimension] = 1;
  v[(axis + 1) % dimension] = tilt;
  return v;
}

/** Expects `promise` to reject with an error whose `code` is `code`. */
export async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (err) {
    return (err as { code?: string }).code ?? `no code: ${String(err)}`;
  }
  return "resolved";
}
