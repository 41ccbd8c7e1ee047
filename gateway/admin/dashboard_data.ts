/**
 * What the console's dashboard shows, read from the running platform each time (no fixture, no
 * cache): tenants by status (platform op `clients-count`), actor hosts and their partitions (the
 * `sf-actor-host` NATS service, as /health/detailed reads it), workers (their capacity records in
 * KV `<prefix>_workers` joined with the `sf-agent-worker` service's slots and provider errors),
 * and the last minute of confirmed dispatch (every host's `sf-dispatch` window, merged). Each
 * part is read under its own deadline; one that fails shows its error code and the rest still
 * render.
 */
import { Kvm } from "@nats-io/kv";
import { Svcm } from "@nats-io/services";
import { errors } from "@nats-io/transport-node";
import {
  DISPATCH_SERVICE,
  mergeDispatchWindows,
  parseDispatchWindow,
  parseWorkerStats,
  PlatformOps,
  WORKER_SERVICE,
} from "../../actors/index.ts";
import type {
  ClientsCountReply,
  DispatchSummary,
  DispatchWindow,
  ProviderErrorCount,
  WorkerStatsReply,
} from "../../actors/index.ts";
import { BusErrorCodes, decodeBody, SfError } from "../../bus/index.ts";
import type { ActorClient } from "../actor_client.ts";
import { publicError } from "../error_status.ts";
import { checkActorHosts, checkJetStream, checkNats, DEFAULT_HEALTH_TIMEOUTS } from "../health_checks.ts";
import type { ActorHostInfo, HealthDeps, JetStreamCheck, NatsCheck } from "../health_checks.ts";
import type { GatewayRequest } from "../http_types.ts";

/** A part of the dashboard: its data, or the error code and message it failed with. */
export type Part<T> = { ok: true; value: T } | { ok: false; code: string; message: string };

/** A worker's capacity record (agent-worker/worker/capacity.ts), the fields the dashboard shows. */
export interface WorkerCapacityView {
  slots: number | null;
  in_flight: number | null;
  free_slots: number | null;
  voice_slots: number | null;
  voice_in_flight: number | null;
  free_voice_slots: number | null;
  rss_mb: number | null;
  free_memory_mb: number | null;
  admitting: boolean | null;
  admitting_voice: boolean | null;
  saturated: boolean | null;
  saturated_by: string[];
  event_loop_delay_ms: number | null;
  cpu_ratio: number | null;
  /** Epoch ms of the record. */
  at: number | null;
}

export interface WorkerRow {
  id: string;
  /** From KV; absent when the worker's record is gone (stopping) while its service still answers. */
  capacity?: WorkerCapacityView;
  /** From the worker's NATS service; absent for a worker that does not serve it. */
  stats?: WorkerStatsReply;
}

export interface ProviderErrorRow {
  provider: string;
  total: number;
  by_code: Array<{ kind: string; code: string; count: number }>;
}

export interface DashboardData {
  /** Epoch ms the data was read. */
  at: number;
  nats: NatsCheck;
  jetstream: JetStreamCheck;
  tenants: Part<ClientsCountReply>;
  hosts: Part<ActorHostInfo[]>;
  workers: Part<WorkerRow[]>;
  dispatch: Part<DispatchSummary>;
  /** Summed over the live workers (each since it started). */
  providerErrors: Part<{ rows: ProviderErrorRow[]; workers: number }>;
}

export interface DashboardDeps {
  health: HealthDeps;
  actors: ActorClient;
}

/** How long the service discovery waits for answers (it ends 100 ms after the last one). */
const SERVICE_WAIT_MS = 1000;
const KV_WAIT_MS = 1500;

class PartTimeoutError extends SfError {
  override name = "PartTimeoutError";
  constructor(what: string, ms: number) {
    super(BusErrorCodes.TIMEOUT, `${what} did not answer within ${ms} ms`, { retryable: true });
  }
}

async function part<T>(what: string, ms: number, read: () => Promise<T>): Promise<Part<T>> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new PartTimeoutError(what, ms)), ms);
  });
  try {
    return { ok: true, value: await Promise.race([read(), deadline]) };
  } catch (err) {
    const e = publicError(err);
    return { ok: false, code: e.code, message: e.message };
  } finally {
    clearTimeout(timer);
  }
}

function isNoResponders(err: unknown): boolean {
  if (err instanceof errors.NoRespondersError) return true;
  return err instanceof errors.RequestError && err.isNoResponders();
}

/** The `data` of every endpoint of every instance of service `name` of this deployment (`prefix`). */
async function serviceData(deps: HealthDeps, name: string): Promise<unknown[]> {
  const client = new Svcm(deps.nc).client({ strategy: "stall", stall: 100, maxWait: SERVICE_WAIT_MS });
  const out: unknown[] = [];
  try {
    for await (const stats of await client.stats(name)) {
      if (stats.metadata?.["prefix"] !== deps.subjects.prefix) continue;
      for (const e of stats.endpoints ?? []) if (e.data !== undefined && e.data !== null) out.push(e.data);
    }
  } catch (err) {
    if (!isNoResponders(err)) throw err;
  }
  return out;
}

const num = (v: Record<string, unknown>, k: string): number | null =>
  typeof v[k] === "number" && Number.isFinite(v[k]) ? v[k] : null;
const bool = (v: Record<string, unknown>, k: string): boolean | null =>
  typeof v[k] === "boolean" ? v[k] : null;

/** A capacity record as stored in KV (msgpack); fields it lacks are null. */
export function capacityView(value: unknown): WorkerCapacityView | undefined {
  if (typeof value !== "object" || value === null) return undefined;
  const v = value as Record<string, unknown>;
  const causes = Array.isArray(v["saturated_by"])
    ? v["saturated_by"].filter((c): c is string => typeof c === "string").slice(0, 8)
    : [];
  return {
    slots: num(v, "slots"),
    in_flight: num(v, "in_flight"),
    free_slots: num(v, "free_slots"),
    voice_slots: num(v, "voice_slots"),
    voice_in_flight: num(v, "voice_in_flight"),
    free_voice_slots: num(v, "free_voice_slots"),
    rss_mb: num(v, "rss_mb"),
    free_memory_mb: num(v, "free_memory_mb"),
    admitting: bool(v, "admitting"),
    admitting_voice: bool(v, "admitting_voice"),
    saturated: bool(v, "saturated"),
    saturated_by: causes,
    event_loop_delay_ms: num(v, "event_loop_delay_ms"),
    cpu_ratio: num(v, "cpu_ratio"),
    at: num(v, "at"),
  };
}

async function readCapacities(deps: HealthDeps): Promise<Map<string, WorkerCapacityView>> {
  const kv = await new Kvm(deps.nc).open(deps.subjects.buckets.workers);
  const keys: string[] = [];
  for await (const key of await kv.keys()) keys.push(key);
  const out = new Map<string, WorkerCapacityView>();
  await Promise.all(
    keys.map(async (key) => {
      const entry = await kv.get(key);
      if (entry === null || entry.operation !== "PUT" || entry.value.length === 0) return;
      const view = capacityView(decodeBody(entry.value));
      if (view !== undefined) out.set(key, view);
    }),
  );
  return out;
}

async function readWorkerStats(deps: HealthDeps): Promise<WorkerStatsReply[]> {
  return (await serviceData(deps, WORKER_SERVICE))
    .map(parseWorkerStats)
    .filter((s): s is WorkerStatsReply => s !== undefined);
}

/** Workers by id: the union of capacity records and service answers. */
function joinWorkers(
  capacities: Map<string, WorkerCapacityView>,
  stats: readonly WorkerStatsReply[],
): WorkerRow[] {
  const rows = new Map<string, WorkerRow>();
  for (const [id, capacity] of capacities) rows.set(id, { id, capacity });
  for (const s of stats) rows.set(s.worker, { ...rows.get(s.worker), id: s.worker, stats: s });
  return [...rows.values()].sort((a, b) => a.id.localeCompare(b.id));
}

export function providerErrorRows(stats: readonly WorkerStatsReply[]): ProviderErrorRow[] {
  const byProvider = new Map<string, Map<string, ProviderErrorCount>>();
  for (const s of stats) {
    for (const e of s.provider_errors) {
      let codes = byProvider.get(e.provider);
      if (codes === undefined) {
        codes = new Map();
        byProvider.set(e.provider, codes);
      }
      const key = `${e.kind}/${e.code}`;
      const seen = codes.get(key);
      codes.set(key, { ...e, count: (seen?.count ?? 0) + e.count });
    }
  }
  return [...byProvider.entries()]
    .map(([provider, codes]) => {
      const by_code = [...codes.values()]
        .map(({ kind, code, count }) => ({ kind, code, count }))
        .sort((a, b) => b.count - a.count);
      return { provider, total: by_code.reduce((n, c) => n + c.count, 0), by_code };
    })
    .sort((a, b) => b.total - a.total || a.provider.localeCompare(b.provider));
}

/** Everything the dashboard shows, each part read in parallel under its own deadline. */
export async function readDashboard(deps: DashboardDeps, req: GatewayRequest): Promise<DashboardData> {
  const h = deps.health;
  const t = { ...DEFAULT_HEALTH_TIMEOUTS, ...h.timeouts };
  const workerStats = part("agent workers", SERVICE_WAIT_MS + 500, () => readWorkerStats(h));
  const [nats, jetstream, tenants, hosts, capacities, stats, dispatch] = await Promise.all([
    checkNats(h, t.natsMs),
    checkJetStream(h, t.jetstreamMs),
    part("the platform", t.platformDbMs, () =>
      deps.actors.platform<ClientsCountReply>(PlatformOps.clientsCount, {}, req),
    ),
    part("actor hosts", SERVICE_WAIT_MS + 500, async () => {
      const check = await checkActorHosts(h, SERVICE_WAIT_MS);
      if ("error" in check) throw new SfError(check.error, "the actor hosts could not be listed");
      return check.hosts;
    }),
    part("the workers bucket", KV_WAIT_MS, () => readCapacities(h)),
    workerStats,
    part("actor hosts' dispatch", SERVICE_WAIT_MS + 500, async () =>
      mergeDispatchWindows(
        (await serviceData(h, DISPATCH_SERVICE))
          .map(parseDispatchWindow)
          .filter((w): w is DispatchWindow => w !== undefined),
      ),
    ),
  ]);
  const workers: Part<WorkerRow[]> = capacities.ok
    ? { ok: true, value: joinWorkers(capacities.value, stats.ok ? stats.value : []) }
    : capacities;
  const providerErrors: DashboardData["providerErrors"] = stats.ok
    ? { ok: true, value: { rows: providerErrorRows(stats.value), workers: stats.value.length } }
    : stats;
  return { at: Date.now(), nats, jetstream, tenants, hosts, workers, dispatch, providerErrors };
}
