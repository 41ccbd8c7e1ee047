/**
 * The one SQL seam shared by the PostgreSQL and PGlite adapters: parameterised queries,
 * multi-statement scripts, and transactions. Everything above it (migrations, the SQL stores)
 * is written once against this interface.
 */
import pg from "pg";
import type { PGlite } from "@electric-sql/pglite";
import { StoreClosedError, toStoreError } from "./errors.ts";

export type SqlDialect = "postgres" | "pglite";

export interface SqlQueryable {
  /** Runs one parameterised statement ($1, $2, …) and returns its rows. */
  query<R = Record<string, unknown>>(text: string, params?: readonly unknown[]): Promise<R[]>;
  /** Runs a script of several statements without parameters. */
  exec(script: string): Promise<void>;
}

export interface SqlDatabase extends SqlQueryable {
  readonly dialect: SqlDialect;
  /** Runs `fn` in one transaction on one connection; rolls back when it throws. */
  transaction<T>(fn: (tx: SqlQueryable) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

/** `"name"` with embedded quotes doubled. */
export function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/** Schema names we create or attach to: lower-case identifiers, at most 63 bytes. */
export const SCHEMA_NAME_PATTERN = /^[a-z_][a-z0-9_]{0,62}$/;

/**
 * The statements and transactions a handle has started and not finished. Closing a handle
 * (its tenant's credentials changed, the cache evicted it) refuses new work at once but lets this
 * work end first: node-postgres' `pool.end()` strands a query that waits for a pooled connection
 * until the connect timeout, so ending the pool under it would stall that turn (and the actor's
 * mailbox behind it) for 10 s and then fail it.
 */
class InFlight {
  #count = 0;
  #waiters: Array<() => void> = [];

  async run<T>(work: () => Promise<T>): Promise<T> {
    this.#count += 1;
    try {
      return await work();
    } finally {
      this.#count -= 1;
      if (this.#count === 0) for (const wake of this.#waiters.splice(0)) wake();
    }
  }

  /** Resolves once nothing is running. */
  drained(): Promise<void> {
    if (this.#count === 0) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push(resolve));
  }
}

// ---------------------------------------------------------------------------------------------
// node-postgres

export interface PostgresDatabaseOptions {
  /** Any PostgreSQL URL (`postgres://user:pass@host:port/db?sslmode=require`). */
  connectionString: string;
  /** Pool size; default 5. */
  maxConnections?: number;
  /** Close idle connections after this long; default 30 s. */
  idleTimeoutMs?: number;
  /** Give up connecting after this long; default 10 s. */
  connectTimeoutMs?: number;
  /** Server-side statement timeout; default none. */
  statementTimeoutMs?: number;
  /**
   * The server ends a session that sits in an open transaction this long (default 60 s): a paused
   * process (SIGSTOP, a VM freeze) cannot hold a transaction's row locks, and so other hosts'
   * writes to the same rows, for longer. Our transactions never wait on anything but SQL.
   */
  idleInTransactionTimeoutMs?: number;
  /** `application_name` on the server; default `sidekick-forge`. */
  applicationName?: string;
}

// int8 as a JS number (counts, identities) instead of a string; values above 2^53 do not occur
// in the columns we read.
const PG_INT8_OID = 20;
const pgTypes = {
  getTypeParser: ((oid: number, format?: "text" | "binary"): unknown => {
    if (oid === PG_INT8_OID && format !== "binary") return (value: string) => Number(value);
    return format === undefined
      ? pg.types.getTypeParser(oid)
      : (pg.types.getTypeParser(oid, format) as unknown);
  }) as typeof pg.types.getTypeParser,
};

class PgQueryable implements SqlQueryable {
  constructor(private readonly client: pg.PoolClient) {}

  async query<R>(text: string, params: readonly unknown[] = []): Promise<R[]> {
    const result = await this.client.query(text, params as unknown[]);
    return result.rows as R[];
  }

  async exec(script: string): Promise<void> {
    await this.client.query(script);
  }
}

class PostgresDatabase implements SqlDatabase {
  readonly dialect = "postgres" as const;
  readonly #pool: pg.Pool;
  #closed = false;

  constructor(options: PostgresDatabaseOptions) {
    const config: pg.PoolConfig = {
      connectionString: options.connectionString,
      max: options.maxConnections ?? 5,
      idleTimeoutMillis: options.idleTimeoutMs ?? 30_000,
      connectionTimeoutMillis: options.connectTimeoutMs ?? 10_000,
      application_name: options.applicationName ?? "sidekick-forge",
      types: pgTypes,
    };
    if (options.statementTimeoutMs !== undefined) config.statement_timeout = options.statementTimeoutMs;
    config.idle_in_transaction_session_timeout = options.idleInTransactionTimeoutMs ?? 60_000;
    this.#pool = new pg.Pool(config);
    // An idle client that loses its connection emits here; the pool replaces it. The next query
    // reports the failure to its caller, so nothing is lost by not rethrowing.
    this.#pool.on("error", (err) => {
      this.lastIdleError = err;
    });
  }

  /** The last error an idle pooled connection reported (for health checks). */
  lastIdleError: Error | undefined;

  readonly #inFlight = new InFlight();

  #check(): void {
    if (this.#closed) throw new StoreClosedError("the database handle is closed");
  }

  async query<R>(text: string, params: readonly unknown[] = []): Promise<R[]> {
    this.#check();
    const result = await this.#inFlight.run(() => this.#pool.query(text, params as unknown[]));
    return result.rows as R[];
  }

  async exec(script: string): Promise<void> {
    this.#check();
    await this.#inFlight.run(() => this.#pool.query(script));
  }

  async transaction<T>(fn: (tx: SqlQueryable) => Promise<T>): Promise<T> {
    this.#check();
    return this.#inFlight.run(() => this.#transaction(fn));
  }

  async #transaction<T>(fn: (tx: SqlQueryable) => Promise<T>): Promise<T> {
    const client = await this.#pool.connect();
    let broken: Error | undefined;
    // A checked-out client has none of the pool's listeners: without this one, a connection the
    // server ends during the transaction (a PostgreSQL restart) is an unhandled 'error' event that
    // ends the process. The client is not reused, and the transaction fails with that connection
    // error (retryable once coded), not with the "not queryable" of the statement that came next.
    let connectionLost: Error | undefined;
    const onError = (err: Error): void => {
      connectionLost ??= err;
      broken = err;
    };
    client.on("error", onError);
    try {
      await client.query("begin");
      try {
        const result = await fn(new PgQueryable(client));
        await client.query("commit");
        return result;
      } catch (err) {
        try {
          await client.query("rollback");
        } catch (rollbackErr) {
          broken = rollbackErr instanceof Error ? rollbackErr : new Error(String(rollbackErr));
        }
        throw connectionLost ?? err;
      }
    } finally {
      client.removeListener("error", onError);
      // A connection whose rollback failed, or that broke, is not returned to the pool.
      client.release(broken);
    }
  }

  /** Refuses new work at once; ends the pool once the work already started has finished. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#inFlight.drained();
    await this.#pool.end();
  }
}

/** A pooled PostgreSQL handle. Connection failures surface on the first query. */
export function createPostgresDatabase(options: PostgresDatabaseOptions): SqlDatabase {
  return new PostgresDatabase(options);
}

// ---------------------------------------------------------------------------------------------
// PGlite

class PgliteQueryable implements SqlQueryable {
  constructor(private readonly target: Pick<PGlite, "query" | "exec">) {}

  async query<R>(text: string, params: readonly unknown[] = []): Promise<R[]> {
    const result = await this.target.query<R>(text, params as unknown[]);
    return result.rows;
  }

  async exec(script: string): Promise<void> {
    await this.target.exec(script);
  }
}

class PgliteDatabase implements SqlDatabase {
  readonly dialect = "pglite" as const;
  readonly #db: PGlite;
  readonly #onClose: () => Promise<void>;
  readonly #direct: PgliteQueryable;
  readonly #inFlight = new InFlight();
  #closed = false;

  constructor(db: PGlite, onClose: () => Promise<void>) {
    this.#db = db;
    this.#onClose = onClose;
    this.#direct = new PgliteQueryable(db);
  }

  #check(): void {
    if (this.#closed) throw new StoreClosedError("the database handle is closed");
  }

  async query<R>(text: string, params: readonly unknown[] = []): Promise<R[]> {
    this.#check();
    return this.#inFlight.run(() => this.#direct.query<R>(text, params));
  }

  async exec(script: string): Promise<void> {
    this.#check();
    return this.#inFlight.run(() => this.#direct.exec(script));
  }

  async transaction<T>(fn: (tx: SqlQueryable) => Promise<T>): Promise<T> {
    this.#check();
    // PGlite runs one transaction at a time; other queries wait for it.
    return this.#inFlight.run(() => this.#db.transaction((tx) => fn(new PgliteQueryable(tx))));
  }

  /** Refuses new work at once; releases the instance once the work already started has finished. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#inFlight.drained();
    await this.#onClose();
  }
}

/**
 * Wraps a PGlite instance. `onClose` runs when the handle closes (the registry uses it to
 * release its reference); by default the instance itself is closed.
 */
export function createPgliteDatabase(db: PGlite, onClose?: () => Promise<void>): SqlDatabase {
  return new PgliteDatabase(db, onClose ?? (() => db.close()));
}

/** Wraps query errors of a database into coded store errors. */
export async function run<T>(what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw toStoreError(err, what);
  }
}
