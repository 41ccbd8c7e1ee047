import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  generateMasterKey,
  openPlatformStore,
  openTenantStore,
  parseKeyringOptions,
  provisionTenantDatabase,
} from "../../actors/index.ts";
import type { TenantDatabaseConfig } from "../../actors/index.ts";
import { spawnTs } from "../helpers/processes.ts";
import { sharedServices } from "../helpers/services.ts";

describe("secrets rotation command", () => {
  it("rotate - npm run secrets:rotate moves every platform and tenant secret to the new key; old-key-only processes can no longer read them", async () => {
    const dir = await mkdtemp(join(tmpdir(), "sf-rotate-"));
    const [oldKey, newKey] = [generateMasterKey(), generateMasterKey()];
    const oldOnly = parseKeyringOptions({ keys: { old: oldKey }, activeKeyId: "old" });
    const newOnly = parseKeyringOptions({ keys: { new: newKey }, activeKeyId: "new" });
    const platformDb = { kind: "pglite" as const, dataDir: join(dir, "platform") };
    const tenantDb: TenantDatabaseConfig = {
      kind: "postgres",
      url: sharedServices().databaseUrl,
      schema: `rotate_${process.pid}`,
    };
    try {
      let platform = await openPlatformStore({ database: platformDb, keyring: oldOnly });
      const client = await platform.createClient({ slug: "rotating", name: "Rotating" });
      await platform.setTenantDatabase(client.id, tenantDb);
      await platform.setLivekitCredentials(client.id, {
        url: "wss://example.livekit.cloud",
        apiKey: "APIkey123",
        apiSecret: "livekit-secret-value",
      });
      await platform.close();
      await provisionTenantDatabase({ tenantId: client.id, database: tenantDb, vector: "optional" });
      const tenant = await openTenantStore({ tenantId: client.id, database: tenantDb, keyring: oldOnly });
      await tenant.setProviderKey("groq", "gsk-provider-secret");
      await tenant.close();

      const cli = await spawnTs("secrets:rotate", "actors/cli/rotate_keys.ts", {
        env: {
          SF_DATA_DIR: dir,
          SF_PLATFORM_DATABASE_URL: "",
          SF_MASTER_KEYS: `old:${oldKey},new:${newKey}`,
          SF_MASTER_KEY_ACTIVE: "new",
        },
      });
      expect(await cli.exited).toBe(0);
      // The report is the pretty-printed JSON object at the end of stdout.
      const report = JSON.parse(cli.lines.slice(cli.lines.lastIndexOf("{")).join("\n")) as {
        rotated: number;
        failed: unknown[];
        remaining: number;
        activeKeyId: string;
      };
      expect(report).toMatchObject({ activeKeyId: "new", failed: [], remaining: 0 });
      expect(report.rotated).toBeGreaterThanOrEqual(3);
      // Nothing secret in what the command printed.
      for (const line of cli.lines) {
        for (const secret of ["livekit-secret-value", "gsk-provider-secret", oldKey, newKey]) {
          expect(line).not.toContain(secret);
        }
      }

      // The embedded platform database survived the restarts; only the new key reads it now.
      platform = await openPlatformStore({ database: platformDb, keyring: newOnly });
      expect((await platform.getLivekitCredentials(client.id))?.apiSecret).toBe("livekit-secret-value");
      expect(await platform.getTenantDatabase(client.id)).toEqual(tenantDb);
      await platform.close();
      const rotated = await openTenantStore({ tenantId: client.id, database: tenantDb, keyring: newOnly });
      expect(await rotated.getProviderKey("groq")).toBe("gsk-provider-secret");
      await rotated.close();
      const stale = await openPlatformStore({ database: platformDb, keyring: oldOnly });
      await expect(stale.getLivekitCredentials(client.id)).rejects.toMatchObject({
        code: "SF_ERR_UNKNOWN_KEY_ID",
      });
      await stale.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
