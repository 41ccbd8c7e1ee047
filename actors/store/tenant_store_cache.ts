/**
 * One open `TenantStore` (pool / client) per tenant, created from the tenant's decrypted
 * database credentials on first use and kept until `drop(tenantId)` (credentials changed:
 * the tenant actor calls it on `sf.evt.client.<tenant>.*`), LRU eviction, or `close()`.
 * Concurrent `get`s of one tenant share one open.
 */
import type { Keyring } from "../crypto/index.ts";
import { InvalidStoreOptionsError, StoreClosedError, TenantDatabaseNotConfiguredError } from "./errors.ts";
import { openTenantStore } from "./open.ts";
import type { ConnectionOptions } from "./open.ts";
import { PgliteInstances } from "./pglite_instances.ts";
import type { TenantDatabaseConfig, TenantStore } from "./types.ts";

export interface TenantStoreCacheOptions {
  keyring: Keyring;
  /** Where a tenant's database description comes from (usually `platform.getTenantDatabase`). */
  loadConfig: (tenantId: string) => Promise<TenantDatabaseConfig | null>;
  /** Most stores kept open; the least recently used is closed beyond it. Default 256. */
  maxEntries?: number;
  connection?: ConnectionOptions;
  /** Shared PGlite instances (embedded tenants); default a new registry. */
  pglite?: PgliteInstances;
  /** Replaces fetch for Supabase tenants. */
  fetch?: typeof fetch;
  /** Called when closing an evicted or dropped store fails (the failure is not the caller's). */
  onCloseError?: (tenantId: string, err: unknown) => void;
}

export interface ResolvedTenantStoreCacheOptions {
  readonly keyring: Keyring;
  readonly loadConfig: (tenantId: string) => Promise<TenantDatabaseConfig | null>;
  readonly maxEntries: number;
  readonly connection: ConnectionOptions;
  readonly pglite: PgliteInstances;
  readonly fetch: typeof fetch | undefined;
  readonly onCloseError: ((tenantId: string, err: unknown) => void) | undefined;
}

export function parseTenantStoreCacheOptions(
  options: TenantStoreCacheOptions,
): ResolvedTenantStoreCacheOptions {
  const maxEntries = options.maxEntries ?? 256;
  if (!Number.isInteger(maxEntries) || maxEntries < 1) {
    throw new InvalidStoreOptionsError("maxEntries must be a positive integer");
  }
  return Object.freeze({
    keyring: options.keyring,
    loadConfig: options.loadConfig,
    maxEntries,
    connection: { ...options.connection },
    pglite: options.pglite ?? new PgliteInstances(),
    fetch: options.fetch,
    onCloseError: options.onCloseError,
  });
}

export class TenantStoreCache {
  readonly #options: ResolvedTenantStoreCacheOptions;
  /** Insertion order = recency (re-inserted on every hit). */
  readonly #entries = new Map<string, Promise<TenantStore>>();
  #closed = false;

  constructor(options: TenantStoreCacheOptions) {
    this.#options = parseTenantStoreCacheOptions(options);
  }

  get size(): number {
    return this.#entries.size;
  }

  has(tenantId: string): boolean {
    return this.#entries.has(tenantId);
  }

  /** The tenant's store, opened on first use. Throws SF_ERR_TENANT_DATABASE_NOT_CONFIGURED. */
  get(tenantId: string): Promise<TenantStore> {
    if (this.#closed) return Promise.reject(new StoreClosedError("the tenant store cache is closed"));
    const cached = this.#entries.get(tenantId);
    if (cached !== undefined) {
      this.#entries.delete(tenantId);
      this.#entries.set(tenantId, cached);
      return cached;
    }
    const opening = this.#open(tenantId);
    this.#entries.set(tenantId, opening);
    // A failed open is not cached: the next get tries again.
    void opening.then(
      () => undefined,
      () => {
        if (this.#entries.get(tenantId) === opening) this.#entries.delete(tenantId);
      },
    );
    this.#evict();
    return opening;
  }

  async #open(tenantId: string): Promise<TenantStore> {
    const config = await this.#options.loadConfig(tenantId);
    if (config === null) {
      throw new TenantDatabaseNotConfiguredError(`tenant ${tenantId} has no database configured`, {
        details: { tenantId },
      });
    }
    const open: Parameters<typeof openTenantStore>[0] = {
      tenantId,
      database: config,
      keyring: this.#options.keyring,
      connection: this.#options.connection,
      pglite: this.#options.pglite,
    };
    if (this.#options.fetch !== undefined) open.fetch = this.#options.fetch;
    return openTenantStore(open);
  }

  #evict(): void {
    while (this.#entries.size > this.#options.maxEntries) {
      const oldest = this.#entries.keys().next();
      if (oldest.done === true) return;
      // Eviction closes in the background; close failures go to onCloseError.
      void this.#closeEntry(oldest.value);
    }
  }

  #closeEntry(tenantId: string): Promise<void> {
    const entry = this.#entries.get(tenantId);
    if (entry === undefined) return Promise.resolve();
    this.#entries.delete(tenantId);
    return entry.then(
      async (store) => {
        try {
          await store.close();
        } catch (err) {
          this.#options.onCloseError?.(tenantId, err);
        }
      },
      // An entry whose open failed has nothing to close; its caller got the error.
      () => undefined,
    );
  }

  /** Closes and forgets the tenant's store (its credentials changed); the next get reopens. */
  drop(tenantId: string): Promise<void> {
    return this.#closeEntry(tenantId);
  }

  async close(): Promise<void> {
    this.#closed = true;
    await Promise.all([...this.#entries.keys()].map((id) => this.#closeEntry(id)));
  }
}
