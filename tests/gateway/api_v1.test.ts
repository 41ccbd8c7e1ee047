import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ApiKeysCreateReply, ClientDetailView, ClientView } from "../../actors/index.ts";
import { generateApiKey, PlatformOps } from "../../actors/index.ts";
import { createSubjects, requestReply } from "../../bus/index.ts";
import { waitFor } from "../helpers/deadline.ts";
import { ApiFixture, codeOf, PARTITIONS } from "./api_fixture.ts";

type Agent = { slug: string; name: string; system_prompt: string | null };

let f: ApiFixture;
let a: ClientDetailView;
let b: ClientDetailView;
let keyA: ApiKeysCreateReply;
const issuedKeys: string[] = [];

async function client(
  label: string,
  agents: Array<{ slug: string; name: string }>,
): Promise<ClientDetailView> {
  const created = await f.call<ClientDetailView>("POST", "/api/v2/clients", {
    auth: f.admin,
    body: { slug: `v1-${label}-${f.server.port}`, name: `V1 ${label}` },
  });
  expect(created.status, created.text).toBe(201);
  const db = await f.tenantDatabase(created.body.id, `gw_v1_${label}`, agents);
  const res = await f.call<ClientDetailView>("PATCH", `/api/v2/clients/${created.body.id}`, {
    auth: f.admin,
    body: { tenant_database: { kind: "postgres", url: db.url, schema: db.schema } },
  });
  expect(res.status, res.text).toBe(200);
  return res.body;
}

async function issueKey(clientId: string): Promise<ApiKeysCreateReply> {
  const res = await f.call<ApiKeysCreateReply>("POST", `/api/v2/clients/${clientId}/api-keys`, {
    auth: f.admin,
    body: { label: "legacy plugin" },
    showsKey: true,
  });
  expect(res.status, res.text).toBe(201);
  issuedKeys.push(res.body.key);
  return res.body;
}

beforeAll(async () => {
  // The longest cache the gateway allows: a revocation made elsewhere is seen only through its event.
  f = await ApiFixture.start({ apiKeyCacheMs: 10_000 });
  a = await client("a", [
    { slug: "alpha", name: "Alpha" },
    { slug: "beta", name: "Beta" },
  ]);
  b = await client("b", [{ slug: "gamma", name: "Gamma" }]);
  keyA = await issueKey(a.id);
});

afterAll(async () => {
  await f?.close();
});

describe("v1 legacy API - clients and me", () => {
  it("GET /api/v1/clients - an array for admins; 401 without credentials; 403 for an API key", async () => {
    const res = await f.call<ClientView[]>("GET", "/api/v1/clients", { auth: f.admin });
    expect(res.status).toBe(200);
    expect(Array.isArray(res.body)).toBe(true);
    expect(res.body.map((c) => c.id)).toEqual(expect.arrayContaining([a.id, b.id]));
    const none = await f.call("GET", "/api/v1/clients");
    expect(none.status).toBe(401);
    expect(codeOf(none)).toBe("SF_ERR_UNAUTHENTICATED");
    const key = await f.call("GET", "/api/v1/clients", { auth: `Bearer ${keyA.key}` });
    expect(key.status).toBe(403);
    expect(codeOf(key)).toBe("SF_ERR_FORBIDDEN");
    const jwt = await f.call("GET", "/api/v1/clients", { auth: `Bearer ${f.jwt({ role: "service_role" })}` });
    expect(jwt.status).toBe(200);
  });

  it("GET /api/v1/clients/{id} - the client with masked credentials; unknown 404; bad token 401", async () => {
    const res = await f.call<ClientDetailView>("GET", `/api/v1/clients/${a.id}`, { auth: f.admin });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      id: a.id,
      slug: a.slug,
      credentials: { tenant_database: { configured: true, kind: "postgres" } },
    });
    expect(res.text).not.toContain(f.databaseUrl);
    const missing = await f.call("GET", `/api/v1/clients/${randomUUID()}`, { auth: f.admin });
    expect(missing.status).toBe(404);
    expect(codeOf(missing)).toBe("SF_ERR_TENANT_NOT_FOUND");
    const bad = await f.call("GET", `/api/v1/clients/${a.id}`, { auth: "Bearer not-the-token-at-all" });
    expect(bad.status).toBe(401);
  });

  it("GET /api/v1/me - 401 without credentials; the key's client for an API key; admin for the admin token", async () => {
    const none = await f.call("GET", "/api/v1/me");
    expect(none.status).toBe(401);
    expect(codeOf(none)).toBe("SF_ERR_UNAUTHENTICATED");
    const me = await f.call<{ type: string; key_id: string; client: ClientView }>("GET", "/api/v1/me", {
      headers: { "x-api-key": keyA.key },
    });
    expect(me.status).toBe(200);
    expect(me.body).toMatchObject({
      type: "api_key",
      key_id: keyA.api_key.id,
      client: { id: a.id, slug: a.slug },
    });
    expect(me.body.client).not.toHaveProperty("credentials");
    const admin = await f.call("GET", "/api/v1/me", { auth: f.admin });
    expect(admin.status).toBe(200);
    expect(admin.body).toMatchObject({ type: "admin", via: "token" });
  });

  it("api keys - unknown and revoked keys get the same 401 answer; a malformed key too", async () => {
    const doomed = await issueKey(b.id);
    expect((await f.call("GET", "/api/v1/me", { auth: `Bearer ${doomed.key}` })).status).toBe(200);
    const revoke = await f.call("DELETE", `/api/v2/clients/${b.id}/api-keys/${doomed.api_key.id}`, {
      auth: f.admin,
    });
    expect(revoke.status).toBe(200);
    const revoked = await f.call("GET", "/api/v1/me", { auth: `Bearer ${doomed.key}` });
    const unknown = await f.call("GET", "/api/v1/me", { auth: `Bearer ${generateApiKey().secret}` });
    const malformed = await f.call("GET", "/api/v1/me", { headers: { "x-api-key": "sk_short" } });
    for (const res of [revoked, unknown, malformed]) {
      expect(res.status).toBe(401);
      expect(codeOf(res)).toBe("SF_ERR_UNAUTHENTICATED");
    }
    expect(revoked.body).toEqual(unknown.body);
    expect(revoked.body).toEqual(malformed.body);
  });
});

describe("v1 legacy API - key revocation seen through events", () => {
  it("api keys - a key revoked past this gateway (by a tool on the bus) is refused here long before its cache entry expires", async () => {
    const key = await issueKey(b.id);
    expect((await f.call("GET", "/api/v1/me", { auth: `Bearer ${key.key}` })).status).toBe(200);
    const subjects = createSubjects({ partitions: PARTITIONS });
    await requestReply(
      f.nc,
      subjects.platformOp(PlatformOps.apiKeysRevoke),
      { actor: "system:test", client_id: b.id, key_id: key.api_key.id },
      { timeoutMs: 10_000 },
    );
    // The cache would keep the key for 10 s; the `.evt.client.<id>.api-keys` event evicts it at once.
    await waitFor(
      "the gateway to refuse the revoked key",
      async () =>
        (await f.call("GET", "/api/v1/me", { auth: `Bearer ${key.key}` })).status === 401 ? true : undefined,
      { timeoutMs: 4000 },
    );
  });
});

describe("v1 legacy API - agents", () => {
  it("GET /api/v1/agents - admins name client_id; a key reads its own tenant with or without it; another tenant's 403", async () => {
    const admin = await f.call<Agent[]>("GET", `/api/v1/agents?client_id=${a.id}`, { auth: f.admin });
    expect(admin.status).toBe(200);
    expect(admin.body.map((x) => x.slug)).toEqual(["alpha", "beta"]);
    const own = await f.call<Agent[]>("GET", "/api/v1/agents", { auth: `Bearer ${keyA.key}` });
    expect(own.body.map((x) => x.slug)).toEqual(["alpha", "beta"]);
    const ownNamed = await f.call<Agent[]>("GET", `/api/v1/agents?client_id=${a.id}`, {
      headers: { "x-api-key": keyA.key },
    });
    expect(ownNamed.status).toBe(200);
    const cross = await f.call("GET", `/api/v1/agents?client_id=${b.id}`, { auth: `Bearer ${keyA.key}` });
    expect(cross.status).toBe(403);
    expect(codeOf(cross)).toBe("SF_ERR_FORBIDDEN");
    expect(cross.text).not.toContain("gamma");
  });

  it("GET /api/v1/agents - 422 for a missing (admin) or malformed client_id; 404 for an unknown client; 401 without credentials", async () => {
    const missing = await f.call("GET", "/api/v1/agents", { auth: f.admin });
    expect(missing.status).toBe(422);
    expect(codeOf(missing)).toBe("SF_ERR_VALIDATION_FAILED");
    const malformed = await f.call("GET", "/api/v1/agents?client_id=42", { auth: f.admin });
    expect(malformed.status).toBe(422);
    expect(codeOf(malformed)).toBe("SF_ERR_VALIDATION_FAILED");
    const unknown = await f.call("GET", `/api/v1/agents?client_id=${randomUUID()}`, { auth: f.admin });
    expect(unknown.status).toBe(404);
    expect(codeOf(unknown)).toBe("SF_ERR_TENANT_NOT_FOUND");
    expect((await f.call("GET", `/api/v1/agents?client_id=${a.id}`)).status).toBe(401);
  });

  it("GET /api/v1/agents/{slug} - the agent; 404 unknown; 422 malformed client_id; 403 across tenants", async () => {
    const res = await f.call<Agent>("GET", `/api/v1/agents/alpha?client_id=${a.id}`, { auth: f.admin });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ slug: "alpha", name: "Alpha", system_prompt: "You help." });
    const byKey = await f.call<Agent>("GET", "/api/v1/agents/beta", { auth: `Bearer ${keyA.key}` });
    expect(byKey.body.slug).toBe("beta");
    const unknown = await f.call("GET", `/api/v1/agents/nobody?client_id=${a.id}`, { auth: f.admin });
    expect(unknown.status).toBe(404);
    expect(codeOf(unknown)).toBe("SF_ERR_AGENT_NOT_FOUND");
    expect((await f.call("GET", "/api/v1/agents/alpha?client_id=x", { auth: f.admin })).status).toBe(422);
    const cross = await f.call("GET", `/api/v1/agents/gamma?client_id=${b.id}`, {
      auth: `Bearer ${keyA.key}`,
    });
    expect(cross.status).toBe(403);
    // Without client_id the key's own tenant is used: B's agent is simply not there.
    const notMine = await f.call("GET", "/api/v1/agents/gamma", { auth: `Bearer ${keyA.key}` });
    expect(notMine.status).toBe(404);
  });

  it("POST /api/v1/agents/sync - the legacy envelope with slug and name only; 422 and 403 as the other v1 routes", async () => {
    const res = await f.call("POST", `/api/v1/agents/sync?client_id=${a.id}`, { auth: f.admin });
    expect(res.status).toBe(200);
    expect(Object.keys(res.body).sort()).toEqual(["agent_count", "agents", "message", "success"]);
    expect(typeof res.body["message"]).toBe("string");
    expect(res.body).toMatchObject({
      success: true,
      agent_count: 2,
      agents: [
        { slug: "alpha", name: "Alpha" },
        { slug: "beta", name: "Beta" },
      ],
    });
    const byKey = await f.call("POST", "/api/v1/agents/sync", { auth: `Bearer ${keyA.key}` });
    expect(byKey.body).toMatchObject({ agent_count: 2 });
    expect((await f.call("POST", "/api/v1/agents/sync?client_id=bad", { auth: f.admin })).status).toBe(422);
    expect((await f.call("POST", "/api/v1/agents/sync", { auth: f.admin })).status).toBe(422);
    expect(
      (await f.call("POST", `/api/v1/agents/sync?client_id=${b.id}`, { auth: `Bearer ${keyA.key}` })).status,
    ).toBe(403);
    expect((await f.call("POST", `/api/v1/agents/sync?client_id=${a.id}`)).status).toBe(401);
    // B was not touched by A's attempts.
    const bAgents = await f.call<Agent[]>("GET", `/api/v1/agents?client_id=${b.id}`, { auth: f.admin });
    expect(bAgents.body.map((x) => x.slug)).toEqual(["gamma"]);
  });

  it("secrets - no v1 answer and no log line holds a key, token or credential", () => {
    const secrets = f.secrets(issuedKeys);
    expect(f.bodies.length).toBeGreaterThan(25);
    for (const secret of secrets) {
      for (const body of f.bodies)
        expect(body.includes(secret), `a response holds ${secret.slice(0, 6)}…`).toBe(false);
      for (const proc of [f.gw.proc, f.host]) {
        expect(
          proc.lines.find((l) => l.includes(secret)),
          `${proc.name} logged ${secret.slice(0, 6)}…`,
        ).toBeUndefined();
      }
    }
  });
});
