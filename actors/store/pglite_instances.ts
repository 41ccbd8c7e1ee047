/**
 * PGlite instances of this process, shared by data directory. PGlite is a single-connection,
 * in-process database: a directory may be opened only once per process, so the platform store
 * and any embedded tenants that live in the same directory (one schema each) share an instance.
 * Reference counted: the instance closes when its last handle does.
 */
import { mkdir } from "node:fs/promises";
import { resolve } from "node:path";
import { PGlite } from "@electric-sql/pglite";
import { vector } from "@electric-sql/pglite/vector";
import { createPgliteDatabase } from "./sql_database.ts";
import type { SqlDatabase } from "./sql_database.ts";
import { DatabaseUnavailableError } from "./errors.ts";

interface Entry {
  db: Promise<PGlite>;
  refs: number;
}

/** `memory://<name>` keeps data in memory (shared under that name); anything else is a directory. */
export function isMemoryLocation(location: string): boolean {
  return location.startsWith("memory://");
}

export class PgliteInstances {
  readonly #entries = new Map<string, Entry>();

  /** Opens (or shares) the instance at `location` and returns a handle that releases it on close. */
  async acquire(location: string): Promise<SqlDatabase> {
    const key = isMemoryLocation(location) ? location : resolve(location);
    let entry = this.#entries.get(key);
    if (entry === undefined) {
      entry = { db: openPglite(key), refs: 0 };
      this.#entries.set(key, entry);
    }
    entry.refs++;
    const current = entry;
    let db: PGlite;
    try {
      db = await current.db;
    } catch (err) {
      current.refs--;
      if (this.#entries.get(key) === current) this.#entries.delete(key);
      throw new DatabaseUnavailableError(`cannot open the embedded database at ${key}`, { cause: err });
    }
    let released = false;
    return createPgliteDatabase(db, async () => {
      if (released) return;
      released = true;
      current.refs--;
      if (current.refs === 0 && this.#entries.get(key) === current) {
        this.#entries.delete(key);
        await db.close();
      }
    });
  }

  /** Number of open instances (for tests and health). */
  get size(): number {
    return this.#entries.size;
  }
}

async function openPglite(location: string): Promise<PGlite> {
  if (!isMemoryLocation(location)) await mkdir(location, { recursive: true });
  return PGlite.create(isMemoryLocation(location) ? "memory://" : location, { extensions: { vector } });
}
