/**
 * A real 3-node NATS cluster on loopback, made from deploy/nats/nats-cluster.conf itself (only the
 * addresses and the store directories change): each node is a nats-server with JetStream, client,
 * route and monitoring ports of its own, and a store that survives `kill`/`restart` of the node.
 * Healthy once every running node answers 200 on /healthz (JetStream current, a meta leader).
 */
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { waitFor } from "./deadline.ts";
import { freePort } from "./ports.ts";
import { TestProcess } from "./processes.ts";
import { binaryPaths, repoRoot } from "./services.ts";

export const CLUSTER_CONF = path.join(repoRoot(), "deploy", "nats", "nats-cluster.conf");

export interface ClusterNode {
  name: string;
  client: number;
  cluster: number;
  monitor: number;
}

/** The cluster config with loopback ports and a temporary store for one node. */
export function loopbackConfig(
  conf: string,
  node: ClusterNode,
  nodes: readonly ClusterNode[],
  storeDir: string,
): string {
  let out = conf
    .replace(/^listen: 0\.0\.0\.0:4222$/m, `listen: 127.0.0.1:${node.client}`)
    .replace(/^http: 0\.0\.0\.0:8222$/m, `http: 127.0.0.1:${node.monitor}`)
    .replace(/^(\s*)store_dir: \/data\/jetstream$/m, `$1store_dir: "${storeDir}"`)
    .replace(/^(\s*)listen: 0\.0\.0\.0:6222$/m, `$1listen: 127.0.0.1:${node.cluster}`)
    .replace(/^(\s*)max_file_store: .*$/m, "$1max_file_store: 1GB")
    .replace(/^(\s*)max_memory_store: .*$/m, "$1max_memory_store: 64MB");
  for (const other of nodes) {
    out = out.replace(`nats-route://${other.name}:6222`, `nats-route://127.0.0.1:${other.cluster}`);
  }
  return out;
}

export interface JszStream {
  name: string;
  config?: { num_replicas?: number };
  cluster?: { leader?: string; replicas?: Array<{ name: string; current: boolean }> };
}

export interface NatsClusterOptions {
  /** Lines appended to every node's config (e.g. shorter lame-duck settings for tests). */
  extraConfig?: string;
}

export class NatsTestCluster implements AsyncDisposable {
  readonly dir: string;
  readonly nodes: readonly ClusterNode[];
  readonly #procs: Array<TestProcess | undefined>;
  readonly #files: string[];
  /** Nodes killed on purpose (not restarted yet). */
  readonly #down = new Set<number>();

  private constructor(dir: string, nodes: ClusterNode[], files: string[]) {
    this.dir = dir;
    this.nodes = nodes;
    this.#files = files;
    this.#procs = nodes.map(() => undefined);
  }

  /** Starts the three nodes and waits until the cluster is healthy. */
  static async start(options: NatsClusterOptions = {}): Promise<NatsTestCluster> {
    const conf = readFileSync(CLUSTER_CONF, "utf8");
    const nodes: ClusterNode[] = [];
    for (const name of ["nats-1", "nats-2", "nats-3"]) {
      nodes.push({ name, client: await freePort(), cluster: await freePort(), monitor: await freePort() });
    }
    const dir = mkdtempSync(path.join(tmpdir(), "sf-cluster-"));
    const files = nodes.map((node) => {
      const file = path.join(dir, `${node.name}.conf`);
      writeFileSync(
        file,
        `${loopbackConfig(conf, node, nodes, path.join(dir, node.name))}\n${options.extraConfig ?? ""}\n`,
      );
      return file;
    });
    const cluster = new NatsTestCluster(dir, nodes, files);
    try {
      for (let i = 0; i < nodes.length; i++) cluster.#launch(i);
      await cluster.waitHealthy();
    } catch (err) {
      await cluster[Symbol.asyncDispose]();
      throw err;
    }
    return cluster;
  }

  /** Every node's client URL, comma-separated (what NATS_URL takes). */
  get url(): string {
    return this.nodes.map((n) => this.nodeUrl(n.name)).join(",");
  }

  nodeUrl(name: string): string {
    return `nats://127.0.0.1:${this.#node(name).client}`;
  }

  running(name: string): boolean {
    return this.#procs[this.#index(name)]?.running === true;
  }

  #index(name: string): number {
    const i = this.nodes.findIndex((n) => n.name === name);
    if (i === -1) throw new Error(`no cluster node ${name}`);
    return i;
  }

  #node(name: string): ClusterNode {
    return this.nodes[this.#index(name)] as ClusterNode;
  }

  #launch(i: number): void {
    const node = this.nodes[i] as ClusterNode;
    const child = spawn(binaryPaths().natsServer, ["-c", this.#files[i] as string, "--name", node.name], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    this.#procs[i] = new TestProcess(node.name, child);
    this.#down.delete(i);
  }

  /** Waits until every running node answers 200 on /healthz; a node that exits fails it. */
  async waitHealthy(timeoutMs = 30_000): Promise<void> {
    const up = this.nodes.filter((_, i) => !this.#down.has(i));
    try {
      await waitFor(
        "the NATS cluster to become healthy",
        async () => {
          const exited = this.#procs.find((p, i) => p !== undefined && !p.running && !this.#down.has(i));
          if (exited !== undefined) throw new Error(`${exited.name} exited`);
          const codes = await Promise.all(
            up.map((n) =>
              fetch(`http://127.0.0.1:${n.monitor}/healthz`).then(
                (r) => r.status,
                () => 0,
              ),
            ),
          );
          return codes.every((c) => c === 200);
        },
        { timeoutMs, intervalMs: 100 },
      );
    } catch (err) {
      const tails = this.#procs
        .filter((p): p is TestProcess => p !== undefined)
        .map((p) => `--- ${p.name}\n${p.tail(15)}`)
        .join("\n");
      throw new Error(`${(err as Error).message}\n${tails}`, { cause: err });
    }
  }

  /** SIGKILL one node (its store stays on disk). */
  async kill(name: string): Promise<void> {
    const i = this.#index(name);
    this.#down.add(i);
    await this.#procs[i]?.kill();
  }

  /** Starts a killed or stopped node again on the same ports and store, and waits for health. */
  async restart(name: string): Promise<void> {
    const i = this.#index(name);
    this.#down.add(i);
    await this.#procs[i]?.kill();
    this.#launch(i);
    await this.waitHealthy();
  }

  /** A node's monitoring endpoint as JSON (`/varz`, `/jsz?streams=true`…). */
  async monitor(name: string, pathAndQuery: string): Promise<Record<string, unknown>> {
    const response = await fetch(`http://127.0.0.1:${this.#node(name).monitor}${pathAndQuery}`);
    return (await response.json()) as Record<string, unknown>;
  }

  /** The streams a node holds (a replica or the leader), with their config and cluster info. */
  async streamsOn(name: string): Promise<JszStream[]> {
    const jsz = (await this.monitor(name, "/jsz?streams=true&config=true")) as {
      account_details?: Array<{ stream_detail?: JszStream[] }>;
    };
    return (jsz.account_details ?? []).flatMap((a) => a.stream_detail ?? []);
  }

  /** The node that leads `stream` now, as a running node reports it. */
  async streamLeader(stream: string): Promise<string | undefined> {
    for (const node of this.nodes) {
      if (!this.running(node.name)) continue;
      const found = (await this.streamsOn(node.name)).find((s) => s.name === stream);
      if (found?.cluster?.leader !== undefined) return found.cluster.leader;
    }
    return undefined;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    for (const p of this.#procs) await p?.kill();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
