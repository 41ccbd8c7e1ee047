/**
 * `npm run chaos`: the platform under load while its processes and servers fail, then a check of
 * what every client was told against what the tenants' databases hold (bench/chaos/checker.ts).
 * Writes bench/results/chaos.json (`--quick`: a short smoke run, chaos.quick.json).
 * `--faults=host_sigstop,…` runs only those faults (runs left without one are skipped) and writes
 * its report into the run's log folder instead, leaving the recorded results alone.
 *
 * Two runs. The first on one nats-server: 50 tenants, HTTP text triggers (v1 and v2, with
 * Idempotency-Keys), 10,000 WebSocket chat messages and a few voice triggers, while each fault
 * happens in turn (SIGKILL and SIGSTOP/SIGCONT of an agent worker, an actor host and a gateway,
 * a nats-server restart, a PostgreSQL restart, provider faults, provider timeouts) and then all
 * at once. The second on a 3-node NATS cluster (streams with 3 replicas; hosts, workers and
 * gateways attached to different nodes) under text load, while the node that leads the dispatch
 * stream is killed and restarted, twice.
 */
import { mkdir, readdir, rm, stat, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { checkRunLogs } from "../tests/helpers/log_scan.ts";
import { PostgresTestServer } from "../tests/helpers/postgres_server.ts";
import { TEST_MASTER_KEY } from "../tests/helpers/processes.ts";
import { registerSecret } from "../tests/helpers/secret_registry.ts";
import { repoRoot } from "../tests/helpers/services.ts";
import { machine } from "./harness.ts";
import { FaultKinds } from "./chaos/faults.ts";
import { runChaos } from "./chaos/scenario.ts";
import { disposeLiveStacks } from "./chaos/stack.ts";
import type { ChaosPlan, ChaosRun } from "./chaos/scenario.ts";
import type { ChaosReport } from "./chaos/checker.ts";

const log = (line: string): void => console.log(line);

/** Run folders (process and client logs) older than this are removed when a run starts. */
const KEEP_RUNS_MS = 24 * 3600_000;

function plans(quick: boolean, tag: string): ChaosPlan[] {
  const timings = { stopHoldMs: 4000, hostStopHoldMs: 5000, downMs: 2000, providerFaultMs: 6000 };
  const single: ChaosPlan = {
    name: `chaos_${tag}_s`,
    nats: "single",
    tenants: quick ? 8 : 50,
    voiceTenants: quick ? 2 : 5,
    gateways: 2,
    hosts: 2,
    workers: quick ? 2 : 3,
    httpThinkMs: quick ? 300 : 1500,
    wsPerTenant: 1,
    wsThinkMs: quick ? 50 : 100,
    wsMessages: quick ? 600 : 10_000,
    warmupMs: 3000,
    calmMs: quick ? 1500 : 4000,
    settleTimeoutMs: 60_000,
    faults: [
      "worker_sigkill",
      "worker_sigstop",
      "host_sigkill",
      "host_sigstop",
      "gateway_sigkill",
      "gateway_sigstop",
      "nats_restart",
      "postgres_restart",
      "provider_faults",
      ...(quick ? [] : (["provider_timeouts"] as const)),
      "mixed",
    ],
    timings,
    voiceTriggers: quick ? 2 : 10,
    tokenDelayMs: 10,
  };
  const cluster: ChaosPlan = {
    name: `chaos_${tag}_c`,
    nats: "cluster",
    tenants: quick ? 4 : 10,
    voiceTenants: 0,
    gateways: 2,
    hosts: 2,
    workers: 2,
    httpThinkMs: quick ? 300 : 500,
    wsPerTenant: 1,
    wsThinkMs: 50,
    wsMessages: quick ? 200 : 1000,
    warmupMs: 3000,
    calmMs: 3000,
    settleTimeoutMs: 60_000,
    faults: quick ? ["nats_node_kill"] : ["nats_node_kill", "nats_node_kill"],
    timings,
    voiceTriggers: 0,
    tokenDelayMs: 10,
  };
  return [single, cluster];
}

/** The figures of a run for the notes (totals, rejections by code, windows per fault). */
function summaryOf(runs: ChaosRun[]): Record<string, unknown> {
  const sum = (f: (r: ChaosReport) => number): number => runs.reduce((n, run) => n + f(run.report), 0);
  const rejected: Record<string, number> = {};
  for (const run of runs)
    for (const [code, n] of Object.entries(run.report.rejected)) rejected[code] = (rejected[code] ?? 0) + n;
  return {
    sent: sum((r) => r.sent),
    accepted: sum((r) => r.accepted),
    answered: sum((r) => r.answered),
    rejected,
    interrupted: sum((r) => r.interrupted),
    lost: sum((r) => r.lost),
    duplicated: sum((r) => r.duplicated),
    cross_tenant: sum((r) => r.cross_tenant),
    wrong_replies: sum((r) => r.wrong_replies),
    rejected_without_code: sum((r) => r.rejected_without_code),
    rejected_but_recorded: sum((r) => Object.values(r.rejected_but_recorded).reduce((a, b) => a + b, 0)),
    ws_messages: sum((r) => r.by_channel["ws"]?.sent ?? 0),
    unavailability_ms: runs.flatMap((run) =>
      run.report.faults.map((f) => ({
        fault: f.fault,
        targets: f.targets.join(","),
        window_ms: f.window_ms,
        slowest_tenant_window_ms: f.slowest_tenant_window_ms,
        bound_ms: f.bound_ms,
        within_bound: f.within_bound,
      })),
    ),
    over_bound: runs.flatMap((run) =>
      run.report.faults.filter((f) => f.within_bound === false).map((f) => f.fault),
    ),
    unsettled: runs.flatMap((r) => r.unsettled),
    crashed: runs.flatMap((r) => r.crashed),
  };
}

async function main(): Promise<void> {
  const quick = process.argv.includes("--quick");
  const only = process.argv.find((a) => a.startsWith("--only="))?.slice("--only=".length);
  const faultArg = process.argv.find((a) => a.startsWith("--faults="))?.slice("--faults=".length);
  const faults = faultArg?.split(",").filter((f) => f !== "");
  for (const f of faults ?? []) {
    if (!(FaultKinds as readonly string[]).includes(f))
      throw new Error(`--faults: ${f} is not one of ${FaultKinds.join(", ")}`);
  }
  const startedAt = new Date().toISOString();
  const t0 = performance.now();
  const tag = Date.now().toString(36);
  // Every process's output, the clients' logs and the secret scan of those logs, kept per run.
  const runsDir = join(repoRoot(), ".sidekick", "chaos");
  await mkdir(runsDir, { recursive: true });
  for (const entry of await readdir(runsDir)) {
    const dir = join(runsDir, entry);
    if (Date.now() - (await stat(dir)).mtimeMs > KEEP_RUNS_MS)
      await rm(dir, { recursive: true, force: true });
  }
  const runDir = join(runsDir, `${startedAt.replace(/[:.]/g, "-")}-${tag}`);
  await mkdir(runDir, { recursive: true });
  process.env["SF_TEST_RUN_DIR"] = runDir;
  registerSecret("master_key", TEST_MASTER_KEY);
  log(`chaos: logs under ${runDir}`);
  await using postgres = await PostgresTestServer.start();
  // Ctrl-C (or a timeout's SIGTERM) stops every process this run started before it exits.
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.once(signal, () => {
      log(`chaos: ${signal}: stopping every process of the run`);
      void disposeLiveStacks()
        .then(() => postgres[Symbol.asyncDispose]())
        .finally(() => process.exit(130));
    });
  }
  const runs: ChaosRun[] = [];
  for (const full of plans(quick, tag)) {
    if (only !== undefined && only !== full.nats) continue;
    const plan =
      faults === undefined ? full : { ...full, faults: full.faults.filter((f) => faults.includes(f)) };
    if (plan.faults.length === 0) continue;
    log(`chaos: run ${plan.name} (${plan.nats} NATS, ${plan.tenants} tenants)`);
    const run = await runChaos({ ...plan, postgres, log });
    runs.push(run);
    await writeFile(
      join(runDir, `clients-${plan.name}.jsonl`),
      run.records.map((r) => JSON.stringify(r)).join("\n") + "\n",
    );
    console.log(JSON.stringify({ run: plan.name, seconds: run.seconds, ...run.report }));
  }
  const seconds = Math.round(performance.now() - t0) / 1000;
  const scan = await checkRunLogs(runDir);
  log(scan.message);
  const summary: Record<string, unknown> = {
    ...summaryOf(runs),
    log_secret_scan: { files: scan.report.files, lines: scan.report.lines, hits: scan.report.hits.length },
  };
  console.log("summary", JSON.stringify(summary, null, 2));
  const dir = faults === undefined ? join(dirname(fileURLToPath(import.meta.url)), "results") : runDir;
  await mkdir(dir, { recursive: true });
  const file = join(dir, `chaos${quick ? ".quick" : ""}.json`);
  await writeFile(
    file,
    JSON.stringify(
      {
        name: "chaos",
        quick,
        started_at: startedAt,
        seconds,
        machine: machine(),
        summary,
        runs: runs.map(({ records: _records, ...run }) => run),
      },
      null,
      2,
    ) + "\n",
  );
  console.log(`wrote ${file}`);
  const failed =
    summary["lost"] !== 0 || summary["duplicated"] !== 0 || summary["cross_tenant"] !== 0 || scan.failed;
  if (failed) process.exitCode = 1;
}

main().then(
  () => process.exit(),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
