/**
 * Malformed and hostile messages on the NATS subjects the platform listens on (issue 9): the
 * tenant actors' request subjects, the platform operations, the workers' operations, the dispatch
 * work queue, job events, client events, host control and chat subjects. Garbage bytes, msgpack
 * of the wrong types and extension types, nesting past the decoder's stack, near-miss op bodies,
 * payloads near max_payload, envelopes with headers missing or wrong. Properties: every request
 * is answered with a coded error (never SF_ERR_INTERNAL, the code of a bug) or dropped, no
 * process dies, and afterwards each listener still serves a valid request.
 *
 * Inputs per family: SF_FUZZ_RUNS (default 150); SF_FUZZ_SEED replays a run. The counts go to
 * `.sidekick/fuzz/nats.json`.
 */
import { randomUUID } from "node:crypto";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { errors, headers as natsHeaders } from "@nats-io/transport-node";
import type { Msg, MsgHdrs } from "@nats-io/transport-node";
import fc from "fast-check";
import type { Arbitrary } from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PlatformOps, TenantOps, WorkerOps } from "../../actors/index.ts";
import type { DispatchJob, JobEvent } from "../../actors/index.ts";
import {
  BusErrorCodes,
  createSubjects,
  decodeBody,
  encodeBody,
  Headers,
  isWireError,
  requestReply,
} from "../../bus/index.ts";
import type { Subjects } from "../../bus/index.ts";
import { ApiFixture, PARTITIONS } from "../../tests/gateway/api_fixture.ts";
import { waitFor } from "../helpers/deadline.ts";
import type { TestProcess } from "../helpers/processes.ts";
import { spawnWorker } from "../helpers/stack.ts";
import { tenantClient } from "../helpers/tenant_client.ts";
import {
  anyJson,
  createFuzzTenant,
  FUZZ_SEED,
  fuzzRuns,
  pool,
  recordFuzzReport,
  summarize,
} from "./fuzz_kit.ts";
import type { FuzzTenant, Violation } from "./fuzz_kit.ts";

const RUNS = fuzzRuns(150);
const CONCURRENCY = 16;
/** How long a request waits for its answer before it counts as dropped. */
const DROP_MS = 1500;
const AGENT = "fuzz-agent";

const subjects: Subjects = createSubjects({ partitions: PARTITIONS });
let f: ApiFixture;
let worker: TestProcess;
let tenant: FuzzTenant;
const violations: Violation[] = [];
const report: Record<string, unknown> = {};

beforeAll(async () => {
  f = await ApiFixture.start({ claimTimeoutMs: 2000 });
  worker = await spawnWorker({
    natsUrl: f.server.url,
    partitions: PARTITIONS,
    workerId: "fuzz-w1",
    endpoints: {},
  });
  tenant = await createFuzzTenant(f, "natsfuzz", AGENT);
});

afterAll(async () => {
  if (Object.keys(report).length > 0) recordFuzzReport("nats", "summary", report);
  await worker?.stop();
  await f?.close();
});

// ---------------------------------------------------------------------------------------------
// Payloads and envelopes

/** msgpack map `{ key: <raw bytes> }`: extension types where plain data is expected. */
function mapWithRaw(key: string, raw: number[]): Buffer {
  return Buffer.concat([Buffer.from([0x81, 0xa0 | key.length]), Buffer.from(key), Buffer.from(raw)]);
}

const EXTENSIONS: readonly number[][] = [
  [0xd4, 0x42, 0x00], // BigInt
  [0xd6, 0xff, 0, 0, 0, 1], // timestamp (Date)
  [0xd4, 0x74, 0x00], // typed array
  [0xc4, 0x03, 1, 2, 3], // bin 8 (Uint8Array)
  [0xd4, 0x65, 0x00], // error
  [0xd4, 0x78, 0x00], // regexp
  [0xc1], // never used
  [0xdd, 0xff, 0xff, 0xff, 0xff], // array32 announcing 4G items
  [0xdb, 0x7f, 0xff, 0xff, 0xff], // str32 announcing 2 GiB
];

/** Field names the operations read, so near-miss bodies reach past the first check. */
const FIELDS = [
  "by",
  "slug",
  "name",
  "agent_slug",
  "key",
  "client_id",
  "actor",
  "id",
  "document_id",
  "conversation_id",
  "provider",
  "api_key",
  "mode",
  "message",
  "user_id",
  "session_id",
  "job_id",
  "room_name",
  "limit",
  "offset",
  "status",
  "scopes",
  "label",
  "origin",
  "tenant",
  "call_timeout_ms",
  "text",
  "title",
  "data",
  "file_name",
  "file_type",
  "agent_slugs",
  "metadata",
  "tenant_database",
  "livekit",
  "settings",
  "idempotent",
  "context",
  "key_id",
  "enabled",
];

function fieldValue(): Arbitrary<unknown> {
  return fc.oneof(
    { weight: 3, arbitrary: anyJson(2) },
    {
      weight: 2,
      arbitrary: fc.constantFrom<unknown>(
        tenant.id,
        AGENT,
        "text",
        "voice",
        randomUUID(),
        tenant.keyId,
        "openai",
        "system:fuzz",
        1,
        -1,
        0,
        2 ** 53,
        true,
        null,
        [],
        {},
      ),
    },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 64 }) },
  );
}

/** A body of op fields with any values (built once the tenant exists). */
function opBody(): Arbitrary<unknown> {
  return fc.dictionary(fc.constantFrom(...FIELDS), fieldValue(), { maxKeys: 6 });
}

type Payload = { what: string; bytes: Uint8Array };

function payload(): Arbitrary<Payload> {
  return fc.oneof(
    { weight: 6, arbitrary: opBody().map((b) => ({ what: "op body", bytes: encodeBody(b) })) },
    { weight: 2, arbitrary: anyJson(3).map((v) => ({ what: "any value", bytes: encodeBody(v) })) },
    { weight: 2, arbitrary: fc.uint8Array({ maxLength: 200 }).map((b) => ({ what: "bytes", bytes: b })) },
    {
      weight: 2,
      arbitrary: fc
        .tuple(fc.constantFrom(...FIELDS), fc.constantFrom(...EXTENSIONS))
        .map(([k, ext]) => ({ what: `ext ${k}`, bytes: mapWithRaw(k, ext) })),
    },
    {
      weight: 1,
      arbitrary: fc.integer({ min: 500, max: 20_000 }).map((depth) => {
        const b = Buffer.alloc(depth + 1, 0x91);
        b[depth] = 0xc0;
        return { what: `nested ${depth}`, bytes: b };
      }),
    },
    {
      weight: 1,
      arbitrary: fc.tuple(opBody(), fc.nat()).map(([b, cut]) => {
        const bytes = encodeBody(b);
        return { what: "truncated", bytes: bytes.subarray(0, cut % Math.max(1, bytes.length)) };
      }),
    },
    { weight: 1, arbitrary: fc.constant({ what: "empty", bytes: new Uint8Array(0) }) },
    {
      weight: 1,
      arbitrary: fc
        .constantFrom(...FIELDS)
        .map((k) => ({ what: `huge ${k}`, bytes: encodeBody({ [k]: "x".repeat(900 * 1024) }) })),
    },
  );
}

/** An envelope: right (mostly), or with a header missing, wrong, or forged. */
function envelope(tenantHeader: string | undefined): Arbitrary<{ what: string; headers?: MsgHdrs }> {
  const ok = (): Record<string, string> => ({
    [Headers.version]: "1",
    [Headers.deadline]: String(Date.now() + 10_000),
    [Headers.requestId]: randomUUID(),
    ...(tenantHeader === undefined ? {} : { [Headers.tenant]: tenantHeader }),
  });
  const damage: Array<[string, (h: Record<string, string>) => void]> = [
    ["intact", () => undefined],
    ["intact", () => undefined],
    ["intact", () => undefined],
    ["no version", (h) => delete h[Headers.version]],
    ["version 2", (h) => (h[Headers.version] = "2")],
    ["no deadline", (h) => delete h[Headers.deadline]],
    ["deadline NaN", (h) => (h[Headers.deadline] = "soon")],
    ["deadline past", (h) => (h[Headers.deadline] = String(Date.now() - 60_000))],
    ["deadline 1e309", (h) => (h[Headers.deadline] = "1e309")],
    ["no request id", (h) => delete h[Headers.requestId]],
    ["long request id", (h) => (h[Headers.requestId] = "r".repeat(4000))],
    ["other tenant", (h) => (h[Headers.tenant] = "someone-else")],
    ["empty tenant", (h) => (h[Headers.tenant] = "")],
  ];
  return fc
    .oneof(
      { weight: 12, arbitrary: fc.constantFrom(...damage) },
      {
        weight: 1,
        arbitrary: fc.constant(["no headers", () => undefined] as [
          string,
          (h: Record<string, string>) => void,
        ]),
      },
    )
    .map(([what, hurt]) => {
      if (what === "no headers") return { what };
      const h = ok();
      hurt(h);
      const out = natsHeaders();
      for (const [k, v] of Object.entries(h)) out.set(k, v);
      return { what, headers: out };
    });
}

// ---------------------------------------------------------------------------------------------
// Asking and judging

type Outcome =
  | { type: "ok" }
  | { type: "error"; code: string }
  | { type: "dropped" }
  | { type: "no responders" }
  | { type: "bad reply"; detail: string };

async function ask(subject: string, data: Uint8Array, headers: MsgHdrs | undefined): Promise<Outcome> {
  let reply: Msg;
  try {
    reply = await f.nc.request(subject, data, {
      timeout: DROP_MS,
      ...(headers === undefined ? {} : { headers }),
    });
  } catch (err) {
    if (err instanceof errors.RequestError && err.isNoResponders()) return { type: "no responders" };
    if (err instanceof errors.TimeoutError) return { type: "dropped" };
    throw err;
  }
  const status = reply.headers?.get(Headers.status);
  if (status === "ok") return { type: "ok" };
  if (status !== "error") return { type: "bad reply", detail: `Sf-Status ${JSON.stringify(status)}` };
  let body: unknown;
  try {
    body = decodeBody(reply.data);
  } catch (err) {
    return { type: "bad reply", detail: `undecodable error body: ${(err as Error).message}` };
  }
  if (!isWireError(body) || !/^SF_ERR_[A-Z0-9_]+$/.test(body.code)) {
    return { type: "bad reply", detail: `not a coded error: ${JSON.stringify(body).slice(0, 200)}` };
  }
  return { type: "error", code: body.code };
}

interface Probe {
  family: string;
  subject: string;
  payload: Payload;
  envelope: { what: string; headers?: MsgHdrs };
}

function describeProbe(p: Probe): string {
  return `${p.subject} envelope=${p.envelope.what} payload=${p.payload.what} ${Buffer.from(p.payload.bytes.subarray(0, 120)).toString("hex")}`;
}

/** Sends every probe, judges every answer; returns the outcome counts. */
async function campaign(probes: readonly Probe[]): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  await pool(probes, CONCURRENCY, async (p) => {
    const outcome = await ask(p.subject, p.payload.bytes, p.envelope.headers);
    const key = outcome.type === "error" ? `error ${outcome.code}` : outcome.type;
    counts[key] = (counts[key] ?? 0) + 1;
    // A drop is allowed only where the envelope says nobody waits any more (its deadline passed).
    if (outcome.type === "dropped" && p.envelope.what !== "deadline past") {
      violations.push({ family: p.family, rule: "dropped", input: describeProbe(p), outcome: "no reply" });
    }
    if (outcome.type === "bad reply") {
      violations.push({ family: p.family, rule: "reply", input: describeProbe(p), outcome: outcome.detail });
    }
    if (outcome.type === "error" && outcome.code === BusErrorCodes.INTERNAL) {
      violations.push({
        family: p.family,
        rule: "internal error",
        input: describeProbe(p),
        outcome: outcome.code,
      });
    }
  });
  return counts;
}

/**
 * Every process is up, and none lost its NATS connection to a message: nats.js stops reading a
 * connection (and prints "reader closed") when a subscription callback throws, which would make
 * one hostile message enough to cut a process off the bus until it reconnects.
 */
function processesUp(): void {
  for (const proc of [f.host, f.gw.proc, worker]) {
    expect(proc.running, proc.tail()).toBe(true);
    expect(
      proc.lines.filter((l) => l.includes("reader closed")),
      `${proc.name} lost its NATS reader`,
    ).toEqual([]);
  }
}

/** The actor host still answers a valid request for the fuzzed tenant and a fresh one. */
async function hostServes(): Promise<void> {
  const client = tenantClient(f.nc, subjects);
  const fresh = `fresh-${randomUUID().slice(0, 8)}`;
  const before = await client.get(fresh);
  const after = await client.increment(fresh);
  expect(after.body.count).toBe(before.body.count + 1);
  const agents = await requestReply<unknown[]>(
    f.nc,
    subjects.tenantOp(tenant.id, TenantOps.listAgents),
    {},
    { tenant: tenant.id },
  );
  expect(agents.body.map((a) => (a as { slug: string }).slug)).toContain(AGENT);
}

function check(family: string): void {
  const mine = violations.filter((v) => v.family === family);
  expect(summarize(mine)).toEqual([]);
  processesUp();
}

// ---------------------------------------------------------------------------------------------

describe("hostile NATS messages - request/reply subjects", () => {
  it("actor requests - every hostile request is answered with a coded error or dropped, and the host keeps serving", async () => {
    const ops = Object.values(TenantOps);
    const tenants = [tenant.id, "acme", `t-${randomUUID().slice(0, 8)}`];
    const arb: Arbitrary<Probe> = fc
      .tuple(
        fc.constantFrom(...tenants),
        fc.oneof(
          { weight: 5, arbitrary: fc.constantFrom(...ops) },
          { weight: 1, arbitrary: fc.stringMatching(/^[A-Za-z0-9_$%ü-]{1,20}$/) },
        ),
        fc.constantFrom("right", "right", "right", "right", "wrong partition", "odd tenant"),
        payload(),
      )
      .chain(([t, op, route, body]) => {
        const tok = route === "odd tenant" ? `${t}$x` : t;
        const p = subjects.partitionOf(t);
        const partition = route === "wrong partition" ? (p + 1) % subjects.partitions : p;
        return envelope(t).map((env) => ({
          family: "actor",
          subject: `${subjects.prefix}.t.${partition}.${tok}.${op}`,
          payload: body,
          envelope: env,
        }));
      });
    const probes = fc.sample(arb, { numRuns: RUNS, seed: FUZZ_SEED + 1 });
    const counts = await campaign(probes);
    report["actor"] = { inputs: probes.length, outcomes: counts };
    recordFuzzReport("nats", "actor", report["actor"] as Record<string, unknown>);
    await hostServes();
    check("actor");
  });

  it("platform operations - hostile requests get coded errors, and the platform still answers", async () => {
    const ops = Object.values(PlatformOps);
    const arb: Arbitrary<Probe> = fc
      .tuple(
        fc.oneof(
          { weight: 5, arbitrary: fc.constantFrom(...ops) },
          { weight: 1, arbitrary: fc.stringMatching(/^[A-Za-z0-9_-]{1,20}$/) },
        ),
        payload(),
      )
      .chain(([op, body]) =>
        envelope(undefined).map((env) => ({
          family: "platform",
          subject: `${subjects.prefix}.platform.${op}`,
          payload: body,
          envelope: env,
        })),
      );
    const probes = fc.sample(arb, { numRuns: RUNS, seed: FUZZ_SEED + 2 });
    const counts = await campaign(probes);
    report["platform"] = { inputs: probes.length, outcomes: counts };
    recordFuzzReport("nats", "platform", report["platform"] as Record<string, unknown>);
    const health = await requestReply<{ platform_db: { ok: boolean } }>(
      f.nc,
      subjects.platformOp(PlatformOps.health),
      {},
    );
    expect(health.body.platform_db.ok).toBe(true);
    const res = await f.call("GET", `/api/v2/clients/${tenant.id}`, { auth: f.admin });
    expect(res.status).toBe(200);
    check("platform");
  });

  it("worker operations - hostile requests get coded errors (or no responders for ops nobody serves), and the worker still answers", async () => {
    const arb: Arbitrary<Probe> = fc
      .tuple(
        fc.oneof(
          { weight: 5, arbitrary: fc.constant(WorkerOps.providerCheck) },
          { weight: 1, arbitrary: fc.stringMatching(/^[A-Za-z0-9_-]{1,20}$/) },
        ),
        payload(),
      )
      .chain(([op, body]) =>
        envelope(undefined).map((env) => ({
          family: "worker",
          subject: `${subjects.prefix}.workers.${op}`,
          payload: body,
          envelope: env,
        })),
      );
    const probes = fc.sample(arb, { numRuns: RUNS, seed: FUZZ_SEED + 3 });
    const counts = await campaign(probes);
    report["worker"] = { inputs: probes.length, outcomes: counts };
    recordFuzzReport("nats", "worker", report["worker"] as Record<string, unknown>);
    const check1 = await requestReply<{ tenant: string; agents: number }>(
      f.nc,
      subjects.workerOp(WorkerOps.providerCheck),
      { tenant: tenant.id, call_timeout_ms: 1000 },
      { timeoutMs: 15_000 },
    );
    expect(check1.body.tenant).toBe(tenant.id);
    expect(check1.body.agents).toBe(1);
    check("worker");
  });
});

describe("hostile NATS messages - streams and events", () => {
  it("dispatch queue - hostile jobs are settled (terminated or failed) without a crash, and the next valid job is claimed", async () => {
    const js = jetstream(f.nc);
    const jsm = await jetstreamManager(f.nc);
    const job = (over: Record<string, unknown>): Record<string, unknown> => ({
      jobId: randomUUID(),
      tenant: tenant.id,
      mode: "text",
      agentSlug: AGENT,
      conversationId: randomUUID(),
      sessionId: `s-${randomUUID()}`,
      userId: "u",
      message: "hi",
      createdAt: Date.now(),
      ...over,
    });
    const field = fc.constantFrom(
      "jobId",
      "tenant",
      "mode",
      "agentSlug",
      "conversationId",
      "sessionId",
      "userId",
      "message",
      "createdAt",
      "roomName",
      "context",
    );
    const hostile: Arbitrary<{ what: string; mode: string; bytes: Uint8Array }> = fc.oneof(
      { weight: 2, arbitrary: payload().map((p) => ({ what: p.what, mode: "text", bytes: p.bytes })) },
      {
        weight: 4,
        arbitrary: fc.tuple(field, fieldValue(), fc.constantFrom("text", "voice")).map(([k, v, mode]) => ({
          what: `job with ${k}=${JSON.stringify(v)?.slice(0, 60)}`,
          mode,
          bytes: encodeBody(job({ [k]: v, mode })),
        })),
      },
      {
        weight: 1,
        arbitrary: fc.constantFrom("a.b", "*", ">", "", "x".repeat(200)).map((t) => ({
          what: `job of tenant ${JSON.stringify(t)}`,
          mode: "text",
          bytes: encodeBody(job({ tenant: t, jobId: t === "" ? "" : `${t}-job` })),
        })),
      },
    );
    const inputs = fc.sample(hostile, { numRuns: RUNS, seed: FUZZ_SEED + 4 });
    for (const input of inputs) {
      await js.publish(subjects.dispatch(tenant.id, input.mode === "voice" ? "voice" : "text"), input.bytes, {
        msgID: randomUUID(),
      });
    }
    // A valid job after the garbage: claimed by the worker.
    const valid = job({}) as unknown as DispatchJob;
    const claimed = new Promise<JobEvent>((resolve) => {
      const sub = f.nc.subscribe(subjects.jobEvent(valid.tenant, valid.jobId, "claimed"), {
        callback: (_err, msg) => {
          resolve(decodeBody(msg.data) as JobEvent);
          sub.unsubscribe();
        },
      });
    });
    await f.nc.flush();
    await js.publish(subjects.dispatch(valid.tenant, "text"), encodeBody(valid), { msgID: valid.jobId });
    const event = await claimed;
    expect(event.type).toBe("claimed");
    // Every hostile job is settled: nothing waits for an ack or comes back again and again.
    const consumer = await waitFor(
      "the dispatch queue to settle",
      async () => {
        const info = await jsm.consumers.info(subjects.streams.dispatch, `${subjects.prefix}-workers`);
        return info.num_pending === 0 && info.num_ack_pending === 0 ? info : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 200 },
    );
    report["dispatch"] = {
      inputs: inputs.length,
      delivered: consumer.delivered.consumer_seq,
      redelivered: consumer.num_redelivered,
    };
    recordFuzzReport("nats", "dispatch", report["dispatch"] as Record<string, unknown>);
    processesUp();
    await hostServes();
  });

  it("events - garbage on job, client-event, host-control and chat subjects leaves every listener serving", async () => {
    const js = jetstream(f.nc);
    const subjectsArb = fc.oneof(
      fc
        .constantFrom("claimed", "joined", "answered", "failed", "done", "bogus")
        .map((e) => subjects.jobEvent(tenant.id, `j-${randomUUID()}`, e)),
      fc
        .constantFrom("credentials", "settings", "api_keys", "deleted", "zz")
        .map((w) => subjects.clientEvent(tenant.id, w)),
      fc.constantFrom("partitions", "stats", "x").map((op) => `${subjects.prefix}.host.api-h1.${op}`),
      fc.constant(subjects.chatOut(`s-${randomUUID()}`)),
    );
    // Event bodies that decode to the wrong shapes: nil, scalars, events without their fields.
    const eventBody = fc.oneof(
      payload().map((p) => p.bytes),
      fc
        .constantFrom<unknown>(
          null,
          0,
          "claimed",
          [],
          {},
          { jobId: 1 },
          { type: "failed", final: true, jobId: "x" },
          { type: "claimed" },
        )
        .map((v) => encodeBody(v)),
    );
    // The bodies that once stopped the host's NATS reader go first, whatever the sample holds.
    const known: Array<[string, Uint8Array, boolean]> = [
      [subjects.jobEvent(tenant.id, "j-nil", "claimed"), encodeBody(null), false],
      [
        subjects.jobEvent(tenant.id, "j-failed", "failed"),
        encodeBody({ type: "failed", final: true, jobId: "x" }),
        true,
      ],
    ];
    const inputs = [
      ...known,
      ...fc.sample(fc.tuple(subjectsArb, eventBody, fc.boolean()), { numRuns: RUNS, seed: FUZZ_SEED + 5 }),
    ];
    let published = 0;
    for (const [subject, bytes, stream] of inputs) {
      if (stream && !subject.includes(".host.") && !subject.includes(".chat.")) {
        await js.publish(subject, bytes);
      } else {
        f.nc.publish(subject, bytes);
      }
      published += 1;
    }
    await f.nc.flush();
    report["events"] = { inputs: published };
    recordFuzzReport("nats", "events", report["events"] as Record<string, unknown>);
    processesUp();
    await hostServes();
    // The gateway still verifies keys and reaches the tenant actor.
    const res = await f.call("GET", "/api/v1/me", { auth: `Bearer ${tenant.key}` });
    expect(res.status, res.text).toBe(200);
    expect(summarize(violations)).toEqual([]);
  });
});
