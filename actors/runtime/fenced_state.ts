/**
 * Durable actor state with fencing. Each record carries the epoch (lease revision) of the
 * owner that wrote it. On activation an owner reads the record and immediately rewrites it
 * stamped with its own epoch (compare-and-set on the revision it read); from then on every
 * write is a compare-and-set on the revision of its own last write. A paused owner that wakes
 * after another host has activated the actor holds a stale revision, so its writes fail, and
 * a record written by a newer epoch is never overwritten by an older one.
 */
import type { KV } from "@nats-io/kv";
import { BusErrorCodes, decodeBody, encodeBody, SfError } from "../../bus/index.ts";
import { isCasFailure } from "./key_view.ts";

interface Record_<T> {
  epoch: number;
  data: T | undefined;
}

export class FencedState<T> {
  readonly #kv: KV;
  readonly #key: string;
  readonly #epoch: number;
  #revision = 0;
  #activated = false;

  constructor(kv: KV, key: string, epoch: number) {
    this.#kv = kv;
    this.#key = key;
    this.#epoch = epoch;
  }

  get epoch(): number {
    return this.#epoch;
  }

  /** Reads the state and fences out every older epoch. Throws SF_ERR_FENCED if a newer owner wrote. */
  async activate(): Promise<T | undefined> {
    this.#activated = false;
    let entry;
    try {
      entry = await this.#kv.get(this.#key);
    } catch (err) {
      throw unavailable(err);
    }
    let data: T | undefined;
    let revision = 0;
    if (entry !== null && entry.operation === "PUT") {
      const record = decodeBody(entry.value) as Record_<T>;
      if (record.epoch > this.#epoch) {
        throw new SfError(BusErrorCodes.FENCED, "a newer owner has written this actor's state", {
          details: { epoch: this.#epoch, newer: record.epoch },
        });
      }
      data = record.data;
      revision = entry.revision;
    }
    await this.#write(data, revision);
    this.#activated = true;
    return data;
  }

  /** Writes the state; throws SF_ERR_FENCED when another owner has written since our last write. */
  async save(data: T): Promise<void> {
    if (!this.#activated) throw new SfError(BusErrorCodes.INTERNAL, "state saved before activation");
    await this.#write(data, this.#revision);
  }

  async #write(data: T | undefined, revision: number): Promise<void> {
    const value = encodeBody({ epoch: this.#epoch, data } satisfies Record_<T>);
    try {
      this.#revision =
        revision === 0
          ? await this.#kv.create(this.#key, value)
          : await this.#kv.update(this.#key, value, revision);
    } catch (err) {
      if (isCasFailure(err)) {
        throw new SfError(BusErrorCodes.FENCED, "this actor's state was written by another owner", {
          cause: err,
          details: { epoch: this.#epoch },
        });
      }
      throw unavailable(err);
    }
  }
}

/** A store call that failed without a verdict: the write may or may not have landed. */
function unavailable(err: unknown): SfError {
  return new SfError(BusErrorCodes.UNAVAILABLE, "actor state store did not answer; outcome unknown", {
    cause: err,
    retryable: true,
  });
}

/** Reads a state record without fencing (diagnostics and tests). */
export async function readStateRecord<T>(
  kv: KV,
  key: string,
): Promise<{ epoch: number; data: T | undefined; revision: number } | undefined> {
  const entry = await kv.get(key);
  if (entry === null || entry.operation !== "PUT") return undefined;
  const record = decodeBody(entry.value) as Record_<T>;
  return { epoch: record.epoch, data: record.data, revision: entry.revision };
}
