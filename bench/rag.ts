/**
 * rag: the retrieval path of one agent turn, with the real components, on PGlite (pgvector) and
 * on a PostgreSQL server with pgvector when the bench can reach one; and the ingestion throughput
 * of the real ingestion job.
 *
 * Retrieval. A tenant database (`provisionTenantDatabase` + `openTenantStore`, vector required,
 * 1024 dimensions) is seeded with 50 000 chunks (2 000 with --quick) over N/50 documents assigned
 * to one agent, and a few hundred embedded user turns of one user. Texts are made from a
 * generated vocabulary; their vectors are the provider fixture's bag-of-words embeddings, so a
 * query has real neighbours (the chunk it was drawn from, and its document's other chunks). The
 * HNSW index on the chunks is dropped before the load and built after it (timed apart). Each
 * turn then, as the agent worker and the tenant actor do it: (1) embeds the user's words with the
 * real `HttpEmbeddingsClient` (from `resolveProviders`, provider siliconflow) against the
 * provider fixture at zero latency, (2) runs `matchDocuments` and
 * `matchConversationTranscriptsSecure` concurrently (as `#ragSearch` does), (3) assembles the
 * prompt context with `buildRagContext`. Interleaved with the turns, on the same database and
 * with the same query vectors, the bare `select * from match_documents(…)` is timed on the raw
 * SQL handle, so the ratio of the store path to the SQL itself comes from one run. PGlite is
 * one connection: the two RPCs of a turn queue behind each other there, so `rpc_transcripts`
 * includes the wait for `match_documents`, and the RPC step compares with both bare functions.
 *
 * Ingestion. The processes the RAG tests use (nats-server, actor host, agent worker, gateway)
 * with a PGlite tenant; the provider fixture answers each embeddings request after 20 ms;
 * Markdown documents of about 60 chunks are uploaded through `POST /api/v2/clients/{id}/documents`
 * and chunks/s is measured from the first upload until every document is `ready`.
 *
 * PGlite is 32-bit WebAssembly: vectors are generated per document, never all held at once, and
 * when a size does not fit its memory the bench measures a smaller one and says so.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  agentRagSettings,
  asUuid,
  createPostgresDatabase,
  generateMasterKey,
  openTenantStore,
  parseKeyringOptions,
  PgliteInstances,
  provisionTenantDatabase,
  quoteIdent,
  StoreErrorCodes,
} from "../actors/index.ts";
import type {
  AgentRecord,
  DocumentMatch,
  SqlDatabase,
  TenantDatabaseConfig,
  TenantStore,
  TranscriptMatch,
} from "../actors/index.ts";
import {
  buildRagContext,
  chunkDocument,
  providerSettingsForAgent,
  resolveProviders,
} from "../agent-worker/index.ts";
import type { EmbeddingsClient } from "../agent-worker/index.ts";
import { bagOfWordsEmbedding } from "../tests/fixtures/providers/bag_of_words.ts";
import { startProviderFixture } from "../tests/fixtures/providers/provider_fixture.ts";
import type { ProviderFixture } from "../tests/fixtures/providers/provider_fixture.ts";
import { defaultPlatformSchema } from "../tests/helpers/processes.ts";
import { sharedServices } from "../tests/helpers/services.ts";
import {
  api,
  listDocuments,
  pgliteTenant,
  ragAgent,
  SILICONFLOW_EMBEDDING,
  startRagStack,
  stopRagStack,
  uploadForm,
} from "../tests/rag/rag_stack.ts";
import type { RagStack } from "../tests/rag/rag_stack.ts";
import { percentile } from "./harness.ts";
import type { BenchOptions, BenchResult } from "./harness.ts";

const DIMENSION = 1024;
const CHUNKS_PER_DOCUMENT = 50;
const AGENT_SLUG = "bench";
const EXTERNAL_USER = "bench-user";
const TENANT_ID = "bench-rag";
const VOCABULARY_SIZE = 6000;
const TOPIC_WORDS = 12;
/** Words per seeded chunk (about 1 400 characters, like the chunker's 350-token chunks). */
const CHUNK_WORDS = 200;
/** Embedding latency of the fixture during ingestion (per embeddings response). */
const INGEST_EMBEDDING_LATENCY_MS = 20;
const INGEST_CHUNKS_PER_DOCUMENT = 60;
/** The worker's default `SF_WORKER_INGEST_SLOTS` (agent-worker/config.ts); the stack sets none. */
const INGEST_SLOTS = 2;

interface Sizes {
  /** Chunk counts to try on PGlite, largest first (a smaller one only if a larger one runs out of memory). */
  pgliteChunks: number[];
  postgresChunks: number;
  transcripts: number;
  warmup: number;
  turns: number;
  /** Queries for the HNSW-versus-exact recall check. */
  recallQueries: number;
  ingestDocuments: number;
  ingestTimeoutMs: number;
}

const FULL: Sizes = {
  pgliteChunks: [50_000, 35_000, 20_000],
  postgresChunks: 50_000,
  transcripts: 300,
  warmup: 20,
  turns: 300,
  recallQueries: 20,
  ingestDocuments: 40,
  ingestTimeoutMs: 15 * 60_000,
};

const QUICK: Sizes = {
  pgliteChunks: [2_000],
  postgresChunks: 2_000,
  transcripts: 100,
  warmup: 10,
  turns: 50,
  recallQueries: 5,
  ingestDocuments: 5,
  ingestTimeoutMs: 3 * 60_000,
};

const round = (n: number, digits = 2): number => Math.round(n * 10 ** digits) / 10 ** digits;

// ---- a deterministic corpus over a generated vocabulary -------------------------------------

/** mulberry32: a small seeded PRNG, so runs are comparable. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const pick = <T>(next: () => number, items: readonly T[]): T => items[Math.floor(next() * items.length)] as T;

/**
 * Made-up words of three syllables: letters only and never ending in `s`, so the fixture's
 * tokenizer keeps each one whole (it cuts a plural `s`).
 */
function makeVocabulary(size: number): string[] {
  const next = prng(7);
  const consonants = "bdfgklmnprtvz";
  const vowels = "aeiou";
  const words = new Set<string>();
  while (words.size < size) {
    let word = "";
    for (let s = 0; s < 3; s++) word += pick(next, [...consonants]) + pick(next, [...vowels]);
    if (next() < 0.5) word += pick(next, [..."lmnrt"]);
    words.add(word);
  }
  return [...words];
}

const VOCABULARY = makeVocabulary(VOCABULARY_SIZE);
/** Stop words (dropped by the embedding) that make the texts read like text. */
const GLUE = ["the", "of", "and", "to", "in", "with", "for", "is", "on", "as"];

/** The words a document is about; its chunks draw half their words from them. */
function topicWords(doc: number): string[] {
  const next = prng(1_000_003 * (doc + 1));
  return Array.from({ length: TOPIC_WORDS }, () => pick(next, VOCABULARY));
}

function sentences(words: readonly string[], next: () => number): string {
  const out: string[] = [];
  let sentence: string[] = [];
  for (const word of words) {
    sentence.push(word);
    if (next() < 0.3) sentence.push(pick(next, GLUE));
    if (sentence.length >= 12 + Math.floor(next() * 6)) {
      out.push(capitalise(sentence.join(" ")) + ".");
      sentence = [];
    }
  }
  if (sentence.length > 0) out.push(capitalise(sentence.join(" ")) + ".");
  return out.join(" ");
}

const capitalise = (s: string): string => s.charAt(0).toUpperCase() + s.slice(1);

interface SeedChunk {
  text: string;
  /** Its words that are not its document's topic words. */
  specific: string[];
}

/** Chunk `index` of document `doc`: half topic words, half words of its own. */
function seedChunk(doc: number, index: number): SeedChunk {
  const next = prng(doc * 100_003 + index + 17);
  const topic = topicWords(doc);
  const words: string[] = [];
  const specific: string[] = [];
  for (let i = 0; i < CHUNK_WORDS; i++) {
    if (next() < 0.5) words.push(pick(next, topic));
    else {
      const word = pick(next, VOCABULARY);
      words.push(word);
      specific.push(word);
    }
  }
  return { text: sentences(words, next), specific };
}

function documentTitle(doc: number): string {
  const [a = "", b = ""] = topicWords(doc);
  return `Handbook ${doc}: ${capitalise(a)} and ${capitalise(b)}`;
}

/** A question drawn from one chunk: three of its document's topic words and three of its own. */
function question(next: () => number, documents: number): { text: string; doc: number; index: number } {
  const doc = Math.floor(next() * documents);
  const index = Math.floor(next() * CHUNKS_PER_DOCUMENT);
  const topic = topicWords(doc);
  const { specific } = seedChunk(doc, index);
  const t = Array.from({ length: 3 }, () => pick(next, topic));
  const s = Array.from({ length: 3 }, () => pick(next, specific));
  return {
    text: `What is the ${t[0]} of the ${t[1]} and ${t[2]}, and where are ${s[0]}, ${s[1]} and ${s[2]}?`,
    doc,
    index,
  };
}

/** A Markdown document for the ingestion run, grown section by section to `targetChunks` chunks. */
function ingestDocument(k: number, targetChunks: number): { fileName: string; text: string } {
  const doc = 1_000_000 + k;
  const next = prng(doc);
  const topic = topicWords(doc);
  const parts = [`# Field notes ${k}: ${capitalise(topic[0] ?? "")} ${topic[1] ?? ""}`, ""];
  for (let section = 0; ; section++) {
    parts.push(`## ${capitalise(pick(next, topic))} ${pick(next, VOCABULARY)} ${section + 1}`, "");
    for (let p = 0; p < 3; p++) {
      const words = Array.from({ length: 70 }, () =>
        next() < 0.5 ? pick(next, topic) : pick(next, VOCABULARY),
      );
      parts.push(sentences(words, next), "");
    }
    const text = parts.join("\n");
    if (chunkDocument(text).length >= targetChunks) return { fileName: `field-notes-${k}.md`, text };
  }
}

// ---- statistics ------------------------------------------------------------------------------

interface Stats {
  p50_ms: number;
  p99_ms: number;
  mean_ms: number;
}

function stats(values: readonly number[]): Stats {
  const sorted = [...values].sort((a, b) => a - b);
  const mean = sorted.reduce((s, x) => s + x, 0) / Math.max(1, sorted.length);
  return {
    p50_ms: round(percentile(sorted, 50), 3),
    p99_ms: round(percentile(sorted, 99), 3),
    mean_ms: round(mean, 3),
  };
}

const mean = (values: readonly number[]): number =>
  values.reduce((s, x) => s + x, 0) / Math.max(1, values.length);

// ---- one database: seed, turns, bare SQL ------------------------------------------------------

interface DatabaseTarget {
  kind: "pglite" | "postgres";
  database: TenantDatabaseConfig;
  /** Schema of the tenant tables (quoted in the DDL and the bare query). */
  schema: string;
  pglite?: PgliteInstances;
  /** The raw SQL handle on the same database (index DDL, bare queries). */
  raw: SqlDatabase;
}

interface RetrievalReport {
  chunks: number;
  documents: number;
  transcripts: number;
  dimension: number;
  seed: {
    ms: number;
    chunks_per_s: number;
    /** Of `ms`, the time spent computing the fixture embeddings of the chunks in this process. */
    embedding_generation_ms: number;
    chunks_per_add_call: number;
    index: string;
    index_build_ms: number;
    maintenance_work_mem: string;
  };
  turns: {
    count: number;
    warmup: number;
    settings: { threshold: number; documents: number; transcripts: number; context_tokens: number };
    /** Per step; `share_pct` is the step's mean over the turn's mean. */
    steps: Record<string, Stats & { share_pct?: number }>;
  };
  bare: Record<string, Stats>;
  ratios: Record<string, number>;
  quality: Record<string, number>;
  plan: { uses_hnsw_index: boolean; text: string };
  rss_mib: number;
}

async function seed(
  target: DatabaseTarget,
  store: TenantStore,
  chunks: number,
  transcripts: number,
): Promise<{ agent: AgentRecord; documents: number; seed: RetrievalReport["seed"] }> {
  const agent = await store.createAgent({
    slug: AGENT_SLUG,
    name: "Bench",
    ragResultsLimit: 5,
    toolsConfig: { rag: { match_threshold: 0.2 } },
  });
  const table = `${quoteIdent(target.schema)}.document_chunks`;
  const indexName = "document_chunks_embeddings_hnsw_idx";
  // Bulk load without the index, then build it: much faster than growing the graph row by row.
  await target.raw.exec(`drop index if exists ${quoteIdent(target.schema)}.${quoteIdent(indexName)}`);

  const documents = Math.ceil(chunks / CHUNKS_PER_DOCUMENT);
  let generationMs = 0;
  const started = performance.now();
  for (let doc = 0; doc < documents; doc++) {
    const count = Math.min(CHUNKS_PER_DOCUMENT, chunks - doc * CHUNKS_PER_DOCUMENT);
    const title = documentTitle(doc);
    const record = await store.createDocument({
      title,
      fileName: `handbook-${doc}.md`,
      fileType: "markdown",
      status: "ready",
    });
    await store.assignDocument(agent.id, record.id);
    const g0 = performance.now();
    const batch = Array.from({ length: count }, (_, index) => {
      const { text } = seedChunk(doc, index);
      return {
        chunkIndex: index,
        content: text,
        embedding: bagOfWordsEmbedding(text, DIMENSION),
        documentTitle: title,
        chunkMetadata: { heading_path: [title] },
      };
    });
    generationMs += performance.now() - g0;
    await store.addChunks(record.id, batch);
  }
  const seedMs = performance.now() - started;

  // One user's past turns (appendTurn, then the embedding as the worker writes it afterwards).
  const userId = asUuid(`user:${TENANT_ID}`, EXTERNAL_USER);
  const next = prng(99);
  let conversationId = "";
  for (let i = 0; i < transcripts; i++) {
    if (i % 30 === 0) {
      conversationId = (await store.createConversation({ agentId: agent.id, userId, channel: "text" })).id;
    }
    const q = question(next, documents);
    const topic = topicWords(q.doc);
    const answer = `The ${topic.slice(0, 4).join(" and the ")} are covered in ${documentTitle(q.doc)}.`;
    const turn = await store.appendTurn({
      conversationId,
      agentId: agent.id,
      userId,
      userMessage: q.text,
      assistantMessage: answer,
      source: "text",
    });
    await store.setTranscriptEmbedding(turn.turnId, bagOfWordsEmbedding(q.text, DIMENSION));
  }

  // pgvector builds the graph in memory when it fits in maintenance_work_mem (and much more
  // slowly on disk when it does not). A transaction keeps the setting on one pooled connection.
  const maintenanceWorkMem = target.kind === "pglite" ? "512MB" : "1GB";
  const b0 = performance.now();
  await target.raw.transaction(async (tx) => {
    await tx.exec(`set local maintenance_work_mem = '${maintenanceWorkMem}'`);
    await tx.exec(
      `create index ${quoteIdent(indexName)} on ${table} using hnsw (embeddings vector_cosine_ops)`,
    );
  });
  const buildMs = performance.now() - b0;
  await target.raw.exec(`analyze ${table}`);
  return {
    agent,
    documents,
    seed: {
      ms: Math.round(seedMs),
      chunks_per_s: Math.round(chunks / (seedMs / 1000)),
      embedding_generation_ms: Math.round(generationMs),
      chunks_per_add_call: CHUNKS_PER_DOCUMENT,
      index: "HNSW (vector_cosine_ops) dropped before the load and built after it",
      index_build_ms: Math.round(buildMs),
      maintenance_work_mem: maintenanceWorkMem,
    },
  };
}

async function measureRetrieval(
  target: DatabaseTarget,
  sizes: Sizes,
  chunks: number,
  fixture: ProviderFixture,
): Promise<RetrievalReport> {
  const keyring = parseKeyringOptions({ keys: { bench: generateMasterKey() }, activeKeyId: "bench" });
  const pglite = target.pglite === undefined ? {} : { pglite: target.pglite };
  await provisionTenantDatabase({
    tenantId: TENANT_ID,
    database: target.database,
    vector: "required",
    embeddingDimension: DIMENSION,
    ...pglite,
  });
  const store = await openTenantStore({ tenantId: TENANT_ID, database: target.database, keyring, ...pglite });
  try {
    const seeded = await seed(target, store, chunks, sizes.transcripts);
    const rag = agentRagSettings(seeded.agent);
    const userId = asUuid(`user:${TENANT_ID}`, EXTERNAL_USER);

    // The worker's embeddings client for this tenant's settings and keys.
    const { embeddings } = resolveProviders(
      providerSettingsForAgent(seeded.agent, ["embeddings"] as const, { ...SILICONFLOW_EMBEDDING }),
      { siliconflow: fixture.keys.siliconflow },
      fixture.endpoints(),
    );

    const bareSql = `select * from ${quoteIdent(target.schema)}.match_documents($1::vector, $2, $3, $4)`;
    const bareTranscriptsSql = `select * from ${quoteIdent(target.schema)}.match_conversation_transcripts_secure($1::vector, $2, $3::uuid, $4)`;
    const samples = {
      embed: [] as number[],
      rpc: [] as number[],
      rpc_documents: [] as number[],
      rpc_transcripts: [] as number[],
      assemble: [] as number[],
      turn: [] as number[],
      bare_documents: [] as number[],
      bare_transcripts: [] as number[],
    };
    const quality = { documents: [] as number[], transcripts: [] as number[], tokens: [] as number[] };
    let sourceChunkFound = 0;
    let sourceDocumentFound = 0;
    const vectors: number[][] = [];
    const next = prng(4242);
    const total = sizes.warmup + sizes.turns;
    for (let i = 0; i < total; i++) {
      const recording = i >= sizes.warmup;
      const q = question(next, seeded.documents);

      const turn = async (): Promise<number[]> => {
        const t0 = performance.now();
        const embedding = await embedQuery(embeddings, q.text);
        const t1 = performance.now();
        const timed = async <T>(fn: () => Promise<T>): Promise<{ value: T; ms: number }> => {
          const s = performance.now();
          const value = await fn();
          return { value, ms: performance.now() - s };
        };
        const [documents, transcripts] = await Promise.all([
          timed(() =>
            store.matchDocuments({
              embedding,
              agentSlug: AGENT_SLUG,
              threshold: rag.matchThreshold,
              count: rag.documentCount,
            }),
          ),
          timed(() =>
            store.matchConversationTranscriptsSecure({
              embedding,
              agentSlug: AGENT_SLUG,
              userId,
              count: rag.transcriptCount,
            }),
          ),
        ]);
        const t2 = performance.now();
        // As the tenant actor answers rag-search: past turns below the threshold are left out.
        const turns: TranscriptMatch[] = transcripts.value.filter((t) => t.similarity >= rag.matchThreshold);
        const context = buildRagContext(documents.value, turns, rag.contextTokens);
        const t3 = performance.now();
        if (recording) {
          samples.embed.push(t1 - t0);
          samples.rpc.push(t2 - t1);
          samples.rpc_documents.push(documents.ms);
          samples.rpc_transcripts.push(transcripts.ms);
          samples.assemble.push(t3 - t2);
          samples.turn.push(t3 - t0);
          quality.documents.push(documents.value.length);
          quality.transcripts.push(context.transcripts);
          quality.tokens.push(context.tokens);
          const matches: DocumentMatch[] = documents.value;
          const expected = `${documentTitle(q.doc)}#${q.index}`;
          if (matches.some((m) => `${m.documentTitle ?? ""}#${m.chunkIndex}` === expected))
            sourceChunkFound++;
          if (matches.some((m) => m.documentTitle === documentTitle(q.doc))) sourceDocumentFound++;
        }
        return embedding;
      };

      const bare = async (embedding: number[]): Promise<void> => {
        const literal = `[${embedding.join(",")}]`;
        const b0 = performance.now();
        await target.raw.query(bareSql, [literal, AGENT_SLUG, rag.matchThreshold, rag.documentCount]);
        const b1 = performance.now();
        await target.raw.query(bareTranscriptsSql, [literal, AGENT_SLUG, userId, rag.transcriptCount]);
        const b2 = performance.now();
        if (recording) {
          samples.bare_documents.push(b1 - b0);
          samples.bare_transcripts.push(b2 - b1);
        }
      };

      // Alternate which path runs first, so neither always finds the pages the other just read.
      if (i % 2 === 0) {
        const embedding = await turn();
        await bare(embedding);
        vectors.push(embedding);
      } else {
        const embedding = await embedQuery(embeddings, q.text);
        await bare(embedding);
        await turn();
        vectors.push(embedding);
      }
    }

    const recall = await recallAgainstExact(target, vectors.slice(0, sizes.recallQueries), rag);
    const plan = await documentsPlan(target, vectors[0] ?? []);

    const turnMean = mean(samples.turn);
    const step = (values: number[]): Stats & { share_pct: number } => ({
      ...stats(values),
      share_pct: round((mean(values) / turnMean) * 100, 1),
    });
    const steps = {
      embed: step(samples.embed),
      rpc: step(samples.rpc),
      assemble: step(samples.assemble),
      turn: stats(samples.turn),
      rpc_documents: stats(samples.rpc_documents),
      rpc_transcripts: stats(samples.rpc_transcripts),
    };
    const bareDocuments = stats(samples.bare_documents);
    const bareTranscripts = stats(samples.bare_transcripts);
    return {
      chunks,
      documents: seeded.documents,
      transcripts: sizes.transcripts,
      dimension: DIMENSION,
      seed: seeded.seed,
      turns: {
        count: sizes.turns,
        warmup: sizes.warmup,
        settings: {
          threshold: rag.matchThreshold,
          documents: rag.documentCount,
          transcripts: rag.transcriptCount,
          context_tokens: rag.contextTokens,
        },
        steps,
      },
      bare: { match_documents: bareDocuments, match_conversation_transcripts_secure: bareTranscripts },
      ratios: {
        turn_p50_over_bare_match_documents_p50: round(steps.turn.p50_ms / bareDocuments.p50_ms),
        rpc_p50_over_bare_match_documents_p50: round(steps.rpc.p50_ms / bareDocuments.p50_ms),
        // PGlite runs one statement at a time, so the two RPCs of a turn run one after the other
        // there: the RPC step is best compared with both bare functions together.
        rpc_mean_over_bare_both_mean: round(
          steps.rpc.mean_ms / (bareDocuments.mean_ms + bareTranscripts.mean_ms),
        ),
        rpc_documents_p50_over_bare_match_documents_p50: round(
          steps.rpc_documents.p50_ms / bareDocuments.p50_ms,
        ),
      },
      quality: {
        mean_documents_returned: round(mean(quality.documents)),
        mean_past_turns_in_context: round(mean(quality.transcripts)),
        mean_context_tokens: Math.round(mean(quality.tokens)),
        source_chunk_in_results_pct: round((sourceChunkFound / sizes.turns) * 100, 1),
        source_document_in_results_pct: round((sourceDocumentFound / sizes.turns) * 100, 1),
        hnsw_recall_at_5_vs_exact: recall,
      },
      plan,
      rss_mib: Math.round(process.memoryUsage().rss / 2 ** 20),
    };
  } finally {
    await store.close();
  }
}

function embedQuery(client: EmbeddingsClient, text: string): Promise<number[]> {
  return client.embedOne(text, { target: "documents", role: "query" });
}

/** Share of the exact top-k (index scans off) that `match_documents` returns with the HNSW index. */
async function recallAgainstExact(
  target: DatabaseTarget,
  vectors: readonly number[][],
  rag: { documentCount: number },
): Promise<number> {
  const sql = `select id from ${quoteIdent(target.schema)}.match_documents($1::vector, $2, $3, $4)`;
  let hits = 0;
  let expected = 0;
  for (const v of vectors) {
    const params = [`[${v.join(",")}]`, AGENT_SLUG, -1, rag.documentCount];
    const approx = new Set((await target.raw.query<{ id: string }>(sql, params)).map((r) => r.id));
    const exact = await target.raw.transaction(async (tx) => {
      await tx.exec("set local enable_indexscan = off");
      return tx.query<{ id: string }>(sql, params);
    });
    expected += exact.length;
    hits += exact.filter((r) => approx.has(r.id)).length;
  }
  return round(hits / Math.max(1, expected), 3);
}

/**
 * The plan of the chunk scan inside match_documents, planned as the function plans it: with the
 * agent's actual document ids and query vector (an unnamed statement is planned with its values).
 */
async function documentsPlan(
  target: DatabaseTarget,
  vector: readonly number[],
): Promise<RetrievalReport["plan"]> {
  const s = quoteIdent(target.schema);
  const ids = await target.raw.query<{ ids: string[] }>(
    `select array_agg(ad.document_id) as ids from ${s}.agent_documents ad
     join ${s}.agents a on a.id = ad.agent_id where a.slug = $1 and ad.enabled`,
    [AGENT_SLUG],
  );
  const rows = await target.raw.query<{ "QUERY PLAN": string }>(
    `explain select dc.id from ${s}.document_chunks dc
     where dc.document_id = any ($2::uuid[]) and dc.embeddings is not null
     order by dc.embeddings <=> $1::vector limit 5`,
    [`[${vector.join(",")}]`, ids[0]?.ids ?? []],
  );
  const text = rows
    .map((r) => r["QUERY PLAN"])
    .join("\n")
    .replace(/'\[[^\]]*\]'/g, "'[query vector]'")
    .replace(/'\{[^}]*\}'/g, "'{agent's document ids}'");
  return { uses_hnsw_index: text.includes("document_chunks_embeddings_hnsw_idx"), text };
}

// ---- PGlite and PostgreSQL -------------------------------------------------------------------

interface PgliteSection extends Partial<RetrievalReport> {
  chunks: number;
  note?: string;
  attempts?: Array<{ chunks: number; error: string }>;
}

const OUT_OF_MEMORY =
  /out of memory|memory access out of bounds|Aborted\(|Cannot enlarge memory|allocation failed/i;

/** PGlite (or the query it ran) ran out of WebAssembly memory; the cause chain is searched too. */
function isOutOfMemory(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    if (e instanceof RangeError || OUT_OF_MEMORY.test(e.message)) return true;
  }
  return false;
}

async function runPglite(sizes: Sizes, fixture: ProviderFixture): Promise<PgliteSection> {
  const attempts: Array<{ chunks: number; error: string }> = [];
  for (const chunks of sizes.pgliteChunks) {
    const dir = await mkdtemp(join(tmpdir(), "sf-bench-rag-"));
    const pglite = new PgliteInstances();
    try {
      const raw = await pglite.acquire(dir);
      try {
        const report = await measureRetrieval(
          { kind: "pglite", database: { kind: "pglite", dataDir: dir }, schema: "public", pglite, raw },
          sizes,
          chunks,
          fixture,
        );
        const wanted = sizes.pgliteChunks[0] ?? chunks;
        return {
          ...report,
          ...(attempts.length === 0
            ? {}
            : {
                note: `${wanted} chunks did not fit PGlite's memory (32-bit WebAssembly); measured ${chunks}`,
                attempts,
              }),
        };
      } finally {
        await raw.close();
      }
    } catch (err) {
      if (!isOutOfMemory(err)) throw err;
      attempts.push({ chunks, error: err instanceof Error ? err.message : String(err) });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }
  return {
    chunks: 0,
    note: `no size of ${sizes.pgliteChunks.join(", ")} chunks fit PGlite's memory`,
    attempts,
  };
}

type PostgresSection = { skipped: string; url: string } | (RetrievalReport & { url: string });

function redactedUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password !== "") u.password = "***";
    return u.toString();
  } catch {
    return "(not a URL)";
  }
}

async function runPostgres(sizes: Sizes, fixture: ProviderFixture): Promise<PostgresSection> {
  const fromEnv = process.env["SF_BENCH_PG_URL"];
  let url: string;
  if (fromEnv !== undefined && fromEnv.trim() !== "") url = fromEnv.trim();
  else {
    try {
      url = sharedServices().databaseUrl;
    } catch (err) {
      return { skipped: `no PostgreSQL to reach: ${(err as Error).message}`, url: "" };
    }
  }
  const schema = `bench_rag_${process.pid}`;
  const raw = createPostgresDatabase({ connectionString: url, maxConnections: 2 });
  try {
    try {
      await raw.query("select 1");
    } catch (err) {
      return { skipped: `cannot connect: ${(err as Error).message}`, url: redactedUrl(url) };
    }
    try {
      const report = await measureRetrieval(
        { kind: "postgres", database: { kind: "postgres", url, schema }, schema, raw },
        sizes,
        sizes.postgresChunks,
        fixture,
      );
      return { ...report, url: redactedUrl(url) };
    } catch (err) {
      if ((err as { code?: unknown }).code === StoreErrorCodes.VECTOR_UNAVAILABLE) {
        return { skipped: (err as Error).message, url: redactedUrl(url) };
      }
      throw err;
    } finally {
      // Provisioning may have created the schema and the tables that need no pgvector.
      await raw.exec(`drop schema if exists ${quoteIdent(schema)} cascade`);
    }
  } finally {
    await raw.close();
  }
}

// ---- ingestion -------------------------------------------------------------------------------

interface IngestionSection {
  documents: number;
  ready: number;
  failed: number;
  chunks: number;
  seconds: number;
  chunks_per_s: number;
  documents_per_s: number;
  embedding_latency_ms: number;
  embedding_calls: number;
  embedding_batch_size_max: number;
  embedding_batch_size_mean: number;
  /** Lower bound of the time spent waiting on embeddings if the jobs ran one after another. */
  embedding_wait_s: number;
  ingest_slots: number;
  upload_ms: number;
  bytes: number;
}

async function runIngestion(sizes: Sizes): Promise<IngestionSection> {
  const files = Array.from({ length: sizes.ingestDocuments }, (_, k) =>
    ingestDocument(k, INGEST_CHUNKS_PER_DOCUMENT),
  );
  let stack: RagStack | undefined;
  try {
    stack = await startRagStack();
    const s = stack;
    const tenant = await pgliteTenant(s, `bench-rag-${s.server.port}`, [ragAgent("guide")]);
    s.fixture.reset();
    s.fixture.setLatency({ responseDelayMs: INGEST_EMBEDDING_LATENCY_MS });
    const encoder = new TextEncoder();
    let bytes = 0;
    const t0 = performance.now();
    for (const file of files) {
      const data = encoder.encode(file.text);
      bytes += data.byteLength;
      const res = await api(
        s,
        "POST",
        `/api/v2/clients/${tenant}/documents`,
        uploadForm({ fileName: file.fileName, contentType: "text/markdown", data }, { agent_slugs: "guide" }),
      );
      if (res.status !== 202) {
        throw new Error(
          `upload of ${file.fileName} answered ${res.status}: ${JSON.stringify(res.body)}\n${stackLogs(s)}`,
        );
      }
    }
    const uploadMs = performance.now() - t0;
    const deadline = t0 + sizes.ingestTimeoutMs;
    let docs = await listDocuments(s, tenant);
    for (;;) {
      const settled = docs.filter((d) => d.status === "ready" || d.status.startsWith("failed"));
      if (docs.length >= files.length && settled.length === docs.length) break;
      if (performance.now() > deadline) {
        throw new Error(
          `ingestion did not finish within ${sizes.ingestTimeoutMs} ms: ${settled.length}/${files.length} settled\n${stackLogs(s)}`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
      docs = await listDocuments(s, tenant);
    }
    const seconds = (performance.now() - t0) / 1000;
    const ready = docs.filter((d) => d.status === "ready");
    const chunks = ready.reduce((sum, d) => sum + d.chunk_count, 0);
    const calls = s.fixture.callsTo("siliconflow", "embeddings");
    const batchSizes = calls.map((c) => {
      const input = (c.body as { input?: unknown }).input;
      return Array.isArray(input) ? input.length : 1;
    });
    return {
      documents: files.length,
      ready: ready.length,
      failed: docs.length - ready.length,
      chunks,
      seconds: round(seconds),
      chunks_per_s: round(chunks / seconds, 1),
      documents_per_s: round(ready.length / seconds, 2),
      embedding_latency_ms: INGEST_EMBEDDING_LATENCY_MS,
      embedding_calls: calls.length,
      embedding_batch_size_max: Math.max(0, ...batchSizes),
      embedding_batch_size_mean: round(mean(batchSizes), 1),
      embedding_wait_s: round((calls.length * INGEST_EMBEDDING_LATENCY_MS) / 1000),
      ingest_slots: INGEST_SLOTS,
      upload_ms: Math.round(uploadMs),
      bytes,
    };
  } finally {
    await stopRagStack(stack);
    if (stack !== undefined) await removeStackState(stack);
  }
}

/** The last lines of the stack's processes, for an error that has to say what went wrong. */
function stackLogs(stack: RagStack): string {
  return [stack.gateway.proc, stack.host, stack.worker]
    .map((p) => `--- ${p.name} ---\n${p.tail(15)}`)
    .join("\n");
}

/**
 * What `stopRagStack` leaves behind (it stops nats-server gracefully and keeps its store): the
 * nats-server directory, and the platform schema the actor host created on the shared PostgreSQL.
 */
async function removeStackState(stack: RagStack): Promise<void> {
  const schema = defaultPlatformSchema(stack.server.url);
  try {
    await stack.server[Symbol.asyncDispose]();
  } finally {
    const db = createPostgresDatabase({ connectionString: sharedServices().databaseUrl, maxConnections: 1 });
    try {
      await db.exec(`drop schema if exists ${quoteIdent(schema)} cascade`);
    } finally {
      await db.close();
    }
  }
}

// ---- the bench -------------------------------------------------------------------------------

interface RagBenchResult extends BenchResult {
  pglite: PgliteSection;
  postgres: PostgresSection;
  ingestion: IngestionSection;
}

function retrievalRows(database: string, r: RetrievalReport): BenchResult["table"] {
  const rows: BenchResult["table"] = [];
  for (const [name, s] of Object.entries(r.turns.steps)) {
    rows.push({ database, step: name, ...s });
  }
  for (const [name, s] of Object.entries(r.bare)) rows.push({ database, step: `bare ${name}`, ...s });
  return rows;
}

function retrievalSummary(prefix: string, r: RetrievalReport): BenchResult["summary"] {
  const s = r.turns.steps;
  const out: BenchResult["summary"] = {
    [`${prefix}_chunks`]: r.chunks,
    [`${prefix}_seed_s`]: round(r.seed.ms / 1000, 1),
    [`${prefix}_seed_chunks_per_s`]: r.seed.chunks_per_s,
    [`${prefix}_index_build_s`]: round(r.seed.index_build_ms / 1000, 1),
    [`${prefix}_turns`]: r.turns.count,
  };
  for (const name of ["turn", "embed", "rpc", "assemble", "rpc_documents", "rpc_transcripts"] as const) {
    const step = s[name];
    if (step === undefined) continue;
    out[`${prefix}_${name}_p50_ms`] = step.p50_ms;
    out[`${prefix}_${name}_p99_ms`] = step.p99_ms;
    if (step.share_pct !== undefined) out[`${prefix}_${name}_share_pct`] = step.share_pct;
  }
  const bare = r.bare["match_documents"];
  if (bare !== undefined) {
    out[`${prefix}_match_documents_bare_p50_ms`] = bare.p50_ms;
    out[`${prefix}_match_documents_bare_p99_ms`] = bare.p99_ms;
  }
  out[`${prefix}_turn_over_bare_ratio`] = r.ratios["turn_p50_over_bare_match_documents_p50"] ?? Number.NaN;
  out[`${prefix}_rpc_over_bare_ratio`] = r.ratios["rpc_p50_over_bare_match_documents_p50"] ?? Number.NaN;
  out[`${prefix}_rpc_documents_over_bare_ratio`] =
    r.ratios["rpc_documents_p50_over_bare_match_documents_p50"] ?? Number.NaN;
  out[`${prefix}_rpc_over_bare_both_ratio`] = r.ratios["rpc_mean_over_bare_both_mean"] ?? Number.NaN;
  const bareTranscripts = r.bare["match_conversation_transcripts_secure"];
  if (bareTranscripts !== undefined) out[`${prefix}_transcripts_bare_p50_ms`] = bareTranscripts.p50_ms;
  out[`${prefix}_hnsw_recall_at_5`] = r.quality["hnsw_recall_at_5_vs_exact"] ?? Number.NaN;
  out[`${prefix}_rss_mib`] = r.rss_mib;
  return out;
}

const isRetrieval = (r: PgliteSection): r is PgliteSection & RetrievalReport => r.turns !== undefined;

export async function run(options: BenchOptions): Promise<RagBenchResult> {
  const sizes = options.quick === true ? QUICK : FULL;
  let pglite: PgliteSection;
  let postgres: PostgresSection;
  {
    await using fixture = await startProviderFixture();
    pglite = await runPglite(sizes, fixture);
    postgres = await runPostgres(sizes, fixture);
  }
  const ingestion = await runIngestion(sizes);

  const summary: BenchResult["summary"] = {};
  const table: BenchResult["table"] = [];
  if (isRetrieval(pglite)) {
    Object.assign(summary, retrievalSummary("pglite", pglite));
    table.push(...retrievalRows("pglite", pglite));
  } else summary["pglite_chunks"] = 0;
  if (pglite.note !== undefined) summary["pglite_note"] = pglite.note;
  if ("skipped" in postgres) summary["postgres_skipped"] = postgres.skipped;
  else {
    Object.assign(summary, retrievalSummary("postgres", postgres));
    table.push(...retrievalRows("postgres", postgres));
  }
  Object.assign(summary, {
    ingest_documents: ingestion.documents,
    ingest_chunks: ingestion.chunks,
    ingest_seconds: ingestion.seconds,
    ingest_chunks_per_s: ingestion.chunks_per_s,
    ingest_embedding_latency_ms: ingestion.embedding_latency_ms,
    ingest_embedding_calls: ingestion.embedding_calls,
    ingest_embedding_batch_size: ingestion.embedding_batch_size_max,
    ingest_failed: ingestion.failed,
  });
  table.push({
    database: "pglite (actor host)",
    step: "ingestion (upload → ready)",
    documents: ingestion.documents,
    chunks: ingestion.chunks,
    seconds: ingestion.seconds,
    chunks_per_s: ingestion.chunks_per_s,
  });
  return { summary, table, pglite, postgres, ingestion };
}

export default run;
