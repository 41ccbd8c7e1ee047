/**
 * Property-based fuzzing of the gateway process (issue 9): every HTTP route its OpenAPI document
 * lists (so a new route is fuzzed without touching this file) and every message of `/ws`, with
 * bodies that nearly match the route's schema, arbitrary JSON and bytes, hostile path parameters,
 * query strings and headers. Properties: no 5xx except a documented 503 (a dependency is down —
 * here there is no agent worker), every 4xx carries `{ error: { code, message, details } }`, no
 * response shows a secret, the processes stay up, and the gateway's memory stays bounded.
 *
 * Inputs per route family (and /ws messages): SF_FUZZ_RUNS (default 300); SF_FUZZ_SEED replays a run. The counts go
 * to `.sidekick/fuzz/gateway.json`.
 */
import { randomUUID } from "node:crypto";
import fc from "fast-check";
import type { Arbitrary } from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import type { ApiKeysCreateReply } from "../../actors/index.ts";
import { ERROR_STATUS } from "../../gateway/index.ts";
import type { OpenApiDocument } from "../../gateway/index.ts";
import { ApiFixture } from "../../tests/gateway/api_fixture.ts";
import { rawRequest } from "../../tests/gateway/raw_http.ts";
import type { RawResponse } from "../../tests/gateway/raw_http.ts";
import {
  sometimes,
  anyJson,
  createFuzzTenant,
  FUZZ_SEED,
  fuzzRuns,
  invalidUtf8,
  jsonText,
  MiB,
  metricValue,
  nastyString,
  nearSchema,
  percentEncode,
  pool,
  recordFuzzReport,
  residentBytes,
  summarize,
  withInvalidUtf8,
} from "./fuzz_kit.ts";
import type { Hints, Violation } from "./fuzz_kit.ts";

const RUNS = fuzzRuns(300);
/** Requests in flight at once. */
const CONCURRENCY = 8;
/** An answer later than this is a hang, not a slow answer (the claim timeout is 500 ms). */
const HANG_MS = 20_000;
const AGENT = "fuzz-agent";

let f: ApiFixture;
let doc: OpenApiDocument;
const tenant = { id: "", key: "", keyId: "", readKey: "" };
const other = { id: "", key: "", keyId: "" };
const violations: Violation[] = [];
const report: Record<string, unknown> = {};

beforeAll(async () => {
  f = await ApiFixture.start({ maxBodyBytes: 256 * 1024, claimTimeoutMs: 500 });
  const [a, b] = await Promise.all([
    createFuzzTenant(f, "fuzz", AGENT),
    createFuzzTenant(f, "fuzz-other", AGENT),
  ]);
  Object.assign(tenant, a);
  Object.assign(other, b);
  const readKey = await f.call<ApiKeysCreateReply>("POST", `/api/v2/clients/${tenant.id}/api-keys`, {
    auth: f.admin,
    body: { label: "fuzz read", scopes: ["agents:read"] },
    showsKey: true,
  });
  expect(readKey.status, readKey.text).toBe(201);
  tenant.readKey = readKey.body.key;
  const openapi = await f.call<OpenApiDocument>("GET", "/openapi.json");
  expect(openapi.status).toBe(200);
  doc = openapi.body;
});

afterAll(async () => {
  if (Object.keys(report).length > 0) recordFuzzReport("gateway", "summary", report);
  await f?.close();
});

// ---------------------------------------------------------------------------------------------
// Routes from the OpenAPI document

type Schema = Record<string, unknown>;

interface RouteSpec {
  method: string;
  /** OpenAPI pattern, `/api/v2/clients/{id}`. */
  path: string;
  family: string;
  query?: Schema;
  body?: Schema;
}

const OPERATIONS = ["get", "post", "put", "patch", "delete"] as const;

function routesOf(document: OpenApiDocument): RouteSpec[] {
  const out: RouteSpec[] = [];
  for (const [pattern, item] of Object.entries(document.paths)) {
    for (const op of OPERATIONS) {
      const operation = item[op] as
        | {
            parameters?: Array<{ name: string; in: string; required?: boolean; schema?: Schema }>;
            requestBody?: { content?: Record<string, { schema?: Schema }> };
          }
        | undefined;
      if (operation === undefined) continue;
      const queryParams = (operation.parameters ?? []).filter((p) => p.in === "query");
      const spec: RouteSpec = { method: op.toUpperCase(), path: pattern, family: familyOf(pattern) };
      if (queryParams.length > 0) {
        spec.query = {
          type: "object",
          required: queryParams.filter((p) => p.required === true).map((p) => p.name),
          properties: Object.fromEntries(queryParams.map((p) => [p.name, p.schema ?? { type: "string" }])),
        };
      }
      const body = operation.requestBody?.content?.["application/json"]?.schema;
      if (body !== undefined) spec.body = body;
      out.push(spec);
    }
  }
  return out;
}

/** Route families: the resource a route works on (new routes join a family by their path). */
function familyOf(pattern: string): string {
  if (pattern === "/admin" || pattern.startsWith("/admin/")) return "admin";
  if (!pattern.startsWith("/api/")) return "system";
  if (pattern.includes("trigger-agent") || pattern.startsWith("/api/embed/")) return "trigger";
  if (pattern.startsWith("/api/v1/")) return "v1";
  const sub = /^\/api\/v2\/clients\/\{id\}\/([a-z-]+)/.exec(pattern)?.[1];
  if (sub === "embeddings") return "v2 documents";
  if (sub !== undefined) return `v2 ${sub}`;
  if (pattern.startsWith("/api/v2/clients")) return "v2 clients";
  const top = /^\/api\/(v\d+)\/([a-z-]+)/.exec(pattern);
  return top === null ? "other" : `${top[1]} ${top[2]}`;
}

// ---------------------------------------------------------------------------------------------
// Requests

interface FuzzRequest {
  family: string;
  method: string;
  target: string;
  headers: Array<[string, string]>;
  body: Buffer;
}

const printable = (maxLength: number): Arbitrary<string> =>
  fc.string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)), maxLength });

const JUNK_SEGMENTS = ["%", "%zz", "%FF", "%c0%af", "..", "%2e%2e", "a%2Fb", "%00", ";x", "~", "%252F"];

function b64url(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString("base64url");
}

/** The id with its last hex digit changed: a uuid of no client. */
function nearMissId(id: string): string {
  return `${id.slice(0, -1)}${id.endsWith("0") ? "1" : "0"}`;
}

/**
 * A path parameter: mostly ids that exist, else anything. Routes that change or delete (PATCH,
 * PUT, DELETE) get the second tenant's ids, so the tenant the other inputs (and /ws) use keeps
 * its agent, its key and its database for the whole run.
 */
function paramValue(name: string, method: string): Arbitrary<string> {
  const mutating = method === "PATCH" || method === "PUT" || method === "DELETE";
  const owner = mutating ? other : tenant;
  const known: Record<string, () => string[]> = {
    id: () => [owner.id, owner.id.toUpperCase(), mutating ? nearMissId(tenant.id) : other.id],
    slug: () => [AGENT, "no-such-agent"],
    keyId: () => [owner.keyId],
    provider: () => ["openai", "groq", "deepgram", "cartesia", "elevenlabs"],
  };
  const values = known[name]?.() ?? [];
  return fc.oneof(
    {
      weight: values.length === 0 ? 0 : 6,
      arbitrary: fc.constantFrom(...(values.length === 0 ? ["x"] : values)),
    },
    { weight: 2, arbitrary: fc.uuid() },
    { weight: 3, arbitrary: nastyString.map(percentEncode) },
    { weight: 1, arbitrary: fc.constantFrom(...JUNK_SEGMENTS) },
  );
}

function pathFor(pattern: string, method: string): Arbitrary<string> {
  const names = [...pattern.matchAll(/\{([A-Za-z_][A-Za-z0-9_]*)\}/g)].map((m) => m[1] ?? "");
  if (names.length === 0) return fc.constant(pattern);
  return fc.tuple(...names.map((n) => paramValue(n, method))).map((values) => {
    let i = 0;
    return pattern.replace(/\{[A-Za-z_][A-Za-z0-9_]*\}/g, () => values[i++] ?? "");
  });
}

/** A query value, cut to 2000 characters (a longer request head is the raw-protocol suite's matter). */
function queryValue(value: unknown): string {
  return (typeof value === "string" ? value : jsonText(value)).slice(0, 2000);
}

function queryFor(schema: Schema | undefined): Arbitrary<string> {
  const known =
    schema === undefined
      ? fc.constant<Record<string, unknown>>({})
      : nearSchema(schema, hints()).map((v) =>
          typeof v === "object" && v !== null && !Array.isArray(v)
            ? (v as Record<string, unknown>)
            : { q: v },
        );
  const clientId = fc.constantFrom(tenant.id, other.id, randomUUID(), "x");
  return fc
    .tuple(
      known,
      sometimes(clientId, 1 / 3),
      fc.array(fc.tuple(nastyString, nastyString), { maxLength: 2 }),
      sometimes(fc.constantFrom("&&=&", "%zz=1", "a=%", "a[]=1&a[]=2", "=x", "limit=1&limit=2"), 1 / 6),
    )
    .map(([obj, cid, extra, junk]) => {
      const pairs: string[] = [];
      for (const [k, v] of Object.entries(obj))
        pairs.push(`${percentEncode(k)}=${percentEncode(queryValue(v))}`);
      if (cid !== null) pairs.push(`client_id=${cid}`);
      for (const [k, v] of extra) pairs.push(`${percentEncode(k)}=${percentEncode(v)}`);
      if (junk !== null) pairs.push(junk);
      return pairs.join("&");
    });
}

/**
 * Credentials: mostly the ones the route is for (the admin's on admin routes, the tenant's API
 * key on the thin-client and key routes), else another tenant's, a read-only key, none, or forged.
 */
function authHeader(pattern: string): Arbitrary<Array<[string, string]>> {
  const keyRoute =
    pattern.includes("trigger-agent") ||
    pattern.startsWith("/api/embed/") ||
    pattern.startsWith("/api/v2/documents") ||
    pattern === "/ws";
  const none = "none.none";
  const jwtNone = `${b64url({ alg: "none", typ: "JWT" })}.${b64url({ role: "service_role", exp: 9_999_999_999 })}.`;
  return fc
    .oneof(
      { weight: keyRoute ? 1 : 6, arbitrary: fc.constant(f.admin) },
      { weight: keyRoute ? 6 : 2, arbitrary: fc.constant(`Bearer ${tenant.key}`) },
      { weight: 1, arbitrary: fc.constant(`Bearer ${tenant.readKey}`) },
      { weight: 1, arbitrary: fc.constant(`Bearer ${other.key}`) },
      { weight: 1, arbitrary: fc.constant(none) },
      {
        weight: 2,
        arbitrary: fc.constantFrom(
          "Bearer",
          "Bearer ",
          "Basic Zm9vOmJhcg==",
          `Bearer ${jwtNone}`,
          `Bearer ${f.jwt({ role: "service_role" }, "w".repeat(40))}`,
          `Bearer ${f.jwt({ role: "service_role", exp: 1 })}`,
          `Bearer ${f.jwt({ role: "authenticated" })}`,
          "Bearer a.b.c",
          `Bearer ${tenant.key.slice(0, -1)}x`,
          `Bearer ${"k".repeat(4000)}`,
        ),
      },
      { weight: 1, arbitrary: printable(80).map((s) => `Bearer ${s}`) },
    )
    .chain((value) =>
      value === none
        ? fc.constant([])
        : fc.oneof(
            { weight: 5, arbitrary: fc.constant([["authorization", value]] as Array<[string, string]>) },
            {
              weight: 1,
              arbitrary: fc.constant([["x-api-key", value.replace(/^Bearer /, "")]] as Array<
                [string, string]
              >),
            },
          ),
    );
}

function otherHeaders(): Arbitrary<Array<[string, string]>> {
  return fc
    .tuple(
      sometimes(printable(140), 1 / 4),
      sometimes(
        fc.constantFrom("https://evil.example", "null", "https://shop.example", "http://localhost:3000"),
        1 / 6,
      ),
      sometimes(fc.tuple(fc.stringMatching(/^[a-z][a-z0-9-]{0,20}$/), printable(200)), 1 / 3),
      sometimes(fc.constantFrom("GET", "POST", "DELETE", "X"), 1 / 8),
      sometimes(fc.oneof(fc.uuid(), printable(300)), 1 / 6),
    )
    .map(([requestId, origin, extra, preflight, idempotency]) => {
      const out: Array<[string, string]> = [];
      if (requestId !== null) out.push(["x-request-id", requestId]);
      if (origin !== null) out.push(["origin", origin]);
      if (
        extra !== null &&
        !["content-length", "transfer-encoding", "host", "connection", "expect", "upgrade"].includes(extra[0])
      )
        out.push(extra);
      if (preflight !== null) out.push(["access-control-request-method", preflight]);
      if (idempotency !== null) out.push(["idempotency-key", idempotency]);
      return out;
    });
}

const CONTENT_TYPES = [
  "application/json; charset=utf-8",
  "text/plain",
  "application/x-www-form-urlencoded",
  "application/vnd.api+json",
  "application/json; charset=latin1",
  "multipart/form-data",
  "",
];

/** Field values that exist (the routes' bodies and queries mostly name them, to get past lookups). */
function hints(): Hints {
  return {
    client_id: [tenant.id],
    agent_slug: [AGENT],
    slug: [AGENT],
    user_id: ["fuzz-user"],
    mode: ["text"],
    message: ["hello"],
  };
}

/** A multipart body, well formed or not, with the fields an upload reads and others. */
function multipart(): Arbitrary<{ type: string; body: Buffer }> {
  const part = fc.record({
    name: fc.oneof(fc.constantFrom("file", "title", "agent_slugs", "metadata", "description"), nastyString),
    filename: fc.option(fc.oneof(fc.constantFrom("a.txt", "a.pdf", "a.md", "../x", ""), nastyString), {
      freq: 2,
    }),
    type: fc.option(fc.constantFrom("text/plain", "application/pdf", "text/markdown", "x/y"), { freq: 2 }),
    data: fc.oneof(
      nastyString,
      anyJson(3).map((v) => jsonText(v)),
      fc.constantFrom(`[${'"a",'.repeat(10)}"b"]`, "a,b,,c", `${"[".repeat(8000)}${"]".repeat(8000)}`),
      fc.uint8Array({ maxLength: 400 }).map((b) => Buffer.from(b).toString("latin1")),
    ),
  });
  return fc
    .tuple(
      // Header values are ASCII on the wire: the boundary is, well formed or not.
      fc.oneof(fc.stringMatching(/^[A-Za-z0-9'()+_,.\/:=?-]{1,70}$/), printable(90)),
      fc.array(part, { maxLength: 4 }),
      fc.constantFrom("ok", "ok", "ok", "no-end", "cut", "other-boundary", "no-crlf"),
    )
    .map(([boundary, parts, damage]) => {
      const chunks: string[] = [];
      for (const p of parts) {
        chunks.push(`--${boundary}\r\n`);
        const filename = p.filename === null ? "" : `; filename="${p.filename}"`;
        chunks.push(`Content-Disposition: form-data; name="${p.name}"${filename}\r\n`);
        if (p.type !== null) chunks.push(`Content-Type: ${p.type}\r\n`);
        chunks.push(`\r\n${p.data}\r\n`);
      }
      if (damage !== "no-end") chunks.push(`--${boundary}--\r\n`);
      let text = chunks.join("");
      if (damage === "cut") text = text.slice(0, Math.floor(text.length / 2));
      if (damage === "no-crlf") text = text.replaceAll("\r\n", "\n");
      const declared = damage === "other-boundary" ? "zzz" : boundary;
      return { type: `multipart/form-data; boundary=${declared}`, body: Buffer.from(text, "latin1") };
    });
}

function bodyFor(route: RouteSpec): Arbitrary<{ type: string | undefined; body: Buffer }> {
  const json = (t: string): { type: string; body: Buffer } => ({
    type: "application/json",
    body: Buffer.from(t),
  });
  const schemaBody =
    route.body === undefined
      ? anyJson(3).map((v) => json(jsonText(v)))
      : nearSchema(route.body, hints()).map((v) => json(jsonText(v)));
  const uploads = route.body === undefined && route.method === "POST";
  return fc.oneof(
    { weight: route.body === undefined ? 0 : 12, arbitrary: schemaBody },
    {
      weight: route.body === undefined ? 6 : 0,
      arbitrary: fc.constant({ type: undefined, body: Buffer.alloc(0) }),
    },
    {
      weight: 1,
      arbitrary: fc
        .tuple(schemaBody, invalidUtf8)
        .map(([b, junk]) => ({ type: b.type, body: withInvalidUtf8(b.body.toString(), junk) })),
    },
    {
      weight: 1,
      arbitrary: fc
        .tuple(schemaBody, fc.nat())
        .map(([b, cut]) => ({ type: b.type, body: b.body.subarray(0, cut % (b.body.length + 1)) })),
    },
    {
      weight: 1,
      arbitrary: fc
        .tuple(schemaBody, fc.constantFrom(...CONTENT_TYPES))
        .map(([b, type]) => ({ type: type === "" ? undefined : type, body: b.body })),
    },
    {
      weight: 1,
      arbitrary: fc
        .uint8Array({ maxLength: 300 })
        .map((b) => ({ type: "application/json", body: Buffer.from(b) })),
    },
    { weight: 1, arbitrary: fc.constant({ type: "application/json", body: Buffer.alloc(0) }) },
    { weight: uploads ? 10 : 1, arbitrary: multipart() },
  );
}

/**
 * Methods uWS hands to the gateway. (It closes the connection on methods it does not know, in
 * lower case or not: the raw-protocol suite covers malformed request lines.)
 */
const METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"];

function requestFor(route: RouteSpec): Arbitrary<FuzzRequest> {
  const method = fc.oneof(
    { weight: 14, arbitrary: fc.constant(route.method) },
    { weight: route.method === "GET" ? 1 : 0, arbitrary: fc.constant("HEAD") },
    { weight: 1, arbitrary: fc.constantFrom(...METHODS) },
  );
  // The ids follow the method actually sent (a GET route's path sent as DELETE deletes).
  const readPath = pathFor(route.path, "GET");
  const writePath = pathFor(route.path, "DELETE");
  const methodAndPath = method.chain((m) =>
    fc.tuple(fc.constant(m), ["PATCH", "PUT", "DELETE"].includes(m) ? writePath : readPath),
  );
  return fc
    .tuple(methodAndPath, queryFor(route.query), authHeader(route.path), otherHeaders(), bodyFor(route))
    .map(([[m, path], query, auth, more, body]) => {
      const headers: Array<[string, string]> = [["host", "fuzz.local"], ...auth, ...more];
      if (body.type !== undefined) headers.push(["content-type", body.type]);
      return {
        family: route.family,
        method: m,
        target: query === "" ? path : `${path}?${query}`,
        headers,
        body: body.body,
      };
    });
}

function wire(req: FuzzRequest): Buffer {
  const head = [`${req.method} ${req.target} HTTP/1.1`];
  for (const [k, v] of req.headers) head.push(`${k}: ${v}`);
  head.push(`content-length: ${req.body.length}`);
  return Buffer.concat([Buffer.from(`${head.join("\r\n")}\r\n\r\n`, "latin1"), req.body]);
}

/** The request as a JSON line: enough to replay it (secrets cut to a prefix). */
function describeRequest(req: FuzzRequest): string {
  const body =
    req.body.length > 600
      ? `${req.body.subarray(0, 600).toString("latin1")}…(${req.body.length} B)`
      : req.body.toString("latin1");
  const headers = req.headers.map(([k, v]) => [
    k,
    k === "authorization" || k === "x-api-key" ? `${v.slice(0, 16)}…` : v.slice(0, 200),
  ]);
  return JSON.stringify({ method: req.method, target: req.target.slice(0, 600), headers, body });
}

function errorCode(body: string): unknown {
  try {
    return (JSON.parse(body) as { error?: { code?: unknown } }).error?.code;
  } catch {
    return undefined;
  }
}

/** A 503 whose code the error table documents as a dependency (or capacity) being unavailable. */
function documented503(code: unknown): boolean {
  return typeof code === "string" && ERROR_STATUS[code]?.status === 503;
}

function check(req: FuzzRequest, res: RawResponse, secrets: readonly string[]): Violation[] {
  const out: Violation[] = [];
  const input = describeRequest(req);
  const add = (rule: string, outcome: string): void => {
    out.push({ family: req.family, rule, input, outcome });
  };
  let code: unknown;
  let envelope: { error?: { code?: unknown; message?: unknown; details?: unknown } } | undefined;
  // The admin console's pages answer a browser with an HTML page, errors included.
  const page = (res.headers["content-type"] ?? "").startsWith("text/html");
  if (res.status >= 400 && req.method !== "HEAD" && !page) {
    try {
      envelope = JSON.parse(res.body) as typeof envelope;
    } catch {
      envelope = undefined;
    }
    code = envelope?.error?.code;
    const e = envelope?.error;
    if (
      e === undefined ||
      typeof e.code !== "string" ||
      !/^SF_ERR_[A-Z0-9_]+$/.test(e.code) ||
      typeof e.message !== "string" ||
      typeof e.details !== "object" ||
      e.details === null
    ) {
      add("envelope", `${res.status} ${res.body.slice(0, 200)}`);
    }
  }
  if (res.status >= 500 && !(res.status === 503 && (req.method === "HEAD" || documented503(code)))) {
    add("5xx", `${res.status} ${String(code)} ${res.body.slice(0, 200)}`);
  }
  if (!(res.status >= 100 && res.status < 600)) add("status", `status ${res.status}`);
  if (res.headers["x-request-id"] === undefined && res.status !== 426)
    add("request id", `${res.status} without x-request-id`);
  for (const s of secrets) {
    if (res.body.includes(s)) add("secret", `${res.status} body shows a secret`);
  }
  return out;
}

async function send(req: FuzzRequest): Promise<RawResponse | Error> {
  try {
    return await rawRequest(f.gw.port, [wire(req)], {
      head: req.method === "HEAD",
      signal: AbortSignal.timeout(HANG_MS),
    });
  } catch (err) {
    return err instanceof Error ? err : new Error(String(err));
  }
}

async function memory(): Promise<{ rssMiB: number; heapMiB: number }> {
  const page = await f.call("GET", "/metrics");
  const heap = metricValue(page.text, "sf_nodejs_heap_size_used_bytes");
  return {
    rssMiB: Math.round((residentBytes(f.gw.proc.pid) / MiB) * 10) / 10,
    heapMiB: Math.round((heap / MiB) * 10) / 10,
  };
}

// ---------------------------------------------------------------------------------------------

describe("fuzzing - HTTP routes of the OpenAPI document", () => {
  it("fuzz - no route answers 5xx (but a documented 503), every 4xx has the error envelope, memory stays bounded", async () => {
    const routes = routesOf(doc);
    const families = new Map<string, RouteSpec[]>();
    for (const r of routes) families.set(r.family, [...(families.get(r.family) ?? []), r]);
    // Every route of the document is in some family, and the families cover the API.
    expect(routes.length).toBeGreaterThan(30);
    expect([...families.keys()]).toEqual(
      expect.arrayContaining(["system", "trigger", "v1", "v2 clients", "v2 agents"]),
    );

    const secrets = f.secrets([tenant.key, tenant.readKey, other.key]);
    const before = await memory();
    const counts: Record<
      string,
      { routes: number; inputs: number; seconds: number; statuses: Record<string, number> }
    > = {};
    let familyIndex = 0;
    // The client routes delete clients: they run last.
    const only = process.env["SF_FUZZ_FAMILIES"]?.split(",");
    const ordered = [...families]
      .filter(([name]) => only === undefined || only.includes(name))
      .sort(([a], [b]) => Number(a === "v2 clients") - Number(b === "v2 clients"));
    for (const [family, members] of ordered) {
      familyIndex += 1;
      // Each route's arbitrary is built once (building one compiles its schema's patterns).
      const perRoute = new Map(members.map((r) => [r, requestFor(r)]));
      const arb = fc.constantFrom(...members).chain((r) => perRoute.get(r) ?? requestFor(r));
      const inputs = fc.sample(arb, { numRuns: RUNS, seed: FUZZ_SEED + familyIndex });
      const statuses: Record<string, number> = {};
      const started = performance.now();
      await pool(inputs, CONCURRENCY, async (req) => {
        const res = await send(req);
        if (res instanceof Error) {
          violations.push({ family, rule: "no answer", input: describeRequest(req), outcome: res.message });
          statuses["none"] = (statuses["none"] ?? 0) + 1;
          return;
        }
        const outcome =
          res.status >= 400 ? `${res.status} ${String(errorCode(res.body))}` : String(res.status);
        statuses[outcome] = (statuses[outcome] ?? 0) + 1;
        violations.push(...check(req, res, secrets));
      });
      counts[family] = {
        routes: members.length,
        inputs: inputs.length,
        seconds: Math.round((performance.now() - started) / 100) / 10,
        statuses,
      };
      if (!f.gw.proc.running || !f.host.running) {
        violations.push({
          family,
          rule: "crash",
          input: "-",
          outcome: f.gw.proc.running ? f.host.tail() : f.gw.proc.tail(),
        });
        break;
      }
    }
    const after = await memory();
    const health = await f.call("GET", "/health");
    const total = Object.values(counts).reduce((n, c) => n + c.inputs, 0);
    report["http"] = {
      runsPerFamily: RUNS,
      inputs: total,
      families: counts,
      memory: { before, after },
      violations: violations.length,
    };
    recordFuzzReport("gateway", "http", report["http"] as Record<string, unknown>);

    expect(summarize(violations)).toEqual([]);
    expect(health.status).toBe(200);
    expect(f.gw.proc.running).toBe(true);
    expect(f.host.running).toBe(true);
    // Generous: the gateway holds no per-request state once a request is answered.
    expect(after.rssMiB - before.rssMiB).toBeLessThan(192);
    expect(after.heapMiB).toBeLessThan(256);
  }, 600_000);
});

// ---------------------------------------------------------------------------------------------
// WebSocket

/** The gateway's SF_WS_MAX_PAYLOAD_BYTES (its default): a larger message closes the socket with 1009. */
const WS_MAX_PAYLOAD_BYTES = 64 * 1024;

/** The one message type a client sends on `/ws` (gateway/ws_chat.ts), as a schema to miss. */
const WS_MESSAGE_SCHEMA: Schema = {
  type: "object",
  required: ["type", "agent_slug", "text"],
  properties: {
    type: { const: "message" },
    agent_slug: {
      anyOf: [{ const: AGENT }, { type: "string", pattern: "^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$" }],
    },
    text: { type: "string", minLength: 1, maxLength: 32_000 },
    conversation_id: { type: "string", maxLength: 200 },
    user_id: { type: "string", maxLength: 200 },
    request_id: { type: "string", maxLength: 200 },
  },
};

type WsInput =
  { kind: "text"; data: string } | { kind: "binary"; data: Buffer } | { kind: "oversized"; bytes: number };

const wsInput: Arbitrary<WsInput> = fc.oneof(
  {
    weight: 12,
    arbitrary: nearSchema(WS_MESSAGE_SCHEMA).map((v) => ({ kind: "text" as const, data: jsonText(v) })),
  },
  { weight: 2, arbitrary: anyJson(3).map((v) => ({ kind: "text" as const, data: jsonText(v) })) },
  { weight: 2, arbitrary: nastyString.map((s) => ({ kind: "text" as const, data: s })) },
  {
    weight: 1,
    arbitrary: fc
      .uint8Array({ maxLength: 300 })
      .map((b) => ({ kind: "binary" as const, data: Buffer.from(b) })),
  },
  { weight: 1, arbitrary: fc.constant({ kind: "oversized" as const, bytes: WS_MAX_PAYLOAD_BYTES + 1 }) },
);

interface Socket {
  ws: WebSocket;
  frames: Array<Record<string, unknown>>;
  closed?: { code: number; reason: string };
  wake?: () => void;
}

async function openSocket(headers: Record<string, string>, query = ""): Promise<Socket> {
  const ws = new WebSocket(`ws://127.0.0.1:${f.gw.port}/ws${query}`, { headers });
  const socket: Socket = { ws, frames: [] };
  ws.on("message", (data: Buffer) => {
    try {
      socket.frames.push(JSON.parse(data.toString("utf8")) as Record<string, unknown>);
    } catch {
      socket.frames.push({ unparsable: data.toString("utf8").slice(0, 200) });
    }
    socket.wake?.();
  });
  ws.on("close", (code: number, reason: Buffer) => {
    socket.closed = { code, reason: reason.toString() };
    socket.wake?.();
  });
  ws.on("error", () => {
    socket.closed ??= { code: -1, reason: "socket error" };
    socket.wake?.();
  });
  await new Promise<void>((resolve) => {
    ws.once("open", () => resolve());
    ws.once("close", () => resolve());
    ws.once("error", () => resolve());
  });
  return socket;
}

/** Waits for the next frame that ends a turn (`error` or `message`), or the close. */
async function nextTerminal(
  socket: Socket,
  deadline: number,
): Promise<Record<string, unknown> | "closed" | "hang"> {
  for (;;) {
    const i = socket.frames.findIndex(
      (fr) => fr["type"] === "error" || fr["type"] === "message" || "unparsable" in fr,
    );
    if (i !== -1) {
      const frame = socket.frames[i] as Record<string, unknown>;
      socket.frames.splice(0, i + 1);
      return frame;
    }
    if (socket.closed !== undefined) return "closed";
    if (performance.now() > deadline) return "hang";
    await new Promise<void>((resolve) => {
      socket.wake = resolve;
      setTimeout(resolve, 250);
    });
  }
}

describe("fuzzing - WebSocket /ws", () => {
  it("fuzz - every message gets a coded error or a reply, the socket stays open (only an oversized message closes it, 1009)", async () => {
    const before = await memory();
    const inputs = fc.sample(wsInput, { numRuns: RUNS, seed: FUZZ_SEED + 101 });
    const outcomes: Record<string, number> = {};
    const count = (k: string): void => {
      outcomes[k] = (outcomes[k] ?? 0) + 1;
    };
    /** One socket's share of the inputs, one message at a time (each waits for its answer). */
    const lane = async (share: readonly WsInput[]): Promise<void> => {
      let socket = await openSocket({ authorization: `Bearer ${tenant.key}` });
      expect(socket.closed).toBeUndefined();
      for (const input of share) {
        const shown =
          input.kind === "oversized"
            ? `oversized ${input.bytes} B`
            : `${input.kind} ${JSON.stringify(input.data.toString()).slice(0, 300)}`;
        if (input.kind === "oversized") socket.ws.send("x".repeat(input.bytes));
        else if (input.kind === "binary") socket.ws.send(input.data, { binary: true });
        else socket.ws.send(input.data);
        const outcome = await nextTerminal(socket, performance.now() + HANG_MS);
        const bytes = input.kind === "oversized" ? input.bytes : Buffer.byteLength(input.data);
        if (bytes > WS_MAX_PAYLOAD_BYTES) {
          if (outcome !== "closed" || socket.closed?.code !== 1009) {
            violations.push({
              family: "ws",
              rule: "oversized",
              input: shown,
              outcome: JSON.stringify(outcome),
            });
          }
          count("closed 1009");
        } else if (outcome === "closed" || outcome === "hang") {
          violations.push({
            family: "ws",
            rule: outcome,
            input: shown,
            outcome: JSON.stringify(socket.closed ?? {}),
          });
          count(outcome);
        } else if (outcome["type"] === "error") {
          if (
            typeof outcome["code"] !== "string" ||
            !/^SF_ERR_[A-Z0-9_]+$/.test(outcome["code"]) ||
            typeof outcome["message"] !== "string"
          ) {
            violations.push({
              family: "ws",
              rule: "error frame",
              input: shown,
              outcome: JSON.stringify(outcome),
            });
          }
          const code = String(outcome["code"]);
          const status = ERROR_STATUS[code]?.status ?? 500;
          if (status >= 500 && status !== 503) {
            violations.push({
              family: "ws",
              rule: "5xx code",
              input: shown,
              outcome: JSON.stringify(outcome),
            });
          }
          count(`error ${code}`);
        } else if (outcome["type"] === "message") {
          count("message");
        } else {
          violations.push({ family: "ws", rule: "frame", input: shown, outcome: JSON.stringify(outcome) });
        }
        if (socket.closed !== undefined) {
          socket.ws.terminate();
          socket = await openSocket({ authorization: `Bearer ${tenant.key}` });
        }
      }
      socket.ws.close();
    };
    const lanes = 4;
    await Promise.all(
      Array.from({ length: lanes }, (_, k) => lane(inputs.filter((_input, n) => n % lanes === k))),
    );

    // The upgrade: credentials and origins, wrong or right; the answer is an open socket or a close code.
    const upgrades = fc.sample(
      fc.tuple(
        fc.option(
          fc.constantFrom(
            `Bearer ${tenant.key}`,
            `Bearer ${tenant.readKey}`,
            f.admin,
            "Bearer x",
            "Basic eA==",
          ),
          { freq: 2 },
        ),
        fc.option(fc.constantFrom("https://evil.example", "null", "https://shop.example"), { freq: 2 }),
        fc.option(fc.oneof(fc.constant(tenant.key), nastyString.map(percentEncode)), { freq: 2 }),
      ),
      { numRuns: Math.max(20, Math.floor(RUNS / 5)), seed: FUZZ_SEED + 102 },
    );
    const closes: Record<string, number> = {};
    for (const [auth, origin, token] of upgrades) {
      const headers: Record<string, string> = {};
      if (auth !== null) headers["authorization"] = auth;
      if (origin !== null) headers["origin"] = origin;
      const s = await openSocket(headers, token === null ? "" : `?token=${token}`);
      if (s.closed === undefined) {
        s.ws.send(JSON.stringify({ type: "ping" }));
        await nextTerminal(s, performance.now() + HANG_MS);
      }
      const code = s.closed?.code ?? (s.ws.readyState === WebSocket.OPEN ? 0 : -2);
      closes[String(code)] = (closes[String(code)] ?? 0) + 1;
      if (![0, 4401, 4403, 1008].includes(code)) {
        violations.push({
          family: "ws upgrade",
          rule: "close code",
          input: JSON.stringify({ auth: auth?.slice(0, 20), origin, token: token?.slice(0, 40) }),
          outcome: JSON.stringify(s.closed),
        });
      }
      s.ws.terminate();
    }
    const after = await memory();
    report["ws"] = {
      messages: inputs.length,
      upgrades: upgrades.length,
      outcomes,
      closes,
      memory: { before, after },
    };
    recordFuzzReport("gateway", "ws", report["ws"] as Record<string, unknown>);
    expect(summarize(violations.filter((v) => v.family.startsWith("ws")))).toEqual([]);
    expect(f.gw.proc.running).toBe(true);
    expect(after.rssMiB - before.rssMiB).toBeLessThan(192);
  }, 600_000);
});

// ---------------------------------------------------------------------------------------------
// What the fuzzing found, kept as plain examples

describe("fuzzing - regressions", () => {
  it("found - a free-form field nested 3,000 levels answers 400 SF_ERR_BAD_JSON (was a 500: the bus encoder overflowed its stack)", async () => {
    const deep = `${'{"a":'.repeat(3000)}1${"}".repeat(3000)}`;
    const trigger = await f.call("POST", "/api/v2/trigger-agent", {
      auth: `Bearer ${tenant.key}`,
      body: `{"agent_slug":"${AGENT}","user_id":"u","mode":"text","message":"hi","context":${deep}}`,
    });
    expect(trigger.status, trigger.text).toBe(400);
    expect(errorCode(trigger.text)).toBe("SF_ERR_BAD_JSON");
    const agent = await f.call("POST", `/api/v2/clients/${tenant.id}/agents`, {
      auth: f.admin,
      body: `{"slug":"deep-agent","name":"Deep","tools_config":${deep}}`,
    });
    expect(agent.status, agent.text).toBe(400);
    expect(errorCode(agent.text)).toBe("SF_ERR_BAD_JSON");
  });

  it("found - a NUL character in a stored field answers 400 SF_ERR_INVALID_INPUT (was a 500 SF_ERR_DATABASE)", async () => {
    const res = await f.call("POST", `/api/v2/clients/${tenant.id}/agents`, {
      auth: f.admin,
      body: { slug: "nul-agent", name: "a\u0000b" },
    });
    expect(res.status, res.text).toBe(400);
    expect(errorCode(res.text)).toBe("SF_ERR_INVALID_INPUT");
  });

  it("found - a /ws request_id with control characters is echoed, not put in a NATS header (was SF_ERR_INTERNAL)", async () => {
    const socket = await openSocket({ authorization: `Bearer ${tenant.key}` });
    const requestId = "a\r\nb\u0001c";
    socket.ws.send(
      JSON.stringify({ type: "message", agent_slug: "no-such-agent", text: "hi", request_id: requestId }),
    );
    const frame = await nextTerminal(socket, performance.now() + HANG_MS);
    socket.ws.close();
    expect(frame).toMatchObject({ type: "error", code: "SF_ERR_AGENT_NOT_FOUND", request_id: requestId });
  });
});
