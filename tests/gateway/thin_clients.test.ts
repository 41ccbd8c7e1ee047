/**
 * Thin clients in a real deployment (nats-server, actor host, agent worker, gateway processes):
 * per-tenant CORS, the API-key scope rule on the trigger routes, and Idempotency-Key retries.
 */
import { randomBytes, randomUUID } from "node:crypto";
import { connect } from "@nats-io/transport-node";
import type { NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { PlatformOps } from "../../actors/index.ts";
import type { PlatformStore } from "../../actors/index.ts";
import { createSubjects, requestReply } from "../../bus/index.ts";
import { waitFor } from "../helpers/deadline.ts";
import { NatsTestServer } from "../helpers/nats_server.ts";
import { spawnActorHost } from "../helpers/processes.ts";
import type { TestProcess } from "../helpers/processes.ts";
import { createChatTenant, openTestPlatform, spawnWorker } from "../helpers/stack.ts";
import type { ChatTenant } from "../helpers/stack.ts";
import { nextFrame, openWsClient } from "../helpers/ws_client.ts";
import { defaultChatReply, startProviderFixture } from "../fixtures/providers/provider_fixture.ts";
import type { ProviderFixture } from "../fixtures/providers/provider_fixture.ts";
import { spawnGateway } from "../helpers/gateway_process.ts";
import type { GatewayProcess } from "../helpers/gateway_process.ts";

const P = 16;
const ADMIN = `adm_${randomBytes(24).toString("hex")}`;
const GLOBAL_ORIGIN = "https://console.sidekick.example";
const A_ORIGIN = "https://a-shop.example";
const B_ORIGIN = "https://b-shop.example";
const STRANGER = "https://stranger.example";

/** `key` has no scopes: a legacy WordPress key. */
type Tenant = ChatTenant;

let server: NatsTestServer;
let fixture: ProviderFixture;
let host: TestProcess;
let worker: TestProcess;
let gw: GatewayProcess;
let platform: PlatformStore;
let nc: NatsConnection;
let a: Tenant;
let b: Tenant;

function tenant(slug: string, origins: string[]): Promise<Tenant> {
  return createChatTenant(platform, fixture, {
    slug: `${slug}-${server.port}`,
    name: `${slug} inc`,
    settings: { cors_origins: origins },
    schema: `${slug.replace(/-/g, "_")}_${server.port}`,
    keyName: "wordpress",
  });
}

async function keyWith(t: Tenant, scopes: string[]): Promise<string> {
  return (await platform.createApiKey({ clientId: t.id, name: `scoped ${scopes.join(" ")}`, scopes })).secret;
}

interface Res {
  status: number;
  headers: Headers;
  text: string;
  body: Record<string, unknown>;
}

async function call(
  method: string,
  path: string,
  options: { headers?: Record<string, string>; body?: unknown; signal?: AbortSignal } = {},
): Promise<Res> {
  const headers: Record<string, string> = { ...options.headers };
  if (options.body !== undefined) headers["content-type"] ??= "application/json";
  const res = await fetch(`${gw.base}${path}`, {
    method,
    headers,
    ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }),
    ...(options.signal === undefined ? {} : { signal: options.signal }),
  });
  const text = await res.text();
  const parsed: unknown = (res.headers.get("content-type") ?? "").startsWith("application/json")
    ? JSON.parse(text)
    : {};
  return { status: res.status, headers: res.headers, text, body: parsed as Record<string, unknown> };
}

const codeOf = (res: Res): unknown => (res.body["error"] as { code?: unknown } | undefined)?.code;
const allowOrigin = (res: Res): string | null => res.headers.get("access-control-allow-origin");

function trigger(key: string, extra: Record<string, string> = {}, body: Record<string, unknown> = {}) {
  return call("POST", "/api/v2/trigger-agent", {
    headers: { "x-api-key": key, ...extra },
    body: { agent_slug: "helper", user_id: "thin-user", message: "Hello from the widget", ...body },
  });
}

function preflight(path: string, origin: string, method = "POST"): Promise<Res> {
  return call("OPTIONS", path, {
    headers: {
      origin,
      "access-control-request-method": method,
      "access-control-request-headers": "content-type, x-api-key",
    },
  });
}

async function patchSettings(
  id: string,
  settings: unknown,
  extra: Record<string, unknown> = {},
): Promise<Res> {
  return call("PATCH", `/api/v2/clients/${id}`, {
    headers: { authorization: `Bearer ${ADMIN}` },
    body: { settings, ...extra },
  });
}

beforeAll(async () => {
  server = await NatsTestServer.start();
  fixture = await startProviderFixture();
  [host, worker, gw] = await Promise.all([
    spawnActorHost({ natsUrl: server.url, hostId: "thin-h1", partitions: P }),
    spawnWorker({ natsUrl: server.url, partitions: P, workerId: "w1", endpoints: fixture.endpoints() }),
    spawnGateway({
      natsUrl: server.url,
      partitions: P,
      maxBodyBytes: 64 * 1024,
      corsOrigins: GLOBAL_ORIGIN,
      extraEnv: {
        SF_ADMIN_TOKEN: ADMIN,
        SF_GATEWAY_REQUEST_TIMEOUT_MS: "10000",
        SF_GATEWAY_REPLY_TIMEOUT_MS: "20000",
        // Long cache lifetimes: a change seen within the test was seen through an event.
        SF_API_KEY_CACHE_MS: "10000",
        SF_GATEWAY_CORS_CACHE_MS: "60000",
      },
    }),
  ]);
  platform = await openTestPlatform(server.url);
  nc = await connect({ servers: server.url });
  [a, b] = await Promise.all([tenant("thin-a", [A_ORIGIN]), tenant("thin-b", [B_ORIGIN])]);
}, 60_000);

afterAll(async () => {
  await a?.store.close();
  await b?.store.close();
  await platform?.close();
  await nc?.close();
  await gw?.proc.stop();
  await worker?.stop();
  await host?.stop();
  await fixture?.[Symbol.asyncDispose]();
  await server?.[Symbol.asyncDispose]();
});

describe("per-tenant CORS", () => {
  it("cors - tenant A's origin reads answers made with A's key; with B's key it gets 403 SF_ERR_CORS_ORIGIN_DENIED, no allow header, and no job runs", async () => {
    const own = await trigger(a.key, { origin: A_ORIGIN });
    expect(own.status, own.text).toBe(200);
    expect(allowOrigin(own)).toBe(A_ORIGIN);
    expect(own.headers.get("vary")).toContain("Origin");
    expect(own.headers.get("access-control-expose-headers")).toContain("x-request-id");

    const turnsBefore = fixture.chatTurns.length;
    const conversationsBefore = (await b.store.listConversations({ limit: 100 })).length;
    const foreign = await trigger(b.key, { origin: A_ORIGIN });
    expect([foreign.status, codeOf(foreign)]).toEqual([403, "SF_ERR_CORS_ORIGIN_DENIED"]);
    expect(allowOrigin(foreign)).toBeNull();
    // B's key from a site nobody lists, and through the legacy route and the stream: the same.
    const stranger = await trigger(b.key, { origin: STRANGER });
    expect([stranger.status, allowOrigin(stranger)]).toEqual([403, null]);
    const v1 = await call("POST", "/api/v1/trigger-agent", {
      headers: { "x-api-key": b.key, origin: A_ORIGIN },
      body: { agent_slug: "helper", user_id: "u", mode: "text", message: "hi" },
    });
    expect([v1.status, codeOf(v1), allowOrigin(v1)]).toEqual([403, "SF_ERR_CORS_ORIGIN_DENIED", null]);
    const sse = await call("POST", "/api/embed/text/stream", {
      headers: { "x-api-key": b.key, origin: A_ORIGIN },
      body: { agent_slug: "helper", user_id: "u", message: "hi" },
    });
    expect([sse.status, allowOrigin(sse)]).toEqual([403, null]);
    expect(fixture.chatTurns.length).toBe(turnsBefore);
    expect((await b.store.listConversations({ limit: 100 })).length).toBe(conversationsBefore);

    // B's own site, the global list and a server (no Origin) all work with B's key.
    const bOwn = await trigger(b.key, { origin: B_ORIGIN });
    expect([bOwn.status, allowOrigin(bOwn)]).toEqual([200, B_ORIGIN]);
    const global = await trigger(b.key, { origin: GLOBAL_ORIGIN });
    expect([global.status, allowOrigin(global)]).toEqual([200, GLOBAL_ORIGIN]);
    const server = await trigger(b.key);
    expect([server.status, allowOrigin(server)]).toEqual([200, null]);

    // The stream answers A's site with A's key.
    const stream = await fetch(`${gw.base}/api/embed/text/stream`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-api-key": a.key, origin: A_ORIGIN },
      body: JSON.stringify({ agent_slug: "helper", user_id: "u", message: "stream" }),
    });
    expect([stream.status, stream.headers.get("access-control-allow-origin")]).toEqual([200, A_ORIGIN]);
    expect(await stream.text()).toContain('"done":true');
  });

  it("cors - a preflight passes for origins some tenant lists on thin-client routes only; admin routes keep the global list", async () => {
    for (const path of ["/api/v2/trigger-agent", "/api/v1/trigger-agent", "/api/embed/text/stream"]) {
      for (const origin of [A_ORIGIN, B_ORIGIN, GLOBAL_ORIGIN]) {
        const res = await preflight(path, origin);
        expect(res.status, `${path} ${origin}`).toBe(204);
        expect(allowOrigin(res)).toBe(origin);
        expect(res.headers.get("access-control-allow-headers")).toContain("x-api-key");
      }
      const refused = await preflight(path, STRANGER);
      expect([refused.status, codeOf(refused), allowOrigin(refused)]).toEqual([
        403,
        "SF_ERR_CORS_ORIGIN_DENIED",
        null,
      ]);
    }
    expect((await preflight("/api/v2/documents", A_ORIGIN, "GET")).status).toBe(204);
    expect((await preflight("/api/v2/clients", A_ORIGIN, "GET")).status).toBe(403);
    expect((await preflight("/api/v2/clients", GLOBAL_ORIGIN, "GET")).status).toBe(204);
    // An answer to no accepted key holds no tenant data: a listed site may read why it failed.
    const badKey = await trigger(`sk_${"x".repeat(40)}`, { origin: A_ORIGIN });
    expect([badKey.status, allowOrigin(badKey)]).toEqual([401, A_ORIGIN]);
    const invalid = await call("POST", "/api/v2/trigger-agent", {
      headers: { origin: B_ORIGIN },
      body: { agent_slug: "helper" },
    });
    expect([invalid.status, allowOrigin(invalid)]).toEqual([400, B_ORIGIN]);
    const unlisted = await trigger(`sk_${"x".repeat(40)}`, { origin: STRANGER });
    expect([unlisted.status, allowOrigin(unlisted)]).toEqual([401, null]);
    // Admin credentials on a thin-client route: the global list only.
    const admin = await call("POST", "/api/v2/trigger-agent", {
      headers: { authorization: `Bearer ${ADMIN}`, origin: A_ORIGIN },
      body: { agent_slug: "helper", user_id: "u", message: "hi", client_id: a.id },
    });
    expect([admin.status, allowOrigin(admin)]).toEqual([200, null]);
  });

  it("cors - /ws closes a browser of another tenant's site with 4403 and serves the key's own site", async () => {
    const wsUrl = `${gw.base.replace("http", "ws")}/ws?token=${encodeURIComponent(b.key)}`;
    const refused = new WebSocket(wsUrl, { origin: A_ORIGIN });
    const refusedCode = await new Promise<number>((resolve) =>
      refused.on("close", (code: number) => resolve(code)),
    );
    expect(refusedCode).toBe(4403);
    const own = await openWsClient<{ type: string; text?: string }>(wsUrl, { origin: B_ORIGIN });
    own.ws.send(JSON.stringify({ type: "message", agent_slug: "helper", text: "ws from b's site" }));
    const final = await nextFrame(own, "the reply", (f) => f.type === "message", 10_000);
    expect(final.text).toContain("ws from b's site");
    own.ws.close(1000);
  });

  it("cors - a settings change takes effect without a restart, through PATCH on this gateway and through the bus", async () => {
    const reader = await keyWith(a, ["documents:read"]);
    const list = (origin: string) =>
      call("GET", "/api/v2/documents", { headers: { "x-api-key": reader, origin } });
    const NEW = "https://a-new.example";
    // Cached: the key's verification (10 s) and the preflight's "nobody lists NEW" (60 s).
    expect((await list(A_ORIGIN)).status).toBe(200);
    expect((await list(NEW)).status).toBe(403);
    expect((await preflight("/api/v2/documents", NEW, "GET")).status).toBe(403);

    const patched = await patchSettings(a.id, { cors_origins: [NEW] });
    expect(patched.status, patched.text).toBe(200);
    expect((patched.body["settings"] as { cors_origins?: unknown }).cors_origins).toEqual([NEW]);
    const now = await list(NEW);
    expect([now.status, allowOrigin(now)]).toEqual([200, NEW]);
    expect((await list(A_ORIGIN)).status).toBe(403);
    expect((await preflight("/api/v2/documents", NEW, "GET")).status).toBe(204);

    // A tool on the bus changes it back: the gateway hears the settings event.
    const subjects = createSubjects({ prefix: "sf", partitions: P });
    await requestReply(
      nc,
      subjects.platformOp(PlatformOps.clientsUpdate),
      { actor: "system:test", id: a.id, settings: { cors_origins: [A_ORIGIN] } },
      { timeoutMs: 10_000 },
    );
    await waitFor("the old origin allowed again", async () => (await list(A_ORIGIN)).status === 200, {
      timeoutMs: 5000,
    });
    expect((await list(NEW)).status).toBe(403);
    await waitFor("the new origin's preflight refused", async () => {
      return (await preflight("/api/v2/documents", NEW, "GET")).status === 403;
    });
    // Removing the list: only the global list is left.
    expect((await patchSettings(a.id, { cors_origins: null })).status).toBe(200);
    expect((await list(A_ORIGIN)).status).toBe(403);
    expect((await list(GLOBAL_ORIGIN)).status).toBe(200);
    expect((await patchSettings(a.id, { cors_origins: [A_ORIGIN] })).status).toBe(200);
  });

  it("cors - bad cors_origins answer 400 and change nothing", async () => {
    const before = await call("GET", `/api/v2/clients/${b.id}`, {
      headers: { authorization: `Bearer ${ADMIN}` },
    });
    const bad: unknown[] = [
      ["https://b-shop.example/shop"],
      ["https://b-shop.example/"],
      ["https://B-Shop.example"],
      ["https://b-shop.example:443"],
      ["http://b-shop.example:80"],
      ["https://b-shop.example:99999"],
      ["b-shop.example"],
      ["null"],
      [""],
      ["https://b-shop.example?x=1"],
      ["https://user@b-shop.example"],
      [B_ORIGIN, B_ORIGIN],
      [42],
      Array.from({ length: 51 }, (_, i) => `https://s${i}.example`),
      "https://b-shop.example",
      { origin: B_ORIGIN },
    ];
    for (const origins of bad) {
      const res = await patchSettings(b.id, { cors_origins: origins }, { name: "Renamed" });
      expect(res.status, JSON.stringify(origins)).toBe(400);
      expect(["SF_ERR_VALIDATION_FAILED", "SF_ERR_INVALID_ARGUMENT"]).toContain(codeOf(res));
    }
    const after = await call("GET", `/api/v2/clients/${b.id}`, {
      headers: { authorization: `Bearer ${ADMIN}` },
    });
    expect(after.body["name"]).toBe(before.body["name"]);
    expect(after.body["settings"]).toEqual(before.body["settings"]);
    expect((await trigger(b.key, { origin: B_ORIGIN })).status).toBe(200);
    // The good forms: 50 distinct origins, a port, a mobile shell's scheme, `*`.
    const good = [
      ...Array.from({ length: 46 }, (_, i) => `https://s${i}.example`),
      "http://localhost:8080",
      "capacitor://localhost",
      "https://[::1]:8443",
      B_ORIGIN,
    ];
    const ok = await patchSettings(b.id, { cors_origins: good });
    expect(ok.status, ok.text).toBe(200);
    expect((ok.body["settings"] as { cors_origins?: unknown }).cors_origins).toEqual(good);
    expect((await patchSettings(b.id, { cors_origins: ["*"] })).status).toBe(200);
    expect((await trigger(b.key, { origin: STRANGER })).status).toBe(200);
    expect((await patchSettings(b.id, { cors_origins: [B_ORIGIN] })).status).toBe(200);
  });
});

describe("API key scopes on the trigger routes", () => {
  it("scopes - keys without scopes (legacy) and with agents:trigger, agents:* or * trigger; a key whose scopes lack it gets 403 on every trigger route and on /ws", async () => {
    for (const scopes of [["agents:trigger"], ["agents:*"], ["*"], ["documents:read", "agents:trigger"]]) {
      const res = await trigger(await keyWith(a, scopes));
      expect(res.status, `${scopes.join(",")}: ${res.text}`).toBe(200);
    }
    expect((await trigger(a.key)).status).toBe(200);
    const docsOnly = await keyWith(a, ["documents:read"]);
    const turnsBefore = fixture.chatTurns.length;
    const v2 = await trigger(docsOnly);
    expect([v2.status, codeOf(v2)]).toEqual([403, "SF_ERR_FORBIDDEN"]);
    expect((v2.body["error"] as { details?: unknown }).details).toMatchObject({ scope: "agents:trigger" });
    const v1 = await call("POST", "/api/v1/trigger-agent", {
      headers: { "x-api-key": docsOnly },
      body: { agent_slug: "helper", user_id: "u", mode: "text", message: "hi", client_id: a.id },
    });
    expect([v1.status, codeOf(v1)]).toEqual([403, "SF_ERR_FORBIDDEN"]);
    const sse = await call("POST", "/api/embed/text/stream", {
      headers: { "x-api-key": docsOnly },
      body: { agent_slug: "helper", user_id: "u", message: "hi" },
    });
    expect([sse.status, codeOf(sse)]).toEqual([403, "SF_ERR_FORBIDDEN"]);
    const ws = new WebSocket(`${gw.base.replace("http", "ws")}/ws?token=${encodeURIComponent(docsOnly)}`);
    expect(await new Promise<number>((resolve) => ws.on("close", (code: number) => resolve(code)))).toBe(
      4403,
    );
    expect(fixture.chatTurns.length).toBe(turnsBefore);
    // The same rule reads documents: the scoped key may list, the legacy key may not.
    expect((await call("GET", "/api/v2/documents", { headers: { "x-api-key": docsOnly } })).status).toBe(200);
    const legacy = await call("GET", "/api/v2/documents", { headers: { "x-api-key": a.key } });
    expect([legacy.status, codeOf(legacy)]).toEqual([403, "SF_ERR_FORBIDDEN"]);
  });
});

describe("Idempotency-Key", () => {
  const idem = (): string => `idem-${randomUUID()}`;

  it("idempotency - a retry after the first job finished answers the same job and reply text; no second job runs", async () => {
    const key = idem();
    const turnsBefore = fixture.chatTurns.length;
    const first = await trigger(a.key, { "idempotency-key": key }, { message: "What are your hours?" });
    expect(first.status, first.text).toBe(200);
    expect(first.body["response"]).toBe(defaultChatReply(fixture.chatTurns.at(-1)!));
    const retry = await trigger(a.key, { "idempotency-key": key }, { message: "What are your hours?" });
    expect(retry.status, retry.text).toBe(200);
    for (const field of ["job_id", "conversation_id", "response", "citations"]) {
      expect(retry.body[field], field).toEqual(first.body[field]);
    }
    expect(fixture.chatTurns.length).toBe(turnsBefore + 1);
    const conversation = first.body["conversation_id"] as string;
    expect(await a.store.listTranscripts(conversation)).toHaveLength(2);

    // The legacy envelope and the stream give the same reply for the same key.
    const v1 = await call("POST", "/api/v1/trigger-agent", {
      headers: { "x-api-key": a.key, "idempotency-key": key },
      body: { agent_slug: "helper", user_id: "thin-user", mode: "text", message: "What are your hours?" },
    });
    expect(v1.status, v1.text).toBe(200);
    const data = v1.body["data"] as Record<string, unknown>;
    expect([data["response"], data["agent_response"], data["conversation_id"]]).toEqual([
      first.body["response"],
      first.body["response"],
      conversation,
    ]);
    const stream = await fetch(`${gw.base}/api/embed/text/stream`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-api-key": a.key, "idempotency-key": key },
      body: JSON.stringify({ agent_slug: "helper", user_id: "thin-user", message: "What are your hours?" }),
    });
    const events = (await stream.text()).split("\n\n").filter((e) => e !== "");
    const payloads = events
      .slice(1)
      .map((e) => JSON.parse(e.slice("data: ".length)) as Record<string, unknown>);
    expect(payloads.map((p) => p["delta"]).filter((d) => d !== undefined)).toEqual([first.body["response"]]);
    expect(payloads.at(-1)).toMatchObject({ done: true, full_text: first.body["response"] });
    expect(fixture.chatTurns.length).toBe(turnsBefore + 1);

    // The key belongs to that request: another message (or user) under it is refused.
    const reused = await trigger(a.key, { "idempotency-key": key }, { message: "Something else" });
    expect([reused.status, codeOf(reused)]).toEqual([409, "SF_ERR_IDEMPOTENCY_KEY_REUSED"]);
    const otherUser = await trigger(
      a.key,
      { "idempotency-key": key },
      { message: "What are your hours?", user_id: "x" },
    );
    expect(otherUser.status).toBe(409);
    // Another tenant's same key is another job.
    const other = await trigger(b.key, { "idempotency-key": key }, { message: "What are your hours?" });
    expect(other.status).toBe(200);
    expect(other.body["job_id"]).not.toBe(first.body["job_id"]);
  });

  it("idempotency - a client that gives up mid-reply and retries gets the whole reply of the one job", async () => {
    const key = idem();
    fixture.setLatency({ tokenDelayMs: 60 });
    try {
      const turnsBefore = fixture.chatTurns.length;
      const gaveUp = new AbortController();
      const first = call("POST", "/api/v2/trigger-agent", {
        headers: { "x-api-key": a.key, "idempotency-key": key },
        body: { agent_slug: "helper", user_id: "thin-user", message: "Tell me a long story about the sea" },
        signal: gaveUp.signal,
      });
      await waitFor("the job to start", () => fixture.chatTurns.length > turnsBefore);
      gaveUp.abort();
      await expect(first).rejects.toThrow();
      const retry = await trigger(
        a.key,
        { "idempotency-key": key },
        { message: "Tell me a long story about the sea" },
      );
      expect(retry.status, retry.text).toBe(200);
      expect(retry.body["response"]).toBe(defaultChatReply(fixture.chatTurns.at(-1)!));
      expect(fixture.chatTurns.length).toBe(turnsBefore + 1);
    } finally {
      fixture.setLatency({ tokenDelayMs: 0 });
    }
  });

  it("idempotency - after the tenant's owner restarts, a retry answers the reply recorded in the transcripts", async () => {
    const key = idem();
    const first = await trigger(a.key, { "idempotency-key": key }, { message: "Remember me" });
    expect(first.status, first.text).toBe(200);
    const turnsBefore = fixture.chatTurns.length;
    const conversationsBefore = (await a.store.listConversations({ limit: 1000 })).length;
    await host.stop();
    host = await spawnActorHost({ natsUrl: server.url, hostId: "thin-h2", partitions: P });
    const retry = await waitFor(
      "the new owner's answer",
      async () => {
        const res = await trigger(a.key, { "idempotency-key": key }, { message: "Remember me" });
        return res.status === 503 ? undefined : res;
      },
      { timeoutMs: 15_000, intervalMs: 200 },
    );
    expect(retry.status, retry.text).toBe(200);
    expect([retry.body["job_id"], retry.body["conversation_id"], retry.body["response"]]).toEqual([
      first.body["job_id"],
      first.body["conversation_id"],
      first.body["response"],
    ]);
    expect(fixture.chatTurns.length).toBe(turnsBefore);
    // Answered from the transcripts: not even a conversation was opened for the retry.
    expect((await a.store.listConversations({ limit: 1000 })).length).toBe(conversationsBefore);
  });

  it("idempotency - a retry reaching a new owner while the job still runs waits for that job and answers its reply", async () => {
    const key = idem();
    const long = (words: number): string => Array.from({ length: words }, (_, i) => `word${i}`).join(" ");
    fixture.setChatResponder(() => long(40));
    fixture.setLatency({ tokenDelayMs: 150 });
    try {
      const turnsBefore = fixture.chatTurns.length;
      const first = trigger(a.key, { "idempotency-key": key }, { message: "One slow answer please" });
      await waitFor("the job to start", () => fixture.chatTurns.length > turnsBefore);
      // The owner dies mid-job; its memory of the job goes with it. The worker keeps streaming.
      await host.kill();
      host = await spawnActorHost({ natsUrl: server.url, hostId: "thin-h3", partitions: P });
      const retry = await waitFor(
        "the new owner's answer",
        async () => {
          const res = await trigger(a.key, { "idempotency-key": key }, { message: "One slow answer please" });
          return res.status === 503 ? undefined : res;
        },
        { timeoutMs: 20_000, intervalMs: 200 },
      );
      expect(retry.status, retry.text).toBe(200);
      expect(retry.body["response"]).toBe(long(40));
      // One job, one recorded turn, and the retry answered what it recorded.
      const rows = await a.store.findTurn(retry.body["job_id"] as string);
      expect(rows.map((r) => [r.role, r.content])).toEqual([
        ["user", "One slow answer please"],
        ["assistant", long(40)],
      ]);
      // The path under test: the new owner found the job in the stream, not in its memory.
      expect(host.lines.some((l) => l.includes("text job dispatched before"))).toBe(true);
      await first;
    } finally {
      fixture.setLatency({ tokenDelayMs: 0 });
      fixture.setChatResponder(defaultChatReply);
    }
  });
});
