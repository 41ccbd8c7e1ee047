// The store suite, run against every adapter the tests can reach (see *_store.test.ts). Parts
// that need pgvector run where the server has it and fail (not skip) when it misbehaves; on a
// server without pgvector they assert the clear SF_ERR_VECTOR_UNAVAILABLE instead.
import { afterAll, afterEach, beforeEach, describe, expect, it } from "vitest";
import { randomUUID } from "node:crypto";
import {
  applyMigrations,
  openPlatformStore,
  openTenantStore,
  provisionTenantDatabase,
  quoteIdent,
  SqlTenantStore,
  TENANT_TABLES,
} from "./api.ts";
import type { ClientSettings, PlatformStore, TenantStore } from "./api.ts";
import { codeOf, testKeyring, vec } from "./harness.ts";
import type { FreshSchema, StoreTarget } from "./harness.ts";
import { defineRagStoreSuite } from "./rag_store_suite.ts";

const USER_A = "00000000-0000-4000-8000-00000000000a";
const USER_B = "00000000-0000-4000-8000-00000000000b";

/**
 * Two handles of one tenant append the same eight turns (by turn id) at once: each turn is recorded
 * once, both are answered with its rows, and a later repeat with another answer gets the recorded one.
 */
export async function expectTurnsAppendedOnce(store: TenantStore, other: TenantStore): Promise<void> {
  const agent = await store.createAgent({ slug: "a", name: "A" });
  const conversation = await store.createConversation({ agentId: agent.id, userId: USER_A });
  const turnIds = Array.from({ length: 8 }, () => randomUUID());
  for (const [i, turnId] of turnIds.entries()) {
    const input = {
      conversationId: conversation.id,
      agentId: agent.id,
      userId: USER_A,
      turnId,
      userMessage: `question ${i}`,
      assistantMessage: `answer ${i}`,
    };
    const [a, b] = await Promise.all([store.appendTurn(input), other.appendTurn(input)]);
    expect(b.user.id).toBe(a.user.id);
    expect(b.assistant.id).toBe(a.assistant.id);
    // A later repeat answers the turn as it was recorded.
    expect((await store.appendTurn({ ...input, assistantMessage: "changed" })).assistant.content).toBe(
      `answer ${i}`,
    );
  }
  const rows = await store.listTranscripts(conversation.id);
  expect(rows.map((r) => r.turnId)).toEqual(turnIds.flatMap((id) => [id, id]));
  expect(rows.map((r) => r.sequence)).toEqual(rows.map((_, i) => i + 1));
}

export function defineStoreSuite(target: StoreTarget): void {
  const keyring = testKeyring(["k1"]);
  const vectorMode = target.vector ? "required" : "optional";
  const schemas: FreshSchema[] = [];

  afterAll(async () => {
    await target.close();
  });

  async function tenant(
    tenantId = randomUUID(),
    embeddingDimension?: number,
  ): Promise<{
    store: TenantStore;
    fresh: FreshSchema;
  }> {
    const fresh = await target.freshSchema("tenant");
    schemas.push(fresh);
    await provisionTenantDatabase({
      tenantId,
      database: fresh.database,
      vector: vectorMode,
      pglite: target.pglite,
      ...(embeddingDimension === undefined ? {} : { embeddingDimension }),
    });
    const store = await openTenantStore({
      tenantId,
      database: fresh.database,
      keyring,
      pglite: target.pglite,
    });
    stores.push(store);
    return { store, fresh };
  }

  const stores: Array<TenantStore | PlatformStore> = [];
  afterEach(async () => {
    for (const s of stores.splice(0)) await s.close();
    for (const f of schemas.splice(0)) await f.drop();
  });

  describe(`tenant store on ${target.name}`, () => {
    it("store - agents: create, read, update voice_settings, list, delete, coded errors", async () => {
      const { store } = await tenant();
      const created = await store.createAgent({
        slug: "helper",
        name: "Helper",
        systemPrompt: "be kind",
        voiceSettings: {
          llm_provider: "groq",
          llm_model: "llama-3.3-70b-versatile",
          tts_provider: "cartesia",
        },
      });
      expect(created.ragResultsLimit).toBe(5);
      expect(created.enabled).toBe(true);
      expect((await store.getAgent("helper")).voiceSettings).toEqual({
        llm_provider: "groq",
        llm_model: "llama-3.3-70b-versatile",
        tts_provider: "cartesia",
      });
      const updated = await store.updateAgent("helper", {
        voiceSettings: { stt_provider: "deepgram" },
        enabled: false,
      });
      expect(updated.voiceSettings).toEqual({ stt_provider: "deepgram" });
      expect(updated.enabled).toBe(false);
      await store.createAgent({ slug: "other", name: "Other" });
      expect((await store.listAgents()).map((a) => a.slug)).toEqual(["helper", "other"]);
      expect((await store.listAgents({ enabledOnly: true })).map((a) => a.slug)).toEqual(["other"]);
      expect(await codeOf(store.createAgent({ slug: "helper", name: "dup" }))).toBe("SF_ERR_ALREADY_EXISTS");
      expect(await codeOf(store.getAgent("nope"))).toBe("SF_ERR_AGENT_NOT_FOUND");
      expect(await codeOf(store.updateAgent("nope", { name: "x" }))).toBe("SF_ERR_AGENT_NOT_FOUND");
      await store.deleteAgent("other");
      expect(await store.findAgent("other")).toBeNull();
      expect(await codeOf(store.deleteAgent("other"))).toBe("SF_ERR_AGENT_NOT_FOUND");
    });

    it("store - transcripts: one user and one assistant row per turn, sharing turn_id, in order", async () => {
      const { store } = await tenant();
      const agent = await store.createAgent({ slug: "a", name: "A" });
      const conversation = await store.createConversation({
        agentId: agent.id,
        userId: USER_A,
        sessionId: "s1",
      });
      expect((await store.getConversation(conversation.id)).userId).toBe(USER_A);
      const t1 = await store.appendTurn({
        conversationId: conversation.id,
        agentId: agent.id,
        userId: USER_A,
        userMessage: "hello",
        assistantMessage: "hi there",
        citations: [{ document_id: "d1", title: "Doc" }],
      });
      const t2 = await store.appendTurn({
        conversationId: conversation.id,
        agentId: agent.id,
        userId: USER_A,
        userMessage: "how are you",
        assistantMessage: "fine",
      });
      expect(t1.user.turnId).toBe(t1.turnId);
      expect(t1.assistant.turnId).toBe(t1.turnId);
      expect(t2.turnId).not.toBe(t1.turnId);
      const rows = await store.listTranscripts(conversation.id);
      expect(rows.map((r) => [r.role, r.content, r.sequence])).toEqual([
        ["user", "hello", 1],
        ["assistant", "hi there", 2],
        ["user", "how are you", 3],
        ["assistant", "fine", 4],
      ]);
      expect(rows[1]?.citations).toEqual([{ document_id: "d1", title: "Doc" }]);
      expect(rows.every((r) => r.userId === USER_A && r.agentId === agent.id)).toBe(true);
      expect((await store.listTranscripts(conversation.id, { limit: 2 })).map((r) => r.content)).toEqual([
        "how are you",
        "fine",
      ]);
      expect((await store.listConversations({ userId: USER_A })).map((c) => c.id)).toEqual([conversation.id]);
      expect(await store.listConversations({ userId: USER_B })).toEqual([]);
      expect(await codeOf(store.getConversation(randomUUID()))).toBe("SF_ERR_NOT_FOUND");
      expect(
        await codeOf(
          store.appendTurn({
            conversationId: randomUUID(),
            agentId: agent.id,
            userId: USER_A,
            userMessage: "x",
            assistantMessage: "y",
          }),
        ),
      ).toBe("SF_ERR_NOT_FOUND");
      expect(await codeOf(store.createConversation({ agentId: agent.id, userId: "not-a-uuid" }))).toBe(
        "SF_ERR_INVALID_INPUT",
      );
    });

    it("store - transcripts: a turn appended again with its turn id, even by two handles at once, is recorded once", async () => {
      const tenantId = randomUUID();
      const { store, fresh } = await tenant(tenantId);
      // A second handle of its own (another pool on PostgreSQL), as a second host would have.
      const other = await openTenantStore({
        tenantId,
        database: fresh.database,
        keyring,
        pglite: target.pglite,
      });
      stores.push(other);
      await expectTurnsAppendedOnce(store, other);
    });

    it("store - documents: chunks set chunk_count, assignment is per agent and can be disabled", async () => {
      const { store } = await tenant();
      const agent = await store.createAgent({ slug: "a", name: "A" });
      const doc = await store.createDocument({ title: "Manual", fileName: "m.pdf", fileType: "pdf" });
      expect(
        await store.addChunks(
          doc.id,
          [0, 1, 2].map((i) => ({ chunkIndex: i, content: `part ${i}` })),
        ),
      ).toBe(3);
      expect((await store.getDocument(doc.id)).chunkCount).toBe(3);
      expect((await store.listChunks(doc.id)).map((c) => c.content)).toEqual(["part 0", "part 1", "part 2"]);
      await store.assignDocument(agent.id, doc.id);
      await store.assignDocument(agent.id, doc.id, { enabled: false });
      expect(await store.listAgentDocuments(agent.id)).toEqual([
        { agentId: agent.id, documentId: doc.id, accessType: "read", enabled: false },
      ]);
      await store.unassignDocument(agent.id, doc.id);
      expect(await store.listAgentDocuments(agent.id)).toEqual([]);
      await store.updateDocumentStatus(doc.id, "ready");
      expect((await store.listDocuments()).map((d) => [d.title, d.status])).toEqual([["Manual", "ready"]]);
      await store.deleteDocument(doc.id);
      expect(await codeOf(store.getDocument(doc.id))).toBe("SF_ERR_NOT_FOUND");
      expect(await store.listChunks(doc.id)).toEqual([]);
    });

    it("store - provider keys are sealed at rest and open only for their tenant", async () => {
      const tenantId = randomUUID();
      const { store, fresh } = await tenant(tenantId);
      await store.setProviderKey("groq", "gsk_live_0123456789abcdef");
      await store.setProviderKey("deepgram", "dg_0123456789");
      expect(await store.getProviderKey("groq")).toBe("gsk_live_0123456789abcdef");
      expect(await store.getProviderKey("openai")).toBeNull();
      expect((await store.listProviderKeys()).map((k) => [k.provider, k.keyId])).toEqual([
        ["deepgram", "k1"],
        ["groq", "k1"],
      ]);
      const raw = await target.sql.query<{ ciphertext: string }>(
        `select ciphertext from ${quoteIdent(fresh.schema)}.provider_keys where provider = 'groq'`,
      );
      expect(raw[0]?.ciphertext).toMatch(/^sfenc:v1:k1:/);
      expect(raw[0]?.ciphertext).not.toContain("gsk_live");
      // The same table read by another tenant id: the AAD binding refuses it.
      const other = await openTenantStore({
        tenantId: randomUUID(),
        database: fresh.database,
        keyring,
        pglite: target.pglite,
      });
      stores.push(other);
      expect(await codeOf(other.getProviderKey("groq"))).toBe("SF_ERR_DECRYPT_FAILED");
      expect(await store.deleteProviderKey("groq")).toBe(true);
      expect(await store.getProviderKey("groq")).toBeNull();
      expect(await codeOf(store.setProviderKey("Bad Name", "x"))).toBe("SF_ERR_INVALID_INPUT");
    });

    it("store - row-level security is enabled on every tenant table", async () => {
      const { fresh } = await tenant();
      const rows = await target.sql.query<{ relname: string; rls: boolean }>(
        `select c.relname, c.relrowsecurity as rls from pg_class c join pg_namespace n on n.oid = c.relnamespace
         where n.nspname = $1 and c.relkind = 'r' and c.relname <> 'sf_schema_migrations' order by c.relname`,
        [fresh.schema],
      );
      expect(rows.map((r) => r.relname)).toEqual([...TENANT_TABLES].sort());
      expect(rows.every((r) => r.rls)).toBe(true);
    });

    it("store - migrations are recorded with checksums, re-running is a no-op, a changed file is refused", async () => {
      const fresh = await target.freshSchema("mig");
      schemas.push(fresh);
      const first = await applyMigrations(target.sql, {
        set: "tenant",
        schema: fresh.schema,
        vector: vectorMode,
      });
      expect(first.applied).toContain("0002_tenant_core");
      const second = await applyMigrations(target.sql, {
        set: "tenant",
        schema: fresh.schema,
        vector: vectorMode,
      });
      expect(second.applied).toEqual([]);
      expect(second.alreadyApplied).toEqual(first.applied);
      const recorded = await target.sql.query<{ name: string; checksum: string }>(
        `select name, checksum from ${quoteIdent(fresh.schema)}.sf_schema_migrations order by name`,
      );
      expect(recorded.map((r) => r.name)).toEqual(first.applied);
      expect(recorded.every((r) => /^[0-9a-f]{64}$/.test(r.checksum))).toBe(true);
      await target.sql.query(
        `update ${quoteIdent(fresh.schema)}.sf_schema_migrations set checksum = 'changed' where name = '0002_tenant_core'`,
      );
      expect(
        await codeOf(
          applyMigrations(target.sql, { set: "tenant", schema: fresh.schema, vector: vectorMode }),
        ),
      ).toBe("SF_ERR_MIGRATION_CHECKSUM_MISMATCH");
      expect(
        await codeOf(
          SqlTenantStore.open({
            db: target.sql,
            schema: "no_such_schema",
            tenantId: "x",
            ownsDatabase: false,
          }),
        ),
      ).toBe("SF_ERR_SCHEMA_MISSING");
    });

    it("isolation - two tenants with the same agent slugs and user ids never see each other's rows", async () => {
      const one = await tenant();
      const two = await tenant();
      const a1 = await one.store.createAgent({ slug: "support", name: "One" });
      const a2 = await two.store.createAgent({ slug: "support", name: "Two" });
      const c1 = await one.store.createConversation({ agentId: a1.id, userId: USER_A });
      await one.store.appendTurn({
        conversationId: c1.id,
        agentId: a1.id,
        userId: USER_A,
        userMessage: "secret of one",
        assistantMessage: "ok",
      });
      await one.store.setProviderKey("groq", "key-of-one");
      expect((await two.store.getAgent("support")).name).toBe("Two");
      expect(await two.store.listConversations({ userId: USER_A })).toEqual([]);
      expect(await two.store.findConversation(c1.id)).toBeNull();
      expect(await two.store.listTranscripts(c1.id)).toEqual([]);
      expect(await two.store.getProviderKey("groq")).toBeNull();
      expect((await one.store.listAgents()).map((a) => a.id)).toEqual([a1.id]);
      expect((await two.store.listAgents()).map((a) => a.id)).toEqual([a2.id]);
    });
  });

  defineRagStoreSuite({
    name: target.name,
    vector: target.vector,
    open: async (dimension) => (await tenant(randomUUID(), dimension)).store,
  });

  if (target.vector) {
    describe(`vector search on ${target.name} (pgvector)`, () => {
      it("vector - embeddings are vector(1024) by default with HNSW cosine indexes", async () => {
        const { store, fresh } = await tenant();
        expect(store.capabilities).toEqual({ vector: true, embeddingDimension: 1024 });
        const types = await target.sql.query<{ relname: string; type: string }>(
          `select c.relname, format_type(a.atttypid, a.atttypmod) as type from pg_attribute a
           join pg_class c on c.oid = a.attrelid join pg_namespace n on n.oid = c.relnamespace
           where n.nspname = $1 and c.relkind = 'r' and a.attname = 'embeddings' order by c.relname`,
          [fresh.schema],
        );
        expect(types).toEqual([
          { relname: "conversation_transcripts", type: "vector(1024)" },
          { relname: "document_chunks", type: "vector(1024)" },
        ]);
        const indexes = await target.sql.query<{ indexdef: string }>(
          `select indexdef from pg_indexes where schemaname = $1 and indexdef ilike '%using hnsw%' order by indexname`,
          [fresh.schema],
        );
        expect(indexes).toHaveLength(2);
        expect(indexes.every((i) => i.indexdef.includes("vector_cosine_ops"))).toBe(true);
      });

      it("vector - the dimension is chosen at provisioning and enforced on writes and queries", async () => {
        const { store } = await tenant(randomUUID(), 8);
        expect(store.capabilities.embeddingDimension).toBe(8);
        const agent = await store.createAgent({ slug: "a", name: "A" });
        const doc = await store.createDocument({ title: "D" });
        await store.addChunks(doc.id, [{ chunkIndex: 0, content: "c", embedding: vec(0, 0, 8) }]);
        await store.assignDocument(agent.id, doc.id);
        expect((await store.matchDocuments({ embedding: vec(0, 0, 8), agentSlug: "a" })).length).toBe(1);
        expect(await codeOf(store.matchDocuments({ embedding: vec(0), agentSlug: "a" }))).toBe(
          "SF_ERR_EMBEDDING_DIMENSION_MISMATCH",
        );
        expect(
          await codeOf(store.addChunks(doc.id, [{ chunkIndex: 1, content: "c", embedding: vec(0) }])),
        ).toBe("SF_ERR_EMBEDDING_DIMENSION_MISMATCH");
      });

      it("vector - match_documents returns only chunks of enabled documents assigned to that agent, by cosine similarity", async () => {
        const { store } = await tenant();
        const a = await store.createAgent({ slug: "a", name: "A" });
        const b = await store.createAgent({ slug: "b", name: "B" });
        const mine = await store.createDocument({ title: "Mine" });
        const theirs = await store.createDocument({ title: "Theirs" });
        const disabled = await store.createDocument({ title: "Disabled" });
        await store.addChunks(mine.id, [
          { chunkIndex: 0, content: "close", embedding: vec(0, 0.1), documentSourceUrl: "https://x/1" },
          { chunkIndex: 1, content: "far", embedding: vec(5) },
        ]);
        await store.addChunks(theirs.id, [{ chunkIndex: 0, content: "theirs exact", embedding: vec(0) }]);
        await store.addChunks(disabled.id, [{ chunkIndex: 0, content: "disabled exact", embedding: vec(0) }]);
        await store.assignDocument(a.id, mine.id);
        await store.assignDocument(b.id, theirs.id);
        await store.assignDocument(a.id, disabled.id, { enabled: false });
        const matches = await store.matchDocuments({ embedding: vec(0), agentSlug: "a", count: 8 });
        expect(matches.map((m) => m.content)).toEqual(["close", "far"]);
        expect(matches[0]?.documentId).toBe(mine.id);
        expect(matches[0]?.title).toBe("Mine");
        expect(matches[0]?.sourceUrl).toBe("https://x/1");
        expect(matches[0]?.similarity).toBeCloseTo(1 / Math.sqrt(1.01), 6);
        expect(matches[1]?.similarity).toBeCloseTo(0, 6);
        expect(
          (await store.matchDocuments({ embedding: vec(0), agentSlug: "a", threshold: 0.5 })).length,
        ).toBe(1);
        expect((await store.matchDocuments({ embedding: vec(0), agentSlug: "a", count: 1 })).length).toBe(1);
        expect(
          (await store.matchDocuments({ embedding: vec(0), agentSlug: "b" })).map((m) => m.content),
        ).toEqual(["theirs exact"]);
        expect(await store.matchDocuments({ embedding: vec(0), agentSlug: "nobody" })).toEqual([]);
      });

      it("vector - match_conversation_transcripts_secure answers only that user's turns with that agent", async () => {
        const { store } = await tenant();
        const a = await store.createAgent({ slug: "a", name: "A" });
        const b = await store.createAgent({ slug: "b", name: "B" });
        const ca = await store.createConversation({ agentId: a.id, userId: USER_A });
        const cb = await store.createConversation({ agentId: a.id, userId: USER_B });
        const cOther = await store.createConversation({ agentId: b.id, userId: USER_A });
        const turn = (conversationId: string, agentId: string, userId: string, text: string, axis: number) =>
          store.appendTurn({
            conversationId,
            agentId,
            userId,
            userMessage: `${text}?`,
            assistantMessage: `${text}!`,
            embedding: vec(axis),
          });
        await turn(ca.id, a.id, USER_A, "a-near", 0);
        await turn(ca.id, a.id, USER_A, "a-far", 7);
        await turn(cb.id, a.id, USER_B, "b-exact", 0);
        await turn(cOther.id, b.id, USER_A, "other-agent-exact", 0);
        const matches = await store.matchConversationTranscriptsSecure({
          embedding: vec(0),
          agentSlug: "a",
          userId: USER_A,
          count: 10,
        });
        expect(matches.map((m) => [m.userMessage, m.agentResponse])).toEqual([
          ["a-near?", "a-near!"],
          ["a-far?", "a-far!"],
        ]);
        expect(matches.every((m) => m.conversationId === ca.id)).toBe(true);
        expect(matches[0]?.similarity).toBeCloseTo(1, 6);
        const forB = await store.matchConversationTranscriptsSecure({
          embedding: vec(0),
          agentSlug: "a",
          userId: USER_B,
        });
        expect(forB.map((m) => m.userMessage)).toEqual(["b-exact?"]);
        expect(
          await store.matchConversationTranscriptsSecure({
            embedding: vec(0),
            agentSlug: "a",
            userId: randomUUID(),
          }),
        ).toEqual([]);
      });

      it("vector - resetEmbeddings with another dimension retypes both columns, re-creates their HNSW indexes, updates the capabilities", async () => {
        const { store, fresh } = await tenant();
        const agent = await store.createAgent({ slug: "a", name: "A" });
        const doc = await store.createDocument({ title: "D" });
        await store.assignDocument(agent.id, doc.id);
        await store.addChunks(doc.id, [{ chunkIndex: 0, content: "c", embedding: vec(0) }]);
        const conversation = await store.createConversation({ agentId: agent.id, userId: USER_A });
        const turn = await store.appendTurn({
          conversationId: conversation.id,
          agentId: agent.id,
          userId: USER_A,
          userMessage: "q",
          assistantMessage: "a",
          embedding: vec(0),
        });
        // Another store on the same database, opened before the change (a stale cache entry).
        const stale = await openTenantStore({
          tenantId: store.tenantId,
          database: fresh.database,
          keyring,
          pglite: target.pglite,
        });
        stores.push(stale);

        await store.resetEmbeddings(8);
        expect(store.capabilities).toEqual({ vector: true, embeddingDimension: 8 });
        const s = quoteIdent(fresh.schema);
        const types = await target.sql.query<{ relname: string; type: string }>(
          `select c.relname, format_type(a.atttypid, a.atttypmod) as type from pg_attribute a
           join pg_class c on c.oid = a.attrelid join pg_namespace n on n.oid = c.relnamespace
           where n.nspname = $1 and c.relkind = 'r' and a.attname = 'embeddings' order by c.relname`,
          [fresh.schema],
        );
        expect(types).toEqual([
          { relname: "conversation_transcripts", type: "vector(8)" },
          { relname: "document_chunks", type: "vector(8)" },
        ]);
        const indexes = await target.sql.query<{ indexname: string; indexdef: string }>(
          `select indexname, indexdef from pg_indexes where schemaname = $1 and indexdef ilike '%using hnsw%' order by indexname`,
          [fresh.schema],
        );
        expect(indexes.map((i) => i.indexname)).toEqual([
          "conversation_transcripts_embeddings_hnsw_idx",
          "document_chunks_embeddings_hnsw_idx",
        ]);
        expect(indexes.every((i) => i.indexdef.includes("vector_cosine_ops"))).toBe(true);
        const stored = await target.sql.query<{ n: number }>(
          `select (select count(*) from ${s}.document_chunks where embeddings is not null)
                + (select count(*) from ${s}.conversation_transcripts where embeddings is not null) as n`,
        );
        expect(Number(stored[0]?.n)).toBe(0);

        // The stale store: nothing is stored yet, and its 1024-d query is still refused, not answered empty.
        expect(await codeOf(stale.matchDocuments({ embedding: vec(0), agentSlug: "a" }))).toBe(
          "SF_ERR_EMBEDDING_DIMENSION_MISMATCH",
        );
        expect(stale.capabilities.embeddingDimension).toBe(8);
        expect(
          await codeOf(
            stale.matchConversationTranscriptsSecure({ embedding: vec(0), agentSlug: "a", userId: USER_A }),
          ),
        ).toBe("SF_ERR_EMBEDDING_DIMENSION_MISMATCH");

        // Re-embedded with 8 dimensions: searches answer; 1024-d vectors are refused.
        await store.upsertChunks(doc.id, [{ chunkIndex: 0, content: "c", embedding: vec(0, 0, 8) }]);
        expect(await store.setTranscriptEmbedding(turn.turnId, vec(0, 0, 8))).toBe(true);
        expect((await store.matchDocuments({ embedding: vec(0, 0, 8), agentSlug: "a" })).length).toBe(1);
        expect(
          (
            await store.matchConversationTranscriptsSecure({
              embedding: vec(0, 0, 8),
              agentSlug: "a",
              userId: USER_A,
            })
          ).length,
        ).toBe(1);
        expect(await codeOf(store.matchDocuments({ embedding: vec(0), agentSlug: "a" }))).toBe(
          "SF_ERR_EMBEDDING_DIMENSION_MISMATCH",
        );
        expect(await codeOf(store.setTranscriptEmbedding(turn.turnId, vec(0)))).toBe(
          "SF_ERR_EMBEDDING_DIMENSION_MISMATCH",
        );
        // A store opened now sees 8 dimensions.
        const reopened = await openTenantStore({
          tenantId: store.tenantId,
          database: fresh.database,
          keyring,
          pglite: target.pglite,
        });
        stores.push(reopened);
        expect(reopened.capabilities.embeddingDimension).toBe(8);
      });

      it("vector - a query whose dimension differs from the stored column is an error even when the store's view is stale", async () => {
        const { store, fresh } = await tenant();
        const agent = await store.createAgent({ slug: "a", name: "A" });
        const doc = await store.createDocument({ title: "D" });
        await store.assignDocument(agent.id, doc.id);
        const stale = await openTenantStore({
          tenantId: store.tenantId,
          database: fresh.database,
          keyring,
          pglite: target.pglite,
        });
        stores.push(stale);
        await store.resetEmbeddings(16);
        await store.addChunks(doc.id, [{ chunkIndex: 0, content: "c", embedding: vec(0, 0, 16) }]);
        // Stored vectors to compare with: pgvector's own error, mapped.
        expect(await codeOf(stale.matchDocuments({ embedding: vec(0), agentSlug: "a" }))).toBe(
          "SF_ERR_EMBEDDING_DIMENSION_MISMATCH",
        );
        expect(
          await codeOf(stale.addChunks(doc.id, [{ chunkIndex: 1, content: "c", embedding: vec(0) }])),
        ).toBe("SF_ERR_EMBEDDING_DIMENSION_MISMATCH");
      });

      it("vector - provisioning refuses a different dimension than the stored one", async () => {
        const { fresh } = await tenant();
        expect(
          await codeOf(
            provisionTenantDatabase({
              tenantId: "x",
              database: fresh.database,
              embeddingDimension: 768,
              pglite: target.pglite,
            }),
          ),
        ).toBe("SF_ERR_EMBEDDING_DIMENSION_MISMATCH");
      });

      it("isolation - vector search of one tenant never returns another tenant's chunks or turns", async () => {
        const one = await tenant();
        const two = await tenant();
        for (const t of [one, two]) await t.store.createAgent({ slug: "support", name: "S" });
        const a1 = await one.store.getAgent("support");
        const doc = await one.store.createDocument({ title: "One only" });
        await one.store.addChunks(doc.id, [{ chunkIndex: 0, content: "one", embedding: vec(0) }]);
        await one.store.assignDocument(a1.id, doc.id);
        const c1 = await one.store.createConversation({ agentId: a1.id, userId: USER_A });
        await one.store.appendTurn({
          conversationId: c1.id,
          agentId: a1.id,
          userId: USER_A,
          userMessage: "q",
          assistantMessage: "a",
          embedding: vec(0),
        });
        expect(await two.store.matchDocuments({ embedding: vec(0), agentSlug: "support" })).toEqual([]);
        expect(
          await two.store.matchConversationTranscriptsSecure({
            embedding: vec(0),
            agentSlug: "support",
            userId: USER_A,
          }),
        ).toEqual([]);
        expect((await one.store.matchDocuments({ embedding: vec(0), agentSlug: "support" })).length).toBe(1);
      });
    });
  } else {
    describe(`vector search on ${target.name} (needs pgvector, which this server lacks)`, () => {
      it("vector - provisioning with vector required fails with SF_ERR_VECTOR_UNAVAILABLE", async () => {
        const fresh = await target.freshSchema("novec");
        schemas.push(fresh);
        expect(
          await codeOf(
            provisionTenantDatabase({ tenantId: "x", database: fresh.database, pglite: target.pglite }),
          ),
        ).toBe("SF_ERR_VECTOR_UNAVAILABLE");
      });

      it("vector - searches and embedding writes fail with SF_ERR_VECTOR_UNAVAILABLE, never an empty result", async () => {
        const { store } = await tenant();
        expect(store.capabilities.vector).toBe(false);
        const agent = await store.createAgent({ slug: "a", name: "A" });
        const doc = await store.createDocument({ title: "D" });
        const conversation = await store.createConversation({ agentId: agent.id, userId: USER_A });
        expect(await codeOf(store.matchDocuments({ embedding: vec(0), agentSlug: "a" }))).toBe(
          "SF_ERR_VECTOR_UNAVAILABLE",
        );
        expect(
          await codeOf(
            store.matchConversationTranscriptsSecure({ embedding: vec(0), agentSlug: "a", userId: USER_A }),
          ),
        ).toBe("SF_ERR_VECTOR_UNAVAILABLE");
        expect(
          await codeOf(store.addChunks(doc.id, [{ chunkIndex: 0, content: "c", embedding: vec(0) }])),
        ).toBe("SF_ERR_VECTOR_UNAVAILABLE");
        expect(
          await codeOf(store.upsertChunks(doc.id, [{ chunkIndex: 0, content: "c", embedding: vec(0) }])),
        ).toBe("SF_ERR_VECTOR_UNAVAILABLE");
        const turn = await store.appendTurn({
          conversationId: conversation.id,
          agentId: agent.id,
          userId: USER_A,
          userMessage: "q",
          assistantMessage: "a",
        });
        expect(await codeOf(store.setTranscriptEmbedding(turn.turnId, vec(0)))).toBe(
          "SF_ERR_VECTOR_UNAVAILABLE",
        );
        expect(await codeOf(store.resetEmbeddings(1024))).toBe("SF_ERR_VECTOR_UNAVAILABLE");
        expect(
          await codeOf(
            store.appendTurn({
              conversationId: conversation.id,
              agentId: agent.id,
              userId: USER_A,
              userMessage: "q",
              assistantMessage: "a",
              embedding: vec(0),
            }),
          ),
        ).toBe("SF_ERR_VECTOR_UNAVAILABLE");
      });
    });
  }

  if (target.supabaseRoles) {
    describe(`row-level security on ${target.name}`, () => {
      it(`rls on ${target.name} - anon and authenticated see nothing, service_role sees rows, provider_keys not granted`, async () => {
        const { store, fresh } = await tenant();
        await store.createAgent({ slug: "a", name: "A" });
        await store.setProviderKey("groq", "k");
        const s = quoteIdent(fresh.schema);
        const countAs = (role: string, table: string) =>
          target.sql.transaction(async (tx) => {
            await tx.exec(`set local role ${role}`);
            const rows = await tx.query<{ n: number }>(`select count(*)::int as n from ${s}.${table}`);
            return rows[0]?.n;
          });
        expect(await countAs("anon", "agents")).toBe(0);
        expect(await countAs("authenticated", "agents")).toBe(0);
        expect(await countAs("service_role", "agents")).toBe(1);
        expect(await codeOf(countAs("anon", "provider_keys"))).toBe("42501");
      });
    });
  } else {
    describe(`row-level security on ${target.name} (the connection may not create the Supabase roles)`, () => {
      it("rls - provisioning succeeds without the roles; RLS is on and no policy names a missing role", async () => {
        const { fresh } = await tenant();
        const policies = await target.sql.query<{ n: number }>(
          "select count(*)::int as n from pg_policies where schemaname = $1",
          [fresh.schema],
        );
        expect(policies[0]?.n).toBe(0);
        const rls = await target.sql.query<{ n: number }>(
          `select count(*)::int as n from pg_class c join pg_namespace n on n.oid = c.relnamespace
           where n.nspname = $1 and c.relkind = 'r' and c.relrowsecurity`,
          [fresh.schema],
        );
        expect(rls[0]?.n).toBe(TENANT_TABLES.length);
      });
    });
  }

  describe(`platform store on ${target.name}`, () => {
    let platform: PlatformStore;
    beforeEach(async () => {
      const fresh = await target.freshSchema("platform");
      schemas.push(fresh);
      platform = await openPlatformStore({
        database: fresh.platformDatabase,
        keyring,
        pglite: target.pglite,
      });
      stores.push(platform);
    });

    it("platform - clients: create, find by slug, update, list by status, coded errors", async () => {
      const acme = await platform.createClient({ slug: "acme", name: "Acme" });
      await platform.createClient({ slug: "globex", name: "Globex", status: "suspended" });
      expect((await platform.getClient(acme.id)).slug).toBe("acme");
      expect((await platform.findClientBySlug("globex"))?.status).toBe("suspended");
      expect(await platform.findClientBySlug("nobody")).toBeNull();
      expect((await platform.updateClient(acme.id, { name: "Acme Inc" })).name).toBe("Acme Inc");
      expect((await platform.listClients({ status: "active" })).map((c) => c.slug)).toEqual(["acme"]);
      expect(await codeOf(platform.createClient({ slug: "acme", name: "again" }))).toBe(
        "SF_ERR_ALREADY_EXISTS",
      );
      expect(await codeOf(platform.createClient({ slug: "Bad Slug", name: "x" }))).toBe(
        "SF_ERR_INVALID_INPUT",
      );
      expect(await codeOf(platform.getClient(randomUUID()))).toBe("SF_ERR_TENANT_NOT_FOUND");
      expect(await codeOf(platform.getClient("not-a-uuid"))).toBe("SF_ERR_TENANT_NOT_FOUND");
      await platform.deleteClient(acme.id);
      expect(await codeOf(platform.getClient(acme.id))).toBe("SF_ERR_TENANT_NOT_FOUND");
    });

    it("platform - client settings: {} by default, set on create, replaced as a whole on update, kept on reopen", async () => {
      const fresh = await target.freshSchema("settings");
      schemas.push(fresh);
      const open = async (): Promise<PlatformStore> => {
        const p = await openPlatformStore({
          database: fresh.platformDatabase,
          keyring,
          pglite: target.pglite,
        });
        stores.push(p);
        return p;
      };
      const first = await open();
      const plain = await first.createClient({ slug: "plain", name: "Plain" });
      expect(plain.settings).toEqual({});
      const embedding = {
        provider: "siliconflow",
        document_model: "Qwen/Qwen3-Embedding-0.6B",
        conversation_model: "Qwen/Qwen3-Embedding-0.6B",
        dimension: 1024,
      };
      const acme = await first.createClient({ slug: "acme", name: "Acme", settings: { embedding } });
      expect(acme.settings).toEqual({ embedding });
      expect((await first.getClient(acme.id)).settings).toEqual({ embedding });
      const embeddingIndex = { ...embedding, updated_at: "2025-01-02T03:04:05.000Z" };
      const updated = await first.updateClient(acme.id, {
        settings: { embedding_index: embeddingIndex, theme: { color: "teal" } },
      });
      expect(updated.settings).toEqual({ embedding_index: embeddingIndex, theme: { color: "teal" } });
      // Other updates keep the settings.
      expect((await first.updateClient(acme.id, { name: "Acme Inc" })).settings).toEqual(updated.settings);
      expect((await first.listClients()).map((c) => [c.slug, c.settings])).toEqual([
        ["acme", updated.settings],
        ["plain", {}],
      ]);
      expect(await codeOf(first.updateClient(acme.id, { settings: [] as unknown as ClientSettings }))).toBe(
        "SF_ERR_INVALID_INPUT",
      );
      expect(
        await codeOf(
          first.createClient({
            slug: "leaky",
            name: "Leaky",
            settings: { embedding, webhooks: { slack: { token: "xoxb-secret" } } },
          }),
        ),
      ).toBe("SF_ERR_INVALID_INPUT");
      expect(
        await codeOf(
          first.updateClient(acme.id, { settings: { embedding: { ...embedding, dimension: 0 } } }),
        ),
      ).toBe("SF_ERR_INVALID_INPUT");
      await first.close();
      const second = await open();
      expect((await second.getClient(acme.id)).settings).toEqual({
        embedding_index: embeddingIndex,
        theme: { color: "teal" },
      });
      expect((await second.findClientBySlug("plain"))?.settings).toEqual({});
      const recorded = await target.sql.query<{ name: string }>(
        `select name from ${quoteIdent(fresh.schema)}.sf_schema_migrations order by name`,
      );
      expect(recorded.map((r) => r.name)).toContain("0002_client_settings");
    });

    it("platform - client secrets are sealed per client and field; a ciphertext moved to another client does not open", async () => {
      const one = await platform.createClient({ slug: "one", name: "One" });
      const two = await platform.createClient({ slug: "two", name: "Two" });
      await platform.setTenantDatabase(one.id, {
        kind: "supabase",
        url: "https://one.supabase.co",
        serviceRoleKey: "service-role-key-of-one",
      });
      await platform.setLivekitCredentials(one.id, {
        url: "wss://one.livekit.cloud",
        apiKey: "APIone",
        apiSecret: "s3cr3t-one",
      });
      expect(await platform.getTenantDatabase(one.id)).toEqual({
        kind: "supabase",
        url: "https://one.supabase.co",
        serviceRoleKey: "service-role-key-of-one",
      });
      expect((await platform.getLivekitCredentials(one.id))?.apiSecret).toBe("s3cr3t-one");
      expect(await platform.getTenantDatabase(two.id)).toBeNull();
      expect((await platform.listClientSecrets(one.id)).map((s) => [s.field, s.keyId])).toEqual([
        ["database", "k1"],
        ["livekit", "k1"],
      ]);
      const schema = quoteIdent((platform as unknown as { schema: string }).schema);
      const raw = await target.sql.query<{ ciphertext: string }>(
        `select ciphertext from ${schema}.client_secrets where client_id = $1 order by field`,
        [one.id],
      );
      expect(
        raw.every((r) => !r.ciphertext.includes("s3cr3t") && !r.ciphertext.includes("service-role")),
      ).toBe(true);
      // Move one's sealed database secret to two: the AAD (client id + field) refuses it.
      await target.sql.query(
        `insert into ${schema}.client_secrets (client_id, field, key_id, ciphertext)
         select $2, field, key_id, ciphertext from ${schema}.client_secrets where client_id = $1 and field = 'database'`,
        [one.id, two.id],
      );
      expect(await codeOf(platform.getTenantDatabase(two.id))).toBe("SF_ERR_DECRYPT_FAILED");
      expect(
        await codeOf(platform.setTenantDatabase(randomUUID(), { kind: "postgres", url: "postgres://x/y" })),
      ).toBe("SF_ERR_TENANT_NOT_FOUND");
      expect(
        await codeOf(platform.setTenantDatabase(one.id, { kind: "postgres", url: "http://not-postgres" })),
      ).toBe("SF_ERR_INVALID_INPUT");
      expect(await platform.deleteClientSecret(one.id, "livekit")).toBe(true);
      expect(await platform.getLivekitCredentials(one.id)).toBeNull();
    });

    it("platform - API keys: shown once, stored as hash + prefix, verified, revoked, expired", async () => {
      const client = await platform.createClient({ slug: "acme", name: "Acme" });
      const { record, secret } = await platform.createApiKey({
        clientId: client.id,
        name: "wordpress",
        scopes: ["trigger"],
        siteUrl: "https://shop.example",
      });
      expect(secret).toMatch(/^sk_[A-Za-z0-9_-]{43}$/);
      expect(secret.startsWith(record.displayPrefix)).toBe(true);
      expect(record.displayPrefix).toHaveLength(11);
      const schema = quoteIdent((platform as unknown as { schema: string }).schema);
      const raw = await target.sql.query<Record<string, unknown>>(`select * from ${schema}.api_keys`);
      expect(JSON.stringify(raw)).not.toContain(secret);
      const verified = await platform.verifyApiKey(secret);
      expect(verified?.id).toBe(record.id);
      expect(verified?.siteUrl).toBe("https://shop.example");
      expect(verified?.lastUsedAt).not.toBeNull();
      expect(
        await platform.verifyApiKey(`${secret.slice(0, -1)}${secret.endsWith("A") ? "B" : "A"}`),
      ).toBeNull();
      expect(await platform.verifyApiKey("sk_short")).toBeNull();
      expect((await platform.listApiKeys(client.id)).map((k) => k.id)).toEqual([record.id]);
      await platform.revokeApiKey(record.id);
      expect(await platform.verifyApiKey(secret)).toBeNull();
      const expired = await platform.createApiKey({
        clientId: client.id,
        expiresAt: new Date(Date.now() - 1000),
      });
      expect(await platform.verifyApiKey(expired.secret)).toBeNull();
      expect(await codeOf(platform.revokeApiKey(randomUUID()))).toBe("SF_ERR_NOT_FOUND");
      await platform.deleteClient(client.id);
      const fresh = await platform.createClient({ slug: "acme", name: "Acme again" });
      expect(await platform.listApiKeys(fresh.id)).toEqual([]);
    });

    it("platform - the audit log keeps entries, newest first, with secret-named details redacted", async () => {
      const client = await platform.createClient({ slug: "acme", name: "Acme" });
      await platform.appendAudit({
        clientId: client.id,
        actor: "admin:1",
        action: "client.create",
        target: client.id,
      });
      await platform.appendAudit({
        clientId: client.id,
        actor: "admin:1",
        action: "secret.update",
        details: { field: "livekit", apiSecret: "do-not-store", nested: { serviceRoleKey: "nor-this" } },
      });
      await platform.appendAudit({ actor: "system", action: "keys.rotate" });
      const entries = await platform.listAudit({ clientId: client.id });
      expect(entries.map((e) => e.action)).toEqual(["secret.update", "client.create"]);
      expect(entries[0]?.details).toEqual({
        field: "livekit",
        apiSecret: "[REDACTED]",
        nested: { serviceRoleKey: "[REDACTED]" },
      });
      expect((await platform.listAudit({ limit: 1 })).map((e) => e.action)).toEqual(["keys.rotate"]);
      await platform.deleteClient(client.id);
      expect((await platform.listAudit()).length).toBe(3);
    });
  });
}
