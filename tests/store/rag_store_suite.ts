// What RAG ingestion and retrieval need from a tenant store (document updates, idempotent chunk
// writes, transcript (re-)embedding, resetting the embeddings), run against every adapter: the
// SQL ones from store_suite.ts, the Supabase one from supabase_contract.test.ts.
import { describe, expect, it } from "vitest";
import { randomUUID } from "node:crypto";
import type { TenantStore } from "./api.ts";
import { codeOf, vec } from "./harness.ts";

const USER_A = "00000000-0000-4000-8000-00000000000a";
const USER_B = "00000000-0000-4000-8000-00000000000b";

export interface RagStoreTarget {
  readonly name: string;
  /** Embedding columns and the RPC functions exist. */
  readonly vector: boolean;
  /** A store on a fresh, provisioned tenant database with `dimension`-d vectors (default 1024). */
  open(dimension?: number): Promise<TenantStore>;
}

export function defineRagStoreSuite(target: RagStoreTarget): void {
  describe(`RAG store operations on ${target.name}`, () => {
    it("documents - updateDocument changes only the given fields, replaces metadata, refuses an unknown id", async () => {
      const store = await target.open();
      const doc = await store.createDocument({
        title: "Manual",
        fileName: "m.pdf",
        fileType: "pdf",
        content: "raw text",
        metadata: { source: "upload", pages: 3 },
      });
      const ready = await store.updateDocument(doc.id, { status: "ready", metadata: { version: 2 } });
      expect(ready).toEqual({ ...doc, status: "ready", metadata: { version: 2 } });
      expect(await store.getDocument(doc.id)).toEqual(ready);
      const cleared = await store.updateDocument(doc.id, {
        title: "Manual v2",
        content: null,
        fileName: null,
        fileType: "txt",
      });
      expect(cleared).toEqual({
        ...ready,
        title: "Manual v2",
        content: null,
        fileName: null,
        fileType: "txt",
      });
      expect(await store.updateDocument(doc.id, {})).toEqual(cleared);
      expect(await codeOf(store.updateDocument(randomUUID(), { status: "ready" }))).toBe("SF_ERR_NOT_FOUND");
      expect(await codeOf(store.updateDocument(randomUUID(), {}))).toBe("SF_ERR_NOT_FOUND");
      expect(
        await codeOf(store.updateDocument(doc.id, { metadata: [] as unknown as Record<string, unknown> })),
      ).toBe("SF_ERR_INVALID_INPUT");
    });

    it("chunks - upsertChunks replaces by chunk_index and is idempotent; deleteChunksFrom trims; chunk_count follows", async () => {
      const store = await target.open();
      const doc = await store.createDocument({ title: "Manual" });
      const other = await store.createDocument({ title: "Other" });
      await store.addChunks(other.id, [{ chunkIndex: 0, content: "other 0" }]);
      await store.addChunks(
        doc.id,
        [0, 1, 2].map((i) => ({ chunkIndex: i, content: `part ${i}`, chunkMetadata: { v: 1 } })),
      );
      const replacement = [
        {
          chunkIndex: 1,
          content: "part 1 v2",
          chunkMetadata: { v: 2 },
          documentTitle: "Manual (p. 2)",
          documentSourceUrl: "https://docs.example/manual#2",
        },
        { chunkIndex: 3, content: "part 3" },
      ];
      expect(await store.upsertChunks(doc.id, replacement)).toBe(2);
      expect(await store.upsertChunks(doc.id, replacement)).toBe(2);
      const chunks = await store.listChunks(doc.id);
      expect(chunks.map((c) => [c.chunkIndex, c.content])).toEqual([
        [0, "part 0"],
        [1, "part 1 v2"],
        [2, "part 2"],
        [3, "part 3"],
      ]);
      expect(chunks[1]).toMatchObject({
        chunkMetadata: { v: 2 },
        documentTitle: "Manual (p. 2)",
        documentSourceUrl: "https://docs.example/manual#2",
      });
      expect((await store.getDocument(doc.id)).chunkCount).toBe(4);

      // Re-ingested with more chunks than fit one batch of the adapters, then with fewer.
      const many = Array.from({ length: 120 }, (_, i) => ({ chunkIndex: i, content: `new ${i}` }));
      expect(await store.upsertChunks(doc.id, many)).toBe(120);
      expect((await store.getDocument(doc.id)).chunkCount).toBe(120);
      expect(await store.deleteChunksFrom(doc.id, 12)).toBe(108);
      expect(await store.deleteChunksFrom(doc.id, 12)).toBe(0);
      expect((await store.listChunks(doc.id)).map((c) => c.content)).toEqual(
        Array.from({ length: 12 }, (_, i) => `new ${i}`),
      );
      expect((await store.getDocument(doc.id)).chunkCount).toBe(12);
      expect(await store.upsertChunks(doc.id, [])).toBe(0);
      expect((await store.getDocument(doc.id)).chunkCount).toBe(12);
      // The other document is untouched.
      expect((await store.listChunks(other.id)).map((c) => c.content)).toEqual(["other 0"]);
      expect((await store.getDocument(other.id)).chunkCount).toBe(1);

      expect(await codeOf(store.upsertChunks(randomUUID(), [{ chunkIndex: 0, content: "x" }]))).toBe(
        "SF_ERR_NOT_FOUND",
      );
      expect(await codeOf(store.deleteChunksFrom(randomUUID(), 0))).toBe("SF_ERR_NOT_FOUND");
      expect(
        await codeOf(
          store.upsertChunks(doc.id, [
            { chunkIndex: 0, content: "a" },
            { chunkIndex: 0, content: "b" },
          ]),
        ),
      ).toBe("SF_ERR_INVALID_INPUT");
      expect(await codeOf(store.upsertChunks(doc.id, [{ chunkIndex: -1, content: "a" }]))).toBe(
        "SF_ERR_INVALID_INPUT",
      );
      expect(await codeOf(store.deleteChunksFrom(doc.id, -1))).toBe("SF_ERR_INVALID_INPUT");
      expect((await store.getDocument(doc.id)).chunkCount).toBe(12);
    });

    it("transcripts - listTranscriptsForEmbedding pages through every user row by id", async () => {
      const store = await target.open();
      const agent = await store.createAgent({ slug: "a", name: "A" });
      const one = await store.createConversation({ agentId: agent.id, userId: USER_A });
      const two = await store.createConversation({ agentId: agent.id, userId: USER_B });
      const turns = new Map<string, string>();
      for (let i = 0; i < 5; i++) {
        const turn = await store.appendTurn({
          conversationId: i % 2 === 0 ? one.id : two.id,
          agentId: agent.id,
          userId: i % 2 === 0 ? USER_A : USER_B,
          userMessage: `question ${i}`,
          assistantMessage: `answer ${i}`,
        });
        turns.set(turn.user.id, turn.turnId);
      }
      const seen: Array<{ id: string; turnId: string | null; content: string }> = [];
      let afterId: string | undefined;
      for (;;) {
        const page = await store.listTranscriptsForEmbedding({
          limit: 2,
          ...(afterId === undefined ? {} : { afterId }),
        });
        expect(page.length).toBeLessThanOrEqual(2);
        if (page.length === 0) break;
        seen.push(...page);
        afterId = page[page.length - 1]?.id;
      }
      expect(seen).toHaveLength(5);
      const ids = seen.map((r) => r.id);
      expect(ids).toEqual([...ids].sort());
      expect(new Set(ids)).toEqual(new Set(turns.keys()));
      for (const row of seen) expect(row.turnId).toBe(turns.get(row.id));
      expect(seen.map((r) => r.content).sort()).toEqual([0, 1, 2, 3, 4].map((i) => `question ${i}`));
      expect(await store.listTranscriptsForEmbedding({ limit: 0 })).toEqual([]);
    });

    if (target.vector) {
      it("vector - setTranscriptEmbedding writes the turn's user row, which match_conversation_transcripts_secure then finds", async () => {
        const store = await target.open();
        const agent = await store.createAgent({ slug: "a", name: "A" });
        const conversation = await store.createConversation({ agentId: agent.id, userId: USER_A });
        const turn = await store.appendTurn({
          conversationId: conversation.id,
          agentId: agent.id,
          userId: USER_A,
          userMessage: "where is my order",
          assistantMessage: "it shipped",
        });
        const search = { embedding: vec(2), agentSlug: "a", userId: USER_A };
        expect(await store.matchConversationTranscriptsSecure(search)).toEqual([]);
        expect(await store.setTranscriptEmbedding(turn.turnId, vec(2))).toBe(true);
        const matches = await store.matchConversationTranscriptsSecure(search);
        expect(matches.map((m) => [m.userMessage, m.agentResponse])).toEqual([
          ["where is my order", "it shipped"],
        ]);
        expect(matches[0]?.similarity).toBeCloseTo(1, 6);
        expect(await store.setTranscriptEmbedding(randomUUID(), vec(2))).toBe(false);
        expect(await codeOf(store.setTranscriptEmbedding(turn.turnId, vec(2, 0, 8)))).toBe(
          "SF_ERR_EMBEDDING_DIMENSION_MISMATCH",
        );
        expect(await codeOf(store.setTranscriptEmbedding("not-a-turn", vec(2)))).toBe("SF_ERR_INVALID_INPUT");
      });

      it("vector - upsertChunks replaces a chunk's embedding: the search finds the new content only", async () => {
        const store = await target.open();
        const agent = await store.createAgent({ slug: "a", name: "A" });
        const doc = await store.createDocument({ title: "D" });
        await store.assignDocument(agent.id, doc.id);
        await store.upsertChunks(doc.id, [{ chunkIndex: 0, content: "old", embedding: vec(0) }]);
        expect(
          (await store.matchDocuments({ embedding: vec(0), agentSlug: "a" })).map((m) => m.content),
        ).toEqual(["old"]);
        await store.upsertChunks(doc.id, [{ chunkIndex: 0, content: "new", embedding: vec(5) }]);
        const matches = await store.matchDocuments({ embedding: vec(5), agentSlug: "a", count: 8 });
        expect(matches.map((m) => [m.content, m.chunkIndex])).toEqual([["new", 0]]);
        expect(matches[0]?.similarity).toBeCloseTo(1, 6);
        expect(
          await codeOf(
            store.upsertChunks(doc.id, [{ chunkIndex: 0, content: "c", embedding: vec(0, 0, 8) }]),
          ),
        ).toBe("SF_ERR_EMBEDDING_DIMENSION_MISMATCH");
        expect((await store.listChunks(doc.id)).map((c) => c.content)).toEqual(["new"]);
      });

      it("vector - resetEmbeddings with the current dimension nulls every chunk and transcript embedding, rows stay", async () => {
        const store = await target.open(8);
        const agent = await store.createAgent({ slug: "a", name: "A" });
        const doc = await store.createDocument({ title: "D" });
        await store.assignDocument(agent.id, doc.id);
        await store.addChunks(doc.id, [
          { chunkIndex: 0, content: "c0", embedding: vec(0, 0, 8) },
          { chunkIndex: 1, content: "c1", embedding: vec(1, 0, 8) },
        ]);
        const conversation = await store.createConversation({ agentId: agent.id, userId: USER_A });
        const turn = await store.appendTurn({
          conversationId: conversation.id,
          agentId: agent.id,
          userId: USER_A,
          userMessage: "q",
          assistantMessage: "a",
          embedding: vec(0, 0, 8),
        });
        const docs = { embedding: vec(0, 0, 8), agentSlug: "a", count: 8 };
        const memories = { embedding: vec(0, 0, 8), agentSlug: "a", userId: USER_A };
        expect(await store.matchDocuments(docs)).toHaveLength(2);
        expect(await store.matchConversationTranscriptsSecure(memories)).toHaveLength(1);

        await store.resetEmbeddings(8);
        expect(store.capabilities.embeddingDimension).toBe(8);
        expect(await store.matchDocuments(docs)).toEqual([]);
        expect(await store.matchConversationTranscriptsSecure(memories)).toEqual([]);
        expect((await store.listChunks(doc.id)).map((c) => c.content)).toEqual(["c0", "c1"]);
        expect((await store.getDocument(doc.id)).chunkCount).toBe(2);
        expect((await store.listTranscripts(conversation.id)).map((t) => t.content)).toEqual(["q", "a"]);

        // Re-embedding fills them again.
        await store.upsertChunks(doc.id, [{ chunkIndex: 1, content: "c1", embedding: vec(1, 0, 8) }]);
        expect(await store.setTranscriptEmbedding(turn.turnId, vec(0, 0, 8))).toBe(true);
        expect((await store.matchDocuments(docs)).map((m) => m.content)).toEqual(["c1"]);
        expect(await store.matchConversationTranscriptsSecure(memories)).toHaveLength(1);

        expect(await codeOf(store.resetEmbeddings(0))).toBe("SF_ERR_INVALID_OPTIONS");
        expect(await codeOf(store.resetEmbeddings(4096))).toBe("SF_ERR_INVALID_OPTIONS");
      });
    }
  });
}
