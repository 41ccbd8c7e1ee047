/**
 * One chaos run: start the stack, start the load, let it warm up, inject each fault in turn (each
 * held, undone, and followed by a wait until every tenant is served again), stop the load, wait
 * until the platform has no job left in flight, then check (checker.ts).
 */
import { jetstreamManager } from "@nats-io/jetstream";
import { loadavg } from "node:os";
import { connectBus, createSubjects, decodeBody } from "../../bus/index.ts";
import { waitFor } from "../../tests/helpers/deadline.ts";
import type { PostgresTestServer } from "../../tests/helpers/postgres_server.ts";
import { checkChaos } from "./checker.ts";
import type { ChaosReport } from "./checker.ts";
import { FaultInjector } from "./faults.ts";
import type { FaultKind, FaultTimings, InjectedFault } from "./faults.ts";
import { ChaosLoad } from "./load.ts";
import type { ClientRecord } from "./load.ts";
import { ChaosStack } from "./stack.ts";

export interface ChaosPlan {
  /** Names the schemas, slugs and rooms of this run. */
  name: string;
  nats: "single" | "cluster";
  tenants: number;
  voiceTenants: number;
  gateways: number;
  hosts: number;
  workers: number;
  httpThinkMs: number;
  wsPerTenant: number;
  wsThinkMs: number;
  /** WebSocket messages in all; the run goes on (unfaulted) after the faults until they are sent. */
  wsMessages: number;
  /** Load before the first fault. */
  warmupMs: number;
  /** Load between one fault's recovery and the next fault, at least. */
  calmMs: number;
  /** The longest wait for every tenant to be served again after a fault. */
  settleTimeoutMs: number;
  faults: FaultKind[];
  timings: FaultTimings;
  /** Voice triggers in all, spread over the faults. */
  voiceTriggers: number;
  tokenDelayMs: number;
  postgres?: PostgresTestServer;
  log?: (line: string) => void;
}

export interface ChaosRun {
  plan: Omit<ChaosPlan, "postgres" | "log">;
  report: ChaosReport;
  seconds: number;
  /** Faults after which some tenant was still not served when the settle timeout ran out. */
  unsettled: string[];
  /** Platform processes not running at the end (every process the run killed was restarted). */
  crashed: string[];
  /** Cluster runs: each stream's replicas at the end (every stream and KV bucket should have 3). */
  stream_replicas?: Record<string, number>;
  load_average_1m_end: number;
  records: ClientRecord[];
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export async function runChaos(plan: ChaosPlan): Promise<ChaosRun> {
  const log = plan.log ?? (() => undefined);
  const started = performance.now();
  await using stack = await ChaosStack.start({
    nats: plan.nats,
    tenants: plan.tenants,
    voiceTenants: plan.voiceTenants,
    gateways: plan.gateways,
    hosts: plan.hosts,
    workers: plan.workers,
    tokenDelayMs: plan.tokenDelayMs,
    name: plan.name,
    log,
    ...(plan.postgres === undefined ? {} : { postgres: plan.postgres }),
  });
  const t0 = performance.now();
  const load = new ChaosLoad(
    {
      tenants: stack.tenants,
      gatewayUrls: stack.gatewayUrls(),
      httpThinkMs: plan.httpThinkMs,
      wsPerTenant: plan.wsPerTenant,
      wsThinkMs: plan.wsThinkMs,
      wsMessages: plan.wsMessages,
    },
    t0,
  );
  const injector = new FaultInjector(stack, plan.timings, () => load.now());
  const injected: InjectedFault[] = [];
  const unsettled: string[] = [];
  const voiceTenants = stack.tenants.filter((t) => t.voice);
  const voice: Array<Promise<ClientRecord>> = [];
  let voiceSent = 0;
  const triggerVoice = (): void => {
    const tenant = voiceTenants[voiceSent % Math.max(1, voiceTenants.length)];
    if (tenant === undefined || voiceSent >= plan.voiceTriggers) return;
    voiceSent += 1;
    voice.push(load.voice(tenant, `chaos-${plan.name}`));
  };

  /** Every tenant has a success of a text request sent at or after `since`. */
  const everyTenantServed = (since: number): boolean => {
    const served = new Set<number>();
    for (const r of load.records) {
      if (r.channel !== "voice" && r.outcome === "accepted" && r.sentAt >= since) served.add(r.tenant);
    }
    return served.size === stack.tenants.length;
  };

  load.start();
  try {
    await sleep(plan.warmupMs);
    triggerVoice();
    for (const kind of plan.faults) {
      log(`chaos: ${kind} at ${(load.now() / 1000).toFixed(1)} s (load ${loadavg()[0]?.toFixed(1)})`);
      const fault = await injector.run(kind);
      injected.push(fault);
      triggerVoice();
      try {
        await waitFor(`every tenant served again after ${kind}`, () => everyTenantServed(fault.recoveredAt), {
          timeoutMs: plan.settleTimeoutMs,
          intervalMs: 100,
        });
      } catch (err) {
        log(`chaos: ${(err as Error).message}`);
        unsettled.push(kind);
      }
      await sleep(plan.calmMs);
    }
    while (voiceSent < plan.voiceTriggers) triggerVoice();
    // The rest of the chat messages, without faults.
    if (load.wsLeft > 0) {
      log(`chaos: faults done; ${load.wsLeft} chat messages still to send`);
      await waitFor("the chat messages to be sent", () => load.wsLeft <= 0, {
        timeoutMs: 600_000,
        intervalMs: 250,
      });
    }
  } finally {
    await load.stop();
    await Promise.allSettled(voice);
  }
  log(`chaos: load stopped at ${(load.now() / 1000).toFixed(1)} s; ${load.records.length} requests`);

  const subjects = createSubjects({ partitions: stack.partitions });
  const nc = await connectBus({ servers: stack.natsUrl, name: "chaos-checker" });
  let report: ChaosReport;
  try {
    const jsm = await jetstreamManager(nc);
    // Nothing in flight any more: no job waiting for a worker or held by one unacked.
    await waitFor(
      "every dispatched job to finish",
      async () => {
        for (const durable of [`${subjects.prefix}-workers`, `${subjects.prefix}-workers-voice`]) {
          const info = await jsm.consumers.info(subjects.streams.dispatch, durable);
          if (info.num_pending > 0 || info.num_ack_pending > 0) return false;
        }
        return true;
      },
      { timeoutMs: 120_000, intervalMs: 250 },
    );
    report = await checkChaos({
      databaseUrl: stack.postgres.url,
      tenants: stack.tenants,
      records: load.records,
      faults: injected,
      voiceJoined: async (tenantId, jobId) => {
        try {
          const msg = await jsm.streams.getMessage(subjects.streams.events, {
            last_by_subj: subjects.jobEvent(tenantId, jobId, "joined"),
          });
          return msg !== null && typeof decodeBody(msg.data) === "object";
        } catch (err) {
          if (err instanceof Error && /no message found/i.test(err.message)) return false;
          throw err;
        }
      },
    });
  } finally {
    await nc.close();
  }
  const crashed = stack.crashed();
  let streamReplicas: Record<string, number> | undefined;
  if (stack.cluster !== undefined) {
    streamReplicas = {};
    // A stream with one replica lives on one node only: every node is asked.
    for (const node of stack.cluster.nodes) {
      for (const stream of await stack.cluster.streamsOn(node.name)) {
        streamReplicas[stream.name] = stream.config?.num_replicas ?? 0;
      }
    }
  }
  return {
    ...(streamReplicas === undefined ? {} : { stream_replicas: streamReplicas }),
    plan: withoutRuntime(plan),
    report,
    seconds: Math.round((performance.now() - started) / 100) / 10,
    unsettled,
    crashed,
    load_average_1m_end: Math.round((loadavg()[0] ?? 0) * 100) / 100,
    records: load.records,
  };
}

function withoutRuntime(plan: ChaosPlan): Omit<ChaosPlan, "postgres" | "log"> {
  const { postgres: _postgres, log: _log, ...rest } = plan;
  return rest;
}
