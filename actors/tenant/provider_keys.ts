import type { TenantStore } from "../store/index.ts";

/** The tenant's decrypted provider API keys by provider name: only for workers, never logged. */
export async function providerKeys(store: TenantStore): Promise<Record<string, string>> {
  const keys: Record<string, string> = {};
  for (const info of await store.listProviderKeys()) {
    const key = await store.getProviderKey(info.provider);
    if (key !== null) keys[info.provider] = key;
  }
  return keys;
}
