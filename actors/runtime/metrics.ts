/** Prometheus metrics of an actor host, and the small HTTP server every process uses for /metrics. */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";

/** Values read when metrics are scraped, filled in by the host that owns them. */
export interface HostMetricSources {
  mailboxDepth: () => number;
  activeActors: () => number;
}

export interface HostMetrics {
  readonly registry: Registry;
  readonly sources: HostMetricSources;
  readonly activeActors: Gauge;
  readonly turns: Counter<"outcome">;
  readonly turnDuration: Histogram;
  readonly mailboxDepth: Gauge;
  readonly leaseChanges: Counter<"change">;
  readonly partitionsOwned: Gauge;
  readonly dropped: Counter<"reason">;
}

export function createHostMetrics(registry = new Registry()): HostMetrics {
  collectDefaultMetrics({ register: registry, prefix: "sf_" });
  const sources: HostMetricSources = { mailboxDepth: () => 0, activeActors: () => 0 };
  return {
    registry,
    sources,
    activeActors: new Gauge({
      name: "sf_actor_active",
      help: "Actors active on this host",
      registers: [registry],
      collect() {
        this.set(sources.activeActors());
      },
    }),
    turns: new Counter({
      name: "sf_actor_turns_total",
      help: "Actor turns run, by outcome (ok, error, dedup)",
      labelNames: ["outcome"],
      registers: [registry],
    }),
    turnDuration: new Histogram({
      name: "sf_actor_turn_duration_seconds",
      help: "Time from a message's arrival at the host to its reply",
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [registry],
    }),
    mailboxDepth: new Gauge({
      name: "sf_actor_mailbox_depth",
      help: "Messages waiting in all actor mailboxes on this host",
      registers: [registry],
      collect() {
        this.set(sources.mailboxDepth());
      },
    }),
    leaseChanges: new Counter({
      name: "sf_lease_changes_total",
      help: "Partition lease changes on this host (acquired, released, lost_expired, lost_taken)",
      labelNames: ["change"],
      registers: [registry],
    }),
    partitionsOwned: new Gauge({
      name: "sf_lease_partitions_owned",
      help: "Partitions this host holds a lease on",
      registers: [registry],
    }),
    dropped: new Counter({
      name: "sf_actor_dropped_total",
      help: "Messages dropped without a reply (not_owner, expired_deadline, fenced)",
      labelNames: ["reason"],
      registers: [registry],
    }),
  };
}

export interface MetricsServer extends AsyncDisposable {
  readonly port: number;
  close(): Promise<void>;
}

/** Serves `GET /metrics` on 127.0.0.1 (or `host`); port 0 picks a free one. */
export async function serveMetrics(
  registry: Registry,
  port: number,
  host = "127.0.0.1",
): Promise<MetricsServer> {
  const server = createServer((req, res) => {
    if (req.method !== "GET" || (req.url ?? "").split("?")[0] !== "/metrics") {
      res.writeHead(404, { "content-type": "text/plain" }).end("not found\n");
      return;
    }
    registry.metrics().then(
      (text) => res.writeHead(200, { "content-type": registry.contentType }).end(text),
      (err: unknown) => res.writeHead(500, { "content-type": "text/plain" }).end(String(err)),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => resolve());
  });
  const close = (): Promise<void> =>
    new Promise((resolve, reject) => server.close((err) => (err ? reject(err) : resolve())));
  return { port: (server.address() as AddressInfo).port, close, [Symbol.asyncDispose]: close };
}
