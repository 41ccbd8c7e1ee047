/**
 * A small process supervisor for `npm run dev`: runs each process as a child, prefixes its output
 * lines with its name, restarts a process that exits on its own (backoff from `initialBackoffMs`
 * doubling to `maxBackoffMs`, back to the start after a run of `resetAfterMs`), and on `stop()`
 * sends SIGTERM to every child, waits `stopGraceMs`, then SIGKILLs what is left.
 *
 * Children run in their own process groups, so a Ctrl-C in the terminal reaches only the
 * supervisor, which then stops them in order (the actor host hands its partitions over). If the
 * supervisor itself exits, it SIGKILLs whatever still runs.
 *
 * It reports what happens as typed events (`onEvent`); the caller decides what to print.
 */
import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";

export interface SupervisedProcess {
  /** Shown in front of every output line: `[name] …`. */
  readonly name: string;
  readonly command: string;
  readonly args: readonly string[];
  readonly cwd?: string;
  /** The child's whole environment; default the supervisor's. */
  readonly env?: NodeJS.ProcessEnv;
  /** `always` (default): restarted whenever it exits while the supervisor runs; `never`: a one-shot task. */
  readonly restart?: "always" | "never";
  /** Write stdout lines without the `[name]` prefix (for output meant to be copied). Default false. */
  readonly rawStdout?: boolean;
}

export interface SupervisorOptions {
  readonly processes: readonly SupervisedProcess[];
  /** Delay before the first restart after a crash. Default 1000 ms. */
  readonly initialBackoffMs?: number;
  /** The delay doubles per consecutive crash up to this. Default 30000 ms. */
  readonly maxBackoffMs?: number;
  /** A run at least this long was healthy: the next restart waits `initialBackoffMs` again. Default 60000 ms. */
  readonly resetAfterMs?: number;
  /** How long `stop()` waits after SIGTERM before SIGKILL. Default 15000 ms. */
  readonly stopGraceMs?: number;
  /** Where output lines go (one call per line, without the newline). Default: process.stdout. */
  readonly output?: (line: string) => void;
  readonly onEvent?: (event: SupervisorEvent) => void;
}

export type SupervisorEvent =
  | { type: "started"; name: string; pid: number; run: number }
  | {
      type: "exited";
      name: string;
      pid: number;
      code: number | null;
      signal: NodeJS.Signals | null;
      uptimeMs: number;
      /** True when the supervisor was stopping it (or it is a one-shot task). */
      expected: boolean;
    }
  | { type: "restarting"; name: string; delayMs: number }
  | { type: "spawn-failed"; name: string; message: string }
  | { type: "killed"; name: string; pid: number; afterMs: number };

interface ResolvedOptions {
  readonly processes: readonly SupervisedProcess[];
  readonly initialBackoffMs: number;
  readonly maxBackoffMs: number;
  readonly resetAfterMs: number;
  readonly stopGraceMs: number;
  readonly output: (line: string) => void;
  readonly onEvent: (event: SupervisorEvent) => void;
}

function nonNegative(name: string, value: number | undefined, fallback: number): number {
  const v = value ?? fallback;
  if (!Number.isFinite(v) || v < 0) throw new RangeError(`${name} must be a non-negative number of ms`);
  return v;
}

export function parseSupervisorOptions(options: SupervisorOptions): ResolvedOptions {
  const names = new Set<string>();
  for (const p of options.processes) {
    if (names.has(p.name)) throw new RangeError(`two supervised processes are named ${p.name}`);
    names.add(p.name);
  }
  const initialBackoffMs = nonNegative("initialBackoffMs", options.initialBackoffMs, 1000);
  return Object.freeze({
    processes: [...options.processes],
    initialBackoffMs,
    maxBackoffMs: Math.max(initialBackoffMs, nonNegative("maxBackoffMs", options.maxBackoffMs, 30_000)),
    resetAfterMs: nonNegative("resetAfterMs", options.resetAfterMs, 60_000),
    stopGraceMs: nonNegative("stopGraceMs", options.stopGraceMs, 15_000),
    output: options.output ?? ((line: string) => process.stdout.write(`${line}\n`)),
    onEvent: options.onEvent ?? (() => undefined),
  });
}

type Phase =
  | { type: "idle" }
  | { type: "running"; child: ChildProcess; pid: number; startedAt: number; exited: Promise<void> }
  | { type: "waiting"; timer: NodeJS.Timeout }
  | { type: "done" };

interface Slot {
  readonly spec: SupervisedProcess;
  phase: Phase;
  runs: number;
  nextDelayMs: number;
  /** Resolves when the slot's process has exited for good (stopped, or a one-shot that ended). */
  readonly finished: Promise<void>;
  finish: () => void;
}

export class Supervisor {
  readonly #options: ResolvedOptions;
  readonly #slots: Slot[];
  #stopping = false;
  #started = false;
  readonly #onProcessExit = (): void => this.killAll();

  constructor(options: SupervisorOptions) {
    this.#options = parseSupervisorOptions(options);
    this.#slots = this.#options.processes.map((spec) => {
      let finish: () => void = () => undefined;
      const finished = new Promise<void>((resolve) => (finish = resolve));
      return {
        spec,
        phase: { type: "idle" },
        runs: 0,
        nextDelayMs: this.#options.initialBackoffMs,
        finished,
        finish,
      };
    });
  }

  /** Starts every process. */
  start(): void {
    if (this.#started) throw new Error("the supervisor was started already");
    this.#started = true;
    process.once("exit", this.#onProcessExit);
    for (const slot of this.#slots) this.#spawn(slot);
  }

  get stopping(): boolean {
    return this.#stopping;
  }

  /** The pid of a running process, or undefined while it is not running. */
  pid(name: string): number | undefined {
    const phase = this.#slot(name).phase;
    return phase.type === "running" ? phase.pid : undefined;
  }

  /** How many times the process was started. */
  runs(name: string): number {
    return this.#slot(name).runs;
  }

  /** Resolves when the process has ended for good: a one-shot task exited, or the supervisor stopped it. */
  finished(name: string): Promise<void> {
    return this.#slot(name).finished;
  }

  /** SIGTERM to every child, SIGKILL to those still running after `stopGraceMs`; resolves when all exited. */
  async stop(): Promise<void> {
    this.#stopping = true;
    await Promise.all(this.#slots.map((slot) => this.#stopSlot(slot)));
    process.removeListener("exit", this.#onProcessExit);
  }

  /** SIGKILL to every running child at once (a second Ctrl-C, or the supervisor exiting). */
  killAll(): void {
    this.#stopping = true;
    for (const slot of this.#slots) {
      if (slot.phase.type === "waiting") {
        clearTimeout(slot.phase.timer);
        slot.phase = { type: "done" };
        slot.finish();
      } else if (slot.phase.type === "running") {
        signalGroup(slot.phase.child, "SIGKILL");
      }
    }
  }

  #slot(name: string): Slot {
    const slot = this.#slots.find((s) => s.spec.name === name);
    if (slot === undefined) throw new RangeError(`no supervised process is named ${name}`);
    return slot;
  }

  #spawn(slot: Slot): void {
    const { spec } = slot;
    let child: ChildProcess;
    try {
      child = spawn(spec.command, [...spec.args], {
        cwd: spec.cwd,
        env: spec.env ?? process.env,
        stdio: ["ignore", "pipe", "pipe"],
        detached: true,
      });
    } catch (err) {
      this.#spawnFailed(slot, err);
      return;
    }
    const pid = child.pid;
    if (pid === undefined) {
      // spawn reports ENOENT and the like as an "error" event with no pid.
      child.once("error", (err) => this.#spawnFailed(slot, err));
      return;
    }
    child.on("error", (err) =>
      this.#options.onEvent({ type: "spawn-failed", name: spec.name, message: err.message }),
    );
    slot.runs += 1;
    const startedAt = performance.now();
    const streamsClosed = [child.stdout, child.stderr].map((stream, i) => {
      if (stream === null) return Promise.resolve();
      const raw = i === 0 && spec.rawStdout === true;
      const lines = createInterface({ input: stream, crlfDelay: Infinity });
      lines.on("line", (line) => this.#options.output(raw ? line : `[${spec.name}] ${line}`));
      return new Promise<void>((resolve) => lines.once("close", resolve));
    });
    const exited = new Promise<void>((resolve) => {
      child.once("exit", (code, signal) => {
        // Let its last lines out first (briefly: a grandchild could hold the pipes open).
        const settle = Promise.race([Promise.all(streamsClosed), delay(1000)]);
        void settle.then(() => {
          this.#onExit(slot, pid, code, signal, performance.now() - startedAt);
          resolve();
        });
      });
    });
    slot.phase = { type: "running", child, pid, startedAt, exited };
    this.#options.onEvent({ type: "started", name: spec.name, pid, run: slot.runs });
  }

  #spawnFailed(slot: Slot, err: unknown): void {
    this.#options.onEvent({
      type: "spawn-failed",
      name: slot.spec.name,
      message: err instanceof Error ? err.message : String(err),
    });
    this.#scheduleRestart(slot);
  }

  #onExit(
    slot: Slot,
    pid: number,
    code: number | null,
    signal: NodeJS.Signals | null,
    uptimeMs: number,
  ): void {
    const oneShot = slot.spec.restart === "never";
    this.#options.onEvent({
      type: "exited",
      name: slot.spec.name,
      pid,
      code,
      signal,
      uptimeMs: Math.round(uptimeMs),
      expected: this.#stopping || oneShot,
    });
    if (this.#stopping || oneShot) {
      slot.phase = { type: "done" };
      slot.finish();
      return;
    }
    if (uptimeMs >= this.#options.resetAfterMs) slot.nextDelayMs = this.#options.initialBackoffMs;
    this.#scheduleRestart(slot);
  }

  #scheduleRestart(slot: Slot): void {
    if (this.#stopping || slot.spec.restart === "never") {
      slot.phase = { type: "done" };
      slot.finish();
      return;
    }
    const delayMs = slot.nextDelayMs;
    slot.nextDelayMs = Math.min(this.#options.maxBackoffMs, Math.max(1, delayMs * 2));
    this.#options.onEvent({ type: "restarting", name: slot.spec.name, delayMs });
    const timer = setTimeout(() => {
      if (this.#stopping) return;
      this.#spawn(slot);
    }, delayMs);
    slot.phase = { type: "waiting", timer };
  }

  async #stopSlot(slot: Slot): Promise<void> {
    const phase = slot.phase;
    if (phase.type === "idle") {
      slot.phase = { type: "done" };
      slot.finish();
      return;
    }
    if (phase.type === "waiting") {
      clearTimeout(phase.timer);
      slot.phase = { type: "done" };
      slot.finish();
      return;
    }
    if (phase.type === "done") return;
    signalGroup(phase.child, "SIGTERM");
    let timer: NodeJS.Timeout | undefined;
    const killed = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        this.#options.onEvent({
          type: "killed",
          name: slot.spec.name,
          pid: phase.pid,
          afterMs: this.#options.stopGraceMs,
        });
        signalGroup(phase.child, "SIGKILL");
        resolve();
      }, this.#options.stopGraceMs);
    });
    await Promise.race([phase.exited, killed]);
    clearTimeout(timer);
    await phase.exited;
  }
}

/** Signals the child's process group (it leads one: spawned detached), or the child alone if that fails. */
function signalGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, signal);
  } catch (err) {
    // ESRCH: the group is gone (the child exited between the check and the kill).
    if ((err as NodeJS.ErrnoException).code !== "ESRCH") throw err;
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
