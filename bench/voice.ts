/**
 * voice: what a voice session costs, measured through the process interfaces only (spawned
 * processes, the tenant actor's `trigger` op over NATS, the job's events, a LiveKit room), so it
 * measures whatever voice path the agent worker runs.
 *
 * Processes: a nats-server of its own, an actor host (tenant on the shared PostgreSQL, the shared
 * livekit-server's credentials in the platform store), one agent worker (agent-worker/main.ts)
 * pointed at the provider fixture, and this process as the users. The agent is a speech agent
 * (groq LLM, deepgram STT, elevenlabs TTS, all on the fixture).
 *
 * Memory first, on the fresh worker: its resident set (VmRSS of the worker and any processes it
 * started) with no session; after one warm-up session came and went (the baseline, RSS(0)); then
 * with 1, 10 and 25 sessions held open (1 and 3 with --quick), each a room in which a user joined
 * with the trigger's token and publishes a microphone track of quiet noise at real time (below the
 * VAD threshold: the agent listens, nothing is transcribed). Per session: (RSS(n) − RSS(0)) / n.
 * After every session closed: the RSS, and again 30 s later (5 s with --quick).
 *
 * Each memory point also has the worker's own reading after a full garbage collection (the worker
 * runs with --expose-gc and SF_WORKER_MEMORY_DIAGNOSTICS=1, and answers SIGUSR2): JS heap, external
 * buffers, anonymous RSS, the rest of it (native: the LiveKit FFI, thread stacks, malloc arenas),
 * threads, and the VoiceSession, Room and AudioFrame objects alive. That tells memory a session
 * leaves behind in JS from garbage not collected yet and from native memory. The worker runs with
 * the glibc malloc settings deployments give it (WORKER_MALLOC_ENV; SF_BENCH_VOICE_MALLOC to
 * compare others); SF_BENCH_VOICE_MALLOC_TRIM=1 adds malloc_stats() and malloc_trim(0) through
 * gdb after close, SF_BENCH_VOICE_HEAP_SNAPSHOTS=<dir> heap snapshots at each point (both skew
 * the figures after them; for investigations).
 *
 * Latency next, one room at a time (50 rooms, 5 with --quick): `trigger` (mode voice, a new
 * room) → the reply (room created, user token minted, job claimed; its `claim_ms` is the actor's
 * publish-to-claim time) → the job's `joined` event on `<prefix>.job.<tenant>.<job>.joined`
 * (subscribed before the trigger) → the agent participant visible in the user's room. The user
 * joins as soon as the reply is in (the worker leaves a room nobody joins), publishes its
 * microphone once the agent is there, and leaves a second later; the next room starts once the
 * job is `done` (a job still running 15 s after its user left gets its room deleted, and is
 * counted). Every room is deleted at the end.
 */
import { randomUUID } from "node:crypto";
import { spawn } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { NatsConnection, Subscription } from "@nats-io/transport-node";
import {
  AudioFrame,
  AudioSource,
  LocalAudioTrack,
  ParticipantKind,
  Room,
  RoomEvent,
  TrackPublishOptions,
  TrackSource,
} from "@livekit/rtc-node";
import type { RemoteParticipant } from "@livekit/rtc-node";
import { RoomServiceClient } from "livekit-server-sdk";
import {
  createPostgresDatabase,
  openTenantStore,
  provisionTenantDatabase,
  quoteIdent,
  WORKER_MALLOC_ENV,
} from "../actors/index.ts";
import type { JobEvent, PlatformStore, TenantDatabaseConfig, TriggerReply } from "../actors/index.ts";
import type { MemoryReading } from "../agent-worker/index.ts";
import { connectBus, createSubjects, decodeBody, requestReply } from "../bus/index.ts";
import type { Subjects } from "../bus/index.ts";
import { startProviderFixture } from "../tests/fixtures/providers/provider_fixture.ts";
import type { ProviderFixture } from "../tests/fixtures/providers/provider_fixture.ts";
import { NatsTestServer } from "../tests/helpers/nats_server.ts";
import { defaultPlatformSchema, spawnActorHost, spawnTs, testKeyring } from "../tests/helpers/processes.ts";
import type { TestProcess } from "../tests/helpers/processes.ts";
import { sharedServices } from "../tests/helpers/services.ts";
import type { SharedServices } from "../tests/helpers/services.ts";
import { addVoiceAgent, openTestPlatform } from "../tests/helpers/stack.ts";
import { CLOCK_TICKS_PER_SECOND, cpuProfileArgs, machineTicks, percentile, statTicks } from "./harness.ts";
import type { BenchOptions, BenchResult } from "./harness.ts";

const P = 16;
const AGENT = "helper";
const SAMPLE_RATE = 16_000;
const FRAME_SAMPLES = 320; // 20 ms
/** How far ahead of real time a user's microphone may run. */
const AUDIO_LEAD_MS = 200;
/** Quiet noise: well below the energy VAD's speech threshold. */
const NOISE_AMPLITUDE = 20;
const TRIGGER_TIMEOUT_MS = 20_000;
const JOIN_TIMEOUT_MS = 20_000;
/** After the user left: the worker's own drain limit (10 s) and a margin. */
const DONE_TIMEOUT_MS = 15_000;
/** Sessions opened at once while ramping up. */
const OPEN_PARALLEL = 5;
/** How long a latency-run user stays after the agent appeared. */
const USER_DWELL_MS = 1000;
/** The stock agents-js worker's job process, as reported (one process per job). */
const AGENTS_JS_JOB_PROCESS_MB = 300;

interface Sizes {
  rooms: number;
  levels: number[];
  settleMs: number;
  sampleMs: number;
  /** After close: how much longer the idle worker is left before the second, last sample. */
  laterMs: number;
}

const FULL: Sizes = {
  rooms: 50,
  levels: levelsFromEnv() ?? [1, 10, 25],
  settleMs: 5000,
  sampleMs: 5000,
  laterMs: 30_000,
};

/**
 * SF_BENCH_VOICE_SLOTS=25 lets the worker hold that many voice sessions whatever its CPU says
 * (SF_WORKER_VOICE_SLOTS, with the CPU and event-loop admission limits lifted): for reading the
 * memory of 25 sessions on a machine whose cores admit fewer. Unset: the deployment defaults.
 */
function voiceSlotsEnv(): Record<string, string> {
  const raw = process.env["SF_BENCH_VOICE_SLOTS"]?.trim();
  if (raw === undefined || raw === "") return {};
  const slots = Number(raw);
  if (!Number.isInteger(slots) || slots < 1 || slots > 100)
    throw new Error("SF_BENCH_VOICE_SLOTS must be an integer from 1 to 100");
  return {
    SF_WORKER_VOICE_SLOTS: String(slots),
    SF_WORKER_MAX_CPU_PERCENT: "100",
    SF_WORKER_MAX_EVENT_LOOP_DELAY_MS: "60000",
  };
}
const slotsEnv = voiceSlotsEnv();

/** SF_BENCH_VOICE_LEVELS=1,10 measures memory at those session counts instead of 1, 10, 25 (1, 3 quick). */
function levelsFromEnv(): number[] | undefined {
  const raw = process.env["SF_BENCH_VOICE_LEVELS"];
  if (raw === undefined || raw.trim() === "") return undefined;
  const levels = raw.split(",").map((x) => Number(x.trim()));
  if (levels.some((n) => !Number.isInteger(n) || n < 1 || n > 100)) {
    throw new Error("SF_BENCH_VOICE_LEVELS must list integers from 1 to 100");
  }
  return levels;
}
/**
 * SF_BENCH_VOICE_HEAP_SNAPSHOTS=<dir>: the worker also writes a heap snapshot at every reading
 * after a full collection (fresh, idle, each level, after close), to compare in DevTools.
 */
const snapshotDir = process.env["SF_BENCH_VOICE_HEAP_SNAPSHOTS"]?.trim() || undefined;

/**
 * The worker's glibc malloc settings. Unset, it runs with what deployments give it
 * (WORKER_MALLOC_ENV, the same as deploy/docker/entrypoint.sh and the dev supervisor);
 * SF_BENCH_VOICE_MALLOC=glibc leaves glibc's defaults (8 arenas per core, a dynamic mmap
 * threshold); SF_BENCH_VOICE_MALLOC=MALLOC_ARENA_MAX=2,MALLOC_TRIM_THRESHOLD_=131072 sets those.
 */
function mallocEnvFromEnv(): Record<string, string> {
  const raw = process.env["SF_BENCH_VOICE_MALLOC"]?.trim();
  if (raw === undefined || raw === "") return { ...WORKER_MALLOC_ENV };
  if (raw === "glibc") return {};
  const out: Record<string, string> = {};
  for (const pair of raw.split(",")) {
    const m = /^(MALLOC_[A-Z_]+)=(\d{1,10})$/.exec(pair.trim());
    if (m?.[1] === undefined || m[2] === undefined) {
      throw new Error("SF_BENCH_VOICE_MALLOC must be glibc or MALLOC_NAME=number pairs, comma-separated");
    }
    out[m[1]] = m[2];
  }
  return out;
}
const mallocEnv = mallocEnvFromEnv();

/**
 * SF_BENCH_VOICE_MALLOC_TRIM=1 (diagnostics, needs gdb and ptrace rights): after the readings
 * after close, gdb makes the worker print glibc's malloc_stats() to its stderr, call
 * malloc_trim(0), and print them again; the summary then says how much of the native memory was
 * free memory glibc kept (returned by the trim) rather than memory in use.
 */
const mallocTrim = process.env["SF_BENCH_VOICE_MALLOC_TRIM"] === "1";

const QUICK: Sizes = {
  rooms: 5,
  levels: levelsFromEnv() ?? [1, 3],
  settleMs: 1500,
  sampleMs: 1500,
  laterMs: 5000,
};

const round = (n: number, digits = 2): number => Math.round(n * 10 ** digits) / 10 ** digits;
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const MIB = 1024 * 1024;

// ---- memory ----------------------------------------------------------------------------------

/** The process and every process it started (for a worker that forks helpers). */
function processTree(pid: number): number[] {
  const out = [pid];
  for (let i = 0; i < out.length; i++) {
    const p = out[i] as number;
    let tasks: string[];
    try {
      tasks = readdirSync(`/proc/${p}/task`);
    } catch {
      continue;
    }
    for (const task of tasks) {
      try {
        const children = readFileSync(`/proc/${p}/task/${task}/children`, "utf8").trim();
        if (children !== "") out.push(...children.split(/\s+/).map(Number));
      } catch {
        // The task ended meanwhile.
      }
    }
  }
  return out;
}

function commandLine(pid: number): string {
  try {
    const argv = readFileSync(`/proc/${pid}/cmdline`, "utf8")
      .split("\0")
      .filter((a) => a !== "");
    return argv
      .map((a) => (a.length > 60 ? `…${a.slice(-60)}` : a))
      .join(" ")
      .slice(0, 200);
  } catch {
    return `${pid} (gone)`;
  }
}

function vmRssBytes(pid: number): number {
  try {
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m?.[1] === undefined ? 0 : Number(m[1]) * 1024;
  } catch {
    return 0;
  }
}

// ---- CPU --------------------------------------------------------------------------------------

/** CPU ticks (user + system, all threads) of every process, by pid, with its command name. */
function cpuTicks(): Map<number, { comm: string; ticks: number }> {
  const out = new Map<number, { comm: string; ticks: number }>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      out.set(Number(entry), statTicks(readFileSync(`/proc/${entry}/stat`, "utf8")));
    } catch {
      // The process ended meanwhile.
    }
  }
  return out;
}

/** CPU ticks of a process's main thread (the task whose id is the pid), 0 when it is gone. */
function threadTicks(pid: number): number {
  try {
    return statTicks(readFileSync(`/proc/${pid}/task/${pid}/stat`, "utf8")).ticks;
  } catch {
    return 0;
  }
}

/**
 * Where the machine's CPU went over a window, in cores (1 = one core busy the whole window): the
 * named processes by pid, every other process by its command name (livekit-server, nats-server,
 * postgres…), and the machine as a whole.
 */
function cpuWindow(named: Record<string, number>): () => Record<string, number> {
  const t0 = performance.now();
  const before = cpuTicks();
  const machine0 = machineTicks();
  // The main (JS) thread of each named process: its task has the process's own id.
  const mainBefore = Object.fromEntries(Object.entries(named).map(([name, pid]) => [name, threadTicks(pid)]));
  return () => {
    const seconds = (performance.now() - t0) / 1000;
    const after = cpuTicks();
    const machine1 = machineTicks();
    const mainAfter = Object.fromEntries(
      Object.entries(named).map(([name, pid]) => [name, threadTicks(pid)]),
    );
    const byPid = new Map<number, string>(Object.entries(named).map(([name, pid]) => [pid, name]));
    const cores: Record<string, number> = {};
    for (const [pid, now] of after) {
      const then = before.get(pid);
      if (then === undefined || then.comm !== now.comm) continue;
      const delta = now.ticks - then.ticks;
      if (delta <= 0) continue;
      const key = byPid.get(pid) ?? now.comm;
      cores[key] = (cores[key] ?? 0) + delta / CLOCK_TICKS_PER_SECOND / seconds;
    }
    const out: Record<string, number> = {};
    for (const [key, value] of Object.entries(cores)) if (value >= 0.005) out[key] = round(value, 3);
    for (const name of Object.keys(named)) {
      const delta = (mainAfter[name] ?? 0) - (mainBefore[name] ?? 0);
      if (delta > 0) out[`${name}_js_thread`] = round(delta / CLOCK_TICKS_PER_SECOND / seconds, 3);
    }
    const total = machine1.total - machine0.total;
    out["machine_busy_share"] = total > 0 ? round((machine1.busy - machine0.busy) / total, 3) : 0;
    return out;
  };
}

interface MemorySample {
  /** The worker process alone. */
  rss_mib: number;
  /** The worker and the processes it started. */
  tree_rss_mib: number;
  processes: number;
  /** What the worker's child processes run (command lines, shortened), when it has any. */
  children: string;
  /** V8 heap in use, from the worker's /metrics (NaN when unavailable). */
  heap_used_mib: number;
}

async function heapUsedMib(metricsPort: number | undefined): Promise<number> {
  if (metricsPort === undefined) return Number.NaN;
  try {
    const res = await fetch(`http://127.0.0.1:${metricsPort}/metrics`, { signal: AbortSignal.timeout(2000) });
    const text = await res.text();
    const m = /^sf_nodejs_heap_size_used_bytes\s+([\d.e+]+)/m.exec(text);
    return m?.[1] === undefined ? Number.NaN : round(Number(m[1]) / MIB, 1);
  } catch {
    return Number.NaN;
  }
}

/** The worker's jobs in flight (`sf_worker_slots_in_use`), NaN when unknown. */
async function slotsInUse(metricsPort: number | undefined): Promise<number> {
  if (metricsPort === undefined) return Number.NaN;
  try {
    const res = await fetch(`http://127.0.0.1:${metricsPort}/metrics`, { signal: AbortSignal.timeout(2000) });
    const m = /^sf_worker_slots_in_use\s+([\d.e+]+)/m.exec(await res.text());
    return m?.[1] === undefined ? Number.NaN : Number(m[1]);
  } catch {
    return Number.NaN;
  }
}

/**
 * The worker's voice admission as its /metrics show it: voice slots, load (event loop p99 delay,
 * CPU share, saturated) and the refusals so far by reason. Empty when unavailable.
 */
async function admission(metricsPort: number | undefined): Promise<Record<string, number>> {
  if (metricsPort === undefined) return {};
  let text: string;
  try {
    const res = await fetch(`http://127.0.0.1:${metricsPort}/metrics`, { signal: AbortSignal.timeout(2000) });
    text = await res.text();
  } catch {
    return {};
  }
  const value = (pattern: RegExp): number => {
    const m = pattern.exec(text);
    return m?.[1] === undefined ? Number.NaN : Number(m[1]);
  };
  const out: Record<string, number> = {
    voice_slots: value(/^sf_worker_voice_slots_total\s+([\d.e+-]+)/m),
    voice_in_use: value(/^sf_worker_voice_slots_in_use\s+([\d.e+-]+)/m),
    saturated: value(/^sf_worker_saturated\s+([\d.e+-]+)/m),
    event_loop_delay_p99_ms: round(value(/^sf_worker_event_loop_delay_p99_seconds\s+([\d.e+-]+)/m) * 1000, 1),
    cpu_ratio: round(value(/^sf_worker_cpu_ratio\s+([\d.e+-]+)/m), 3),
  };
  for (const m of text.matchAll(
    /^sf_worker_admission_refusals_total\{queue="voice",reason="([a-z_]+)"\}\s+([\d.e+-]+)/gm,
  )) {
    out[`voice_refusals_${m[1] as string}`] = Number(m[2]);
  }
  return out;
}

/** Waits (polling, with a deadline) until the worker has no job in flight; returns how long it took. */
async function waitForIdleWorker(metricsPort: number | undefined, deadlineMs: number): Promise<number> {
  const started = performance.now();
  while (performance.now() - started < deadlineMs) {
    if ((await slotsInUse(metricsPort)) === 0) return performance.now() - started;
    await sleep(250);
  }
  throw new Error(`the worker still had jobs in flight ${deadlineMs} ms after every session was closed`);
}

/** The median of samples taken every 250 ms for `ms` (one sample when `ms` is 0). */
async function sampleMemory(pid: number, metricsPort: number | undefined, ms: number): Promise<MemorySample> {
  const rss: number[] = [];
  const tree: number[] = [];
  let processes = 1;
  let children = "";
  const until = performance.now() + ms;
  do {
    const pids = processTree(pid);
    processes = pids.length;
    if (pids.length > 1) children = pids.slice(1).map(commandLine).join("; ");
    rss.push(vmRssBytes(pid));
    tree.push(pids.reduce((sum, p) => sum + vmRssBytes(p), 0));
    if (performance.now() >= until) break;
    await sleep(250);
  } while (performance.now() < until);
  const median = (values: number[]): number =>
    percentile(
      [...values].sort((a, b) => a - b),
      50,
    );
  return {
    rss_mib: round(median(rss) / MIB, 1),
    tree_rss_mib: round(median(tree) / MIB, 1),
    processes,
    children,
    heap_used_mib: await heapUsedMib(metricsPort),
  };
}

let diagnostics = 0;

/**
 * The worker's own reading after a full garbage collection (worker/memory_diagnostics.ts: the
 * worker runs with --expose-gc and SF_WORKER_MEMORY_DIAGNOSTICS=1 here, and answers SIGUSR2 with a
 * log line): JS heap, external and array buffers against the resident set, which tells a leak in
 * JS from memory kept on the native side. Taken after the RSS samples, so they are not changed by
 * the forced collection.
 */
async function readAfterGc(worker: TestProcess): Promise<MemoryReading> {
  diagnostics += 1;
  const tag = `"diag":"m${diagnostics}"`;
  worker.signal("SIGUSR2");
  // A heap snapshot of a large heap takes a while on a loaded machine.
  const line = await worker.waitForLine(tag, 120_000);
  const { memory } = JSON.parse(line) as { memory: MemoryReading };
  return memory;
}

/** The reading as flat summary keys: `<key>_<field>`. */
function gcSummary(key: string, r: MemoryReading): Record<string, number> {
  const out: Record<string, number> = {
    [`${key}_gc_rss_mib`]: r.rss_mib,
    [`${key}_gc_heap_used_mib`]: r.heap_used_mib,
    [`${key}_gc_external_mib`]: r.external_mib,
    [`${key}_gc_array_buffers_mib`]: r.array_buffers_mib,
    [`${key}_gc_rss_anon_mib`]: r.rss_anon_mib,
    // Anonymous memory that is neither V8's heap nor buffers V8 knows of: the FFI's native side,
    // thread stacks, the C allocator's arenas (freed memory it did not give back included).
    [`${key}_gc_native_mib`]: round(r.rss_anon_mib - r.heap_total_mib - r.external_mib, 1),
    [`${key}_threads`]: r.threads,
  };
  for (const [kind, n] of Object.entries(r.live)) out[`${key}_live_${kind}`] = n;
  return out;
}

/** glibc's totals as malloc_stats() prints them: "system bytes" and "in use bytes", MiB. */
interface MallocTotals {
  system_mib: number;
  in_use_mib: number;
}

function mallocTotals(lines: readonly string[]): MallocTotals | undefined {
  const at = lines.findLastIndex((l) => l.startsWith("Total (incl. mmap):"));
  if (at < 0) return undefined;
  const value = (line: string | undefined): number => {
    const m = /=\s*(\d+)/.exec(line ?? "");
    return m?.[1] === undefined ? Number.NaN : round(Number(m[1]) / MIB, 1);
  };
  return { system_mib: value(lines[at + 1]), in_use_mib: value(lines[at + 2]) };
}

/**
 * In gdb (Python), attached to the worker: calls malloc_stats(), malloc_trim(0), malloc_stats()
 * only if no thread is inside the allocator (a call made while a thread holds an arena's lock
 * would wait for ever); prints SF_MALLOC_BUSY otherwise.
 */
const GDB_TRIM_SCRIPT = `python
import gdb
ALLOC = {"malloc", "free", "realloc", "calloc", "_int_malloc", "_int_free", "_int_realloc",
         "_int_memalign", "malloc_consolidate", "unlink_chunk", "sysmalloc", "systrim", "heap_trim",
         "arena_get2", "tcache_init", "__libc_malloc", "__libc_free", "__libc_calloc",
         "__libc_realloc", "__libc_memalign", "posix_memalign", "malloc_trim", "__malloc_arena_thread_freeres"}
busy = False
for thread in gdb.selected_inferior().threads():
    thread.switch()
    frame = gdb.newest_frame()
    depth = 0
    while frame is not None and depth < 12 and not busy:
        sal = frame.find_sal()
        name = frame.name() or ""
        path = sal.symtab.filename if sal is not None and sal.symtab is not None else ""
        busy = name in ALLOC or "malloc/" in path
        frame = frame.older()
        depth += 1
if busy:
    print("SF_MALLOC_BUSY")
else:
    gdb.execute("call (void) malloc_stats()")
    gdb.execute("call (int) malloc_trim(0)")
    gdb.execute("call (void) malloc_stats()")
    print("SF_MALLOC_DONE")
end
`;

/**
 * malloc_stats(), malloc_trim(0), malloc_stats() in the worker, through gdb; undefined when a
 * thread was inside the allocator at each of the attempts.
 */
async function trimWorkerMalloc(
  worker: TestProcess,
): Promise<{ before: MallocTotals; after: MallocTotals; trimmed: number } | undefined> {
  const dir = mkdtempSync(join(tmpdir(), "sf-bench-gdb-"));
  const script = join(dir, "trim.gdb");
  writeFileSync(script, GDB_TRIM_SCRIPT);
  let out = "";
  try {
    for (let attempt = 0; ; attempt++) {
      const gdb = spawn("gdb", ["-p", String(worker.pid), "-batch", "-x", script], {
        stdio: ["ignore", "pipe", "pipe"],
      });
      out = "";
      gdb.stdout.on("data", (chunk: Buffer) => (out += chunk.toString("utf8")));
      gdb.stderr.on("data", (chunk: Buffer) => (out += chunk.toString("utf8")));
      const timer = setTimeout(() => gdb.kill("SIGKILL"), 60_000);
      const code = await new Promise<number | null>((resolve) => gdb.once("exit", resolve));
      clearTimeout(timer);
      if (code !== 0) throw new Error(`gdb on the worker failed (${String(code)}): ${out.slice(-500)}`);
      if (out.includes("SF_MALLOC_DONE")) break;
      if (!out.includes("SF_MALLOC_BUSY")) throw new Error(`gdb on the worker said: ${out.slice(-500)}`);
      if (attempt >= 20) return undefined;
      await sleep(250);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const trimmed = /\$\d+ = (\d+)/.exec(out)?.[1];
  // The two reports went to the worker's stderr; wait until the second one is there.
  const from = worker.lines.length;
  const started = performance.now();
  const totals = (): MallocTotals[] => {
    const all = worker.lines;
    const firsts: MallocTotals[] = [];
    for (let i = Math.max(0, from - 200); i < all.length; i++) {
      if (all[i]?.startsWith("Total (incl. mmap):") === true) {
        const t = mallocTotals(all.slice(0, i + 3));
        if (t !== undefined) firsts.push(t);
      }
    }
    return firsts.slice(-2);
  };
  while (totals().length < 2) {
    if (performance.now() - started > 10_000) throw new Error("the worker printed no malloc_stats()");
    await sleep(100);
  }
  const [before, after] = totals() as [MallocTotals, MallocTotals];
  return { before, after, trimmed: Number(trimmed ?? Number.NaN) };
}

// ---- jobs and rooms --------------------------------------------------------------------------

/** Arrival times (performance.now) of every job event of the tenant, by job id and type. */
class JobEvents {
  readonly #seen = new Map<string, Map<string, { at: number; event: JobEvent }>>();
  readonly #waiters = new Set<() => void>();
  readonly #sub: Subscription;

  constructor(nc: NatsConnection, subjects: Subjects, tenant: string) {
    this.#sub = nc.subscribe(`${subjects.prefix}.job.${tenant}.*.*`, {
      callback: (err, msg) => {
        if (err) return;
        const at = performance.now();
        const event = decodeBody(msg.data) as JobEvent;
        let byType = this.#seen.get(event.jobId);
        if (byType === undefined) {
          byType = new Map();
          this.#seen.set(event.jobId, byType);
        }
        if (!byType.has(event.type)) byType.set(event.type, { at, event });
        for (const wake of this.#waiters) wake();
      },
    });
  }

  get(jobId: string, type: string): { at: number; event: JobEvent } | undefined {
    return this.#seen.get(jobId)?.get(type);
  }

  /** Resolves with the event's arrival time; rejects on the job's final failure or the deadline. */
  async wait(jobId: string, type: "joined" | "done", timeoutMs: number): Promise<number> {
    const until = performance.now() + timeoutMs;
    for (;;) {
      const hit = this.get(jobId, type);
      if (hit !== undefined) return hit.at;
      const failed = this.get(jobId, "failed")?.event;
      if (failed?.type === "failed" && failed.final) {
        throw new Error(`job ${jobId} failed: ${failed.error.code} ${failed.error.message}`);
      }
      const left = until - performance.now();
      if (left <= 0) throw new Error(`no ${type} event for job ${jobId} within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const wake = (): void => {
          clearTimeout(timer);
          this.#waiters.delete(wake);
          resolve();
        };
        const timer = setTimeout(wake, Math.min(left, 250));
        this.#waiters.add(wake);
      });
    }
  }

  close(): void {
    this.#sub.unsubscribe();
  }
}

/** A user in a room: connected with the trigger's token, optionally talking (quiet noise). */
class User {
  readonly room = new Room();
  #agentAt: number | undefined;
  #agentSeen: ((at: number) => void) | undefined;
  #source: AudioSource | undefined;
  #pump: Promise<void> | undefined;
  #talking = false;

  constructor() {
    this.room.on(RoomEvent.ParticipantConnected, (p: RemoteParticipant) => {
      if (p.kind === ParticipantKind.AGENT) this.#agent();
    });
  }

  #agent(): void {
    const at = (this.#agentAt ??= performance.now());
    this.#agentSeen?.(at);
  }

  async join(url: string, token: string): Promise<void> {
    // The users do not subscribe to the agent's audio: what is measured is the worker, and on a
    // machine it shares with them their decoding would only take CPU from it.
    await this.room.connect(url, token, { autoSubscribe: false, dynacast: false });
    for (const p of this.room.remoteParticipants.values())
      if (p.kind === ParticipantKind.AGENT) this.#agent();
  }

  /** When the agent participant became visible to this user. */
  async agentVisible(timeoutMs: number): Promise<number> {
    if (this.#agentAt !== undefined) return this.#agentAt;
    return new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("the agent never appeared in the room")), timeoutMs);
      this.#agentSeen = (at) => {
        clearTimeout(timer);
        resolve(at);
      };
    });
  }

  /** Publishes a microphone track fed with quiet noise at real time. */
  async talk(): Promise<void> {
    const local = this.room.localParticipant;
    if (local === undefined) throw new Error("not connected");
    const source = new AudioSource(SAMPLE_RATE, 1);
    this.#source = source;
    const track = LocalAudioTrack.createAudioTrack("mic", source);
    await local.publishTrack(track, new TrackPublishOptions({ source: TrackSource.SOURCE_MICROPHONE }));
    const noise = new Int16Array(FRAME_SAMPLES * 50);
    for (let i = 0; i < noise.length; i++) noise[i] = Math.round((Math.random() * 2 - 1) * NOISE_AMPLITUDE);
    this.#talking = true;
    this.#pump = (async () => {
      const start = performance.now();
      let frames = 0;
      while (this.#talking) {
        const at = (frames % 50) * FRAME_SAMPLES;
        await source.captureFrame(
          new AudioFrame(noise.slice(at, at + FRAME_SAMPLES), SAMPLE_RATE, 1, FRAME_SAMPLES),
        );
        frames += 1;
        const ahead = frames * 20 - (performance.now() - start);
        if (ahead > AUDIO_LEAD_MS) await sleep(ahead - AUDIO_LEAD_MS);
      }
    })();
  }

  async leave(): Promise<void> {
    this.#talking = false;
    try {
      await this.#pump;
    } finally {
      await this.#source?.close();
      if (this.room.isConnected) await this.room.disconnect();
    }
  }
}

interface Stack {
  lk: SharedServices;
  nc: NatsConnection;
  subjects: Subjects;
  tenant: string;
  events: JobEvents;
  roomPrefix: string;
  rooms: string[];
  livekitRooms: RoomServiceClient;
}

interface Session {
  jobId: string;
  room: string;
  user: User;
  triggerMs: number;
  claimMs: number;
  joinedMs: number;
  agentVisibleMs: number;
}

/** Trigger a voice job in a new room, join it as the user, wait for the agent's `joined`. */
async function openSession(s: Stack, n: number, talk: boolean): Promise<Session> {
  const requestId = randomUUID();
  const room = `${s.roomPrefix}-${n}`;
  s.rooms.push(room);
  const t0 = performance.now();
  const reply = (
    await requestReply<TriggerReply>(
      s.nc,
      s.subjects.tenantOp(s.tenant, "trigger"),
      { agent_slug: AGENT, mode: "voice", user_id: `bench-user-${n}`, room_name: room, job_id: requestId },
      { tenant: s.tenant, timeoutMs: TRIGGER_TIMEOUT_MS, attemptTimeoutMs: TRIGGER_TIMEOUT_MS },
    )
  ).body;
  const tReply = performance.now();
  if (reply.voice === undefined) throw new Error("the voice trigger's reply has no room details");
  // The tenant actor derives the job's id from the tenant and the id given (job ids are global).
  const jobId = reply.job_id;
  const user = new User();
  try {
    await user.join(reply.voice.server_url, reply.voice.user_token);
    const joinedAt = await s.events.wait(jobId, "joined", JOIN_TIMEOUT_MS);
    const visibleAt = await user.agentVisible(JOIN_TIMEOUT_MS);
    if (talk) await user.talk();
    return {
      jobId,
      room,
      user,
      triggerMs: tReply - t0,
      claimMs: reply.claim_ms,
      joinedMs: joinedAt - t0,
      agentVisibleMs: visibleAt - t0,
    };
  } catch (err) {
    await user.leave();
    throw err;
  }
}

/**
 * The user leaves; resolves once the job is `done` (the agent left too), with how it ended. A job
 * not done within the bound gets its room deleted (which must end any session), then one more
 * bound; a job still not done after that is reported, not waited for.
 */
async function closeSession(
  s: Stack,
  session: Session,
): Promise<"done" | "done_after_room_deleted" | "stuck"> {
  await session.user.leave();
  try {
    await s.events.wait(session.jobId, "done", DONE_TIMEOUT_MS);
    return "done";
  } catch (err) {
    if (!/no done event/.test(String(err))) throw err;
  }
  console.warn(
    `voice bench: job ${session.jobId} not done ${DONE_TIMEOUT_MS} ms after its user left; deleting its room`,
  );
  try {
    await s.livekitRooms.deleteRoom(session.room);
  } catch (err) {
    console.warn(`voice bench: could not delete room ${session.room}: ${String(err)}`);
  }
  try {
    await s.events.wait(session.jobId, "done", DONE_TIMEOUT_MS);
    return "done_after_room_deleted";
  } catch (err) {
    if (!/no done event/.test(String(err))) throw err;
    return "stuck";
  }
}

// ---- setup -----------------------------------------------------------------------------------

interface Env {
  server: NatsTestServer;
  fixture: ProviderFixture;
  procs: TestProcess[];
  platform?: PlatformStore;
  schema: string;
}

async function createTenant(e: Env, lk: SharedServices): Promise<string> {
  const platform = await openTestPlatform(e.server.url);
  e.platform = platform;
  const client = await platform.createClient({ slug: `bench-voice-${e.server.port}`, name: "Bench voice" });
  const database: TenantDatabaseConfig = { kind: "postgres", url: lk.databaseUrl, schema: e.schema };
  await provisionTenantDatabase({ tenantId: client.id, database, vector: "optional" });
  await platform.setTenantDatabase(client.id, database);
  await platform.setLivekitCredentials(client.id, {
    url: lk.livekitUrl,
    apiKey: lk.livekitApiKey,
    apiSecret: lk.livekitApiSecret,
  });
  const store = await openTenantStore({ tenantId: client.id, database, keyring: testKeyring() });
  try {
    await addVoiceAgent(store, e.fixture, {
      slug: AGENT,
      name: "Helper",
      systemPrompt: "You are the bench's voice helper.",
    });
  } finally {
    await store.close();
  }
  return client.id;
}

function roomService(lk: SharedServices): RoomServiceClient {
  return new RoomServiceClient(lk.livekitUrl.replace(/^ws/, "http"), lk.livekitApiKey, lk.livekitApiSecret);
}

async function teardown(e: Env, lk: SharedServices, rooms: readonly string[]): Promise<void> {
  // SIGTERM (SIGKILL after 10 s): a worker run with --cpu-prof writes its profile as it exits.
  for (const p of [...e.procs].reverse()) await p.stop(10_000);
  await e.platform?.close();
  const service = roomService(lk);
  for (const room of rooms) {
    try {
      await service.deleteRoom(room);
    } catch (err) {
      // Already gone (the server's empty timeout); anything else is worth a line.
      if (!/not found/i.test(String(err)))
        console.warn(`voice bench: could not delete room ${room}: ${String(err)}`);
    }
  }
  const db = createPostgresDatabase({ connectionString: lk.databaseUrl, maxConnections: 1 });
  try {
    await db.exec(`drop schema if exists ${quoteIdent(e.schema)} cascade`);
    await db.exec(`drop schema if exists ${quoteIdent(defaultPlatformSchema(e.server.url))} cascade`);
  } finally {
    await db.close();
  }
}

// ---- the bench -------------------------------------------------------------------------------

function latencyStats(values: number[]): { p50_ms: number; p99_ms: number; max_ms: number } {
  const sorted = [...values].sort((a, b) => a - b);
  return {
    p50_ms: round(percentile(sorted, 50)),
    p99_ms: round(percentile(sorted, 99)),
    max_ms: round(sorted.at(-1) ?? Number.NaN),
  };
}

interface VoiceBenchResult extends BenchResult {
  setup: Record<string, unknown>;
  memory: Array<Record<string, number | string>>;
}

export async function run(options: BenchOptions): Promise<VoiceBenchResult> {
  const sizes = options.quick === true ? QUICK : FULL;
  const lk = sharedServices();
  await using server = await NatsTestServer.start();
  await using fixture = await startProviderFixture();
  const e: Env = { server, fixture, procs: [], schema: `bench_voice_${server.port}` };
  const subjects = createSubjects({ partitions: P });
  const rooms: string[] = [];
  let nc: NatsConnection | undefined;
  let events: JobEvents | undefined;
  const open: Session[] = [];
  try {
    const actorHost = await spawnActorHost({
      natsUrl: server.url,
      hostId: "bench",
      partitions: P,
      tenantMaxJobs: 200,
    });
    e.procs.push(actorHost);
    const worker = await spawnTs("voice worker", "agent-worker/main.ts", {
      readyLine: "agent worker ready",
      // SF_BENCH_VOICE_CPU_PROFILE=<dir>: a CPU profile of the worker, for finding where a session's CPU goes.
      ...cpuProfileArgs("SF_BENCH_VOICE_CPU_PROFILE"),
      env: {
        NATS_URL: server.url,
        SF_PARTITIONS: String(P),
        SF_WORKER_ID: "bench-voice",
        SF_WORKER_SLOTS: "64",
        SF_METRICS_PORT: "0",
        SF_PROVIDER_ENDPOINTS: JSON.stringify(fixture.endpoints()),
        // Readings after a full collection on SIGUSR2 (readAfterGc).
        NODE_OPTIONS: [process.env["NODE_OPTIONS"], "--expose-gc"].filter(Boolean).join(" "),
        SF_WORKER_MEMORY_DIAGNOSTICS: "1",
        ...(snapshotDir === undefined ? {} : { SF_WORKER_HEAP_SNAPSHOT_DIR: snapshotDir }),
        ...mallocEnv,
        ...slotsEnv,
      },
    });
    e.procs.push(worker);
    const ready = await worker.waitForLine("agent worker ready");
    const metricsPort = (JSON.parse(ready) as { metricsPort?: unknown }).metricsPort;
    const port = typeof metricsPort === "number" && metricsPort > 0 ? metricsPort : undefined;
    const fresh = await sampleMemory(worker.pid, port, 1000);
    const freshGc = await readAfterGc(worker);

    const tenant = await createTenant(e, lk);
    nc = await connectBus({ servers: server.url, name: "bench-voice" });
    events = new JobEvents(nc, subjects, tenant);
    await nc.flush();
    const s: Stack = {
      lk,
      nc,
      subjects,
      tenant,
      events,
      roomPrefix: `sf-bench-voice-${server.port}-${randomUUID().slice(0, 8)}`,
      rooms,
      livekitRooms: roomService(lk),
    };
    const endings = { done: 0, done_after_room_deleted: 0, stuck: 0 };
    const close = async (session: Session): Promise<void> => {
      endings[await closeSession(s, session)] += 1;
    };
    let n = 0;

    // ---- memory: RSS(0) after a warm-up session, then sessions held open --------------------
    const warmup = await openSession(s, n++, true);
    await sleep(USER_DWELL_MS);
    await close(warmup);
    await sleep(sizes.settleMs);
    const idleCpu = cpuWindow({ worker: worker.pid, users: process.pid, actor_host: actorHost.pid });
    const idle = await sampleMemory(worker.pid, port, sizes.sampleMs);
    const idleCores = idleCpu();
    const idleGc = await readAfterGc(worker);
    const memory: VoiceBenchResult["memory"] = [
      { sessions: "fresh (no session yet)", ...fresh },
      { sessions: 0, ...idle },
    ];
    const table: BenchResult["table"] = [];
    const summary: BenchResult["summary"] = {
      rooms: sizes.rooms,
      rss_fresh_mib: fresh.rss_mib,
      rss_idle_mib: idle.rss_mib,
      rss_first_session_leftover_mib: round(idle.rss_mib - fresh.rss_mib, 1),
      worker_malloc_env:
        Object.entries(mallocEnv)
          .map(([k, v]) => `${k}=${v}`)
          .join(" ") || "glibc defaults",
      ...gcSummary("fresh", freshGc),
      ...gcSummary("idle", idleGc),
      ...Object.fromEntries(
        Object.entries(idleCores).map(([who, v]) => [
          who === "machine_busy_share" ? "machine_busy_share_idle" : `cpu_cores_${who}_idle`,
          v,
        ]),
      ),
    };
    for (const [what, m] of [
      ["worker memory, fresh", fresh],
      ["worker memory, RSS(0): after a warm-up session", idle],
    ] as const) {
      table.push({
        what,
        sessions: 0,
        rss_mib: m.rss_mib,
        heap_used_mib: m.heap_used_mib,
        tree_rss_mib: m.tree_rss_mib,
        processes: m.processes,
      });
    }
    const rampJoins: number[] = [];
    for (const level of sizes.levels) {
      // A session that does not join within its deadline is counted, not fatal: how many of the
      // asked-for sessions a worker carries on this machine is part of the measurement.
      let joinFailures = 0;
      const failureCodes: Record<string, number> = {};
      while (open.length < level && joinFailures < 3) {
        const batch = Math.min(OPEN_PARALLEL, level - open.length);
        const opened = await Promise.allSettled(
          Array.from({ length: batch }, () => openSession(s, n++, true)),
        );
        for (const r of opened) {
          if (r.status !== "fulfilled") continue;
          open.push(r.value);
          rampJoins.push(r.value.joinedMs);
        }
        for (const r of opened) {
          if (r.status === "rejected") {
            joinFailures += 1;
            const code = /SF_ERR_[A-Z_]+/.exec(String((r.reason as { code?: unknown }).code ?? r.reason));
            const key = code?.[0] ?? (/no joined event/.test(String(r.reason)) ? "no_joined_event" : "other");
            failureCodes[key] = (failureCodes[key] ?? 0) + 1;
            console.warn(`a session did not join at level ${level}: ${String(r.reason)}`);
          }
        }
      }
      summary[`sessions_open_at_${level}`] = open.length;
      summary[`join_failures_at_${level}`] = joinFailures;
      for (const [code, count] of Object.entries(failureCodes)) {
        summary[`join_failures_at_${level}_${code}`] = count;
      }
      await sleep(sizes.settleMs);
      const cpu = cpuWindow({ worker: worker.pid, users: process.pid, actor_host: actorHost.pid });
      const m = await sampleMemory(worker.pid, port, sizes.sampleMs);
      const cores = cpu();
      for (const [who, value] of Object.entries(cores)) {
        summary[
          who === "machine_busy_share" ? `machine_busy_share_at_${level}` : `cpu_cores_${who}_at_${level}`
        ] = value;
      }
      summary[`worker_cpu_cores_per_session_at_${level}`] = round(
        (cores["worker"] ?? 0) / Math.max(1, open.length),
        3,
      );
      Object.assign(summary, gcSummary(`at_${level}`, await readAfterGc(worker)));
      for (const [what, v] of Object.entries(await admission(port))) {
        summary[`worker_${what}_at_${level}`] = v;
      }
      const perSession = round((m.rss_mib - idle.rss_mib) / Math.max(1, open.length), 1);
      const perSessionTree = round((m.tree_rss_mib - idle.tree_rss_mib) / Math.max(1, open.length), 1);
      memory.push({
        sessions: level,
        ...m,
        per_session_mib: perSession,
        per_session_tree_mib: perSessionTree,
      });
      table.push({
        what: "worker memory, sessions open",
        sessions: level,
        rss_mib: m.rss_mib,
        heap_used_mib: m.heap_used_mib,
        per_session_mib: perSession,
        tree_rss_mib: m.tree_rss_mib,
        processes: m.processes,
      });
      summary[`rss_${level}_sessions_mib`] = m.rss_mib;
      summary[`rss_per_session_mib_at_${level}`] = perSession;
      // With the worker's one-time cost of its first session (libraries, native runtime) shared out.
      summary[`rss_per_session_from_fresh_mib_at_${level}`] = round(
        (m.rss_mib - fresh.rss_mib) / Math.max(1, open.length),
        1,
      );
      summary[`heap_used_per_session_mib_at_${level}`] = round(
        (m.heap_used_mib - idle.heap_used_mib) / Math.max(1, open.length),
        1,
      );
      if (m.processes > 1) summary[`tree_rss_per_session_mib_at_${level}`] = perSessionTree;
    }
    const closing = open.splice(0);
    await Promise.all(closing.map(close));
    // Sessions of an overloaded worker take a while to end: the latency rooms wait for free slots.
    summary["idle_after_close_ms"] = Math.round(await waitForIdleWorker(port, 180_000));
    await sleep(sizes.settleMs);
    const after = await sampleMemory(worker.pid, port, sizes.sampleMs);
    memory.push({ sessions: "0 (after closing all)", ...after });
    summary["rss_after_close_mib"] = after.rss_mib;
    summary["heap_used_after_close_mib"] = after.heap_used_mib;
    // The idle worker left alone a while longer: what V8 (its memory reducer) and glibc give back
    // by themselves, before the forced collection below.
    await sleep(sizes.laterMs);
    const later = await sampleMemory(worker.pid, port, sizes.sampleMs);
    memory.push({ sessions: `0 (${sizes.laterMs / 1000} s later)`, ...later });
    summary["after_close_later_s"] = sizes.laterMs / 1000;
    summary["rss_after_close_later_mib"] = later.rss_mib;
    summary["heap_used_after_close_later_mib"] = later.heap_used_mib;
    const afterGc = await readAfterGc(worker);
    summary["heap_after_close_mib"] = afterGc.heap_used_mib;
    Object.assign(summary, gcSummary("after_close", afterGc));
    if (mallocTrim) {
      const trim = await trimWorkerMalloc(worker);
      if (trim === undefined) summary["after_trim"] = "skipped: a thread was always inside malloc";
      else {
        const trimmedGc = await readAfterGc(worker);
        Object.assign(summary, {
          after_close_malloc_system_mib: trim.before.system_mib,
          after_close_malloc_in_use_mib: trim.before.in_use_mib,
          after_trim_malloc_system_mib: trim.after.system_mib,
          after_trim_malloc_in_use_mib: trim.after.in_use_mib,
          // malloc_trim's answer: 1 when it gave memory back to the system.
          malloc_trim_returned: trim.trimmed,
          ...gcSummary("after_trim", trimmedGc),
        });
      }
    }
    summary["agents_js_job_process_mb_reported"] = AGENTS_JS_JOB_PROCESS_MB;
    const top = sizes.levels.at(-1) as number;
    summary[`rss_per_session_at_${top}_over_agents_js_job`] = round(
      (summary[`rss_per_session_mib_at_${top}`] as number) / AGENTS_JS_JOB_PROCESS_MB,
      3,
    );

    // ---- latency: one room at a time ---------------------------------------------------------
    const samples: Session[] = [];
    const doneMs: number[] = [];
    for (let i = 0; i < sizes.rooms; i++) {
      const session = await openSession(s, n++, true);
      samples.push(session);
      // The user stays a moment, as anyone who asked for an agent does.
      await sleep(USER_DWELL_MS);
      const left = performance.now();
      const ending = await closeSession(s, session);
      endings[ending] += 1;
      if (ending === "done") doneMs.push(performance.now() - left);
    }
    const trigger = latencyStats(samples.map((x) => x.triggerMs));
    const claim = latencyStats(samples.map((x) => x.claimMs));
    const joined = latencyStats(samples.map((x) => x.joinedMs));
    const visible = latencyStats(samples.map((x) => x.agentVisibleMs));
    const leave = latencyStats(doneMs);
    table.push({ what: "trigger → reply (room, token, claim)", sessions: 1, ...trigger });
    table.push({ what: "claim_ms (actor: publish → claimed)", sessions: 1, ...claim });
    table.push({ what: "trigger → joined event", sessions: 1, ...joined });
    table.push({ what: "trigger → agent visible to the user", sessions: 1, ...visible });
    table.push({ what: "user left → job done", sessions: 1, ...leave });
    Object.assign(summary, {
      trigger_reply_p50_ms: trigger.p50_ms,
      trigger_reply_p99_ms: trigger.p99_ms,
      claim_p50_ms: claim.p50_ms,
      claim_p99_ms: claim.p99_ms,
      joined_p50_ms: joined.p50_ms,
      joined_p99_ms: joined.p99_ms,
      agent_visible_p50_ms: visible.p50_ms,
      agent_visible_p99_ms: visible.p99_ms,
      user_left_to_done_p50_ms: leave.p50_ms,
      user_left_to_done_p99_ms: leave.p99_ms,
      ramp_joined_p50_ms: latencyStats(rampJoins).p50_ms,
      jobs_done_after_user_left: endings.done,
      jobs_done_only_after_room_deleted: endings.done_after_room_deleted,
      jobs_stuck: endings.stuck,
    });
    return {
      summary,
      table,
      memory,
      setup: {
        processes: `own nats-server; actor host (actors/main.ts, tenant on the shared PostgreSQL, the shared livekit-server's credentials); one agent worker (agent-worker/main.ts, SF_WORKER_SLOTS=64, ${
          Object.keys(slotsEnv).length === 0
            ? "voice slots and load limits at their defaults: SF_WORKER_VOICE_SLOTS = 5 per core, event loop p99 200 ms, CPU 90%"
            : `SF_BENCH_VOICE_SLOTS: ${slotsEnv["SF_WORKER_VOICE_SLOTS"] ?? "?"} voice slots, CPU and event-loop admission lifted`
        }) on the provider fixture; users in the bench process (@livekit/rtc-node)`,
        livekit: lk.livekitUrl,
        agent: "speech agent: groq LLM, deepgram STT, elevenlabs TTS (provider fixture)",
        trigger:
          "tenant actor op `trigger` over NATS {agent_slug, mode: voice, user_id, room_name: new room, job_id}",
        claim:
          "claim_ms of the trigger reply (the actor's publish → claimed); trigger_reply is the caller's round trip (room created, user token minted, job claimed)",
        joined:
          "arrival of <prefix>.job.<tenant>.<job>.joined at the bench (subscribed before the trigger), from the trigger's start",
        agent_visible: "the agent participant (kind AGENT) in the user's room, from the trigger's start",
        latency_rooms: `${sizes.rooms} rooms one at a time; the user joins with the reply's token, publishes its microphone (quiet noise) once the agent is there, leaves ${USER_DWELL_MS} ms later; next room after the job's done event (room deleted if not done ${DONE_TIMEOUT_MS} ms after the user left)`,
        memory: `VmRSS of the worker (and of processes it started) from /proc, median of samples every 250 ms over ${sizes.sampleMs} ms after ${sizes.settleMs} ms settling; RSS(0) after one warm-up session ended; sessions ${sizes.levels.join(", ")} held open, each with a user publishing a microphone track of quiet noise (below the VAD threshold) at real time; per session = (RSS(n) − RSS(0)) / n; after closing all: rss_after_close_mib, then again ${sizes.laterMs / 1000} s later (rss_after_close_later_mib)`,
        cpu: "over each memory sample window (idle and each level), from /proc/<pid>/stat: cpu_cores_<who>_at_<n> is the cores each process used (1 = one core busy the whole window): the worker, users (this bench process, whose LiveKit rooms publish the microphones), actor_host, and every other process by its command name (livekit-server, nats-server, postgres); cpu_cores_<who>_js_thread_at_<n> the share of it on the process's main (JS) thread, the rest being native threads (WebRTC, the FFI, libuv, V8's GC helpers); machine_busy_share_at_<n> is the share of all cores busy; worker_cpu_cores_per_session_at_<n> the worker's cores over the sessions open",
        memory_after_gc: `after each RSS sample the worker (--expose-gc, SF_WORKER_MEMORY_DIAGNOSTICS=1) runs a full collection on SIGUSR2 and reports process.memoryUsage() and /proc/self/status: <point>_gc_rss_mib, _gc_heap_used_mib, _gc_external_mib, _gc_array_buffers_mib, _gc_rss_anon_mib, _gc_native_mib (RssAnon − V8 heap total − external: the FFI's native side, thread stacks, malloc arenas), _threads, _live_<class> (instances left, v8.queryObjects; counted only while the worker runs no voice session, since the heap walks would stall the sessions for seconds); heap_after_close_mib is the heap after that collection${mallocTrim ? "; after_trim_*: the same after gdb made the worker call malloc_trim(0), after_close_malloc_*: glibc's malloc_stats() totals before and after" : ""}`,
        worker_malloc: `${
          Object.entries(mallocEnv)
            .map(([k, v]) => `${k}=${v}`)
            .join(" ") || "glibc defaults"
        } (SF_BENCH_VOICE_MALLOC; unset: WORKER_MALLOC_ENV, what deployments set)`,
        reference: `a job process of the stock agents-js worker is reported at about ${AGENTS_JS_JOB_PROCESS_MB} MB`,
      },
    };
  } catch (err) {
    // What the processes said last is what explains a failed run.
    const tails = e.procs.map((p) => `--- ${p.name} ---\n${p.tail(40)}`).join("\n");
    throw new Error(`${err instanceof Error ? err.message : String(err)}\n${tails}`, { cause: err });
  } finally {
    for (const x of open.splice(0)) await x.user.leave().catch((err: unknown) => console.warn(String(err)));
    events?.close();
    await nc?.close();
    await teardown(e, lk, rooms);
  }
}

export default run;
