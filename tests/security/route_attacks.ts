/**
 * One attack case per HTTP route of the gateway, keyed `METHOD /path` exactly as /openapi.json
 * lists it. Each uses tenant A's API key (as a bearer token and as X-API-Key) with tenant B's ids:
 * admin routes must refuse the key (403; the console: back to its login page), tenant routes must
 * answer only A's own data, and no answer may hold anything of B (attack_kit.ts checks every one).
 * The suite fails for a route that has no case here, so a new route cannot ship without one.
 */
import { expect } from "vitest";
import type { AttackContext } from "./attack_kit.ts";
import { bearer, codeOf, expectRefused, sendAs, WsClient } from "./attack_kit.ts";
import type { Res, TenantWorld } from "./attack_stack.ts";
import { fillPath, markdownForm, SHARED_SLUG } from "./attack_stack.ts";

export type RouteAttack = (ctx: AttackContext, route: { method: string; path: string }) => Promise<void>;

/** B's ids for a route's `{params}`. */
function paramsOf(t: TenantWorld): Record<string, string> {
  return {
    id: t.id,
    slug: t.ownSlug,
    documentId: t.documentId,
    keyId: t.keyId,
    provider: "openai",
    conversationId: t.conversationId,
    file: "admin.css",
  };
}

const FORBIDDEN = "SF_ERR_FORBIDDEN";

/**
 * An admin-only API route: A's key gets 403 on B's ids and on its own, in either header. `body`
 * is a valid body (so the refusal cannot come from validation).
 */
function adminOnly(body?: () => unknown): RouteAttack {
  return async (ctx, route) => {
    for (const target of [ctx.b, ctx.a]) {
      const path = fillPath(route.path, paramsOf(target));
      for (const headers of [{ authorization: bearer(ctx.a.key) }, { "x-api-key": ctx.a.key }] as Array<
        Record<string, string>
      >) {
        const res = await sendAs(ctx, route.method, path, {
          headers,
          ...(body === undefined ? {} : { body: body() }),
        });
        expectRefused(res, `${route.method} ${path}`, [403], [FORBIDDEN]);
      }
    }
  };
}

/** A console page or form: A's key opens no session, so every request goes back to the login page. */
const consolePage: RouteAttack = async (ctx, route) => {
  for (const target of [ctx.b, ctx.a]) {
    const path = fillPath(route.path, paramsOf(target));
    for (const headers of [
      { authorization: bearer(ctx.a.key) },
      { "x-api-key": ctx.a.key, "x-csrf-token": "forged" },
      { authorization: bearer(ctx.a.key), "hx-request": "true" },
    ] as Array<Record<string, string>>) {
      const res = await sendAs(ctx, route.method, path, {
        headers: {
          ...headers,
          ...(route.method === "POST" ? { "content-type": "application/x-www-form-urlencoded" } : {}),
        },
        ...(route.method === "POST" ? { body: `_csrf=forged&name=Hijacked&slug=${ctx.b.slug}` } : {}),
      });
      expect([303, 200], `${route.method} ${path} ${res.status}`).toContain(res.status);
      // 303 to the login page, or (HTMX) 200 with HX-Redirect to it: never the page itself.
      const location = res.headers.get("location") ?? res.headers.get("hx-redirect") ?? "";
      expect(location, `${route.method} ${path}`).toMatch(/^\/admin\/login/);
      expectConsoleHeaders(res, `${route.method} ${path}`);
    }
  }
};

/** The console's security headers: strict CSP, no framing, no sniffing. */
export function expectConsoleHeaders(res: Res, what: string): void {
  const csp = res.headers.get("content-security-policy") ?? "";
  expect(csp, `${what}: CSP`).toContain("default-src 'none'");
  expect(csp, `${what}: CSP`).toContain("frame-ancestors 'none'");
  expect(csp, `${what}: CSP`).not.toContain("unsafe-inline");
  expect(res.headers.get("x-content-type-options"), `${what}: nosniff`).toBe("nosniff");
  expect(res.headers.get("x-frame-options"), `${what}: framing`).toBe("DENY");
}

/** An open route (no credentials needed): A's key changes nothing and nothing of B shows. */
const openRoute: RouteAttack = async (ctx, route) => {
  const res = await sendAs(ctx, route.method, route.path, { headers: { authorization: bearer(ctx.a.key) } });
  expect(res.status, `${route.method} ${route.path}`).toBe(200);
};

/**
 * What A sends with B's finished job id as its Idempotency-Key (the sessions test sends it first):
 * every repeat must answer A's own recorded reply.
 */
export const REPLAY_MESSAGE = "A replays B's job";

/** The three trigger front doors, with every id of B A could name. */
function triggerAttack(kind: "v1" | "v2" | "stream"): RouteAttack {
  return async (ctx, route) => {
    const { a, b } = ctx;
    const key = { "x-api-key": a.key };
    const text = (extra: Record<string, unknown>) => ({
      agent_slug: SHARED_SLUG,
      user_id: a.userId,
      ...(kind === "v2" ? {} : { mode: "text" }),
      message: `A asks about opening hours (${kind})`,
      ...extra,
    });
    const replyOf = (res: Res): string =>
      kind === "v1"
        ? String((res.body["data"] as Record<string, unknown> | undefined)?.["response"])
        : kind === "v2"
          ? String(res.body["response"])
          : res.text;
    // B's client id with A's key: 403, before anything runs.
    const foreign = await sendAs(ctx, "POST", route.path, { headers: key, body: text({ client_id: b.id }) });
    expectRefused(foreign, `${route.path} client_id of B`, [403], [FORBIDDEN]);
    // B's own agent (A has no agent of that slug): not found.
    const agent = await sendAs(ctx, "POST", route.path, {
      headers: key,
      body: text({ agent_slug: b.ownSlug }),
    });
    if (kind === "stream") {
      // The stream answers its error as an event (status 200) once it has opened.
      expect(agent.text, `${route.path} B's agent`).toContain('"no_fallback":true');
    } else {
      expectRefused(agent, `${route.path} B's agent`, [404], ["SF_ERR_AGENT_NOT_FOUND"]);
    }
    // B's conversation, session and user: A's own turn, nothing of B.
    const named = await sendAs(ctx, "POST", route.path, {
      headers: key,
      body: text({ conversation_id: b.conversationId, session_id: b.sessionId, user_id: b.userId }),
    });
    expect(named.status, `${route.path} B's ids: ${named.text.slice(0, 300)}`).toBe(200);
    expect(replyOf(named)).toContain("A asks about opening hours");
    // B's job id as the Idempotency-Key: A's own job (answered with A's recorded reply), never B's.
    const replay = await sendAs(ctx, "POST", route.path, {
      headers: { ...key, "idempotency-key": b.jobId },
      body: text({ message: REPLAY_MESSAGE, session_id: b.sessionId }),
    });
    expect(replay.status, `${route.path} B's job id: ${replay.text.slice(0, 300)}`).toBe(200);
    expect(replyOf(replay)).toContain(REPLAY_MESSAGE);
    if (kind === "v2") expect(replay.body["job_id"], "A's job is not B's job").not.toBe(b.jobId);
    if (kind !== "stream") {
      // Voice in the room B's session holds: refused, no token for it.
      const voice = await sendAs(ctx, "POST", route.path, {
        headers: key,
        body: { agent_slug: SHARED_SLUG, user_id: a.userId, mode: "voice", room_name: b.roomName },
      });
      expectRefused(voice, `${route.path} B's room`, [409], ["SF_ERR_ROOM_CONFLICT"]);
    }
  };
}

/** A document route of the API key's own tenant, aimed at B's documents. */
const ownDocumentById: RouteAttack = async (ctx, route) => {
  const body = route.method === "PUT" ? { agent_slugs: [SHARED_SLUG] } : undefined;
  for (const id of [ctx.b.documentId, ctx.b.injectionDocumentId]) {
    const path = fillPath(route.path, { documentId: id });
    const res = await sendAs(ctx, route.method, path, {
      headers: { "x-api-key": ctx.a.key },
      ...(body === undefined ? {} : { body }),
    });
    expectRefused(res, `${route.method} ${path}`, [404], ["SF_ERR_DOCUMENT_NOT_FOUND", "SF_ERR_NOT_FOUND"]);
  }
};

export const ROUTE_ATTACKS: Readonly<Record<string, RouteAttack>> = {
  // ---- service routes: open, nothing of any tenant in them ----
  "GET /": openRoute,
  "GET /health": openRoute,
  "GET /health/detailed": openRoute,
  "GET /metrics": openRoute,
  "GET /openapi.json": openRoute,
  "GET /ws": async (ctx) => {
    const { a, b } = ctx;
    // A plain GET is not an upgrade.
    const plain = await sendAs(ctx, "GET", "/ws", { headers: { authorization: bearer(a.key) } });
    expectRefused(plain, "GET /ws", [426], ["SF_ERR_UPGRADE_REQUIRED"]);
    const opened = await WsClient.open(ctx.stack.base, { token: a.key });
    if (!opened.opened) throw new Error(`A's socket was refused: ${opened.code}`);
    const ws = opened.client;
    try {
      ctx.counters.attacks += 2;
      ws.send({ type: "message", request_id: "b-agent", agent_slug: b.ownSlug, text: "hello" });
      const refused = await ws.final("b-agent");
      expect([refused.type, refused.code]).toEqual(["error", "SF_ERR_AGENT_NOT_FOUND"]);
      ws.send({
        type: "message",
        request_id: "b-conversation",
        agent_slug: SHARED_SLUG,
        text: "A asks over the socket",
        conversation_id: b.conversationId,
        user_id: b.userId,
      });
      const final = await ws.final("b-conversation");
      expect(final.type, JSON.stringify(final)).toBe("message");
      expect(final.text).toContain("A asks over the socket");
      expect(final.job_id).not.toBe(b.jobId);
      ctx.counters.checked += 1;
      const all = JSON.stringify(ws.frames);
      for (const s of [...Object.values(b.markers), b.otherConversationId, b.documentId]) {
        expect(all.includes(s), `socket frames hold ${s}`).toBe(false);
      }
    } finally {
      ws.close();
    }
  },

  // ---- v1 ----
  "GET /api/v1/clients": adminOnly(),
  "GET /api/v1/clients/{id}": adminOnly(),
  "GET /api/v1/agents": async (ctx) => {
    const foreign = await sendAs(ctx, "GET", `/api/v1/agents?client_id=${ctx.b.id}`, {
      headers: { "x-api-key": ctx.a.key },
    });
    expectRefused(foreign, "v1 agents of B", [403], [FORBIDDEN]);
    const own = await sendAs(ctx, "GET", "/api/v1/agents", { headers: { "x-api-key": ctx.a.key } });
    expect(own.status).toBe(200);
    const slugs = (own.body["value"] as Array<{ slug: string }>).map((x) => x.slug).sort();
    expect(slugs).toEqual([ctx.a.ownSlug, SHARED_SLUG].sort());
  },
  "GET /api/v1/agents/{slug}": async (ctx) => {
    const { a, b } = ctx;
    const bOwn = await sendAs(ctx, "GET", `/api/v1/agents/${b.ownSlug}`, { headers: { "x-api-key": a.key } });
    expectRefused(bOwn, "v1 B's agent", [404], ["SF_ERR_AGENT_NOT_FOUND"]);
    const foreign = await sendAs(ctx, "GET", `/api/v1/agents/${SHARED_SLUG}?client_id=${b.id}`, {
      headers: { authorization: bearer(a.key) },
    });
    expectRefused(foreign, "v1 shared slug of B", [403], [FORBIDDEN]);
    const own = await sendAs(ctx, "GET", `/api/v1/agents/${SHARED_SLUG}`, {
      headers: { "x-api-key": a.key },
    });
    expect([own.status, own.body["name"]]).toEqual([200, a.markers.agentName]);
  },
  "POST /api/v1/agents/sync": async (ctx) => {
    const foreign = await sendAs(ctx, "POST", `/api/v1/agents/sync?client_id=${ctx.b.id}`, {
      headers: { "x-api-key": ctx.a.key },
    });
    expectRefused(foreign, "v1 sync of B", [403], [FORBIDDEN]);
    const own = await sendAs(ctx, "POST", "/api/v1/agents/sync", { headers: { "x-api-key": ctx.a.key } });
    expect([own.status, own.body["agent_count"]]).toEqual([200, 2]);
  },
  "GET /api/v1/me": async (ctx) => {
    const me = await sendAs(ctx, "GET", `/api/v1/me?client_id=${ctx.b.id}`, {
      headers: { "x-api-key": ctx.a.key },
    });
    expect([me.status, me.body["client_id"], me.body["type"]]).toEqual([200, ctx.a.id, "api_key"]);
  },
  "POST /api/v1/trigger-agent": triggerAttack("v1"),
  "POST /api/v2/trigger-agent": triggerAttack("v2"),
  "POST /api/embed/text/stream": triggerAttack("stream"),

  // ---- v2 administration: admin only ----
  "GET /api/v2/clients": adminOnly(),
  "POST /api/v2/clients": async (ctx, route) => {
    // B's id and slug in a create body: refused for the key (and could never replace B).
    const res = await sendAs(ctx, "POST", route.path, {
      headers: { "x-api-key": ctx.a.key },
      body: { id: ctx.b.id, slug: ctx.b.slug, name: "Hijacked" },
    });
    expectRefused(res, "POST /api/v2/clients", [403], [FORBIDDEN]);
  },
  "GET /api/v2/clients/{id}": adminOnly(),
  "PATCH /api/v2/clients/{id}": adminOnly(() => ({ name: "Hijacked", settings: { cors_origins: ["*"] } })),
  "DELETE /api/v2/clients/{id}": adminOnly(),
  "POST /api/v2/clients/{id}/api-keys": adminOnly(() => ({ label: "intruder", scopes: ["*"] })),
  "DELETE /api/v2/clients/{id}/api-keys/{keyId}": adminOnly(),
  "GET /api/v2/clients/{id}/agents": adminOnly(),
  "POST /api/v2/clients/{id}/agents": adminOnly(() => ({ slug: "intruder", name: "Intruder" })),
  "GET /api/v2/clients/{id}/agents/{slug}": adminOnly(),
  "PATCH /api/v2/clients/{id}/agents/{slug}": adminOnly(() => ({ system_prompt: "Reveal everything." })),
  "DELETE /api/v2/clients/{id}/agents/{slug}": adminOnly(),
  "GET /api/v2/clients/{id}/conversations": adminOnly(),
  "GET /api/v2/clients/{id}/conversations/{conversationId}": adminOnly(),
  "GET /api/v2/clients/{id}/provider-keys": adminOnly(),
  "PUT /api/v2/clients/{id}/provider-keys/{provider}": adminOnly(() => ({
    api_key: "hijacked-key-0123456789",
  })),
  "DELETE /api/v2/clients/{id}/provider-keys/{provider}": adminOnly(),
  "POST /api/v2/clients/{id}/documents": adminOnly(() =>
    markdownForm("intruder.md", "# Intruder\nplanted text"),
  ),
  "GET /api/v2/clients/{id}/documents": adminOnly(),
  "GET /api/v2/clients/{id}/documents/{documentId}": adminOnly(),
  "DELETE /api/v2/clients/{id}/documents/{documentId}": adminOnly(),
  "PUT /api/v2/clients/{id}/documents/{documentId}/agents": adminOnly(() => ({ agent_slugs: [SHARED_SLUG] })),
  "GET /api/v2/clients/{id}/embeddings": adminOnly(),
  "POST /api/v2/clients/{id}/embeddings/reembed": adminOnly(),

  // ---- v2 documents of the key's own tenant ----
  "POST /api/v2/documents": async (ctx, route) => {
    // Assigning the upload to B's agent: A has no such agent, so nothing is stored.
    const res = await sendAs(ctx, "POST", route.path, {
      headers: { "x-api-key": ctx.a.key },
      body: markdownForm("b-agent.md", "# For B's agent\nplanted text", { agent_slugs: ctx.b.ownSlug }),
    });
    expectRefused(
      res,
      "upload for B's agent",
      [400, 404],
      ["SF_ERR_AGENT_NOT_FOUND", "SF_ERR_INVALID_ARGUMENT"],
    );
  },
  "GET /api/v2/documents": async (ctx, route) => {
    const own = await sendAs(ctx, "GET", route.path, { headers: { "x-api-key": ctx.a.key } });
    expect(own.status).toBe(200);
    const ids = (own.body["documents"] as Array<{ id: string }>).map((d) => d.id).sort();
    expect(ids).toEqual([ctx.a.documentId, ctx.a.injectionDocumentId].sort());
    const byAgent = await sendAs(ctx, "GET", `${route.path}?agent_slug=${ctx.b.ownSlug}`, {
      headers: { "x-api-key": ctx.a.key },
    });
    if (byAgent.status === 200) expect(byAgent.body["documents"]).toEqual([]);
    else expectRefused(byAgent, "documents of B's agent", [404], ["SF_ERR_AGENT_NOT_FOUND"]);
  },
  "GET /api/v2/documents/{documentId}": ownDocumentById,
  "DELETE /api/v2/documents/{documentId}": ownDocumentById,
  "PUT /api/v2/documents/{documentId}/agents": async (ctx, route) => {
    await ownDocumentById(ctx, route);
    // A's own document assigned to B's agent: A has no such agent.
    const res = await sendAs(ctx, "PUT", fillPath(route.path, { documentId: ctx.a.documentId }), {
      headers: { "x-api-key": ctx.a.key },
      body: { agent_slugs: [ctx.b.ownSlug] },
    });
    expectRefused(
      res,
      "A's document to B's agent",
      [400, 404],
      ["SF_ERR_AGENT_NOT_FOUND", "SF_ERR_INVALID_ARGUMENT"],
    );
  },

  // ---- the operator console: sessions only, never an API key ----
  "GET /admin": consolePage,
  "GET /admin/dashboard/live": consolePage,
  "GET /admin/login": async (ctx, route) => {
    const res = await sendAs(ctx, "GET", route.path, { headers: { authorization: bearer(ctx.a.key) } });
    expect(res.status).toBe(200);
    expectConsoleHeaders(res, "GET /admin/login");
  },
  "POST /admin/login": async (ctx, route) => {
    // A's key typed into the login form: not an admin's credential.
    for (const token of [ctx.a.key, ctx.b.key]) {
      const res = await sendAs(ctx, "POST", route.path, {
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: `token=${encodeURIComponent(token)}&next=%2Fadmin%2Fclients%2F${ctx.b.id}`,
      });
      expect(res.status).toBe(401);
      expect(res.headers.get("set-cookie")).toBeNull();
      expectConsoleHeaders(res, "POST /admin/login");
    }
  },
  "POST /admin/logout": consolePage,
  "GET /admin/static/{file}": async (ctx, route) => {
    const ok = await sendAs(ctx, "GET", fillPath(route.path, { file: "admin.css" }), {
      headers: { "x-api-key": ctx.a.key },
    });
    expect(ok.status).toBe(200);
    expectConsoleHeaders(ok, "GET /admin/static/admin.css");
    for (const file of [`${ctx.b.id}.json`, "..%2F..%2Fpackage.json", "admin.css.map"]) {
      const res = await sendAs(ctx, "GET", `/admin/static/${file}`, { headers: { "x-api-key": ctx.a.key } });
      expect(res.status, file).toBe(404);
      expect(codeOf(res) ?? "SF_ERR_NOT_FOUND").toMatch(/^SF_ERR_/);
    }
  },
  "GET /admin/clients": consolePage,
  "GET /admin/clients/new": consolePage,
  "POST /admin/clients": consolePage,
  "GET /admin/clients/{id}": consolePage,
  "GET /admin/clients/{id}/edit": consolePage,
  "POST /admin/clients/{id}": consolePage,
  "POST /admin/clients/{id}/delete": consolePage,
  "GET /admin/clients/{id}/agents": consolePage,
  "GET /admin/clients/{id}/agents/new": consolePage,
  "POST /admin/clients/{id}/agents": consolePage,
  "GET /admin/clients/{id}/agents/{slug}/edit": consolePage,
  "POST /admin/clients/{id}/agents/{slug}": consolePage,
  "POST /admin/clients/{id}/agents/{slug}/delete": consolePage,
  "GET /admin/clients/{id}/agents/{slug}/preview": consolePage,
  "POST /admin/clients/{id}/agents/{slug}/preview/text": consolePage,
  "POST /admin/clients/{id}/agents/{slug}/preview/voice": consolePage,
  "GET /admin/clients/{id}/conversations": consolePage,
  "GET /admin/clients/{id}/conversations/{conversationId}": consolePage,
  "GET /admin/clients/{id}/documents": consolePage,
  "POST /admin/clients/{id}/documents": consolePage,
  "GET /admin/clients/{id}/documents/{documentId}": consolePage,
  "GET /admin/clients/{id}/documents/{documentId}/row": consolePage,
  "GET /admin/clients/{id}/documents/{documentId}/status": consolePage,
  "POST /admin/clients/{id}/documents/{documentId}/agents": consolePage,
  "POST /admin/clients/{id}/documents/{documentId}/delete": consolePage,
  "GET /admin/clients/{id}/provider-keys": consolePage,
  "POST /admin/clients/{id}/provider-keys": consolePage,
  "POST /admin/clients/{id}/provider-keys/{provider}/delete": consolePage,
  "GET /admin/clients/{id}/api-keys": consolePage,
  "POST /admin/clients/{id}/api-keys": consolePage,
  "GET /admin/clients/{id}/api-keys/{keyId}/revoke": consolePage,
  "POST /admin/clients/{id}/api-keys/{keyId}/revoke": consolePage,
};
