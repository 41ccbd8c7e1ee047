// Contract tests of the Supabase adapter against a local PostgREST stand-in
// (tests/fixtures/postgrest) that checks every request's wire format and answers as PostgREST.
import { afterEach, describe, expect, it } from "vitest";
import { randomUUID } from "node:crypto";
import { rotateSecrets, generateMasterKey, parseKeyringOptions } from "./api.ts";
import { openTenantStore, provisionTenantDatabase, SupabaseTenantStore } from "./api.ts";
import { startPostgrestFixture } from "../fixtures/postgrest/server.ts";
import type {
  PostgrestFixture,
  PostgrestFixtureOptions,
  RecordedRequest,
} from "../fixtures/postgrest/server.ts";
import { codeOf, testKeyring, vec } from "./harness.ts";
import { defineRagStoreSuite } from "./rag_store_suite.ts";
import { expectTurnsAppendedOnce } from "./store_suite.ts";

const SERVICE_KEY = "eyJhbGciOiJIUzI1NiJ9.service-role-test.signature";
const USER_A = "00000000-0000-4000-8000-00000000000a";
const USER_B = "00000000-0000-4000-8000-00000000000b";

const fixtures: PostgrestFixture[] = [];
afterEach(async () => {
  for (const f of fixtures.splice(0)) await f.close();
});

/** Fixtures of the shared RAG suite: every request they saw must have been well-formed. */
const suiteFixtures: PostgrestFixture[] = [];
afterEach(async () => {
  const all = suiteFixtures.splice(0);
  for (const f of all) await f.close();
  expect(all.flatMap((f) => f.violations)).toEqual([]);
});

defineRagStoreSuite({
  name: "supabase (PostgREST fixture)",
  vector: true,
  open: async (dimension = 1024) => {
    const f = await startPostgrestFixture({ serviceRoleKey: SERVICE_KEY, dimension });
    suiteFixtures.push(f);
    return new SupabaseTenantStore({
      tenantId: randomUUID(),
      url: f.url,
      serviceRoleKey: SERVICE_KEY,
      embeddingDimension: dimension,
      keyring: testKeyring(),
    });
  },
});

async function fixture(options: Partial<PostgrestFixtureOptions> = {}): Promise<PostgrestFixture> {
  const f = await startPostgrestFixture({ serviceRoleKey: SERVICE_KEY, ...options });
  fixtures.push(f);
  return f;
}

function only(requests: RecordedRequest[], method: string, path: string): RecordedRequest[] {
  return requests.filter((r) => r.method === method && r.path === path);
}

function query(r: RecordedRequest | undefined): Record<string, string> {
  return Object.fromEntries(r?.query ?? []);
}

describe("Supabase adapter contract (PostgREST wire format)", () => {
  it("contract - a full tenant session sends only well-formed PostgREST requests with the service-role key and schema profile", async () => {
    const f = await fixture({ schema: "tenant_x" });
    const tenantId = randomUUID();
    const store = await openTenantStore({
      tenantId,
      database: { kind: "supabase", url: f.url, serviceRoleKey: SERVICE_KEY, schema: "tenant_x" },
      keyring: testKeyring(),
    });
    const agent = await store.createAgent({
      slug: "helper",
      name: "Helper",
      voiceSettings: { llm_provider: "groq" },
    });
    expect((await store.getAgent("helper")).voiceSettings).toEqual({ llm_provider: "groq" });
    expect((await store.updateAgent("helper", { ragResultsLimit: 8 })).ragResultsLimit).toBe(8);
    expect((await store.listAgents({ enabledOnly: true })).map((a) => a.slug)).toEqual(["helper"]);

    const conversation = await store.createConversation({
      agentId: agent.id,
      userId: USER_A,
      sessionId: "s",
    });
    const turn = await store.appendTurn({
      conversationId: conversation.id,
      agentId: agent.id,
      userId: USER_A,
      userMessage: "where is my order",
      assistantMessage: "it shipped",
      embedding: vec(3),
    });
    await store.appendTurn({
      conversationId: conversation.id,
      agentId: agent.id,
      userId: USER_A,
      userMessage: "thanks",
      assistantMessage: "welcome",
    });
    expect((await store.listTranscripts(conversation.id)).map((t) => [t.role, t.sequence])).toEqual([
      ["user", 1],
      ["assistant", 2],
      ["user", 3],
      ["assistant", 4],
    ]);

    const doc = await store.createDocument({ title: "Manual", fileType: "pdf" });
    await store.addChunks(doc.id, [
      { chunkIndex: 0, content: "returns", embedding: vec(0, 0.5), documentSourceUrl: "https://m/1" },
      { chunkIndex: 1, content: "shipping", embedding: vec(1) },
    ]);
    expect((await store.getDocument(doc.id)).chunkCount).toBe(2);
    await store.assignDocument(agent.id, doc.id);
    const matches = await store.matchDocuments({ embedding: vec(0), agentSlug: "helper", count: 8 });
    expect(matches.map((m) => m.content)).toEqual(["returns", "shipping"]);
    expect(matches[0]?.similarity).toBeCloseTo(1 / Math.sqrt(1.25), 6);
    const memories = await store.matchConversationTranscriptsSecure({
      embedding: vec(3),
      agentSlug: "helper",
      userId: USER_A,
    });
    expect(memories.map((m) => [m.userMessage, m.agentResponse])).toEqual([
      ["where is my order", "it shipped"],
    ]);
    expect(
      await store.matchConversationTranscriptsSecure({
        embedding: vec(3),
        agentSlug: "helper",
        userId: USER_B,
      }),
    ).toEqual([]);

    await store.setProviderKey("groq", "gsk_plaintext_value");
    await store.setProviderKey("groq", "gsk_plaintext_value_2");
    expect(await store.getProviderKey("groq")).toBe("gsk_plaintext_value_2");
    expect((await store.listProviderKeys()).map((k) => k.provider)).toEqual(["groq"]);
    await store.unassignDocument(agent.id, doc.id);
    await store.deleteDocument(doc.id);
    await store.deleteAgent("helper");
    expect(await store.deleteProviderKey("groq")).toBe(true);

    // Nothing the fixture refused.
    expect(f.violations).toEqual([]);
    // Every request: service-role key in apikey and Authorization, the schema in the profile header.
    for (const r of f.requests) {
      expect(r.headers["apikey"]).toBe(SERVICE_KEY);
      expect(r.headers["authorization"]).toBe(`Bearer ${SERVICE_KEY}`);
      const profile = r.method === "GET" || r.method === "HEAD" ? "accept-profile" : "content-profile";
      expect(r.headers[profile]).toBe("tenant_x");
    }
    // A turn is one bulk insert of its two rows (one transaction on the server), sharing turn_id.
    const turnPosts = only(f.requests, "POST", "/rest/v1/conversation_transcripts");
    expect(turnPosts).toHaveLength(2);
    const first = turnPosts[0];
    const rows = first?.body as Array<Record<string, unknown>>;
    expect(rows.map((r) => r["role"])).toEqual(["user", "assistant"]);
    expect(new Set(rows.map((r) => r["turn_id"]))).toEqual(new Set([turn.turnId]));
    expect((rows[0]?.["embeddings"] as number[]).length).toBe(1024);
    expect(first?.headers["prefer"]).toContain("return=representation");
    expect(query(first)["columns"]?.split(",")).toContain('"turn_id"');
    // Vector search only through the RPCs, with the contract's parameter names.
    const rpc = only(f.requests, "POST", "/rest/v1/rpc/match_documents")[0];
    expect(Object.keys(rpc?.body as object).sort()).toEqual(
      ["p_agent_slug", "p_match_count", "p_match_threshold", "p_query_embedding"].sort(),
    );
    expect((rpc?.body as { p_query_embedding: number[] }).p_query_embedding).toHaveLength(1024);
    const rpc2 = only(f.requests, "POST", "/rest/v1/rpc/match_conversation_transcripts_secure")[0];
    expect(Object.keys(rpc2?.body as object).sort()).toEqual(
      ["agent_slug_param", "match_count", "query_embeddings", "user_id_param"].sort(),
    );
    const readsOfEmbeddings = f.requests.filter(
      (r) =>
        r.method === "GET" &&
        (query(r)["select"] ?? "*").split(",").some((c) => c === "*" || c === "embeddings") &&
        (r.path.endsWith("/document_chunks") || r.path.endsWith("/conversation_transcripts")),
    );
    expect(readsOfEmbeddings).toEqual([]);
    // Provider keys: upserted on their key, sealed before they leave the process.
    const upserts = only(f.requests, "POST", "/rest/v1/provider_keys");
    expect(upserts).toHaveLength(2);
    for (const u of upserts) {
      expect(query(u)["on_conflict"]).toBe("provider");
      expect(u.headers["prefer"]).toContain("resolution=merge-duplicates");
      expect(String((u.body as Record<string, unknown>)["ciphertext"])).toMatch(/^sfenc:v1:k1:/);
      expect(JSON.stringify(u.body)).not.toContain("gsk_plaintext");
    }
    // Reads by slug use PostgREST's eq filter; writes that must touch one row are filtered.
    expect(query(only(f.requests, "PATCH", "/rest/v1/agents")[0])["slug"]).toBe("eq.helper");
    expect(query(only(f.requests, "DELETE", "/rest/v1/agents")[0])["slug"]).toBe("eq.helper");
    await store.close();
  });

  it("contract - concurrent appends to one conversation from several handles lose no turn, duplicate none, and keep every writer's order", async () => {
    const f = await fixture();
    const tenantId = randomUUID();
    // One handle per writer, as several hosts (or a paused owner that wakes up) would have.
    const open = (): SupabaseTenantStore =>
      new SupabaseTenantStore({ tenantId, url: f.url, serviceRoleKey: SERVICE_KEY, keyring: testKeyring() });
    const handles = Array.from({ length: 6 }, open);
    const [first] = handles as [SupabaseTenantStore];
    const agent = await first.createAgent({ slug: "a", name: "A" });
    const conversation = await first.createConversation({ agentId: agent.id, userId: USER_A });
    const append = (store: SupabaseTenantStore, label: string) =>
      store.appendTurn({
        conversationId: conversation.id,
        agentId: agent.id,
        userId: USER_A,
        userMessage: `q ${label}`,
        assistantMessage: `a ${label}`,
      });
    const PER_WRITER = 6;
    // Every writer appends its turns one after another; the writers run at once, and so does a
    // burst of single appends on the first handle.
    const written = await Promise.all([
      ...handles.map(async (store, w) => {
        const turns: string[] = [];
        for (let i = 0; i < PER_WRITER; i += 1) turns.push((await append(store, `w${w}-${i}`)).turnId);
        return turns;
      }),
      Promise.all(Array.from({ length: 12 }, (_, i) => append(first, `burst-${i}`))).then((ts) =>
        ts.map((t) => t.turnId),
      ),
    ]);
    const total = handles.length * PER_WRITER + 12;
    const rows = await first.listTranscripts(conversation.id);
    expect(rows).toHaveLength(2 * total);
    // No gap, no duplicate sequence; each turn is its user row then its assistant row.
    expect(rows.map((r) => r.sequence)).toEqual(rows.map((_, i) => i + 1));
    for (let i = 0; i < rows.length; i += 2) {
      const [user, assistant] = [rows[i], rows[i + 1]];
      expect([user?.role, assistant?.role]).toEqual(["user", "assistant"]);
      expect(assistant?.turnId).toBe(user?.turnId);
      expect(assistant?.content).toBe(user?.content.replace(/^q /, "a "));
    }
    const recordedTurns = rows.filter((r) => r.role === "user").map((r) => r.turnId);
    expect(new Set(recordedTurns).size).toBe(total);
    expect(new Set(recordedTurns)).toEqual(new Set(written.flat()));
    // Each writer's turns are recorded in the order it appended them.
    for (const turns of written.slice(0, handles.length)) {
      expect(recordedTurns.filter((t) => t !== null && turns.includes(t))).toEqual(turns);
    }
    // The writers did collide (more inserts than turns), and every collision was retried.
    expect(only(f.requests, "POST", "/rest/v1/conversation_transcripts").length).toBeGreaterThan(total);
    expect(f.violations).toEqual([]);
    for (const h of handles) await h.close();
  });

  it("contract - a turn appended with its turn id by two handles at once is recorded once and answered as recorded", async () => {
    const f = await fixture();
    const tenantId = randomUUID();
    const open = (): SupabaseTenantStore =>
      new SupabaseTenantStore({ tenantId, url: f.url, serviceRoleKey: SERVICE_KEY, keyring: testKeyring() });
    const [store, other] = [open(), open()];
    await expectTurnsAppendedOnce(store, other);
    expect(f.violations).toEqual([]);
    await store.close();
    await other.close();
  });

  it("contract - the fixture refuses a client that sends the wrong key, and the adapter reports a coded error", async () => {
    const f = await fixture();
    const store = new SupabaseTenantStore({
      tenantId: "t",
      url: f.url,
      serviceRoleKey: "not-the-service-role-key",
      keyring: testKeyring(),
    });
    expect(await codeOf(store.listAgents())).toBe("SF_ERR_DATABASE");
    expect(f.violations.length).toBeGreaterThan(0);
  });

  it("contract - PostgREST errors become coded errors (duplicate, dimension, unreachable)", async () => {
    const f = await fixture({ dimension: 8 });
    const store = new SupabaseTenantStore({
      tenantId: "t",
      url: f.url,
      serviceRoleKey: SERVICE_KEY,
      keyring: testKeyring(),
    });
    await store.createAgent({ slug: "a", name: "A" });
    expect(await codeOf(store.createAgent({ slug: "a", name: "again" }))).toBe("SF_ERR_ALREADY_EXISTS");
    expect(await codeOf(store.getAgent("missing"))).toBe("SF_ERR_AGENT_NOT_FOUND");
    // The client believes 1024 dimensions, the project stores 8: the server's error is mapped.
    expect(await codeOf(store.matchDocuments({ embedding: vec(0), agentSlug: "a" }))).toBe(
      "SF_ERR_EMBEDDING_DIMENSION_MISMATCH",
    );
    // A query with the wrong dimension for the configured one never leaves the process.
    const before = f.requests.length;
    expect(await codeOf(store.matchDocuments({ embedding: [1, 0], agentSlug: "a" }))).toBe(
      "SF_ERR_EMBEDDING_DIMENSION_MISMATCH",
    );
    expect(f.requests.length).toBe(before);
    expect(f.violations).toEqual([]);
    await f.close();
    expect(await codeOf(store.createAgent({ slug: "b", name: "B" }))).toBe("SF_ERR_DATABASE_UNAVAILABLE");
    // A GET too: postgrest-js's own retries (1 + 2 + 4 s of backoff) are off, so this fails at once
    // instead of outlasting the gateway's deadline.
    expect(await codeOf(store.listAgents())).toBe("SF_ERR_DATABASE_UNAVAILABLE");
  });

  it("contract - provisioning a complete Supabase project verifies its tables, columns and both RPCs", async () => {
    const f = await fixture();
    const report = await provisionTenantDatabase({
      tenantId: "t",
      database: { kind: "supabase", url: f.url, serviceRoleKey: SERVICE_KEY },
    });
    expect(report).toEqual({ kind: "supabase", verified: true });
    expect(f.violations).toEqual([]);
    expect(only(f.requests, "POST", "/rest/v1/rpc/match_documents")).toHaveLength(1);
    expect(f.requests.filter((r) => r.method === "GET")).toHaveLength(7);
  });

  it("contract - provisioning a project without our schema fails naming what is missing and how to apply the migrations", async () => {
    const f = await fixture({
      withoutTables: ["provider_keys"],
      withoutColumns: ["document_chunks.embeddings", "agents.rag_results_limit"],
      withoutFunctions: ["match_conversation_transcripts_secure"],
    });
    let error: unknown;
    try {
      await provisionTenantDatabase({
        tenantId: "t",
        database: { kind: "supabase", url: f.url, serviceRoleKey: SERVICE_KEY },
      });
    } catch (err) {
      error = err;
    }
    const e = error as { code?: string; details?: { missing?: string[]; howToApply?: string } };
    expect(e.code).toBe("SF_ERR_SCHEMA_MISSING");
    expect(e.details?.missing).toEqual([
      "column public.agents.rag_results_limit",
      "column public.document_chunks.embeddings",
      "table public.provider_keys",
      "function public.match_conversation_transcripts_secure(query_embeddings, agent_slug_param, user_id_param, match_count)",
    ]);
    expect(e.details?.howToApply).toContain("deploy/migrations/tenant");
    expect(f.violations).toEqual([]);
  });

  it("contract - resetEmbeddings nulls both embeddings columns with filtered PATCHes; another dimension is refused before any request", async () => {
    const f = await fixture({ dimension: 8 });
    const store = new SupabaseTenantStore({
      tenantId: "t",
      url: f.url,
      serviceRoleKey: SERVICE_KEY,
      embeddingDimension: 8,
      keyring: testKeyring(),
    });
    const doc = await store.createDocument({ title: "D" });
    await store.upsertChunks(doc.id, [{ chunkIndex: 0, content: "c", embedding: vec(0, 0, 8) }]);
    const before = f.requests.length;
    let error: unknown;
    try {
      await store.resetEmbeddings(768);
    } catch (err) {
      error = err;
    }
    const e = error as { code?: string; message?: string };
    expect(e.code).toBe("SF_ERR_EMBEDDING_DIMENSION_MISMATCH");
    expect(e.message).toContain("vector(768)");
    expect(e.message).toContain("database config");
    expect(f.requests.length).toBe(before);
    expect(f.tables.get("document_chunks")?.[0]?.["embeddings"]).toHaveLength(8);

    await store.resetEmbeddings(8);
    const patches = f.requests.slice(before).filter((r) => r.method === "PATCH");
    expect(patches.map((r) => [r.path, query(r)["embeddings"], r.body])).toEqual([
      ["/rest/v1/document_chunks", "not.is.null", { embeddings: null }],
      ["/rest/v1/conversation_transcripts", "not.is.null", { embeddings: null }],
    ]);
    expect(f.tables.get("document_chunks")?.[0]?.["embeddings"]).toBeNull();
    expect(f.tables.get("document_chunks")?.[0]?.["content"]).toBe("c");
    // upsertChunks: a delete of those indexes, then a bulk insert (no on_conflict: old projects lack the key).
    const chunkWrites = f.requests.filter(
      (r) => r.path === "/rest/v1/document_chunks" && r.method !== "HEAD",
    );
    expect(chunkWrites.slice(0, 2).map((r) => [r.method, query(r)["chunk_index"]])).toEqual([
      ["DELETE", "in.(0)"],
      ["POST", undefined],
    ]);
    expect(f.violations).toEqual([]);
  });

  it("contract - rotation re-seals provider keys through PostgREST with compare-and-set", async () => {
    const f = await fixture();
    const k1 = generateMasterKey();
    const old = parseKeyringOptions({ keys: { k1 }, activeKeyId: "k1" });
    const both = parseKeyringOptions({ keys: { k1, k2: generateMasterKey() }, activeKeyId: "k2" });
    const write = new SupabaseTenantStore({
      tenantId: "t",
      url: f.url,
      serviceRoleKey: SERVICE_KEY,
      keyring: old,
    });
    await write.setProviderKey("groq", "a");
    await write.setProviderKey("jina", "b");
    const store = new SupabaseTenantStore({
      tenantId: "t",
      url: f.url,
      serviceRoleKey: SERVICE_KEY,
      keyring: both,
    });
    const report = await rotateSecrets([store.secretsForRotation()], both, { batchSize: 1 });
    expect(report).toMatchObject({ rotated: 2, remaining: 0, failed: [] });
    expect(await store.getProviderKey("jina")).toBe("b");
    const cas = only(f.requests, "PATCH", "/rest/v1/provider_keys")[0];
    expect(query(cas)["ciphertext"]).toMatch(/^eq\.sfenc:v1:k1:/);
    expect(f.violations).toEqual([]);
  });
});
