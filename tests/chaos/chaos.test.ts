/**
 * The bounded chaos run inside `npm test` (the full one is `npm run chaos`, bench/chaos.ts): the
 * real processes under HTTP, WebSocket and voice load while each fault happens in turn and then
 * several at once, then the checker's verdict from the tenants' databases and the clients' logs.
 * The unavailability windows are measured and printed, never asserted (bench/ is for speed).
 */
import { describe, expect, it } from "vitest";
import { FAILOVER_BOUNDS_MS } from "../../bench/chaos/checker.ts";
import type { ChaosReport } from "../../bench/chaos/checker.ts";
import { runChaos } from "../../bench/chaos/scenario.ts";
import type { ChaosPlan, ChaosRun } from "../../bench/chaos/scenario.ts";

const timings = { stopHoldMs: 3000, hostStopHoldMs: 4500, downMs: 1000, providerFaultMs: 3000 };

function plan(overrides: Partial<ChaosPlan> & Pick<ChaosPlan, "name" | "nats" | "faults">): ChaosPlan {
  return {
    tenants: 4,
    voiceTenants: 0,
    gateways: 2,
    hosts: 2,
    workers: 2,
    httpThinkMs: 200,
    wsPerTenant: 1,
    wsThinkMs: 50,
    wsMessages: 200,
    warmupMs: 2000,
    calmMs: 500,
    settleTimeoutMs: 45_000,
    timings,
    voiceTriggers: 0,
    tokenDelayMs: 10,
    ...overrides,
  };
}

/** What every chaos run must show, whatever its faults. */
function expectNothingLostOrCrossed(run: ChaosRun): void {
  const r: ChaosReport = run.report;
  console.log(
    JSON.stringify({
      sent: r.sent,
      accepted: r.accepted,
      rejected: r.rejected,
      interrupted: r.interrupted,
      in_doubt: r.in_doubt,
      windows: r.faults.map((f) => [f.fault, f.window_ms, f.slowest_tenant_window_ms]),
    }),
  );
  expect(run.crashed, "platform processes that died on their own").toEqual([]);
  expect(run.unsettled, "faults after which some tenant was never served again").toEqual([]);
  expect(r.examples.lost, "accepted messages without their user and agent turn").toEqual([]);
  expect(r.lost).toBe(0);
  expect(r.examples.duplicated, "messages recorded more than once").toEqual([]);
  expect(r.duplicated).toBe(0);
  expect(r.half_turns).toBe(0);
  expect(r.examples.cross_tenant, "a tenant's rows naming another tenant's message").toEqual([]);
  expect(r.cross_tenant).toBe(0);
  expect(r.wrong_replies, "replies that are not about the client's own message").toBe(0);
  expect(r.unknown_rows).toBe(0);
  expect(r.wrong_turn_ids).toBe(0);
  expect(r.rejected_without_code, "rejections without an error code").toBe(0);
  expect(r.rejected["SF_ERR_INTERNAL"] ?? 0, "rejections that are bugs (500)").toBe(0);
  expect(r.rejected_but_recorded, "rejections that say 'not run' for a message that was").toEqual({});
  // Each fault was followed by successes (the run was not all errors).
  for (const f of r.faults) expect(f.window_ms, `${f.fault}: a success after it`).not.toBeNull();
  expect(r.accepted).toBeGreaterThan(r.sent / 2);
}

describe("chaos under load", () => {
  it("chaos - one nats-server: workers, hosts and gateways killed and stopped, NATS and PostgreSQL restarted, provider faults, then all at once: nothing lost, duplicated or crossed", async () => {
    const run = await runChaos(
      plan({
        name: `chaos_test_${process.pid}_s`,
        nats: "single",
        voiceTenants: 1,
        voiceTriggers: 1,
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
          "mixed",
        ],
      }),
    );
    expectNothingLostOrCrossed(run);
    const r = run.report;
    expect(Object.keys(r.by_channel).sort()).toEqual(["http_v1", "http_v2", "voice", "ws"]);
    // Provider faults reach the client as the provider's error code, never as a 500.
    expect(Object.keys(r.answers_by_code).some((code) => code.startsWith("SF_ERR_PROVIDER_"))).toBe(true);
    expect(r.voice.accepted).toBe(r.voice.sent);
    expect(r.voice.agent_joined).toBe(r.voice.accepted);
  }, 240_000);

  it("chaos - 3-node NATS cluster: the node leading the dispatch stream killed and restarted under text load: nothing lost or answered twice", async () => {
    const run = await runChaos(
      plan({
        name: `chaos_test_${process.pid}_c`,
        nats: "cluster",
        tenants: 3,
        wsMessages: 100,
        faults: ["nats_node_kill"],
      }),
    );
    expectNothingLostOrCrossed(run);
    // Service resumes within the failover bound: every tenant is served again in time.
    const kills = run.report.faults.filter((f) => f.fault === "nats_node_kill");
    expect(kills.length).toBeGreaterThan(0);
    for (const f of kills) {
      expect(f.bound_ms).toBe(FAILOVER_BOUNDS_MS["nats_node_kill"]);
      expect(f.within_bound, `every tenant served again within the bound: ${JSON.stringify(f)}`).toBe(true);
    }
    // Every stream and KV bucket the platform made (the gateways' rate limits included) has 3 replicas.
    const replicas = run.stream_replicas ?? {};
    expect(Object.keys(replicas)).toEqual(expect.arrayContaining(["SF_DISPATCH", "SF_EVENTS", "KV_sf_rate"]));
    for (const [stream, n] of Object.entries(replicas)) expect(n, stream).toBe(3);
  }, 120_000);
});
