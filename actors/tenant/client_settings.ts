/**
 * The tenants' client settings (platform database), cached per tenant for a few seconds and
 * dropped at once when a client event says the client changed. The bound on age also covers a
 * tenant whose actor moved to another host and back while that host changed its settings.
 */
import type { ClientSettings, EmbeddingIndexInfo, PlatformStore } from "../store/index.ts";
import type { TenantSettingsAccess } from "./document_ops.ts";

export class ClientSettingsCache implements TenantSettingsAccess {
  readonly #platform: Pick<PlatformStore, "getClient" | "updateClient">;
  readonly #maxAgeMs: number;
  readonly #cached = new Map<string, { settings: Promise<ClientSettings>; at: number }>();

  /** `maxAgeMs`: how long settings are reused without reading them again. Default 5000. */
  constructor(platform: Pick<PlatformStore, "getClient" | "updateClient">, maxAgeMs = 5000) {
    this.#platform = platform;
    this.#maxAgeMs = maxAgeMs;
  }

  get(tenant: string): Promise<ClientSettings> {
    const cached = this.#cached.get(tenant);
    if (cached !== undefined && performance.now() - cached.at < this.#maxAgeMs) return cached.settings;
    const entry = {
      settings: this.#platform.getClient(tenant).then((client) => client.settings),
      at: performance.now(),
    };
    this.#cached.set(tenant, entry);
    entry.settings.catch(() => {
      if (this.#cached.get(tenant) === entry) this.#cached.delete(tenant);
    });
    return entry.settings;
  }

  async setEmbeddingIndex(tenant: string, index: EmbeddingIndexInfo): Promise<void> {
    this.#cached.delete(tenant);
    const client = await this.#platform.getClient(tenant);
    const updated = await this.#platform.updateClient(tenant, {
      settings: { ...client.settings, embedding_index: index },
    });
    this.#cached.set(tenant, { settings: Promise.resolve(updated.settings), at: performance.now() });
  }

  drop(tenant: string): void {
    this.#cached.delete(tenant);
  }
}
