/**
 * A private PostgreSQL server for one test (or bench): a fresh cluster (`initdb`) in a temporary
 * directory, on a random loopback port, TCP only, from the same Debian binaries deploy/services.sh
 * runs (/usr/lib/postgresql/<POSTGRES_MAJOR>/bin). It can be restarted on the same port and data
 * (to test what a database restart does to the platform) without touching the shared server other
 * suites use. Run as root, the server runs as the `postgres` user, as services.sh does.
 */
import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { chownSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { execFileSync } from "node:child_process";
import { tmpdir } from "node:os";
import path from "node:path";
import { freePort } from "./ports.ts";
import { TestProcess } from "./processes.ts";
import { repoRoot } from "./services.ts";

function postgresBin(): string {
  const versions = readFileSync(path.join(repoRoot(), "deploy", "versions.env"), "utf8");
  const major = /^POSTGRES_MAJOR=(\d+)\s*$/m.exec(versions)?.[1];
  if (major === undefined) throw new Error("deploy/versions.env does not set POSTGRES_MAJOR");
  return `/usr/lib/postgresql/${major}/bin`;
}

/** The `postgres` user's ids when this process runs as root (PostgreSQL refuses to run as root). */
function runAs(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const uid = Number(execFileSync("id", ["-u", "postgres"], { encoding: "utf8" }).trim());
  const gid = Number(execFileSync("id", ["-g", "postgres"], { encoding: "utf8" }).trim());
  if (!Number.isInteger(uid) || !Number.isInteger(gid)) throw new Error("there is no postgres user");
  return { uid, gid };
}

export class PostgresTestServer implements AsyncDisposable {
  readonly dir: string;
  readonly port: number;
  readonly #bin: string;
  readonly #user: { uid: number; gid: number } | undefined;
  #proc: TestProcess | undefined;

  private constructor(
    dir: string,
    port: number,
    bin: string,
    user: { uid: number; gid: number } | undefined,
  ) {
    this.dir = dir;
    this.port = port;
    this.#bin = bin;
    this.#user = user;
  }

  static async start(): Promise<PostgresTestServer> {
    const bin = postgresBin();
    const user = runAs();
    const dir = mkdtempSync(path.join(tmpdir(), "sf-pg-"));
    if (user !== undefined) chownSync(dir, user.uid, user.gid);
    const server = new PostgresTestServer(dir, await freePort(), bin, user);
    try {
      execFileSync(
        path.join(bin, "initdb"),
        ["-D", server.dataDir, "-U", "postgres", "--auth=trust", "--encoding=UTF8", "--locale=C"],
        { cwd: "/", stdio: "ignore", ...(user === undefined ? {} : { uid: user.uid, gid: user.gid }) },
      );
      await server.#launch();
    } catch (err) {
      await server[Symbol.asyncDispose]();
      throw err;
    }
    return server;
  }

  get dataDir(): string {
    return path.join(this.dir, "data");
  }

  /** The superuser's URL (trust authentication on loopback; no password to leak). */
  get url(): string {
    return `postgres://postgres@127.0.0.1:${this.port}/postgres`;
  }

  get running(): boolean {
    return this.#proc?.running === true;
  }

  async #launch(): Promise<void> {
    const args = [
      "-D",
      this.dataDir,
      "-c",
      "listen_addresses=127.0.0.1",
      "-c",
      `port=${this.port}`,
      "-c",
      "unix_socket_directories=",
      "-c",
      "max_connections=300",
      "-c",
      "fsync=off",
    ];
    const child: ChildProcess = spawn(path.join(this.#bin, "postgres"), args, {
      cwd: "/",
      stdio: ["ignore", "pipe", "pipe"],
      ...(this.#user === undefined ? {} : { uid: this.#user.uid, gid: this.#user.gid }),
    });
    const proc = new TestProcess("postgres", child);
    this.#proc = proc;
    await proc.waitForLine("database system is ready to accept connections", 30_000);
  }

  /** Fast shutdown (SIGINT: clients are disconnected, the data stays), waiting for the exit. */
  async stop(): Promise<void> {
    const proc = this.#proc;
    if (proc === undefined || !proc.running) return;
    proc.signal("SIGINT");
    const timer = setTimeout(() => proc.signal("SIGKILL"), 20_000);
    await proc.exited;
    clearTimeout(timer);
  }

  /** Stops and starts again on the same port with the same data. */
  async restart(): Promise<void> {
    await this.stop();
    await this.#launch();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.#proc?.kill();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
