/**
 * Whether this worker process is saturated, read from its own event loop and CPU: a voice session
 * needs the JS thread every 20 ms (audio frames, VAD) and, when it joins, must answer the LiveKit
 * FFI's connect handshake within 15 s, so a worker whose loop lags stops taking voice jobs until it
 * recovers and leaves them to other workers (a job nobody pulls stays in JetStream; the confirmed
 * dispatch's deadline answers the caller). Memory is judged apart (capacity.ts).
 *
 * Every `windowMs` it reads the event loop's p99 delay over the window (how late a 10 ms timer
 * fires, in a perf_hooks histogram: `monitorEventLoopDelay` on Node 20 does not record a loop
 * blocked for hundreds of ms, measured), its utilisation (`eventLoopUtilization`) and the CPU the
 * process used, native threads included (`process.cpuUsage`, as a share of the machine's cores). Saturated when
 * the delay or the CPU is over its limit; recovered once both are under `recoverRatio` of their
 * limits (hysteresis, so one quiet window does not let a burst of joins in).
 */
import { availableParallelism } from "node:os";
import { createHistogram, performance } from "node:perf_hooks";
import type { EventLoopUtilization } from "node:perf_hooks";

/** One window's reading. */
export interface LoadReading {
  /** p99 of the event loop's delay over the window, ms. */
  eventLoopDelayMs: number;
  /** Share of the window the event loop was busy, 0..1. */
  eventLoopUtilization: number;
  /** CPU this process used over the window, as a share of all the machine's cores, 0..1. */
  cpuRatio: number;
}

/** Where readings come from: this process by default (`processLoadProbe`), a script in tests. */
export interface LoadProbe {
  /** The reading since the previous call (or since the probe was made). */
  read(): LoadReading;
  close(): void;
}

export interface LoadPressureOptions {
  /** Saturated when the event loop's p99 delay over a window is above this (ms). */
  maxEventLoopDelayMs: number;
  /** Saturated when the process used more than this share of the machine's cores (0 < x ≤ 1). */
  maxCpuRatio: number;
  /** Recovered once both readings are under this share of their limits. Default 0.7. */
  recoverRatio?: number;
  /** How often a reading is taken once `start()`ed. Default 1000 ms. */
  windowMs?: number;
  /** Default `processLoadProbe()`. */
  probe?: LoadProbe;
}

export interface LoadState {
  saturated: boolean;
  /** The last reading (zeros before the first). */
  reading: LoadReading;
  /** Why the worker is saturated ("event_loop", "cpu"), empty when it is not. */
  causes: Array<"event_loop" | "cpu">;
}

const NS_PER_MS = 1e6;

/** Readings of this process: event loop delay and utilisation, and its CPU time. */
export function processLoadProbe(resolutionMs = 10): LoadProbe {
  const cores = availableParallelism();
  // How late each tick of a `resolutionMs` timer comes, in ns (the histogram takes integers ≥ 1).
  const delay = createHistogram();
  let tick = performance.now();
  const ticker = setInterval(() => {
    const now = performance.now();
    delay.record(Math.max(1, Math.round((now - tick - resolutionMs) * NS_PER_MS)));
    tick = now;
  }, resolutionMs);
  ticker.unref();
  let elu: EventLoopUtilization = performance.eventLoopUtilization();
  let cpu = process.cpuUsage();
  let at = performance.now();
  return {
    read(): LoadReading {
      const now = performance.now();
      const cpuNow = process.cpuUsage();
      const eluNow = performance.eventLoopUtilization();
      const wallUs = Math.max(1, (now - at) * 1000);
      const usedUs = cpuNow.user - cpu.user + (cpuNow.system - cpu.system);
      const reading = {
        // An empty histogram (no tick yet: the loop is blocked now) reads as the time since the
        // last tick, which is how late the next one will be.
        eventLoopDelayMs:
          delay.count === 0 ? Math.max(0, now - tick - resolutionMs) : delay.percentile(99) / NS_PER_MS,
        eventLoopUtilization: performance.eventLoopUtilization(eluNow, elu).utilization,
        cpuRatio: Math.min(1, usedUs / (wallUs * cores)),
      };
      delay.reset();
      elu = eluNow;
      cpu = cpuNow;
      at = now;
      return reading;
    },
    close(): void {
      clearInterval(ticker);
    },
  };
}

export class LoadPressure {
  readonly #o: Required<Omit<LoadPressureOptions, "probe">>;
  readonly #probe: LoadProbe;
  #state: LoadState = {
    saturated: false,
    reading: { eventLoopDelayMs: 0, eventLoopUtilization: 0, cpuRatio: 0 },
    causes: [],
  };
  #timer: NodeJS.Timeout | undefined;

  constructor(options: LoadPressureOptions) {
    if (!(options.maxCpuRatio > 0 && options.maxCpuRatio <= 1)) {
      throw new RangeError("maxCpuRatio must be in (0, 1]");
    }
    if (!(options.maxEventLoopDelayMs > 0)) throw new RangeError("maxEventLoopDelayMs must be > 0");
    this.#o = {
      maxEventLoopDelayMs: options.maxEventLoopDelayMs,
      maxCpuRatio: options.maxCpuRatio,
      recoverRatio: options.recoverRatio ?? 0.7,
      windowMs: options.windowMs ?? 1000,
    };
    this.#probe = options.probe ?? processLoadProbe();
  }

  get state(): LoadState {
    return this.#state;
  }

  get saturated(): boolean {
    return this.#state.saturated;
  }

  /** Takes a reading now and updates the state. */
  sample(): LoadState {
    const reading = this.#probe.read();
    const { maxEventLoopDelayMs, maxCpuRatio, recoverRatio } = this.#o;
    const over: LoadState["causes"] = [];
    if (reading.eventLoopDelayMs > maxEventLoopDelayMs) over.push("event_loop");
    if (reading.cpuRatio > maxCpuRatio) over.push("cpu");
    let saturated: boolean;
    let causes = over;
    if (over.length > 0) saturated = true;
    else if (!this.#state.saturated) saturated = false;
    else {
      // Saturated until both are well under their limits.
      const calm =
        reading.eventLoopDelayMs <= maxEventLoopDelayMs * recoverRatio &&
        reading.cpuRatio <= maxCpuRatio * recoverRatio;
      saturated = !calm;
      if (saturated) causes = this.#state.causes;
    }
    this.#state = { saturated, reading, causes: saturated ? causes : [] };
    return this.#state;
  }

  /** Samples every `windowMs` until `stop()`; the timer does not keep the process alive. */
  start(): void {
    if (this.#timer !== undefined) return;
    this.#timer = setInterval(() => this.sample(), this.#o.windowMs);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    this.#probe.close();
  }
}
