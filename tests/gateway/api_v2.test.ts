import { randomBytes, randomUUID } from "node:crypto";
import { createServer } from "node:net";
import type { Socket } from "node:net";
import type { Msg } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ApiKeysCreateReply, ClientDetailView, ClientsListReply } from "../../actors/index.ts";
import { createSubjects, decodeBody } from "../../bus/index.ts";
import { createGateway, parseGatewayConfig } from "../../gateway/index.ts";
import type { OpenApiDocument } from "../../gateway/index.ts";
import { waitFor } from "../helpers/deadline.ts";
import { ApiFixture, codeOf, PARTITIONS } from "./api_fixture.ts";
import { silentLog } from "./app_fixture.ts";

type Detail = ClientDetailView & {
  api_keys: Array<{ id: string; prefix: string; revoked_at: string | null }>;
};
type Agent = { id: string; slug: string; name: string; enabled: boolean; system_prompt: string | null };

const subjects = createSubjects({ partitions: PARTITIONS });
const LIVEKIT_SECRET = `lksecret_${randomBytes(16).toString("hex")}`;
const LIVEKIT_KEY = `lkkey_${randomBytes(8).toString("hex")}`;
/** Every API key shown once in this suite: none may appear anywhere else. */
const issuedKeys: string[] = [];
/** Tenant database credentials set in this suite that no answer or log line may show. */
const databaseSecrets: string[] = [];
let f: ApiFixture;

beforeAll(async () => {
  f = await ApiFixture.start();
});

afterAll(async () => {
  await f?.close();
});

interface BlackHole {
  port: number;
  accepted(): number;
  close(): Promise<void>;
}

/** A TCP server on loopback that accepts connections and never sends a byte. */
async function blackHole(): Promise<BlackHole> {
  const sockets = new Set<Socket>();
  let accepted = 0;
  const server = createServer((socket) => {
    accepted += 1;
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: (server.address() as { port: number }).port,
    accepted: () => accepted,
    close: () => {
      for (const socket of sockets) socket.destroy();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

let seq = 0;
async function newClient(label: string): Promise<Detail> {
  seq += 1;
  const res = await f.call<Detail>("POST", "/api/v2/clients", {
    auth: f.admin,
    body: { slug: `${label}-${f.server.port}-${seq}`, name: `${label} ${seq}` },
  });
  expect(res.status, res.text).toBe(201);
  return res.body;
}

async function withDatabase(
  label: string,
  agents: Array<{ slug: string; name: string }> = [],
): Promise<Detail> {
  const client = await newClient(label);
  const db = await f.tenantDatabase(client.id, `gw_${label.replace(/-/g, "_")}_${seq}`, agents);
  const res = await f.call<Detail>("PATCH", `/api/v2/clients/${client.id}`, {
    auth: f.admin,
    body: { tenant_database: { kind: "postgres", url: db.url, schema: db.schema } },
  });
  expect(res.status, res.text).toBe(200);
  return res.body;
}

async function issueKey(clientId: string): Promise<ApiKeysCreateReply> {
  const res = await f.call<ApiKeysCreateReply>("POST", `/api/v2/clients/${clientId}/api-keys`, {
    auth: f.admin,
    body: { label: "wordpress", scopes: ["agents:read"], site_url: "https://shop.example" },
    showsKey: true,
  });
  expect(res.status, res.text).toBe(201);
  issuedKeys.push(res.body.key);
  return res.body;
}

describe("v2 API - admin authentication", () => {
  it("auth - no credentials, a bad admin token or another scheme answer 401 SF_ERR_UNAUTHENTICATED", async () => {
    const none = await f.call("GET", "/api/v2/clients");
    expect(none.status).toBe(401);
    expect(codeOf(none)).toBe("SF_ERR_UNAUTHENTICATED");
    expect(none.headers.get("www-authenticate")).toMatch(/^Bearer/);
    const bad = await f.call("GET", "/api/v2/clients", { auth: `Bearer ${f.adminToken}x` });
    expect(bad.status).toBe(401);
    expect(codeOf(bad)).toBe("SF_ERR_UNAUTHENTICATED");
    const basic = await f.call("GET", "/api/v2/clients", {
      auth: `Basic ${Buffer.from("a:b").toString("base64")}`,
    });
    expect(basic.status).toBe(401);
    expect(codeOf(basic)).toBe("SF_ERR_UNAUTHENTICATED");
    const ok = await f.call("GET", "/api/v2/clients", { auth: f.admin });
    expect(ok.status).toBe(200);
  });

  it("auth - a service_role or sf_admin JWT is accepted; tampered, expired, alg none and foreign-key JWTs answer 401; a user role 403", async () => {
    for (const role of ["service_role", "sf_admin"]) {
      const res = await f.call("GET", "/api/v2/clients", {
        auth: `Bearer ${f.jwt({ role, sub: "ops@example" })}`,
      });
      expect(res.status, role).toBe(200);
    }
    const good = f.jwt({ role: "authenticated", sub: "u1" });
    const [h, p, s] = good.split(".");
    const elevated = Buffer.from(
      JSON.stringify({ role: "service_role", exp: Math.floor(Date.now() / 1000) + 3600 }),
    ).toString("base64url");
    const none = `${Buffer.from(JSON.stringify({ alg: "none", typ: "JWT" })).toString("base64url")}.${elevated}.`;
    const noneSigned = `${Buffer.from(JSON.stringify({ alg: "none", typ: "JWT" })).toString("base64url")}.${elevated}.${s}`;
    const refused: Record<string, string> = {
      tampered: `${h}.${elevated}.${s}`,
      expired: f.jwt({ role: "service_role", exp: Math.floor(Date.now() / 1000) - 120 }),
      algNone: none,
      algNoneWithSignature: noneSigned,
      otherSecret: f.jwt({ role: "service_role" }, `other_${randomBytes(32).toString("hex")}`),
      noExpiry: f.jwt({ role: "service_role", exp: undefined }),
    };
    for (const [name, token] of Object.entries(refused)) {
      const res = await f.call("GET", "/api/v2/clients", { auth: `Bearer ${token}` });
      expect(res.status, name).toBe(401);
      expect(codeOf(res), name).toBe("SF_ERR_UNAUTHENTICATED");
    }
    void p;
    const user = await f.call("GET", "/api/v2/clients", { auth: `Bearer ${good}` });
    expect(user.status).toBe(403);
    expect(codeOf(user)).toBe("SF_ERR_FORBIDDEN");
  });
});

describe("v2 API - clients", () => {
  it("clients - create answers 201 with nothing configured; bad bodies answer 400 and create nothing; a taken slug 409", async () => {
    const client = await newClient("create");
    expect(client).toMatchObject({
      status: "active",
      credentials: { tenant_database: { configured: false }, livekit: { configured: false } },
    });
    for (const body of [
      { name: "no slug" },
      { slug: "Bad Slug", name: "x" },
      { slug: `ok-${f.server.port}-x`, name: "x", extra: true },
      { slug: `ok-${f.server.port}-y`, name: "" },
      { slug: `ok-${f.server.port}-z`, name: "x", status: "gone" },
    ]) {
      const res = await f.call("POST", "/api/v2/clients", { auth: f.admin, body });
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(codeOf(res)).toBe("SF_ERR_VALIDATION_FAILED");
    }
    const listed = await f.call<ClientsListReply>("GET", `/api/v2/clients?q=ok-${f.server.port}`, {
      auth: f.admin,
    });
    expect(listed.body.clients).toEqual([]);
    const taken = await f.call("POST", "/api/v2/clients", {
      auth: f.admin,
      body: { slug: client.slug, name: "again" },
    });
    expect(taken.status).toBe(409);
    expect(codeOf(taken)).toBe("SF_ERR_ALREADY_EXISTS");
  });

  it("clients - list searches slug and name and pages; a bad query answers 400", async () => {
    const tag = `find${randomBytes(3).toString("hex")}`;
    for (const n of [1, 2, 3]) {
      const res = await f.call("POST", "/api/v2/clients", {
        auth: f.admin,
        body: { slug: `${tag}-${n}`, name: `Found ${n}` },
      });
      expect(res.status).toBe(201);
    }
    const all = await f.call<ClientsListReply>("GET", `/api/v2/clients?q=${tag.toUpperCase()}`, {
      auth: f.admin,
    });
    expect(all.status).toBe(200);
    expect(all.body.clients.map((c) => c.slug)).toEqual([`${tag}-1`, `${tag}-2`, `${tag}-3`]);
    const page = await f.call<ClientsListReply>("GET", `/api/v2/clients?q=${tag}&limit=2&offset=1`, {
      auth: f.admin,
    });
    expect(page.body.clients.map((c) => c.slug)).toEqual([`${tag}-2`, `${tag}-3`]);
    expect(page.body).toMatchObject({ limit: 2, offset: 1 });
    const bad = await f.call("GET", "/api/v2/clients?limit=ten", { auth: f.admin });
    expect(bad.status).toBe(400);
    expect(codeOf(bad)).toBe("SF_ERR_VALIDATION_FAILED");
  });

  it("clients - get, patch and delete; unknown ids answer 404; an empty patch 400", async () => {
    const client = await newClient("crud");
    const got = await f.call<Detail>("GET", `/api/v2/clients/${client.id}`, { auth: f.admin });
    expect(got.status).toBe(200);
    expect(got.body).toMatchObject({ id: client.id, slug: client.slug, api_keys: [] });
    for (const id of [randomUUID(), "not-a-uuid"]) {
      const missing = await f.call("GET", `/api/v2/clients/${id}`, { auth: f.admin });
      expect(missing.status, id).toBe(404);
      expect(codeOf(missing)).toBe("SF_ERR_TENANT_NOT_FOUND");
    }
    const patched = await f.call<Detail>("PATCH", `/api/v2/clients/${client.id}`, {
      auth: f.admin,
      body: { name: "Renamed", status: "suspended" },
    });
    expect(patched.status).toBe(200);
    expect(patched.body).toMatchObject({ name: "Renamed", status: "suspended" });
    const empty = await f.call("PATCH", `/api/v2/clients/${client.id}`, { auth: f.admin, body: {} });
    expect(empty.status).toBe(400);
    expect(codeOf(empty)).toBe("SF_ERR_VALIDATION_FAILED");
    const badDb = await f.call("PATCH", `/api/v2/clients/${client.id}`, {
      auth: f.admin,
      body: { tenant_database: { kind: "postgres" } },
    });
    expect(badDb.status).toBe(400);
    expect(codeOf(badDb)).toBe("SF_ERR_INVALID_INPUT");
    const missingPatch = await f.call("PATCH", `/api/v2/clients/${randomUUID()}`, {
      auth: f.admin,
      body: { name: "x" },
    });
    expect(missingPatch.status).toBe(404);
    const deleted = await f.call("DELETE", `/api/v2/clients/${client.id}`, { auth: f.admin });
    expect(deleted.status).toBe(204);
    const after = await f.call("GET", `/api/v2/clients/${client.id}`, { auth: f.admin });
    expect(after.status).toBe(404);
    const again = await f.call("DELETE", `/api/v2/clients/${client.id}`, { auth: f.admin });
    expect(again.status).toBe(404);
    const audit = await f.platform.listAudit({ limit: 200 });
    expect(
      audit.some((e) => e.action === "client.delete" && e.target === client.id && e.actor === "admin:token"),
    ).toBe(true);
  });

  it("credentials - PATCH stores them write-only: masked on read, audited, announced on evt.client, and the tenant actor reads the new database", async () => {
    const client = await newClient("creds");
    const first = await f.tenantDatabase(client.id, `gw_creds_a_${seq}`, [
      { slug: "first-agent", name: "First" },
    ]);
    const second = await f.tenantDatabase(client.id, `gw_creds_b_${seq}`, [
      { slug: "second-agent", name: "Second" },
    ]);
    const events: Msg[] = [];
    const sub = f.nc.subscribe(subjects.clientEvent(client.id, "credentials"), {
      callback: (_e, m) => {
        events.push(m);
      },
    });
    await f.nc.flush();
    try {
      const res = await f.call<Detail>("PATCH", `/api/v2/clients/${client.id}`, {
        auth: f.admin,
        body: {
          tenant_database: { kind: "postgres", url: first.url, schema: first.schema },
          livekit: { url: "wss://lk.example", api_key: LIVEKIT_KEY, api_secret: LIVEKIT_SECRET },
        },
      });
      expect(res.status, res.text).toBe(200);
      const creds = res.body.credentials;
      expect(creds.tenant_database).toMatchObject({
        configured: true,
        kind: "postgres",
        schema: first.schema,
      });
      expect(creds.livekit).toMatchObject({ configured: true });
      if (creds.tenant_database.configured) expect(creds.tenant_database.url).not.toBe(first.url);
      if (creds.livekit.configured) {
        expect(creds.livekit.api_secret).toMatch(/…\(\d+\)$/);
        expect(creds.livekit.api_key).not.toBe(LIVEKIT_KEY);
      }
      await waitFor("the credentials event", () => events[0]);
      expect(decodeBody(events[0]!.data)).toMatchObject({ clientId: client.id });
      const audit = await f.platform.listAudit({ clientId: client.id });
      const entry = audit.find((e) => e.action === "secret.update");
      expect(entry?.actor).toBe("admin:token");
      expect(entry?.details).toMatchObject({
        fields: ["database:set", "livekit:set"],
        database_kind: "postgres",
      });
      expect(JSON.stringify(audit)).not.toContain(LIVEKIT_SECRET);

      const agents = async () =>
        (
          await f.call<{ agents: Agent[] }>("GET", `/api/v2/clients/${client.id}/agents`, { auth: f.admin })
        ).body.agents?.map((a) => a.slug);
      expect(await agents()).toEqual(["first-agent"]);
      const moved = await f.call("PATCH", `/api/v2/clients/${client.id}`, {
        auth: f.admin,
        body: { tenant_database: { kind: "postgres", url: second.url, schema: second.schema } },
      });
      expect(moved.status).toBe(200);
      await waitFor("a second credentials event", () => events[1]);
      await waitFor("the actor to read the new database", async () =>
        (await agents())?.[0] === "second-agent" ? true : undefined,
      );
      const read = await f.call<Detail>("GET", `/api/v2/clients/${client.id}`, { auth: f.admin });
      expect(read.body.credentials.tenant_database).toMatchObject({
        configured: true,
        schema: second.schema,
      });
      expect(read.text).not.toContain(LIVEKIT_SECRET);
      const removed = await f.call<Detail>("PATCH", `/api/v2/clients/${client.id}`, {
        auth: f.admin,
        body: { livekit: null },
      });
      expect(removed.body.credentials.livekit).toEqual({ configured: false });
    } finally {
      sub.unsubscribe();
    }
  });
});

describe("v2 API - agents and conversations", () => {
  it("agents - create, get, patch, delete in the tenant database; validation 400, duplicates 409, unknown 404", async () => {
    const client = await withDatabase("agents");
    const base = `/api/v2/clients/${client.id}/agents`;
    const created = await f.call<Agent>("POST", base, {
      auth: f.admin,
      body: {
        slug: "helper",
        name: "Helper",
        system_prompt: "Be kind.",
        voice_settings: { llm_provider: "groq" },
        rag_results_limit: 3,
      },
    });
    expect(created.status, created.text).toBe(201);
    expect(created.body).toMatchObject({
      slug: "helper",
      name: "Helper",
      system_prompt: "Be kind.",
      enabled: true,
    });
    for (const body of [
      { name: "no slug" },
      { slug: "bad slug", name: "x" },
      { slug: "ok", name: "x", rag_results_limit: 0 },
      { slug: "ok", name: "x", unknown_field: 1 },
    ]) {
      const res = await f.call("POST", base, { auth: f.admin, body });
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(codeOf(res)).toBe("SF_ERR_VALIDATION_FAILED");
    }
    const dup = await f.call("POST", base, { auth: f.admin, body: { slug: "helper", name: "Again" } });
    expect(dup.status).toBe(409);
    expect(codeOf(dup)).toBe("SF_ERR_ALREADY_EXISTS");
    const list = await f.call<{ agents: Agent[] }>("GET", base, { auth: f.admin });
    expect(list.body.agents.map((a) => a.slug)).toEqual(["helper"]);
    const got = await f.call<Agent>("GET", `${base}/helper`, { auth: f.admin });
    expect(got.body.id).toBe(created.body.id);
    const patched = await f.call<Agent>("PATCH", `${base}/helper`, {
      auth: f.admin,
      body: { name: "Helper 2", enabled: false },
    });
    expect(patched.status).toBe(200);
    expect(patched.body).toMatchObject({ name: "Helper 2", enabled: false });
    const emptyPatch = await f.call("PATCH", `${base}/helper`, { auth: f.admin, body: {} });
    expect(emptyPatch.status).toBe(400);
    const unknown = await f.call("GET", `${base}/nobody`, { auth: f.admin });
    expect(unknown.status).toBe(404);
    expect(codeOf(unknown)).toBe("SF_ERR_AGENT_NOT_FOUND");
    const patchUnknown = await f.call("PATCH", `${base}/nobody`, { auth: f.admin, body: { name: "x" } });
    expect(patchUnknown.status).toBe(404);
    const deleted = await f.call("DELETE", `${base}/helper`, { auth: f.admin });
    expect(deleted.status).toBe(204);
    expect((await f.call("GET", `${base}/helper`, { auth: f.admin })).status).toBe(404);
    expect((await f.call("DELETE", `${base}/helper`, { auth: f.admin })).status).toBe(404);
    const audit = await f.platform.listAudit({ clientId: client.id });
    expect(audit.map((e) => e.action)).toEqual(
      expect.arrayContaining(["agent.create", "agent.update", "agent.delete"]),
    );
    expect(audit.find((e) => e.action === "agent.create")?.actor).toBe("admin:token");
  });

  it("agents - an unknown client answers 404, a client without a database 409", async () => {
    const missing = await f.call("GET", `/api/v2/clients/${randomUUID()}/agents`, { auth: f.admin });
    expect(missing.status).toBe(404);
    expect(codeOf(missing)).toBe("SF_ERR_TENANT_NOT_FOUND");
    const bare = await newClient("bare");
    const res = await f.call("GET", `/api/v2/clients/${bare.id}/agents`, { auth: f.admin });
    expect(res.status).toBe(409);
    expect(codeOf(res)).toBe("SF_ERR_TENANT_DATABASE_NOT_CONFIGURED");
    const none = await f.call("GET", `/api/v2/clients/${bare.id}/agents`);
    expect(none.status).toBe(401);
  });

  it("conversations - list and read one with its transcripts in order; bad queries 400, unknown ids 404", async () => {
    const client = await withDatabase("conv", [{ slug: "talker", name: "Talker" }]);
    const db = await f.platform.getTenantDatabase(client.id);
    const store = await f.openTenant(client.id, db!);
    const userId = randomUUID();
    let conversationId: string;
    try {
      const agent = await store.getAgent("talker");
      const conversation = await store.createConversation({ agentId: agent.id, userId, channel: "text" });
      conversationId = conversation.id;
      await store.appendTurn({
        conversationId,
        agentId: agent.id,
        userId,
        userMessage: "hello",
        assistantMessage: "hi there",
      });
      await store.createConversation({ agentId: agent.id, userId: randomUUID(), channel: "voice" });
    } finally {
      await store.close();
    }
    const base = `/api/v2/clients/${client.id}/conversations`;
    const all = await f.call<{ conversations: Array<{ id: string; user_id: string }> }>("GET", base, {
      auth: f.admin,
    });
    expect(all.status).toBe(200);
    expect(all.body.conversations).toHaveLength(2);
    const mine = await f.call<{ conversations: Array<{ id: string }> }>(
      "GET",
      `${base}?agent_slug=talker&user_id=${userId}&limit=10`,
      {
        auth: f.admin,
      },
    );
    expect(mine.body.conversations.map((c) => c.id)).toEqual([conversationId]);
    const one = await f.call<{
      conversation: { id: string };
      transcripts: Array<{ role: string; content: string }>;
    }>("GET", `${base}/${conversationId}`, { auth: f.admin });
    expect(one.status).toBe(200);
    expect(one.body.conversation.id).toBe(conversationId);
    expect(one.body.transcripts.map((t) => [t.role, t.content])).toEqual([
      ["user", "hello"],
      ["assistant", "hi there"],
    ]);
    for (const q of ["user_id=nope", "limit=-1", "agent_slug=bad%20slug"]) {
      const res = await f.call("GET", `${base}?${q}`, { auth: f.admin });
      expect(res.status, q).toBe(400);
    }
    const unknownAgent = await f.call("GET", `${base}?agent_slug=ghost`, { auth: f.admin });
    expect(unknownAgent.status).toBe(404);
    for (const id of [randomUUID(), "nope"]) {
      const res = await f.call("GET", `${base}/${id}`, { auth: f.admin });
      expect(res.status, id).toBe(404);
      expect(codeOf(res)).toBe("SF_ERR_NOT_FOUND");
    }
  });
});

describe("v2 API - API keys and tenant isolation", () => {
  it("api keys - the key is shown once, works, is listed only by prefix, and is refused once revoked", async () => {
    const client = await withDatabase("keys", [{ slug: "kagent", name: "K" }]);
    const issued = await issueKey(client.id);
    expect(issued.key).toMatch(/^sk_/);
    expect(issued.api_key).toMatchObject({
      client_id: client.id,
      label: "wordpress",
      scopes: ["agents:read"],
      site_url: "https://shop.example",
    });
    const me = await f.call<{ client_id: string }>("GET", "/api/v1/me", { auth: `Bearer ${issued.key}` });
    expect(me.status).toBe(200);
    expect(me.body.client_id).toBe(client.id);
    const viaHeader = await f.call("GET", "/api/v1/me", { headers: { "x-api-key": issued.key } });
    expect(viaHeader.status).toBe(200);
    const detail = await f.call<Detail>("GET", `/api/v2/clients/${client.id}`, { auth: f.admin });
    expect(detail.body.api_keys.map((k) => k.prefix)).toEqual([issued.api_key.prefix]);
    expect(detail.text).not.toContain(issued.key);
    const badScope = await f.call("POST", `/api/v2/clients/${client.id}/api-keys`, {
      auth: f.admin,
      body: { scopes: ["BAD SCOPE"] },
    });
    expect(badScope.status).toBe(400);
    const unknownClient = await f.call("POST", `/api/v2/clients/${randomUUID()}/api-keys`, {
      auth: f.admin,
      body: {},
    });
    expect(unknownClient.status).toBe(404);
    const revoked = await f.call<{ api_key: { revoked_at: string | null } }>(
      "DELETE",
      `/api/v2/clients/${client.id}/api-keys/${issued.api_key.id}`,
      { auth: f.admin },
    );
    expect(revoked.status).toBe(200);
    expect(revoked.body.api_key.revoked_at).not.toBeNull();
    const after = await f.call("GET", "/api/v1/me", { auth: `Bearer ${issued.key}` });
    expect(after.status).toBe(401);
    expect(codeOf(after)).toBe("SF_ERR_UNAUTHENTICATED");
    for (const keyId of [randomUUID(), "nope"]) {
      const res = await f.call("DELETE", `/api/v2/clients/${client.id}/api-keys/${keyId}`, { auth: f.admin });
      expect(res.status, keyId).toBe(404);
    }
  });

  it("unreachable tenant database - a server that accepts and never answers gets 503 SF_ERR_DATABASE_UNAVAILABLE, not a timeout, for postgres and supabase", async () => {
    // A black hole: it accepts connections and never says a word (a firewall that drops, a
    // wedged server). The host gives up on it after SF_TENANT_DB_CONNECT_TIMEOUT_MS (3 s) or
    // SF_TENANT_DB_REQUEST_TIMEOUT_MS (4 s). The gateway has sent its request again by then (every
    // 2 s); the host answers those repeats with the turn's answer, so the client gets the coded
    // 503 as soon as the host has it, not a 504 at the gateway's deadline nor a 500.
    const holes = await Promise.all([blackHole(), blackHole()]);
    try {
      const password = `pw_${randomBytes(12).toString("hex")}`;
      const serviceKey = `srk_${randomBytes(16).toString("hex")}`;
      databaseSecrets.push(password, serviceKey);
      const [pgHole, supabaseHole] = holes;
      const cases = [
        {
          kind: "postgres",
          hole: pgHole,
          database: {
            kind: "postgres",
            url: `postgres://tenant:${password}@127.0.0.1:${pgHole.port}/tenant`,
          },
        },
        {
          kind: "supabase",
          hole: supabaseHole,
          database: {
            kind: "supabase",
            url: `http://127.0.0.1:${supabaseHole.port}`,
            service_role_key: serviceKey,
          },
        },
      ];
      await Promise.all(
        cases.map(async ({ kind, hole, database }) => {
          const client = await newClient(`hole-${kind}`);
          const set = await f.call("PATCH", `/api/v2/clients/${client.id}`, {
            auth: f.admin,
            body: { tenant_database: database },
          });
          expect(set.status, set.text).toBe(200);
          const res = await f.call("GET", `/api/v2/clients/${client.id}/agents`, { auth: f.admin });
          expect(res.status, `${kind}: ${res.text}`).toBe(503);
          expect(codeOf(res), kind).toBe("SF_ERR_DATABASE_UNAVAILABLE");
          expect(res.headers.get("retry-after"), kind).toBe("1");
          expect(res.text).not.toContain(password);
          expect(res.text).not.toContain(serviceKey);
          // The host did reach the black hole: the failure was the database's silence.
          expect(hole.accepted(), kind).toBeGreaterThan(0);
        }),
      );
    } finally {
      await Promise.all(holes.map((h) => h.close()));
    }
  });

  it("cross-tenant - tenant A's valid key on tenant B's ids answers 403/404 and changes nothing", async () => {
    const a = await withDatabase("ten-a", [{ slug: "a-agent", name: "A" }]);
    const b = await withDatabase("ten-b", [{ slug: "b-agent", name: "B" }]);
    const keyA = await issueKey(a.id);
    const keyB = await issueKey(b.id);
    const asA = `Bearer ${keyA.key}`;
    const attempts: Array<[string, string, unknown]> = [
      ["GET", `/api/v2/clients/${b.id}`, undefined],
      ["PATCH", `/api/v2/clients/${b.id}`, { name: "Hijacked" }],
      ["DELETE", `/api/v2/clients/${b.id}`, undefined],
      ["GET", `/api/v2/clients/${b.id}/agents`, undefined],
      ["PATCH", `/api/v2/clients/${b.id}/agents/b-agent`, { name: "Hijacked" }],
      ["DELETE", `/api/v2/clients/${b.id}/agents/b-agent`, undefined],
      ["POST", `/api/v2/clients/${b.id}/agents`, { slug: "intruder", name: "I" }],
      ["POST", `/api/v2/clients/${b.id}/api-keys`, {}],
      ["DELETE", `/api/v2/clients/${b.id}/api-keys/${keyB.api_key.id}`, undefined],
      ["GET", `/api/v2/clients/${b.id}/conversations`, undefined],
      ["GET", `/api/v2/clients`, undefined],
      // Even on its own tenant, an API key is not an admin.
      ["PATCH", `/api/v2/clients/${a.id}`, { name: "Self-service" }],
    ];
    for (const [method, path, body] of attempts) {
      const res = await f.call(method, path, { auth: asA, ...(body === undefined ? {} : { body }) });
      expect(res.status, `${method} ${path}`).toBe(403);
      expect(codeOf(res)).toBe("SF_ERR_FORBIDDEN");
    }
    // Revoking B's key through A's client path: not A's key, so not found, and B's key still works.
    const wrongPath = await f.call("DELETE", `/api/v2/clients/${a.id}/api-keys/${keyB.api_key.id}`, {
      auth: f.admin,
    });
    expect(wrongPath.status).toBe(404);
    expect((await f.call("GET", "/api/v1/me", { auth: `Bearer ${keyB.key}` })).status).toBe(200);
    // Nothing changed for B.
    const bRead = await f.call<Detail>("GET", `/api/v2/clients/${b.id}`, { auth: f.admin });
    expect(bRead.body.name).toBe(b.name);
    expect(bRead.body.api_keys.map((k) => k.revoked_at)).toEqual([null]);
    const bAgents = await f.call<{ agents: Agent[] }>("GET", `/api/v2/clients/${b.id}/agents`, {
      auth: f.admin,
    });
    expect(bAgents.body.agents.map((x) => [x.slug, x.name])).toEqual([["b-agent", "B"]]);
    expect((await f.call<Detail>("GET", `/api/v2/clients/${a.id}`, { auth: f.admin })).body.name).toBe(
      a.name,
    );
  });
});

describe("v2 API - documentation and secrets", () => {
  it("provider keys - write-only: set, listed without the key, replaced, deleted, audited; bad input 400 changes nothing", async () => {
    const client = await withDatabase("pkeys");
    const base = `/api/v2/clients/${client.id}/provider-keys`;
    const key = `gsk_${randomBytes(24).toString("hex")}`;
    issuedKeys.push(key);
    const set = await f.call("PUT", `${base}/groq`, { auth: f.admin, body: { api_key: key } });
    expect(set.status, set.text).toBe(200);
    expect(set.body).toMatchObject({ provider: "groq", configured: true });
    expect(set.text).not.toContain(key);
    for (const [path, body] of [
      [`${base}/groq`, { api_key: "short" }],
      [`${base}/groq`, { api_key: "has white space in it" }],
      [`${base}/Bad.Name`, { api_key: "long-enough-key" }],
      [`${base}/groq`, { api_key: "long-enough-key", extra: 1 }],
    ] as const) {
      const res = await f.call("PUT", path, { auth: f.admin, body });
      expect(res.status, `${path} ${JSON.stringify(body)}`).toBe(400);
    }
    const list = await f.call<{ provider_keys: Array<{ provider: string }> }>("GET", base, { auth: f.admin });
    expect(list.body.provider_keys.map((k) => k.provider)).toEqual(["groq"]);
    expect(list.text).not.toContain(key);
    const database = await f.platform.getTenantDatabase(client.id);
    if (database === null) throw new Error("no tenant database");
    const store = await f.openTenant(client.id, database);
    try {
      expect(await store.getProviderKey("groq")).toBe(key);
      const removed = await f.call("DELETE", `${base}/groq`, { auth: f.admin });
      expect(removed.body).toEqual({ provider: "groq", deleted: true });
      expect(await store.getProviderKey("groq")).toBeNull();
    } finally {
      await store.close();
    }
    const again = await f.call("DELETE", `${base}/groq`, { auth: f.admin });
    expect(again.body).toEqual({ provider: "groq", deleted: false });
    const actions = (await f.platform.listAudit({ clientId: client.id })).map((a) => a.action);
    expect(actions).toEqual(expect.arrayContaining(["provider_key.set", "provider_key.delete"]));
    // A thin client's API key is not an admin.
    const apiKey = await issueKey(client.id);
    const refused = await f.call("PUT", `${base}/groq`, {
      auth: `Bearer ${apiKey.key}`,
      body: { api_key: key },
    });
    expect(refused.status).toBe(403);
  });

  it("openapi - every v1 and v2 route is documented with its schemas", async () => {
    const res = await f.call<OpenApiDocument>("GET", "/openapi.json");
    expect(res.status).toBe(200);
    const table = createGateway({ nc: f.nc, config: parseGatewayConfig({}), log: silentLog }).router.routes();
    const api = table.filter((r) => r.path.startsWith("/api/"));
    expect(api.length).toBe(38);
    for (const route of api) {
      const op = res.body.paths[route.path]?.[route.method.toLowerCase()] as
        { requestBody?: unknown } | undefined;
      expect(op, `${route.method} ${route.path}`).toBeDefined();
      if (route.schema?.body !== undefined) expect(op?.requestBody, route.path).toBeDefined();
    }
  });

  it("secrets - no response body and no log line of the gateway or the host holds a key, token or credential", () => {
    expect(issuedKeys.length).toBeGreaterThanOrEqual(3);
    const secrets = f.secrets([LIVEKIT_SECRET, LIVEKIT_KEY, ...issuedKeys, ...databaseSecrets]);
    expect(f.bodies.length).toBeGreaterThan(50);
    for (const secret of secrets) {
      for (const body of f.bodies)
        expect(body.includes(secret), `a response holds ${secret.slice(0, 6)}…`).toBe(false);
      for (const proc of [f.gw.proc, f.host]) {
        const leaked = proc.lines.find((l) => l.includes(secret));
        expect(leaked, `${proc.name} logged ${secret.slice(0, 6)}…`).toBeUndefined();
      }
    }
  });
});
