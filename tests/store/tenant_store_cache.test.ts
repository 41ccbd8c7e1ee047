import { afterAll, describe, expect, it } from "vitest";
import { randomUUID } from "node:crypto";
import { provisionTenantDatabase, TenantStoreCache } from "./api.ts";
import type { TenantDatabaseConfig } from "./api.ts";
import { codeOf, pgliteTarget, testKeyring } from "./harness.ts";

const target = await pgliteTarget();
afterAll(() => target.close());

describe("tenant store cache", () => {
  it("cache - one store per tenant, shared by concurrent gets, reopened with new credentials after drop", async () => {
    const a = await target.freshSchema("cache_a");
    const b = await target.freshSchema("cache_b");
    const tenantId = randomUUID();
    const configs = new Map<string, TenantDatabaseConfig>([[tenantId, a.database]]);
    let loads = 0;
    const cache = new TenantStoreCache({
      keyring: testKeyring(),
      pglite: target.pglite,
      loadConfig: (id) => {
        loads++;
        return Promise.resolve(configs.get(id) ?? null);
      },
    });
    try {
      for (const fresh of [a, b]) {
        await provisionTenantDatabase({
          tenantId,
          database: fresh.database,
          pglite: target.pglite,
          vector: "optional",
        });
      }
      const [s1, s2] = await Promise.all([cache.get(tenantId), cache.get(tenantId)]);
      expect(s1).toBe(s2);
      expect(loads).toBe(1);
      await s1.createAgent({ slug: "in-a", name: "A" });

      // Credentials change: the next get opens the new database.
      configs.set(tenantId, b.database);
      await cache.drop(tenantId);
      expect(cache.has(tenantId)).toBe(false);
      expect(await codeOf(s1.listAgents())).toBe("SF_ERR_STORE_CLOSED");
      const s3 = await cache.get(tenantId);
      expect(s3).not.toBe(s1);
      expect(await s3.listAgents()).toEqual([]);
      expect(loads).toBe(2);

      expect(await codeOf(cache.get(randomUUID()))).toBe("SF_ERR_TENANT_DATABASE_NOT_CONFIGURED");
      expect(cache.size).toBe(1);
    } finally {
      await cache.close();
      await a.drop();
      await b.drop();
    }
  });

  it("cache - evicts the least recently used store beyond maxEntries", async () => {
    const schemas = await Promise.all([0, 1, 2].map(() => target.freshSchema("lru")));
    const ids: string[] = schemas.map(() => randomUUID());
    const cache = new TenantStoreCache({
      keyring: testKeyring(),
      pglite: target.pglite,
      maxEntries: 2,
      loadConfig: (id) => Promise.resolve(schemas[ids.indexOf(id)]?.database ?? null),
    });
    try {
      for (const [i, fresh] of schemas.entries()) {
        await provisionTenantDatabase({
          tenantId: ids[i] ?? "",
          database: fresh.database,
          pglite: target.pglite,
        });
      }
      const first = await cache.get(ids[0] ?? "");
      await cache.get(ids[1] ?? "");
      await cache.get(ids[0] ?? "");
      await cache.get(ids[2] ?? "");
      expect(cache.has(ids[0] ?? "")).toBe(true);
      expect(cache.has(ids[1] ?? "")).toBe(false);
      expect(cache.size).toBe(2);
      expect((await first.listAgents()).length).toBe(0);
    } finally {
      await cache.close();
      for (const s of schemas) await s.drop();
    }
  });
});
