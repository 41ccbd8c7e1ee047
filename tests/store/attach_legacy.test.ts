// Attach: a tenant database built by the old service (its schema and rows, no migrations table)
// is provisioned and opened without migrating its data. PGlite only: the legacy schema has
// vector columns, and the native PostgreSQL of deploy/services.sh has no pgvector.
import { afterAll, describe, expect, it } from "vitest";
import { readFile } from "node:fs/promises";
import { openTenantStore, provisionTenantDatabase, quoteIdent } from "./api.ts";
import { codeOf, pgliteTarget, testKeyring, vec } from "./harness.ts";

const target = await pgliteTarget();
afterAll(() => target.close());

const LEGACY_SQL = await readFile(new URL("./fixtures/legacy_tenant_schema.sql", import.meta.url), "utf8");
const AGENT_ID = "11111111-1111-4111-8111-111111111111";
const USER_ID = "44444444-4444-4444-8444-444444444444";

describe("attach an existing tenant database of the old service (PGlite, pgvector)", () => {
  it("attach - the old schema with rows is readable after provisioning; both RPCs answer; nothing is renamed or dropped", async () => {
    const fresh = await target.freshSchema("legacy");
    try {
      const s = quoteIdent(fresh.schema);
      await target.sql.transaction(async (tx) => {
        await tx.exec(`create schema ${s}; set local search_path to ${s}, public`);
        await tx.exec(LEGACY_SQL);
      });
      const columnsBefore = await columns(fresh.schema);
      const functionsBefore = await functionSources(fresh.schema);
      const countsBefore = await counts(fresh.schema);

      const report = await provisionTenantDatabase({
        tenantId: "legacy-tenant",
        database: fresh.database,
        pglite: target.pglite,
      });
      expect(report.kind).toBe("pglite");
      if (report.kind === "supabase") throw new Error("unexpected");
      expect(report.applied).toEqual(["0001_supabase_roles", "0002_tenant_core", "0003_tenant_vectors"]);
      expect(report.embeddingDimension).toBe(1024);

      // Nothing renamed or dropped, the functions are the old ones, the rows are all there.
      const columnsAfter = await columns(fresh.schema);
      for (const c of columnsBefore) expect(columnsAfter).toContain(c);
      expect(await functionSources(fresh.schema)).toEqual(functionsBefore);
      expect(await counts(fresh.schema)).toEqual(countsBefore);
      // Our additions are there.
      expect(columnsAfter).toContain("provider_keys.ciphertext");
      expect(columnsAfter).toContain("agents.updated_at");

      // Provisioning again is a no-op.
      const again = await provisionTenantDatabase({
        tenantId: "legacy-tenant",
        database: fresh.database,
        pglite: target.pglite,
      });
      if (again.kind === "supabase") throw new Error("unexpected");
      expect(again.applied).toEqual([]);

      const store = await openTenantStore({
        tenantId: "legacy-tenant",
        database: fresh.database,
        keyring: testKeyring(),
        pglite: target.pglite,
      });
      try {
        const agent = await store.getAgent("legacy-bot");
        expect(agent.id).toBe(AGENT_ID);
        expect(agent.voiceSettings.llm_provider).toBe("groq");
        expect(agent.ragResultsLimit).toBe(3);
        expect(agent.textChatEnabled).toBe(true);
        const transcripts = await store.listTranscripts("33333333-3333-4333-8333-333333333333");
        expect(transcripts.map((t) => [t.role, t.content, t.turnId])).toEqual([
          ["user", "where is my order", "55555555-5555-4555-8555-555555555555"],
          ["assistant", "it shipped", "55555555-5555-4555-8555-555555555555"],
        ]);
        const docs = await store.listDocuments();
        expect(docs.map((d) => [d.title, d.chunkCount])).toEqual([["Old Handbook", 2]]);
        expect((await store.listChunks(docs[0]?.id ?? "")).map((c) => c.content)).toEqual([
          "returns policy",
          "shipping policy",
        ]);
        const matches = await store.matchDocuments({
          embedding: vec(0, 0.5),
          agentSlug: "legacy-bot",
          threshold: 0.1,
        });
        expect(matches.map((m) => m.content)).toEqual(["returns policy", "shipping policy"]);
        expect(matches[0]?.sourceUrl).toBe("https://old/1");
        expect(matches[0]?.similarity).toBeCloseTo(1 / Math.sqrt(1.25), 6);
        const memories = await store.matchConversationTranscriptsSecure({
          embedding: vec(2),
          agentSlug: "legacy-bot",
          userId: USER_ID,
        });
        expect(memories.map((m) => [m.userMessage, m.agentResponse])).toEqual([
          ["where is my order", "it shipped"],
        ]);
        // New writes land next to the old rows.
        const turn = await store.appendTurn({
          conversationId: "33333333-3333-4333-8333-333333333333",
          agentId: AGENT_ID,
          userId: USER_ID,
          userMessage: "thanks",
          assistantMessage: "you're welcome",
        });
        expect(turn.user.sequence).toBe(3);
        await store.setProviderKey("groq", "gsk_x");
        expect(await store.getProviderKey("groq")).toBe("gsk_x");

        // Re-ingestion and re-embedding on the old schema: no unique key on (document_id,
        // chunk_index), an ivfflat index, functions declared with vector(1024) parameters.
        const docId = docs[0]?.id ?? "";
        expect(
          await store.upsertChunks(docId, [
            { chunkIndex: 1, content: "shipping policy v2", embedding: vec(1) },
          ]),
        ).toBe(1);
        expect((await store.listChunks(docId)).map((c) => c.content)).toEqual([
          "returns policy",
          "shipping policy v2",
        ]);
        await store.resetEmbeddings(8);
        expect(store.capabilities.embeddingDimension).toBe(8);
        await store.upsertChunks(docId, [
          { chunkIndex: 0, content: "returns policy", embedding: vec(0, 0, 8) },
          { chunkIndex: 1, content: "shipping policy v2", embedding: vec(1, 0, 8) },
        ]);
        expect((await store.getDocument(docId)).chunkCount).toBe(2);
        expect(await store.setTranscriptEmbedding("55555555-5555-4555-8555-555555555555", vec(2, 0, 8))).toBe(
          true,
        );
        expect(
          (
            await store.matchDocuments({ embedding: vec(0, 0, 8), agentSlug: "legacy-bot", threshold: 0.1 })
          ).map((m) => m.content),
        ).toEqual(["returns policy"]);
        expect(
          (
            await store.matchConversationTranscriptsSecure({
              embedding: vec(2, 0, 8),
              agentSlug: "legacy-bot",
              userId: USER_ID,
            })
          ).map((m) => m.userMessage),
        ).toEqual(["where is my order"]);
        expect(await codeOf(store.matchDocuments({ embedding: vec(0), agentSlug: "legacy-bot" }))).toBe(
          "SF_ERR_EMBEDDING_DIMENSION_MISMATCH",
        );
      } finally {
        await store.close();
      }
    } finally {
      await fresh.drop();
    }
  });
});

async function columns(schema: string): Promise<string[]> {
  const rows = await target.sql.query<{ c: string }>(
    `select table_name || '.' || column_name as c from information_schema.columns where table_schema = $1 order by 1`,
    [schema],
  );
  return rows.map((r) => r.c);
}

async function functionSources(schema: string): Promise<Record<string, string>> {
  const rows = await target.sql.query<{ proname: string; src: string }>(
    `select p.proname, pg_get_functiondef(p.oid) as src from pg_proc p join pg_namespace n on n.oid = p.pronamespace
     where n.nspname = $1 order by 1`,
    [schema],
  );
  return Object.fromEntries(rows.map((r) => [r.proname, r.src]));
}

async function counts(schema: string): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const t of [
    "agents",
    "conversations",
    "conversation_transcripts",
    "documents",
    "document_chunks",
    "agent_documents",
  ]) {
    const rows = await target.sql.query<{ n: number }>(
      `select count(*)::int as n from ${quoteIdent(schema)}.${t}`,
    );
    out[t] = rows[0]?.n ?? -1;
  }
  return out;
}
