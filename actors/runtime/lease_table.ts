/**
 * Partition leases held in a NATS KV bucket whose max age is the lease TTL.
 *
 * - Acquire: `create(key)` succeeds only when nobody holds the key; its revision is the
 *   owner's fencing epoch for as long as it keeps the lease.
 * - Renew: `update(key, value, revision)` at about a third of the TTL; every update is a new
 *   message with a fresh age, so the server expires a lease that is not renewed.
 * - Validity is judged on the monotonic clock from the moment the renew request was *sent*
 *   (the server starts its age clock later than that), minus a safety margin, so the holder
 *   always gives up before the server lets anyone else in.
 */
import type { KV } from "@nats-io/kv";
import { decodeBody, encodeBody } from "../../bus/index.ts";
import { isCasFailure, KeyView, type KeyViewOptions } from "./key_view.ts";

export interface LeaseTableOptions {
  kv: KV;
  hostId: string;
  /** Lease TTL, the bucket's max age. */
  ttlMs: number;
  /** Part of the TTL the holder gives up early, for clock-rate drift and scheduling. Default 10%. */
  safetyMarginMs?: number;
}

export interface Lease {
  readonly partition: number;
  /** The create revision: the fencing epoch for this ownership. */
  readonly epoch: number;
  /** The latest revision, used for compare-and-set renewals. */
  revision: number;
  /** performance.now() after which this host must not serve the partition. */
  validUntil: number;
}

interface LeaseValue {
  host: string;
  epoch: number;
}

export type LeaseEvent =
  | { type: "acquired"; partition: number; epoch: number }
  | { type: "renewed"; partition: number; epoch: number }
  | { type: "lost"; partition: number; epoch: number; reason: "expired" | "taken" }
  | { type: "released"; partition: number; epoch: number };

export function leaseKey(partition: number): string {
  return `p.${partition}`;
}

export function partitionFromKey(key: string): number | undefined {
  const m = /^p\.(\d+)$/.exec(key);
  return m?.[1] === undefined ? undefined : Number(m[1]);
}

export class LeaseTable {
  readonly #kv: KV;
  readonly #hostId: string;
  readonly #ttlMs: number;
  readonly #marginMs: number;
  readonly #owned = new Map<number, Lease>();
  readonly #listeners = new Set<(event: LeaseEvent) => void>();
  #view: KeyView | undefined;

  constructor(options: LeaseTableOptions) {
    this.#kv = options.kv;
    this.#hostId = options.hostId;
    this.#ttlMs = options.ttlMs;
    this.#marginMs = options.safetyMarginMs ?? Math.ceil(options.ttlMs * 0.1);
  }

  get ttlMs(): number {
    return this.#ttlMs;
  }

  onEvent(listener: (event: LeaseEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #emit(event: LeaseEvent): void {
    for (const listener of this.#listeners) listener(event);
  }

  /** The lease for `partition` if this host holds it and it is still valid right now. */
  valid(partition: number): Lease | undefined {
    const lease = this.#owned.get(partition);
    if (lease === undefined) return undefined;
    if (performance.now() >= lease.validUntil) {
      this.#drop(lease, "expired");
      return undefined;
    }
    return lease;
  }

  /** True when `partition` is held with exactly this epoch and still valid. */
  holds(partition: number, epoch: number): boolean {
    return this.valid(partition)?.epoch === epoch;
  }

  owned(): number[] {
    return [...this.#owned.keys()].sort((a, b) => a - b);
  }

  get size(): number {
    return this.#owned.size;
  }

  /** Drops every lease whose validity ran out; returns the partitions dropped. */
  expireStale(): number[] {
    const now = performance.now();
    const dropped: number[] = [];
    for (const lease of [...this.#owned.values()]) {
      if (now >= lease.validUntil) {
        this.#drop(lease, "expired");
        dropped.push(lease.partition);
      }
    }
    return dropped;
  }

  #drop(lease: Lease, reason: "expired" | "taken"): void {
    if (this.#owned.get(lease.partition) !== lease) return;
    this.#owned.delete(lease.partition);
    this.#emit({ type: "lost", partition: lease.partition, epoch: lease.epoch, reason });
  }

  /** Tries to take a free partition. Resolves to the lease, or undefined when someone holds it. */
  async acquire(partition: number): Promise<Lease | undefined> {
    if (this.#owned.has(partition)) return this.valid(partition);
    const sentAt = performance.now();
    let revision: number;
    try {
      // The value names the holder; the epoch is the create revision, written on first renew.
      revision = await this.#kv.create(leaseKey(partition), encodeBody({ host: this.#hostId, epoch: 0 }));
    } catch (err) {
      if (isCasFailure(err)) return undefined;
      throw err;
    }
    const lease: Lease = {
      partition,
      epoch: revision,
      revision,
      validUntil: sentAt + this.#ttlMs - this.#marginMs,
    };
    this.#owned.set(partition, lease);
    this.#emit({ type: "acquired", partition, epoch: revision });
    return lease;
  }

  /** Renews every held lease (compare-and-set on its revision). Leases someone else took are dropped. */
  async renewAll(): Promise<void> {
    await Promise.all([...this.#owned.values()].map((lease) => this.#renew(lease)));
    this.expireStale();
  }

  async #renew(lease: Lease): Promise<void> {
    const sentAt = performance.now();
    if (sentAt >= lease.validUntil) {
      this.#drop(lease, "expired");
      return;
    }
    try {
      const value: LeaseValue = { host: this.#hostId, epoch: lease.epoch };
      const revision = await this.#kv.update(leaseKey(lease.partition), encodeBody(value), lease.revision);
      if (this.#owned.get(lease.partition) !== lease) return;
      lease.revision = revision;
      lease.validUntil = sentAt + this.#ttlMs - this.#marginMs;
      this.#emit({ type: "renewed", partition: lease.partition, epoch: lease.epoch });
    } catch (err) {
      if (isCasFailure(err)) {
        this.#drop(lease, "taken");
        return;
      }
      // A transport failure: keep the lease until its validity runs out; the next round retries.
    }
  }

  /** Gives a partition back: forgets it locally first, then deletes the key if still ours. */
  async release(partition: number): Promise<void> {
    const lease = this.#owned.get(partition);
    if (lease === undefined) return;
    this.#owned.delete(partition);
    try {
      await this.#kv.delete(leaseKey(partition), { previousSeq: lease.revision });
    } catch (err) {
      // Someone else holds it already (our lease had lapsed): nothing of ours to delete.
      if (!isCasFailure(err)) throw err;
    }
    this.#emit({ type: "released", partition, epoch: lease.epoch });
  }

  /**
   * Starts following the bucket (see KeyView); `onChange` hears every later change of any lease.
   * Resolves once the current leases are known.
   */
  async watch(options: KeyViewOptions = {}): Promise<void> {
    this.#view = new KeyView(this.#kv, { name: "leases", ...options });
    await this.#view.start();
  }

  stopWatching(): void {
    this.#view?.stop();
  }

  /** Partitions currently held by anyone, read from the bucket. */
  async heldByAnyone(): Promise<Set<number>> {
    const held = new Set<number>();
    if (this.#view === undefined) throw new Error("LeaseTable.watch() was not called");
    for (const key of await this.#view.live()) {
      const p = partitionFromKey(key);
      if (p !== undefined) held.add(p);
    }
    return held;
  }

  /** Who holds a partition, per the bucket (diagnostics and tests). */
  async holderOf(partition: number): Promise<{ host: string; revision: number } | undefined> {
    const entry = await this.#kv.get(leaseKey(partition));
    if (entry === null || entry.operation !== "PUT") return undefined;
    const value = decodeBody(entry.value) as Partial<LeaseValue>;
    return { host: String(value.host), revision: entry.revision };
  }
}
