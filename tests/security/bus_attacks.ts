/**
 * One attack case per bus operation: every tenant actor op (`TenantOps`), platform op
 * (`PlatformOps`) and worker op (`WorkerOps`), keyed by its name. The bus carries no credentials
 * (whoever reaches NATS is inside the platform), so "tenant A's credentials" here is the subject:
 * an op sent to tenant A's owner naming B's ids in its body must answer from A's database only
 * (B's ids are not found there), and platform ops that take a client id and another id must not
 * mix tenants (A's client with B's key id). Replies are checked for B's data and for secrets the
 * way HTTP answers are. The suite fails for an op without a case.
 */
import { randomUUID } from "node:crypto";
import { expect } from "vitest";
import { PlatformOps, TenantOps, WorkerOps } from "../../actors/index.ts";
import { BusErrorCodes, requestReply, SfError } from "../../bus/index.ts";
import type { AttackContext } from "./attack_kit.ts";
import { expectNoLeak } from "./attack_kit.ts";
import { SHARED_SLUG } from "./attack_stack.ts";
import { REPLAY_MESSAGE } from "./route_attacks.ts";

export type BusOutcome = { ok: true; body: unknown } | { ok: false; code: string; message: string };

export type BusAttack = (ctx: AttackContext) => Promise<void>;

const ACTOR = "system:cross-tenant-suite";

async function outcomeOf(call: () => Promise<{ body: unknown }>): Promise<BusOutcome> {
  try {
    return { ok: true, body: (await call()).body };
  } catch (err) {
    if (err instanceof SfError) return { ok: false, code: err.code, message: err.message };
    throw err;
  }
}

/** An op to tenant A's owner, with its reply checked for B's data. */
export async function tenantOp(ctx: AttackContext, op: string, body: unknown): Promise<BusOutcome> {
  ctx.counters.attacks += 1;
  const out = await outcomeOf(() =>
    requestReply(ctx.stack.nc, ctx.stack.subjects.tenantOp(ctx.a.id, op), body, {
      tenant: ctx.a.id,
      timeoutMs: 15_000,
      attemptTimeoutMs: 15_000,
      retryCodes: [BusErrorCodes.NOT_OWNER, BusErrorCodes.OVERLOADED, BusErrorCodes.NO_RESPONDERS],
    }),
  );
  expectNoLeak(ctx, `tenant op ${op}`, JSON.stringify(out), JSON.stringify(body));
  if (!out.ok) expect(out.code, `${op}: ${out.message}`).not.toBe(BusErrorCodes.INTERNAL);
  return out;
}

export async function platformOp(ctx: AttackContext, op: string, body: unknown): Promise<BusOutcome> {
  ctx.counters.attacks += 1;
  const out = await outcomeOf(() =>
    requestReply(ctx.stack.nc, ctx.stack.subjects.platformOp(op), body, { timeoutMs: 10_000 }),
  );
  expectNoLeak(ctx, `platform op ${op}`, JSON.stringify(out), JSON.stringify(body));
  if (!out.ok) expect(out.code, `${op}: ${out.message}`).not.toBe(BusErrorCodes.INTERNAL);
  return out;
}

/** A refusal whose code ends in one of `suffixes` (`NOT_FOUND`, `INVALID_ARGUMENT`, …). */
function expectCode(out: BusOutcome, what: string, ...suffixes: string[]): void {
  expect(out.ok, `${what}: ${JSON.stringify(out).slice(0, 300)}`).toBe(false);
  if (out.ok) return;
  expect(
    suffixes.some((s) => out.code.endsWith(s)),
    `${what}: ${out.code} ${out.message}`,
  ).toBe(true);
}

function expectOk(out: BusOutcome, what: string): unknown {
  expect(out.ok, `${what}: ${JSON.stringify(out).slice(0, 300)}`).toBe(true);
  return out.ok ? out.body : undefined;
}

/** A 1024-dimensional vector (the tenants' embedding dimension). */
function vector(seed: number): number[] {
  return Array.from({ length: 1024 }, (_, i) => Math.sin(seed + i));
}

export const TENANT_OP_ATTACKS: Readonly<Record<string, BusAttack>> = {
  incr: async (ctx) => {
    const out = expectOk(await tenantOp(ctx, "incr", { by: 1, tenant: ctx.b.id }), "incr") as {
      tenant: string;
    };
    expect(out.tenant).toBe(ctx.a.id);
  },
  get: async (ctx) => {
    const out = expectOk(await tenantOp(ctx, "get", { tenant: ctx.b.id }), "get") as { tenant: string };
    expect(out.tenant).toBe(ctx.a.id);
  },
  echo: async (ctx) => {
    expectOk(await tenantOp(ctx, "echo", { hello: "world" }), "echo");
  },
  "agents-list": async (ctx) => {
    const agents = expectOk(
      await tenantOp(ctx, "agents-list", { client_id: ctx.b.id }),
      "agents-list",
    ) as Array<{
      slug: string;
    }>;
    expect(agents.map((x) => x.slug).sort()).toEqual([ctx.a.ownSlug, SHARED_SLUG].sort());
  },
  "agent-get": async (ctx) => {
    expectCode(await tenantOp(ctx, "agent-get", { slug: ctx.b.ownSlug }), "agent-get B's agent", "NOT_FOUND");
  },
  "agents-create": async (ctx) => {
    // Fields naming another tenant are refused, not obeyed.
    expectCode(
      await tenantOp(ctx, "agents-create", {
        actor: ACTOR,
        agent: { slug: "xt-probe", name: "Probe" },
        client_id: ctx.b.id,
      }),
      "agents-create with client_id",
      "INVALID_ARGUMENT",
    );
  },
  "agents-update": async (ctx) => {
    expectCode(
      await tenantOp(ctx, "agents-update", {
        actor: ACTOR,
        slug: ctx.b.ownSlug,
        patch: { name: "Hijacked" },
      }),
      "agents-update B's agent",
      "NOT_FOUND",
    );
  },
  "agents-delete": async (ctx) => {
    expectCode(
      await tenantOp(ctx, "agents-delete", { actor: ACTOR, slug: ctx.b.ownSlug }),
      "agents-delete B's agent",
      "NOT_FOUND",
    );
  },
  "conversations-list": async (ctx) => {
    const out = await tenantOp(ctx, "conversations-list", { agent_slug: SHARED_SLUG, limit: 1000 });
    const ids = (expectOk(out, "conversations-list") as Array<{ id: string }>).map((c) => c.id);
    expect(ids).not.toContain(ctx.b.otherConversationId);
    expect(ids).toContain(ctx.a.conversationId);
  },
  "conversation-get": async (ctx) => {
    expectCode(
      await tenantOp(ctx, "conversation-get", { id: ctx.b.otherConversationId }),
      "conversation-get B's",
      "NOT_FOUND",
    );
    // The id of B's other conversation, which A named in its own triggers: A's own conversation of
    // that id (a caller's conversation id is kept), with A's turns only.
    const named = await tenantOp(ctx, "conversation-get", { id: ctx.b.conversationId });
    if (named.ok) {
      const detail = named.body as {
        conversation: { agentId: string };
        transcripts: Array<{ content: string }>;
      };
      expect(detail.transcripts.every((t) => !t.content.includes(ctx.b.markers.chat))).toBe(true);
    } else {
      expectCode(named, "conversation-get", "NOT_FOUND");
    }
  },
  trigger: async (ctx) => {
    // B's job id, session and conversation: A's own job. The sessions test already ran A's job
    // of that id, so this repeat answers A's recorded reply, never B's.
    const out = await tenantOp(ctx, "trigger", {
      agent_slug: SHARED_SLUG,
      mode: "text",
      user_id: ctx.a.userId,
      message: REPLAY_MESSAGE,
      job_id: ctx.b.jobId,
      idempotent: true,
      session_id: ctx.b.sessionId,
    });
    const reply = expectOk(out, "trigger") as { job_id: string; result?: { text: string } };
    expect(reply.job_id).not.toBe(ctx.b.jobId);
    expect(reply.result?.text).toContain(REPLAY_MESSAGE);
  },
  "job-context": async (ctx) => {
    expectCode(
      await tenantOp(ctx, "job-context", { agent_slug: ctx.b.ownSlug }),
      "job-context B's agent",
      "NOT_FOUND",
    );
    // A's own agent: A's prompt and keys only (the reply is for workers: it holds A's keys).
    const own = await outcomeOf(() =>
      requestReply(
        ctx.stack.nc,
        ctx.stack.subjects.tenantOp(ctx.a.id, "job-context"),
        { agent_slug: SHARED_SLUG },
        {
          tenant: ctx.a.id,
          timeoutMs: 10_000,
        },
      ),
    );
    ctx.counters.attacks += 1;
    ctx.counters.checked += 1;
    const text = JSON.stringify(own);
    for (const marker of Object.values(ctx.b.markers)) expect(text.includes(marker), marker).toBe(false);
    expect(text).toContain(ctx.a.markers.systemPrompt);
  },
  "turn-record": async (ctx) => {
    // A turn for B's conversation and job: written (if at all) to A's database, never B's.
    const out = await tenantOp(ctx, "turn-record", {
      job_id: randomUUID(),
      conversation_id: ctx.b.conversationId,
      user_message: "planted question",
      assistant_message: "planted answer",
      agent_slug: ctx.b.ownSlug,
      user_id: ctx.b.userId,
    });
    expectCode(out, "turn-record for B's agent", "NOT_FOUND");
  },
  "documents-create": async (ctx) => {
    expectCode(
      await tenantOp(ctx, "documents-create", {
        actor: ACTOR,
        file_name: "planted.md",
        file_type: "markdown",
        data: new TextEncoder().encode("# Planted\ntext"),
        agent_slugs: [ctx.b.ownSlug],
      }),
      "documents-create for B's agent",
      "NOT_FOUND",
      "INVALID_ARGUMENT",
    );
  },
  "documents-list": async (ctx) => {
    const out = await tenantOp(ctx, "documents-list", { limit: 500 });
    const ids = (expectOk(out, "documents-list") as { documents: Array<{ id: string }> }).documents.map(
      (d) => d.id,
    );
    expect(ids.sort()).toEqual([ctx.a.documentId, ctx.a.injectionDocumentId].sort());
  },
  "document-get": async (ctx) => {
    expectCode(
      await tenantOp(ctx, "document-get", { document_id: ctx.b.documentId }),
      "document-get",
      "NOT_FOUND",
    );
  },
  "document-delete": async (ctx) => {
    expectCode(
      await tenantOp(ctx, "document-delete", { actor: ACTOR, document_id: ctx.b.documentId }),
      "document-delete",
      "NOT_FOUND",
    );
  },
  "document-agents": async (ctx) => {
    expectCode(
      await tenantOp(ctx, "document-agents", {
        actor: ACTOR,
        document_id: ctx.b.documentId,
        agent_slugs: [SHARED_SLUG],
      }),
      "document-agents",
      "NOT_FOUND",
    );
  },
  "embeddings-reembed": async (ctx) => {
    expectCode(
      await tenantOp(ctx, "embeddings-reembed", { actor: ACTOR, client_id: ctx.b.id }),
      "embeddings-reembed naming B",
      "INVALID_ARGUMENT",
    );
  },
  "embeddings-status": async (ctx) => {
    expectOk(await tenantOp(ctx, "embeddings-status", {}), "embeddings-status");
  },
  "ingest-context": async (ctx) => {
    expectCode(
      await tenantOp(ctx, "ingest-context", {
        document_id: ctx.b.documentId,
        generation: 1,
        with_content: true,
      }),
      "ingest-context of B's document",
      "NOT_FOUND",
    );
  },
  "document-progress": async (ctx) => {
    expectCode(
      await tenantOp(ctx, "document-progress", {
        document_id: ctx.b.documentId,
        generation: 1,
        status: "failed: planted",
      }),
      "document-progress of B's document",
      "NOT_FOUND",
    );
  },
  "document-chunks": async (ctx) => {
    const out = await tenantOp(ctx, "document-chunks", {
      document_id: ctx.b.documentId,
      generation: 1,
      fingerprint: {},
      chunks: [{ chunk_index: 0, content: "planted", embedding: vector(1) }],
    });
    expectCode(out, "document-chunks of B's document", "NOT_FOUND", "INVALID_ARGUMENT");
  },
  "transcripts-page": async (ctx) => {
    const out = expectOk(await tenantOp(ctx, "transcripts-page", { limit: 500 }), "transcripts-page") as {
      rows: Array<{ content: string }>;
    };
    expect(out.rows.length).toBeGreaterThan(0);
  },
  "transcript-embeddings": async (ctx) => {
    const out = await tenantOp(ctx, "transcript-embeddings", {
      fingerprint: {},
      items: [{ turn_id: ctx.b.jobId, embedding: vector(2) }],
    });
    if (out.ok) expect((out.body as { written: number }).written).toBe(0);
    else
      expectCode(
        out,
        "transcript-embeddings of B's turn",
        "INVALID_ARGUMENT",
        "EMBEDDINGS_STALE",
        "STALE_JOB",
      );
  },
  "rag-search": async (ctx) => {
    // B's user id, with whatever fingerprint A's index has: only A's chunks and transcripts can come back.
    const status = expectOk(await tenantOp(ctx, "embeddings-status", {}), "embeddings-status") as {
      fingerprint?: unknown;
      current?: unknown;
    };
    const out = await tenantOp(ctx, "rag-search", {
      agent_slug: SHARED_SLUG,
      user_id: ctx.b.userId,
      embedding: vector(3),
      ...(status.fingerprint === undefined ? {} : { fingerprint: status.fingerprint }),
    });
    if (out.ok) {
      const reply = out.body as { transcripts: unknown[] };
      expect(reply.transcripts, "B's user has no turns in A's database").toEqual([]);
    } else {
      expectCode(out, "rag-search", "INVALID_ARGUMENT", "EMBEDDINGS_STALE", "STALE_JOB");
    }
  },
  "provider-keys-list": async (ctx) => {
    const out = expectOk(
      await tenantOp(ctx, "provider-keys-list", { client_id: ctx.b.id }),
      "provider-keys-list",
    );
    expect(JSON.stringify(out)).not.toContain(ctx.b.markers.providerKey);
  },
  "provider-keys-set": async (ctx) => {
    expectCode(
      await tenantOp(ctx, "provider-keys-set", {
        actor: ACTOR,
        provider: "openai",
        api_key: "planted-key-0123456789",
        client_id: ctx.b.id,
      }),
      "provider-keys-set naming B",
      "INVALID_ARGUMENT",
    );
  },
  "provider-keys-delete": async (ctx) => {
    expectCode(
      await tenantOp(ctx, "provider-keys-delete", { actor: ACTOR, provider: "openai", client_id: ctx.b.id }),
      "provider-keys-delete naming B",
      "INVALID_ARGUMENT",
    );
  },
};

export const PLATFORM_OP_ATTACKS: Readonly<Record<string, BusAttack>> = {
  health: async (ctx) => {
    expectOk(await platformOp(ctx, PlatformOps.health, {}), "health");
  },
  "clients-create": async (ctx) => {
    // B's id or B's slug: a conflict, never a replacement of B.
    for (const body of [
      { actor: ACTOR, id: ctx.b.id, slug: `xt-new-${randomUUID().slice(0, 8)}`, name: "Clone" },
      { actor: ACTOR, slug: ctx.b.slug, name: "Clone" },
    ]) {
      expectCode(
        await platformOp(ctx, PlatformOps.clientsCreate, body),
        "clients-create over B",
        "ALREADY_EXISTS",
      );
    }
  },
  "clients-list": async (ctx) => {
    const out = expectOk(
      await platformOp(ctx, PlatformOps.clientsList, { search: ctx.a.slug }),
      "clients-list",
    ) as {
      clients: Array<{ id: string }>;
    };
    expect(out.clients.map((c) => c.id)).toEqual([ctx.a.id]);
  },
  "clients-count": async (ctx) => {
    expectOk(await platformOp(ctx, PlatformOps.clientsCount, {}), "clients-count");
  },
  "clients-get": async (ctx) => {
    // An admin's op: B's credentials come back masked (the LiveKit secret never does).
    expectOk(await platformOp(ctx, PlatformOps.clientsGet, { id: ctx.a.id }), "clients-get");
  },
  "clients-update": async (ctx) => {
    expectCode(
      await platformOp(ctx, PlatformOps.clientsUpdate, { actor: ACTOR, id: ctx.a.id, slug: ctx.b.slug }),
      "clients-update to B's slug",
      "ALREADY_EXISTS",
    );
  },
  "clients-delete": async (ctx) => {
    expectCode(
      await platformOp(ctx, PlatformOps.clientsDelete, { actor: ACTOR, id: randomUUID() }),
      "clients-delete of no client",
      "NOT_FOUND",
    );
  },
  "clients-set-credentials": async (ctx) => {
    expectCode(
      await platformOp(ctx, PlatformOps.clientsSetCredentials, {
        actor: ACTOR,
        id: randomUUID(),
        livekit: null,
      }),
      "clients-set-credentials of no client",
      "NOT_FOUND",
    );
  },
  "api-keys-create": async (ctx) => {
    expectCode(
      await platformOp(ctx, PlatformOps.apiKeysCreate, { actor: ACTOR, client_id: randomUUID() }),
      "api-keys-create for no client",
      "NOT_FOUND",
    );
  },
  "api-keys-list": async (ctx) => {
    const out = expectOk(
      await platformOp(ctx, PlatformOps.apiKeysList, { client_id: ctx.a.id }),
      "api-keys-list",
    ) as {
      api_keys: Array<{ id: string }>;
    };
    expect(out.api_keys.map((k) => k.id).sort()).toEqual([ctx.a.keyId, ctx.a.revokedKeyId].sort());
  },
  "api-keys-revoke": async (ctx) => {
    // A's client with B's key id: not A's key, so not found; B's key keeps working.
    expectCode(
      await platformOp(ctx, PlatformOps.apiKeysRevoke, {
        actor: ACTOR,
        client_id: ctx.a.id,
        key_id: ctx.b.keyId,
      }),
      "api-keys-revoke of B's key through A",
      "NOT_FOUND",
    );
    // (B's own check: its answer is B's, so it is not held to A's leak rule.)
    const verified = await requestReply<{ client_id?: string; clientId?: string }>(
      ctx.stack.nc,
      ctx.stack.subjects.platformOp(PlatformOps.apiKeysVerify),
      { key: ctx.b.key },
      { timeoutMs: 10_000 },
    );
    expect(verified.body.client_id ?? verified.body.clientId).toBe(ctx.b.id);
  },
  "api-keys-verify": async (ctx) => {
    const verified = expectOk(
      await platformOp(ctx, PlatformOps.apiKeysVerify, { key: ctx.a.key }),
      "verify A",
    ) as {
      client_id?: string;
      clientId?: string;
    };
    expect(verified.client_id ?? verified.clientId).toBe(ctx.a.id);
    expectCode(
      await platformOp(ctx, PlatformOps.apiKeysVerify, { key: ctx.a.revokedKey }),
      "A's revoked key",
      "UNAUTHENTICATED",
    );
  },
  "cors-origin-listed": async (ctx) => {
    const out = expectOk(
      await platformOp(ctx, PlatformOps.corsOriginListed, { origin: "https://nobody.example" }),
      "cors-origin-listed",
    ) as { listed: boolean };
    expect(out.listed).toBe(false);
  },
};

export const WORKER_OP_ATTACKS: Readonly<Record<string, BusAttack>> = {
  "provider-check": async (ctx) => {
    ctx.counters.attacks += 1;
    // B's providers checked on request: statuses only, never B's keys.
    const out = await outcomeOf(() =>
      requestReply(
        ctx.stack.nc,
        ctx.stack.subjects.workerOp(WorkerOps.providerCheck),
        { tenant: ctx.b.id },
        {
          timeoutMs: 20_000,
          attemptTimeoutMs: 20_000,
        },
      ),
    );
    ctx.counters.checked += 1;
    const text = JSON.stringify(out);
    for (const secret of [
      ctx.b.markers.providerKey,
      ctx.stack.fixture.keys.groq,
      ctx.stack.fixture.keys.siliconflow,
    ]) {
      expect(text.includes(secret), "a provider key in the check's reply").toBe(false);
    }
  },
};

/** Every op name the platform defines, by table. */
export const BUS_OPS = {
  tenant: [...new Set(Object.values(TenantOps))],
  platform: Object.values(PlatformOps),
  worker: Object.values(WorkerOps),
};
