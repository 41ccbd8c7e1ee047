/**
 * A real nats-server with JetStream for one test file: random port, temporary store dir,
 * restartable on the same port and data (to test reconnects), removed on dispose.
 */
import { spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { TestProcess } from "./processes.ts";
import { binaryPaths } from "./services.ts";

export interface NatsServerOptions {
  /** Extra lines appended to the generated config (e.g. `mappings`). */
  extraConfig?: string;
}

export class NatsTestServer implements AsyncDisposable {
  readonly dir: string;
  readonly storeDir: string;
  #port: number;
  #proc: TestProcess | undefined;
  readonly #extra: string;

  private constructor(dir: string, extra: string) {
    this.dir = dir;
    this.storeDir = join(dir, "jetstream");
    this.#extra = extra;
    this.#port = -1;
  }

  static async start(options: NatsServerOptions = {}): Promise<NatsTestServer> {
    const dir = await mkdtemp(join(tmpdir(), "sf-nats-"));
    const server = new NatsTestServer(dir, options.extraConfig ?? "");
    await server.#launch();
    return server;
  }

  get port(): number {
    return this.#port;
  }

  get url(): string {
    return `nats://127.0.0.1:${this.#port}`;
  }

  /** The server process id (for CPU accounting in benchmarks). */
  get pid(): number {
    if (this.#proc === undefined) throw new Error("nats-server is not running");
    return this.#proc.pid;
  }

  get running(): boolean {
    return this.#proc?.running === true;
  }

  async #launch(): Promise<void> {
    const config = join(this.dir, "nats.conf");
    await writeFile(
      config,
      [
        `listen: "127.0.0.1:${this.#port}"`,
        `server_name: "sf-test"`,
        // Frozen (SIGSTOPped) clients are noticed and cut within a few seconds.
        `ping_interval: "1s"`,
        `ping_max: 3`,
        `jetstream { store_dir: "${this.storeDir}", max_memory_store: 256MB, max_file_store: 4GB }`,
        this.#extra,
      ].join("\n"),
    );
    const child = spawn(binaryPaths().natsServer, ["-c", config], { stdio: ["ignore", "pipe", "pipe"] });
    const proc = new TestProcess("nats-server", child);
    this.#proc = proc;
    const line = await proc.waitForLine("Listening for client connections on", 20_000);
    const port = Number(/:(\d+)\s*$/.exec(line)?.[1]);
    if (!Number.isInteger(port)) throw new Error(`nats-server: cannot read its port from ${line}`);
    this.#port = port;
    await proc.waitForLine("Server is ready", 20_000);
  }

  /** Graceful stop (the store stays on disk). */
  async stop(): Promise<void> {
    await this.#proc?.stop();
  }

  /** Stops and starts again on the same port with the same JetStream data. */
  async restart(): Promise<void> {
    await this.stop();
    await this.#launch();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.#proc?.kill();
    await rm(this.dir, { recursive: true, force: true });
  }
}
