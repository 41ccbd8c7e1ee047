/**
 * Child processes for integration tests: spawn, wait for a readiness line on stdout (an
 * event, not a sleep), signal (SIGTERM, SIGKILL, SIGSTOP, SIGCONT) and always clean up.
 */
import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";
import { generateMasterKey, parseKeyringOptions } from "../../actors/index.ts";
import type { Keyring } from "../../actors/index.ts";
import { repoRoot, sharedServices } from "./services.ts";

/** One master key per test process: every host a test starts can read what another wrote. */
export const TEST_MASTER_KEY = generateMasterKey();

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
}

export class TestProcess implements AsyncDisposable {
  readonly name: string;
  readonly child: ChildProcess;
  readonly lines: string[] = [];
  readonly exited: Promise<number | null>;
  #waiters: Array<{ match: (line: string) => boolean; resolve: (line: string) => void }> = [];
  #exitCode: number | null | undefined;

  constructor(name: string, child: ChildProcess) {
    this.name = name;
    this.child = child;
    for (const stream of [child.stdout, child.stderr]) {
      if (stream === null) continue;
      createInterface({ input: stream }).on("line", (line) => this.#onLine(line));
    }
    this.exited = new Promise((resolve) => {
      child.once("exit", (code, signal) => {
        this.#exitCode = code ?? (signal === null ? null : -1);
        resolve(this.#exitCode);
      });
    });
  }

  get pid(): number {
    if (this.child.pid === undefined) throw new Error(`${this.name} has no pid`);
    return this.child.pid;
  }

  get running(): boolean {
    return this.#exitCode === undefined;
  }

  #onLine(line: string): void {
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
  const child = spawn(process.execPath, ["--import", "tsx", script], {
    cwd: repoRoot(),
    env: { ...process.env, ...options.env },
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
      SF_PLATFORM_DATABASE_URL: sharedServices().databaseUrl,
      SF_PLATFORM_SCHEMA: options.platformSchema ?? defaultPlatformSchema(options.natsUrl, options.prefix),
      SF_MASTER_KEYS: `test:${TEST_MASTER_KEY}`,
      SF_LOG_LEVEL: "info",
    },
  });
}
