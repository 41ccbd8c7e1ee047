/**
 * Re-encrypts every stored secret (platform client secrets and each tenant's provider keys) with
 * the active master key: what `npm run secrets:rotate` and `sidekick secrets rotate-key` run. The
 * keyring keeps the old keys, so every process keeps decrypting while the rotation runs, and each
 * secret is replaced with a compare-and-set, so a concurrent change is never overwritten.
 */
import type { ActorHostConfig } from "../config.ts";
import { rotateSecrets } from "../crypto/index.ts";
import type { RotatableSecrets, RotateOptions, RotationReport } from "../crypto/index.ts";
import { openPlatformStore, openTenantStore, PgliteInstances } from "../store/index.ts";
import type { TenantStore } from "../store/index.ts";

export interface RotationRun extends RotationReport {
  /** The secret tables visited: the platform's, then one per tenant database. */
  sources: string[];
}

export interface RotateAllOptions {
  onProgress?: RotateOptions["onProgress"];
  /** Called as each tenant database is opened (they are opened before rotation starts). */
  onTenantOpened?: (event: { clientId: string; opened: number }) => void;
}

export async function rotateAllSecrets(
  config: Pick<ActorHostConfig, "platformDatabase" | "keyring">,
  options: RotateAllOptions = {},
): Promise<RotationRun> {
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
        options.onTenantOpened?.({ clientId: client.id, opened: tenants.length });
      }
      if (page.length < 100) break;
    }
    const report = await rotateSecrets(
      sources,
      config.keyring,
      options.onProgress === undefined ? {} : { onProgress: options.onProgress },
    );
    return { sources: sources.map((s) => s.name), ...report };
  } finally {
    for (const store of tenants) await store.close();
    await platform.close();
  }
}
