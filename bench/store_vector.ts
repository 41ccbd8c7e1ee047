/**
 * store-vector: `match_documents` on the embedded PGlite store with 20k chunks of 1024
 * dimensions (2k with --quick): p50/p99 of top-8 queries through the RPC with the HNSW cosine
 * index versus a sequential scan (`enable_indexscan = off`), plus the time to insert the chunks
 * (through `TenantStore.addChunks`, without an index) and to build the index, and the recall@8
 * of HNSW against the exact scan. PGlite is 32-bit WebAssembly: vectors are generated per batch,
 * never all held at once.
 */
import {
  generateMasterKey,
  openTenantStore,
  parseKeyringOptions,
  PgliteInstances,
  provisionTenantDatabase,
} from "../actors/index.ts";
import { percentile } from "./harness.ts";
import type { BenchOptions, BenchResult } from "./harness.ts";

const DIMENSION = 1024;
const TOP_K = 8;
const BATCH = 200;

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

function randomUnitVector(next: () => number): number[] {
  const v = Array.from({ length: DIMENSION }, () => next() * 2 - 1);
  const norm = Math.sqrt(v.reduce((s, x) => s + x * x, 0));
  return v.map((x) => Number((x / norm).toFixed(6)));
}

const round = (n: number, digits = 2): number => Math.round(n * 10 ** digits) / 10 ** digits;

export async function run(options: BenchOptions): Promise<BenchResult> {
  const quick = options.quick === true;
  const chunks = quick ? 2_000 : 20_000;
  const queries = quick ? 20 : 100;
  const pglite = new PgliteInstances();
  const location = "memory://store-vector-bench";
  const hold = await pglite.acquire(location);
  try {
    const database = { kind: "pglite" as const, dataDir: location, schema: "bench" };
    const keyring = parseKeyringOptions({ keys: { bench: generateMasterKey() }, activeKeyId: "bench" });
    await provisionTenantDatabase({ tenantId: "bench", database, pglite, embeddingDimension: DIMENSION });
    const store = await openTenantStore({ tenantId: "bench", database, keyring, pglite });
    // Insert without the index, then build it: the two figures the issue asks for.
    await hold.exec("drop index bench.document_chunks_embeddings_hnsw_idx");
    const agent = await store.createAgent({ slug: "bench", name: "Bench" });
    const doc = await store.createDocument({ title: "Bench corpus" });
    await store.assignDocument(agent.id, doc.id);

    const next = prng(42);
    const insertStart = performance.now();
    for (let start = 0; start < chunks; start += BATCH) {
      const batch = Array.from({ length: Math.min(BATCH, chunks - start) }, (_, i) => ({
        chunkIndex: start + i,
        content: `chunk ${start + i}`,
        embedding: randomUnitVector(next),
      }));
      await store.addChunks(doc.id, batch);
    }
    const insertMs = performance.now() - insertStart;

    await hold.exec("set maintenance_work_mem = '256MB'");
    const buildStart = performance.now();
    await hold.exec(
      "create index document_chunks_embeddings_hnsw_idx on bench.document_chunks using hnsw (embeddings vector_cosine_ops)",
    );
    const buildMs = performance.now() - buildStart;
    await hold.exec("analyze bench.document_chunks");

    const queryVectors = Array.from({ length: queries }, () => randomUnitVector(next));
    const measure = async (): Promise<{ latencies: number[]; ids: string[][] }> => {
      const latencies: number[] = [];
      const ids: string[][] = [];
      // One warm-up query, not recorded.
      await store.matchDocuments({
        embedding: queryVectors[0] ?? [],
        agentSlug: "bench",
        count: TOP_K,
        threshold: -1,
      });
      for (const q of queryVectors) {
        const t0 = performance.now();
        const rows = await store.matchDocuments({
          embedding: q,
          agentSlug: "bench",
          count: TOP_K,
          threshold: -1,
        });
        latencies.push(performance.now() - t0);
        ids.push(rows.map((r) => r.id));
      }
      latencies.sort((a, b) => a - b);
      return { latencies, ids };
    };

    const plan = async (): Promise<string> => {
      const rows = await hold.query<{ "QUERY PLAN": string }>(
        `explain select id from bench.document_chunks order by embeddings <=> $1::text::vector limit ${TOP_K}`,
        [`[${(queryVectors[0] ?? []).join(",")}]`],
      );
      return rows
        .map((r) => r["QUERY PLAN"])
        .join("\n")
        .replace(/'\[[^\]]*\]'/g, "'[query vector]'");
    };

    const hnswPlan = await plan();
    const hnsw = await measure();
    await hold.exec("set enable_indexscan = off");
    const seqPlan = await plan();
    const seq = await measure();
    await hold.exec("reset enable_indexscan");

    let hits = 0;
    for (const [i, exact] of seq.ids.entries()) {
      const approx = new Set(hnsw.ids[i] ?? []);
      hits += exact.filter((id) => approx.has(id)).length;
    }
    const recall =
      hits /
      Math.max(
        1,
        seq.ids.reduce((s, r) => s + r.length, 0),
      );
    await store.close();

    const stats = (l: number[]) => ({
      p50_ms: round(percentile(l, 50)),
      p99_ms: round(percentile(l, 99)),
      mean_ms: round(l.reduce((s, x) => s + x, 0) / Math.max(1, l.length)),
    });
    const h = stats(hnsw.latencies);
    const s = stats(seq.latencies);
    return {
      summary: {
        chunks,
        dimension: DIMENSION,
        queries,
        top_k: TOP_K,
        insert_ms: Math.round(insertMs),
        insert_chunks_per_s: Math.round(chunks / (insertMs / 1000)),
        index_build_ms: Math.round(buildMs),
        hnsw_p50_ms: h.p50_ms,
        hnsw_p99_ms: h.p99_ms,
        seqscan_p50_ms: s.p50_ms,
        seqscan_p99_ms: s.p99_ms,
        speedup_p50: round(s.p50_ms / h.p50_ms, 1),
        hnsw_recall_at_8: round(recall, 3),
        rss_mib: Math.round(process.memoryUsage().rss / 2 ** 20),
      },
      table: [
        { mode: "hnsw (match_documents RPC)", queries, ...h },
        { mode: "seqscan (enable_indexscan=off)", queries, ...s },
      ],
      details: {
        hnsw_plan_uses_index: hnswPlan.includes("document_chunks_embeddings_hnsw_idx"),
        seqscan_plan_uses_index: seqPlan.includes("document_chunks_embeddings_hnsw_idx"),
        hnsw_plan: hnswPlan,
        seqscan_plan: seqPlan,
      },
    };
  } finally {
    await hold.close();
  }
}

export default run;
