/**
 * actor-rr: request/reply to a tenant actor through the runtime (lease check, envelope,
 * mailbox turn, fenced owner, reply) versus a bare NATS request/reply echo, both served by a
 * separate process on the same nats-server, at 1 and 64 concurrent callers.
 */
import { connect } from "@nats-io/transport-node";
import { createSubjects, encodeBody, requestReply } from "../bus/index.ts";
import { NatsTestServer } from "../tests/helpers/nats_server.ts";
import { spawnActorHost, spawnTs } from "../tests/helpers/processes.ts";
import { closedLoop } from "./harness.ts";
import type { BenchOptions, BenchResult } from "./harness.ts";

export async function run(options: BenchOptions): Promise<BenchResult> {
  const durationMs = options.quick === true ? 1000 : 5000;
  const warmupMs = options.quick === true ? 300 : 1000;
  await using server = await NatsTestServer.start();
  await using host = await spawnActorHost({ natsUrl: server.url, hostId: "bench", partitions: 256 });
  await using echo = await spawnTs("echo", "bench/echo_responder.ts", {
    readyLine: "echo responder ready",
    env: { NATS_URL: server.url },
  });
  const nc = await connect({ servers: server.url, name: "bench-caller" });
  const subjects = createSubjects({ partitions: 256 });
  const payload = { text: "hello", n: 42 };
  const raw = encodeBody(payload);
  const tenants = Array.from({ length: 64 }, (_, i) => `bench-tenant-${i}`);
  // Activate every tenant's actor first, so the runs measure steady-state turns.
  await Promise.all(
    tenants.map((t) => requestReply(nc, subjects.tenantOp(t, "echo"), payload, { tenant: t })),
  );

  const table: BenchResult["table"] = [];
  const summary: BenchResult["summary"] = {};
  for (const concurrency of [1, 64]) {
    const bare = await closedLoop(() => nc.request("bench.echo", raw, { timeout: 5000 }), {
      concurrency,
      durationMs,
      warmupMs,
    });
    const runtime = await closedLoop(
      (worker) => {
        const tenant = tenants[worker % tenants.length] as string;
        return requestReply(nc, subjects.tenantOp(tenant, "echo"), payload, { tenant, timeoutMs: 5000 });
      },
      { concurrency, durationMs, warmupMs },
    );
    const ratio = Math.round((runtime.ops_per_s / bare.ops_per_s) * 1000) / 1000;
    table.push({ path: "bare nats echo", concurrency, ...bare });
    table.push({ path: "actor runtime", concurrency, ...runtime, ratio_vs_bare: ratio });
    summary[`bare_c${concurrency}_ops_per_s`] = bare.ops_per_s;
    summary[`bare_c${concurrency}_p50_ms`] = bare.p50_ms;
    summary[`bare_c${concurrency}_p99_ms`] = bare.p99_ms;
    summary[`runtime_c${concurrency}_ops_per_s`] = runtime.ops_per_s;
    summary[`runtime_c${concurrency}_p50_ms`] = runtime.p50_ms;
    summary[`runtime_c${concurrency}_p99_ms`] = runtime.p99_ms;
    summary[`ratio_runtime_over_bare_c${concurrency}`] = ratio;
    summary[`errors_c${concurrency}`] = bare.errors + runtime.errors;
  }
  summary["target_ratio_c64"] = 0.7;
  summary["meets_target"] = (summary["ratio_runtime_over_bare_c64"] as number) >= 0.7 ? "yes" : "no";
  await nc.close();
  void host;
  void echo;
  return { summary, table };
}
