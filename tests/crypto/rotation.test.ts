// Rotation of every stored secret (platform client_secrets, each tenant's provider_keys) to a
// new master key, on PGlite stores.
import { afterAll, describe, expect, it } from "vitest";
import { randomUUID } from "node:crypto";
import { generateMasterKey, parseKeyringOptions, rotateSecrets } from "../store/api.ts";
import type { RotatableSecrets } from "../store/api.ts";
import { openPlatformStore, openTenantStore, provisionTenantDatabase, quoteIdent } from "../store/api.ts";
import { pgliteTarget } from "../store/harness.ts";

const target = await pgliteTarget();
afterAll(() => target.close());

describe("master key rotation", () => {
  it("rotation - every secret moves to the new key, stays readable throughout, and the old key can then go", async () => {
    const k1 = generateMasterKey();
    const k2 = generateMasterKey();
    const oldRing = parseKeyringOptions({ keys: { k1 }, activeKeyId: "k1" });
    const bothRing = parseKeyringOptions({ keys: { k1, k2 }, activeKeyId: "k2" });
    const newRing = parseKeyringOptions({ keys: { k2 }, activeKeyId: "k2" });

    const platformSchema = await target.freshSchema("platform");
    const tenantSchema = await target.freshSchema("tenant");
    try {
      const platformDb = platformSchema.platformDatabase;
      const tenantId = randomUUID();
      await provisionTenantDatabase({ tenantId, database: tenantSchema.database, pglite: target.pglite });

      // Written with the old keyring.
      const before = await openPlatformStore({
        database: platformDb,
        keyring: oldRing,
        pglite: target.pglite,
      });
      const clients = [];
      for (const slug of ["a", "b", "c"]) {
        const client = await before.createClient({ slug, name: slug });
        await before.setLivekitCredentials(client.id, {
          url: "wss://lk",
          apiKey: `key-${slug}`,
          apiSecret: `secret-${slug}`,
        });
        clients.push(client);
      }
      const tenantBefore = await openTenantStore({
        tenantId,
        database: tenantSchema.database,
        keyring: oldRing,
        pglite: target.pglite,
      });
      await tenantBefore.setProviderKey("groq", "gsk-1");
      await tenantBefore.setProviderKey("deepgram", "dg-1");
      await before.close();
      await tenantBefore.close();

      // Deploy the keyring with both keys, k2 active: old secrets open, new writes use k2.
      const platform = await openPlatformStore({
        database: platformDb,
        keyring: bothRing,
        pglite: target.pglite,
      });
      const tenant = await openTenantStore({
        tenantId,
        database: tenantSchema.database,
        keyring: bothRing,
        pglite: target.pglite,
      });
      expect((await platform.getLivekitCredentials(clients[0]?.id ?? ""))?.apiSecret).toBe("secret-a");
      await tenant.setProviderKey("openai", "sk-openai");
      expect((await tenant.listProviderKeys()).map((k) => [k.provider, k.keyId])).toEqual([
        ["deepgram", "k1"],
        ["groq", "k1"],
        ["openai", "k2"],
      ]);

      const progress: string[] = [];
      const report = await rotateSecrets(
        [platform.secretsForRotation(), tenant.secretsForRotation()],
        bothRing,
        {
          batchSize: 2,
          onProgress: (e) => progress.push(`${e.source}:${e.rotated}`),
        },
      );
      expect(report).toEqual({ activeKeyId: "k2", rotated: 5, skipped: 0, failed: [], remaining: 0 });
      expect(progress.length).toBeGreaterThan(1);
      expect((await platform.listClientSecrets(clients[1]?.id ?? "")).map((s) => s.keyId)).toEqual(["k2"]);
      await platform.close();
      await tenant.close();

      // The old key is gone: everything still opens.
      const after = await openPlatformStore({
        database: platformDb,
        keyring: newRing,
        pglite: target.pglite,
      });
      const tenantAfter = await openTenantStore({
        tenantId,
        database: tenantSchema.database,
        keyring: newRing,
        pglite: target.pglite,
      });
      for (const [i, slug] of ["a", "b", "c"].entries()) {
        expect((await after.getLivekitCredentials(clients[i]?.id ?? ""))?.apiSecret).toBe(`secret-${slug}`);
      }
      expect(await tenantAfter.getProviderKey("groq")).toBe("gsk-1");
      expect(await tenantAfter.getProviderKey("openai")).toBe("sk-openai");
      // A second run has nothing to do.
      expect((await rotateSecrets([after.secretsForRotation()], newRing)).rotated).toBe(0);
      await after.close();
      await tenantAfter.close();
    } finally {
      await platformSchema.drop();
      await tenantSchema.drop();
    }
  });

  it("rotation - a secret that cannot be opened is reported by code and left in place; a concurrent change is skipped", async () => {
    const k0 = generateMasterKey();
    const k1 = generateMasterKey();
    const lost = parseKeyringOptions({ keys: { k0 }, activeKeyId: "k0" });
    const ring = parseKeyringOptions({ keys: { k1 }, activeKeyId: "k1" });
    const fresh = await target.freshSchema("tenant");
    try {
      const tenantId = randomUUID();
      await provisionTenantDatabase({ tenantId, database: fresh.database, pglite: target.pglite });
      const orphan = await openTenantStore({
        tenantId,
        database: fresh.database,
        keyring: lost,
        pglite: target.pglite,
      });
      await orphan.setProviderKey("groq", "sealed-with-a-lost-key");
      await orphan.setProviderKey("jina", "also-lost");
      await orphan.close();
      const store = await openTenantStore({
        tenantId,
        database: fresh.database,
        keyring: ring,
        pglite: target.pglite,
      });
      const source = store.secretsForRotation();
      const report = await rotateSecrets([source], ring);
      expect(report.failed).toEqual([
        { source: source.name, ref: "groq", code: "SF_ERR_UNKNOWN_KEY_ID" },
        { source: source.name, ref: "jina", code: "SF_ERR_UNKNOWN_KEY_ID" },
      ]);
      expect(report.remaining).toBe(2);

      // With k0 back in the ring they open; but each row changes between list and replace.
      const both = parseKeyringOptions({ keys: { k0, k1 }, activeKeyId: "k1" });
      const racing: RotatableSecrets = {
        name: "racing",
        listNotOnKey: (active, limit, after) => source.listNotOnKey(active, limit, after),
        replaceEnvelope: async (secret, envelope, keyId) => {
          await target.sql.query(
            `update ${quoteIdent(fresh.schema)}.provider_keys set ciphertext = 'changed-by-someone' where provider = $1`,
            [secret.ref],
          );
          return source.replaceEnvelope(secret, envelope, keyId);
        },
      };
      const raced = await rotateSecrets([racing], both);
      expect(raced.skipped).toBe(2);
      expect(raced.rotated).toBe(0);
      await store.close();
    } finally {
      await fresh.drop();
    }
  });
});
