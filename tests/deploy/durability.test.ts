/**
 * The JetStream durability the deployment promises, on a real 3-node cluster on loopback made from
 * deploy/nats/nats-cluster.conf itself (only addresses and the store directory changed): every
 * node fsyncs each write (`sync_interval: always`), and with SF_STREAM_REPLICAS=3 the streams and
 * KV buckets that an actor host and then an agent worker provision have 3 replicas, and keep them.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { spawn } from "node:child_process";
import { createServer } from "node:net";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { Kvm } from "@nats-io/kv";
import { connect } from "@nats-io/transport-node";
import { describe, expect, it } from "vitest";
import { defaultPlatformSchema, spawnTs, TEST_MASTER_KEY, TestProcess } from "../helpers/processes.ts";
import { binaryPaths, repoRoot, sharedServices } from "../helpers/services.ts";
import { waitFor } from "../helpers/deadline.ts";

const CLUSTER_CONF = path.join(repoRoot(), "deploy", "nats", "nats-cluster.conf");

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

interface Node {
  name: string;
  client: number;
  cluster: number;
  monitor: number;
}

/** The compose cluster config with loopback ports and a temporary store for one node. */
function loopbackConfig(conf: string, node: Node, nodes: readonly Node[], storeDir: string): string {
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

async function json(url: string): Promise<Record<string, unknown>> {
  const response = await fetch(url);
  return (await response.json()) as Record<string, unknown>;
}

interface JszStream {
  name: string;
  config?: { num_replicas?: number };
  cluster?: { leader?: string; replicas?: Array<{ name: string; current: boolean }> };
}

async function streamsOn(node: Node): Promise<JszStream[]> {
  const jsz = (await json(`http://127.0.0.1:${node.monitor}/jsz?streams=true&config=true`)) as {
    account_details?: Array<{ stream_detail?: JszStream[] }>;
  };
  return (jsz.account_details ?? []).flatMap((a) => a.stream_detail ?? []);
}

describe("JetStream durability", () => {
  it("durability - on the 3-node cluster config every write is fsynced, and what the platform provisions has 3 replicas", async () => {
    const conf = readFileSync(CLUSTER_CONF, "utf8");
    expect(conf).toMatch(/^\s*sync_interval: always$/m);
    const nodes: Node[] = [];
    for (const name of ["nats-1", "nats-2", "nats-3"]) {
      nodes.push({ name, client: await freePort(), cluster: await freePort(), monitor: await freePort() });
    }
    const dir = mkdtempSync(path.join(tmpdir(), "sf-cluster-"));
    const servers: TestProcess[] = [];
    const processes: TestProcess[] = [];
    try {
      for (const node of nodes) {
        const file = path.join(dir, `${node.name}.conf`);
        writeFileSync(file, loopbackConfig(conf, node, nodes, path.join(dir, node.name)));
        const child = spawn(binaryPaths().natsServer, ["-c", file, "--name", node.name], {
          stdio: ["ignore", "pipe", "pipe"],
        });
        servers.push(new TestProcess(node.name, child));
      }
      // /healthz answers 200 once JetStream is current: the cluster has a meta leader.
      try {
        await waitFor(
          "the NATS cluster to become healthy",
          async () => {
            const exited = servers.find((p) => !p.running);
            if (exited !== undefined) throw new Error(`${exited.name} exited`);
            const codes = await Promise.all(
              nodes.map((n) =>
                fetch(`http://127.0.0.1:${n.monitor}/healthz`).then(
                  (r) => r.status,
                  () => 0,
                ),
              ),
            );
            return codes.every((c) => c === 200);
          },
          { timeoutMs: 30_000, intervalMs: 100 },
        );
      } catch (err) {
        const tails = servers.map((p) => `--- ${p.name}\n${p.tail(15)}`).join("\n");
        throw new Error(`${(err as Error).message}\n${tails}`, { cause: err });
      }
      for (const node of nodes) {
        const varz = (await json(`http://127.0.0.1:${node.monitor}/varz`)) as {
          jetstream?: { config?: { sync_always?: boolean } };
        };
        expect(varz.jetstream?.config?.sync_always, `${node.name} fsyncs every write`).toBe(true);
      }

      const natsUrl = nodes.map((n) => `nats://127.0.0.1:${n.client}`).join(",");
      const first = `nats://127.0.0.1:${nodes[0]?.client}`;
      const common = {
        NATS_URL: natsUrl,
        SF_PARTITIONS: "16",
        SF_STREAM_REPLICAS: "3",
        SF_METRICS_PORT: "0",
      };
      // A deployment that started on one replica: its state bucket exists with R1 and must be raised.
      const early = await connect({ servers: first });
      try {
        await new Kvm(early).create("sf_state", { history: 1, replicas: 1 });
        // An R1 stream lives on one node only.
        const copies = (await Promise.all(nodes.map(streamsOn)))
          .flat()
          .filter((x) => x.name === "KV_sf_state");
        expect(copies.map((c) => c.config?.num_replicas)).toEqual([1]);
      } finally {
        await early.close();
      }
      processes.push(
        await spawnTs("actor-host r3", "actors/main.ts", {
          readyLine: "actor host ready",
          env: {
            ...common,
            SF_HOST_ID: "durability-host",
            SF_PLATFORM_DATABASE_URL: sharedServices().databaseUrl,
            SF_PLATFORM_SCHEMA: defaultPlatformSchema(first),
            SF_MASTER_KEYS: `test:${TEST_MASTER_KEY}`,
          },
        }),
      );
      // The worker provisions the same streams after the host: it must not set them back to R1.
      processes.push(
        await spawnTs("worker r3", "agent-worker/main.ts", {
          readyLine: "agent worker ready",
          env: { ...common, SF_WORKER_ID: "durability-worker", SF_PROVIDER_ENDPOINTS: "{}" },
        }),
      );

      for (const node of nodes) {
        const streams = await streamsOn(node);
        const byName = new Map(streams.map((s) => [s.name, s]));
        for (const name of [
          "SF_DISPATCH",
          "SF_INGEST",
          "SF_EVENTS",
          "KV_sf_leases",
          "KV_sf_members",
          "KV_sf_workers",
          "KV_sf_state",
        ]) {
          const stream = byName.get(name);
          expect(stream, `${name} on ${node.name}`).toBeDefined();
          expect(stream?.config?.num_replicas, `${name} replicas`).toBe(3);
          expect((stream?.cluster?.replicas ?? []).length, `${name}: the leader and two followers`).toBe(2);
        }
      }
    } finally {
      for (const p of processes) await p.stop();
      for (const s of servers) await s.kill();
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);
});
