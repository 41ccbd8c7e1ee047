// RAG metrics: retrieval and a document ingestion job run against the provider fixture (embeddings)
// and a stand-in tenant actor on a test NATS server (it answers rag-search, ingest-context,
// document-progress and document-chunks), with metrics on a registry of the test's own:
// sf_rag_step_seconds{step}, sf_ingest_chunks_total, sf_ingest_documents_total{outcome}, and the
// provider calls behind them.
import { connect } from "@nats-io/transport-node";
import type { NatsConnection, Subscription } from "@nats-io/transport-node";
import { pino } from "pino";
import { Registry } from "prom-client";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { AgentRecord, IngestJob } from "../../actors/index.ts";
import {
  chunkDocument,
  createProviderMetrics,
  createRagMetrics,
  ingestJobHandler,
  retrieve,
} from "../../agent-worker/index.ts";
import type { JobContext, ProviderClientOptions, RagMetrics } from "../../agent-worker/index.ts";
import { createSubjects, encodeOkReply, readRequest } from "../../bus/index.ts";
import { startProviderFixture } from "../fixtures/providers/provider_fixture.ts";
import type { ProviderFixture } from "../fixtures/providers/provider_fixture.ts";
import { NatsTestServer } from "../helpers/nats_server.ts";

const TENANT = "rag-metrics";
const subjects = createSubjects({ prefix: "ragm", partitions: 16 });
const embedding = { provider: "siliconflow", dimension: 1024 };
const log = pino({ level: "silent" });

let fixture: ProviderFixture;
let server: NatsTestServer;
let nc: NatsConnection;
let registry: Registry;
let ragMetrics: RagMetrics;
let providerOptions: ProviderClientOptions;
const subs: Subscription[] = [];

beforeAll(async () => {
  fixture = await startProviderFixture();
  server = await NatsTestServer.start();
  nc = await connect({ servers: server.url });
});
afterAll(async () => {
  await nc?.close();
  await server?.[Symbol.asyncDispose]();
  await fixture?.close();
});
beforeEach(() => {
  for (const sub of subs.splice(0)) sub.unsubscribe();
  fixture.reset();
  registry = new Registry();
  ragMetrics = createRagMetrics(registry);
  providerOptions = { metrics: createProviderMetrics(registry) };
});

/** A stand-in tenant actor: each op answers what `ops[op]` returns for the request body. */
async function tenantActor(ops: Record<string, (body: Record<string, unknown>) => unknown>): Promise<void> {
  for (const [op, answer] of Object.entries(ops)) {
    subs.push(
      nc.subscribe(subjects.tenantOp(TENANT, op), {
        callback: (_err, msg) => {
          const { body } = readRequest(msg);
          const reply = encodeOkReply(answer(body as Record<string, unknown>));
          msg.respond(reply.data, { headers: reply.headers });
        },
      }),
    );
  }
  await nc.flush();
}

async function sample(name: string, labels: Record<string, string> = {}): Promise<number> {
  let total = 0;
  for (const metric of await registry.getMetricsAsJSON()) {
    for (const value of metric.values) {
      if (((value as { metricName?: string }).metricName ?? metric.name) !== name) continue;
      if (Object.entries(labels).every(([k, v]) => String(value.labels[k]) === v)) total += value.value;
    }
  }
  return total;
}

function agent(): AgentRecord {
  return {
    id: "agent-1",
    slug: "guide",
    name: "Guide",
    description: null,
    systemPrompt: null,
    agentImage: null,
    voiceSettings: { llm_provider: "groq" },
    webhooks: {},
    toolsConfig: { rag: { match_threshold: 0.2 } },
    enabled: true,
    showCitations: true,
    ragResultsLimit: 4,
    model: null,
    contextRetentionMinutes: null,
    maxContextMessages: null,
    textChatEnabled: true,
    voiceChatEnabled: false,
    createdAt: null,
    updatedAt: null,
  };
}

function jobContext(finalAttempt = false): JobContext {
  return {
    workerId: "w-rag-metrics",
    delivery: 1,
    finalAttempt,
    signal: new AbortController().signal,
    event: () => Promise.resolve(),
  };
}

const DOCUMENT = [
  "# Returns",
  "Damaged parcels are refunded within fourteen days of the claim. Keep the packaging until the claim is settled.",
  "## Exchanges",
  "Exchanges are free for unused items returned within thirty days, with the receipt or the order number.",
].join("\n\n");

function documentJob(generation = 1): IngestJob {
  return {
    jobId: `ingest-${generation}`,
    tenant: TENANT,
    mode: "ingest",
    kind: "document",
    documentId: "doc-1",
    generation,
    fileType: "markdown",
    title: "Returns",
    sourceUrl: null,
    createdAt: Date.now(),
  };
}

describe("rag metrics", () => {
  it("rag metrics - retrieval reports embed, search, assemble and total, and its embedding call", async () => {
    await tenantActor({
      "rag-search": () => ({
        documents: [],
        transcripts: [],
        timings: { documents_ms: 1, transcripts_ms: 1 },
      }),
    });
    const found = await retrieve(
      {
        tenant: TENANT,
        agent: agent(),
        rag: { embedding, documents: 3 },
        providerKeys: { ...fixture.keys },
        query: "How long do refunds take?",
        userId: "user-1",
      },
      { nc, subjects, endpoints: fixture.endpoints(), providerOptions, metrics: ragMetrics },
    );
    expect(found).not.toBeNull();

    for (const step of ["embed", "search", "assemble", "total"]) {
      expect(await sample("sf_rag_step_seconds_count", { step }), step).toBe(1);
    }
    const total = await sample("sf_rag_step_seconds_sum", { step: "total" });
    const parts =
      (await sample("sf_rag_step_seconds_sum", { step: "embed" })) +
      (await sample("sf_rag_step_seconds_sum", { step: "search" })) +
      (await sample("sf_rag_step_seconds_sum", { step: "assemble" }));
    expect(total).toBeGreaterThanOrEqual(parts * 0.99);
    expect(total * 1000).toBeCloseTo(found?.timings.total_ms ?? -1, 6);
    expect(
      await sample("sf_provider_request_duration_seconds_count", {
        provider: "siliconflow",
        kind: "embeddings",
        outcome: "ok",
      }),
    ).toBe(1);
  });

  it("rag metrics - an ingested document counts its chunks and one ready document", async () => {
    const progress: string[] = [];
    let written = 0;
    await tenantActor({
      "ingest-context": () => ({
        current: true,
        embedding,
        fingerprint: {
          provider: "siliconflow",
          document_model: "m",
          conversation_model: "m",
          dimension: 1024,
        },
        provider_keys: { ...fixture.keys },
        content: DOCUMENT,
      }),
      "document-progress": (body) => {
        progress.push(String(body["status"]));
        return {};
      },
      "document-chunks": (body) => {
        written += (body["chunks"] as unknown[]).length;
        return {};
      },
    });
    const handler = ingestJobHandler({
      nc,
      subjects,
      log,
      endpoints: fixture.endpoints(),
      providerOptions,
      metrics: ragMetrics,
      batchSize: 1,
    });
    await handler(documentJob(), jobContext());

    const chunks = chunkDocument(DOCUMENT).length;
    expect(chunks).toBeGreaterThan(0);
    expect(progress.at(-1)).toBe("ready");
    expect(written).toBe(chunks);
    expect(await sample("sf_ingest_chunks_total")).toBe(chunks);
    expect(await sample("sf_ingest_documents_total", { outcome: "ready" })).toBe(1);
    expect(await sample("sf_ingest_documents_total")).toBe(1);
    expect(
      await sample("sf_provider_request_duration_seconds_count", { provider: "siliconflow", outcome: "ok" }),
    ).toBe(chunks);
  });

  it("rag metrics - a document whose embeddings fail is counted failed, with the provider's errors; a stale one superseded", async () => {
    let current = true;
    await tenantActor({
      "ingest-context": () => ({
        current,
        embedding,
        fingerprint: {
          provider: "siliconflow",
          document_model: "m",
          conversation_model: "m",
          dimension: 1024,
        },
        provider_keys: { ...fixture.keys },
        content: DOCUMENT,
      }),
      "document-progress": () => ({}),
      "document-chunks": () => ({}),
    });
    fixture.addFault({ provider: "siliconflow", kind: "embeddings", fault: { type: "server_error" } });
    const handler = ingestJobHandler({
      nc,
      subjects,
      log,
      endpoints: fixture.endpoints(),
      providerOptions,
      metrics: ragMetrics,
      retry: { maxAttempts: 2, baseDelayMs: 1 },
    });
    await handler(documentJob(2), jobContext());
    expect(await sample("sf_ingest_documents_total", { outcome: "failed" })).toBe(1);
    expect(await sample("sf_ingest_chunks_total")).toBe(0);
    expect(
      await sample("sf_provider_errors_total", {
        provider: "siliconflow",
        kind: "embeddings",
        code: "SF_ERR_PROVIDER_UNAVAILABLE",
      }),
    ).toBe(2);

    current = false;
    await handler(documentJob(3), jobContext());
    expect(await sample("sf_ingest_documents_total", { outcome: "superseded" })).toBe(1);
    expect(await sample("sf_ingest_documents_total")).toBe(2);
  });
});
