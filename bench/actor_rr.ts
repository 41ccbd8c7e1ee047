/**
 * actor-rr: request/reply to a tenant actor through the runtime (lease check, envelope,
 * mailbox turn, fenced owner, reply) versus a bare NATS request/reply echo, both served by a
 * separate process on the same nats-server, at 1 and 64 concurrent callers.
 */
import { connectBus, createSubjects, encodeBody, requestReply } from "../bus/index.ts";
import { NatsTestServer } from "../tests/helpers/nats_server.ts";
import { spawnActorHost, spawnTs } from "../tests/helpers/processes.ts";
import { closedLoop, cpuPerOp } from "./harness.ts";
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
  const nc = await connectBus({ servers: server.url, name: "bench-caller" });
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
    // CPU per request of each process, so the comparison holds even on a busy machine.
    const bare = await cpuPerOp({ caller: process.pid, nats_server: server.pid, responder: echo.pid }, () =>
      closedLoop(() => nc.request("bench.echo", raw, { timeout: 5000 }), {
        concurrency,
        durationMs,
        warmupMs,
      }),
    );
    const envelope = await cpuPerOp(
      { caller: process.pid, nats_server: server.pid, responder: echo.pid },
      () =>
        closedLoop(() => requestReply(nc, "bench.envelope", payload, { tenant: "t", timeoutMs: 5000 }), {
          concurrency,
          durationMs,
          warmupMs,
        }),
    );
    const runtime = await cpuPerOp(
      { caller: process.pid, nats_server: server.pid, responder: host.pid },
      () =>
        closedLoop(
          (worker) => {
            const tenant = tenants[worker % tenants.length] as string;
            return requestReply(nc, subjects.tenantOp(tenant, "echo"), payload, { tenant, timeoutMs: 5000 });
          },
          { concurrency, durationMs, warmupMs },
        ),
    );
    const ratio = Math.round((runtime.ops_per_s / bare.ops_per_s) * 1000) / 1000;
    const row = (path: string, r: typeof bare, extra: Record<string, number> = {}) => ({
      path,
      concurrency,
      ops_per_s: r.ops_per_s,
      p50_ms: r.p50_ms,
      p99_ms: r.p99_ms,
      errors: r.errors,
      cpu_us_caller: r.cpu_us_per_op["caller"] as number,
      cpu_us_server: r.cpu_us_per_op["nats_server"] as number,
      cpu_us_responder: r.cpu_us_per_op["responder"] as number,
      ...extra,
    });
    table.push(row("bare nats echo", bare));
    table.push(
      row("echo with our envelope", envelope, {
        ratio_vs_bare: Math.round((envelope.ops_per_s / bare.ops_per_s) * 1000) / 1000,
      }),
    );
    table.push(row("actor runtime", runtime, { ratio_vs_bare: ratio }));
    summary[`envelope_c${concurrency}_ops_per_s`] = envelope.ops_per_s;
    for (const [name, r] of [
      ["bare", bare],
      ["envelope", envelope],
      ["runtime", runtime],
    ] as const) {
      const cpu = r.cpu_us_per_op;
      summary[`${name}_c${concurrency}_cpu_us_per_op_total`] =
        Math.round(((cpu["caller"] ?? 0) + (cpu["nats_server"] ?? 0) + (cpu["responder"] ?? 0)) * 10) / 10;
    }
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
