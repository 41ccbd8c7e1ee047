/**
 * What confirmed dispatch did lately on one actor host, and the read path the console's dashboard
 * uses for it: the Dispatcher records every job it published (claimed with its publish-to-claim
 * time, withdrawn for want of a worker, or ended in a final failure); each host answers with the
 * last window of those as a NATS service (`sf-dispatch`: `$SRV.STATS` lists every host, and
 * `<prefix>.host.<id>.dispatch` answers one). Latencies travel as a histogram on fixed buckets so
 * the windows of all hosts merge into cluster-wide percentiles (within the bucket width: 15 %).
 */
import { Svcm } from "@nats-io/services";
import type { Service } from "@nats-io/services";
import type { NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "pino";
import { encodeBody } from "../../bus/index.ts";
import type { Subjects } from "../../bus/index.ts";
import type { JobMode } from "./job.ts";

/** The NATS services name each actor host's dispatch window is served under. */
export const DISPATCH_SERVICE = "sf-dispatch";

/** Upper bounds (ms) of the latency buckets: 0.1 ms × 1.15^i up to 2 minutes; a last bucket holds the rest. */
export const DISPATCH_LATENCY_BOUNDS_MS: readonly number[] = (() => {
  const out: number[] = [];
  for (let b = 0.1; b < 120_000; b *= 1.15) out.push(Math.round(b * 1000) / 1000);
  return Object.freeze(out);
})();

export type DispatchOutcome = "claimed" | "no_capacity" | "failed";

/** One host's dispatch over the last `window_ms`. */
export interface DispatchWindow {
  host: string;
  window_ms: number;
  /** Jobs claimed by a worker (retried triggers of a job already in the stream are not counted). */
  claimed: { text: number; voice: number };
  /** Jobs withdrawn because no worker claimed them in time (SF_ERR_NO_AGENT_CAPACITY). */
  no_capacity: number;
  /** Jobs that ended in a final failure (SF_ERR_JOB_FAILED). */
  failed: number;
  /** Publish-to-claim latencies: `[bucket index, count]` for the non-empty buckets of DISPATCH_LATENCY_BOUNDS_MS. */
  latency_buckets: Array<[number, number]>;
  latency_max_ms: number | null;
}

/** The windows of every host, merged. */
export interface DispatchSummary {
  hosts: number;
  window_ms: number;
  claimed: number;
  claimed_by_mode: { text: number; voice: number };
  /** Claims per second over the window. */
  rate_per_s: number;
  no_capacity: number;
  failed: number;
  /** Publish-to-claim latency percentiles (ms), null with no claim in the window. */
  p50_ms: number | null;
  p99_ms: number | null;
  max_ms: number | null;
}

export interface DispatchStatsOptions {
  /** How far back a window reaches. Default 60000 ms. */
  windowMs?: number;
  /** Events kept at most (the oldest go first). Default 100000. */
  maxEvents?: number;
  now?: () => number;
}

const KIND = { text: 0, voice: 1, no_capacity: 2, failed: 3 } as const;

/** The index of the bucket `ms` falls in. */
export function latencyBucket(ms: number): number {
  const bounds = DISPATCH_LATENCY_BOUNDS_MS;
  let lo = 0;
  let hi = bounds.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (ms <= (bounds[mid] as number)) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

/** A ring of the host's recent dispatch events, read as a window. */
export class DispatchStats {
  readonly windowMs: number;
  readonly #now: () => number;
  readonly #at: Float64Array;
  readonly #ms: Float64Array;
  readonly #kind: Uint8Array;
  #start = 0;
  #length = 0;

  constructor(options: DispatchStatsOptions = {}) {
    this.windowMs = options.windowMs ?? 60_000;
    const capacity = options.maxEvents ?? 100_000;
    this.#now = options.now ?? (() => performance.now());
    this.#at = new Float64Array(capacity);
    this.#ms = new Float64Array(capacity);
    this.#kind = new Uint8Array(capacity);
  }

  /** A job was claimed `claimMs` after it was published. */
  claimed(mode: JobMode, claimMs: number): void {
    this.#push(KIND[mode], claimMs);
  }

  record(outcome: Exclude<DispatchOutcome, "claimed">): void {
    this.#push(KIND[outcome], Number.NaN);
  }

  #push(kind: number, ms: number): void {
    const capacity = this.#kind.length;
    if (capacity === 0) return;
    if (this.#length === capacity) {
      this.#start = (this.#start + 1) % capacity;
      this.#length--;
    }
    const i = (this.#start + this.#length) % capacity;
    this.#at[i] = this.#now();
    this.#ms[i] = ms;
    this.#kind[i] = kind;
    this.#length++;
  }

  /** The events of the last window (older ones are dropped). */
  window(host: string): DispatchWindow {
    const capacity = this.#kind.length;
    const since = this.#now() - this.windowMs;
    while (this.#length > 0 && (this.#at[this.#start] as number) < since) {
      this.#start = (this.#start + 1) % capacity;
      this.#length--;
    }
    const out: DispatchWindow = {
      host,
      window_ms: this.windowMs,
      claimed: { text: 0, voice: 0 },
      no_capacity: 0,
      failed: 0,
      latency_buckets: [],
      latency_max_ms: null,
    };
    const buckets = new Map<number, number>();
    for (let n = 0; n < this.#length; n++) {
      const i = (this.#start + n) % capacity;
      const kind = this.#kind[i];
      if (kind === KIND.no_capacity) out.no_capacity++;
      else if (kind === KIND.failed) out.failed++;
      else {
        if (kind === KIND.voice) out.claimed.voice++;
        else out.claimed.text++;
        const ms = this.#ms[i] as number;
        const b = latencyBucket(ms);
        buckets.set(b, (buckets.get(b) ?? 0) + 1);
        out.latency_max_ms = Math.max(out.latency_max_ms ?? 0, ms);
      }
    }
    out.latency_buckets = [...buckets.entries()].sort((a, b) => a[0] - b[0]);
    return out;
  }
}

/** The `q` quantile of merged bucket counts: the geometric middle of the bucket it falls in, capped at the max seen. */
function quantile(counts: Map<number, number>, total: number, q: number, maxMs: number): number {
  const rank = Math.max(1, Math.ceil(q * total));
  let seen = 0;
  for (const [b, c] of [...counts.entries()].sort((x, y) => x[0] - y[0])) {
    seen += c;
    if (seen >= rank) {
      const bounds = DISPATCH_LATENCY_BOUNDS_MS;
      const upper = bounds[b] ?? maxMs;
      const lower = b === 0 ? 0 : (bounds[b - 1] as number);
      const mid = lower === 0 ? upper / 2 : Math.sqrt(lower * upper);
      return Math.round(Math.min(mid, maxMs) * 100) / 100;
    }
  }
  return maxMs;
}

/** Reads a window from the wire; undefined when it is not one. */
export function parseDispatchWindow(value: unknown): DispatchWindow | undefined {
  if (typeof value !== "object" || value === null) return undefined;
  const v = value as Record<string, unknown>;
  const claimed = v["claimed"] as Record<string, unknown> | undefined;
  const nat = (x: unknown): x is number => Number.isInteger(x) && (x as number) >= 0;
  if (typeof v["host"] !== "string" || !nat(v["window_ms"]) || typeof claimed !== "object") return undefined;
  if (!nat(claimed["text"]) || !nat(claimed["voice"]) || !nat(v["no_capacity"]) || !nat(v["failed"]))
    return undefined;
  const buckets = v["latency_buckets"];
  if (!Array.isArray(buckets)) return undefined;
  const pairs: Array<[number, number]> = [];
  for (const p of buckets) {
    if (!Array.isArray(p) || p.length !== 2 || !nat(p[0]) || !nat(p[1])) return undefined;
    if (p[0] > DISPATCH_LATENCY_BOUNDS_MS.length) return undefined;
    pairs.push([p[0], p[1]]);
  }
  const max = v["latency_max_ms"];
  if (max !== null && typeof max !== "number") return undefined;
  return {
    host: v["host"],
    window_ms: v["window_ms"],
    claimed: { text: claimed["text"], voice: claimed["voice"] },
    no_capacity: v["no_capacity"],
    failed: v["failed"],
    latency_buckets: pairs,
    latency_max_ms: max,
  };
}

/** The windows of every host as one: counts added, percentiles from the merged histogram. */
export function mergeDispatchWindows(windows: readonly DispatchWindow[]): DispatchSummary {
  const windowMs = Math.max(1, ...windows.map((w) => w.window_ms));
  const counts = new Map<number, number>();
  let text = 0;
  let voice = 0;
  let noCapacity = 0;
  let failed = 0;
  let max: number | null = null;
  for (const w of windows) {
    text += w.claimed.text;
    voice += w.claimed.voice;
    noCapacity += w.no_capacity;
    failed += w.failed;
    for (const [b, c] of w.latency_buckets) counts.set(b, (counts.get(b) ?? 0) + c);
    if (w.latency_max_ms !== null) max = Math.max(max ?? 0, w.latency_max_ms);
  }
  const claimed = text + voice;
  const total = [...counts.values()].reduce((a, b) => a + b, 0);
  return {
    hosts: windows.length,
    window_ms: windowMs,
    claimed,
    claimed_by_mode: { text, voice },
    rate_per_s: Math.round((claimed / (windowMs / 1000)) * 1000) / 1000,
    no_capacity: noCapacity,
    failed,
    p50_ms: total === 0 || max === null ? null : quantile(counts, total, 0.5, max),
    p99_ms: total === 0 || max === null ? null : quantile(counts, total, 0.99, max),
    max_ms: max === null ? null : Math.round(max * 100) / 100,
  };
}

/**
 * Serves `stats` as the NATS service `sf-dispatch` of host `hostId`: its `$SRV.STATS` answer
 * carries the window in each endpoint's `data`, and `<prefix>.host.<id>.dispatch` answers it.
 */
export async function serveDispatchStats(options: {
  nc: NatsConnection;
  subjects: Subjects;
  hostId: string;
  stats: DispatchStats;
  log: Logger;
}): Promise<Service> {
  const { nc, subjects, hostId, stats, log } = options;
  const service = await new Svcm(nc).add({
    name: DISPATCH_SERVICE,
    version: "0.1.0",
    description: "Sidekick Forge confirmed dispatch: the host's recent claims, latencies and failures",
    metadata: { host: hostId, prefix: subjects.prefix },
    queue: "",
    statsHandler: () => Promise.resolve(stats.window(hostId)),
  });
  service.addEndpoint("window", {
    subject: subjects.hostControl(hostId, "dispatch"),
    handler: (err, msg) => {
      if (err) {
        log.warn({ err: err.message }, "dispatch stats endpoint error");
        return;
      }
      msg.respond(encodeBody(stats.window(hostId)));
    },
    metadata: { description: "this host's dispatch window" },
  });
  return service;
}
