/**
 * `TenantStore` for a tenant's Supabase project, through `@supabase/supabase-js` (PostgREST).
 * Vector search goes only through `.rpc()` on `match_documents` and
 * `match_conversation_transcripts_secure`. Writes that must be atomic (the two rows of a turn)
 * are sent as one bulk insert: PostgREST runs each request in one transaction.
 *
 * We cannot run DDL through PostgREST, so provisioning a Supabase tenant checks the schema
 * (`verifySupabaseSchema`) and reports what is missing and how to apply the migrations.
 *
 * Concurrent appends to one conversation (two hosts during a lease handover, a paused owner that
 * wakes up): PostgREST has no transaction across requests, the contract's tenant schema has no
 * unique key on (conversation_id, sequence) nor an RPC that appends a turn, and existing tenant
 * databases attach unchanged (we cannot add either). What it does have is the primary key `id`
 * of `conversation_transcripts`, and its rows' ids are ours to choose. So a turn's user row takes
 * the name-based id of (conversation, sequence) and its assistant row that of (conversation,
 * turn id): the primary key then refuses a second turn at the same sequence, or the same turn
 * twice, and the bulk insert of the pair fails as a whole (409, 23505). The loser reads again
 * (the turn may now be recorded; the sequence has moved on) and retries, a bounded number of times.
 */
import { createHash, randomUUID } from "node:crypto";
import { createClient } from "@supabase/supabase-js";
import type { SfError } from "../../bus/index.ts";
import { decryptSecret, encryptSecret } from "../crypto/index.ts";
import type { Keyring, RotatableSecrets, StoredSecret } from "../crypto/index.ts";
import {
  AgentNotFoundError,
  AlreadyExistsError,
  DatabaseError,
  DatabaseUnavailableError,
  EmbeddingDimensionMismatchError,
  InvalidInputError,
  InvalidStoreOptionsError,
  NotFoundError,
  SchemaMissingError,
  StoreClosedError,
} from "./errors.ts";
import { DEFAULT_EMBEDDING_DIMENSION, validateEmbeddingDimension } from "./migrations.ts";
import { SCHEMA_NAME_PATTERN } from "./sql_database.ts";
import {
  agentDocumentFromRow,
  agentFromRow,
  agentToColumns,
  CHUNK_COLUMNS,
  checkChunkIndexes,
  chunkFromRow,
  clampLimit,
  CONVERSATION_COLUMNS,
  conversationFromRow,
  DOCUMENT_COLUMNS,
  documentFromRow,
  documentMatchFromRow,
  documentPatchToColumns,
  isUuid,
  providerField,
  requireProviderName,
  requireUuid,
  toDate,
  TRANSCRIPT_COLUMNS,
  transcriptFromRow,
  transcriptMatchFromRow,
  vectorLiteral,
  text,
  textOrNull,
} from "./tenant_rows.ts";
import type { Row } from "./tenant_rows.ts";
import type {
  AgentDocumentRecord,
  AgentInput,
  AgentPatch,
  AgentRecord,
  AppendedTurn,
  AppendTurnInput,
  ChunkInput,
  ChunkRecord,
  ConversationRecord,
  CreateConversationInput,
  CreateDocumentInput,
  DocumentMatch,
  DocumentPatch,
  DocumentRecord,
  ListPage,
  MatchDocumentsInput,
  MatchTranscriptsInput,
  ProviderKeyInfo,
  TenantStore,
  TenantStoreCapabilities,
  TranscriptMatch,
  TranscriptRecord,
  TranscriptToEmbed,
} from "./types.ts";

export interface SupabaseTenantStoreOptions {
  tenantId: string;
  /** `https://<project>.supabase.co` */
  url: string;
  serviceRoleKey: string;
  /** Exposed schema; default `public`. */
  schema?: string;
  /** Dimension of the project's embeddings; default 1024. */
  embeddingDimension?: number;
  keyring: Keyring;
  /** Per-request timeout; default 15 s. */
  requestTimeoutMs?: number;
  /** Replaces global fetch (tests, proxies). */
  fetch?: typeof fetch;
}

/** What `verifySupabaseSchema` needs: the store's options without the keyring. */
export type SupabaseConnectionOptions = Omit<SupabaseTenantStoreOptions, "keyring">;

export interface ResolvedSupabaseTenantStoreOptions {
  readonly tenantId: string;
  readonly url: string;
  readonly serviceRoleKey: string;
  readonly schema: string;
  readonly embeddingDimension: number;
  readonly keyring: Keyring | undefined;
  readonly requestTimeoutMs: number;
  readonly fetch: typeof fetch | undefined;
}

export function parseSupabaseTenantStoreOptions(
  options: SupabaseConnectionOptions & { keyring?: Keyring },
): ResolvedSupabaseTenantStoreOptions {
  const schema = options.schema ?? "public";
  if (!SCHEMA_NAME_PATTERN.test(schema))
    throw new InvalidStoreOptionsError(`invalid Supabase schema "${schema}"`);
  let url: URL;
  try {
    url = new URL(options.url);
  } catch (cause) {
    throw new InvalidStoreOptionsError("Supabase url is not a URL", { cause });
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") {
    throw new InvalidStoreOptionsError("Supabase url must be http(s)");
  }
  if (options.serviceRoleKey.trim() === "")
    throw new InvalidStoreOptionsError("Supabase service-role key is empty");
  const requestTimeoutMs = options.requestTimeoutMs ?? 15_000;
  if (!Number.isInteger(requestTimeoutMs) || requestTimeoutMs <= 0) {
    throw new InvalidStoreOptionsError("requestTimeoutMs must be a positive integer");
  }
  return Object.freeze({
    tenantId: options.tenantId,
    url: options.url.replace(/\/+$/, ""),
    serviceRoleKey: options.serviceRoleKey,
    schema,
    embeddingDimension: validateEmbeddingDimension(options.embeddingDimension ?? DEFAULT_EMBEDDING_DIMENSION),
    keyring: options.keyring,
    requestTimeoutMs,
    fetch: options.fetch,
  });
}

interface PostgrestLikeError {
  code?: string;
  message?: string;
  details?: string | null;
  hint?: string | null;
}

interface PostgrestLikeResponse {
  data: unknown;
  error: PostgrestLikeError | null;
  status: number;
}

/** Maps a PostgREST error (or a fetch failure, status 0) to a coded store error. */
export function fromPostgrestError(what: string, error: PostgrestLikeError, status: number): SfError {
  const code = error.code ?? "";
  const message = error.message ?? "request failed";
  const details: Record<string, unknown> = { operation: what, status };
  if (code !== "") details["postgrestCode"] = code;
  if (code === "23505")
    return new AlreadyExistsError(`${what}: a row with that key already exists`, { details });
  if (code === "23503") return new NotFoundError(`${what}: a referenced row does not exist`, { details });
  if (["PGRST202", "PGRST204", "PGRST205", "42P01", "42883", "42703", "3F000", "PGRST106"].includes(code)) {
    return new SchemaMissingError(`${what}: ${message} (apply the tenant migrations)`, { details });
  }
  if (/different vector dimensions|expected \d+ dimensions/i.test(message)) {
    return new EmbeddingDimensionMismatchError(`${what}: ${message}`, { details });
  }
  // Class 22 is a data exception (a NUL character, a value too long or out of range): the input's fault.
  if (code.startsWith("22") || ["23502", "23514", "PGRST100", "PGRST102"].includes(code)) {
    return new InvalidInputError(`${what}: ${message}`, { details });
  }
  if (
    status === 0 ||
    status === 502 ||
    status === 503 ||
    status === 504 ||
    status === 520 ||
    code.startsWith("08")
  ) {
    return new DatabaseUnavailableError(`${what}: Supabase unavailable (${message})`, { details });
  }
  return new DatabaseError(`${what}: ${message}`, { details });
}

const CHUNK_INSERT_BATCH = 100;
const MAX_LIST = 1000;
/** Attempts of one appendTurn that lose the race for a sequence to another writer. */
const APPEND_TURN_ATTEMPTS = 32;

/** A name-based (SHA-1, version 5 layout) uuid of a transcript row: its key in the primary key. */
function transcriptRowId(conversationId: string, name: string): string {
  const hash = createHash("sha1")
    .update(`sf:conversation_transcripts:${conversationId.toLowerCase()}:${name}`)
    .digest();
  hash[6] = ((hash[6] as number) & 0x0f) | 0x50;
  hash[8] = ((hash[8] as number) & 0x3f) | 0x80;
  const hex = hash.subarray(0, 16).toString("hex");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** The tenant schema as supabase-js sees it: untyped rows (records are built by `tenant_rows.ts`). */
interface LooseTable {
  Row: Record<string, unknown>;
  Insert: Record<string, unknown>;
  Update: Record<string, unknown>;
  Relationships: [];
}
interface LooseSchema {
  Tables: Record<string, LooseTable>;
  Views: Record<string, never>;
  Functions: Record<string, { Args: Record<string, unknown>; Returns: Record<string, unknown>[] }>;
}
type LooseDatabase = Record<string, LooseSchema>;

/**
 * The stores never open Realtime channels, but supabase-js builds a Realtime client up front and,
 * on Node 20 (no global WebSocket), refuses to start without a transport. This one is never
 * constructed; if it ever were, it fails loudly.
 */
export class RealtimeNotUsed {
  constructor() {
    throw new DatabaseError("Supabase Realtime is not used by Sidekick Forge");
  }
}

function createLooseClient(
  url: string,
  key: string,
  schema: string,
  fetchImpl: typeof fetch | undefined,
): SupabaseClient {
  return createClient<LooseDatabase, string, string>(url, key, {
    auth: { persistSession: false, autoRefreshToken: false, detectSessionInUrl: false },
    // No retries inside postgrest-js: its backoff (1, 2, 4 s for a GET) outlasts the caller's
    // deadline. A failure answers at once as a coded error; the caller decides about retrying.
    db: { schema, retry: false },
    global: fetchImpl === undefined ? {} : { fetch: fetchImpl },
    // The constructor type wants a full WebSocket class; this one only ever throws.
    realtime: { transport: RealtimeNotUsed as never },
  });
}

type SupabaseClient = ReturnType<typeof createClient<LooseDatabase, string, string>>;

export class SupabaseTenantStore implements TenantStore {
  readonly tenantId: string;
  readonly kind = "supabase" as const;
  readonly capabilities: TenantStoreCapabilities;
  readonly #options: ResolvedSupabaseTenantStoreOptions;
  readonly #keyring: Keyring;
  readonly #client: SupabaseClient;
  #closed = false;

  constructor(options: SupabaseTenantStoreOptions) {
    this.#options = parseSupabaseTenantStoreOptions(options);
    this.#keyring = options.keyring;
    this.tenantId = this.#options.tenantId;
    this.capabilities = Object.freeze({ vector: true, embeddingDimension: this.#options.embeddingDimension });
    const timeoutMs = this.#options.requestTimeoutMs;
    const baseFetch = this.#options.fetch ?? fetch;
    const timedFetch: typeof fetch = (input, init) =>
      baseFetch(input, { ...init, signal: init?.signal ?? AbortSignal.timeout(timeoutMs) });
    this.#client = createLooseClient(
      this.#options.url,
      this.#options.serviceRoleKey,
      this.#options.schema,
      timedFetch,
    );
  }

  #from(table: string) {
    if (this.#closed) throw new StoreClosedError(`tenant store of ${this.tenantId} is closed`);
    return this.#client.from(table);
  }

  async #rows(what: string, request: PromiseLike<PostgrestLikeResponse>): Promise<Row[]> {
    const { data, error, status } = await request;
    if (error !== null) throw fromPostgrestError(what, error, status);
    if (data === null || data === undefined) return [];
    return Array.isArray(data) ? (data as Row[]) : [data as Row];
  }

  // ---- agents --------------------------------------------------------------------------------

  async listAgents(options: { enabledOnly?: boolean } = {}): Promise<AgentRecord[]> {
    let q = this.#from("agents").select("*");
    if (options.enabledOnly === true) q = q.eq("enabled", true);
    return (await this.#rows("list agents", q.order("slug"))).map(agentFromRow);
  }

  async findAgent(slug: string): Promise<AgentRecord | null> {
    const rows = await this.#rows("find agent", this.#from("agents").select("*").eq("slug", slug).limit(1));
    return rows[0] === undefined ? null : agentFromRow(rows[0]);
  }

  async getAgent(slug: string): Promise<AgentRecord> {
    const agent = await this.findAgent(slug);
    if (agent === null) throw new AgentNotFoundError(`agent "${slug}" not found`, { details: { slug } });
    return agent;
  }

  async createAgent(input: AgentInput): Promise<AgentRecord> {
    if (input.id !== undefined) requireUuid(input.id, "agent id");
    const rows = await this.#rows(
      "create agent",
      this.#from("agents").insert(agentToColumns(input)).select("*"),
    );
    return agentFromRow(rows[0] ?? {});
  }

  async updateAgent(slug: string, patch: AgentPatch): Promise<AgentRecord> {
    const row = agentToColumns(patch);
    if (Object.keys(row).length === 0) return this.getAgent(slug);
    row["updated_at"] = new Date().toISOString();
    const rows = await this.#rows(
      "update agent",
      this.#from("agents").update(row).eq("slug", slug).select("*"),
    );
    if (rows[0] === undefined)
      throw new AgentNotFoundError(`agent "${slug}" not found`, { details: { slug } });
    return agentFromRow(rows[0]);
  }

  async deleteAgent(slug: string): Promise<void> {
    const rows = await this.#rows(
      "delete agent",
      this.#from("agents").delete().eq("slug", slug).select("id"),
    );
    if (rows.length === 0) throw new AgentNotFoundError(`agent "${slug}" not found`, { details: { slug } });
  }

  // ---- conversations -------------------------------------------------------------------------

  async createConversation(input: CreateConversationInput): Promise<ConversationRecord> {
    const row: Row = {
      agent_id: requireUuid(input.agentId, "agentId"),
      user_id: requireUuid(input.userId, "userId"),
      channel: input.channel ?? "text",
      metadata: input.metadata ?? {},
    };
    if (input.id !== undefined) row["id"] = requireUuid(input.id, "conversation id");
    if (input.sessionId !== undefined) row["session_id"] = input.sessionId;
    const rows = await this.#rows(
      "create conversation",
      this.#from("conversations").insert(row).select(CONVERSATION_COLUMNS.join(",")),
    );
    return conversationFromRow(rows[0] ?? {});
  }

  async findConversation(id: string): Promise<ConversationRecord | null> {
    requireUuid(id, "conversation id");
    const rows = await this.#rows(
      "find conversation",
      this.#from("conversations").select(CONVERSATION_COLUMNS.join(",")).eq("id", id).limit(1),
    );
    return rows[0] === undefined ? null : conversationFromRow(rows[0]);
  }

  async getConversation(id: string): Promise<ConversationRecord> {
    const conversation = await this.findConversation(id);
    if (conversation === null) throw new NotFoundError(`conversation ${id} not found`, { details: { id } });
    return conversation;
  }

  async listConversations(filter: {
    agentId?: string;
    userId?: string;
    limit?: number;
  }): Promise<ConversationRecord[]> {
    let q = this.#from("conversations").select(CONVERSATION_COLUMNS.join(","));
    if (filter.agentId !== undefined) q = q.eq("agent_id", requireUuid(filter.agentId, "agentId"));
    if (filter.userId !== undefined) q = q.eq("user_id", requireUuid(filter.userId, "userId"));
    const rows = await this.#rows(
      "list conversations",
      q.order("created_at", { ascending: false }).limit(clampLimit(filter.limit, 50, MAX_LIST)),
    );
    return rows.map(conversationFromRow);
  }

  // ---- transcripts ---------------------------------------------------------------------------

  async appendTurn(input: AppendTurnInput): Promise<AppendedTurn> {
    requireUuid(input.conversationId, "conversationId");
    requireUuid(input.agentId, "agentId");
    requireUuid(input.userId, "userId");
    const turnId = input.turnId === undefined ? randomUUID() : requireUuid(input.turnId, "turnId");
    const embedding =
      input.embedding === undefined || input.embedding === null
        ? null
        : (JSON.parse(vectorLiteral(input.embedding, this.#options.embeddingDimension)) as number[]);
    const conversationId = input.conversationId;
    const shared: Row = {
      conversation_id: conversationId,
      session_id: input.sessionId ?? null,
      agent_id: input.agentId,
      user_id: input.userId,
      turn_id: turnId,
      metadata: input.metadata ?? {},
      source: input.source ?? null,
      user_message: input.userMessage,
      assistant_message: input.assistantMessage,
    };
    // See the module comment: the row ids make the primary key guard the sequence and the turn.
    const assistantId = transcriptRowId(conversationId, `turn:${turnId.toLowerCase()}`);
    for (let attempt = 1; ; attempt += 1) {
      if (input.turnId !== undefined || attempt > 1) {
        // Idempotent by turn id: a turn recorded already is answered as it was recorded.
        const recorded = await this.#recordedTurn(conversationId, turnId);
        if (recorded !== undefined) return recorded;
      }
      const last = await this.#rows(
        "read transcript sequence",
        this.#from("conversation_transcripts")
          .select("sequence")
          .eq("conversation_id", conversationId)
          .not("sequence", "is", null)
          .order("sequence", { ascending: false })
          .limit(1),
      );
      const base = Number(last[0]?.["sequence"] ?? 0);
      // Both rows carry the same keys (PostgREST bulk inserts take the union of columns).
      const { data, error, status } = await this.#from("conversation_transcripts")
        .insert([
          {
            ...shared,
            id: transcriptRowId(conversationId, `sequence:${base + 1}`),
            role: "user",
            content: input.userMessage,
            citations: [],
            sequence: base + 1,
            embeddings: embedding,
          },
          {
            ...shared,
            id: assistantId,
            role: "assistant",
            content: input.assistantMessage,
            citations: input.citations ?? [],
            sequence: base + 2,
            embeddings: null,
          },
        ])
        .select(TRANSCRIPT_COLUMNS.join(","));
      if (error !== null && error.code === "23505") {
        // Another writer took this sequence (or recorded this turn) first.
        if (attempt < APPEND_TURN_ATTEMPTS) continue;
        throw new DatabaseUnavailableError(
          `append turn: still losing the race for the conversation's next sequence after ${attempt} attempts`,
          { details: { operation: "append turn", attempts: attempt } },
        );
      }
      if (error !== null) throw fromPostgrestError("append turn", error, status);
      const records = (Array.isArray(data) ? (data as unknown as Row[]) : []).map(transcriptFromRow);
      const user = records.find((r) => r.role === "user");
      const assistant = records.find((r) => r.role === "assistant");
      if (user === undefined || assistant === undefined) {
        throw new DatabaseError("append turn: Supabase did not return both rows of the turn");
      }
      return { turnId, user, assistant };
    }
  }

  /** The user and assistant rows of a turn of a conversation, when both are recorded. */
  async #recordedTurn(conversationId: string, turnId: string): Promise<AppendedTurn | undefined> {
    const rows = await this.#rows(
      "read turn",
      this.#from("conversation_transcripts")
        .select(TRANSCRIPT_COLUMNS.join(","))
        .eq("conversation_id", conversationId)
        .eq("turn_id", turnId)
        .limit(10),
    );
    const records = rows.map(transcriptFromRow);
    const user = records.find((r) => r.role === "user");
    const assistant = records.find((r) => r.role === "assistant");
    return user === undefined || assistant === undefined ? undefined : { turnId, user, assistant };
  }

  async listTranscripts(
    conversationId: string,
    options: { limit?: number } = {},
  ): Promise<TranscriptRecord[]> {
    requireUuid(conversationId, "conversationId");
    const rows = await this.#rows(
      "list transcripts",
      this.#from("conversation_transcripts")
        .select(TRANSCRIPT_COLUMNS.join(","))
        .eq("conversation_id", conversationId)
        .order("created_at", { ascending: false })
        .order("sequence", { ascending: false, nullsFirst: false })
        .limit(clampLimit(options.limit, MAX_LIST, MAX_LIST)),
    );
    const roleRank = (r: TranscriptRecord): number => (r.role === "user" ? 0 : 1);
    return rows
      .map(transcriptFromRow)
      .sort(
        (a, b) =>
          a.createdAt.getTime() - b.createdAt.getTime() ||
          (a.sequence ?? 0) - (b.sequence ?? 0) ||
          roleRank(a) - roleRank(b),
      );
  }

  async findTurn(turnId: string): Promise<TranscriptRecord[]> {
    if (!isUuid(turnId)) return [];
    const rows = await this.#rows(
      "find turn",
      this.#from("conversation_transcripts")
        .select(TRANSCRIPT_COLUMNS.join(","))
        .eq("turn_id", turnId)
        .order("created_at", { ascending: true })
        .limit(10),
    );
    const roleRank = (r: TranscriptRecord): number => (r.role === "user" ? 0 : 1);
    return rows.map(transcriptFromRow).sort((a, b) => roleRank(a) - roleRank(b));
  }

  /** An embedding as the JSON array PostgREST takes for a vector column, checked against the dimension. */
  #vector(embedding: readonly number[]): number[] {
    return JSON.parse(vectorLiteral(embedding, this.#options.embeddingDimension)) as number[];
  }

  async setTranscriptEmbedding(turnId: string, embedding: readonly number[]): Promise<boolean> {
    requireUuid(turnId, "turnId");
    const rows = await this.#rows(
      "set transcript embedding",
      this.#from("conversation_transcripts")
        .update({ embeddings: this.#vector(embedding) })
        .eq("turn_id", turnId)
        .eq("role", "user")
        .select("id"),
    );
    return rows.length > 0;
  }

  async listTranscriptsForEmbedding(options: {
    afterId?: string;
    limit: number;
  }): Promise<TranscriptToEmbed[]> {
    let q = this.#from("conversation_transcripts")
      .select("id,turn_id,content,user_message")
      .eq("role", "user");
    if (options.afterId !== undefined) q = q.gt("id", options.afterId);
    const rows = await this.#rows(
      "list transcripts for embedding",
      q.order("id").limit(clampLimit(options.limit, MAX_LIST, MAX_LIST)),
    );
    return rows.map((r) => {
      // Rows of the old service may carry the text in user_message only.
      const content = textOrNull(r["content"]);
      return {
        id: text(r["id"]),
        turnId: textOrNull(r["turn_id"]),
        content: content === null || content === "" ? text(r["user_message"]) : content,
      };
    });
  }

  // ---- documents -----------------------------------------------------------------------------

  async createDocument(input: CreateDocumentInput): Promise<DocumentRecord> {
    const row: Row = {
      title: input.title,
      file_name: input.fileName ?? null,
      file_type: input.fileType ?? null,
      content: input.content ?? null,
      status: input.status ?? "pending",
      metadata: input.metadata ?? {},
    };
    if (input.id !== undefined) row["id"] = requireUuid(input.id, "document id");
    const rows = await this.#rows(
      "create document",
      this.#from("documents").insert(row).select(DOCUMENT_COLUMNS.join(",")),
    );
    return documentFromRow(rows[0] ?? {});
  }

  async getDocument(id: string): Promise<DocumentRecord> {
    const rows = await this.#rows(
      "get document",
      this.#from("documents").select(DOCUMENT_COLUMNS.join(",")).eq("id", id).limit(1),
    );
    if (rows[0] === undefined) throw new NotFoundError(`document ${id} not found`, { details: { id } });
    return documentFromRow(rows[0]);
  }

  async listDocuments(options: ListPage = {}): Promise<DocumentRecord[]> {
    const limit = clampLimit(options.limit, 100, MAX_LIST);
    const offset = clampLimit(options.offset, 0, Number.MAX_SAFE_INTEGER);
    const rows = await this.#rows(
      "list documents",
      this.#from("documents")
        .select(DOCUMENT_COLUMNS.join(","))
        .order("created_at", { ascending: false })
        .order("id")
        .range(offset, offset + limit - 1),
    );
    return rows.map(documentFromRow);
  }

  async updateDocumentStatus(id: string, status: string): Promise<void> {
    const rows = await this.#rows(
      "update document status",
      this.#from("documents").update({ status }).eq("id", id).select("id"),
    );
    if (rows.length === 0) throw new NotFoundError(`document ${id} not found`, { details: { id } });
  }

  async deleteDocument(id: string): Promise<void> {
    const rows = await this.#rows(
      "delete document",
      this.#from("documents").delete().eq("id", id).select("id"),
    );
    if (rows.length === 0) throw new NotFoundError(`document ${id} not found`, { details: { id } });
  }

  async updateDocument(id: string, patch: DocumentPatch): Promise<DocumentRecord> {
    const row = documentPatchToColumns(patch);
    if (Object.keys(row).length === 0) return this.getDocument(id);
    const rows = await this.#rows(
      "update document",
      this.#from("documents").update(row).eq("id", id).select(DOCUMENT_COLUMNS.join(",")),
    );
    if (rows[0] === undefined) throw new NotFoundError(`document ${id} not found`, { details: { id } });
    return documentFromRow(rows[0]);
  }

  #chunkRows(documentId: string, chunks: readonly ChunkInput[], options: { unique: boolean }): Row[] {
    checkChunkIndexes(chunks, options);
    return chunks.map((c) => ({
      document_id: documentId,
      chunk_index: c.chunkIndex,
      content: c.content,
      chunk_metadata: c.chunkMetadata ?? {},
      document_title: c.documentTitle ?? null,
      document_source_url: c.documentSourceUrl ?? null,
      embeddings: c.embedding === undefined || c.embedding === null ? null : this.#vector(c.embedding),
    }));
  }

  async #updateChunkCount(documentId: string, fallback: number): Promise<void> {
    const { count, error, status } = await this.#from("document_chunks")
      .select("id", { count: "exact", head: true })
      .eq("document_id", documentId);
    if (error !== null) throw fromPostgrestError("count chunks", error, status);
    await this.#rows(
      "update chunk count",
      this.#from("documents")
        .update({ chunk_count: count ?? fallback })
        .eq("id", documentId),
    );
  }

  async addChunks(documentId: string, chunks: readonly ChunkInput[]): Promise<number> {
    const rows = this.#chunkRows(documentId, chunks, { unique: false });
    await this.getDocument(documentId);
    for (let start = 0; start < rows.length; start += CHUNK_INSERT_BATCH) {
      await this.#rows(
        "add chunks",
        this.#from("document_chunks").insert(rows.slice(start, start + CHUNK_INSERT_BATCH)),
      );
    }
    await this.#updateChunkCount(documentId, rows.length);
    return rows.length;
  }

  /**
   * Per batch, deletes the chunks with those indexes, then inserts the new ones. Not PostgREST's
   * upsert (`on_conflict`): that needs a unique key on (document_id, chunk_index), which projects
   * of the old service lack. Each request is its own transaction: a failure between the two
   * leaves the batch's chunks missing until the (idempotent) call is repeated.
   */
  async upsertChunks(documentId: string, chunks: readonly ChunkInput[]): Promise<number> {
    const rows = this.#chunkRows(documentId, chunks, { unique: true });
    await this.getDocument(documentId);
    for (let start = 0; start < rows.length; start += CHUNK_INSERT_BATCH) {
      const batch = rows.slice(start, start + CHUNK_INSERT_BATCH);
      await this.#rows(
        "replace chunks",
        this.#from("document_chunks")
          .delete()
          .eq("document_id", documentId)
          .in(
            "chunk_index",
            batch.map((r) => r["chunk_index"]),
          ),
      );
      await this.#rows("upsert chunks", this.#from("document_chunks").insert(batch));
    }
    await this.#updateChunkCount(documentId, rows.length);
    return rows.length;
  }

  async deleteChunksFrom(documentId: string, fromIndex: number): Promise<number> {
    if (!Number.isInteger(fromIndex) || fromIndex < 0) {
      throw new InvalidInputError("fromIndex must be a non-negative integer");
    }
    await this.getDocument(documentId);
    const deleted = await this.#rows(
      "delete chunks",
      this.#from("document_chunks")
        .delete()
        .eq("document_id", documentId)
        .gte("chunk_index", fromIndex)
        .select("id"),
    );
    await this.#updateChunkCount(documentId, 0);
    return deleted.length;
  }

  async listChunks(documentId: string): Promise<ChunkRecord[]> {
    const rows = await this.#rows(
      "list chunks",
      this.#from("document_chunks")
        .select(CHUNK_COLUMNS.join(","))
        .eq("document_id", documentId)
        .order("chunk_index"),
    );
    return rows.map(chunkFromRow);
  }

  async assignDocument(
    agentId: string,
    documentId: string,
    options: { accessType?: string; enabled?: boolean } = {},
  ): Promise<AgentDocumentRecord> {
    const rows = await this.#rows(
      "assign document",
      this.#from("agent_documents")
        .upsert(
          {
            agent_id: agentId,
            document_id: documentId,
            access_type: options.accessType ?? "read",
            enabled: options.enabled ?? true,
          },
          { onConflict: "agent_id,document_id" },
        )
        .select("agent_id,document_id,access_type,enabled"),
    );
    return agentDocumentFromRow(rows[0] ?? {});
  }

  async unassignDocument(agentId: string, documentId: string): Promise<void> {
    await this.#rows(
      "unassign document",
      this.#from("agent_documents").delete().eq("agent_id", agentId).eq("document_id", documentId),
    );
  }

  async listAgentDocuments(agentId: string): Promise<AgentDocumentRecord[]> {
    const rows = await this.#rows(
      "list agent documents",
      this.#from("agent_documents")
        .select("agent_id,document_id,access_type,enabled")
        .eq("agent_id", agentId)
        .order("document_id"),
    );
    return rows.map(agentDocumentFromRow);
  }

  // ---- vector search: RPC only ---------------------------------------------------------------

  async #rpc(fn: string, args: Record<string, unknown>): Promise<Row[]> {
    if (this.#closed) throw new StoreClosedError(`tenant store of ${this.tenantId} is closed`);
    return this.#rows(fn, this.#client.rpc(fn, args));
  }

  async matchDocuments(input: MatchDocumentsInput): Promise<DocumentMatch[]> {
    const embedding = this.#vector(input.embedding);
    const rows = await this.#rpc("match_documents", {
      p_query_embedding: embedding,
      p_agent_slug: input.agentSlug,
      p_match_threshold: input.threshold ?? 0,
      p_match_count: clampLimit(input.count, 5, MAX_LIST),
    });
    return rows.map(documentMatchFromRow);
  }

  async matchConversationTranscriptsSecure(input: MatchTranscriptsInput): Promise<TranscriptMatch[]> {
    requireUuid(input.userId, "userId");
    const embedding = this.#vector(input.embedding);
    const rows = await this.#rpc("match_conversation_transcripts_secure", {
      query_embeddings: embedding,
      agent_slug_param: input.agentSlug,
      user_id_param: input.userId,
      match_count: clampLimit(input.count, 5, MAX_LIST),
    });
    return rows.map(transcriptMatchFromRow);
  }

  /**
   * Nulls every stored embedding through PostgREST. DDL cannot go through PostgREST, so a
   * `dimension` other than the configured one is refused: the operator migrates the project's
   * columns and updates the tenant's database config first.
   */
  async resetEmbeddings(dimension: number): Promise<void> {
    validateEmbeddingDimension(dimension);
    const configured = this.#options.embeddingDimension;
    if (dimension !== configured) {
      throw new EmbeddingDimensionMismatchError(
        `tenant ${this.tenantId}'s Supabase project stores ${configured}-dimensional embeddings and the store cannot ` +
          `change its columns: migrate the project's document_chunks.embeddings and conversation_transcripts.embeddings ` +
          `columns to vector(${dimension}) (dropping and re-creating their HNSW indexes), then set embeddingDimension ` +
          `${dimension} in the tenant's database config`,
        { details: { tenantId: this.tenantId, configured, requested: dimension } },
      );
    }
    for (const table of ["document_chunks", "conversation_transcripts"]) {
      await this.#rows(
        `reset ${table} embeddings`,
        this.#from(table).update({ embeddings: null }).not("embeddings", "is", null),
      );
    }
  }

  // ---- provider keys -------------------------------------------------------------------------

  async setProviderKey(provider: string, apiKey: string): Promise<void> {
    requireProviderName(provider);
    const keyring = this.#keyring;
    const envelope = encryptSecret(keyring, apiKey, {
      tenantId: this.tenantId,
      field: providerField(provider),
    });
    await this.#rows(
      "set provider key",
      this.#from("provider_keys").upsert(
        { provider, key_id: keyring.activeKeyId, ciphertext: envelope, updated_at: new Date().toISOString() },
        { onConflict: "provider" },
      ),
    );
  }

  async getProviderKey(provider: string): Promise<string | null> {
    requireProviderName(provider);
    const rows = await this.#rows(
      "get provider key",
      this.#from("provider_keys").select("ciphertext").eq("provider", provider).limit(1),
    );
    const envelope = rows[0]?.["ciphertext"];
    if (typeof envelope !== "string") return null;
    return decryptSecret(this.#keyring, envelope, {
      tenantId: this.tenantId,
      field: providerField(provider),
    });
  }

  async listProviderKeys(): Promise<ProviderKeyInfo[]> {
    const rows = await this.#rows(
      "list provider keys",
      this.#from("provider_keys").select("provider,key_id,updated_at").order("provider"),
    );
    return rows.map((r) => ({
      provider: text(r["provider"]),
      keyId: text(r["key_id"]),
      updatedAt: toDate(r["updated_at"]),
    }));
  }

  async deleteProviderKey(provider: string): Promise<boolean> {
    const rows = await this.#rows(
      "delete provider key",
      this.#from("provider_keys").delete().eq("provider", provider).select("provider"),
    );
    return rows.length > 0;
  }

  secretsForRotation(): RotatableSecrets {
    const tenantId = this.tenantId;
    return {
      name: `tenant:${tenantId}:provider_keys`,
      listNotOnKey: async (activeKeyId, limit, afterRef) => {
        let q = this.#from("provider_keys").select("provider,key_id,ciphertext").neq("key_id", activeKeyId);
        if (afterRef !== null) q = q.gt("provider", afterRef);
        const rows = await this.#rows("list provider keys for rotation", q.order("provider").limit(limit));
        return rows.map((r): StoredSecret => ({
          ref: text(r["provider"]),
          keyId: text(r["key_id"]),
          envelope: text(r["ciphertext"]),
          context: { tenantId, field: providerField(text(r["provider"])) },
        }));
      },
      replaceEnvelope: async (secret, envelope, keyId) => {
        const rows = await this.#rows(
          "rotate provider key",
          this.#from("provider_keys")
            .update({ ciphertext: envelope, key_id: keyId, updated_at: new Date().toISOString() })
            .eq("provider", secret.ref)
            .eq("ciphertext", secret.envelope)
            .select("provider"),
        );
        return rows.length > 0;
      },
    };
  }

  close(): Promise<void> {
    this.#closed = true;
    return Promise.resolve();
  }
}

// ---------------------------------------------------------------------------------------------
// Provisioning check

/** What a tenant's Supabase project must expose: tables with their columns, and the RPCs. */
export const SUPABASE_REQUIRED_SCHEMA = {
  tables: {
    agents: ["id", "slug", "name", "system_prompt", "voice_settings", "enabled", "rag_results_limit"],
    conversations: [...CONVERSATION_COLUMNS],
    conversation_transcripts: [...TRANSCRIPT_COLUMNS, "embeddings"],
    documents: [...DOCUMENT_COLUMNS],
    document_chunks: [...CHUNK_COLUMNS, "embeddings"],
    agent_documents: ["agent_id", "document_id", "access_type", "enabled"],
    provider_keys: ["provider", "key_id", "ciphertext", "updated_at"],
  },
  functions: {
    match_documents: ["p_query_embedding", "p_agent_slug", "p_match_threshold", "p_match_count"],
    match_conversation_transcripts_secure: [
      "query_embeddings",
      "agent_slug_param",
      "user_id_param",
      "match_count",
    ],
  },
} as const;

export const SUPABASE_MIGRATION_HINT =
  "apply deploy/migrations/tenant/*.sql in order to the project (Supabase SQL editor, `supabase db push`, or " +
  "psql with the project's connection string); renderMigrationScript('tenant', { embeddingDimension }) prints them as one script";

export interface SupabaseSchemaReport {
  missing: string[];
}

/**
 * Checks that the project has every table, column and RPC function the store uses (the RPCs
 * are called with their contract parameter names and a zero limit). Throws
 * SF_ERR_SCHEMA_MISSING naming what is missing and how to apply the migrations.
 */
export async function verifySupabaseSchema(
  options: SupabaseConnectionOptions,
): Promise<SupabaseSchemaReport> {
  const resolved = parseSupabaseTenantStoreOptions(options);
  const client = createLooseClient(resolved.url, resolved.serviceRoleKey, resolved.schema, resolved.fetch);
  const missing: string[] = [];
  const unreachable = (error: PostgrestLikeError, status: number, what: string): SfError | null => {
    const mapped = fromPostgrestError(what, error, status);
    return mapped instanceof SchemaMissingError ? null : mapped;
  };
  for (const [table, columns] of Object.entries(SUPABASE_REQUIRED_SCHEMA.tables)) {
    const { error, status } = await client.from(table).select(columns.join(",")).limit(0);
    if (error === null) continue;
    const fatal = unreachable(error, status, `check table ${table}`);
    if (fatal !== null) throw fatal;
    if (error.code === "PGRST205" || error.code === "42P01") {
      missing.push(`table ${resolved.schema}.${table}`);
      continue;
    }
    // The table exists; find each missing column.
    for (const column of columns) {
      const probe = await client.from(table).select(column).limit(0);
      if (probe.error === null) continue;
      const fatalColumn = unreachable(probe.error, probe.status, `check column ${table}.${column}`);
      if (fatalColumn !== null) throw fatalColumn;
      missing.push(`column ${resolved.schema}.${table}.${column}`);
    }
  }
  const probeVector = new Array<number>(resolved.embeddingDimension).fill(0);
  probeVector[0] = 1;
  const probes: Record<string, Record<string, unknown>> = {
    match_documents: {
      p_query_embedding: probeVector,
      p_agent_slug: "",
      p_match_threshold: 1,
      p_match_count: 0,
    },
    match_conversation_transcripts_secure: {
      query_embeddings: probeVector,
      agent_slug_param: "",
      user_id_param: "00000000-0000-0000-0000-000000000000",
      match_count: 0,
    },
  };
  for (const [fn, args] of Object.entries(probes)) {
    const { error, status } = await client.rpc(fn, args);
    if (error === null) continue;
    const mapped = fromPostgrestError(`check function ${fn}`, error, status);
    if (mapped instanceof EmbeddingDimensionMismatchError) throw mapped;
    if (!(mapped instanceof SchemaMissingError)) throw mapped;
    const params = SUPABASE_REQUIRED_SCHEMA.functions[fn as keyof typeof SUPABASE_REQUIRED_SCHEMA.functions];
    missing.push(`function ${resolved.schema}.${fn}(${params.join(", ")})`);
  }
  if (missing.length > 0) {
    throw new SchemaMissingError(
      `the Supabase project of tenant ${resolved.tenantId} lacks ${missing.join("; ")}: ${SUPABASE_MIGRATION_HINT}`,
      { details: { tenantId: resolved.tenantId, missing, howToApply: SUPABASE_MIGRATION_HINT } },
    );
  }
  return { missing };
}
