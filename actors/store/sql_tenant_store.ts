/**
 * `TenantStore` over SQL: the PostgreSQL and the PGlite adapters (they differ only in the
 * `SqlDatabase` underneath). Every statement names its tables with the tenant's schema, so
 * several tenants can share one server (or one PGlite instance) without search_path games.
 */
import { randomUUID } from "node:crypto";
import { decryptSecret, encryptSecret } from "../crypto/index.ts";
import type { Keyring, RotatableSecrets, StoredSecret } from "../crypto/index.ts";
import {
  AgentNotFoundError,
  EmbeddingDimensionMismatchError,
  InvalidInputError,
  InvalidStoreOptionsError,
  NotFoundError,
  SchemaMissingError,
  StoreClosedError,
  VectorUnavailableError,
  toStoreError,
} from "./errors.ts";
import { validateEmbeddingDimension } from "./migrations.ts";
import { quoteIdent, SCHEMA_NAME_PATTERN } from "./sql_database.ts";
import type { SqlDatabase, SqlQueryable } from "./sql_database.ts";
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
  isJsonColumn,
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

/** Tables a tenant database must have before a store attaches to it. */
export const TENANT_TABLES = [
  "agents",
  "conversations",
  "conversation_transcripts",
  "documents",
  "document_chunks",
  "agent_documents",
  "provider_keys",
] as const;

export const TENANT_RPC_FUNCTIONS = ["match_documents", "match_conversation_transcripts_secure"] as const;

const CHUNK_INSERT_BATCH = 100;
const MAX_LIST = 1000;

/** The two tables with an `embeddings` vector column. */
const EMBEDDING_TABLES = ["document_chunks", "conversation_transcripts"] as const;
type EmbeddingTable = (typeof EMBEDDING_TABLES)[number];

/** A chunk as the insert statement takes it (JSON encoded, vector as text). */
interface ChunkRow {
  chunk_index: number;
  content: string;
  chunk_metadata: string;
  document_title: string | null;
  document_source_url: string | null;
  embeddings: string | null;
}

export interface SqlTenantStoreOptions {
  db: SqlDatabase;
  tenantId: string;
  /** Schema of the tenant's tables; default `public`. */
  schema?: string;
  /** Seals provider keys; without one, the provider-key methods fail with SF_ERR_INVALID_OPTIONS. */
  keyring?: Keyring;
  /** Close `db` when the store closes; default true. */
  ownsDatabase?: boolean;
}

function vectorDimension(formatted: string | null | undefined): number | null {
  const m = /^vector\((\d+)\)$/.exec(formatted ?? "");
  return m?.[1] === undefined ? null : Number(m[1]);
}

/** `format_type` of each table's `embeddings` column (absent: the table has none). */
async function embeddingColumnTypes(
  db: SqlQueryable,
  schema: string,
): Promise<Partial<Record<EmbeddingTable, string>>> {
  const rows = await db.query<{ table_name: EmbeddingTable; type: string }>(
    `select c.relname as table_name, format_type(a.atttypid, a.atttypmod) as type
     from pg_catalog.pg_attribute a
     join pg_catalog.pg_class c on c.oid = a.attrelid
     join pg_catalog.pg_namespace n on n.oid = c.relnamespace
     where n.nspname = $1 and c.relname = any($2::text[])
       and a.attname = 'embeddings' and not a.attisdropped`,
    [schema, [...EMBEDDING_TABLES]],
  );
  return Object.fromEntries(rows.map((r) => [r.table_name, r.type]));
}

export class SqlTenantStore implements TenantStore {
  readonly tenantId: string;
  readonly kind: "postgres" | "pglite";
  readonly schema: string;
  readonly #db: SqlDatabase;
  readonly #keyring: Keyring | undefined;
  readonly #ownsDb: boolean;
  /** Changes only when `resetEmbeddings` retypes the columns (or a search finds them retyped). */
  #capabilities: Readonly<TenantStoreCapabilities>;
  #transcriptDimension: number | null;
  #closed = false;

  private constructor(
    options: SqlTenantStoreOptions,
    schema: string,
    capabilities: TenantStoreCapabilities,
    transcriptDimension: number | null,
  ) {
    this.tenantId = options.tenantId;
    this.kind = options.db.dialect;
    this.schema = schema;
    this.#capabilities = Object.freeze(capabilities);
    this.#db = options.db;
    this.#keyring = options.keyring;
    this.#ownsDb = options.ownsDatabase ?? true;
    this.#transcriptDimension = transcriptDimension;
  }

  /**
   * Attaches to a provisioned schema (see `provisionTenantDatabase`). Fails with
   * SF_ERR_SCHEMA_MISSING naming the missing tables when it is not.
   */
  static async open(options: SqlTenantStoreOptions): Promise<SqlTenantStore> {
    const schema = options.schema ?? "public";
    if (!SCHEMA_NAME_PATTERN.test(schema)) {
      throw new InvalidInputError(`schema name "${schema}" must match ${String(SCHEMA_NAME_PATTERN)}`);
    }
    try {
      const tables = await options.db.query<{ name: string; present: boolean }>(
        `select t.name, to_regclass(format('%I.%I', $1::text, t.name)) is not null as present
         from unnest($2::text[]) as t(name)`,
        [schema, [...TENANT_TABLES]],
      );
      const missing = tables.filter((t) => !t.present).map((t) => t.name);
      if (missing.length > 0) {
        throw new SchemaMissingError(
          `tenant schema "${schema}" lacks table(s) ${missing.join(", ")}: provision the tenant database (apply deploy/migrations/tenant)`,
          { details: { schema, missingTables: missing } },
        );
      }
      const columns = await embeddingColumnTypes(options.db, schema);
      const functions = await options.db.query<{ proname: string }>(
        `select distinct p.proname from pg_catalog.pg_proc p
         join pg_catalog.pg_namespace n on n.oid = p.pronamespace
         where n.nspname = $1 and p.proname = any($2::text[])`,
        [schema, [...TENANT_RPC_FUNCTIONS]],
      );
      const chunkType = columns.document_chunks;
      const transcriptType = columns.conversation_transcripts;
      const vector = chunkType !== undefined && transcriptType !== undefined && functions.length === 2;
      return new SqlTenantStore(
        options,
        schema,
        { vector, embeddingDimension: vectorDimension(chunkType) },
        vectorDimension(transcriptType),
      );
    } catch (err) {
      throw toStoreError(err, "open tenant store");
    }
  }

  get capabilities(): TenantStoreCapabilities {
    return this.#capabilities;
  }

  // ---- helpers -------------------------------------------------------------------------------

  #t(table: string): string {
    return `${quoteIdent(this.schema)}.${quoteIdent(table)}`;
  }

  async #run<T>(what: string, fn: (db: SqlQueryable) => Promise<T>): Promise<T> {
    if (this.#closed) throw new StoreClosedError(`tenant store of ${this.tenantId} is closed`);
    try {
      return await fn(this.#db);
    } catch (err) {
      throw toStoreError(err, what);
    }
  }

  async #tx<T>(what: string, fn: (tx: SqlQueryable) => Promise<T>): Promise<T> {
    return this.#run(what, () => this.#db.transaction(fn));
  }

  #keys(): Keyring {
    if (this.#keyring === undefined) {
      throw new InvalidStoreOptionsError(`tenant store of ${this.tenantId} was opened without a keyring`);
    }
    return this.#keyring;
  }

  #requireVector(what: string): void {
    if (!this.capabilities.vector) {
      throw new VectorUnavailableError(
        `${what} needs pgvector, and tenant ${this.tenantId}'s database has no embedding columns/functions (the server lacks the vector extension)`,
        { details: { tenantId: this.tenantId, schema: this.schema } },
      );
    }
  }

  /** An insert of `row` (column → value) returning `returning`. JSON columns are encoded. */
  #insertSql(
    table: string,
    row: Row,
    returning: readonly string[] | "*",
  ): { text: string; params: unknown[] } {
    const columns = Object.keys(row);
    const params = columns.map((c) => (isJsonColumn(c) ? JSON.stringify(row[c]) : row[c]));
    const values = columns.map((c, i) => (isJsonColumn(c) ? `$${i + 1}::jsonb` : `$${i + 1}`));
    const ret = returning === "*" ? "*" : returning.join(", ");
    return {
      text: `insert into ${this.#t(table)} (${columns.map(quoteIdent).join(", ")}) values (${values.join(", ")}) returning ${ret}`,
      params,
    };
  }

  // ---- agents --------------------------------------------------------------------------------

  listAgents(options: { enabledOnly?: boolean } = {}): Promise<AgentRecord[]> {
    return this.#run("list agents", async (db) => {
      const where = options.enabledOnly === true ? "where coalesce(enabled, true)" : "";
      const rows = await db.query<Row>(`select * from ${this.#t("agents")} ${where} order by slug`);
      return rows.map(agentFromRow);
    });
  }

  async findAgent(slug: string): Promise<AgentRecord | null> {
    return this.#run("find agent", async (db) => {
      const rows = await db.query<Row>(`select * from ${this.#t("agents")} where slug = $1`, [slug]);
      return rows[0] === undefined ? null : agentFromRow(rows[0]);
    });
  }

  async getAgent(slug: string): Promise<AgentRecord> {
    const agent = await this.findAgent(slug);
    if (agent === null) throw new AgentNotFoundError(`agent "${slug}" not found`, { details: { slug } });
    return agent;
  }

  createAgent(input: AgentInput): Promise<AgentRecord> {
    return this.#run("create agent", async (db) => {
      if (input.id !== undefined) requireUuid(input.id, "agent id");
      const { text, params } = this.#insertSql("agents", agentToColumns(input), "*");
      const rows = await db.query<Row>(text, params);
      return agentFromRow(rows[0] ?? {});
    });
  }

  updateAgent(slug: string, patch: AgentPatch): Promise<AgentRecord> {
    return this.#run("update agent", async (db) => {
      const row = agentToColumns(patch);
      const columns = Object.keys(row);
      if (columns.length === 0) return this.getAgent(slug);
      const sets = columns.map((c, i) => `${quoteIdent(c)} = $${i + 2}${isJsonColumn(c) ? "::jsonb" : ""}`);
      const params = [slug, ...columns.map((c) => (isJsonColumn(c) ? JSON.stringify(row[c]) : row[c]))];
      const rows = await db.query<Row>(
        `update ${this.#t("agents")} set ${sets.join(", ")}, updated_at = now() where slug = $1 returning *`,
        params,
      );
      if (rows[0] === undefined)
        throw new AgentNotFoundError(`agent "${slug}" not found`, { details: { slug } });
      return agentFromRow(rows[0]);
    });
  }

  deleteAgent(slug: string): Promise<void> {
    return this.#run("delete agent", async (db) => {
      const rows = await db.query(`delete from ${this.#t("agents")} where slug = $1 returning id`, [slug]);
      if (rows.length === 0) throw new AgentNotFoundError(`agent "${slug}" not found`, { details: { slug } });
    });
  }

  // ---- conversations -------------------------------------------------------------------------

  createConversation(input: CreateConversationInput): Promise<ConversationRecord> {
    return this.#run("create conversation", async (db) => {
      const row: Row = {
        agent_id: requireUuid(input.agentId, "agentId"),
        user_id: requireUuid(input.userId, "userId"),
        channel: input.channel ?? "text",
        metadata: input.metadata ?? {},
      };
      if (input.id !== undefined) row["id"] = requireUuid(input.id, "conversation id");
      if (input.sessionId !== undefined) row["session_id"] = input.sessionId;
      const { text, params } = this.#insertSql("conversations", row, CONVERSATION_COLUMNS);
      const rows = await db.query<Row>(text, params);
      return conversationFromRow(rows[0] ?? {});
    });
  }

  findConversation(id: string): Promise<ConversationRecord | null> {
    return this.#run("find conversation", async (db) => {
      requireUuid(id, "conversation id");
      const rows = await db.query<Row>(
        `select ${CONVERSATION_COLUMNS.join(", ")} from ${this.#t("conversations")} where id = $1`,
        [id],
      );
      return rows[0] === undefined ? null : conversationFromRow(rows[0]);
    });
  }

  async getConversation(id: string): Promise<ConversationRecord> {
    const conversation = await this.findConversation(id);
    if (conversation === null) throw new NotFoundError(`conversation ${id} not found`, { details: { id } });
    return conversation;
  }

  listConversations(filter: {
    agentId?: string;
    userId?: string;
    limit?: number;
  }): Promise<ConversationRecord[]> {
    return this.#run("list conversations", async (db) => {
      const where: string[] = [];
      const params: unknown[] = [];
      if (filter.agentId !== undefined) {
        params.push(requireUuid(filter.agentId, "agentId"));
        where.push(`agent_id = $${params.length}`);
      }
      if (filter.userId !== undefined) {
        params.push(requireUuid(filter.userId, "userId"));
        where.push(`user_id = $${params.length}`);
      }
      params.push(clampLimit(filter.limit, 50, MAX_LIST));
      const rows = await db.query<Row>(
        `select ${CONVERSATION_COLUMNS.join(", ")} from ${this.#t("conversations")}
         ${where.length > 0 ? `where ${where.join(" and ")}` : ""}
         order by created_at desc limit $${params.length}`,
        params,
      );
      return rows.map(conversationFromRow);
    });
  }

  // ---- transcripts ---------------------------------------------------------------------------

  async appendTurn(input: AppendTurnInput): Promise<AppendedTurn> {
    const embedding = input.embedding ?? null;
    if (embedding !== null) this.#requireVector("storing a transcript embedding");
    return this.#tx("append turn", async (tx) => {
      requireUuid(input.conversationId, "conversationId");
      requireUuid(input.agentId, "agentId");
      requireUuid(input.userId, "userId");
      const turnId = input.turnId === undefined ? randomUUID() : requireUuid(input.turnId, "turnId");
      // One append per conversation at a time (the row lock is held until commit), so that the
      // check below sees any append of the same turn made before, even by a host that lost its
      // lease while its transaction was open (a paused owner waking up), and sequences never clash.
      await tx.query(`select id from ${this.#t("conversations")} where id = $1 for update`, [
        input.conversationId,
      ]);
      if (input.turnId !== undefined) {
        // Idempotent by turn id: a turn recorded already is answered as it was recorded.
        const existing = (
          await tx.query<Row>(
            `select ${TRANSCRIPT_COLUMNS.join(", ")} from ${this.#t("conversation_transcripts")}
             where conversation_id = $1 and turn_id = $2`,
            [input.conversationId, turnId],
          )
        ).map(transcriptFromRow);
        const user = existing.find((r) => r.role === "user");
        const assistant = existing.find((r) => r.role === "assistant");
        if (user !== undefined && assistant !== undefined) return { turnId, user, assistant };
      }
      const seqRows = await tx.query<{ seq: number | string }>(
        `select coalesce(max(sequence), 0) as seq from ${this.#t("conversation_transcripts")} where conversation_id = $1`,
        [input.conversationId],
      );
      const base = Number(seqRows[0]?.seq ?? 0);
      const shared: Row = {
        conversation_id: input.conversationId,
        session_id: input.sessionId ?? null,
        agent_id: input.agentId,
        user_id: input.userId,
        turn_id: turnId,
        metadata: input.metadata ?? {},
        source: input.source ?? null,
        user_message: input.userMessage,
        assistant_message: input.assistantMessage,
      };
      const userRow: Row = {
        ...shared,
        role: "user",
        content: input.userMessage,
        citations: [],
        sequence: base + 1,
      };
      if (embedding !== null) userRow["embeddings"] = vectorLiteral(embedding, this.#transcriptDimension);
      const assistantRow: Row = {
        ...shared,
        role: "assistant",
        content: input.assistantMessage,
        citations: input.citations ?? [],
        sequence: base + 2,
      };
      const u = this.#insertSql("conversation_transcripts", userRow, TRANSCRIPT_COLUMNS);
      const a = this.#insertSql("conversation_transcripts", assistantRow, TRANSCRIPT_COLUMNS);
      const userRows = await tx.query<Row>(u.text, u.params);
      const assistantRows = await tx.query<Row>(a.text, a.params);
      return {
        turnId,
        user: transcriptFromRow(userRows[0] ?? {}),
        assistant: transcriptFromRow(assistantRows[0] ?? {}),
      };
    });
  }

  listTranscripts(conversationId: string, options: { limit?: number } = {}): Promise<TranscriptRecord[]> {
    return this.#run("list transcripts", async (db) => {
      requireUuid(conversationId, "conversationId");
      const limit = clampLimit(options.limit, MAX_LIST, MAX_LIST);
      const order = `created_at, coalesce(sequence, 0), case role when 'user' then 0 else 1 end`;
      const orderDesc = `created_at desc, coalesce(sequence, 0) desc, case role when 'user' then 0 else 1 end desc`;
      const rows = await db.query<Row>(
        `select * from (
           select ${TRANSCRIPT_COLUMNS.join(", ")} from ${this.#t("conversation_transcripts")}
           where conversation_id = $1 order by ${orderDesc} limit $2
         ) latest order by ${order}`,
        [conversationId, limit],
      );
      return rows.map(transcriptFromRow);
    });
  }

  findTurn(turnId: string): Promise<TranscriptRecord[]> {
    return this.#run("find turn", async (db) => {
      if (!isUuid(turnId)) return [];
      const rows = await db.query<Row>(
        `select ${TRANSCRIPT_COLUMNS.join(", ")} from ${this.#t("conversation_transcripts")}
         where turn_id = $1 order by case role when 'user' then 0 else 1 end, created_at limit 10`,
        [turnId],
      );
      return rows.map(transcriptFromRow);
    });
  }

  async setTranscriptEmbedding(turnId: string, embedding: readonly number[]): Promise<boolean> {
    this.#requireVector("storing a transcript embedding");
    requireUuid(turnId, "turnId");
    const vector = vectorLiteral(embedding, this.#transcriptDimension);
    return this.#run("set transcript embedding", async (db) => {
      const rows = await db.query(
        `update ${this.#t("conversation_transcripts")} set embeddings = $2 where turn_id = $1 and role = 'user' returning id`,
        [turnId, vector],
      );
      return rows.length > 0;
    });
  }

  listTranscriptsForEmbedding(options: { afterId?: string; limit: number }): Promise<TranscriptToEmbed[]> {
    return this.#run("list transcripts for embedding", async (db) => {
      const params: unknown[] = [clampLimit(options.limit, MAX_LIST, MAX_LIST)];
      let after = "";
      if (options.afterId !== undefined) {
        params.push(options.afterId);
        after = "and id > $2";
      }
      // Rows of the old service may carry the text in user_message only.
      const rows = await db.query<Row>(
        `select id, turn_id, coalesce(nullif(content, ''), user_message, '') as content
         from ${this.#t("conversation_transcripts")}
         where role = 'user' ${after} order by id limit $1`,
        params,
      );
      return rows.map((r) => ({
        id: text(r["id"]),
        turnId: textOrNull(r["turn_id"]),
        content: text(r["content"]),
      }));
    });
  }

  // ---- documents -----------------------------------------------------------------------------

  createDocument(input: CreateDocumentInput): Promise<DocumentRecord> {
    return this.#run("create document", async (db) => {
      const row: Row = {
        title: input.title,
        file_name: input.fileName ?? null,
        file_type: input.fileType ?? null,
        content: input.content ?? null,
        status: input.status ?? "pending",
        metadata: input.metadata ?? {},
      };
      if (input.id !== undefined) row["id"] = requireUuid(input.id, "document id");
      const { text, params } = this.#insertSql("documents", row, DOCUMENT_COLUMNS);
      const rows = await db.query<Row>(text, params);
      return documentFromRow(rows[0] ?? {});
    });
  }

  getDocument(id: string): Promise<DocumentRecord> {
    return this.#run("get document", async (db) => {
      const rows = await db.query<Row>(
        `select ${DOCUMENT_COLUMNS.join(", ")} from ${this.#t("documents")} where id = $1`,
        [id],
      );
      if (rows[0] === undefined) throw new NotFoundError(`document ${id} not found`, { details: { id } });
      return documentFromRow(rows[0]);
    });
  }

  listDocuments(options: ListPage = {}): Promise<DocumentRecord[]> {
    return this.#run("list documents", async (db) => {
      const rows = await db.query<Row>(
        `select ${DOCUMENT_COLUMNS.join(", ")} from ${this.#t("documents")} order by created_at desc, id limit $1 offset $2`,
        [clampLimit(options.limit, 100, MAX_LIST), clampLimit(options.offset, 0, Number.MAX_SAFE_INTEGER)],
      );
      return rows.map(documentFromRow);
    });
  }

  updateDocumentStatus(id: string, status: string): Promise<void> {
    return this.#run("update document status", async (db) => {
      const rows = await db.query(
        `update ${this.#t("documents")} set status = $2 where id = $1 returning id`,
        [id, status],
      );
      if (rows.length === 0) throw new NotFoundError(`document ${id} not found`, { details: { id } });
    });
  }

  deleteDocument(id: string): Promise<void> {
    return this.#run("delete document", async (db) => {
      const rows = await db.query(`delete from ${this.#t("documents")} where id = $1 returning id`, [id]);
      if (rows.length === 0) throw new NotFoundError(`document ${id} not found`, { details: { id } });
    });
  }

  updateDocument(id: string, patch: DocumentPatch): Promise<DocumentRecord> {
    return this.#run("update document", async (db) => {
      const row = documentPatchToColumns(patch);
      const columns = Object.keys(row);
      if (columns.length === 0) return this.getDocument(id);
      const sets = columns.map((c, i) => `${quoteIdent(c)} = $${i + 2}${isJsonColumn(c) ? "::jsonb" : ""}`);
      const params = [id, ...columns.map((c) => (isJsonColumn(c) ? JSON.stringify(row[c]) : row[c]))];
      const rows = await db.query<Row>(
        `update ${this.#t("documents")} set ${sets.join(", ")} where id = $1 returning ${DOCUMENT_COLUMNS.join(", ")}`,
        params,
      );
      if (rows[0] === undefined) throw new NotFoundError(`document ${id} not found`, { details: { id } });
      return documentFromRow(rows[0]);
    });
  }

  /** Validates chunks (and their embeddings' dimension) before any statement runs. */
  #chunkRows(chunks: readonly ChunkInput[], options: { unique: boolean }): ChunkRow[] {
    if (chunks.some((c) => c.embedding !== undefined && c.embedding !== null)) {
      this.#requireVector("storing chunk embeddings");
    }
    checkChunkIndexes(chunks, options);
    const dimension = this.capabilities.embeddingDimension;
    return chunks.map((c) => ({
      chunk_index: c.chunkIndex,
      content: c.content,
      chunk_metadata: JSON.stringify(c.chunkMetadata ?? {}),
      document_title: c.documentTitle ?? null,
      document_source_url: c.documentSourceUrl ?? null,
      embeddings:
        c.embedding === undefined || c.embedding === null ? null : vectorLiteral(c.embedding, dimension),
    }));
  }

  /**
   * The document's id, its row locked until the transaction ends: chunk writes of one document
   * (and their chunk_count) are serialised. SF_ERR_NOT_FOUND when there is no such document.
   */
  async #lockDocument(tx: SqlQueryable, documentId: string): Promise<string> {
    const doc = await tx.query<{ id: string }>(
      `select id from ${this.#t("documents")} where id = $1 for update`,
      [documentId],
    );
    if (doc[0] === undefined) {
      throw new NotFoundError(`document ${documentId} not found`, { details: { documentId } });
    }
    return doc[0].id;
  }

  async #insertChunks(tx: SqlQueryable, documentId: string, rows: readonly ChunkRow[]): Promise<void> {
    const withVector = this.capabilities.vector;
    const perRow = withVector ? 7 : 6;
    for (let start = 0; start < rows.length; start += CHUNK_INSERT_BATCH) {
      const batch = rows.slice(start, start + CHUNK_INSERT_BATCH);
      const params: unknown[] = [];
      const tuples = batch.map((r, i) => {
        const b = i * perRow;
        params.push(
          documentId,
          r.chunk_index,
          r.content,
          r.chunk_metadata,
          r.document_title,
          r.document_source_url,
        );
        if (withVector) params.push(r.embeddings);
        const cols = [`$${b + 1}`, `$${b + 2}`, `$${b + 3}`, `$${b + 4}::jsonb`, `$${b + 5}`, `$${b + 6}`];
        if (withVector) cols.push(`$${b + 7}`);
        return `(${cols.join(", ")})`;
      });
      await tx.query(
        `insert into ${this.#t("document_chunks")}
           (document_id, chunk_index, content, chunk_metadata, document_title, document_source_url${withVector ? ", embeddings" : ""})
         values ${tuples.join(", ")}`,
        params,
      );
    }
  }

  async #updateChunkCount(tx: SqlQueryable, documentId: string): Promise<void> {
    await tx.query(
      `update ${this.#t("documents")} set chunk_count = (select count(*) from ${this.#t("document_chunks")} where document_id = $1) where id = $1`,
      [documentId],
    );
  }

  async addChunks(documentId: string, chunks: readonly ChunkInput[]): Promise<number> {
    const rows = this.#chunkRows(chunks, { unique: false });
    return this.#tx("add chunks", async (tx) => {
      const id = await this.#lockDocument(tx, documentId);
      await this.#insertChunks(tx, id, rows);
      await this.#updateChunkCount(tx, id);
      return rows.length;
    });
  }

  /**
   * Replaces by delete-then-insert in one transaction rather than `on conflict`: databases of
   * the old service have no unique key on (document_id, chunk_index) to conflict on.
   */
  async upsertChunks(documentId: string, chunks: readonly ChunkInput[]): Promise<number> {
    const rows = this.#chunkRows(chunks, { unique: true });
    return this.#tx("upsert chunks", async (tx) => {
      const id = await this.#lockDocument(tx, documentId);
      if (rows.length > 0) {
        await tx.query(
          `delete from ${this.#t("document_chunks")} where document_id = $1 and chunk_index = any($2::int[])`,
          [id, rows.map((r) => r.chunk_index)],
        );
        await this.#insertChunks(tx, id, rows);
      }
      await this.#updateChunkCount(tx, id);
      return rows.length;
    });
  }

  async deleteChunksFrom(documentId: string, fromIndex: number): Promise<number> {
    if (!Number.isInteger(fromIndex) || fromIndex < 0) {
      throw new InvalidInputError("fromIndex must be a non-negative integer");
    }
    return this.#tx("delete chunks", async (tx) => {
      const id = await this.#lockDocument(tx, documentId);
      const deleted = await tx.query<{ n: number | string }>(
        `with gone as (
           delete from ${this.#t("document_chunks")} where document_id = $1 and chunk_index >= $2 returning 1
         ) select count(*) as n from gone`,
        [id, fromIndex],
      );
      await this.#updateChunkCount(tx, id);
      return Number(deleted[0]?.n ?? 0);
    });
  }

  listChunks(documentId: string): Promise<ChunkRecord[]> {
    return this.#run("list chunks", async (db) => {
      const rows = await db.query<Row>(
        `select ${CHUNK_COLUMNS.join(", ")} from ${this.#t("document_chunks")} where document_id = $1 order by chunk_index`,
        [documentId],
      );
      return rows.map(chunkFromRow);
    });
  }

  assignDocument(
    agentId: string,
    documentId: string,
    options: { accessType?: string; enabled?: boolean } = {},
  ): Promise<AgentDocumentRecord> {
    return this.#run("assign document", async (db) => {
      const rows = await db.query<Row>(
        `insert into ${this.#t("agent_documents")} (agent_id, document_id, access_type, enabled)
         values ($1, $2, $3, $4)
         on conflict (agent_id, document_id) do update set access_type = excluded.access_type, enabled = excluded.enabled
         returning agent_id, document_id, access_type, enabled`,
        [agentId, documentId, options.accessType ?? "read", options.enabled ?? true],
      );
      return agentDocumentFromRow(rows[0] ?? {});
    });
  }

  unassignDocument(agentId: string, documentId: string): Promise<void> {
    return this.#run("unassign document", async (db) => {
      await db.query(`delete from ${this.#t("agent_documents")} where agent_id = $1 and document_id = $2`, [
        agentId,
        documentId,
      ]);
    });
  }

  listAgentDocuments(agentId: string): Promise<AgentDocumentRecord[]> {
    return this.#run("list agent documents", async (db) => {
      const rows = await db.query<Row>(
        `select agent_id, document_id, access_type, enabled from ${this.#t("agent_documents")} where agent_id = $1 order by document_id`,
        [agentId],
      );
      return rows.map(agentDocumentFromRow);
    });
  }

  // ---- vector search (through the RPC functions, as on Supabase) ----------------------------

  /**
   * Calls an RPC function of the tenant schema. Functions of attached databases may resolve
   * their tables through search_path, so outside `public` the call runs with the tenant schema
   * first on it.
   */
  async #rpc(what: string, sql: string, params: unknown[]): Promise<Row[]> {
    if (this.schema === "public") return this.#run(what, (db) => db.query<Row>(sql, params));
    return this.#tx(what, async (tx) => {
      await tx.exec(`set local search_path to ${quoteIdent(this.schema)}, public, extensions`);
      return tx.query<Row>(sql, params);
    });
  }

  /**
   * After a search found nothing: when the column now has another dimension than the query (the
   * columns were retyped by another store, or are unconstrained and hold no vectors to compare),
   * the empty answer would hide a mismatch, so it becomes SF_ERR_EMBEDDING_DIMENSION_MISMATCH.
   */
  async #checkStoredDimension(table: EmbeddingTable, queryDimension: number): Promise<void> {
    const types = await this.#run("read embedding columns", (db) => embeddingColumnTypes(db, this.schema));
    const stored = vectorDimension(types[table]);
    if (stored === null || stored === queryDimension) return;
    this.#learnDimensions(types);
    throw new EmbeddingDimensionMismatchError(
      `query embedding has ${queryDimension} dimensions; tenant ${this.tenantId} stores ${stored} in ${table}.embeddings`,
      { details: { got: queryDimension, expected: stored, table } },
    );
  }

  #learnDimensions(types: Partial<Record<EmbeddingTable, string>>): void {
    this.#capabilities = Object.freeze({
      ...this.#capabilities,
      embeddingDimension: vectorDimension(types.document_chunks),
    });
    this.#transcriptDimension = vectorDimension(types.conversation_transcripts);
  }

  async matchDocuments(input: MatchDocumentsInput): Promise<DocumentMatch[]> {
    this.#requireVector("match_documents");
    const vector = vectorLiteral(input.embedding, this.capabilities.embeddingDimension);
    const count = clampLimit(input.count, 5, MAX_LIST);
    const rows = await this.#rpc(
      "match_documents",
      `select * from ${quoteIdent(this.schema)}.match_documents(p_query_embedding => $1, p_agent_slug => $2, p_match_threshold => $3, p_match_count => $4)`,
      [vector, input.agentSlug, input.threshold ?? 0, count],
    );
    if (rows.length === 0) await this.#checkStoredDimension("document_chunks", input.embedding.length);
    return rows.map(documentMatchFromRow);
  }

  async matchConversationTranscriptsSecure(input: MatchTranscriptsInput): Promise<TranscriptMatch[]> {
    this.#requireVector("match_conversation_transcripts_secure");
    requireUuid(input.userId, "userId");
    const vector = vectorLiteral(input.embedding, this.#transcriptDimension);
    const count = clampLimit(input.count, 5, MAX_LIST);
    const rows = await this.#rpc(
      "match_conversation_transcripts_secure",
      `select * from ${quoteIdent(this.schema)}.match_conversation_transcripts_secure(query_embeddings => $1, agent_slug_param => $2, user_id_param => $3, match_count => $4)`,
      [vector, input.agentSlug, input.userId, count],
    );
    if (rows.length === 0) {
      await this.#checkStoredDimension("conversation_transcripts", input.embedding.length);
    }
    return rows.map(transcriptMatchFromRow);
  }

  /**
   * Nulls every stored embedding; with another dimension, retypes both columns to
   * `vector(dimension)` (their HNSW indexes dropped first and re-created as migration 0003 does),
   * all in one transaction. Other indexes on the columns are rebuilt by PostgreSQL.
   */
  async resetEmbeddings(dimension: number): Promise<void> {
    this.#requireVector("resetting embeddings");
    validateEmbeddingDimension(dimension);
    const types = await this.#tx("reset embeddings", async (tx) => {
      // `vector` and its operator classes live in `public` or, on databases from Supabase, `extensions`.
      await tx.exec(`set local search_path to ${quoteIdent(this.schema)}, public, extensions`);
      for (const table of EMBEDDING_TABLES) {
        await tx.query(`update ${this.#t(table)} set embeddings = null where embeddings is not null`);
      }
      const before = await embeddingColumnTypes(tx, this.schema);
      for (const table of EMBEDDING_TABLES) {
        if (vectorDimension(before[table]) === dimension) continue;
        const hnsw = await tx.query<{ name: string }>(
          `select distinct ic.relname as name
           from pg_catalog.pg_index i
           join pg_catalog.pg_class ic on ic.oid = i.indexrelid
           join pg_catalog.pg_am am on am.oid = ic.relam
           join pg_catalog.pg_attribute a on a.attrelid = i.indrelid and a.attnum = any (i.indkey)
           where i.indrelid = format('%I.%I', $1::text, $2::text)::regclass
             and am.amname = 'hnsw' and a.attname = 'embeddings'`,
          [this.schema, table],
        );
        for (const { name } of hnsw)
          await tx.exec(`drop index ${quoteIdent(this.schema)}.${quoteIdent(name)}`);
        await tx.exec(`alter table ${this.#t(table)} alter column embeddings type vector(${dimension})`);
        await tx.exec(
          `create index ${quoteIdent(`${table}_embeddings_hnsw_idx`)} on ${this.#t(table)} using hnsw (embeddings vector_cosine_ops)`,
        );
      }
      return embeddingColumnTypes(tx, this.schema);
    });
    this.#learnDimensions(types);
  }

  // ---- provider keys -------------------------------------------------------------------------

  async setProviderKey(provider: string, apiKey: string): Promise<void> {
    requireProviderName(provider);
    const keyring = this.#keys();
    const envelope = encryptSecret(keyring, apiKey, {
      tenantId: this.tenantId,
      field: providerField(provider),
    });
    return this.#run("set provider key", async (db) => {
      await db.query(
        `insert into ${this.#t("provider_keys")} (provider, key_id, ciphertext) values ($1, $2, $3)
         on conflict (provider) do update set key_id = excluded.key_id, ciphertext = excluded.ciphertext, updated_at = now()`,
        [provider, keyring.activeKeyId, envelope],
      );
    });
  }

  async getProviderKey(provider: string): Promise<string | null> {
    requireProviderName(provider);
    const rows = await this.#run("get provider key", (db) =>
      db.query<{ ciphertext: string }>(
        `select ciphertext from ${this.#t("provider_keys")} where provider = $1`,
        [provider],
      ),
    );
    const row = rows[0];
    if (row === undefined) return null;
    return decryptSecret(this.#keys(), row.ciphertext, {
      tenantId: this.tenantId,
      field: providerField(provider),
    });
  }

  listProviderKeys(): Promise<ProviderKeyInfo[]> {
    return this.#run("list provider keys", async (db) => {
      const rows = await db.query<Row>(
        `select provider, key_id, updated_at from ${this.#t("provider_keys")} order by provider`,
      );
      return rows.map((r) => ({
        provider: text(r["provider"]),
        keyId: text(r["key_id"]),
        updatedAt: toDate(r["updated_at"]),
      }));
    });
  }

  deleteProviderKey(provider: string): Promise<boolean> {
    return this.#run("delete provider key", async (db) => {
      const rows = await db.query(
        `delete from ${this.#t("provider_keys")} where provider = $1 returning provider`,
        [provider],
      );
      return rows.length > 0;
    });
  }

  secretsForRotation(): RotatableSecrets {
    const table = this.#t("provider_keys");
    const tenantId = this.tenantId;
    return {
      name: `tenant:${tenantId}:provider_keys`,
      listNotOnKey: (activeKeyId, limit, afterRef) =>
        this.#run("list provider keys for rotation", async (db) => {
          const rows = await db.query<{ provider: string; key_id: string; ciphertext: string }>(
            `select provider, key_id, ciphertext from ${table}
             where key_id <> $1 and ($2::text is null or provider > $2) order by provider limit $3`,
            [activeKeyId, afterRef, limit],
          );
          return rows.map((r): StoredSecret => ({
            ref: r.provider,
            keyId: r.key_id,
            envelope: r.ciphertext,
            context: { tenantId, field: providerField(r.provider) },
          }));
        }),
      replaceEnvelope: (secret, envelope, keyId) =>
        this.#run("rotate provider key", async (db) => {
          const rows = await db.query(
            `update ${table} set ciphertext = $1, key_id = $2, updated_at = now()
             where provider = $3 and ciphertext = $4 returning provider`,
            [envelope, keyId, secret.ref, secret.envelope],
          );
          return rows.length > 0;
        }),
    };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#ownsDb) await this.#db.close();
  }
}
