/**
 * The deployment the cross-tenant attack suite runs against: nats-server, the provider fixture,
 * an actor host, an agent worker and a gateway (admin token, JWT secret, a global CORS origin),
 * and two tenants, A and B, each with a PGlite tenant database (pgvector), agents, provider keys,
 * LiveKit credentials, API keys, documents and conversations, and its own CORS origin.
 *
 * Each tenant carries markers: strings that exist only in its own data (an agent's system prompt
 * and name, a document's text, a user's chat message, the client's name, a provider key). An
 * answer to tenant A's credentials that holds a marker of B is a leak.
 *
 * `snapshot()` reads both tenant databases and the platform's rows for both clients, every row as
 * PostgreSQL prints it: equal snapshots mean byte-for-byte unchanged data. PGlite has one owner,
 * so the actor host is stopped for the read and started again.
 */
import { randomBytes, randomUUID } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PGlite } from "@electric-sql/pglite";
import { vector } from "@electric-sql/pglite/vector";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import type { NatsConnection } from "@nats-io/transport-node";
import pg from "pg";
import { openTenantStore, provisionTenantDatabase } from "../../actors/index.ts";
import type { AgentInput, PlatformStore } from "../../actors/index.ts";
import { createSubjects } from "../../bus/index.ts";
import type { Subjects } from "../../bus/index.ts";
import { startProviderFixture } from "../fixtures/providers/provider_fixture.ts";
import type { ProviderFixture } from "../fixtures/providers/provider_fixture.ts";
import { waitFor } from "../helpers/deadline.ts";
import { spawnGateway } from "../helpers/gateway_process.ts";
import type { GatewayProcess } from "../helpers/gateway_process.ts";
import { NatsTestServer } from "../helpers/nats_server.ts";
import { defaultPlatformSchema, spawnActorHost, testKeyring } from "../helpers/processes.ts";
import type { TestProcess } from "../helpers/processes.ts";
import { registerSecret } from "../helpers/secret_registry.ts";
import { sharedServices } from "../helpers/services.ts";
import { openTestPlatform, spawnWorker } from "../helpers/stack.ts";
import { tenantClient } from "../helpers/tenant_client.ts";

export const P = 8;
export const A_ORIGIN = "https://shop-a.example";
export const B_ORIGIN = "https://shop-b.example";
export const GLOBAL_ORIGIN = "https://console.example";
export const STRANGER_ORIGIN = "https://evil.example";
/** The agent slug both tenants have (each its own agent). */
export const SHARED_SLUG = "concierge";

const EMBEDDING = { provider: "siliconflow", document_model: "Qwen/Qwen3-Embedding-0.6B", dimension: 1024 };

export interface Res {
  status: number;
  headers: Headers;
  text: string;
  body: Record<string, unknown>;
}

export interface CallOptions {
  /** `Authorization` value. */
  auth?: string;
  headers?: Record<string, string>;
  /** JSON (or a string sent as is, or FormData). */
  body?: unknown;
  /** Don't follow redirects (the default: console answers are checked as they are). */
  signal?: AbortSignal;
}

export interface TenantWorld {
  label: "A" | "B";
  id: string;
  slug: string;
  name: string;
  dir: string;
  /** This tenant's own agent (the other tenant has no agent of this slug). */
  ownSlug: string;
  /** `*` scopes. */
  key: string;
  keyId: string;
  /** A key that was revoked. */
  revokedKey: string;
  revokedKeyId: string;
  userId: string;
  /** A second user of the tenant, whose conversation no other user's prompt may show. */
  otherUserId: string;
  origin: string;
  /** Strings that exist only in this tenant's data. */
  markers: {
    clientName: string;
    agentName: string;
    systemPrompt: string;
    document: string;
    chat: string;
    otherUserChat: string;
    providerKey: string;
  };
  documentId: string;
  /** The document that tries to pull other users' transcripts into the prompt. */
  injectionDocumentId: string;
  conversationId: string;
  /** The other user's conversation. */
  otherConversationId: string;
  jobId: string;
  sessionId: string;
  /** A LiveKit room this tenant's voice session holds. */
  roomName: string;
}

export interface Snapshot {
  /** `<table>` → rows as PostgreSQL prints them, sorted. */
  a: Record<string, string[]>;
  b: Record<string, string[]>;
  /** `<table>` → the platform's rows of client A (resp. B). */
  platformA: Record<string, string[]>;
  platformB: Record<string, string[]>;
}

export class AttackStack {
  readonly adminToken = `adm_${randomBytes(24).toString("hex")}`;
  readonly jwtSecret = `jwt_${randomBytes(32).toString("hex")}`;
  server!: NatsTestServer;
  fixture!: ProviderFixture;
  host!: TestProcess;
  worker!: TestProcess;
  gw!: GatewayProcess;
  platform!: PlatformStore;
  nc!: NatsConnection;
  readonly subjects: Subjects = createSubjects({ partitions: P });
  readonly dirs: string[] = [];
  #hosts = 0;

  static async start(): Promise<AttackStack> {
    const s = new AttackStack();
    s.server = await NatsTestServer.start();
    s.fixture = await startProviderFixture();
    [s.host, s.worker, s.gw] = await Promise.all([
      s.#spawnHost(),
      spawnWorker({
        natsUrl: s.server.url,
        partitions: P,
        workerId: "xt-w1",
        endpoints: s.fixture.endpoints(),
      }),
      spawnGateway({
        natsUrl: s.server.url,
        partitions: P,
        maxBodyBytes: 256 * 1024,
        corsOrigins: GLOBAL_ORIGIN,
        extraEnv: {
          SF_ADMIN_TOKEN: s.adminToken,
          SF_JWT_SECRET: s.jwtSecret,
          SF_JWT_ADMIN_ROLES: "sf_admin",
          SF_API_KEY_CACHE_MS: "10000",
          SF_GATEWAY_REQUEST_TIMEOUT_MS: "15000",
          SF_GATEWAY_REPLY_TIMEOUT_MS: "20000",
          // Every refused request is logged at debug: the run's log scan reads those lines too.
          SF_LOG_LEVEL: "debug",
        },
      }),
    ]);
    s.platform = await openTestPlatform(s.server.url);
    s.nc = await connect({ servers: s.server.url });
    return s;
  }

  #spawnHost(): Promise<TestProcess> {
    this.#hosts += 1;
    return spawnActorHost({ natsUrl: this.server.url, hostId: `xt-h${this.#hosts}`, partitions: P });
  }

  get admin(): string {
    return `Bearer ${this.adminToken}`;
  }

  get base(): string {
    return this.gw.base;
  }

  async call(method: string, path: string, options: CallOptions = {}): Promise<Res> {
    const headers: Record<string, string> = { ...options.headers };
    if (options.auth !== undefined) headers["authorization"] = options.auth;
    let body: FormData | string | undefined;
    if (options.body instanceof FormData) body = options.body;
    else if (typeof options.body === "string") body = options.body;
    else if (options.body !== undefined) {
      body = JSON.stringify(options.body);
      headers["content-type"] ??= "application/json";
    }
    const res = await fetch(`${this.gw.base}${path}`, {
      method,
      headers,
      redirect: "manual",
      ...(body === undefined ? {} : { body }),
      ...(options.signal === undefined ? {} : { signal: options.signal }),
    });
    const text = await res.text();
    let parsed: unknown = {};
    if ((res.headers.get("content-type") ?? "").startsWith("application/json") && text !== "") {
      parsed = JSON.parse(text);
    }
    return {
      status: res.status,
      headers: res.headers,
      text,
      // An array (the v1 lists) or a scalar is kept under `value`.
      body: (typeof parsed === "object" && parsed !== null && !Array.isArray(parsed)
        ? parsed
        : { value: parsed }) as Record<string, unknown>,
    };
  }

  /** The tenant's agents answer through their owner (after a host restart, once it owns them). */
  async waitServed(tenants: readonly string[]): Promise<void> {
    const client = tenantClient(this.nc, this.subjects);
    for (const t of tenants) {
      await waitFor(
        `tenant ${t} served`,
        async () => (await client.get(t, { timeoutMs: 5000 })).body.tenant === t,
        {
          timeoutMs: 30_000,
          intervalMs: 100,
        },
      );
    }
  }

  /**
   * Both tenants' databases and platform rows, byte for byte. The actor host is stopped while the
   * PGlite directories are read (they have one owner at a time) and started again afterwards.
   */
  async snapshot(a: TenantWorld, b: TenantWorld): Promise<Snapshot> {
    await this.waitIdle();
    await this.host.stop();
    try {
      const snap: Snapshot = {
        a: await dumpPglite(a.dir),
        b: await dumpPglite(b.dir),
        platformA: await this.#dumpPlatform(a.id),
        platformB: await this.#dumpPlatform(b.id),
      };
      return snap;
    } finally {
      this.host = await this.#spawnHost();
      await this.waitServed([a.id, b.id]);
    }
  }

  /**
   * Until no job is left in SF_DISPATCH or SF_INGEST (work queues: a job leaves once its worker
   * has acked it, after its last write, e.g. a turn's embedding written after the reply).
   */
  async waitIdle(): Promise<void> {
    const jsm = await jetstreamManager(this.nc);
    const { dispatch, ingest } = this.subjects.streams;
    await waitFor(
      "the workers idle",
      async () => {
        for (const stream of [dispatch, ingest]) {
          if ((await jsm.streams.info(stream)).state.messages > 0) return false;
        }
        return true;
      },
      { timeoutMs: 60_000, intervalMs: 50 },
    );
  }

  async #dumpPlatform(clientId: string): Promise<Record<string, string[]>> {
    const schema = defaultPlatformSchema(this.server.url);
    const client = new pg.Client({ connectionString: sharedServices().databaseUrl });
    await client.connect();
    try {
      const rows = async (sql: string): Promise<string[]> =>
        (await client.query<{ r: string }>(sql, [clientId])).rows.map((row) => row.r).sort();
      return {
        clients: await rows(`select c::text as r from "${schema}".clients c where id = $1`),
        client_secrets: await rows(
          `select s::text as r from "${schema}".client_secrets s where client_id = $1`,
        ),
        // last_used_at moves with every use of a key: the rest of the row may not.
        api_keys: await rows(
          `select (id, client_id, name, key_prefix, key_hash, scopes, site_url, created_at, expires_at, revoked_at)::text as r
             from "${schema}".api_keys where client_id = $1`,
        ),
        audit_log: await rows(`select a::text as r from "${schema}".audit_log a where client_id = $1`),
      };
    } finally {
      await client.end();
    }
  }

  /** A tenant on a fresh PGlite database: agents, provider keys, LiveKit, two API keys (one revoked). */
  async tenant(label: "A" | "B", origin: string): Promise<TenantWorld> {
    const tag = randomBytes(4).toString("hex");
    const lower = label.toLowerCase();
    const markers = {
      clientName: `${label}-corp-${tag}`,
      agentName: `${label}-agent-name-${tag}`,
      systemPrompt: `You are the assistant of tenant ${label}, marker ${label}-system-${tag}.`,
      document: `${label}-document-marker-${tag}`,
      chat: `${label}-chat-marker-${tag}`,
      otherUserChat: `${label}-other-user-marker-${tag}`,
      providerKey: `sk-${label}-openai-${randomBytes(16).toString("hex")}`,
    };
    registerSecret("provider_key", markers.providerKey);
    const client = await this.platform.createClient({
      slug: `xt-${lower}-${tag}`,
      name: markers.clientName,
      settings: { embedding: { ...EMBEDDING }, cors_origins: [origin] },
    });
    const dir = await mkdtemp(join(tmpdir(), `sf-xt-${lower}-`));
    this.dirs.push(dir);
    const database = { kind: "pglite", dataDir: dir } as const;
    await provisionTenantDatabase({ tenantId: client.id, database, vector: "required" });
    const store = await openTenantStore({ tenantId: client.id, database, keyring: testKeyring() });
    const ownSlug = `${lower}-own-${tag}`;
    try {
      for (const agent of [
        agentInput(SHARED_SLUG, markers.agentName, markers.systemPrompt),
        agentInput(ownSlug, `${markers.agentName} (own)`, markers.systemPrompt),
      ]) {
        await store.createAgent(agent);
      }
      await store.setProviderKey("groq", this.fixture.keys.groq);
      await store.setProviderKey("siliconflow", this.fixture.keys.siliconflow);
      await store.setProviderKey("openai", markers.providerKey);
    } finally {
      await store.close();
    }
    await this.platform.setTenantDatabase(client.id, database);
    const services = sharedServices();
    await this.platform.setLivekitCredentials(client.id, {
      url: services.livekitUrl,
      apiKey: services.livekitApiKey,
      apiSecret: services.livekitApiSecret,
    });
    const key = await this.platform.createApiKey({ clientId: client.id, name: "full", scopes: ["*"] });
    const revoked = await this.platform.createApiKey({ clientId: client.id, name: "revoked", scopes: ["*"] });
    for (const k of [key, revoked]) registerSecret("api_key", k.secret);
    return {
      label,
      id: client.id,
      slug: client.slug,
      name: client.name,
      dir,
      ownSlug,
      key: key.secret,
      keyId: key.record.id,
      revokedKey: revoked.secret,
      revokedKeyId: revoked.record.id,
      userId: `${lower}-user-${tag}`,
      otherUserId: `${lower}-user2-${tag}`,
      origin,
      markers,
      documentId: "",
      injectionDocumentId: "",
      conversationId: "",
      otherConversationId: "",
      jobId: "",
      sessionId: `${lower}-session-${tag}`,
      roomName: `xt-room-${lower}-${tag}`,
    };
  }

  async close(): Promise<void> {
    await this.nc?.close();
    await this.platform?.close();
    await this.gw?.proc.stop();
    await this.worker?.stop();
    await this.host?.stop();
    await this.fixture?.close();
    await this.server?.[Symbol.asyncDispose]();
    for (const dir of this.dirs) await rm(dir, { recursive: true, force: true });
  }
}

function agentInput(slug: string, name: string, systemPrompt: string): AgentInput {
  return {
    slug,
    name,
    systemPrompt,
    voiceSettings: { llm_provider: "groq", llm_model: "llama-3.3-70b-versatile" },
    ragResultsLimit: 4,
    toolsConfig: { rag: { match_threshold: 0.05 } },
  };
}

/** Every row of every table of a tenant database, as PostgreSQL prints it, sorted. */
export async function dumpPglite(dir: string): Promise<Record<string, string[]>> {
  const db = await PGlite.create(dir, { extensions: { vector } });
  try {
    const tables = await db.query<{ schema: string; name: string }>(
      `select table_schema as schema, table_name as name from information_schema.tables
        where table_type = 'BASE TABLE' and table_schema not in ('pg_catalog', 'information_schema')
        order by 1, 2`,
    );
    const out: Record<string, string[]> = {};
    for (const t of tables.rows) {
      const rows = await db.query<{ r: string }>(`select x::text as r from "${t.schema}"."${t.name}" x`);
      out[`${t.schema}.${t.name}`] = rows.rows.map((row) => row.r).sort();
    }
    return out;
  } finally {
    await db.close();
  }
}

/** A markdown upload. */
export function markdownForm(fileName: string, text: string, fields: Record<string, string> = {}): FormData {
  const form = new FormData();
  form.append("file", new Blob([text], { type: "text/markdown" }), fileName);
  for (const [k, v] of Object.entries(fields)) form.append(k, v);
  return form;
}

/** `{name}` segments of a route path filled in (values are URL-encoded). */
export function fillPath(path: string, params: Record<string, string>): string {
  return path.replace(/\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (_m, name: string) => {
    const value = params[name];
    if (value === undefined) throw new Error(`no value for {${name}} in ${path}`);
    return encodeURIComponent(value);
  });
}

export const newUuid = (): string => randomUUID();
