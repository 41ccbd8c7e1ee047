/**
 * The dashboard: tenants, actor hosts and their partitions, workers and their free capacity,
 * the last minute of dispatch and the provider errors, as the platform reports them now. The
 * live part (`#dashboard-live`) is fetched again every 5 s by HTMX (`/admin/dashboard/live`).
 * Every figure carries a `data-*` attribute naming it, for tests and browser automation.
 */
import type { Child } from "hono/jsx";
import type { DashboardData, Part, ProviderErrorRow, WorkerRow } from "../dashboard_data.ts";
import { EmptyState, Layout, PageHeader } from "./layout.tsx";
import type { Viewer } from "./layout.tsx";

export const DASHBOARD_LIVE_PATH = "/admin/dashboard/live";

/** `0-3, 7, 9-15`: partitions as ranges. */
export function partitionRanges(partitions: readonly number[]): string {
  const sorted = [...partitions].sort((a, b) => a - b);
  const out: string[] = [];
  for (let i = 0; i < sorted.length;) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === (sorted[j] as number) + 1) j++;
    out.push(i === j ? String(sorted[i]) : `${sorted[i]}–${sorted[j]}`);
    i = j + 1;
  }
  return out.join(", ");
}

const fmt = (n: number | null | undefined, digits = 0, unit = ""): string =>
  n === null || n === undefined ? "—" : `${n.toFixed(digits)}${unit}`;

function PartError({ part }: { part: Extract<Part<unknown>, { ok: false }> }) {
  return (
    <p class="text-sm text-red-700" role="alert" data-part-error={part.code}>
      {part.message} <span class="font-mono text-xs">({part.code})</span>
    </p>
  );
}

function Section({ title, id, children }: { title: string; id: string; children: Child }) {
  return (
    <section class="card space-y-3" aria-labelledby={`${id}-title`} id={id}>
      <h2 id={`${id}-title`} class="text-base font-semibold">
        {title}
      </h2>
      {children}
    </section>
  );
}

function Ok({ ok, yes, no }: { ok: boolean; yes: string; no: string }) {
  return ok ? (
    <span class="badge bg-emerald-100 text-emerald-800">{yes}</span>
  ) : (
    <span class="badge bg-red-100 text-red-800">{no}</span>
  );
}

function Stat({ label, value, name }: { label: string; value: string; name: string }) {
  return (
    <div>
      <dt class="text-xs text-slate-500">{label}</dt>
      <dd class="text-lg font-semibold tabular-nums" data-stat={name}>
        {value}
      </dd>
    </div>
  );
}

function Platform({ data }: { data: DashboardData }) {
  const streams = "streams" in data.jetstream ? Object.entries(data.jetstream.streams) : [];
  return (
    <Section title="Platform" id="dash-platform">
      <dl class="grid grid-cols-2 gap-3 text-sm sm:grid-cols-4">
        <div>
          <dt class="text-xs text-slate-500">NATS</dt>
          <dd data-check="nats" data-ok={String(data.nats.ok)}>
            <Ok ok={data.nats.ok} yes={`ok · ${fmt(data.nats.latency_ms, 1, " ms")}`} no="unreachable" />
          </dd>
        </div>
        <div>
          <dt class="text-xs text-slate-500">JetStream</dt>
          <dd data-check="jetstream" data-ok={String(data.jetstream.ok)} class="flex flex-wrap gap-1">
            {streams.length === 0 ? (
              <Ok ok={false} yes="" no="unreachable" />
            ) : (
              streams.map(([name, ok]) => <Ok ok={ok} yes={name} no={`${name} missing`} />)
            )}
          </dd>
        </div>
      </dl>
    </Section>
  );
}

function Tenants({ data }: { data: DashboardData }) {
  const t = data.tenants;
  return (
    <Section title="Tenants" id="dash-tenants">
      {!t.ok ? (
        <PartError part={t} />
      ) : (
        <div class="space-y-2">
          <dl class="grid grid-cols-2 gap-3 sm:grid-cols-4">
            <Stat label="All clients" value={String(t.value.total)} name="tenants-total" />
            {Object.entries(t.value.by_status).map(([status, n]) => (
              <Stat
                label={`${status.charAt(0).toUpperCase()}${status.slice(1)}`}
                value={String(n)}
                name={`tenants-${status}`}
              />
            ))}
          </dl>
          <a href="/admin/clients" class="text-sm font-medium text-indigo-700 hover:underline">
            View clients →
          </a>
        </div>
      )}
    </Section>
  );
}

function Dispatch({ data }: { data: DashboardData }) {
  const d = data.dispatch;
  return (
    <Section title="Dispatch" id="dash-dispatch">
      {!d.ok ? (
        <PartError part={d} />
      ) : (
        <div class="space-y-2">
          <dl class="grid grid-cols-2 gap-3 sm:grid-cols-3 lg:grid-cols-6">
            <Stat label="Claims / s" value={fmt(d.value.rate_per_s, 2)} name="dispatch-rate" />
            <Stat
              label="Claimed (text / voice)"
              value={`${d.value.claimed_by_mode.text} / ${d.value.claimed_by_mode.voice}`}
              name="dispatch-claimed"
            />
            <Stat label="p50 claim latency" value={fmt(d.value.p50_ms, 1, " ms")} name="dispatch-p50" />
            <Stat label="p99 claim latency" value={fmt(d.value.p99_ms, 1, " ms")} name="dispatch-p99" />
            <Stat label="No capacity" value={String(d.value.no_capacity)} name="dispatch-no-capacity" />
            <Stat label="Failed" value={String(d.value.failed)} name="dispatch-failed" />
          </dl>
          <p class="field-help">
            The last {Math.round(d.value.window_ms / 1000)} s on {d.value.hosts} actor host
            {d.value.hosts === 1 ? "" : "s"}: publish-to-claim time of each job (percentiles within 15 %).
          </p>
        </div>
      )}
    </Section>
  );
}

function Hosts({ data }: { data: DashboardData }) {
  const h = data.hosts;
  return (
    <Section title="Actor hosts" id="dash-hosts">
      {!h.ok ? (
        <PartError part={h} />
      ) : h.value.length === 0 ? (
        <EmptyState title="No actor host is running">
          Tenants cannot be served until one starts (`node --import tsx actors/main.ts`).
        </EmptyState>
      ) : (
        <div class="table-wrap">
          <table class="data-table">
            <thead>
              <tr>
                <th scope="col">Host</th>
                <th scope="col">Partitions</th>
                <th scope="col">Owned</th>
              </tr>
            </thead>
            <tbody class="divide-y divide-slate-100">
              {h.value.map((host) => (
                <tr data-host={host.id} data-partitions={host.partitions.join(",")}>
                  <td class="font-mono text-xs">{host.id}</td>
                  <td class="tabular-nums">{host.partitions.length}</td>
                  <td class="font-mono text-xs break-all">{partitionRanges(host.partitions) || "none"}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </Section>
  );
}

function Slots({ free, total, name }: { free: number | null; total: number | null; name: string }) {
  return (
    <td
      class="whitespace-nowrap tabular-nums"
      data-slots={name}
      data-free={free ?? ""}
      data-total={total ?? ""}
    >
      {total === null ? "—" : `${free ?? "—"} / ${total}`}
    </td>
  );
}

function Pressure({ w }: { w: WorkerRow }) {
  const c = w.capacity;
  if (c === undefined) return <td>—</td>;
  return (
    <td data-saturated={String(c.saturated ?? false)}>
      {c.saturated === true ? (
        <span class="badge bg-amber-100 text-amber-800">
          saturated: {c.saturated_by.join(", ") || "load"}
        </span>
      ) : (
        <span class="badge bg-emerald-100 text-emerald-800">ok</span>
      )}
      <span class="ml-1 text-xs text-slate-500 tabular-nums">
        loop {fmt(c.event_loop_delay_ms, 1, " ms")} · cpu{" "}
        {c.cpu_ratio === null ? "—" : `${Math.round(c.cpu_ratio * 100)} %`}
      </span>
    </td>
  );
}

function Workers({ data }: { data: DashboardData }) {
  const w = data.workers;
  return (
    <Section title="Agent workers" id="dash-workers">
      {!w.ok ? (
        <PartError part={w} />
      ) : w.value.length === 0 ? (
        <EmptyState title="No agent worker is running">
          Text and voice triggers answer SF_ERR_NO_AGENT_CAPACITY until one starts.
        </EmptyState>
      ) : (
        <div class="table-wrap">
          <table class="data-table">
            <thead>
              <tr>
                <th scope="col">Worker</th>
                <th scope="col">Text free</th>
                <th scope="col">Voice free</th>
                <th scope="col">Ingest free</th>
                <th scope="col">Memory (RSS / free)</th>
                <th scope="col">Pressure</th>
              </tr>
            </thead>
            <tbody class="divide-y divide-slate-100">
              {w.value.map((row) => {
                const q = row.stats?.queues;
                const c = row.capacity;
                const free = (s: { slots: number; in_flight: number } | undefined) =>
                  s === undefined ? null : Math.max(0, s.slots - s.in_flight);
                return (
                  <tr data-worker={row.id} data-admitting={String(c?.admitting ?? "")}>
                    <td class="font-mono text-xs">
                      {row.id}
                      {c === undefined ? <span class="badge ml-1 bg-slate-200">stopping</span> : null}
                    </td>
                    <Slots
                      name="text"
                      free={free(q?.text) ?? c?.free_slots ?? null}
                      total={q?.text.slots ?? c?.slots ?? null}
                    />
                    <Slots
                      name="voice"
                      free={free(q?.voice) ?? c?.free_voice_slots ?? null}
                      total={q?.voice.slots ?? c?.voice_slots ?? null}
                    />
                    <Slots name="ingest" free={free(q?.ingest)} total={q?.ingest.slots ?? null} />
                    <td class="whitespace-nowrap tabular-nums">
                      {fmt(c?.rss_mb, 0, " MB")} / {fmt(c?.free_memory_mb, 0, " MB")}
                      {c?.admitting === false ? (
                        <span class="badge ml-1 bg-red-100 text-red-800">not admitting</span>
                      ) : null}
                    </td>
                    <Pressure w={row} />
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      )}
    </Section>
  );
}

function ProviderErrors({ data }: { data: DashboardData }) {
  const p = data.providerErrors;
  return (
    <Section title="Provider errors" id="dash-provider-errors">
      {!p.ok ? (
        <PartError part={p} />
      ) : p.value.rows.length === 0 ? (
        <p class="text-sm text-slate-600">
          No provider call failed on the {p.value.workers} running worker{p.value.workers === 1 ? "" : "s"}.
        </p>
      ) : (
        <div class="space-y-2">
          <div class="table-wrap">
            <table class="data-table">
              <thead>
                <tr>
                  <th scope="col">Provider</th>
                  <th scope="col">Errors</th>
                  <th scope="col">By kind and code</th>
                </tr>
              </thead>
              <tbody class="divide-y divide-slate-100">
                {p.value.rows.map((r: ProviderErrorRow) => (
                  <tr data-provider={r.provider} data-errors={r.total}>
                    <td class="font-medium">{r.provider}</td>
                    <td class="tabular-nums">{r.total}</td>
                    <td class="font-mono text-xs">
                      {r.by_code.map((c) => `${c.kind} ${c.code} × ${c.count}`).join(" · ")}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          <p class="field-help">Failed calls (each retry counted) since each running worker started.</p>
        </div>
      )}
    </Section>
  );
}

/** The polled part of the dashboard (replaced whole every 5 s). */
export function DashboardLive({ data }: { data: DashboardData }) {
  const at = new Date(data.at).toISOString().slice(11, 19);
  return (
    <div
      id="dashboard-live"
      class="space-y-4"
      hx-get={DASHBOARD_LIVE_PATH}
      hx-trigger="every 5s"
      hx-swap="outerHTML"
      data-updated={String(data.at)}
    >
      <p class="text-xs text-slate-500">Updated {at} UTC · refreshes every 5 s</p>
      <div class="grid gap-4 md:grid-cols-2">
        <Tenants data={data} />
        <Platform data={data} />
      </div>
      <Dispatch data={data} />
      <Hosts data={data} />
      <Workers data={data} />
      <ProviderErrors data={data} />
    </div>
  );
}

export function DashboardPage({ viewer, data }: { viewer: Viewer; data: DashboardData }) {
  return (
    <Layout title="Dashboard" viewer={viewer} section="dashboard">
      <PageHeader title="Dashboard" />
      <DashboardLive data={data} />
    </Layout>
  );
}
