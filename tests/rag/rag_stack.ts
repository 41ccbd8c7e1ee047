/**
 * The whole RAG path for tests: nats-server, provider fixture, actor host, agent worker and
 * gateway processes, and tenants whose databases are PGlite directories (pgvector). A tenant's
 * database is set up by the test (agents, provider keys) and closed before the actor host opens
 * it: from then on the test reaches it only through the platform, as clients do.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect } from "@nats-io/transport-node";
import type { NatsConnection } from "@nats-io/transport-node";
import { openTenantStore, provisionTenantDatabase } from "../../actors/index.ts";
import type {
  AgentInput,
  ChatFrame,
  ClientSettings,
  DocumentView,
  PlatformStore,
  TenantDatabaseConfig,
  TriggerReply,
} from "../../actors/index.ts";
import { createSubjects, decodeBody, requestReply } from "../../bus/index.ts";
import type { Subjects } from "../../bus/index.ts";
import { startProviderFixture } from "../fixtures/providers/provider_fixture.ts";
import type { ProviderFixture } from "../fixtures/providers/provider_fixture.ts";
import type { CorpusFile } from "../fixtures/documents/corpus.ts";
import { spawnGateway } from "../helpers/gateway_process.ts";
import type { GatewayProcess } from "../helpers/gateway_process.ts";
import { waitFor } from "../helpers/deadline.ts";
import { NatsTestServer } from "../helpers/nats_server.ts";
import { spawnActorHost, testKeyring } from "../helpers/processes.ts";
import type { TestProcess } from "../helpers/processes.ts";
import { openTestPlatform, spawnWorker } from "../helpers/stack.ts";

export const P = 8;
export const ADMIN = "rag-admin-token-for-tests-0123456789";

export const SILICONFLOW_EMBEDDING = {
  provider: "siliconflow",
  document_model: "Qwen/Qwen3-Embedding-0.6B",
  dimension: 1024,
} as const;

export interface RagStack {
  server: NatsTestServer;
  fixture: ProviderFixture;
  host: TestProcess;
  worker: TestProcess;
  gateway: GatewayProcess;
  platform: PlatformStore;
  nc: NatsConnection;
  subjects: Subjects;
  dirs: string[];
}

export async function startRagStack(): Promise<RagStack> {
  const server = await NatsTestServer.start();
  const fixture = await startProviderFixture();
  const host = await spawnActorHost({ natsUrl: server.url, hostId: "rag-h1", partitions: P });
  const worker = await spawnWorker({
    natsUrl: server.url,
    partitions: P,
    workerId: "rag-w1",
    endpoints: fixture.endpoints(),
  });
  const gateway = await spawnGateway({
    natsUrl: server.url,
    partitions: P,
    maxBodyBytes: 64 * 1024,
    extraEnv: { SF_ADMIN_TOKEN: ADMIN, SF_GATEWAY_REQUEST_TIMEOUT_MS: "20000" },
  });
  const platform = await openTestPlatform(server.url);
  const nc = await connect({ servers: server.url });
  return {
    server,
    fixture,
    host,
    worker,
    gateway,
    platform,
    nc,
    subjects: createSubjects({ partitions: P }),
    dirs: [],
  };
}

export async function stopRagStack(stack: RagStack | undefined): Promise<void> {
  if (stack === undefined) return;
  await stack.nc.close();
  await stack.platform.close();
  await stack.gateway.proc.kill();
  await stack.worker.kill();
  await stack.host.kill();
  await stack.fixture.close();
  await stack.server[Symbol.asyncDispose]();
  for (const dir of stack.dirs) await rm(dir, { recursive: true, force: true });
}

/** A tenant on a fresh PGlite database with `agents`, keys for groq and siliconflow. */
export async function pgliteTenant(
  stack: RagStack,
  slug: string,
  agents: AgentInput[],
  settings: ClientSettings = { embedding: { ...SILICONFLOW_EMBEDDING } },
): Promise<string> {
  const client = await stack.platform.createClient({ slug, name: slug, settings });
  const dir = await mkdtemp(join(tmpdir(), "sf-rag-"));
  stack.dirs.push(dir);
  const database: TenantDatabaseConfig = { kind: "pglite", dataDir: dir };
  await provisionTenantDatabase({ tenantId: client.id, database, vector: "required" });
  const store = await openTenantStore({ tenantId: client.id, database, keyring: testKeyring() });
  try {
    for (const agent of agents) await store.createAgent(agent);
    await store.setProviderKey("groq", stack.fixture.keys.groq);
    await store.setProviderKey("siliconflow", stack.fixture.keys.siliconflow);
  } finally {
    await store.close();
  }
  await stack.platform.setTenantDatabase(client.id, database);
  return client.id;
}

export function ragAgent(slug: string, extra: Partial<AgentInput> = {}): AgentInput {
  return {
    slug,
    name: `Agent ${slug}`,
    systemPrompt: "You answer questions about the customer's documents.",
    voiceSettings: { llm_provider: "groq", llm_model: "llama-3.3-70b-versatile" },
    ragResultsLimit: 4,
    toolsConfig: { rag: { match_threshold: 0.2 } },
    ...extra,
  };
}

export async function api(
  stack: RagStack,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: Record<string, unknown> }> {
  const init: RequestInit = {
    method,
    headers: {
      authorization: `Bearer ${ADMIN}`,
      ...(body === undefined || body instanceof FormData ? {} : { "content-type": "application/json" }),
      ...headers,
    },
  };
  if (body !== undefined) init.body = body instanceof FormData ? body : JSON.stringify(body);
  const res = await fetch(`${stack.gateway.base}${path}`, init);
  const text = await res.text();
  return { status: res.status, body: text === "" ? {} : (JSON.parse(text) as Record<string, unknown>) };
}

export function uploadForm(
  file: Pick<CorpusFile, "fileName" | "contentType" | "data">,
  fields: Record<string, string> = {},
): FormData {
  const form = new FormData();
  form.append("file", new Blob([file.data], { type: file.contentType }), file.fileName);
  for (const [k, v] of Object.entries(fields)) form.append(k, v);
  return form;
}

export async function listDocuments(stack: RagStack, tenant: string): Promise<DocumentView[]> {
  const res = await api(stack, "GET", `/api/v2/clients/${tenant}/documents?limit=500`);
  if (res.status !== 200)
    throw new Error(`listing documents answered ${res.status}: ${JSON.stringify(res.body)}`);
  return res.body["documents"] as DocumentView[];
}

/** Waits until every listed document has left `queued`/`extracting`/`embedding …`. */
export function settledDocuments(
  stack: RagStack,
  tenant: string,
  count: number,
  timeoutMs = 120_000,
): Promise<DocumentView[]> {
  return waitFor(
    `${count} documents settled`,
    async () => {
      const docs = await listDocuments(stack, tenant);
      const settled = docs.filter((d) => d.status === "ready" || d.status.startsWith("failed"));
      return docs.length >= count && settled.length === docs.length ? docs : undefined;
    },
    { timeoutMs, intervalMs: 200 },
  );
}

export interface TextTurn {
  reply: TriggerReply;
  final: Extract<ChatFrame, { type: "message" | "error" }>;
}

/** A text turn through the tenant actor; resolves with the final frame (message or error). */
export async function askText(
  stack: RagStack,
  tenant: string,
  agent: string,
  user: string,
  message: string,
  conversationId?: string,
): Promise<TextTurn> {
  const session = `rag-${Math.random().toString(36).slice(2, 10)}`;
  const frames: ChatFrame[] = [];
  const sub = stack.nc.subscribe(stack.subjects.chatOut(session), {
    callback: (_e, m) => {
      frames.push(decodeBody(m.data) as ChatFrame);
    },
  });
  try {
    await stack.nc.flush();
    const { body: reply } = await requestReply<TriggerReply>(
      stack.nc,
      stack.subjects.tenantOp(tenant, "trigger"),
      {
        agent_slug: agent,
        mode: "text",
        user_id: user,
        message,
        session_id: session,
        ...(conversationId === undefined ? {} : { conversation_id: conversationId }),
      },
      { tenant, timeoutMs: 20_000 },
    );
    const final = await waitFor(
      "the turn's final frame",
      () =>
        frames.find(
          (f): f is Extract<ChatFrame, { type: "message" | "error" }> =>
            (f.type === "message" || f.type === "error") && f.job_id === reply.job_id,
        ),
      { timeoutMs: 30_000 },
    );
    return { reply, final };
  } finally {
    sub.unsubscribe();
  }
}
