/**
 * The live keys of a TTL bucket, kept by one watcher of the bucket: its last value per key first,
 * then every change. A key whose last operation is a delete, a purge or a max-age marker (the
 * buckets are made with `markerTTL`, so an expiry is announced) is not live.
 *
 * One long-lived watcher per view replaces a key listing per balancing round: each listing is a
 * new ephemeral consumer on the bucket's stream, which costs a JetStream API call (a meta-group
 * proposal in a cluster) and, while the server restarts, leaves consumers behind.
 */
import type { KV, KvWatchEntry } from "@nats-io/kv";
import type { QueuedIterator } from "@nats-io/transport-node";
import { BusErrorCodes, SfError } from "../../bus/index.ts";

/** A KV create/update refused because the key exists or changed since the revision given. */
export function isCasFailure(err: unknown): boolean {
  return err instanceof Error && /wrong last sequence|key exists/i.test(err.message);
}

export interface KeyViewOptions {
  /** The bucket's name, for errors. */
  name?: string;
  /** Called for every change after the view is up to date (deletes and expiries included). */
  onChange?: (key: string, operation: KvWatchEntry["operation"]) => void;
  /** Told when the watcher ends by itself; the view then starts a new one. */
  onWatchEnded?: (err: unknown) => void;
  /** Pause before a new watcher after one ended. Default 250 ms. */
  restartDelayMs?: number;
}

export class KeyView {
  readonly #kv: KV;
  readonly #options: KeyViewOptions;
  readonly #live = new Set<string>();
  #watcher: QueuedIterator<KvWatchEntry> | undefined;
  #stopped = false;
  #ready = false;
  #readyWaiters: (() => void)[] = [];
  #restartTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(kv: KV, options: KeyViewOptions = {}) {
    this.#kv = kv;
    this.#options = options;
  }

  /** Opens the watcher; resolves once its initial values are in. */
  async start(): Promise<void> {
    await this.#open();
  }

  /** The live keys; waits (up to `timeoutMs`) for a view that has caught up with the bucket. */
  async live(timeoutMs = 5000): Promise<Set<string>> {
    if (!this.#ready) await this.#whenReady(timeoutMs);
    return new Set(this.#live);
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#restartTimer);
    this.#watcher?.stop();
    this.#watcher = undefined;
    this.#release();
  }

  async #open(): Promise<void> {
    this.#ready = false;
    this.#live.clear();
    const watcher = await this.#kv.watch();
    if (this.#stopped) {
      watcher.stop();
      return;
    }
    this.#watcher = watcher;
    // An empty bucket replays nothing, so no entry would say the replay is over.
    if ((await this.#kv.status()).values === 0) this.#markReady();
    void this.#read(watcher);
    if (!this.#ready) await this.#whenReady(5000).catch(() => undefined);
  }

  async #read(watcher: QueuedIterator<KvWatchEntry>): Promise<void> {
    let failure: unknown;
    try {
      for await (const entry of watcher) {
        if (entry.operation === "PUT") this.#live.add(entry.key);
        else this.#live.delete(entry.key);
        // The watcher flags the last initial value, and everything after it, as an update.
        if (entry.isUpdate) {
          if (this.#ready) this.#options.onChange?.(entry.key, entry.operation);
          else this.#markReady();
        }
      }
    } catch (err) {
      failure = err;
    }
    if (this.#stopped || this.#watcher !== watcher) return;
    // Ended without being stopped (the server dropped the consumer): read the bucket anew.
    this.#watcher = undefined;
    this.#ready = false;
    this.#reopen(failure);
  }

  /** Says the watcher ended, then opens a new one after a pause, until one opens or the view stops. */
  #reopen(failure: unknown): void {
    if (this.#stopped) return;
    this.#options.onWatchEnded?.(failure);
    this.#restartTimer = setTimeout(() => {
      this.#open().catch((err: unknown) => this.#reopen(err));
    }, this.#options.restartDelayMs ?? 250);
  }

  #markReady(): void {
    this.#ready = true;
    this.#release();
  }

  #release(): void {
    const waiters = this.#readyWaiters;
    this.#readyWaiters = [];
    for (const wake of waiters) wake();
  }

  #whenReady(timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#readyWaiters = this.#readyWaiters.filter((w) => w !== wake);
        reject(
          new SfError(
            BusErrorCodes.TIMEOUT,
            `the view of KV bucket ${this.#options.name ?? "?"} is not up to date`,
            {
              retryable: true,
            },
          ),
        );
      }, timeoutMs);
      const wake = (): void => {
        clearTimeout(timer);
        if (this.#stopped) reject(new SfError(BusErrorCodes.INTERNAL, "key view stopped"));
        else resolve();
      };
      this.#readyWaiters.push(wake);
    });
  }
}
