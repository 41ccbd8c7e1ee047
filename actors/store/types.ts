/**
 * The store interfaces and their records. Records are camelCase; the column names they map to
 * are those of SEED_CONTRACT.md (see `tenant_columns.ts`). JSON columns keep their own keys
 * (`voiceSettings.llm_provider`).
 */
import type { RotatableSecrets } from "../crypto/index.ts";

// ---------------------------------------------------------------------------------------------
// Connection descriptions (what `client_secrets` holds, sealed, per tenant)

/** Where a tenant's database is. Serialised and sealed into `client_secrets` field `database`. */
export type TenantDatabaseConfig =
  | {
      kind: "supabase";
      /** `https://<project>.supabase.co` */
      url: string;
      serviceRoleKey: string;
      /** Exposed schema; default `public`. */
      schema?: string;
      /** Embedding dimension of the project's vector columns; default 1024. */
      embeddingDimension?: number;
    }
  | { kind: "postgres"; url: string; schema?: string }
  | {
      kind: "pglite";
      /** A directory, or `memory://<name>`. */
      dataDir: string;
      schema?: string;
    };

export type TenantDatabaseKind = TenantDatabaseConfig["kind"];

export interface LivekitCredentials {
  url: string;
  apiKey: string;
  apiSecret: string;
}

// ---------------------------------------------------------------------------------------------
// Platform records

export const CLIENT_STATUSES = ["active", "suspended", "disabled"] as const;
export type ClientStatus = (typeof CLIENT_STATUSES)[number];

/** The tenant's `embedding` settings (keys as stored). */
export interface EmbeddingSettings {
  provider?: string | null;
  document_model?: string | null;
  conversation_model?: string | null;
  /** Default 1024. */
  dimension?: number | null;
}

/** What the tenant's stored vectors were embedded with (set by ingestion / re-embedding). */
export interface EmbeddingIndexInfo {
  provider: string;
  document_model: string;
  conversation_model: string;
  dimension: number;
  updated_at: string;
}

/**
 * `clients.settings`: per-client settings that are not secret (stored unsealed; a property with
 * a secret-like name is refused). Keys as stored.
 */
export interface ClientSettings {
  embedding?: EmbeddingSettings | null;
  embedding_index?: EmbeddingIndexInfo | null;
  /**
   * Browser origins that may use the client's API keys (exact `scheme://host[:port]`, or `*`);
   * at most 50. See actors/platform/cors_origins.ts and gateway/cors.ts.
   */
  cors_origins?: string[] | null;
  [key: string]: unknown;
}

export interface ClientRecord {
  id: string;
  slug: string;
  name: string;
  status: ClientStatus;
  /** `{}` when none were set. */
  settings: ClientSettings;
  createdAt: Date;
  updatedAt: Date;
}

export interface CreateClientInput {
  slug: string;
  name: string;
  status?: ClientStatus;
  /** Default `{}`. */
  settings?: ClientSettings;
  /** Keep an existing id (migrating from the old service); generated otherwise. */
  id?: string;
}

export interface UpdateClientInput {
  slug?: string;
  name?: string;
  status?: ClientStatus;
  /** Replaces the whole settings object. */
  settings?: ClientSettings;
}

/** Names of the sealed fields in `client_secrets`. */
export const CLIENT_SECRET_FIELDS = ["database", "livekit"] as const;
export type ClientSecretField = (typeof CLIENT_SECRET_FIELDS)[number];

export interface ClientSecretInfo {
  field: ClientSecretField;
  keyId: string;
  updatedAt: Date;
}

export interface ApiKeyRecord {
  id: string;
  clientId: string;
  name: string;
  /** `sk_` + 8 characters: safe to show. */
  displayPrefix: string;
  scopes: string[];
  siteUrl: string | null;
  createdAt: Date;
  lastUsedAt: Date | null;
  expiresAt: Date | null;
  revokedAt: Date | null;
}

export interface CreateApiKeyInput {
  clientId: string;
  name?: string;
  scopes?: string[];
  /** The WordPress site the key was issued for. */
  siteUrl?: string | null;
  expiresAt?: Date | null;
}

export interface CreatedApiKey {
  record: ApiKeyRecord;
  /** The full key, returned only here: show it once. */
  secret: string;
}

export interface AuditEntryInput {
  clientId?: string | null;
  /** Who: `admin:<id>`, `api_key:<id>`, `system`. */
  actor: string;
  /** What: `client.create`, `secret.update`, `api_key.revoke`, … */
  action: string;
  target?: string | null;
  /** Secret-named properties are redacted before storing. */
  details?: Record<string, unknown>;
}

export interface AuditEntry {
  id: number;
  clientId: string | null;
  actor: string;
  action: string;
  target: string | null;
  details: Record<string, unknown>;
  createdAt: Date;
}

export interface ListPage {
  limit?: number;
  offset?: number;
}

export interface PlatformStore {
  createClient(input: CreateClientInput): Promise<ClientRecord>;
  /** Throws SF_ERR_TENANT_NOT_FOUND. */
  getClient(id: string): Promise<ClientRecord>;
  findClientBySlug(slug: string): Promise<ClientRecord | null>;
  /** `search` matches a case-insensitive substring of the slug or the name. */
  listClients(options?: ListPage & { status?: ClientStatus; search?: string }): Promise<ClientRecord[]>;
  /** How many clients there are of each status (every status present, 0 when none). */
  countClientsByStatus(): Promise<Record<ClientStatus, number>>;
  updateClient(id: string, patch: UpdateClientInput): Promise<ClientRecord>;
  /** Whether an active client lists `origin` (or `*`) in `settings.cors_origins`. */
  isCorsOriginListed(origin: string): Promise<boolean>;
  /** Deletes the client, its secrets and API keys (audit entries stay). */
  deleteClient(id: string): Promise<void>;

  setTenantDatabase(clientId: string, config: TenantDatabaseConfig): Promise<void>;
  getTenantDatabase(clientId: string): Promise<TenantDatabaseConfig | null>;
  setLivekitCredentials(clientId: string, credentials: LivekitCredentials): Promise<void>;
  getLivekitCredentials(clientId: string): Promise<LivekitCredentials | null>;
  listClientSecrets(clientId: string): Promise<ClientSecretInfo[]>;
  deleteClientSecret(clientId: string, field: ClientSecretField): Promise<boolean>;

  createApiKey(input: CreateApiKeyInput): Promise<CreatedApiKey>;
  /** The key's record when it is valid (exists, not revoked, not expired); null otherwise. */
  verifyApiKey(secret: string): Promise<ApiKeyRecord | null>;
  listApiKeys(clientId: string): Promise<ApiKeyRecord[]>;
  /** Throws SF_ERR_NOT_FOUND. */
  revokeApiKey(id: string): Promise<ApiKeyRecord>;

  appendAudit(entry: AuditEntryInput): Promise<AuditEntry>;
  listAudit(options?: { clientId?: string; limit?: number; beforeId?: number }): Promise<AuditEntry[]>;

  /** The sealed `client_secrets`, for `rotateSecrets`. */
  secretsForRotation(): RotatableSecrets;
  close(): Promise<void>;
}

// ---------------------------------------------------------------------------------------------
// Tenant records

/** `agents.voice_settings` (JSON keys as the old service wrote them). */
export interface VoiceSettings {
  llm_provider?: string;
  llm_model?: string;
  stt_provider?: string;
  tts_provider?: string;
  provider?: string;
  voice_id?: string;
  model?: string;
  provider_config?: Record<string, unknown>;
  [key: string]: unknown;
}

export interface AgentRecord {
  id: string;
  slug: string;
  name: string;
  description: string | null;
  systemPrompt: string | null;
  agentImage: string | null;
  voiceSettings: VoiceSettings;
  webhooks: Record<string, unknown>;
  toolsConfig: Record<string, unknown>;
  enabled: boolean;
  showCitations: boolean;
  ragResultsLimit: number;
  model: string | null;
  contextRetentionMinutes: number | null;
  maxContextMessages: number | null;
  textChatEnabled: boolean;
  voiceChatEnabled: boolean;
  createdAt: Date | null;
  updatedAt: Date | null;
}

export type AgentInput = Partial<Omit<AgentRecord, "createdAt" | "updatedAt">> & {
  slug: string;
  name: string;
};
export type AgentPatch = Partial<Omit<AgentRecord, "id" | "createdAt" | "updatedAt">>;

export interface ConversationRecord {
  id: string;
  sessionId: string | null;
  agentId: string | null;
  userId: string | null;
  channel: string;
  metadata: Record<string, unknown>;
  createdAt: Date;
}

export interface CreateConversationInput {
  id?: string;
  sessionId?: string | null;
  agentId: string;
  userId: string;
  channel?: string;
  metadata?: Record<string, unknown>;
}

export type TranscriptRole = "user" | "assistant" | "system" | "tool";

export interface TranscriptRecord {
  id: string;
  conversationId: string;
  sessionId: string | null;
  agentId: string | null;
  userId: string | null;
  role: string;
  content: string;
  turnId: string | null;
  citations: unknown[];
  metadata: Record<string, unknown>;
  source: string | null;
  sequence: number | null;
  userMessage: string | null;
  assistantMessage: string | null;
  createdAt: Date;
}

export interface AppendTurnInput {
  conversationId: string;
  agentId: string;
  userId: string;
  sessionId?: string | null;
  /** Generated when absent. */
  turnId?: string;
  userMessage: string;
  assistantMessage: string;
  citations?: unknown[];
  metadata?: Record<string, unknown>;
  /** `text`, `voice`, … */
  source?: string | null;
  /** Embedding of the turn, stored on the user row (searched by match_conversation_transcripts_secure). */
  embedding?: readonly number[] | null;
}

export interface AppendedTurn {
  turnId: string;
  user: TranscriptRecord;
  assistant: TranscriptRecord;
}

export interface DocumentRecord {
  id: string;
  title: string;
  fileName: string | null;
  fileType: string | null;
  content: string | null;
  status: string;
  chunkCount: number;
  metadata: Record<string, unknown>;
  createdAt: Date;
}

export interface CreateDocumentInput {
  id?: string;
  title: string;
  fileName?: string | null;
  fileType?: string | null;
  content?: string | null;
  status?: string;
  metadata?: Record<string, unknown>;
}

/** Fields of `updateDocument`; only those given change (`metadata` is replaced as a whole). */
export interface DocumentPatch {
  title?: string;
  content?: string | null;
  status?: string;
  metadata?: Record<string, unknown>;
  fileName?: string | null;
  fileType?: string | null;
}

export interface ChunkInput {
  chunkIndex: number;
  content: string;
  embedding?: readonly number[] | null;
  chunkMetadata?: Record<string, unknown>;
  documentTitle?: string | null;
  documentSourceUrl?: string | null;
}

export interface ChunkRecord {
  id: string;
  documentId: string;
  chunkIndex: number;
  content: string;
  chunkMetadata: Record<string, unknown>;
  documentTitle: string | null;
  documentSourceUrl: string | null;
}

export interface AgentDocumentRecord {
  agentId: string;
  documentId: string;
  accessType: string;
  enabled: boolean;
}

/** A user row of `conversation_transcripts`, as `listTranscriptsForEmbedding` lists it. */
export interface TranscriptToEmbed {
  id: string;
  turnId: string | null;
  content: string;
}

/** A row of `match_documents`. */
export interface DocumentMatch {
  id: string;
  documentId: string;
  title: string | null;
  content: string;
  chunkIndex: number;
  sourceUrl: string | null;
  sourceType: string | null;
  similarity: number;
  documentTitle: string | null;
}

/** A row of `match_conversation_transcripts_secure`. */
export interface TranscriptMatch {
  conversationId: string;
  userMessage: string | null;
  agentResponse: string | null;
  similarity: number;
  createdAt: Date;
}

export interface MatchDocumentsInput {
  embedding: readonly number[];
  agentSlug: string;
  /** Minimum cosine similarity; default 0. */
  threshold?: number;
  /** Default 5 (the agent's `ragResultsLimit` is the caller's choice). */
  count?: number;
}

export interface MatchTranscriptsInput {
  embedding: readonly number[];
  agentSlug: string;
  userId: string;
  count?: number;
}

export interface ProviderKeyInfo {
  provider: string;
  keyId: string;
  updatedAt: Date;
}

export interface TenantStoreCapabilities {
  /** Embedding columns and the two RPC functions are present. */
  vector: boolean;
  /** Dimension of the stored embeddings, when known. */
  embeddingDimension: number | null;
}

export interface TenantStore {
  readonly tenantId: string;
  readonly kind: TenantDatabaseKind;
  readonly capabilities: TenantStoreCapabilities;

  listAgents(options?: { enabledOnly?: boolean }): Promise<AgentRecord[]>;
  /** Throws SF_ERR_AGENT_NOT_FOUND. */
  getAgent(slug: string): Promise<AgentRecord>;
  findAgent(slug: string): Promise<AgentRecord | null>;
  createAgent(input: AgentInput): Promise<AgentRecord>;
  updateAgent(slug: string, patch: AgentPatch): Promise<AgentRecord>;
  deleteAgent(slug: string): Promise<void>;

  createConversation(input: CreateConversationInput): Promise<ConversationRecord>;
  /** Throws SF_ERR_NOT_FOUND. */
  getConversation(id: string): Promise<ConversationRecord>;
  findConversation(id: string): Promise<ConversationRecord | null>;
  listConversations(filter: {
    agentId?: string;
    userId?: string;
    limit?: number;
  }): Promise<ConversationRecord[]>;

  /** Writes the user and the assistant row of one turn (same turn_id) together. */
  appendTurn(input: AppendTurnInput): Promise<AppendedTurn>;
  /** The conversation's rows in order; `limit` keeps the latest ones. */
  listTranscripts(conversationId: string, options?: { limit?: number }): Promise<TranscriptRecord[]>;
  /** The rows of one turn (user first, then assistant); empty when no turn has that id. */
  findTurn(turnId: string): Promise<TranscriptRecord[]>;
  /**
   * Writes the embedding of a turn on its `role = 'user'` row(s) (what
   * match_conversation_transcripts_secure searches). False when the turn has no user row.
   */
  setTranscriptEmbedding(turnId: string, embedding: readonly number[]): Promise<boolean>;
  /** User rows ordered by id, `limit` at a time after `afterId` (keyset pagination), to (re-)embed them. */
  listTranscriptsForEmbedding(options: { afterId?: string; limit: number }): Promise<TranscriptToEmbed[]>;

  createDocument(input: CreateDocumentInput): Promise<DocumentRecord>;
  getDocument(id: string): Promise<DocumentRecord>;
  listDocuments(options?: ListPage): Promise<DocumentRecord[]>;
  updateDocumentStatus(id: string, status: string): Promise<void>;
  /** Changes only the given fields; throws SF_ERR_NOT_FOUND for an unknown id. */
  updateDocument(id: string, patch: DocumentPatch): Promise<DocumentRecord>;
  deleteDocument(id: string): Promise<void>;
  /** Adds chunks and sets the document's chunk_count to its number of chunks. */
  addChunks(documentId: string, chunks: readonly ChunkInput[]): Promise<number>;
  /**
   * Like `addChunks`, but idempotent by (document_id, chunk_index): a chunk with the same index
   * is replaced (content, embedding, metadata, title, source url). Sets chunk_count; returns the
   * number written. Indexes must be unique within one call.
   */
  upsertChunks(documentId: string, chunks: readonly ChunkInput[]): Promise<number>;
  /** Deletes the document's chunks with chunk_index >= `fromIndex`; sets chunk_count; returns how many. */
  deleteChunksFrom(documentId: string, fromIndex: number): Promise<number>;
  listChunks(documentId: string): Promise<ChunkRecord[]>;
  assignDocument(
    agentId: string,
    documentId: string,
    options?: { accessType?: string; enabled?: boolean },
  ): Promise<AgentDocumentRecord>;
  unassignDocument(agentId: string, documentId: string): Promise<void>;
  listAgentDocuments(agentId: string): Promise<AgentDocumentRecord[]>;

  /** RPC `match_documents`: chunks of documents assigned to the agent, by cosine similarity. */
  matchDocuments(input: MatchDocumentsInput): Promise<DocumentMatch[]>;
  /** RPC `match_conversation_transcripts_secure`: only that user's turns with that agent. */
  matchConversationTranscriptsSecure(input: MatchTranscriptsInput): Promise<TranscriptMatch[]>;
  /**
   * Sets `embeddings = null` on every chunk and transcript row, before re-embedding. With a
   * `dimension` other than the stored one, the SQL adapter also retypes both columns to
   * `vector(dimension)` (same transaction) and updates `capabilities.embeddingDimension`; the
   * Supabase adapter cannot, and fails with SF_ERR_EMBEDDING_DIMENSION_MISMATCH.
   */
  resetEmbeddings(dimension: number): Promise<void>;

  setProviderKey(provider: string, apiKey: string): Promise<void>;
  /** The decrypted key, or null. Never log it. */
  getProviderKey(provider: string): Promise<string | null>;
  listProviderKeys(): Promise<ProviderKeyInfo[]>;
  deleteProviderKey(provider: string): Promise<boolean>;
  /** The sealed `provider_keys`, for `rotateSecrets`. */
  secretsForRotation(): RotatableSecrets;

  close(): Promise<void>;
}
