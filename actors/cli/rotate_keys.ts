/**
 * `npm run secrets:rotate`: re-encrypts every stored secret (platform client secrets and each
 * tenant's provider keys) with the active master key, without downtime: the keyring keeps the
 * old keys, so every process keeps decrypting while the rotation runs, and each secret is
 * replaced with a compare-and-set, so a concurrent change is never overwritten.
 *
 * Environment: SF_MASTER_KEYS must list the old and the new key, SF_MASTER_KEY_ACTIVE names the
 * new one; the platform database as for the actor host. Prints a JSON report; exits 1 when any
 * secret could not be rotated.
 */
import { parseActorHostConfig } from "../config.ts";
import { rotateSecrets } from "../crypto/index.ts";
import type { RotatableSecrets } from "../crypto/index.ts";
import { openPlatformStore, openTenantStore, PgliteInstances } from "../store/index.ts";
import type { TenantStore } from "../store/index.ts";

async function main(): Promise<number> {
  const config = parseActorHostConfig();
  const pglite = new PgliteInstances();
  const platform = await openPlatformStore({
    database: config.platformDatabase,
    keyring: config.keyring,
    pglite,
  });
  const tenants: TenantStore[] = [];
  try {
    const sources: RotatableSecrets[] = [platform.secretsForRotation()];
    for (let offset = 0; ; offset += 100) {
      const page = await platform.listClients({ limit: 100, offset });
      for (const client of page) {
        const database = await platform.getTenantDatabase(client.id);
        if (database === null) continue;
        const store = await openTenantStore({
          tenantId: client.id,
          database,
          keyring: config.keyring,
          pglite,
        });
        tenants.push(store);
        sources.push(store.secretsForRotation());
      }
      if (page.length < 100) break;
    }
    const report = await rotateSecrets(sources, config.keyring, {
      onProgress: (event) => process.stderr.write(`${JSON.stringify({ progress: event })}\n`),
    });
    process.stdout.write(`${JSON.stringify({ sources: sources.map((s) => s.name), ...report }, null, 2)}\n`);
    return report.failed.length === 0 && report.remaining === 0 ? 0 : 1;
  } finally {
    for (const store of tenants) await store.close();
    await platform.close();
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    const e = err as { code?: string; message?: string };
    process.stderr.write(
      `${JSON.stringify({ error: { code: e.code ?? "SF_ERR_INTERNAL", message: e.message } })}\n`,
    );
    process.exit(1);
  },
);
