/**
 * The alert rules and the Grafana dashboard (deploy/helm/sidekick-forge/files/): promtool checks
 * the rules, and a running actor host, gateway and agent worker are scraped to prove that every
 * metric the rules and the dashboard name is one a process exports. JetStream numbers come from
 * prometheus-nats-exporter, which cannot be installed here (the Go module proxy refuses it): its
 * names are checked against the list below, taken from its jsz collector, and the nats-server
 * monitoring fields it reads are checked on a real server.
 */
import { copyFileSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { spawnGateway } from "../helpers/gateway_process.ts";
import { NatsTestServer } from "../helpers/nats_server.ts";
import { freePort } from "../helpers/ports.ts";
import { spawnActorHost } from "../helpers/processes.ts";
import type { TestProcess } from "../helpers/processes.ts";
import { repoRoot } from "../helpers/services.ts";
import { spawnWorker } from "../helpers/stack.ts";
import { metricNamesIn } from "./promql.ts";
import { ensureTool, INSTALL_TIMEOUT_MS, run } from "./tools.ts";
import { at, items, parseYaml, text } from "./yaml.ts";

const FILES = path.join(repoRoot(), "deploy", "helm", "sidekick-forge", "files");
const ALERTS = path.join(FILES, "alerts.yml");
const DASHBOARD = path.join(FILES, "dashboard.json");

/**
 * What prometheus-nats-exporter exports with `-jsz=all` (collector/jsz.go: system "jetstream",
 * subsystems server, stream, consumer). Stream and consumer series carry `stream_name` and
 * `consumer_name` labels.
 */
const NATS_EXPORTER_JSZ = new Set([
  "jetstream_server_jetstream_disabled",
  "jetstream_server_total_streams",
  "jetstream_server_total_consumers",
  "jetstream_server_total_messages",
  "jetstream_server_total_message_bytes",
  "jetstream_server_max_memory",
  "jetstream_server_max_storage",
  "jetstream_stream_total_messages",
  "jetstream_stream_total_bytes",
  "jetstream_stream_first_seq",
  "jetstream_stream_last_seq",
  "jetstream_stream_consumer_count",
  "jetstream_consumer_delivered_consumer_seq",
  "jetstream_consumer_delivered_stream_seq",
  "jetstream_consumer_num_ack_pending",
  "jetstream_consumer_num_redelivered",
  "jetstream_consumer_num_waiting",
  "jetstream_consumer_num_pending",
  "jetstream_consumer_ack_floor_stream_seq",
  "jetstream_consumer_ack_floor_consumer_seq",
]);
/** The exporter reads these fields of nats-server's /jsz?consumers=true for its consumer series. */
const JSZ_CONSUMER_FIELDS = ["num_pending", "num_ack_pending", "num_redelivered", "num_waiting"];
/** Series Prometheus makes itself for every target. */
const PROMETHEUS_SYNTHETIC = new Set(["up", "scrape_duration_seconds", "scrape_samples_scraped"]);
/** The jobs of our scrape configs (compose's prometheus.yml and the chart's). */
const JOBS = new Set(["gateway", "actor-host", "agent-worker", "nats", "prometheus"]);

interface Rule {
  alert: string | undefined;
  record: string | undefined;
  expr: string;
}

function alertRules(): Rule[] {
  const doc = parseYaml(readFileSync(ALERTS, "utf8"));
  return items(at(doc, "groups")).flatMap((group) =>
    items(at(group, "rules")).map((rule) => {
      const expr = text(at(rule, "expr"));
      if (expr === undefined) throw new Error(`a rule without expr in ${ALERTS}`);
      return { alert: text(at(rule, "alert")), record: text(at(rule, "record")), expr };
    }),
  );
}

interface Panel {
  id: number;
  type: string;
  title: string;
  datasource?: { uid?: string };
  targets?: Array<{ expr?: string; datasource?: { uid?: string } }>;
  panels?: Panel[];
}

function dashboardPanels(): Panel[] {
  const dashboard = JSON.parse(readFileSync(DASHBOARD, "utf8")) as { panels: Panel[] };
  return dashboard.panels.flatMap((p) => [p, ...(p.panels ?? [])]);
}

function dashboardExprs(): string[] {
  return dashboardPanels().flatMap((p) => (p.targets ?? []).map((t) => t.expr ?? ""));
}

/** Sample names a Prometheus text exposition declares or carries. */
function exportedNames(exposition: string): Set<string> {
  const names = new Set<string>();
  for (const line of exposition.split("\n")) {
    const type = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (type !== null) {
      const [, name = "", kind] = type;
      names.add(name);
      if (kind === "histogram") for (const s of ["_bucket", "_sum", "_count"]) names.add(name + s);
      if (kind === "summary") for (const s of ["_sum", "_count"]) names.add(name + s);
      continue;
    }
    const sample = /^([A-Za-z_:][A-Za-z0-9_:]*)[{ ]/.exec(line);
    if (sample?.[1] !== undefined) names.add(sample[1]);
  }
  return names;
}

async function scrape(url: string): Promise<string> {
  const response = await fetch(url);
  expect(response.status, url).toBe(200);
  return response.text();
}

function metricsPortOf(proc: TestProcess, readyLine: string): Promise<number> {
  return proc.waitForLine(readyLine).then((line) => {
    const port = (JSON.parse(line) as { metricsPort?: unknown }).metricsPort;
    if (typeof port !== "number" || port <= 0) throw new Error(`${proc.name}: no metricsPort in ${line}`);
    return port;
  });
}

interface JszStream {
  name: string;
  consumer_detail?: Array<Record<string, unknown>>;
}

async function jetStreamStreams(monitorPort: number): Promise<JszStream[]> {
  const response = await fetch(`http://127.0.0.1:${monitorPort}/jsz?consumers=true&config=true`);
  const jsz = (await response.json()) as { account_details?: Array<{ stream_detail?: JszStream[] }> };
  return (jsz.account_details ?? []).flatMap((a) => a.stream_detail ?? []);
}

describe("alert rules and dashboard", () => {
  let promtool: string;
  beforeAll(async () => {
    promtool = await ensureTool("promtool");
  }, INSTALL_TIMEOUT_MS);

  it("alerts - promtool check rules passes", async () => {
    const dir = mkdtempSync(path.join(tmpdir(), "sf-rules-"));
    copyFileSync(ALERTS, path.join(dir, "alerts.yml"));
    const { stdout } = await run(promtool, ["check", "rules", path.join(dir, "alerts.yml")]);
    expect(stdout).toMatch(new RegExp(`SUCCESS: ${alertRules().length} rules found`));
  });

  it("alerts - cover worker capacity, dispatch failures, consumer lag, lease churn, provider errors, p99 and liveness", () => {
    const exprs = new Map(alertRules().map((r) => [r.alert ?? r.record ?? "", r.expr]));
    const uses = (metric: string) => [...exprs.values()].some((e) => metricNamesIn(e).has(metric));
    expect(uses("jetstream_consumer_num_waiting"), "no worker with capacity").toBe(true);
    expect(uses("sf_worker_jobs_total"), "dispatch failures").toBe(true);
    expect(uses("jetstream_consumer_num_pending"), "consumer lag").toBe(true);
    expect(uses("sf_lease_changes_total"), "lease churn").toBe(true);
    expect(uses("sf_provider_errors_total"), "provider error rate").toBe(true);
    expect(
      [...exprs.values()].some((e) => /histogram_quantile\(0\.99/.test(e)),
      "p99",
    ).toBe(true);
    // Every job a rule selects is one the scrape configs define.
    for (const [name, expr] of exprs) {
      for (const m of expr.matchAll(/job=~?"([^"]+)"/g)) {
        for (const job of (m[1] ?? "").split("|")) expect(JOBS.has(job), `${name}: job ${job}`).toBe(true);
      }
    }
  });

  it("dashboard - valid Grafana JSON: unique ids, every query on the data source variable", () => {
    const panels = dashboardPanels();
    const ids = panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    const queried = panels.filter((p) => p.targets !== undefined);
    expect(queried.length).toBeGreaterThan(15);
    for (const panel of queried) {
      expect(panel.datasource?.uid, panel.title).toBe("${datasource}");
      for (const target of panel.targets ?? []) {
        expect(target.expr?.trim(), panel.title).toBeTruthy();
        expect(target.datasource?.uid, panel.title).toBe("${datasource}");
      }
    }
    const titles = panels.map((p) => p.title.toLowerCase()).join("\n");
    for (const topic of [
      "jobs finished",
      "latency",
      "actors per host",
      "partitions per host",
      "slots",
      "admission refusals",
      "pending",
      "websocket",
      "provider latency",
      "provider error",
      "first token",
      "rag retrieval",
      "ingestion",
    ]) {
      expect(titles, topic).toContain(topic);
    }
  });

  it("promql - metric names, not functions, labels, keywords or numbers", () => {
    const names = metricNamesIn(
      'histogram_quantile(0.99, sum by (le, route) (rate(a_bucket{route=~"x|y", s="5.."}[$__rate_interval]))) > 2' +
        ' and on (job) up{job="w"} == 0 or absent(b) * 1e3 + sum(rate(c_total[5m] offset 1h)) without (mode)' +
        " unless max_over_time(d[2m:30s]) > bool 0",
    );
    expect([...names].sort()).toEqual(["a_bucket", "b", "c_total", "d", "up"]);
  });
});

describe("metrics exported by the running processes", () => {
  it("metrics - every metric the alert rules and the dashboard name is exported by a process that Prometheus scrapes", async () => {
    const monitorPort = await freePort();
    await using nats = await NatsTestServer.start({ extraConfig: `http: "127.0.0.1:${monitorPort}"` });
    await using host = await spawnActorHost({ natsUrl: nats.url, hostId: "deploy-metrics-host" });
    const gateway = await spawnGateway({ natsUrl: nats.url });
    await using _gateway = gateway.proc;
    await using worker = await spawnWorker({
      natsUrl: nats.url,
      partitions: 64,
      workerId: "deploy-metrics-worker",
      endpoints: {},
    });

    // One request first, so that the gateway's labelled series have samples too.
    expect((await fetch(`${gateway.base}/health`)).status).toBe(200);
    const expositions = {
      gateway: await scrape(`${gateway.base}/metrics`),
      "actor-host": await scrape(`http://127.0.0.1:${await metricsPortOf(host, "actor host ready")}/metrics`),
      "agent-worker": await scrape(
        `http://127.0.0.1:${await metricsPortOf(worker, "agent worker ready")}/metrics`,
      ),
    };
    const exported = new Set<string>();
    for (const text of Object.values(expositions)) for (const name of exportedNames(text)) exported.add(name);
    // The worker declares its provider, RAG and capacity metrics before any job has run.
    const workerNames = exportedNames(expositions["agent-worker"]);
    for (const name of [
      "sf_provider_request_duration_seconds_bucket",
      "sf_provider_errors_total",
      "sf_provider_first_token_seconds_bucket",
      "sf_rag_step_seconds_bucket",
      "sf_ingest_chunks_total",
      "sf_ingest_documents_total",
      "sf_worker_slots_total",
      "sf_worker_admission_refusals_total",
    ]) {
      expect(workerNames.has(name), name).toBe(true);
    }
    // Every process exports under the sf_ prefix (STYLE.md), default Node metrics included.
    for (const [job, text] of Object.entries(expositions)) {
      const foreign = [...exportedNames(text)].filter((n) => !n.startsWith("sf_"));
      expect(foreign, job).toEqual([]);
    }

    const referenced = new Map<string, string>();
    for (const rule of alertRules()) {
      for (const name of metricNamesIn(rule.expr)) referenced.set(name, `alert ${rule.alert ?? rule.record}`);
    }
    for (const expr of dashboardExprs())
      for (const name of metricNamesIn(expr)) referenced.set(name, "dashboard");
    const missing = [...referenced].filter(
      ([name]) => !exported.has(name) && !NATS_EXPORTER_JSZ.has(name) && !PROMETHEUS_SYNTHETIC.has(name),
    );
    expect(missing, "named in the rules or dashboard but exported by nothing").toEqual([]);
    // The sf_ names are the ones proven here; keep the unproven exporter part small.
    const fromProcesses = [...referenced.keys()].filter((n) => exported.has(n));
    expect(fromProcesses.length).toBeGreaterThan(15);

    // The exporter's consumer series come from these /jsz fields, and the rules select the
    // streams by name: the platform's streams and the workers' consumer exist with them. A
    // worker with free slots keeps pull requests waiting (num_waiting > 0): what
    // SidekickNoWorkerCapacity reads. Its pulls expire every second, so look a few times.
    let consumer: Record<string, unknown> | undefined;
    for (let attempt = 0; attempt < 20; attempt += 1) {
      const streams = await jetStreamStreams(monitorPort);
      expect(
        streams.some((s) => /_INGEST$/.test(s.name)),
        "a *_INGEST stream",
      ).toBe(true);
      const dispatch = streams.find((s) => /_DISPATCH$/.test(s.name));
      expect(dispatch, "a *_DISPATCH stream").toBeDefined();
      consumer = dispatch?.consumer_detail?.find((c) => String(c["name"]).endsWith("-workers"));
      expect(consumer, "the workers' consumer on the dispatch stream").toBeDefined();
      if (Number(consumer?.["num_waiting"]) > 0) break;
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    for (const field of JSZ_CONSUMER_FIELDS) expect(consumer?.[field], field).toBeTypeOf("number");
    expect(consumer?.["num_waiting"]).toBeGreaterThan(0);
  }, 120_000);
});
