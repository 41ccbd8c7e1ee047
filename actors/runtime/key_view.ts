/**
 * The live keys of a TTL bucket. A KV key listing still shows a key that expired by max age
 * until its delete marker ages out, so the latest operation a watcher saw for each key
 * overrides the listing: a key last seen deleted or purged is not live.
 */
import type { KV } from "@nats-io/kv";

/** A KV create/update refused because the key exists or changed since the revision given. */
export function isCasFailure(err: unknown): boolean {
  return err instanceof Error && /wrong last sequence|key exists/i.test(err.message);
}

export class KeyView {
  readonly #kv: KV;
  readonly #watched = new Map<string, { revision: number; deleted: boolean }>();

  constructor(kv: KV) {
    this.#kv = kv;
  }

  /** Feeds one change seen by a watcher of the bucket. */
  observe(key: string, operation: "PUT" | "DEL" | "PURGE", revision: number): void {
    const seen = this.#watched.get(key);
    if (seen === undefined || seen.revision < revision) {
      this.#watched.set(key, { revision, deleted: operation !== "PUT" });
    }
  }

  async live(): Promise<Set<string>> {
    // A key updated while the listing runs can be delivered twice: a set counts it once.
    const keys = new Set<string>();
    for await (const key of await this.#kv.keys()) {
      if (this.#watched.get(key)?.deleted !== true) keys.add(key);
    }
    return keys;
  }
}
