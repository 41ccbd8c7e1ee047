/**
 * A worker's capacity, admitted by memory and slots (not CPU alone) and published in KV
 * `<prefix>_workers` (a TTL bucket: a dead worker's record ages out) for the dashboard and
 * `/health/detailed`.
 */
import type { KV } from "@nats-io/kv";
import { freemem } from "node:os";
import { encodeBody } from "../../bus/index.ts";

export interface CapacityOptions {
  kv: KV;
  workerId: string;
  slots: number;
  inFlight: () => number;
  maxRssMb: number;
  minFreeMemoryMb: number;
}

export interface WorkerCapacity {
  worker: string;
  slots: number;
  in_flight: number;
  free_slots: number;
  rss_mb: number;
  free_memory_mb: number;
  admitting: boolean;
  at: number;
}

const MB = 1024 * 1024;

export class Capacity {
  readonly #o: CapacityOptions;

  constructor(options: CapacityOptions) {
    this.#o = options;
  }

  /** Whether the worker may take one more job now. */
  admit(): boolean {
    return process.memoryUsage.rss() / MB < this.#o.maxRssMb && freemem() / MB >= this.#o.minFreeMemoryMb;
  }

  snapshot(): WorkerCapacity {
    const inFlight = this.#o.inFlight();
    return {
      worker: this.#o.workerId,
      slots: this.#o.slots,
      in_flight: inFlight,
      free_slots: Math.max(0, this.#o.slots - inFlight),
      rss_mb: Math.round(process.memoryUsage.rss() / MB),
      free_memory_mb: Math.round(freemem() / MB),
      admitting: this.admit(),
      at: Date.now(),
    };
  }

  async publish(): Promise<void> {
    await this.#o.kv.put(this.#o.workerId, encodeBody(this.snapshot()));
  }

  async withdraw(): Promise<void> {
    await this.#o.kv.delete(this.#o.workerId);
  }
}
