/**
 * A PostgreSQL restart while a transaction holds a pooled connection fails that transaction (and
 * only it), never the process: the chaos run (tests/chaos) found actor hosts that died of the
 * checked-out client's unhandled 'error' event. Runs on a private server (the shared one is left
 * alone).
 */
import { describe, expect, it } from "vitest";
import { createPostgresDatabase, StoreErrorCodes, toStoreError } from "../../actors/index.ts";
import { waitFor } from "../helpers/deadline.ts";
import { PostgresTestServer } from "../helpers/postgres_server.ts";

describe("postgres restart", () => {
  it("restart - the server ending a connection in the middle of a transaction fails that transaction as 'unavailable, retry'; the pool serves again after", async () => {
    await using server = await PostgresTestServer.start();
    const db = createPostgresDatabase({ connectionString: server.url, maxConnections: 2 });
    const uncaught: unknown[] = [];
    const onUncaught = (err: unknown): void => {
      uncaught.push(err);
    };
    process.on("uncaughtException", onUncaught);
    try {
      await db.exec("create table t (n int)");
      let inside!: () => void;
      const entered = new Promise<void>((resolve) => {
        inside = resolve;
      });
      let resume!: () => void;
      const held = new Promise<void>((resolve) => {
        resume = resolve;
      });
      const tx = db.transaction(async (q) => {
        await q.query("insert into t values (1)");
        inside();
        // Between two statements: no query is in flight when the server goes away.
        await held;
        await q.query("insert into t values (2)");
      });
      const outcome = tx.then(
        () => "committed",
        (err: unknown) => err,
      );
      await entered;
      await server.restart();
      resume();
      const failure = await outcome;
      expect(failure).toBeInstanceOf(Error);
      expect(uncaught).toEqual([]);
      // The connection's own error, which says "retry" (not the next statement's "not queryable").
      expect(toStoreError(failure, "insert")).toMatchObject({
        code: StoreErrorCodes.DATABASE_UNAVAILABLE,
        retryable: true,
      });
      // A fresh connection from the same pool: the transaction's rows never landed.
      const rows = await waitFor("the pool to serve again", () =>
        db.query<{ n: number }>("select n from t order by n"),
      );
      expect(rows).toEqual([]);
    } finally {
      process.off("uncaughtException", onUncaught);
      await db.close();
    }
  });
});
