// Closing a database handle while work on it is still running: the work already started ends
// normally, new work is refused with SF_ERR_STORE_CLOSED, and the handle closes after that work.
// A tenant's credentials changing drops its cached store while one of its turns may still be
// querying it; node-postgres' pool.end() left a query that was waiting for a pooled connection
// stranded until the connect timeout (10 s), stalling the tenant actor's mailbox behind it (the
// console fuzz's 504s). Found by tests/security/console_fuzz.test.ts under load.
import { describe, expect, it } from "vitest";
import { sharedServices } from "../helpers/services.ts";
import { createPostgresDatabase, PgliteInstances } from "./api.ts";
import type { SqlDatabase } from "./api.ts";
import { codeOf, uniqueName } from "./harness.ts";

const pglite = new PgliteInstances();

const handles: Record<"postgres" | "pglite", () => Promise<SqlDatabase>> = {
  // One pooled connection, so a second query has to wait for the transaction's; a connect
  // timeout short enough that a stranded query fails this test instead of hanging it.
  postgres: () =>
    Promise.resolve(
      createPostgresDatabase({
        connectionString: sharedServices().databaseUrl,
        maxConnections: 1,
        connectTimeoutMs: 3000,
      }),
    ),
  // The only reference to its instance: closing the handle closes PGlite itself.
  pglite: () => pglite.acquire(`memory://${uniqueName("drain")}`),
};

describe("closing a database handle with work in flight", () => {
  it.each(["postgres", "pglite"] as const)(
    "close - %s: a transaction and a query already started finish; later work is refused; close waits for them",
    async (kind) => {
      const db = await handles[kind]();
      let release!: () => void;
      const gate = new Promise<void>((resolve) => (release = resolve));
      let inTransaction!: () => void;
      const entered = new Promise<void>((resolve) => (inTransaction = resolve));
      const transaction = db.transaction(async (tx) => {
        inTransaction();
        await gate;
        return tx.query<{ n: number }>("select 1::int as n");
      });
      await entered;
      // Waits for the transaction's connection (postgres) or for the transaction (PGlite).
      const queued = db.query<{ n: number }>("select 2::int as n");
      let closed = false;
      const closing = db.close().then(() => {
        closed = true;
      });
      expect(await codeOf(db.query("select 3"))).toBe("SF_ERR_STORE_CLOSED");
      expect(await codeOf(db.transaction(() => Promise.resolve()))).toBe("SF_ERR_STORE_CLOSED");
      expect(closed).toBe(false);
      release();
      expect(await transaction).toEqual([{ n: 1 }]);
      expect(await queued).toEqual([{ n: 2 }]);
      await closing;
      expect(closed).toBe(true);
      expect(await codeOf(db.query("select 4"))).toBe("SF_ERR_STORE_CLOSED");
    },
  );
});
