/**
 * Property-based fuzzing of the admin console behind its login (issue 9): a real gateway process
 * and actor host, a logged-in session and its CSRF token. The forms are not listed here: every
 * `<form method="post">` (and its fields, with their default values) is read from the console's own
 * pages, so a new form is fuzzed without touching this file; the preview endpoints (posted by
 * script, not by a form) are added by hand. Each request posts the form with some fields replaced
 * by hostile values — long, unicode, SQL-ish, HTML/script with a unique marker, invalid UTF-8
 * (percent-encoded bytes in an urlencoded body, raw bytes in a multipart one) — sometimes as htmx
 * (a fragment); GET pages get hostile query strings and path ids. Properties: no 5xx (but a
 * documented 503: here there is no agent worker), every refusal is a 4xx HTML page or fragment
 * (JSON with the error envelope on the preview endpoints), no input comes back unescaped (no
 * marker's `<script`, tag or attribute raw in the body; every `<script` is the console's own
 * asset), no secret in a body, and the gateway, the actor host and the session survive.
 *
 * Inputs per form (and per GET page): SF_FUZZ_RUNS (default 40); SF_FUZZ_SEED replays a run. The
 * counts go to `.sidekick/fuzz/console.json`.
 */
import fc from "fast-check";
import type { Arbitrary } from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ERROR_STATUS } from "../../gateway/index.ts";
import { ApiFixture } from "../../tests/gateway/api_fixture.ts";
import { consoleRequest, csrfOf } from "../../tests/gateway/console_client.ts";
import {
  createFuzzTenant,
  FUZZ_SEED,
  fuzzRuns,
  invalidUtf8,
  nastyString,
  percentEncode,
  pool,
  recordFuzzReport,
  summarize,
} from "./fuzz_kit.ts";
import type { Violation } from "./fuzz_kit.ts";

const RUNS = fuzzRuns(40);
const CONCURRENCY = 4;
const HANG_MS = 20_000;
const AGENT = "cfuzz-agent";

let f: ApiFixture;
const session = { cookie: "", csrf: "" };
const tenant = { id: "", keyId: "" };

/** The session cookie and CSRF token of a fresh login. */
async function login(): Promise<{ cookie: string; csrf: string }> {
  const res = await consoleRequest(f.gw.base, "POST", "/admin/login", {
    form: { token: f.adminToken, next: "/admin/clients" },
  });
  expect(res.status).toBe(303);
  const cookie = (res.headers.get("set-cookie") ?? "").split(";")[0] ?? "";
  const page = await consoleRequest(f.gw.base, "GET", "/admin/clients", { cookie });
  expect(page.status).toBe(200);
  return { cookie, csrf: csrfOf(page.text) };
}

beforeAll(async () => {
  f = await ApiFixture.start({ claimTimeoutMs: 500, maxBodyBytes: 256 * 1024 });
  const t = await createFuzzTenant(f, "cfuzz", AGENT);
  tenant.id = t.id;
  tenant.keyId = t.keyId;
  Object.assign(session, await login());
});

afterAll(async () => {
  await f?.close();
});

// ---------------------------------------------------------------------------------------------
// The forms, read from the console's pages

interface FormSpec {
  /** The page the form was found on. */
  page: string;
  action: string;
  multipart: boolean;
  /** Field name → its default values (a checkbox group or repeated field has several). */
  fields: Map<string, string[]>;
}

const decodeEntities = (s: string): string =>
  s
    .replace(/&quot;/g, '"')
    .replace(/&#x27;|&#39;/g, "'")
    .replace(/&lt;/g, "<")
    .replace(/&gt;/g, ">")
    .replace(/&amp;/g, "&");

function attr(tag: string, name: string): string | undefined {
  const m = new RegExp(`\\s${name}="([^"]*)"`).exec(tag);
  return m?.[1] === undefined ? undefined : decodeEntities(m[1]);
}

/** The POST forms of a page, with their fields and default values. */
function formsOf(page: string, html: string): FormSpec[] {
  const out: FormSpec[] = [];
  for (const m of html.matchAll(/<form\b([^>]*)>([\s\S]*?)<\/form>/g)) {
    const [open, inner] = [m[1] ?? "", m[2] ?? ""];
    if ((attr(open, "method") ?? "get").toLowerCase() !== "post") continue;
    const action = attr(open, "action");
    if (action === undefined) continue;
    const fields = new Map<string, string[]>();
    const add = (name: string | undefined, value: string): void => {
      if (name === undefined || name === "") return;
      fields.set(name, [...(fields.get(name) ?? []), value]);
    };
    for (const t of inner.matchAll(/<input\b[^>]*>/g)) {
      const tag = t[0];
      const type = (attr(tag, "type") ?? "text").toLowerCase();
      if (type === "file") continue;
      if ((type === "checkbox" || type === "radio") && !/\schecked(\s|=|>|\/)/.test(tag)) {
        fields.set(attr(tag, "name") ?? "", fields.get(attr(tag, "name") ?? "") ?? []);
        continue;
      }
      add(attr(tag, "name"), attr(tag, "value") ?? "");
    }
    for (const t of inner.matchAll(/<textarea\b([^>]*)>([\s\S]*?)<\/textarea>/g)) {
      add(attr(t[1] ?? "", "name"), decodeEntities(t[2] ?? ""));
    }
    for (const t of inner.matchAll(/<select\b([^>]*)>([\s\S]*?)<\/select>/g)) {
      const selected = /<option\b[^>]*\sselected[^>]*>/.exec(t[2] ?? "")?.[0];
      const first = /<option\b[^>]*>/.exec(t[2] ?? "")?.[0];
      add(attr(t[1] ?? "", "name"), attr(selected ?? first ?? "", "value") ?? "");
    }
    for (const t of inner.matchAll(/<button\b[^>]*>/g)) {
      const name = attr(t[0], "name");
      if (name !== undefined) add(name, attr(t[0], "value") ?? "");
    }
    out.push({ page, action, multipart: attr(open, "enctype") === "multipart/form-data", fields });
  }
  return out;
}

/** The console's GET pages for the fuzz tenant. */
function pagesToCrawl(): string[] {
  const c = `/admin/clients/${tenant.id}`;
  return [
    "/admin",
    "/admin/clients",
    "/admin/clients/new",
    c,
    `${c}/edit`,
    `${c}/agents`,
    `${c}/agents/new`,
    `${c}/agents/${AGENT}/edit`,
    `${c}/agents/${AGENT}/preview`,
    `${c}/documents`,
    `${c}/provider-keys`,
    `${c}/api-keys`,
    `${c}/api-keys/${tenant.keyId}/revoke`,
    `${c}/conversations`,
  ];
}

// ---------------------------------------------------------------------------------------------
// Hostile values

/** Every hostile value carries a marker when it holds markup, so its echo can be found. */
let markerSeq = 0;
const nextMarker = (): string => `zq${(markerSeq += 1).toString(36)}x`;

type Value =
  | { kind: "text"; text: string }
  /** Invalid UTF-8 spliced into the text (percent-encoded bytes, or raw in multipart). */
  | { kind: "bytes"; text: string; junk: Uint8Array }
  /** Markup that must come back escaped, if at all. */
  | { kind: "markup"; template: number; text: string };

const MARKUP_TEMPLATES: ReadonlyArray<(m: string) => string> = [
  (m) => `<script>${m}</script>`,
  (m) => `"><script>${m}</script>`,
  (m) => `</textarea><script>${m}</script>`,
  (m) => `<img src=x onerror=${m}>`,
  (m) => `" autofocus onfocus="${m}`,
  (m) => `<svg/onload=${m}>`,
  (m) => `<SCRIPT SRC=//evil.example/${m}.js></SCRIPT>`,
  (m) => `javascript:${m}//<b>${m}</b>`,
];

/** What must not appear raw in a body when a markup value was sent. */
function rawEchoes(template: number, m: string): string[] {
  switch (template) {
    case 0:
    case 1:
    case 2:
      return [`<script>${m}`];
    case 3:
      return [`<img src=x onerror=${m}`];
    case 4:
      return [`" autofocus onfocus="${m}`];
    case 5:
      return [`<svg/onload=${m}`];
    case 6:
      return [`<SCRIPT SRC=//evil.example/${m}`];
    default:
      return [`<b>${m}</b>`];
  }
}

const SQLISH = [
  "' OR '1'='1",
  "'; drop table clients; --",
  "1; select pg_sleep(5)",
  "\\x00",
  "$1",
  "E'\\\\'",
  "); delete from agents where (1=1",
];

const hostileValue: Arbitrary<Value> = fc.oneof(
  { weight: 4, arbitrary: nastyString.map((text): Value => ({ kind: "text", text })) },
  { weight: 1, arbitrary: fc.constantFrom(...SQLISH).map((text): Value => ({ kind: "text", text })) },
  {
    weight: 1,
    arbitrary: fc
      .string({ unit: "grapheme", minLength: 1, maxLength: 300 })
      .map((text): Value => ({ kind: "text", text })),
  },
  {
    weight: 1,
    arbitrary: fc.integer({ min: 1, max: 40_000 }).map((n): Value => ({ kind: "text", text: "é".repeat(n) })),
  },
  {
    weight: 2,
    arbitrary: fc
      .tuple(fc.string({ maxLength: 12 }), invalidUtf8)
      .map(([text, junk]): Value => ({ kind: "bytes", text, junk })),
  },
  {
    weight: 3,
    arbitrary: fc
      .integer({ min: 0, max: MARKUP_TEMPLATES.length - 1 })
      .map((template): Value => ({ kind: "markup", template, text: "" })),
  },
);

/** A markup value gets its marker when the request is built (so each one is unique). */
function materialize(v: Value): Value & { marker?: string } {
  if (v.kind !== "markup") return v;
  const marker = nextMarker();
  return { ...v, text: (MARKUP_TEMPLATES[v.template] as (m: string) => string)(marker), marker };
}

function urlencodedValue(v: Value): string {
  const text = percentEncode(v.text);
  if (v.kind !== "bytes") return text;
  return text + [...v.junk].map((b) => `%${b.toString(16).toUpperCase().padStart(2, "0")}`).join("");
}

/**
 * A value in a URL, cut to 800 characters (perhaps mid-escape): uWS sometimes answers a request
 * head of some 100 KiB by closing the connection (a transport limit, not a crash); one such URL
 * is checked on its own below.
 */
const inUrl = (v: Value): string => urlencodedValue(v).slice(0, 800);

// ---------------------------------------------------------------------------------------------
// Requests and their properties

interface Sent {
  label: string;
  method: "GET" | "POST";
  path: string;
  htmx: boolean;
  /** The preview endpoints answer Server-Sent Events / JSON when they succeed. */
  stream: boolean;
  markers: Array<{ template: number; marker: string }>;
  describe: string;
}

interface Answer {
  status: number;
  contentType: string;
  body: string;
}

const violations: Violation[] = [];
const tally = {
  requests: 0,
  byStatus: {} as Record<string, number>,
  markups: 0,
  /** Markup values that did come back, escaped: the echo check saw real echoes. */
  escapedEchoes: 0,
  invalidUtf8: 0,
};

function documented503(body: string): boolean {
  const codes = body.match(/SF_ERR_[A-Z0-9_]+/g) ?? [];
  return codes.some((c) => ERROR_STATUS[c]?.status === 503);
}

function check(sent: Sent, res: Answer | Error): void {
  const add = (rule: string, outcome: string): void => {
    violations.push({ family: sent.label, rule, input: sent.describe, outcome });
  };
  if (res instanceof Error) {
    const cause = (res as { cause?: unknown }).cause;
    add("transport", `${res.name}: ${res.message} ${cause instanceof Error ? cause.message : ""}`);
    return;
  }
  tally.requests += 1;
  tally.byStatus[String(res.status)] = (tally.byStatus[String(res.status)] ?? 0) + 1;
  if (res.status >= 500 && !(res.status === 503 && documented503(res.body))) {
    add("5xx", `${res.status} ${res.body.slice(0, 300)}`);
  }
  if (res.status >= 400 && res.status < 500 && !res.contentType.startsWith("text/html")) {
    // A path no console route matches (a hostile id in place of a fixed segment) is the router's
    // JSON 404 (405 when only another method has a route there); anything a console route
    // answers is an HTML page or fragment.
    let error: { code?: unknown; message?: unknown } | undefined;
    try {
      error = (JSON.parse(res.body) as { error?: { code?: unknown; message?: unknown } }).error;
    } catch {
      error = undefined;
    }
    const unrouted =
      (res.status === 404 &&
        error?.code === "SF_ERR_NOT_FOUND" &&
        typeof error.message === "string" &&
        error.message.startsWith("no route for ")) ||
      (res.status === 405 && error?.code === "SF_ERR_METHOD_NOT_ALLOWED");
    if (!unrouted) add("html", `${res.status} ${res.contentType} ${res.body.slice(0, 200)}`);
  }
  for (const { template, marker } of sent.markers) {
    for (const raw of rawEchoes(template, marker)) {
      if (res.body.includes(raw)) add("unescaped echo", `${res.status} body holds ${raw}`);
    }
    if (res.body.includes(marker)) tally.escapedEchoes += 1;
  }
  // Inline script never: every <script in a page is the console's own asset.
  for (const m of res.body.matchAll(/<script\b[^>]*>/gi)) {
    if (!/^<script src="\/admin\/static\/[^"<>]+"(\s+defer(="")?)?>$/.test(m[0]) && !sent.stream) {
      add("inline script", `${res.status} ${m[0].slice(0, 120)}`);
    }
  }
  for (const s of f.secrets()) if (res.body.includes(s)) add("secret", `${res.status} body shows a secret`);
}

async function send(
  method: "GET" | "POST",
  path: string,
  body: { urlencoded: string } | { multipart: Buffer; boundary: string } | undefined,
  htmx: boolean,
): Promise<Answer | Error> {
  const headers: Record<string, string> = { cookie: session.cookie };
  if (htmx) headers["hx-request"] = "true";
  // HTMX sends the CSRF token as a header (the upload form has no `_csrf` field: it is HTMX's).
  if (htmx || (body !== undefined && "multipart" in body)) headers["x-csrf-token"] = session.csrf;
  let payload: string | Buffer | undefined;
  if (body !== undefined && "urlencoded" in body) {
    headers["content-type"] = "application/x-www-form-urlencoded";
    payload = body.urlencoded;
  } else if (body !== undefined) {
    headers["content-type"] = `multipart/form-data; boundary=${body.boundary}`;
    payload = body.multipart;
  }
  try {
    const res = await fetch(`${f.gw.base}${path}`, {
      method,
      headers,
      redirect: "manual",
      signal: AbortSignal.timeout(HANG_MS),
      ...(payload === undefined ? {} : { body: payload }),
    });
    const buf = Buffer.from(await res.arrayBuffer());
    return {
      status: res.status,
      contentType: res.headers.get("content-type") ?? "",
      body: buf.toString("utf8"),
    };
  } catch (err) {
    return err instanceof Error ? err : new Error(String(err));
  }
}

function multipartBody(
  fields: Array<[string, Value]>,
  boundary: string,
  file: { filename: string; content: string } | undefined,
): Buffer {
  const parts: Buffer[] = [];
  if (file !== undefined) {
    // As a browser sends it: `"` and line breaks of the name percent-encoded.
    const filename = file.filename.replace(/["\r\n]/g, (c) => encodeURIComponent(c));
    parts.push(
      Buffer.from(
        `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="${filename}"\r\n` +
          `Content-Type: text/plain\r\n\r\n${file.content}\r\n`,
      ),
    );
  }
  for (const [name, v] of fields) {
    parts.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n`));
    parts.push(Buffer.from(v.text, "utf8"));
    if (v.kind === "bytes") parts.push(Buffer.from(v.junk));
    parts.push(Buffer.from("\r\n"));
  }
  parts.push(Buffer.from(`--${boundary}--\r\n`));
  return Buffer.concat(parts);
}

/** Fields whose default would do something this run must not do (revoke the key, delete). */
const neverDefault = (name: string): boolean => name.startsWith("confirm");

// ---------------------------------------------------------------------------------------------

describe("fuzzing - the console behind its login", () => {
  it("fuzz - every console form and page: no 5xx, refusals are 4xx pages, no input echoed unescaped, everything stays up", async () => {
    // Discover the forms.
    const forms: FormSpec[] = [];
    for (const page of pagesToCrawl()) {
      const res = await consoleRequest(f.gw.base, "GET", page, { cookie: session.cookie });
      expect(res.status, `${page}: ${res.text.slice(0, 200)}`).toBe(200);
      forms.push(...formsOf(page, res.text));
    }
    const byAction = new Map<string, FormSpec>();
    for (const form of forms) {
      if (form.action === "/admin/logout") continue;
      const known = byAction.get(form.action);
      // The same action on several pages: keep the form with the most fields.
      if (known === undefined || form.fields.size > known.fields.size) byAction.set(form.action, form);
    }
    const preview = `/admin/clients/${tenant.id}/agents/${AGENT}/preview`;
    for (const kind of ["text", "voice"]) {
      byAction.set(`${preview}/${kind}`, {
        page: preview,
        action: `${preview}/${kind}`,
        multipart: false,
        fields: new Map([
          ["_csrf", [session.csrf]],
          ["message", ["hello"]],
          ["conversation_id", [""]],
        ]),
      });
    }
    const targets = [...byAction.values()];
    // Every section's forms were found (the crawl is what makes the fuzzing complete).
    const actions = targets.map((t) => t.action);
    const c = `/admin/clients/${tenant.id}`;
    for (const expected of [
      "/admin/clients",
      c,
      `${c}/delete`,
      `${c}/agents`,
      `${c}/agents/${AGENT}`,
      `${c}/agents/${AGENT}/delete`,
      `${c}/documents`,
      `${c}/provider-keys`,
      `${c}/api-keys`,
      `${c}/api-keys/${tenant.keyId}/revoke`,
    ]) {
      expect(actions).toContain(expected);
    }

    const postCases = fc.sample(
      fc.record({
        form: fc.constantFrom(...targets),
        // Per field: keep the default (0), a hostile value (1), or drop it (2).
        choices: fc.array(fc.tuple(fc.integer({ min: 0, max: 4 }), hostileValue), {
          minLength: 40,
          maxLength: 40,
        }),
        extra: fc.option(fc.tuple(nastyString, hostileValue), { freq: 4 }),
        /** Multipart forms: a file named (and filled) with a hostile value, or none. */
        file: fc.option(hostileValue, { freq: 4 }),
        htmx: fc.boolean(),
      }),
      { numRuns: RUNS * targets.length, seed: FUZZ_SEED },
    );
    const getCases = fc.sample(
      fc.record({
        page: fc.constantFrom(...pagesToCrawl()),
        query: fc.array(
          fc.tuple(fc.constantFrom("q", "status", "agent", "page", "user", "created", "x"), hostileValue),
          {
            maxLength: 3,
          },
        ),
        // Sometimes a hostile id in place of a path segment.
        swap: fc.option(fc.tuple(fc.nat(), hostileValue), { freq: 2 }),
        htmx: fc.boolean(),
      }),
      { numRuns: RUNS * pagesToCrawl().length, seed: FUZZ_SEED + 1 },
    );

    const started = performance.now();
    await pool(postCases, CONCURRENCY, async (pc) => {
      const fields: Array<[string, Value & { marker?: string }]> = [];
      let i = 0;
      for (const [name, defaults] of pc.form.fields) {
        const [choice, hostile] = pc.choices[i++ % pc.choices.length] as [number, Value];
        if (name === "_csrf") {
          fields.push([name, { kind: "text", text: session.csrf }]);
          continue;
        }
        if (choice <= 1 && !neverDefault(name)) {
          for (const d of defaults) fields.push([name, { kind: "text", text: d }]);
        } else if (choice <= 3) {
          fields.push([name, materialize(hostile)]);
        }
      }
      if (pc.extra !== null) fields.push([pc.extra[0], materialize(pc.extra[1])]);
      const file = pc.form.multipart && pc.file !== null ? materialize(pc.file) : undefined;
      const markers = [...fields.map(([, v]) => v), ...(file === undefined ? [] : [file])].flatMap((v) =>
        v.kind === "markup" && v.marker !== undefined ? [{ template: v.template, marker: v.marker }] : [],
      );
      tally.markups += markers.length;
      if (fields.some(([, v]) => v.kind === "bytes")) tally.invalidUtf8 += 1;
      const body = pc.form.multipart
        ? {
            boundary: "----sffuzz7MA4YWxkTrZu0gW",
            multipart: multipartBody(
              fields,
              "----sffuzz7MA4YWxkTrZu0gW",
              file === undefined
                ? undefined
                : { filename: `${file.text}.txt`, content: `notes ${file.text}` },
            ),
          }
        : {
            urlencoded: fields.map(([k, v]) => `${percentEncode(k)}=${urlencodedValue(v)}`).join("&"),
          };
      const sent: Sent = {
        label: `POST ${pc.form.action.replace(tenant.id, "{id}")}`,
        method: "POST",
        path: pc.form.action,
        htmx: pc.htmx,
        stream: pc.form.action.startsWith(`${preview}/`),
        markers,
        describe: JSON.stringify({
          fields: fields.map(([k, v]) => [
            k,
            v.text.slice(0, 80),
            v.kind === "bytes" ? [...v.junk] : undefined,
          ]),
          htmx: pc.htmx,
        }),
      };
      check(sent, await send("POST", pc.form.action, body, pc.htmx));
    });
    await pool(getCases, CONCURRENCY, async (gc) => {
      let path = gc.page;
      const markers: Sent["markers"] = [];
      if (gc.swap !== null) {
        const segments = path.split("/");
        const at = 3 + (gc.swap[0] % Math.max(1, segments.length - 3));
        if (at < segments.length) {
          const v = materialize(gc.swap[1]);
          if (v.marker !== undefined && v.kind === "markup")
            markers.push({ template: v.template, marker: v.marker });
          segments[at] = inUrl(v) || "%20";
          path = segments.join("/");
        }
      }
      const query = gc.query.map(([k, raw]) => {
        const v = materialize(raw);
        if (v.marker !== undefined && v.kind === "markup")
          markers.push({ template: v.template, marker: v.marker });
        return `${k}=${inUrl(v)}`;
      });
      if (query.length > 0) path += `?${query.join("&")}`;
      tally.markups += markers.length;
      const sent: Sent = {
        label: `GET ${gc.page.replace(tenant.id, "{id}")}`,
        method: "GET",
        path,
        htmx: gc.htmx,
        stream: false,
        markers,
        describe: JSON.stringify({ path: path.slice(0, 300), htmx: gc.htmx }),
      };
      check(sent, await send("GET", path, undefined, gc.htmx));
    });
    const seconds = Math.round((performance.now() - started) / 100) / 10;

    // A URL of some 360 KB: answered below 500, or its connection closed by uWS; nothing more.
    const huge = await send("GET", `/admin/clients?q=${"%C3%A9".repeat(60_000)}`, undefined, false);
    if (!(huge instanceof Error)) expect(huge.status).toBeLessThan(500);

    // Everything is still up, and the session still works.
    const health = await fetch(`${f.gw.base}/health/detailed`);
    expect(health.status).toBe(200);
    expect(f.gw.proc.running).toBe(true);
    expect(f.host.running).toBe(true);
    const after = await consoleRequest(f.gw.base, "GET", "/admin/clients", { cookie: session.cookie });
    expect(after.status).toBe(200);

    recordFuzzReport("console", "summary", {
      forms: targets.map((t) => t.action.replace(tenant.id, "{id}")),
      posts: postCases.length,
      gets: getCases.length,
      ...tally,
      seconds,
      violations: summarize(violations),
    });
    console.log(
      JSON.stringify({
        seed: FUZZ_SEED,
        forms: targets.length,
        posts: postCases.length,
        gets: getCases.length,
        ...tally,
        seconds,
      }),
    );
    expect(summarize(violations)).toEqual([]);
    expect(tally.escapedEchoes).toBeGreaterThan(0);
  }, 240_000);
});

describe("fuzzing - console regressions", () => {
  it("found - a console path parameter that is not valid percent-encoding answers a 400 HTML page (was the JSON envelope)", async () => {
    for (const htmx of [false, true]) {
      const res = await send("GET", `/admin/clients/%C0%AF%ZZ/edit`, undefined, htmx);
      if (res instanceof Error) throw res;
      expect(res.status).toBe(400);
      expect(res.contentType).toMatch(/^text\/html/);
      expect(res.body).toContain("SF_ERR_BAD_REQUEST");
      // A page for a browser, a fragment for HTMX.
      expect(res.body.startsWith("<!doctype html>")).toBe(!htmx);
    }
  });

  it("found - a console form over the body limit answers a 413 HTML page (was the JSON envelope)", async () => {
    const res = await send(
      "POST",
      `/admin/clients/${tenant.id}/agents`,
      { urlencoded: `_csrf=${session.csrf}&name=${"x".repeat(300 * 1024)}` },
      false,
    );
    if (res instanceof Error) throw res;
    expect(res.status).toBe(413);
    expect(res.contentType).toMatch(/^text\/html/);
    expect(res.body).toContain("SF_ERR_PAYLOAD_TOO_LARGE");
  });
});
