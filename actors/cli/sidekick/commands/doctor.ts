/**
 * `doctor`: checks the running platform from the outside, as an operator would, each check
 * under its own deadline and reported ok / warn / fail with its latency:
 * - NATS: connection and round trip;
 * - JetStream: the streams SF_DISPATCH, SF_EVENTS and SF_INGEST, with their consumers' pending
 *   and unacknowledged counts;
 * - actor hosts (KV `<prefix>_members`) and the partitions each holds (KV `<prefix>_leases`);
 * - agent workers and their capacity (KV `<prefix>_workers`);
 * - the platform operations and database (`<prefix>.platform.health`);
 * - per tenant (all, or `--client`): its database, through the owner of the tenant
 *   (`agents-list`); whether LiveKit credentials are configured (the secrets themselves stay in
 *   the actor hosts, so they are not tried); and each provider its agents and embedding settings
 *   name, with a cheap real call made by an agent worker (`<prefix>.workers.provider-check`),
 *   the process that calls providers for jobs.
 * Exit code 1 when any check fails; warnings alone exit 0.
 */
import { jetstreamManager } from "@nats-io/jetstream";
import type { ConsumerInfo } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { BusErrorCodes, decodeBody, RemoteError, SfError, toWireError } from "../../../../bus/index.ts";
import type { WireError } from "../../../../bus/index.ts";
import { WorkerOps } from "../../../dispatch/worker_ops.ts";
import type { ProviderCheckReply } from "../../../dispatch/worker_ops.ts";
import { PlatformOps } from "../../../platform/messages.ts";
import type { ClientDetailView, ClientView } from "../../../platform/messages.ts";
import type { PlatformHealth } from "../../../platform/platform_service.ts";
import { StoreErrorCodes } from "../../../store/errors.ts";
import { intOption } from "../args.ts";
import type { Command, CommandContext } from "../command.ts";
import { TenantOpNames } from "../ops.ts";
import type { Output } from "../output.ts";
import type { PlatformClient } from "../platform_client.ts";
import { formatTable } from "../table.ts";

export type CheckStatus = "ok" | "warn" | "fail" | "skipped";

export interface CheckRow {
  check: string;
  target: string;
  status: CheckStatus;
  latency_ms: number | null;
  detail: string;
  error?: WireError;
  data?: unknown;
}

export interface DoctorReport {
  ok: boolean;
  summary: Record<CheckStatus, number>;
  checks: CheckRow[];
}

type CheckOutcome = Omit<CheckRow, "check" | "target" | "latency_ms"> & { latency_ms?: number | null };

const round = (value: number): number => Math.round(value * 10) / 10;

/** Runs `fn` under a deadline; a throw or a timeout becomes a failed row. */
async function timed(
  check: string,
  target: string,
  deadlineMs: number,
  fn: () => Promise<CheckOutcome>,
): Promise<CheckRow> {
  const started = performance.now();
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(
      () =>
        reject(
          new SfError(BusErrorCodes.TIMEOUT, `${check} did not answer within ${deadlineMs} ms`, {
            retryable: true,
          }),
        ),
      deadlineMs,
    );
  });
  try {
    const row = await Promise.race([fn(), deadline]);
    return { check, target, latency_ms: round(performance.now() - started), ...row };
  } catch (err) {
    const error = toWireError(err);
    return {
      check,
      target,
      status: "fail",
      latency_ms: round(performance.now() - started),
      detail: `${error.code}: ${error.message}`,
      error,
    };
  } finally {
    clearTimeout(timer);
  }
}

function consumerText(c: ConsumerInfo): string {
  return `${c.name}: ${c.num_pending} pending, ${c.num_ack_pending} unacked, ${c.num_redelivered} redelivered`;
}

async function jetstreamChecks(p: PlatformClient, ms: number): Promise<CheckRow[]> {
  const { streams } = p.subjects;
  const names = [streams.dispatch, streams.events, streams.ingest];
  return Promise.all(
    names.map((name) =>
      timed("jetstream", name, ms, async () => {
        const jsm = await jetstreamManager(p.nc, { checkAPI: false, timeout: ms });
        let info;
        try {
          info = await jsm.streams.info(name);
        } catch (err) {
          if (err instanceof Error && /stream not found/i.test(err.message)) {
            return { status: "fail", detail: "stream missing (no actor host or worker has provisioned it)" };
          }
          throw err;
        }
        const consumers = await jsm.consumers.list(name).next();
        const data = {
          messages: info.state.messages,
          consumers: consumers.map((c) => ({
            name: c.name,
            num_pending: c.num_pending,
            num_ack_pending: c.num_ack_pending,
            num_redelivered: c.num_redelivered,
            num_waiting: c.num_waiting,
          })),
        };
        const text = [`${info.state.messages} messages`, ...consumers.map(consumerText)].join("; ");
        // The work queues need a consumer (workers create it); SF_EVENTS is read by owners as they go.
        const needsConsumer = name !== streams.events;
        if (needsConsumer && consumers.length === 0) {
          return { status: "warn", detail: `${text}; no consumer yet (no worker has started)`, data };
        }
        return { status: "ok", detail: text, data };
      }),
    ),
  );
}

async function kvEntries(p: PlatformClient, bucket: string): Promise<Map<string, unknown>> {
  const kv = await new Kvm(p.nc).open(bucket);
  const keys: string[] = [];
  for await (const key of await kv.keys()) keys.push(key);
  const out = new Map<string, unknown>();
  for (const key of keys.sort()) {
    const entry = await kv.get(key);
    if (entry === null || entry.operation !== "PUT") continue;
    out.set(key, decodeBody(entry.value));
  }
  return out;
}

function actorHostsCheck(p: PlatformClient, ms: number): Promise<CheckRow> {
  return timed("actor hosts", p.subjects.buckets.members, ms, async () => {
    const [members, leases] = await Promise.all([
      kvEntries(p, p.subjects.buckets.members),
      kvEntries(p, p.subjects.buckets.leases),
    ]);
    const held = new Map<string, number>();
    for (const value of leases.values()) {
      const host = (value as { host?: unknown }).host;
      if (typeof host === "string") held.set(host, (held.get(host) ?? 0) + 1);
    }
    const hosts = [...members.keys()].map((id) => ({ id, partitions: held.get(id) ?? 0 }));
    const total = [...held.values()].reduce((a, b) => a + b, 0);
    const P = p.subjects.partitions;
    const data = { hosts, partitions_held: total, partitions: P };
    if (hosts.length === 0) return { status: "fail", detail: "no actor host is running", data };
    const list = hosts.map((h) => `${h.id} (${h.partitions})`).join(", ");
    const detail = `${hosts.length} host(s): ${list}; ${total}/${P} partitions held`;
    return { status: total < P ? "warn" : "ok", detail, data };
  });
}

interface WorkerRecord {
  worker: string;
  slots: number;
  in_flight: number;
  free_slots: number;
  admitting: boolean;
  rss_mb: number;
}

function workersCheck(p: PlatformClient, ms: number): Promise<CheckRow> {
  return timed("workers", p.subjects.buckets.workers, ms, async () => {
    const workers = [...(await kvEntries(p, p.subjects.buckets.workers)).values()] as WorkerRecord[];
    const slots = workers.reduce((a, w) => a + w.slots, 0);
    const free = workers.reduce((a, w) => a + w.free_slots, 0);
    const admitting = workers.filter((w) => w.admitting).length;
    const data = { workers };
    if (workers.length === 0) return { status: "fail", detail: "no agent worker is running", data };
    const list = workers
      .map((w) => `${w.worker} ${w.in_flight}/${w.slots}${w.admitting ? "" : " (not admitting)"}`)
      .join(", ");
    const detail = `${workers.length} worker(s), ${free}/${slots} slots free: ${list}`;
    return { status: admitting === 0 || free === 0 ? "warn" : "ok", detail, data };
  });
}

function platformCheck(p: PlatformClient, ms: number): Promise<CheckRow> {
  return timed("platform", "platform.health", ms + 100, async () => {
    const health = await p.platformOnce<PlatformHealth>(PlatformOps.health, {}, ms);
    const db = health.platform_db;
    return db.ok
      ? { status: "ok", detail: `platform database answered in ${db.latency_ms} ms`, data: health }
      : { status: "fail", detail: `platform database: ${db.error ?? "not ok"}`, data: health };
  });
}

interface TenantOptions {
  ms: number;
  providers: boolean;
  providerMs: number;
  workersRunning: boolean;
}

async function tenantChecks(p: PlatformClient, client: ClientView, o: TenantOptions): Promise<CheckRow[]> {
  const target = client.slug;
  let databaseOk = false;
  let agents = 0;
  const database = await timed("database", target, o.ms + 100, async () => {
    try {
      const list = await p.tenant<unknown[]>(client.id, TenantOpNames.listAgents, {}, o.ms);
      databaseOk = true;
      agents = list.length;
      const status = client.status === "active" ? "" : ` (client ${client.status})`;
      return { status: "ok", detail: `${list.length} agent(s)${status}` };
    } catch (err) {
      if (err instanceof RemoteError && err.code === StoreErrorCodes.TENANT_DATABASE_NOT_CONFIGURED) {
        return { status: "warn", detail: "no tenant database configured", error: err.toWire() };
      }
      throw err;
    }
  });
  const livekit = await timed("livekit", target, o.ms + 100, async () => {
    const detail = await p.platform<ClientDetailView>(PlatformOps.clientsGet, { id: client.id }, o.ms);
    const lk = detail.credentials.livekit;
    return lk.configured
      ? {
          status: "ok",
          detail: `configured: ${lk.url}, key ${lk.api_key} (not tried: secrets stay in the hosts)`,
        }
      : { status: "warn", detail: "not configured: voice triggers are refused" };
  });
  const rows = [database, livekit];
  if (!o.providers) return rows;
  const skip = (detail: string): CheckRow => ({
    check: "providers",
    target,
    status: "skipped",
    latency_ms: null,
    detail,
  });
  if (!databaseOk) {
    const why = database.status === "warn" ? "no tenant database" : "the tenant database did not answer";
    return [...rows, skip(`skipped: ${why}`)];
  }
  if (agents === 0) return [...rows, skip("skipped: no agents")];
  if (!o.workersRunning) return [...rows, skip("skipped: no agent worker runs to make the calls")];
  let reply: ProviderCheckReply | undefined;
  const asked = await timed("providers", target, o.providerMs + 100, async () => {
    reply = await p.worker<ProviderCheckReply>(
      WorkerOps.providerCheck,
      { tenant: client.id, call_timeout_ms: Math.max(1000, o.providerMs - 2000) },
      o.providerMs,
    );
    return reply.checks.length === 0
      ? { status: "warn", detail: "no provider named by any agent and no provider key stored" }
      : { status: "ok", detail: `checked from worker ${reply.worker}` };
  });
  if (reply === undefined || reply.checks.length === 0) return [...rows, asked];
  const from = reply.worker;
  return [
    ...rows,
    ...reply.checks.map((c): CheckRow => {
      const used =
        c.used_by.length === 0
          ? c.note === undefined
            ? ""
            : ` (${c.note})`
          : `, used by ${c.used_by.join(", ")}`;
      const model = c.model === null ? "" : ` ${c.model}`;
      const detail =
        c.status === "ok"
          ? `${c.kind ?? "key"}${model}${used} (from ${from})`
          : c.status === "skipped"
            ? (c.note ?? "not checked")
            : `${c.error?.code ?? "failed"}: ${c.error?.message ?? ""}${used}`;
      return {
        check: "provider",
        target: `${target} ${c.provider}${c.kind === null ? "" : `/${c.kind}`}`,
        status: c.status,
        latency_ms: c.latency_ms,
        detail,
        ...(c.error === undefined ? {} : { error: c.error }),
      };
    }),
  ];
}

/** Runs `fn` over `items` with at most `limit` at a time, keeping their order. */
async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const run = async (): Promise<void> => {
    while (next < items.length) {
      const i = next;
      next += 1;
      out[i] = await fn(items[i] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, run));
  return out;
}

export async function runDoctor(ctx: CommandContext): Promise<DoctorReport> {
  const { args, out, config } = ctx;
  const ms = intOption(args, "timeout-ms", 5000, 100, 120_000);
  const providerMs = intOption(args, "provider-timeout-ms", 20_000, 1000, 300_000);
  const rows: CheckRow[] = [];
  out.progress(`connecting to ${config.natsUrl}`);
  let p: PlatformClient | undefined;
  const nats = await timed("nats", config.natsUrl, config.connectTimeoutMs + 1000, async () => {
    p = await ctx.platform();
    const rtt = await p.nc.rtt();
    const info = p.nc.info;
    return {
      status: "ok",
      detail: `server ${info?.server_name ?? "?"} ${info?.version ?? ""}, rtt ${round(rtt)} ms, jetstream ${info?.jetstream === true ? "on" : "off"}`,
      data: { rtt_ms: rtt, server: info?.server_name, version: info?.version },
    };
  });
  rows.push(nats);
  if (p === undefined || nats.status === "fail") return report(rows);
  const client = p;
  out.progress("checking JetStream, actor hosts, workers and the platform");
  const [streams, hosts, workers, platform] = await Promise.all([
    jetstreamChecks(client, ms),
    actorHostsCheck(client, ms),
    workersCheck(client, ms),
    platformCheck(client, ms),
  ]);
  rows.push(...streams, hosts, workers, platform);
  if (platform.status === "fail") return report(rows);

  out.progress("listing clients");
  const ref = args.values.get("client");
  const tenants: ClientView[] =
    ref === undefined
      ? await client.allClients((n) => out.progress(`listing clients: ${n}`))
      : [await client.client(ref)];
  let done = 0;
  const options: TenantOptions = {
    ms,
    providers: !args.flags.has("no-providers"),
    providerMs,
    workersRunning: workers.status !== "fail",
  };
  const perTenant = await mapLimit(tenants, 4, async (t) => {
    const result = await tenantChecks(client, t, options);
    done += 1;
    out.progress(`checked ${done}/${tenants.length} tenant(s)`);
    return result;
  });
  rows.push(...perTenant.flat());
  return report(rows);
}

function report(rows: CheckRow[]): DoctorReport {
  const summary: Record<CheckStatus, number> = { ok: 0, warn: 0, fail: 0, skipped: 0 };
  for (const r of rows) summary[r.status] += 1;
  return { ok: summary.fail === 0, summary, checks: rows };
}

export function formatDoctor(report: DoctorReport, out: Output): string {
  const table = formatTable(
    [
      { header: "check" },
      { header: "target", maxWidth: 40 },
      { header: "status", style: (text, raw) => out.status(String(raw), text) },
      { header: "latency", align: "right" },
      { header: "detail", maxWidth: 160 },
    ],
    report.checks.map((r) => [
      r.check,
      r.target,
      r.status,
      r.latency_ms === null ? null : `${r.latency_ms} ms`,
      r.detail,
    ]),
  );
  const s = report.summary;
  const verdict = out.status(report.ok ? "ok" : "fail", report.ok ? "healthy" : "FAILED");
  return `${table}\n${verdict}: ${s.ok} ok, ${s.warn} warn, ${s.fail} fail, ${s.skipped} skipped\n`;
}

export const doctorCommands: Command[] = [
  {
    path: ["doctor"],
    usage:
      "[--client <id|slug>] [--no-providers] [--timeout-ms <ms per check>] [--provider-timeout-ms <ms per tenant>]",
    summary: "checks NATS, JetStream, actor hosts, workers, the platform and each tenant (exit 1 on failure)",
    spec: { values: ["client", "timeout-ms", "provider-timeout-ms"], flags: ["no-providers"] },
    async run(ctx) {
      const result = await runDoctor(ctx);
      ctx.out.done();
      if (ctx.out.json) ctx.out.data(result);
      else ctx.out.text(formatDoctor(result, ctx.out));
      return result.ok ? 0 : 1;
    },
  },
];
