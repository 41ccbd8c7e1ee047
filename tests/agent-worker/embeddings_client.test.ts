// The embeddings client against the provider fixture: each provider's request format, batching
// in input order, the dimension check, retries on 429, and the bag-of-words similarity the RAG
// tests rely on.
import { describe, expect, it } from "vitest";
import { AgentWorkerErrorCodes, resolveProviders, withProviderRetry } from "../../agent-worker/index.ts";
import type { EmbeddingSettings, EmbeddingsClient } from "../../agent-worker/index.ts";
import { StoreErrorCodes } from "../../actors/index.ts";
import { bagOfWordsEmbedding, cosine } from "../fixtures/providers/bag_of_words.ts";
import type { ProviderFixture } from "../fixtures/providers/provider_fixture.ts";
import { rejection } from "./provider_test_kit.ts";
import { useProviderFixture } from "../helpers/provider_fixture_hooks.ts";

let fixture: ProviderFixture;

useProviderFixture((f) => (fixture = f));

function embeddings(settings: EmbeddingSettings): EmbeddingsClient {
  return resolveProviders(
    { kinds: ["embeddings"], embedding: settings },
    { ...fixture.keys },
    fixture.endpoints(),
  ).embeddings;
}

const texts = (n: number): string[] =>
  Array.from({ length: n }, (_, i) => `chunk number ${i} about topic t${i}`);

describe("embeddings client", () => {
  it("embeddings - SiliconFlow: OpenAI body with dimensions, batches of 32, vectors in input order", async () => {
    const client = embeddings({ provider: "siliconflow", dimension: 1024 });
    const input = texts(70);
    const vectors = await client.embed(input);
    expect(vectors).toHaveLength(70);
    vectors.forEach((v, i) => expect(v).toEqual(bagOfWordsEmbedding(input[i] ?? "", 1024)));
    const calls = fixture.callsTo("siliconflow", "embeddings");
    expect(calls.map((c) => c.path)).toEqual(["/v1/embeddings", "/v1/embeddings", "/v1/embeddings"]);
    expect(calls.map((c) => (c.body as { input: string[] }).input.length)).toEqual([32, 32, 6]);
    expect(calls[0]?.body).toMatchObject({
      model: "Qwen/Qwen3-Embedding-0.6B",
      dimensions: 1024,
      encoding_format: "float",
    });
    expect(fixture.violations).toEqual([]);
  });

  it("embeddings - items answered out of order are put back by their index", async () => {
    fixture.shuffleEmbeddings = true;
    const client = embeddings({ provider: "siliconflow" });
    const input = ["alpha parcel", "bravo invoice", "charlie refund"];
    const vectors = await client.embed(input);
    vectors.forEach((v, i) => expect(v).toEqual(bagOfWordsEmbedding(input[i] ?? "", 1024)));
  });

  it("embeddings - Jina: task follows the role, dimensions sent, embedding_type float", async () => {
    const client = embeddings({ provider: "jina", dimension: 512 });
    const [query] = await client.embed(["where is my parcel"], { role: "query" });
    await client.embed(["Parcels ship in two days."]);
    expect(query).toHaveLength(512);
    const bodies = fixture.callsTo("jina", "embeddings").map((c) => c.body);
    expect(bodies[0]).toMatchObject({
      model: "jina-embeddings-v3",
      task: "retrieval.query",
      dimensions: 512,
      embedding_type: "float",
    });
    expect(bodies[1]).toMatchObject({ task: "retrieval.passage" });
    expect(bodies[0]).not.toHaveProperty("encoding_format");
  });

  it("embeddings - OpenAI and Novita: models per target, dimensions only where the model takes them", async () => {
    const openai = embeddings({
      provider: "openai",
      document_model: "text-embedding-3-large",
      conversation_model: "text-embedding-3-small",
      dimension: 1024,
    });
    await openai.embedOne("refund policy", { target: "documents" });
    await openai.embedOne("refund policy", { target: "conversations" });
    expect(fixture.callsTo("openai").map((c) => c.body)).toMatchObject([
      { model: "text-embedding-3-large", dimensions: 1024 },
      { model: "text-embedding-3-small", dimensions: 1024 },
    ]);
    const novita = embeddings({ provider: "novita", document_model: "baai/bge-m3", dimension: 1024 });
    expect(await novita.embedOne("hello")).toHaveLength(1024);
    const [call] = fixture.callsTo("novita");
    expect(call?.path).toBe("/openai/v1/embeddings");
    expect(call?.body).not.toHaveProperty("dimensions");
  });

  it("embeddings - a vector of another dimension is EMBEDDING_DIMENSION_MISMATCH", async () => {
    fixture.addFault({
      provider: "siliconflow",
      kind: "embeddings",
      fault: { type: "wrong_dimension", dimension: 768 },
    });
    const err = await rejection(
      embeddings({ provider: "siliconflow" }).embed(["a text"]),
      StoreErrorCodes.EMBEDDING_DIMENSION_MISMATCH,
    );
    expect(err.details).toMatchObject({ provider: "siliconflow", expected: 1024, received: 768 });
    expect(err.retryable).toBe(false);
  });

  it("embeddings - 429 twice then success, through withProviderRetry", async () => {
    fixture.addFault({
      provider: "siliconflow",
      times: 2,
      fault: { type: "rate_limit", retryAfterSeconds: 0 },
    });
    const client = embeddings({ provider: "siliconflow" });
    const first = await rejection(client.embed(["x"]), AgentWorkerErrorCodes.PROVIDER_RATE_LIMITED);
    expect(first.details).toMatchObject({ status: 429, retryAfterMs: 0 });
    const retries: number[] = [];
    const vectors = await withProviderRetry(() => client.embed(["hello world"]), {
      onRetry: ({ attempt }) => retries.push(attempt),
    });
    expect(vectors).toHaveLength(1);
    expect(retries).toEqual([1]);
    expect(fixture.callsTo("siliconflow").map((c) => c.status)).toEqual([429, 429, 200]);
  });

  it("embeddings - persistent 500 stays UNAVAILABLE after the retries", async () => {
    fixture.addFault({ provider: "siliconflow", fault: { type: "server_error" } });
    const client = embeddings({ provider: "siliconflow" });
    const err = await rejection(
      withProviderRetry(() => client.embed(["x"]), { maxAttempts: 3, baseDelayMs: 5 }),
      AgentWorkerErrorCodes.PROVIDER_UNAVAILABLE,
    );
    expect(err.retryable).toBe(true);
    expect(fixture.callsTo("siliconflow")).toHaveLength(3);
  });

  it("embeddings - a refused key is AUTH and is not retried", async () => {
    const { embeddings: client } = resolveProviders(
      { kinds: ["embeddings"], embedding: { provider: "jina" } },
      { jina: "jina_wrong_1234567890" },
      fixture.endpoints(),
    );
    await rejection(
      withProviderRetry(() => client.embed(["x"])),
      AgentWorkerErrorCodes.PROVIDER_AUTH,
    );
    expect(fixture.callsTo("jina")).toHaveLength(1);
  });

  it("embeddings - a slow provider hits the request deadline (TIMEOUT)", async () => {
    fixture.addFault({ provider: "siliconflow", times: 1, fault: { type: "slow_response", delayMs: 1_000 } });
    const { embeddings: client } = resolveProviders(
      { kinds: ["embeddings"], embedding: { provider: "siliconflow" } },
      { ...fixture.keys },
      fixture.endpoints(),
      { requestTimeoutMs: 100 },
    );
    const err = await rejection(client.embed(["x"]), AgentWorkerErrorCodes.PROVIDER_TIMEOUT);
    expect(err.details).toMatchObject({ phase: "request", timeoutMs: 100 });
  });

  it("embeddings - texts sharing words are closer than unrelated texts (fixture vectors)", async () => {
    const client = embeddings({ provider: "siliconflow" });
    const [query, related, paraphrase, unrelated] = await client.embed(
      [
        "How long do refunds for damaged parcels take?",
        "Refunds for damaged parcels are paid within fourteen days.",
        "A damaged parcel gets its refund in two weeks.",
        "Our office dog is called Biscuit and enjoys walks.",
      ],
      { role: "query" },
    );
    if (!query || !related || !paraphrase || !unrelated) throw new Error("missing vectors");
    for (const v of [query, related, unrelated]) expect(Math.hypot(...v)).toBeCloseTo(1, 6);
    const relatedSim = cosine(query, related);
    const paraphraseSim = cosine(query, paraphrase);
    const unrelatedSim = cosine(query, unrelated);
    expect(relatedSim).toBeGreaterThan(0.5);
    expect(paraphraseSim).toBeGreaterThan(unrelatedSim + 0.2);
    expect(Math.abs(unrelatedSim)).toBeLessThan(0.2);
    expect(cosine(query, query)).toBeCloseTo(1, 6);
  });
});
