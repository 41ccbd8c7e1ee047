import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { PlatformStore } from "../../actors/index.ts";
import { connectBus } from "../../bus/index.ts";
import { waitFor } from "../helpers/deadline.ts";
import { NatsTestServer } from "../helpers/nats_server.ts";
import { spawnActorHost } from "../helpers/processes.ts";
import type { TestProcess } from "../helpers/processes.ts";
import { createChatTenant, openTestPlatform, spawnWorker } from "../helpers/stack.ts";
import { openWsClient } from "../helpers/ws_client.ts";
import type { WsClient } from "../helpers/ws_client.ts";
import type { ChatTenant } from "../helpers/stack.ts";
import { defaultChatReply, startProviderFixture } from "../fixtures/providers/provider_fixture.ts";
import type { ProviderFixture } from "../fixtures/providers/provider_fixture.ts";
import { spawnGateway } from "../helpers/gateway_process.ts";
import type { GatewayProcess } from "../helpers/gateway_process.ts";

const P = 16;
const ADMIN = `adm_${randomBytes(24).toString("hex")}`;

type Tenant = ChatTenant;

let server: NatsTestServer;
let fixture: ProviderFixture;
let host: TestProcess;
let worker: TestProcess;
let gw: GatewayProcess;
let platform: PlatformStore;
let a: Tenant;
let b: Tenant;
const bodies: string[] = [];

function tenant(slug: string): Promise<Tenant> {
  return createChatTenant(platform, fixture, {
    slug: `${slug}-${server.port}`,
    name: `${slug} inc`,
    schema: `${slug.replace(/-/g, "_")}_${server.port}`,
    keyName: "wordpress",
    agent: { systemPrompt: "You are the Acme helper." },
  });
}

interface Res {
  status: number;
  headers: Headers;
  text: string;
  body: Record<string, unknown>;
}

async function post(path: string, body: unknown, headers: Record<string, string> = {}): Promise<Res> {
  const res = await fetch(`${gw.base}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  bodies.push(text);
  const parsed: unknown = (res.headers.get("content-type") ?? "").startsWith("application/json")
    ? JSON.parse(text)
    : {};
  return { status: res.status, headers: res.headers, text, body: parsed as Record<string, unknown> };
}

const codeOf = (res: Res): unknown => (res.body["error"] as { code?: unknown } | undefined)?.code;
const keyOf = (t: Tenant) => ({ "x-api-key": t.key });

beforeAll(async () => {
  server = await NatsTestServer.start();
  fixture = await startProviderFixture();
  [host, worker, gw] = await Promise.all([
    spawnActorHost({ natsUrl: server.url, hostId: "trig-h1", partitions: P }),
    spawnWorker({ natsUrl: server.url, partitions: P, workerId: "w1", endpoints: fixture.endpoints() }),
    spawnGateway({
      natsUrl: server.url,
      partitions: P,
      maxBodyBytes: 64 * 1024,
      extraEnv: {
        SF_ADMIN_TOKEN: ADMIN,
        SF_GATEWAY_REQUEST_TIMEOUT_MS: "10000",
        SF_GATEWAY_REPLY_TIMEOUT_MS: "20000",
        SF_WS_MAX_PAYLOAD_BYTES: "4096",
      },
    }),
  ]);
  platform = await openTestPlatform(server.url);
  a = await tenant("trig-a");
  b = await tenant("trig-b");
  await a.store.createAgent({ slug: "off", name: "Off", enabled: false });
  await a.store.createAgent({
    slug: "keyless",
    name: "Keyless",
    voiceSettings: { llm_provider: "openai", llm_model: "gpt-4o-mini" },
  });
});

afterAll(async () => {
  await a?.store.close();
  await b?.store.close();
  await platform?.close();
  await gw?.proc.stop();
  await worker?.stop();
  await host?.stop();
  await fixture?.[Symbol.asyncDispose]();
  await server?.[Symbol.asyncDispose]();
});

describe("trigger-agent v1 - text", () => {
  it("v1 text - answers the legacy envelope with the LLM's reply, and both messages land in the transcripts", async () => {
    const before = fixture.chatTurns.length;
    const res = await post(
      "/api/v1/trigger-agent",
      { agent_slug: "helper", mode: "text", user_id: "wp-7", message: "What is the capital of France?" },
      keyOf(a),
    );
    expect(res.status, res.text).toBe(200);
    expect(Object.keys(res.body).sort()).toEqual(["agent_info", "data", "message", "success"]);
    expect(res.body["success"]).toBe(true);
    expect(typeof res.body["message"]).toBe("string");
    const data = res.body["data"] as Record<string, unknown>;
    expect(Object.keys(data).sort()).toEqual(
      ["agent_response", "ai_response", "citations", "conversation_id", "mode", "response", "user_id"].sort(),
    );
    expect(fixture.chatTurns).toHaveLength(before + 1);
    const expected = defaultChatReply(fixture.chatTurns[before]!);
    expect(data).toMatchObject({
      mode: "text",
      user_id: "wp-7",
      response: expected,
      agent_response: expected,
      ai_response: expected,
      citations: [],
    });
    expect(res.body["agent_info"]).toEqual({
      slug: "helper",
      name: "Helper",
      client_id: a.id,
      client_name: a.name,
      voice_provider: null,
      voice_id: null,
    });
    const rows = await a.store.listTranscripts(data["conversation_id"] as string);
    expect(rows.map((r) => [r.role, r.content])).toEqual([
      ["user", "What is the capital of France?"],
      ["assistant", expected],
    ]);
  });

  it("v1 text - an admin names the client; a follow-up in the same conversation carries the first turn", async () => {
    const first = await post(
      "/api/v1/trigger-agent",
      { agent_slug: "helper", mode: "text", user_id: "wp-8", message: "One", client_id: b.id },
      { authorization: `Bearer ${ADMIN}` },
    );
    expect(first.status, first.text).toBe(200);
    const conversationId = (first.body["data"] as { conversation_id: string }).conversation_id;
    expect((first.body["agent_info"] as { client_id: string }).client_id).toBe(b.id);
    const second = await post(
      "/api/v1/trigger-agent",
      {
        agent_slug: "helper",
        mode: "text",
        user_id: "wp-8",
        message: "Two",
        conversation_id: conversationId,
      },
      keyOf(b),
    );
    expect(second.status, second.text).toBe(200);
    expect((second.body["data"] as { conversation_id: string }).conversation_id).toBe(conversationId);
    expect(await b.store.listTranscripts(conversationId)).toHaveLength(4);
    expect(await a.store.findConversation(conversationId)).toBeNull();
  });

  it("v1 errors - 422 invalid body, 400 missing message / video / disabled agent, 404 unknown agent or client, 403 other tenant, 401 no key", async () => {
    const calls = fixture.calls.length;
    const cases: Array<[Res, number, string]> = [
      [
        await post("/api/v1/trigger-agent", { agent_slug: 5, user_id: "u" }, keyOf(a)),
        422,
        "SF_ERR_VALIDATION_FAILED",
      ],
      [
        await post("/api/v1/trigger-agent", { agent_slug: "helper", mode: "text", user_id: "u" }, keyOf(a)),
        400,
        "SF_ERR_MISSING_FIELD",
      ],
      [
        await post("/api/v1/trigger-agent", { agent_slug: "helper", mode: "voice", user_id: "u" }, keyOf(a)),
        400,
        "SF_ERR_MISSING_FIELD",
      ],
      [
        await post(
          "/api/v1/trigger-agent",
          { agent_slug: "helper", mode: "video", user_id: "u", message: "x" },
          keyOf(a),
        ),
        400,
        "SF_ERR_MODE_NOT_SUPPORTED",
      ],
      [
        await post(
          "/api/v1/trigger-agent",
          { agent_slug: "off", mode: "text", user_id: "u", message: "x" },
          keyOf(a),
        ),
        400,
        "SF_ERR_AGENT_DISABLED",
      ],
      [
        await post(
          "/api/v1/trigger-agent",
          { agent_slug: "nobody", mode: "text", user_id: "u", message: "x" },
          keyOf(a),
        ),
        404,
        "SF_ERR_AGENT_NOT_FOUND",
      ],
      [
        await post(
          "/api/v1/trigger-agent",
          {
            agent_slug: "helper",
            mode: "text",
            user_id: "u",
            message: "x",
            client_id: "00000000-0000-4000-8000-000000000000",
          },
          { authorization: `Bearer ${ADMIN}` },
        ),
        404,
        "SF_ERR_TENANT_NOT_FOUND",
      ],
      [
        await post(
          "/api/v1/trigger-agent",
          { agent_slug: "helper", mode: "text", user_id: "u", message: "x", client_id: b.id },
          keyOf(a),
        ),
        403,
        "SF_ERR_FORBIDDEN",
      ],
      [
        await post("/api/v1/trigger-agent", {
          agent_slug: "helper",
          mode: "text",
          user_id: "u",
          message: "x",
        }),
        401,
        "SF_ERR_UNAUTHENTICATED",
      ],
      [
        await post(
          "/api/v1/trigger-agent",
          { agent_slug: "helper", mode: "text", user_id: "u", message: "x" },
          { authorization: `Bearer ${ADMIN}` },
        ),
        422,
        "SF_ERR_VALIDATION_FAILED",
      ],
    ];
    for (const [res, status, code] of cases) {
      expect([res.status, codeOf(res)], res.text).toEqual([status, code]);
    }
    expect(fixture.calls.length).toBe(calls);
  });

  it("v1 voice - is forwarded to the tenant actor; a tenant without LiveKit credentials gets a clear 409, never a fake room", async () => {
    const res = await post(
      "/api/v1/trigger-agent",
      { agent_slug: "helper", mode: "voice", user_id: "u", room_name: "room-1" },
      keyOf(a),
    );
    expect([res.status, codeOf(res)]).toEqual([409, "SF_ERR_LIVEKIT_NOT_CONFIGURED"]);
  });

  it("no fallback - a misconfigured provider reaches the caller with its code and the provider's name; no provider is called", async () => {
    const calls = fixture.calls.length;
    const res = await post(
      "/api/v1/trigger-agent",
      { agent_slug: "keyless", mode: "text", user_id: "u", message: "hello" },
      keyOf(a),
    );
    expect(res.status, res.text).toBe(409);
    expect(res.body["error"]).toMatchObject({
      code: "SF_ERR_PROVIDER_MISCONFIGURED",
      details: { provider: "openai" },
    });
    expect(fixture.calls.length).toBe(calls);
  });
});

describe("trigger-agent v2", () => {
  it("v2 text - answers job, reply, citations and timings for the API key's tenant", async () => {
    const before = fixture.chatTurns.length;
    const res = await post(
      "/api/v2/trigger-agent",
      { agent_slug: "helper", user_id: "v2-user", message: "Hello there" },
      { ...keyOf(a), "idempotency-key": `idem-${randomBytes(6).toString("hex")}` },
    );
    expect(res.status, res.text).toBe(200);
    expect(res.body).toMatchObject({
      mode: "text",
      response: defaultChatReply(fixture.chatTurns[before]!),
      citations: [],
      worker_id: "w1",
      agent: { slug: "helper", name: "Helper" },
    });
    const timings = res.body["timings"] as { claim_ms: number; first_token_ms: number; total_ms: number };
    expect(timings.claim_ms).toBeGreaterThanOrEqual(0);
    expect(timings.first_token_ms).toBeGreaterThan(0);
    expect(timings.total_ms).toBeGreaterThanOrEqual(timings.first_token_ms);
    const bad = await post(
      "/api/v2/trigger-agent",
      { agent_slug: "helper", user_id: "u", extra: 1 },
      keyOf(a),
    );
    expect([bad.status, codeOf(bad)]).toEqual([400, "SF_ERR_VALIDATION_FAILED"]);
  });

  it("v2 text - a session the gateway makes up streams through its chat inbox; a session the caller names, on its own subject", async () => {
    const watcher = await connectBus({ servers: server.url, name: "chat-watcher" });
    try {
      const viaInbox: string[] = [];
      const direct: string[] = [];
      watcher.subscribe("sf.chat.*.*.out", {
        callback: (_e, m) => {
          viaInbox.push(m.subject);
        },
      });
      watcher.subscribe("sf.chat.*.out", {
        callback: (_e, m) => {
          direct.push(m.subject);
        },
      });
      await watcher.flush();
      const made = await post(
        "/api/v2/trigger-agent",
        { agent_slug: "helper", user_id: "inbox-user", message: "Hello inbox" },
        keyOf(a),
      );
      expect(made.status, made.text).toBe(200);
      const madeUp = made.body["session_id"] as string;
      expect(madeUp).toMatch(/^gw-/);
      const named = `caller-${randomBytes(4).toString("hex")}`;
      const given = await post(
        "/api/v2/trigger-agent",
        { agent_slug: "helper", user_id: "inbox-user", message: "Hello subject", session_id: named },
        keyOf(a),
      );
      expect(given.status, given.text).toBe(200);
      expect(given.body["session_id"]).toBe(named);
      expect(given.body["response"]).toBe(defaultChatReply(fixture.chatTurns.at(-1)!));
      await waitFor(
        "both turns' frames",
        () => viaInbox.some((s) => s.endsWith(`.${madeUp}.out`)) && direct.includes(`sf.chat.${named}.out`),
      );
      // Each went one way only, and the made-up session's frames all went to one inbox.
      expect(direct.filter((s) => s.includes(madeUp))).toEqual([]);
      expect(viaInbox.filter((s) => s.includes(named))).toEqual([]);
      const inboxes = new Set(
        viaInbox.filter((s) => s.endsWith(`.${madeUp}.out`)).map((s) => s.split(".")[2]),
      );
      expect([...inboxes]).toHaveLength(1);
      expect([...inboxes][0]).toMatch(/^gw-/);
    } finally {
      await watcher.close();
    }
  });
});

function sseEvents(text: string): string[] {
  return text.split("\n\n").filter((e) => e !== "");
}

describe("embed text stream (SSE)", () => {
  it("sse - stream-open, the deltas in order, then done with full_text equal to the deltas joined", async () => {
    const res = await fetch(`${gw.base}/api/embed/text/stream`, {
      method: "POST",
      headers: { "content-type": "application/json", ...keyOf(a) },
      body: JSON.stringify({
        agent_slug: "helper",
        user_id: "sse-user",
        message: "Stream me a reply please",
      }),
    });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^text\/event-stream/);
    const text = await res.text();
    bodies.push(text);
    const events = sseEvents(text);
    expect(events[0]).toBe(":stream-open");
    const data = events.slice(1).map((e) => {
      expect(e.startsWith("data: ")).toBe(true);
      return JSON.parse(e.slice("data: ".length)) as Record<string, unknown>;
    });
    const last = data.at(-1) as {
      done?: boolean;
      full_text?: string;
      conversation_id?: string;
      citations?: unknown;
    };
    const deltas = data.slice(0, -1).map((d) => d["delta"]);
    expect(deltas.length).toBeGreaterThan(1);
    expect(deltas.every((d) => typeof d === "string")).toBe(true);
    expect(last.done).toBe(true);
    expect(last.full_text).toBe(deltas.join(""));
    expect(last.full_text).toBe(defaultChatReply(fixture.chatTurns.at(-1)!));
    expect(last.citations).toEqual([]);
    expect(await a.store.listTranscripts(last.conversation_id!)).toHaveLength(2);
  });

  it("sse - a worker error ends the stream with an error event marked no_fallback", async () => {
    const res = await fetch(`${gw.base}/api/embed/text/stream`, {
      method: "POST",
      headers: { "content-type": "application/json", ...keyOf(a) },
      body: JSON.stringify({ agent_slug: "keyless", user_id: "sse-user", message: "hi" }),
    });
    const events = sseEvents(await res.text());
    expect(events[0]).toBe(":stream-open");
    expect(JSON.parse(events.at(-1)!.slice("data: ".length))).toMatchObject({
      code: "SF_ERR_PROVIDER_MISCONFIGURED",
      no_fallback: true,
    });
  });
});

interface WsFrame {
  type: string;
  seq?: number;
  delta?: string;
  text?: string;
  code?: string;
}

const openWs = (url: string): Promise<WsClient<WsFrame>> => openWsClient<WsFrame>(url);

async function wsGauge(): Promise<number> {
  const text = await (await fetch(`${gw.base}/metrics`)).text();
  return Number(/^sf_gateway_ws_connections (\d+)/m.exec(text)?.[1] ?? "NaN");
}

describe("websocket chat", () => {
  it("ws - concurrent connections each get their tokens in order and a final message; the gauge follows", async () => {
    const wsBase = gw.base.replace("http", "ws");
    const n = 4;
    const conns = await Promise.all(
      Array.from({ length: n }, () => openWs(`${wsBase}/ws?token=${encodeURIComponent(a.key)}`)),
    );
    await waitFor("the gauge", async () => (await wsGauge()) === n);
    conns.forEach((c, i) =>
      c.ws.send(
        JSON.stringify({
          type: "message",
          agent_slug: "helper",
          text: `socket ${i} says hello`,
          user_id: `ws-${i}`,
        }),
      ),
    );
    for (const [i, c] of conns.entries()) {
      const final = await waitFor(`socket ${i}'s reply`, () => c.frames.find((f) => f.type === "message"));
      const tokens = c.frames.filter((f) => f.type === "token");
      expect(tokens.map((t) => t.seq)).toEqual(tokens.map((_, j) => j));
      expect(final.text).toBe(tokens.map((t) => t.delta).join(""));
      expect(final.text).toContain(`socket ${i} says hello`);
      expect(c.frames.some((f) => f.type === "error")).toBe(false);
    }
    conns[0]!.ws.send("not json");
    await waitFor("the error frame", () => conns[0]!.frames.find((f) => f.type === "error"));
    expect(conns[0]!.frames.find((f) => f.type === "error")?.code).toBe("SF_ERR_BAD_JSON");
    for (const c of conns) c.ws.close(1000);
    await Promise.all(conns.map((c) => c.closed));
    await waitFor("the gauge back to zero", async () => (await wsGauge()) === 0);
  });

  it("ws - no key or a bad key is closed with 4401; an oversized message with 1009", async () => {
    const wsBase = gw.base.replace("http", "ws");
    const none = await openWs(`${wsBase}/ws`);
    expect(await none.closed).toBe(4401);
    const bad = await openWs(`${wsBase}/ws?token=sk_${"x".repeat(40)}`);
    expect(await bad.closed).toBe(4401);
    const ok = await openWs(`${wsBase}/ws?token=${encodeURIComponent(b.key)}`);
    ok.ws.send("x".repeat(8192));
    expect(await ok.closed).toBe(1009);
  });

  it("secrets - no response body holds an API key or a provider key", () => {
    expect(bodies.length).toBeGreaterThan(10);
    for (const secret of [a.key, b.key, fixture.keys.groq, ADMIN]) {
      for (const body of bodies) expect(body.includes(secret)).toBe(false);
    }
  });
});
