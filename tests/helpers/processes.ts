/**
 * Child processes for integration tests: spawn, wait for a readiness line on stdout (an
 * event, not a sleep), signal (SIGTERM, SIGKILL, SIGSTOP, SIGCONT) and always clean up.
 *
 * Inside a vitest run every process's whole stdout and stderr also go to
 * `<run dir>/logs/<test file>/<process>-<pid>.log` (see `processLogFile`), and the secrets in its
 * environment are registered (secret_registry.ts): the global teardown scans those logs for them.
 */
import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { closeSync, mkdirSync, openSync, writeSync } from "node:fs";
import path from "node:path";
import { createInterface } from "node:readline";
import { generateMasterKey, parseKeyringOptions } from "../../actors/index.ts";
import type { Keyring } from "../../actors/index.ts";
import { registerEnvironmentSecrets, registerSecret, testRunDir } from "./secret_registry.ts";
import { repoRoot, sharedServices } from "./services.ts";

/** One master key per test process: every host a test starts can read what another wrote. */
export const TEST_MASTER_KEY = generateMasterKey();
registerSecret("master_key", TEST_MASTER_KEY);

/** The test file this process runs (vitest's worker state), relative to the repository. */
function currentTestFile(): string {
  const worker = (globalThis as { __vitest_worker__?: { filepath?: unknown } }).__vitest_worker__;
  const file = typeof worker?.filepath === "string" ? worker.filepath : "unknown-test-file";
  const relative = path.relative(repoRoot(), file);
  return relative.startsWith("..") || path.isAbsolute(relative) ? path.basename(file) : relative;
}

/**
 * Where a process's output is kept during a vitest run: `<run dir>/logs/<test file>/<name>-<pid>.log`;
 * undefined outside a run (SF_TEST_RUN_DIR unset).
 */
export function processLogFile(name: string, pid: number | undefined): string | undefined {
  const dir = testRunDir();
  if (dir === undefined) return undefined;
  const safe = name.replace(/[^A-Za-z0-9_.-]+/g, "_");
  return path.join(dir, "logs", currentTestFile(), `${safe}-${pid ?? "nopid"}.log`);
}

/** The keyring the hosts of this test process use. */
export function testKeyring(): Keyring {
  return parseKeyringOptions({ keys: { test: TEST_MASTER_KEY }, activeKeyId: "test" });
}

/** The platform schema spawnActorHost gives the hosts of one nats-server and prefix. */
export function defaultPlatformSchema(natsUrl: string, prefix = "sf"): string {
  return `sfp_${new URL(natsUrl).port}_${prefix}`;
}

export interface SpawnOptions {
  env?: Record<string, string>;
  /** A substring of a stdout/stderr line that means the process is ready. */
  readyLine?: string;
  readyTimeoutMs?: number;
  /** Node options that NODE_OPTIONS may not carry (--cpu-prof, say), before the script. */
  nodeArgs?: string[];
}

export class TestProcess implements AsyncDisposable {
  readonly name: string;
  readonly child: ChildProcess;
  readonly lines: string[] = [];
  readonly exited: Promise<number | null>;
  #waiters: Array<{ match: (line: string) => boolean; resolve: (line: string) => void }> = [];
  #exitCode: number | null | undefined;

  /** The file every line is also written to (`processLogFile`), when there is one. */
  readonly logFile: string | undefined;
  #logFd: number | undefined;
  #openStreams = 0;

  constructor(name: string, child: ChildProcess) {
    this.name = name;
    this.child = child;
    this.logFile = processLogFile(name, child.pid);
    if (this.logFile !== undefined) {
      mkdirSync(path.dirname(this.logFile), { recursive: true });
      this.#logFd = openSync(this.logFile, "a");
    }
    for (const stream of [child.stdout, child.stderr]) {
      if (stream === null) continue;
      this.#openStreams += 1;
      const lines = createInterface({ input: stream });
      lines.on("line", (line) => this.#onLine(line));
      lines.once("close", () => this.#onStreamClosed());
    }
    if (this.#openStreams === 0) this.#onStreamClosed();
    this.exited = new Promise((resolve) => {
      child.once("exit", (code, signal) => {
        this.#exitCode = code ?? (signal === null ? null : -1);
        resolve(this.#exitCode);
      });
    });
  }

  /** Closes the log file once both output streams have ended (every line is written). */
  #onStreamClosed(): void {
    this.#openStreams = Math.max(0, this.#openStreams - 1);
    if (this.#openStreams > 0 || this.#logFd === undefined) return;
    closeSync(this.#logFd);
    this.#logFd = undefined;
  }

  get pid(): number {
    if (this.child.pid === undefined) throw new Error(`${this.name} has no pid`);
    return this.child.pid;
  }

  get running(): boolean {
    return this.#exitCode === undefined;
  }

  #onLine(line: string): void {
    // Synchronous: the test process may exit right after its last test.
    if (this.#logFd !== undefined) writeSync(this.#logFd, `${line}\n`);
    this.lines.push(line);
    if (this.lines.length > 5000) this.lines.splice(0, 1000);
    this.#waiters = this.#waiters.filter((w) => {
      if (!w.match(line)) return true;
      w.resolve(line);
      return false;
    });
  }

  /** Resolves with the first line (already seen or future) containing `text`. */
  waitForLine(text: string, timeoutMs = 20_000): Promise<string> {
    const seen = this.lines.find((l) => l.includes(text));
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(
          new Error(
            `${this.name}: no line containing ${JSON.stringify(text)} within ${timeoutMs} ms\n${this.tail()}`,
          ),
        );
      }, timeoutMs);
      const waiter = {
        match: (line: string) => line.includes(text),
        resolve: (line: string) => {
          clearTimeout(timer);
          resolve(line);
        },
      };
      this.#waiters.push(waiter);
      void this.exited.then(() => {
        if (!this.#waiters.includes(waiter)) return;
        clearTimeout(timer);
        reject(new Error(`${this.name} exited before printing ${JSON.stringify(text)}\n${this.tail()}`));
      });
    });
  }

  tail(n = 30): string {
    return this.lines.slice(-n).join("\n");
  }

  signal(signal: NodeJS.Signals): void {
    if (this.running) this.child.kill(signal);
  }

  /** SIGTERM, then waits for the exit (SIGKILL after `graceMs`). */
  async stop(graceMs = 15_000): Promise<number | null> {
    if (!this.running) return this.#exitCode ?? null;
    this.child.kill("SIGCONT");
    this.child.kill("SIGTERM");
    const timer = setTimeout(() => this.child.kill("SIGKILL"), graceMs);
    const code = await this.exited;
    clearTimeout(timer);
    return code;
  }

  async kill(): Promise<void> {
    if (!this.running) return;
    this.child.kill("SIGKILL");
    await this.exited;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.kill();
  }
}

export async function spawnTs(
  name: string,
  script: string,
  options: SpawnOptions = {},
): Promise<TestProcess> {
  const env = { ...process.env, ...options.env };
  registerEnvironmentSecrets(env);
  const child = spawn(process.execPath, [...(options.nodeArgs ?? []), "--import", "tsx", script], {
    cwd: repoRoot(),
    env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  const proc = new TestProcess(name, child);
  if (options.readyLine !== undefined) {
    try {
      await proc.waitForLine(options.readyLine, options.readyTimeoutMs ?? 30_000);
    } catch (err) {
      await proc.kill();
      throw err;
    }
  }
  return proc;
}

export interface ActorHostEnv {
  natsUrl: string;
  hostId: string;
  prefix?: string;
  partitions?: number;
  leaseTtlMs?: number;
  mailboxCapacity?: number;
  balanceIntervalMs?: number;
  idlePassivateMs?: number;
  /** How long a dispatched job may wait for a worker's claim (SF_CLAIM_TIMEOUT_MS). */
  claimTimeoutMs?: number;
  /** A tenant's concurrent job quota (SF_TENANT_MAX_JOBS). */
  tenantMaxJobs?: number;
  /**
   * Platform database schema on the shared PostgreSQL. Default: one per nats-server and prefix,
   * so the hosts of one test share it and tests never see each other's tenants.
   */
  platformSchema?: string;
  /** The platform database's server. Default: the shared PostgreSQL (sharedServices()). */
  databaseUrl?: string;
  /** More environment (SF_STREAM_REPLICAS, …), applied last. */
  extraEnv?: Record<string, string>;
}

export function spawnActorHost(options: ActorHostEnv): Promise<TestProcess> {
  return spawnTs(`actor-host ${options.hostId}`, "actors/main.ts", {
    readyLine: "actor host ready",
    env: {
      NATS_URL: options.natsUrl,
      SF_HOST_ID: options.hostId,
      SF_SUBJECT_PREFIX: options.prefix ?? "sf",
      SF_PARTITIONS: String(options.partitions ?? 64),
      SF_LEASE_TTL_MS: String(options.leaseTtlMs ?? 3000),
      SF_MAILBOX_CAPACITY: String(options.mailboxCapacity ?? 1024),
      SF_BALANCE_INTERVAL_MS: String(options.balanceIntervalMs ?? 250),
      SF_METRICS_PORT: "0",
      SF_IDLE_PASSIVATE_MS: String(options.idlePassivateMs ?? 300_000),
      SF_CLAIM_TIMEOUT_MS: String(options.claimTimeoutMs ?? 10_000),
      SF_TENANT_MAX_JOBS: String(options.tenantMaxJobs ?? 100),
      SF_PLATFORM_DATABASE_URL: options.databaseUrl ?? sharedServices().databaseUrl,
      SF_PLATFORM_SCHEMA: options.platformSchema ?? defaultPlatformSchema(options.natsUrl, options.prefix),
      SF_MASTER_KEYS: `test:${TEST_MASTER_KEY}`,
      SF_LOG_LEVEL: "info",
      ...options.extraEnv,
    },
  });
}
