/**
 * KeyView: the live keys of a TTL bucket from one long-lived watcher (deletes and max-age
 * markers included), across a nats-server restart; and an actor host that balances without
 * making JetStream API calls (it used to list the lease and member buckets every round, each
 * listing a new ephemeral consumer).
 */
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import type { NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KeyView } from "../../actors/index.ts";
import { ensureKvBucket } from "../../bus/index.ts";
import { waitFor } from "../helpers/deadline.ts";
import { NatsTestServer } from "../helpers/nats_server.ts";
import { spawnActorHost } from "../helpers/processes.ts";

let server: NatsTestServer;
let nc: NatsConnection;

beforeAll(async () => {
  server = await NatsTestServer.start();
  nc = await connect({ servers: server.url, maxReconnectAttempts: -1, reconnectTimeWait: 100 });
});

afterAll(async () => {
  await nc?.close();
  await server?.[Symbol.asyncDispose]();
});

async function sorted(view: KeyView): Promise<string[]> {
  return [...(await view.live())].sort();
}

describe("KeyView", () => {
  it("follows puts, deletes and max-age expiries, and reports changes after the initial values", async () => {
    const kv = await ensureKvBucket(nc, "kv_view_basic", { ttlMs: 1500, replicas: 1 });
    await kv.put("a", "1");
    await kv.put("b", "1");
    const changes: string[] = [];
    const view = new KeyView(kv, { onChange: (key, op) => changes.push(`${op} ${key}`) });
    await view.start();
    try {
      expect(await sorted(view)).toEqual(["a", "b"]);
      // The initial values are not changes.
      expect(changes).toEqual([]);
      await kv.put("c", "1");
      await kv.delete("a");
      await waitFor("c in and a out", async () => (await sorted(view)).join() === "b,c", { timeoutMs: 5000 });
      expect(changes.slice(0, 2)).toEqual(["PUT c", "DEL a"]);
      // Nobody renews b or c: the server's max-age markers take them out of the view.
      await waitFor("b and c to expire", async () => (await view.live()).size === 0, { timeoutMs: 10_000 });
      expect(changes).toContain("PURGE b");
      expect(changes).toContain("PURGE c");
    } finally {
      view.stop();
    }
  });

  it("an empty bucket is up to date at once", async () => {
    const kv = await ensureKvBucket(nc, "kv_view_empty", { ttlMs: 60_000, replicas: 1 });
    const view = new KeyView(kv);
    await view.start();
    try {
      expect(await view.live(100)).toEqual(new Set());
      await kv.put("x", "1");
      await waitFor("x to be seen", async () => (await view.live()).has("x"), { timeoutMs: 5000 });
    } finally {
      view.stop();
    }
  });

  it("keeps following the bucket across a nats-server restart", async () => {
    const kv = await ensureKvBucket(nc, "kv_view_restart", { ttlMs: 60_000, replicas: 1 });
    await kv.put("before", "1");
    const view = new KeyView(kv);
    await view.start();
    try {
      expect(await sorted(view)).toEqual(["before"]);
      await server.restart();
      await waitFor(
        "a put after the restart",
        async () => {
          try {
            await kv.put("after", "1");
            return true;
          } catch {
            return false;
          }
        },
        { timeoutMs: 20_000, intervalMs: 200 },
      );
      await kv.delete("before");
      await waitFor(
        "the view to show the changes made after the restart",
        async () => (await sorted(view)).join() === "after",
        {
          timeoutMs: 20_000,
          intervalMs: 100,
        },
      );
    } finally {
      view.stop();
    }
  });
});

describe("actor host balancing", () => {
  it("makes no JetStream API calls round after round once it is balanced", async () => {
    const jsm = await jetstreamManager(nc);
    await using host = await spawnActorHost({
      natsUrl: server.url,
      hostId: "kv-view-h1",
      prefix: "kvview",
      partitions: 16,
      balanceIntervalMs: 100,
    });
    expect(host.running).toBe(true);
    const before = (await jsm.getAccountInfo()).api.total;
    // About 20 balancing rounds (each listed both buckets before: several API calls a round).
    const until = performance.now() + 2000;
    await waitFor("20 balancing rounds to pass", () => performance.now() >= until, {
      timeoutMs: 5000,
      intervalMs: 50,
    });
    const calls = (await jsm.getAccountInfo()).api.total - before;
    // The two getAccountInfo calls themselves count once here; nothing else should.
    expect(calls).toBeLessThan(5);
  });
});
