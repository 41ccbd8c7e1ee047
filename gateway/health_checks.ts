/**
 * `/health/detailed`: each dependency is checked in parallel under its own deadline, and a
 * check that fails or runs out of time reports `ok: false` with an error code instead of
 * failing the whole answer.
 */
import { jetstreamManager, JetStreamApiCodes, JetStreamApiError } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { Svcm } from "@nats-io/services";
import { errors } from "@nats-io/transport-node";
import type { NatsConnection } from "@nats-io/transport-node";
import { BusErrorCodes, requestReply, SfError } from "../bus/index.ts";
import type { Subjects } from "../bus/index.ts";
import type { GatewayMetrics } from "./metrics.ts";

export interface HealthTimeouts {
  natsMs: number;
  jetstreamMs: number;
  actorHostsMs: number;
  workersMs: number;
  platformDbMs: number;
}

export const DEFAULT_HEALTH_TIMEOUTS: Readonly<HealthTimeouts> = Object.freeze({
  natsMs: 1000,
  jetstreamMs: 1500,
  actorHostsMs: 1000,
  workersMs: 1500,
  platformDbMs: 2000,
});

/** The NATS services name actor hosts register under (actors/runtime/actor_host.ts). */
export const ACTOR_HOST_SERVICE = "sf-actor-host";

export interface HealthDeps {
  nc: NatsConnection;
  subjects: Subjects;
  metrics: GatewayMetrics;
  timeouts?: Partial<HealthTimeouts>;
}

interface Failed {
  ok: false;
  error: string;
  latency_ms: number;
}

export type NatsCheck = { ok: true; latency_ms: number } | Failed;
export type JetStreamCheck =
  | { ok: boolean; streams: Record<string, boolean>; latency_ms: number }
  | (Failed & { streams: Record<string, boolean> });
export interface ActorHostInfo {
  id: string;
  partitions: number[];
}
export type ActorHostsCheck =
  | { ok: boolean; count: number; hosts: ActorHostInfo[]; latency_ms: number }
  | (Failed & { count: 0; hosts: [] });
export type WorkersCheck = { ok: boolean; count: number; latency_ms: number } | (Failed & { count: 0 });
export type PlatformDbCheck = { ok: boolean; latency_ms: number; error?: string };

export interface DetailedHealth {
  status: "healthy" | "degraded";
  checks: {
    nats: NatsCheck;
    jetstream: JetStreamCheck;
    actor_hosts: ActorHostsCheck;
    workers: WorkersCheck;
    platform_db: PlatformDbCheck;
  };
}

class CheckTimeoutError extends SfError {
  override name = "CheckTimeoutError";
  constructor(what: string, ms: number) {
    super(BusErrorCodes.TIMEOUT, `${what} did not answer within ${ms} ms`, { retryable: true });
  }
}

function elapsedMs(started: number): number {
  return Math.round((performance.now() - started) * 1000) / 1000;
}

function codeOf(err: unknown): string {
  if (err instanceof SfError) return err.code;
  if (err instanceof errors.ClosedConnectionError || err instanceof errors.DrainingConnectionError) {
    return BusErrorCodes.CONNECTION_CLOSED;
  }
  if (err instanceof errors.TimeoutError) return BusErrorCodes.TIMEOUT;
  if (isNoResponders(err)) return BusErrorCodes.NO_RESPONDERS;
  return BusErrorCodes.UNAVAILABLE;
}

function isNoResponders(err: unknown): boolean {
  if (err instanceof errors.NoRespondersError) return true;
  return err instanceof errors.RequestError && err.isNoResponders();
}

/** Runs `check` under a deadline; a failure or timeout becomes `{ ok: false, error }` plus `extra`. */
async function guarded<T, E extends object>(
  what: string,
  ms: number,
  check: (started: number) => Promise<T>,
  extra: E,
): Promise<T | (Failed & E)> {
  const started = performance.now();
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new CheckTimeoutError(what, ms)), ms);
  });
  try {
    return await Promise.race([check(started), deadline]);
  } catch (err) {
    return { ...extra, ok: false, error: codeOf(err), latency_ms: elapsedMs(started) };
  } finally {
    clearTimeout(timer);
  }
}

export async function checkNats(deps: HealthDeps, ms: number): Promise<NatsCheck> {
  return guarded(
    "nats",
    ms,
    async () => {
      const rttMs = await deps.nc.rtt();
      deps.metrics.natsRtt.observe(rttMs / 1000);
      return { ok: true as const, latency_ms: rttMs };
    },
    {},
  );
}

export async function checkJetStream(deps: HealthDeps, ms: number): Promise<JetStreamCheck> {
  const names = [deps.subjects.streams.dispatch, deps.subjects.streams.events];
  const none = Object.fromEntries(names.map((n) => [n, false]));
  return guarded(
    "jetstream",
    ms,
    async (started) => {
      const jsm = await jetstreamManager(deps.nc, { checkAPI: false });
      const found = await Promise.all(
        names.map(async (name) => {
          try {
            await jsm.streams.info(name);
            return true;
          } catch (err) {
            if (err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamNotFound)
              return false;
            throw err;
          }
        }),
      );
      const streams = Object.fromEntries(names.map((n, i) => [n, found[i] === true]));
      return { ok: found.every(Boolean), streams, latency_ms: elapsedMs(started) };
    },
    { streams: none },
  );
}

function hostFromStats(data: unknown): ActorHostInfo | undefined {
  if (typeof data !== "object" || data === null) return undefined;
  const d = data as Record<string, unknown>;
  const partitions = d["partitions"];
  if (typeof d["host"] !== "string" || !Array.isArray(partitions)) return undefined;
  if (!partitions.every((p) => Number.isInteger(p))) return undefined;
  return { id: d["host"], partitions: [...(partitions as number[])].sort((a, b) => a - b) };
}

export async function checkActorHosts(deps: HealthDeps, ms: number): Promise<ActorHostsCheck> {
  return guarded(
    "actor hosts",
    ms,
    async (started) => {
      const hosts: ActorHostInfo[] = [];
      // Every host answers STATS; the call ends 100 ms after the last answer (or at maxWait).
      const client = new Svcm(deps.nc).client({
        strategy: "stall",
        stall: 100,
        maxWait: Math.max(1, ms - 50),
      });
      try {
        for await (const stats of await client.stats(ACTOR_HOST_SERVICE)) {
          // Hosts of other deployments on the same account carry another prefix.
          if (stats.metadata?.["prefix"] !== deps.subjects.prefix) continue;
          // The host's stats handler fills each endpoint's `data` with { host, partitions, ... }.
          const host = (stats.endpoints ?? []).map((e) => hostFromStats(e.data)).find((h) => h !== undefined);
          if (host !== undefined) hosts.push(host);
        }
      } catch (err) {
        if (!isNoResponders(err)) throw err;
      }
      hosts.sort((a, b) => a.id.localeCompare(b.id));
      return { ok: hosts.length > 0, count: hosts.length, hosts, latency_ms: elapsedMs(started) };
    },
    { count: 0 as const, hosts: [] as [] },
  );
}

export async function checkWorkers(deps: HealthDeps, ms: number): Promise<WorkersCheck> {
  return guarded(
    "workers",
    ms,
    async (started) => {
      const kv = await new Kvm(deps.nc).open(deps.subjects.buckets.workers);
      const seen = new Set<string>();
      for await (const key of await kv.keys()) seen.add(key);
      return { ok: seen.size > 0, count: seen.size, latency_ms: elapsedMs(started) };
    },
    { count: 0 as const },
  );
}

function platformDbFrom(body: unknown): PlatformDbCheck | undefined {
  if (typeof body !== "object" || body === null) return undefined;
  const db = (body as Record<string, unknown>)["platform_db"];
  if (typeof db !== "object" || db === null) return undefined;
  const d = db as Record<string, unknown>;
  if (typeof d["ok"] !== "boolean" || typeof d["latency_ms"] !== "number") return undefined;
  const out: PlatformDbCheck = { ok: d["ok"], latency_ms: d["latency_ms"] };
  if (typeof d["error"] === "string") out.error = d["error"];
  return out;
}

/** Asks any actor host (`<prefix>.platform.health`) how the platform database is doing. */
export async function checkPlatformDb(deps: HealthDeps, ms: number): Promise<PlatformDbCheck> {
  return guarded(
    "platform db",
    ms + 100,
    async () => {
      const reply = await requestReply(deps.nc, deps.subjects.platformOp("health"), {}, { timeoutMs: ms });
      const db = platformDbFrom(reply.body);
      if (db === undefined) {
        throw new SfError(BusErrorCodes.BAD_MESSAGE, "platform health reply has no platform_db object");
      }
      return db;
    },
    {},
  );
}

export async function detailedHealth(deps: HealthDeps): Promise<DetailedHealth> {
  const t = { ...DEFAULT_HEALTH_TIMEOUTS, ...deps.timeouts };
  const [nats, jetstream, actorHosts, workers, platformDb] = await Promise.all([
    checkNats(deps, t.natsMs),
    checkJetStream(deps, t.jetstreamMs),
    checkActorHosts(deps, t.actorHostsMs),
    checkWorkers(deps, t.workersMs),
    checkPlatformDb(deps, t.platformDbMs),
  ]);
  const checks = { nats, jetstream, actor_hosts: actorHosts, workers, platform_db: platformDb };
  const healthy = Object.values(checks).every((c) => c.ok);
  return { status: healthy ? "healthy" : "degraded", checks };
}
