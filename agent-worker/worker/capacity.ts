/**
 * A worker's capacity, published in KV `<prefix>_workers` (a TTL bucket: a dead worker's record
 * ages out) for the dashboard, `sidekick doctor` and `/health/detailed`.
 *
 * Admission, per queue: every job needs memory (RSS under `maxRssMb`, free memory over
 * `minFreeMemoryMb`); a voice session also needs one of the worker's voice slots and a worker that
 * is not saturated (load_pressure.ts: event loop delay, CPU), because a voice session lives on the
 * JS thread for its whole length and a starved loop loses joins and audio. Text and ingestion jobs
 * are admitted by memory and their own slot counts (job_consumer.ts) only.
 */
import type { KV } from "@nats-io/kv";
import { freemem } from "node:os";
import { encodeBody } from "../../bus/index.ts";
import type { LoadPressure } from "./load_pressure.ts";

export interface CapacityOptions {
  kv: KV;
  workerId: string;
  /** Text dispatch slots (SF_WORKER_SLOTS). */
  slots: number;
  /** Text and ingestion jobs running. */
  inFlight: () => number;
  maxRssMb: number;
  minFreeMemoryMb: number;
  /** Voice sessions at most (SF_WORKER_VOICE_SLOTS); 0: this worker runs no voice. Default 0. */
  voiceSlots?: number;
  /** Voice sessions running. Default none. */
  voiceInFlight?: () => number;
  /** The worker's load; absent, voice is admitted on slots and memory alone. */
  pressure?: LoadPressure;
}

/** Why a free slot may not pull a job now. */
export type AdmissionRefusal = "memory" | "voice_slots" | "saturated";

export type AdmissionQueue = "dispatch" | "voice" | "ingest";

export interface WorkerCapacity {
  worker: string;
  /** Text dispatch slots, the text and ingestion jobs running, what is free of them. */
  slots: number;
  in_flight: number;
  free_slots: number;
  rss_mb: number;
  free_memory_mb: number;
  /** Whether text and ingestion jobs are admitted (memory). */
  admitting: boolean;
  voice_slots: number;
  voice_in_flight: number;
  free_voice_slots: number;
  /** Whether a voice job is admitted now (memory, a free voice slot, not saturated). */
  admitting_voice: boolean;
  /** The load reading of the last window and whether it saturates the worker. */
  saturated: boolean;
  saturated_by: string[];
  event_loop_delay_ms: number;
  event_loop_utilization: number;
  cpu_ratio: number;
  at: number;
}

const MB = 1024 * 1024;
const round = (n: number, digits: number): number => Math.round(n * 10 ** digits) / 10 ** digits;

export class Capacity {
  readonly #o: CapacityOptions;

  constructor(options: CapacityOptions) {
    this.#o = options;
  }

  get voiceSlots(): number {
    return this.#o.voiceSlots ?? 0;
  }

  /** Whether the worker may take one more text or ingestion job now (memory). */
  admit(): boolean {
    return this.#memoryOk();
  }

  /** Whether the worker may take one more voice session now. */
  admitVoice(): boolean {
    return this.refusal("voice") === undefined;
  }

  /** Why a job of `queue` may not be pulled now; undefined when it may. */
  refusal(queue: AdmissionQueue): AdmissionRefusal | undefined {
    if (queue === "voice") {
      if ((this.#o.voiceInFlight?.() ?? 0) >= this.voiceSlots) return "voice_slots";
      if (!this.#memoryOk()) return "memory";
      if (this.#o.pressure?.saturated === true) return "saturated";
      return undefined;
    }
    return this.#memoryOk() ? undefined : "memory";
  }

  #memoryOk(): boolean {
    return process.memoryUsage.rss() / MB < this.#o.maxRssMb && freemem() / MB >= this.#o.minFreeMemoryMb;
  }

  snapshot(): WorkerCapacity {
    const inFlight = this.#o.inFlight();
    const voiceInFlight = this.#o.voiceInFlight?.() ?? 0;
    const load = this.#o.pressure?.state;
    return {
      worker: this.#o.workerId,
      slots: this.#o.slots,
      in_flight: inFlight,
      free_slots: Math.max(0, this.#o.slots - inFlight),
      rss_mb: Math.round(process.memoryUsage.rss() / MB),
      free_memory_mb: Math.round(freemem() / MB),
      admitting: this.admit(),
      voice_slots: this.voiceSlots,
      voice_in_flight: voiceInFlight,
      free_voice_slots: Math.max(0, this.voiceSlots - voiceInFlight),
      admitting_voice: this.admitVoice(),
      saturated: load?.saturated ?? false,
      saturated_by: load?.causes ?? [],
      event_loop_delay_ms: round(load?.reading.eventLoopDelayMs ?? 0, 1),
      event_loop_utilization: round(load?.reading.eventLoopUtilization ?? 0, 3),
      cpu_ratio: round(load?.reading.cpuRatio ?? 0, 3),
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
