/**
 * The SQL migrations under `deploy/migrations/<set>/NNNN_name.sql`, shared by every adapter.
 *
 * - Applied in name order inside one transaction per run, under an advisory lock per schema,
 *   and recorded in `<schema>.sf_schema_migrations (name, checksum, applied_at)`.
 * - The checksum is the SHA-256 of the file as shipped (before templating); a recorded
 *   migration whose file changed fails with SF_ERR_MIGRATION_CHECKSUM_MISMATCH.
 * - Templates: `{{embedding_dimension}}` is filled in at provisioning.
 * - A file whose header says `-- sf:requires-extension vector` needs pgvector. Where the
 *   server does not offer it, `vector: "required"` (the default) fails with
 *   SF_ERR_VECTOR_UNAVAILABLE and `vector: "optional"` skips the migration (reported), so a
 *   later run on a server that has gained pgvector applies it.
 */
import { createHash } from "node:crypto";
import { readdir, readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { join } from "node:path";
import {
  InvalidStoreOptionsError,
  MigrationChecksumMismatchError,
  MigrationFailedError,
  VectorUnavailableError,
  toStoreError,
} from "./errors.ts";
import { SfError } from "../../bus/index.ts";
import { quoteIdent, SCHEMA_NAME_PATTERN } from "./sql_database.ts";
import type { SqlDatabase, SqlQueryable } from "./sql_database.ts";

export type MigrationSet = "platform" | "tenant";

export interface Migration {
  readonly set: MigrationSet;
  /** File name without `.sql`, e.g. `0002_tenant_core`. */
  readonly name: string;
  /** Extensions named by `-- sf:requires-extension <name>` header lines. */
  readonly requiresExtensions: readonly string[];
  readonly template: string;
  readonly checksum: string;
}

export interface MigrationParams {
  /** Dimension of `vector(d)` columns; default 1024. */
  embeddingDimension: number;
}

export const DEFAULT_EMBEDDING_DIMENSION = 1024;
/** pgvector's limit for indexed `vector` columns (HNSW/IVFFlat). */
export const MAX_INDEXED_VECTOR_DIMENSION = 2000;

/** `deploy/migrations` of this checkout. */
export const DEFAULT_MIGRATIONS_DIR = fileURLToPath(new URL("../../deploy/migrations/", import.meta.url));

const FILE_PATTERN = /^(\d{4})_([a-z0-9_]+)\.sql$/;
const REQUIRES_PATTERN = /^--\s*sf:requires-extension\s+([a-z0-9_]+)\s*$/gm;

const cache = new Map<string, Promise<readonly Migration[]>>();

/** Loads (once per directory) the migrations of a set, sorted by name. */
export function loadMigrations(
  set: MigrationSet,
  dir: string = DEFAULT_MIGRATIONS_DIR,
): Promise<readonly Migration[]> {
  const key = `${dir}\0${set}`;
  let loaded = cache.get(key);
  if (loaded === undefined) {
    loaded = readMigrations(set, dir).catch((err: unknown) => {
      cache.delete(key);
      throw err;
    });
    cache.set(key, loaded);
  }
  return loaded;
}

async function readMigrations(set: MigrationSet, dir: string): Promise<readonly Migration[]> {
  const setDir = join(dir, set);
  const files = (await readdir(setDir)).filter((f) => f.endsWith(".sql")).sort();
  const migrations: Migration[] = [];
  for (const file of files) {
    if (!FILE_PATTERN.test(file)) {
      throw new InvalidStoreOptionsError(`migration file ${set}/${file} is not named NNNN_name.sql`);
    }
    const template = await readFile(join(setDir, file), "utf8");
    const requiresExtensions = [...template.matchAll(REQUIRES_PATTERN)].map((m) => m[1] ?? "");
    migrations.push(
      Object.freeze({
        set,
        name: file.slice(0, -".sql".length),
        requiresExtensions: Object.freeze(requiresExtensions),
        template,
        checksum: createHash("sha256").update(template, "utf8").digest("hex"),
      }),
    );
  }
  return Object.freeze(migrations);
}

export function validateEmbeddingDimension(dimension: number): number {
  if (!Number.isInteger(dimension) || dimension < 1 || dimension > MAX_INDEXED_VECTOR_DIMENSION) {
    throw new InvalidStoreOptionsError(
      `embedding dimension must be an integer in 1..${MAX_INDEXED_VECTOR_DIMENSION}, got ${dimension}`,
    );
  }
  return dimension;
}

/** The SQL of a migration with its template parameters filled in. */
export function renderMigration(migration: Migration, params: MigrationParams): string {
  const dimension = validateEmbeddingDimension(params.embeddingDimension);
  return migration.template.replaceAll("{{embedding_dimension}}", String(dimension));
}

/**
 * One script with every migration of a set, for databases we cannot migrate ourselves
 * (a Supabase project: paste it into the SQL editor, or `psql "$DATABASE_URL" -f tenant.sql`).
 * Safe to run more than once.
 */
export async function renderMigrationScript(
  set: MigrationSet,
  params: MigrationParams,
  dir: string = DEFAULT_MIGRATIONS_DIR,
): Promise<string> {
  const migrations = await loadMigrations(set, dir);
  return migrations.map((m) => `-- ${set}/${m.name}.sql\n${renderMigration(m, params)}`).join("\n\n");
}

export interface ApplyMigrationsOptions {
  set: MigrationSet;
  /** Schema that holds the tables; created when missing. Default `public`. */
  schema?: string;
  params?: Partial<MigrationParams>;
  /** What to do when a migration needs pgvector and the server lacks it. Default `required`. */
  vector?: "required" | "optional";
  migrationsDir?: string;
}

export interface MigrationReport {
  schema: string;
  applied: string[];
  alreadyApplied: string[];
  skipped: Array<{ name: string; reason: string }>;
}

/** Applies the set's pending migrations to `schema` and records them. */
export async function applyMigrations(
  db: SqlDatabase,
  options: ApplyMigrationsOptions,
): Promise<MigrationReport> {
  const schema = options.schema ?? "public";
  if (!SCHEMA_NAME_PATTERN.test(schema)) {
    throw new InvalidStoreOptionsError(`schema name "${schema}" must match ${String(SCHEMA_NAME_PATTERN)}`);
  }
  const params: MigrationParams = {
    embeddingDimension: options.params?.embeddingDimension ?? DEFAULT_EMBEDDING_DIMENSION,
  };
  validateEmbeddingDimension(params.embeddingDimension);
  const migrations = await loadMigrations(options.set, options.migrationsDir);
  const report: MigrationReport = { schema, applied: [], alreadyApplied: [], skipped: [] };
  const table = `${quoteIdent(schema)}.sf_schema_migrations`;

  try {
    await db.transaction(async (tx) => {
      await tx.query("select pg_advisory_xact_lock(hashtext($1))", [`sf_schema_migrations:${schema}`]);
      await tx.exec(`create schema if not exists ${quoteIdent(schema)}`);
      // Objects are created in the tenant schema; types and operators of extensions are found in
      // `public` or, on databases that came from Supabase, in `extensions`.
      await tx.exec(`set local search_path to ${quoteIdent(schema)}, public, extensions`);
      await tx.exec(
        `create table if not exists ${table} (
           name text primary key,
           checksum text not null,
           applied_at timestamptz not null default now()
         )`,
      );
      const rows = await tx.query<{ name: string; checksum: string }>(`select name, checksum from ${table}`);
      const recorded = new Map(rows.map((r) => [r.name, r.checksum]));
      const available = await availableExtensions(tx);
      for (const migration of migrations) {
        const known = recorded.get(migration.name);
        if (known !== undefined) {
          if (known !== migration.checksum) {
            throw new MigrationChecksumMismatchError(
              `migration ${options.set}/${migration.name} was applied with another checksum; released migration files must not change`,
              { details: { migration: migration.name, schema } },
            );
          }
          report.alreadyApplied.push(migration.name);
          continue;
        }
        const missing = migration.requiresExtensions.filter((ext) => !available.has(ext));
        if (missing.length > 0) {
          const reason = `extension ${missing.join(", ")} is not available on this server`;
          if (options.vector === "optional") {
            report.skipped.push({ name: migration.name, reason });
            continue;
          }
          throw new VectorUnavailableError(
            `migration ${options.set}/${migration.name} needs the ${missing.join(", ")} extension (pgvector), which this PostgreSQL server does not offer; install pgvector or provision with vector: "optional"`,
            { details: { migration: migration.name, missing } },
          );
        }
        try {
          await tx.exec(renderMigration(migration, params));
        } catch (err) {
          const cause = toStoreError(err, `migration ${options.set}/${migration.name}`);
          throw new MigrationFailedError(
            `migration ${options.set}/${migration.name} failed: ${cause.message}`,
            {
              cause,
              details: { migration: migration.name, schema, causeCode: cause.code },
            },
          );
        }
        await tx.query(`insert into ${table} (name, checksum) values ($1, $2)`, [
          migration.name,
          migration.checksum,
        ]);
        report.applied.push(migration.name);
      }
    });
  } catch (err) {
    if (err instanceof SfError) throw err;
    throw toStoreError(err, `apply ${options.set} migrations`);
  }
  return report;
}

async function availableExtensions(tx: SqlQueryable): Promise<Set<string>> {
  const rows = await tx.query<{ name: string }>("select name from pg_catalog.pg_available_extensions");
  const installed = await tx.query<{ name: string }>("select extname as name from pg_catalog.pg_extension");
  return new Set([...rows, ...installed].map((r) => r.name));
}

/** Names of the migrations recorded in `schema` (empty when the table does not exist). */
export async function appliedMigrations(db: SqlQueryable, schema: string): Promise<string[]> {
  const exists = await db.query<{ ok: boolean }>("select to_regclass($1) is not null as ok", [
    `${quoteIdent(schema)}.sf_schema_migrations`,
  ]);
  if (exists[0]?.ok !== true) return [];
  const rows = await db.query<{ name: string }>(
    `select name from ${quoteIdent(schema)}.sf_schema_migrations order by name`,
  );
  return rows.map((r) => r.name);
}
