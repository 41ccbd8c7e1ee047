/**
 * The JetStream durability the deployment promises, on a real 3-node cluster on loopback made from
 * deploy/nats/nats-cluster.conf itself (only addresses and the store directory changed): every
 * node fsyncs each write (`sync_interval: always`), and with SF_STREAM_REPLICAS=3 the streams and
 * KV buckets that an actor host and then an agent worker provision have 3 replicas, and keep them.
 */
import { readFileSync } from "node:fs";
import { Kvm } from "@nats-io/kv";
import { connect } from "@nats-io/transport-node";
import { describe, expect, it } from "vitest";
import { CLUSTER_CONF, NatsTestCluster } from "../helpers/nats_cluster.ts";
import { defaultPlatformSchema, spawnTs, TEST_MASTER_KEY } from "../helpers/processes.ts";
import type { TestProcess } from "../helpers/processes.ts";
import { sharedServices } from "../helpers/services.ts";

describe("JetStream durability", () => {
  it("durability - on the 3-node cluster config every write is fsynced, and what the platform provisions has 3 replicas", async () => {
    const conf = readFileSync(CLUSTER_CONF, "utf8");
    expect(conf).toMatch(/^\s*sync_interval: always$/m);
    const processes: TestProcess[] = [];
    await using cluster = await NatsTestCluster.start();
    const nodes = cluster.nodes;
    try {
      for (const node of nodes) {
        const varz = (await cluster.monitor(node.name, "/varz")) as {
          jetstream?: { config?: { sync_always?: boolean } };
        };
        expect(varz.jetstream?.config?.sync_always, `${node.name} fsyncs every write`).toBe(true);
      }

      const natsUrl = cluster.url;
      const first = cluster.nodeUrl("nats-1");
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
        const copies = (await Promise.all(nodes.map((n) => cluster.streamsOn(n.name))))
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
        const streams = await cluster.streamsOn(node.name);
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
    }
  }, 120_000);
});
