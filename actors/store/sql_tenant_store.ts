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
  InvalidInputError,
  InvalidStoreOptionsError,
  NotFoundError,
  SchemaMissingError,
  StoreClosedError,
  VectorUnavailableError,
  toStoreError,
} from "./errors.ts";
import { quoteIdent, SCHEMA_NAME_PATTERN } from "./sql_database.ts";
import type { SqlDatabase, SqlQueryable } from "./sql_database.ts";
import {
  agentDocumentFromRow,
  agentFromRow,
  agentToColumns,
  CHUNK_COLUMNS,
  chunkFromRow,
  clampLimit,
  CONVERSATION_COLUMNS,
  conversationFromRow,
  DOCUMENT_COLUMNS,
  documentFromRow,
  documentMatchFromRow,
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
  DocumentRecord,
  ListPage,
  MatchDocumentsInput,
  MatchTranscriptsInput,
  ProviderKeyInfo,
  TenantStore,
  TenantStoreCapabilities,
  TranscriptMatch,
  TranscriptRecord,
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

export class SqlTenantStore implements TenantStore {
  readonly tenantId: string;
  readonly kind: "postgres" | "pglite";
  readonly capabilities: TenantStoreCapabilities;
  readonly schema: string;
  readonly #db: SqlDatabase;
  readonly #keyring: Keyring | undefined;
  readonly #ownsDb: boolean;
  readonly #transcriptDimension: number | null;
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
    this.capabilities = Object.freeze(capabilities);
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
      const columns = await options.db.query<{ table_name: string; type: string }>(
        `select c.relname as table_name, format_type(a.atttypid, a.atttypmod) as type
         from pg_catalog.pg_attribute a
         join pg_catalog.pg_class c on c.oid = a.attrelid
         join pg_catalog.pg_namespace n on n.oid = c.relnamespace
         where n.nspname = $1 and c.relname in ('document_chunks', 'conversation_transcripts')
           and a.attname = 'embeddings' and not a.attisdropped`,
        [schema],
      );
      const functions = await options.db.query<{ proname: string }>(
        `select distinct p.proname from pg_catalog.pg_proc p
         join pg_catalog.pg_namespace n on n.oid = p.pronamespace
         where n.nspname = $1 and p.proname = any($2::text[])`,
        [schema, [...TENANT_RPC_FUNCTIONS]],
      );
      const chunkType = columns.find((c) => c.table_name === "document_chunks")?.type;
      const transcriptType = columns.find((c) => c.table_name === "conversation_transcripts")?.type;
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

  async addChunks(documentId: string, chunks: readonly ChunkInput[]): Promise<number> {
    if (chunks.some((c) => c.embedding !== undefined && c.embedding !== null)) {
      this.#requireVector("storing chunk embeddings");
    }
    const dimension = this.capabilities.embeddingDimension;
    const rows = chunks.map((c) => {
      if (!Number.isInteger(c.chunkIndex) || c.chunkIndex < 0) {
        throw new InvalidInputError("chunkIndex must be a non-negative integer");
      }
      return {
        chunk_index: c.chunkIndex,
        content: c.content,
        chunk_metadata: JSON.stringify(c.chunkMetadata ?? {}),
        document_title: c.documentTitle ?? null,
        document_source_url: c.documentSourceUrl ?? null,
        embeddings:
          c.embedding === undefined || c.embedding === null ? null : vectorLiteral(c.embedding, dimension),
      };
    });
    return this.#tx("add chunks", async (tx) => {
      const doc = await tx.query<{ id: string }>(`select id from ${this.#t("documents")} where id = $1`, [
        documentId,
      ]);
      if (doc[0] === undefined)
        throw new NotFoundError(`document ${documentId} not found`, { details: { documentId } });
      const withVector = this.capabilities.vector;
      const perRow = withVector ? 7 : 6;
      for (let start = 0; start < rows.length; start += CHUNK_INSERT_BATCH) {
        const batch = rows.slice(start, start + CHUNK_INSERT_BATCH);
        const params: unknown[] = [];
        const tuples = batch.map((r, i) => {
          const b = i * perRow;
          params.push(
            doc[0]?.id,
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
      await tx.query(
        `update ${this.#t("documents")} set chunk_count = (select count(*) from ${this.#t("document_chunks")} where document_id = $1) where id = $1`,
        [doc[0].id],
      );
      return rows.length;
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

  async matchDocuments(input: MatchDocumentsInput): Promise<DocumentMatch[]> {
    this.#requireVector("match_documents");
    const vector = vectorLiteral(input.embedding, this.capabilities.embeddingDimension);
    const count = clampLimit(input.count, 5, MAX_LIST);
    const rows = await this.#rpc(
      "match_documents",
      `select * from ${quoteIdent(this.schema)}.match_documents(p_query_embedding => $1, p_agent_slug => $2, p_match_threshold => $3, p_match_count => $4)`,
      [vector, input.agentSlug, input.threshold ?? 0, count],
    );
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
    return rows.map(transcriptMatchFromRow);
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
