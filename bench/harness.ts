/** Shared pieces of the benchmarks: latency statistics, closed-loop drivers, machine facts. */
import { readFileSync } from "node:fs";
import { cpus, loadavg, totalmem } from "node:os";

export interface BenchResult {
  /** Named figures: ops/s, p50_ms, p99_ms, ratios. */
  summary: Record<string, number | string>;
  /** Rows printed as a table. */
  table: Array<Record<string, string | number>>;
  details?: unknown;
}

export interface BenchOptions {
  /** A shorter run (CI smoke); the figures are then not for the notes. */
  quick?: boolean;
}

export type Bench = (options: BenchOptions) => Promise<BenchResult>;

export function machine(): Record<string, string | number> {
  const cpu = cpus();
  return {
    cpus: cpu.length,
    cpu_model: cpu[0]?.model ?? "unknown",
    memory_gib: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
    // Other work on the machine while the bench ran (1-minute load average at its end).
    load_average_1m: Math.round((loadavg()[0] ?? 0) * 100) / 100,
  };
}

export function percentile(sortedMs: number[], p: number): number {
  if (sortedMs.length === 0) return Number.NaN;
  const index = Math.min(sortedMs.length - 1, Math.max(0, Math.ceil((p / 100) * sortedMs.length) - 1));
  return sortedMs[index] as number;
}

export interface LoopStats {
  ops: number;
  errors: number;
  seconds: number;
  ops_per_s: number;
  p50_ms: number;
  p99_ms: number;
}

const round = (n: number, digits = 3) => Math.round(n * 10 ** digits) / 10 ** digits;

/**
 * Runs `concurrency` closed-loop callers of `op` for `durationMs` after `warmupMs`, and
 * reports throughput and latency. Bounded in time; stops by itself.
 */
export async function closedLoop(
  op: (worker: number) => Promise<unknown>,
  { concurrency, durationMs, warmupMs }: { concurrency: number; durationMs: number; warmupMs: number },
): Promise<LoopStats> {
  const latencies: number[] = [];
  let errors = 0;
  let recording = false;
  let running = true;
  const worker = async (id: number) => {
    while (running) {
      const t0 = performance.now();
      try {
        await op(id);
        if (recording) latencies.push(performance.now() - t0);
      } catch {
        if (recording) errors += 1;
      }
    }
  };
  const workers = Array.from({ length: concurrency }, (_, i) => worker(i));
  await new Promise((resolve) => setTimeout(resolve, warmupMs));
  recording = true;
  const started = performance.now();
  await new Promise((resolve) => setTimeout(resolve, durationMs));
  recording = false;
  const seconds = (performance.now() - started) / 1000;
  running = false;
  await Promise.all(workers);
  latencies.sort((a, b) => a - b);
  return {
    ops: latencies.length,
    errors,
    seconds: round(seconds),
    ops_per_s: round(latencies.length / seconds, 1),
    p50_ms: round(percentile(latencies, 50)),
    p99_ms: round(percentile(latencies, 99)),
  };
}

/** Clock ticks per second of /proc's utime and stime (USER_HZ, 100 on Linux). */
export const CLOCK_TICKS_PER_SECOND = 100;

/**
 * A /proc `stat` line (of a process or a task) read: its command name and its CPU ticks, user +
 * system. "pid (comm) state ...": the name may hold spaces and parentheses, so the fields are
 * those after the last ')'; utime and stime are the 14th and 15th of the line.
 */
export function statTicks(stat: string): { comm: string; ticks: number } {
  const close = stat.lastIndexOf(")");
  const fields = stat.slice(close + 2).split(" ");
  return { comm: stat.slice(stat.indexOf("(") + 1, close), ticks: Number(fields[11]) + Number(fields[12]) };
}

/** CPU seconds (user + system) a process has used so far, from /proc (Linux). */
export function processCpuSeconds(pid: number): number {
  return statTicks(readFileSync(`/proc/${pid}/stat`, "utf8")).ticks / CLOCK_TICKS_PER_SECOND;
}

/**
 * Node arguments that make a spawned process write a CPU profile into the folder named by the
 * environment variable `name` as it exits (open it in DevTools); none when the variable is unset.
 */
export function cpuProfileArgs(name: string): { nodeArgs?: string[] } {
  const dir = process.env[name]?.trim();
  return dir === undefined || dir === "" ? {} : { nodeArgs: ["--cpu-prof", `--cpu-prof-dir=${dir}`] };
}

/** The machine's busy and total ticks, all cores (the first line of /proc/stat). */
export function machineTicks(): { busy: number; total: number } {
  const fields = (readFileSync("/proc/stat", "utf8").split("\n")[0] ?? "")
    .trim()
    .split(/\s+/)
    .slice(1)
    .map(Number);
  const total = fields.reduce((a, b) => a + b, 0);
  // idle and iowait are the 4th and 5th numbers.
  return { busy: total - (fields[3] ?? 0) - (fields[4] ?? 0), total };
}

/** Microseconds per operation, to a tenth, of `seconds` spent over `ops` operations. */
const usPerOp = (seconds: number, ops: number): number =>
  ops > 0 ? Math.round((seconds / ops) * 1e6 * 10) / 10 : Number.NaN;

/**
 * Runs `fn` and reports the CPU microseconds each named process spent per operation, and under
 * `machine` what all processes of the machine spent together (load generator, servers, kernel).
 */
export async function cpuPerOp<T extends { ops: number }>(
  pids: Record<string, number>,
  fn: () => Promise<T>,
): Promise<T & { cpu_us_per_op: Record<string, number> }> {
  const before = Object.fromEntries(Object.entries(pids).map(([k, pid]) => [k, processCpuSeconds(pid)]));
  const machine0 = machineTicks().busy;
  const result = await fn();
  const machineSeconds = (machineTicks().busy - machine0) / CLOCK_TICKS_PER_SECOND;
  const cpu: Record<string, number> = {};
  for (const [name, pid] of Object.entries(pids)) {
    cpu[name] = usPerOp(processCpuSeconds(pid) - (before[name] as number), result.ops);
  }
  cpu["machine"] = usPerOp(machineSeconds, result.ops);
  return { ...result, cpu_us_per_op: cpu };
}
