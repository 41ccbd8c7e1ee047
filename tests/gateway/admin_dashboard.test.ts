/**
 * The console's dashboard and agent preview over HTTP, against a real stack: nats-server, two
 * actor hosts, an agent worker pointed at the provider fixture, the gateway process and LiveKit.
 * The dashboard lists the hosts with the partitions each owns, the worker with its slots, the
 * dispatch the hosts saw and the provider errors the worker met, and its live fragment drops a
 * worker that stopped; the preview streams a real text turn token by token (stored in the
 * tenant's database), dispatches a voice session, refuses posts without the CSRF token, and no
 * served body carries a secret.
 */
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { PlatformStore, TenantStore } from "../../actors/index.ts";
import { waitFor } from "../helpers/deadline.ts";
import { spawnGateway } from "../helpers/gateway_process.ts";
import type { GatewayProcess } from "../helpers/gateway_process.ts";
import { NatsTestServer } from "../helpers/nats_server.ts";
import { spawnActorHost } from "../helpers/processes.ts";
import type { TestProcess } from "../helpers/processes.ts";
import { sharedRoomService } from "../helpers/livekit.ts";
import { sharedServices } from "../helpers/services.ts";
import {
  addVoiceAgent,
  createPostgresTenant,
  openTestPlatform,
  setSharedLivekitCredentials,
  spawnWorker,
} from "../helpers/stack.ts";
import {
  defaultChatReply,
  replyTokens,
  startProviderFixture,
} from "../fixtures/providers/provider_fixture.ts";
import type { ProviderFixture } from "../fixtures/providers/provider_fixture.ts";
import { consoleRequest } from "./console_client.ts";
import type { ConsolePage, ConsoleRequestOptions } from "./console_client.ts";

const P = 16;
const ADMIN = `adm_${randomBytes(24).toString("hex")}`;
const WORKER = "dash-w1";

let server: NatsTestServer;
let fixture: ProviderFixture;
let hosts: TestProcess[] = [];
let worker: TestProcess;
let gw: GatewayProcess;
let platform: PlatformStore;
const bodies: string[] = [];

interface Tenant {
  id: string;
  store: TenantStore;
}
let plain: Tenant;
let withLivekit: Tenant;

function send(method: string, path: string, options: ConsoleRequestOptions = {}): Promise<ConsolePage> {
  return consoleRequest(gw.base, method, path, options, (body) => bodies.push(body));
}

let session: { cookie: string; csrf: string } | undefined;

/** Logs in once with the admin token: the cookie and the session's CSRF token (from <body hx-headers>). */
async function login(): Promise<{ cookie: string; csrf: string }> {
  if (session !== undefined) return session;
  const res = await send("POST", "/admin/login", { form: { token: ADMIN } });
  expect(res.status).toBe(303);
  expect(res.headers.get("location")).toBe("/admin");
  const cookie = (res.headers.get("set-cookie") ?? "").split(";")[0] ?? "";
  const home = await send("GET", "/admin", { cookie });
  expect(home.status).toBe(200);
  const csrf = /"X-CSRF-Token":"([^"]+)"/.exec(home.text.replace(/&quot;/g, '"'))?.[1];
  if (csrf === undefined) throw new Error("no CSRF token on the page");
  session = { cookie, csrf };
  return session;
}

async function live(): Promise<string> {
  const { cookie } = await login();
  const res = await send("GET", "/admin/dashboard/live", { cookie, headers: { "hx-request": "true" } });
  expect(res.status).toBe(200);
  return res.text;
}

/** `data-host` rows of the fragment: host id → partitions. */
function hostRows(html: string): Map<string, number[]> {
  const out = new Map<string, number[]>();
  for (const m of html.matchAll(/data-host="([^"]+)" data-partitions="([^"]*)"/g)) {
    out.set(
      m[1] ?? "",
      (m[2] ?? "")
        .split(",")
        .filter((p) => p !== "")
        .map(Number),
    );
  }
  return out;
}

function slotCell(html: string, worker: string, queue: string): { free: string; total: string } | undefined {
  const row = new RegExp(`<tr data-worker="${worker}"[\\s\\S]*?</tr>`).exec(html)?.[0];
  if (row === undefined) return undefined;
  const m = new RegExp(`data-slots="${queue}" data-free="([^"]*)" data-total="([^"]*)"`).exec(row);
  return m === null ? undefined : { free: m[1] ?? "", total: m[2] ?? "" };
}

function stat(html: string, name: string): string | undefined {
  return new RegExp(`data-stat="${name}">([^<]*)<`).exec(html)?.[1];
}

async function tenant(slug: string): Promise<Tenant> {
  const { id, store } = await createPostgresTenant(platform, {
    slug: `${slug}-${server.port}`,
    name: `${slug} inc`,
    schema: `${slug.replace(/-/g, "_")}_${server.port}`,
  });
  await addVoiceAgent(store, fixture, {
    slug: "helper",
    name: "Helper",
    systemPrompt: "You are the Acme helper.",
  });
  return { id, store };
}

interface SseEvent {
  delta?: string;
  done?: boolean;
  full_text?: string;
  conversation_id?: string;
  error?: string;
  code?: string;
  timings?: { claim_ms: number; first_token_ms: number | null; total_ms: number };
}

function sseEvents(text: string): SseEvent[] {
  return text
    .split("\n\n")
    .map((block) =>
      block
        .split("\n")
        .filter((l) => l.startsWith("data: "))
        .map((l) => l.slice(6))
        .join("\n"),
    )
    .filter((d) => d !== "")
    .map((d) => JSON.parse(d) as SseEvent);
}

async function previewTurn(t: Tenant, message: string, conversationId = ""): Promise<ConsolePage> {
  const { cookie, csrf } = await login();
  return send("POST", `/admin/clients/${t.id}/agents/helper/preview/text`, {
    cookie,
    headers: { "x-csrf-token": csrf, accept: "text/event-stream" },
    form: { message, conversation_id: conversationId },
  });
}

beforeAll(async () => {
  server = await NatsTestServer.start();
  fixture = await startProviderFixture();
  hosts = await Promise.all(
    ["dash-h1", "dash-h2"].map((hostId) => spawnActorHost({ natsUrl: server.url, hostId, partitions: P })),
  );
  [worker, gw] = await Promise.all([
    spawnWorker({
      natsUrl: server.url,
      partitions: P,
      workerId: WORKER,
      endpoints: fixture.endpoints(),
      extraEnv: {
        SF_WORKER_SLOTS: "3",
        SF_WORKER_VOICE_SLOTS: "2",
        SF_WORKER_INGEST_SLOTS: "1",
        SF_VOICE_EMPTY_ROOM_TIMEOUT_MS: "1000",
      },
    }),
    spawnGateway({
      natsUrl: server.url,
      partitions: P,
      maxBodyBytes: 64 * 1024,
      extraEnv: {
        SF_ADMIN_TOKEN: ADMIN,
        SF_GATEWAY_REQUEST_TIMEOUT_MS: "10000",
        SF_GATEWAY_REPLY_TIMEOUT_MS: "20000",
      },
    }),
  ]);
  platform = await openTestPlatform(server.url);
  plain = await tenant("dash-plain");
  withLivekit = await tenant("dash-lk");
  await setSharedLivekitCredentials(platform, withLivekit.id);
});

afterAll(async () => {
  await plain?.store.close();
  await withLivekit?.store.close();
  await platform?.close();
  await gw?.proc.stop();
  await worker?.stop();
  for (const h of hosts) await h.stop();
  await fixture?.[Symbol.asyncDispose]();
  await server?.[Symbol.asyncDispose]();
});

describe("console dashboard", () => {
  it("dashboard - lists both actor hosts with the partitions each owns, and the worker with its slots", async () => {
    const { cookie } = await login();
    const page = await send("GET", "/admin", { cookie });
    expect(page.status).toBe(200);
    expect(page.text).toContain('id="dashboard-live"');
    expect(page.text).toContain('hx-trigger="every 5s"');
    // The hosts balance toward P/2 each: wait until they have split the partitions between them.
    const rows = await waitFor(
      "both hosts to own partitions",
      async () => {
        const r = hostRows(await live());
        const all = [...r.values()].flat();
        return r.size === 2 && all.length === P && [...r.values()].every((p) => p.length > 0) ? r : undefined;
      },
      { timeoutMs: 20_000, intervalMs: 200 },
    );
    expect([...rows.keys()].sort()).toEqual(["dash-h1", "dash-h2"]);
    expect([...rows.values()].flat().sort((a, b) => a - b)).toEqual([...Array(P).keys()]);

    const html = await live();
    // The fragment is the live part only, answered to HTMX.
    expect(html.startsWith('<div id="dashboard-live"')).toBe(true);
    expect(html).toContain(`data-worker="${WORKER}"`);
    expect(slotCell(html, WORKER, "text")).toEqual({ free: "3", total: "3" });
    expect(slotCell(html, WORKER, "voice")).toEqual({ free: "2", total: "2" });
    expect(slotCell(html, WORKER, "ingest")).toEqual({ free: "1", total: "1" });
    expect(html).toMatch(/data-check="nats" data-ok="true"/);
    // Tenants, counted by the platform.
    const counts = await platform.countClientsByStatus();
    expect(stat(html, "tenants-total")).toBe(String(counts.active + counts.suspended + counts.disabled));
    expect(stat(html, "tenants-active")).toBe(String(counts.active));
    expect(html).toContain('href="/admin/clients"');
  });

  it("dashboard - a visitor without a session is sent to the login page, an HTMX poll through HX-Redirect", async () => {
    const page = await send("GET", "/admin");
    expect(page.status).toBe(303);
    expect(page.headers.get("location")).toBe("/admin/login");
    const poll = await send("GET", "/admin/dashboard/live", { headers: { "hx-request": "true" } });
    expect(poll.headers.get("hx-redirect")).toBe("/admin/login");
  });
});

describe("console agent preview", () => {
  it("preview - the page carries the chat and call controls, and no LiveKit origin without LiveKit", async () => {
    const { cookie } = await login();
    const page = await send("GET", `/admin/clients/${plain.id}/agents/helper/preview`, { cookie });
    expect(page.status).toBe(200);
    for (const id of [
      "preview-chat",
      "preview-transcript",
      "preview-form",
      "preview-message",
      "preview-send",
      "preview-conversation-id",
      "preview-voice",
      "preview-call-start",
      "preview-call-end",
    ]) {
      expect(page.text).toContain(`id="${id}"`);
    }
    expect(page.text).toContain(`data-stream-url="/admin/clients/${plain.id}/agents/helper/preview/text"`);
    expect(page.text).toContain('data-livekit-configured="false"');
    expect(page.text).toMatch(/src="\/admin\/static\/livekit-client\.umd\.js\?v=[0-9a-f]{16}"/);
    expect(page.headers.get("content-security-policy")).toContain("connect-src 'self';");
    const lib = /src="(\/admin\/static\/livekit-client\.umd\.js\?v=[0-9a-f]+)"/.exec(page.text)?.[1] ?? "";
    const js = await send("GET", lib);
    expect(js.status).toBe(200);
    expect(js.text).toContain("LivekitClient");
    expect(js.headers.get("cache-control")).toContain("immutable");
  });

  it("preview - streams the fixture LLM's tokens as SSE events for a real text turn, and the transcript lands in the tenant DB", async () => {
    const res = await previewTurn(plain, "What is the capital of France?");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/event-stream; charset=utf-8");
    expect(res.text.startsWith(":stream-open\n\n")).toBe(true);
    const events = sseEvents(res.text);
    const turn = fixture.chatTurns.at(-1);
    if (turn === undefined) throw new Error("the LLM fixture saw no turn");
    const reply = defaultChatReply(turn);
    const deltas = events.filter((e) => e.delta !== undefined).map((e) => e.delta);
    // Token by token, in order: one event per delta the fixture streamed.
    expect(deltas).toEqual(replyTokens(reply));
    const done = events.at(-1);
    expect(done).toMatchObject({ done: true, full_text: reply });
    expect(done?.timings?.total_ms).toBeGreaterThan(0);
    const conversationId = done?.conversation_id ?? "";
    const rows = await plain.store.listTranscripts(conversationId);
    expect(rows.map((r) => [r.role, r.content])).toEqual([
      ["user", "What is the capital of France?"],
      ["assistant", reply],
    ]);

    // The next turn continues the conversation: the LLM sees the first one.
    const next = await previewTurn(plain, "And of Italy?", conversationId);
    const nextDone = sseEvents(next.text).at(-1);
    expect(nextDone).toMatchObject({ done: true, conversation_id: conversationId });
    expect(fixture.chatTurns.at(-1)?.messages.map((m) => m.content)).toEqual([
      "You are the Acme helper.",
      "What is the capital of France?",
      reply,
      "And of Italy?",
    ]);
    expect(await plain.store.listTranscripts(conversationId)).toHaveLength(4);
  });

  it("preview - refuses a post without the CSRF token (or cross-site) and dispatches nothing", async () => {
    const { cookie, csrf } = await login();
    const turns = fixture.chatTurns.length;
    const path = `/admin/clients/${plain.id}/agents/helper/preview/text`;
    const missing = await send("POST", path, { cookie, form: { message: "no token" } });
    expect(missing.status).toBe(403);
    expect(missing.text).toContain("SF_ERR_CSRF_FAILED");
    const crossSite = await send("POST", path, {
      cookie,
      headers: { "x-csrf-token": csrf, "sec-fetch-site": "cross-site" },
      form: { message: "cross site" },
    });
    expect(crossSite.status).toBe(403);
    const voice = await send("POST", `/admin/clients/${withLivekit.id}/agents/helper/preview/voice`, {
      cookie,
      form: {},
    });
    expect(voice.status).toBe(403);
    expect(fixture.chatTurns.length).toBe(turns);
  });

  it("preview - an unknown agent, an empty message and a voice call without LiveKit answer their error codes", async () => {
    const { cookie, csrf } = await login();
    const headers = { "x-csrf-token": csrf, "hx-request": "true" };
    const unknown = await send("POST", `/admin/clients/${plain.id}/agents/nobody/preview/text`, {
      cookie,
      headers,
      form: { message: "hello" },
    });
    // The stream has begun when the tenant's owner answers: the error comes as its last event.
    expect(unknown.status).toBe(200);
    expect(sseEvents(unknown.text)).toEqual([
      { error: expect.any(String) as string, code: "SF_ERR_AGENT_NOT_FOUND", no_fallback: true },
    ]);
    const empty = await send("POST", `/admin/clients/${plain.id}/agents/helper/preview/text`, {
      cookie,
      headers,
      form: { message: "   " },
    });
    expect(empty.status).toBe(400);
    expect(empty.text).toContain("SF_ERR_VALIDATION_FAILED");
    const voice = await send("POST", `/admin/clients/${plain.id}/agents/helper/preview/voice`, {
      cookie,
      headers,
      form: {},
    });
    expect(voice.status).toBe(409);
    expect(voice.text).toContain("SF_ERR_LIVEKIT_NOT_CONFIGURED");
  });

  it("preview - with LiveKit, the page's CSP allows the tenant's server and a call is dispatched like a voice trigger", async () => {
    const { cookie, csrf } = await login();
    const lk = sharedServices();
    const origin = new URL(lk.livekitUrl);
    const page = await send("GET", `/admin/clients/${withLivekit.id}/agents/helper/preview`, { cookie });
    expect(page.status).toBe(200);
    expect(page.text).toContain('data-livekit-configured="true"');
    const ws = `${origin.protocol === "https:" || origin.protocol === "wss:" ? "wss:" : "ws:"}//${origin.host}`;
    expect(page.headers.get("content-security-policy")).toContain(
      `connect-src 'self' ${ws} ${ws.replace(/^ws/, "http")};`,
    );

    const res = await send("POST", `/admin/clients/${withLivekit.id}/agents/helper/preview/voice`, {
      cookie,
      headers: { "x-csrf-token": csrf, accept: "application/json" },
      form: {},
    });
    expect(res.status, res.text).toBe(200);
    const call = JSON.parse(res.text) as {
      room_name: string;
      server_url: string;
      user_token: string;
      worker_id: string;
      conversation_id: string;
    };
    expect(call.worker_id).toBe(WORKER);
    expect(call.server_url).toBe(lk.livekitUrl);
    expect(call.room_name).toMatch(/^preview-helper-[0-9a-f]{8}$/);
    const claims = JSON.parse(Buffer.from(call.user_token.split(".")[1] ?? "", "base64url").toString()) as {
      sub?: string;
      video?: { room?: string; roomJoin?: boolean; canPublish?: boolean };
    };
    expect(claims.sub).toBe("user_admin:token");
    expect(claims.video).toMatchObject({ room: call.room_name, roomJoin: true, canPublish: true });
    const listed = await sharedRoomService().listRooms([call.room_name]);
    expect(listed.map((r) => r.name)).toEqual([call.room_name]);
  });
});

describe("console dashboard figures", () => {
  it("dashboard - shows the dispatch the hosts saw and the provider errors the worker met", async () => {
    // One failed LLM call (retried by the worker) before the reply.
    fixture.addFault({
      provider: "groq",
      kind: "chat",
      times: 1,
      fault: { type: "server_error", status: 503 },
    });
    const res = await previewTurn(plain, "Tell me about Rome");
    expect(sseEvents(res.text).at(-1)).toMatchObject({ done: true });
    const html = await waitFor("groq's error on the dashboard", async () => {
      const h = await live();
      return h.includes('data-provider="groq"') ? h : undefined;
    });
    expect(html).toMatch(/data-provider="groq" data-errors="1"/);
    expect(html).toContain("SF_ERR_PROVIDER_UNAVAILABLE");
    // Three text turns and one voice call were claimed in the last minute.
    expect(stat(html, "dispatch-claimed")).toBe("3 / 1");
    expect(stat(html, "dispatch-p50")).toMatch(/^\d+(\.\d)? ms$/);
    expect(stat(html, "dispatch-p99")).toMatch(/^\d+(\.\d)? ms$/);
    expect(stat(html, "dispatch-no-capacity")).toBe("0");
  });

  it("dashboard - the live fragment drops a worker once it stops", async () => {
    expect(await live()).toContain(`data-worker="${WORKER}"`);
    await worker.stop();
    const html = await waitFor(
      "the worker to leave the dashboard",
      async () => {
        const h = await live();
        return h.includes(`data-worker="${WORKER}"`) ? undefined : h;
      },
      { timeoutMs: 20_000, intervalMs: 200 },
    );
    expect(html).toContain("No agent worker is running");
    // The hosts are still listed.
    expect(hostRows(html).size).toBe(2);
  });

  it("never served a secret in any page, fragment or stream", () => {
    const lk = sharedServices();
    const password = new URL(lk.databaseUrl).password;
    const secrets = [
      ADMIN,
      lk.databaseUrl,
      lk.livekitApiSecret,
      ...(password === "" ? [] : [`:${password}@`]),
      ...Object.values(fixture.keys),
    ];
    expect(bodies.length).toBeGreaterThan(10);
    for (const body of bodies) for (const s of secrets) expect(body).not.toContain(s);
  });
});
