/**
 * What the fuzzing suites share: the run budget (SF_FUZZ_RUNS, SF_FUZZ_SEED), arbitraries for
 * hostile strings and for JSON values that nearly match a JSON schema (the route schemas of
 * the gateway's OpenAPI document), JSON text that `JSON.stringify` cannot build (deep nesting,
 * invalid UTF-8), the gateway process's memory, and the JSON report of each campaign.
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import fc from "fast-check";
import type { Arbitrary } from "fast-check";
import type { ApiKeysCreateReply, ClientDetailView } from "../../actors/index.ts";
import type { ApiFixture } from "../../tests/gateway/api_fixture.ts";
import { repoRoot } from "../helpers/services.ts";

/** Inputs per family (route family, message type, subject) in one run; SF_FUZZ_RUNS overrides. */
export function fuzzRuns(defaultRuns: number): number {
  const raw = process.env["SF_FUZZ_RUNS"];
  if (raw === undefined || raw === "") return defaultRuns;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) throw new Error(`SF_FUZZ_RUNS must be a positive integer, not ${raw}`);
  return n;
}

/** The seed of this run (SF_FUZZ_SEED replays one); printed in every report. */
export const FUZZ_SEED: number = (() => {
  const raw = process.env["SF_FUZZ_SEED"];
  if (raw !== undefined && raw !== "") {
    const n = Number(raw);
    if (!Number.isInteger(n)) throw new Error(`SF_FUZZ_SEED must be an integer, not ${raw}`);
    return n;
  }
  return Math.floor(Math.random() * 2 ** 31);
})();

/** One input that broke a property: what was sent and what came back. */
export interface Violation {
  family: string;
  /** The property it broke (`5xx`, `envelope`, `no answer`, ...). */
  rule: string;
  input: string;
  outcome: string;
}

/** Violations grouped by family and rule, one example each: what a report and a failing test show. */
export function summarize(violations: readonly Violation[]): string[] {
  const seen = new Map<string, { count: number; example: Violation }>();
  for (const v of violations) {
    const key = `${v.family} | ${v.rule} | ${v.outcome.slice(0, 120)}`;
    const entry = seen.get(key);
    if (entry === undefined) seen.set(key, { count: 1, example: v });
    else entry.count += 1;
  }
  return [...seen.entries()].map(
    ([key, { count, example }]) => `${count}x ${key}\n    e.g. ${example.input.slice(0, 1500)}`,
  );
}

/**
 * Writes `<repo>/.sidekick/fuzz/<name>.json` (merged into what earlier tests of the same file
 * wrote) and prints it, so a run's counts are on record.
 */
export function recordFuzzReport(name: string, section: string, data: Record<string, unknown>): void {
  const dir = path.join(repoRoot(), ".sidekick", "fuzz");
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${name}.json`);
  let report: Record<string, unknown> = {};
  try {
    report = JSON.parse(readFileSync(file, "utf8")) as Record<string, unknown>;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
  }
  if (report["seed"] !== FUZZ_SEED) report = { seed: FUZZ_SEED };
  report[section] = { at: new Date().toISOString(), ...data };
  writeFileSync(file, `${JSON.stringify(report, null, 2)}\n`);
  console.log(`[fuzz] ${name} ${section} seed=${FUZZ_SEED} ${JSON.stringify(data)}`);
}

/** Resident set size of a process, from /proc (bytes). */
export function residentBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = /^VmRSS:\s+(\d+)\s+kB$/m.exec(status)?.[1];
  if (kb === undefined) throw new Error(`no VmRSS for process ${pid}`);
  return Number(kb) * 1024;
}

/** A gauge's value from a Prometheus text page (the first sample of that name). */
export function metricValue(page: string, name: string): number {
  const line = page.split("\n").find((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`));
  if (line === undefined) throw new Error(`metric ${name} not found`);
  return Number(line.slice(line.lastIndexOf(" ") + 1));
}

export const MiB = 1024 * 1024;

/** Runs `run` on every item, at most `limit` at a time, in the items' order of start. */
export async function pool<T>(
  items: readonly T[],
  limit: number,
  run: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: limit }, async () => {
      while (next < items.length) {
        const item = items[next++] as T;
        await run(item);
      }
    }),
  );
}

// ---------------------------------------------------------------------------------------------
// Hostile strings

/** Strings that have broken parsers, queries and templates elsewhere. */
export const NASTY_STRINGS: readonly string[] = [
  "",
  " ",
  "null",
  "undefined",
  "0",
  "-1",
  "1e309",
  "NaN",
  "true",
  "[]",
  "{}",
  "' OR '1'='1",
  "'; drop table agents; --",
  "1; select pg_sleep(5)",
  "\u0000",
  "\u0000abc",
  "\u202eevil",
  "\ufeff",
  "%00",
  "%",
  "%zz",
  "%c0%af",
  "../../etc/passwd",
  "..%2f..%2f",
  "<script>alert(1)</script>",
  "${jndi:ldap://x/a}",
  "{{7*7}}",
  "__proto__",
  "constructor",
  "prototype",
  "\ud800",
  "a\udc00b",
  "😀🏳️‍🌈",
  "sf.t.0.x.get",
  "*",
  ">",
  "a".repeat(129),
  "x".repeat(5000),
];

/** Object keys that trip naive code (`__proto__` is an own key once JSON parses it). */
export const NASTY_KEYS: readonly string[] = [
  "__proto__",
  "constructor",
  "prototype",
  "toString",
  "hasOwnProperty",
  "",
  "a.b",
  "$where",
  "\u0000",
  "k".repeat(300),
];

/** `arb` with probability `p`, else null (fc.option's `freq` is the odds of null, the other way round). */
export function sometimes<T>(arb: Arbitrary<T>, p: number): Arbitrary<T | null> {
  const yes = Math.max(1, Math.round(p * 1000));
  return fc.oneof({ weight: 1000 - yes, arbitrary: fc.constant(null) }, { weight: yes, arbitrary: arb });
}

export const nastyString: Arbitrary<string> = fc.oneof(
  { weight: 4, arbitrary: fc.string({ maxLength: 24 }) },
  { weight: 2, arbitrary: fc.string({ unit: "binary", maxLength: 24 }) },
  { weight: 3, arbitrary: fc.constantFrom(...NASTY_STRINGS) },
  { weight: 1, arbitrary: fc.string({ unit: "binary", minLength: 200, maxLength: 2000 }) },
);

export const nastyKey: Arbitrary<string> = fc.oneof(
  { weight: 2, arbitrary: fc.constantFrom(...NASTY_KEYS) },
  { weight: 1, arbitrary: fc.string({ maxLength: 12 }) },
);

// ---------------------------------------------------------------------------------------------
// JSON text beyond JSON.stringify

/** A JSON text spliced in verbatim by `jsonText` (deep nesting, duplicate keys, odd numbers). */
export class RawJson {
  constructor(readonly text: string) {}
}

/** `[[[…]]]` or `{"a":{"a":…}}` nested `depth` levels: built as text, never as a value. */
export function deepJson(depth: number, kind: "array" | "object"): RawJson {
  return kind === "array"
    ? new RawJson(`${"[".repeat(depth)}${"]".repeat(depth)}`)
    : new RawJson(`${'{"a":'.repeat(depth)}1${"}".repeat(depth)}`);
}

/** JSON texts `JSON.stringify` never produces but a parser accepts. */
const ODD_JSON: readonly string[] = [
  "1e400",
  "-0",
  "0.0000000000000000000000000001",
  "123456789012345678901234567890",
  '{"a":1,"a":2}',
  '"\\ud800"',
  '"\\u0000"',
  "[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20]",
];

export const rawJson: Arbitrary<RawJson> = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...ODD_JSON).map((t) => new RawJson(t)) },
  {
    weight: 2,
    arbitrary: fc
      .tuple(fc.integer({ min: 20, max: 20_000 }), fc.constantFrom("array" as const, "object" as const))
      .map(([depth, kind]) => deepJson(depth, kind)),
  },
);

/** Serializes a value to JSON text, splicing RawJson nodes in verbatim; own `__proto__` keys kept. */
export function jsonText(value: unknown): string {
  if (value instanceof RawJson) return value.text;
  if (Array.isArray(value)) return `[${value.map((v) => jsonText(v)).join(",")}]`;
  if (typeof value === "object" && value !== null) {
    const parts = Object.keys(value).map(
      (k) => `${JSON.stringify(k)}:${jsonText((value as Record<string, unknown>)[k])}`,
    );
    return `{${parts.join(",")}}`;
  }
  return JSON.stringify(value) ?? "null";
}

/** Any JSON value, small, now and then with a RawJson part. */
export function anyJson(maxDepth = 3): Arbitrary<unknown> {
  return fc.oneof(
    { weight: 8, arbitrary: fc.jsonValue({ maxDepth }) },
    { weight: 2, arbitrary: nastyString },
    { weight: 1, arbitrary: rawJson },
  );
}

// ---------------------------------------------------------------------------------------------
// Values that nearly match a JSON schema (the dialect of the route schemas: type, properties,
// required, additionalProperties, enum, const, anyOf, pattern, min/max, items)

type Schema = Record<string, unknown>;

const MAX_SCHEMA_DEPTH = 6;

function asSchema(value: unknown): Schema {
  return typeof value === "object" && value !== null ? (value as Schema) : {};
}

function num(schema: Schema, key: string): number | undefined {
  const v = schema[key];
  return typeof v === "number" ? v : undefined;
}

/** Values at and just past the schema's edges: the off-by-one and wrong-type cases. */
function edges(schema: Schema): Arbitrary<unknown> {
  const out: unknown[] = [null, true, 0, -1, 1.5, "", [], {}, 2 ** 53, -(2 ** 31) - 1];
  const maxLength = num(schema, "maxLength");
  if (maxLength !== undefined) out.push("x".repeat(Math.min(maxLength + 1, 120_000)));
  const minLength = num(schema, "minLength");
  if (minLength !== undefined && minLength > 0) out.push("x".repeat(minLength - 1));
  const minimum = num(schema, "minimum");
  if (minimum !== undefined) out.push(minimum - 1, minimum - 0.5);
  const maximum = num(schema, "maximum");
  if (maximum !== undefined) out.push(maximum + 1, maximum + 0.5);
  const maxItems = num(schema, "maxItems");
  if (maxItems !== undefined) out.push(Array.from({ length: maxItems + 1 }, (_, i) => `item-${i}`));
  return fc.constantFrom(...out);
}

/** Values known to exist, by field name: a field of that name mostly gets one of them. */
export type Hints = Readonly<Record<string, readonly unknown[]>>;

/** How values are made: `strict` ones match their schema; `hints` name existing values. */
interface Gen {
  strict: boolean;
  hints: Hints;
}

function stringFor(schema: Schema, strict: boolean): Arbitrary<string> {
  const maxLength = Math.min(num(schema, "maxLength") ?? 60, 60);
  const minLength = Math.min(num(schema, "minLength") ?? 0, maxLength);
  const pattern = schema["pattern"];
  const valid =
    typeof pattern === "string"
      ? fc.stringMatching(new RegExp(pattern))
      : fc.string({ minLength, maxLength });
  return strict ? valid : fc.oneof({ weight: 4, arbitrary: valid }, { weight: 1, arbitrary: nastyString });
}

function ofType(type: string, schema: Schema, depth: number, g: Gen): Arbitrary<unknown> {
  switch (type) {
    case "string":
      return stringFor(schema, g.strict);
    case "integer":
      return fc.integer({
        min: num(schema, "minimum") ?? -1_000_000,
        max: num(schema, "maximum") ?? 1_000_000,
      });
    case "number":
      return fc.double({
        noNaN: true,
        noDefaultInfinity: true,
        min: num(schema, "minimum") ?? -1e9,
        max: num(schema, "maximum") ?? 1e9,
      });
    case "boolean":
      return fc.boolean();
    case "null":
      return fc.constant(null);
    case "array":
      return fc.array(near(asSchema(schema["items"]), depth + 1, g), {
        maxLength: Math.min(num(schema, "maxItems") ?? 4, 4),
      });
    case "object":
      return objectFor(schema, depth, g);
    default:
      return anyJson(2);
  }
}

function objectFor(schema: Schema, depth: number, g: Gen): Arbitrary<unknown> {
  const props = Object.entries(asSchema(schema["properties"]));
  const required = Array.isArray(schema["required"]) ? (schema["required"] as string[]) : [];
  const model: Record<string, Arbitrary<unknown>> = {};
  for (const [key, sub] of props) {
    const own = near(asSchema(sub), depth + 1, g);
    const known = g.hints[key];
    // A field with values known to exist (the tenant's id, its agent's slug) mostly gets one.
    model[key] =
      known === undefined || known.length === 0
        ? own
        : fc.oneof({ weight: 3, arbitrary: fc.constantFrom(...known) }, { weight: 1, arbitrary: own });
  }
  const withRequired = fc.record(model, { requiredKeys: required.filter((k) => k in model) });
  const known =
    props.length === 0
      ? // A free-form object (context, voice_settings, metadata): anything goes, deep values too.
        fc.dictionary(
          fc.string({ maxLength: 8 }),
          fc.oneof({ weight: 5, arbitrary: anyJson(2) }, { weight: 1, arbitrary: rawJson }),
          { maxKeys: 3 },
        )
      : g.strict
        ? withRequired
        : fc.oneof(
            { weight: 5, arbitrary: withRequired },
            { weight: 1, arbitrary: fc.record(model, { requiredKeys: [] }) },
          );
  if (g.strict && schema["additionalProperties"] === false) return known;
  const extra = fc.dictionary(g.strict ? fc.string({ maxLength: 8 }) : nastyKey, anyJson(2), { maxKeys: 2 });
  return fc
    .tuple(known, sometimes(extra, 1 / 6))
    .map(([base, more]) => (more === null ? base : ownMerge(base, more)));
}

/**
 * The own keys of both objects in a new one, `__proto__` kept as an own key. `Object.assign` sets
 * that key, which gives the result a prototype instead: with a RawJson there, the object passed
 * for a RawJson in `jsonText` and a fuzz input became `true` (seed 441767038).
 */
function ownMerge(...sources: ReadonlyArray<Record<string, unknown>>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const source of sources) {
    for (const key of Object.keys(source)) {
      Object.defineProperty(out, key, {
        value: source[key],
        enumerable: true,
        writable: true,
        configurable: true,
      });
    }
  }
  return out;
}

/**
 * A value for `schema` at `depth`: when `strict`, one that matches it; otherwise one that matches
 * most of the time and else misses it by a little (an edge) or a lot (any JSON).
 */
function near(schema: Schema, depth: number, g: Gen): Arbitrary<unknown> {
  if (depth > MAX_SCHEMA_DEPTH) return fc.constant(null);
  const valid = validFor(schema, depth, g);
  if (g.strict) return valid;
  return fc.oneof(
    { weight: 12, arbitrary: valid },
    { weight: 1, arbitrary: edges(schema) },
    { weight: 1, arbitrary: anyJson(3) },
  );
}

/**
 * Inputs for a route's schema: valid ones (so the handlers behind validation are reached, with
 * whatever a free-form field may hold) and near misses (a field or several off), about half each.
 */
export function nearSchema(schema: Schema, hints: Hints = {}): Arbitrary<unknown> {
  return fc.oneof(
    { weight: 4, arbitrary: near(schema, 0, { strict: true, hints }) },
    { weight: 5, arbitrary: near(schema, 0, { strict: false, hints }) },
  );
}

function validFor(schema: Schema, depth: number, g: Gen): Arbitrary<unknown> {
  const anyOf = schema["anyOf"] ?? schema["oneOf"];
  if (Array.isArray(anyOf) && anyOf.length > 0) {
    return fc.oneof(...anyOf.map((s) => near(asSchema(s), depth, g)));
  }
  if ("const" in schema) return fc.constant(schema["const"]);
  const choices = schema["enum"];
  if (Array.isArray(choices) && choices.length > 0) {
    const valid = fc.constantFrom(...(choices as unknown[]));
    return g.strict
      ? valid
      : fc.oneof({ weight: 5, arbitrary: valid }, { weight: 1, arbitrary: nastyString });
  }
  const type = schema["type"];
  const types = Array.isArray(type) ? (type as string[]) : typeof type === "string" ? [type] : [];
  if (types.length === 0) {
    if (schema["properties"] !== undefined) return objectFor(schema, depth, g);
    return anyJson(3);
  }
  return fc.oneof(...types.map((t) => ofType(t, schema, depth, g)));
}

// ---------------------------------------------------------------------------------------------
// Bytes

/** A JSON text with invalid UTF-8 bytes spliced into its first string (or appended). */
export function withInvalidUtf8(text: string, junk: Uint8Array): Buffer {
  const bytes = Buffer.from(text);
  const quote = bytes.indexOf(0x22);
  const at = quote === -1 ? bytes.length : quote + 1;
  return Buffer.concat([bytes.subarray(0, at), Buffer.from(junk), bytes.subarray(at)]);
}

/** Byte sequences that are never valid UTF-8 (lone continuation, overlong, surrogate, > U+10FFFF). */
export const invalidUtf8: Arbitrary<Uint8Array> = fc.oneof(
  fc.constantFrom(
    Uint8Array.of(0xff),
    Uint8Array.of(0xc0, 0xaf),
    Uint8Array.of(0x80),
    Uint8Array.of(0xed, 0xa0, 0x80),
    Uint8Array.of(0xf4, 0x90, 0x80, 0x80),
    Uint8Array.of(0xe2, 0x82),
  ),
  fc.uint8Array({ minLength: 1, maxLength: 8 }).map((b) => b.map((x) => x | 0x80)),
);

/** Percent-encodes every byte of the string's UTF-8 form that is not unreserved (lone surrogates included). */
export function percentEncode(value: string): string {
  let out = "";
  for (const byte of Buffer.from(value, "utf8")) {
    const c = String.fromCharCode(byte);
    out += /[A-Za-z0-9._~-]/.test(c) ? c : `%${byte.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// A tenant to fuzz against

export interface FuzzTenant {
  id: string;
  /** An API key with no scope list (every tenant right). */
  key: string;
  keyId: string;
}

/**
 * A client with a migrated tenant database holding agent `agentSlug`, and an API key, made
 * through the admin API of the fixture's gateway.
 */
export async function createFuzzTenant(f: ApiFixture, label: string, agentSlug: string): Promise<FuzzTenant> {
  const created = await f.call<ClientDetailView>("POST", "/api/v2/clients", {
    auth: f.admin,
    body: { slug: `${label}-${f.server.port}`, name: `Fuzz ${label}` },
  });
  if (created.status !== 201) throw new Error(`creating client ${label}: ${created.status} ${created.text}`);
  const id = created.body.id;
  const db = await f.tenantDatabase(id, `${label.replace(/-/g, "_")}_${f.server.port}`, [
    { slug: agentSlug, name: "Fuzz" },
  ]);
  const patched = await f.call("PATCH", `/api/v2/clients/${id}`, {
    auth: f.admin,
    body: { tenant_database: { kind: "postgres", url: db.url, schema: db.schema } },
  });
  if (patched.status !== 200)
    throw new Error(`attaching ${label}'s database: ${patched.status} ${patched.text}`);
  const key = await f.call<ApiKeysCreateReply>("POST", `/api/v2/clients/${id}/api-keys`, {
    auth: f.admin,
    body: { label },
    showsKey: true,
  });
  if (key.status !== 201) throw new Error(`creating ${label}'s key: ${key.status} ${key.text}`);
  return { id, key: key.body.key, keyId: key.body.api_key.id };
}
