/**
 * Memory diagnostics, for benches and investigations only (SF_WORKER_MEMORY_DIAGNOSTICS=1, which
 * needs `node --expose-gc`; no deployment sets it): on SIGUSR2 the worker runs a full garbage
 * collection, then logs one line "memory diagnostics" with `process.memoryUsage()` (rss, heap,
 * external, array buffers), the resident set split as the kernel sees it (anonymous vs file-backed,
 * /proc/self/status), its thread count, and how many of the given object kinds survived the
 * collection (`v8.queryObjects`). With SF_WORKER_HEAP_SNAPSHOT_DIR it also writes a heap snapshot
 * there, named after the request's sequence number, to compare in DevTools.
 *
 * Separates the two ways a worker can keep memory after its sessions closed: a JS heap (or
 * external buffers) that stays high after a full collection is a leak in JS; a resident set far
 * above heap + external is native memory (the FFI's Rust side, or the C allocator's arenas).
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { queryObjects, writeHeapSnapshot } from "node:v8";
import type { Logger } from "pino";
import { ConfigError } from "../../actors/index.ts";

export interface MemoryDiagnosticsOptions {
  log: Logger;
  /** Where heap snapshots go; absent: none are written. */
  heapSnapshotDir?: string;
  /** Classes whose live instances are counted after the collection. */
  count?: Readonly<Record<string, abstract new (...args: never[]) => unknown>>;
  /**
   * Whether to count them now. Counting walks the whole heap once per class, synchronously: it
   * took seconds per class on an idle worker, and with 25 voice sessions on a loaded machine the
   * reading blocked the worker for 28 s, long enough for its NATS and provider connections to be
   * dropped. The worker counts only while it runs no voice session, which is when the counts
   * tell something (what closed sessions left behind). Default: always.
   */
  countWhen?: () => boolean;
}

/** One reading, in MiB (kB-precise), as the log line carries it. */
export interface MemoryReading {
  rss_mib: number;
  heap_used_mib: number;
  heap_total_mib: number;
  external_mib: number;
  array_buffers_mib: number;
  /** Anonymous resident memory (heap, malloc arenas, thread stacks): /proc/self/status RssAnon. */
  rss_anon_mib: number;
  /** Resident file mappings (code, the FFI library): RssFile. */
  rss_file_mib: number;
  threads: number;
  /** Live instances per counted class, after the collection (empty when not counted). */
  live: Record<string, number>;
}

const MIB = 1024 * 1024;
const round = (bytes: number): number => Math.round((bytes / MIB) * 10) / 10;

function procStatus(): { anon: number; file: number; threads: number } {
  const status = readFileSync("/proc/self/status", "utf8");
  const field = (name: string): number => {
    const m = new RegExp(`^${name}:\\s+(\\d+)`, "m").exec(status);
    return m?.[1] === undefined ? Number.NaN : Number(m[1]);
  };
  return { anon: field("RssAnon") * 1024, file: field("RssFile") * 1024, threads: field("Threads") };
}

type Gc = (options?: { type: "major"; execution: "sync" }) => void;

function exposedGc(): Gc | undefined {
  const gc: unknown = (globalThis as { gc?: unknown }).gc;
  return typeof gc === "function" ? (gc as Gc) : undefined;
}

function noGc(): ConfigError {
  return new ConfigError("SF_WORKER_MEMORY_DIAGNOSTICS=1 needs node --expose-gc (NODE_OPTIONS=--expose-gc)");
}

/** Whether this process can run the diagnostics (started with --expose-gc). */
export function canDiagnoseMemory(): boolean {
  return exposedGc() !== undefined;
}

/** A full collection, then the reading. */
export function readMemory(count: MemoryDiagnosticsOptions["count"] = {}): MemoryReading {
  const gc = exposedGc();
  if (gc === undefined) throw noGc();
  // Twice: the first run's finalizers and weak callbacks free more for the second.
  gc();
  gc();
  const live: Record<string, number> = {};
  for (const [name, ctor] of Object.entries(count)) live[name] = queryObjects(ctor, { format: "count" });
  const usage = process.memoryUsage();
  const status = procStatus();
  return {
    rss_mib: round(usage.rss),
    heap_used_mib: round(usage.heapUsed),
    heap_total_mib: round(usage.heapTotal),
    external_mib: round(usage.external),
    array_buffers_mib: round(usage.arrayBuffers),
    rss_anon_mib: round(status.anon),
    rss_file_mib: round(status.file),
    threads: status.threads,
    live,
  };
}

/**
 * Answers SIGUSR2 with a reading (and a heap snapshot, when asked), logged as
 * `{ seq, memory, snapshot? }, "memory diagnostics"`; `seq` counts the requests from 1. Returns
 * what stops answering.
 */
export function serveMemoryDiagnostics(options: MemoryDiagnosticsOptions): () => void {
  if (!canDiagnoseMemory()) throw noGc();
  let seq = 0;
  const onSignal = (): void => {
    seq += 1;
    const memory = readMemory(options.countWhen === undefined || options.countWhen() ? options.count : {});
    let snapshot: string | undefined;
    if (options.heapSnapshotDir !== undefined) {
      snapshot = writeHeapSnapshot(
        join(options.heapSnapshotDir, `worker-${process.pid}-${seq}.heapsnapshot`),
      );
    }
    options.log.info(
      { diag: `m${seq}`, memory, ...(snapshot === undefined ? {} : { snapshot }) },
      "memory diagnostics",
    );
  };
  process.on("SIGUSR2", onSignal);
  return () => process.off("SIGUSR2", onSignal);
}
