/**
 * Column names of the tenant schema (SEED_CONTRACT.md) and the row ↔ record conversions shared
 * by the SQL and the Supabase adapters. Rows may come from `pg`, PGlite or PostgREST JSON, and
 * from databases built by the old service (nulls where we have defaults), so every reader is
 * lenient about types and fills defaults.
 */
import { EmbeddingDimensionMismatchError, InvalidInputError } from "./errors.ts";
import type {
  AgentDocumentRecord,
  AgentInput,
  AgentPatch,
  AgentRecord,
  ChunkInput,
  ChunkRecord,
  ConversationRecord,
  DocumentMatch,
  DocumentPatch,
  DocumentRecord,
  TranscriptMatch,
  TranscriptRecord,
} from "./types.ts";

export type Row = Record<string, unknown>;

export const AGENT_COLUMNS = {
  id: "id",
  slug: "slug",
  name: "name",
  description: "description",
  systemPrompt: "system_prompt",
  agentImage: "agent_image",
  voiceSettings: "voice_settings",
  webhooks: "webhooks",
  toolsConfig: "tools_config",
  enabled: "enabled",
  showCitations: "show_citations",
  ragResultsLimit: "rag_results_limit",
  model: "model",
  contextRetentionMinutes: "context_retention_minutes",
  maxContextMessages: "max_context_messages",
  textChatEnabled: "text_chat_enabled",
  voiceChatEnabled: "voice_chat_enabled",
  createdAt: "created_at",
  updatedAt: "updated_at",
} as const satisfies Record<keyof AgentRecord, string>;

const JSON_AGENT_FIELDS = new Set(["voiceSettings", "webhooks", "toolsConfig"]);

export const CONVERSATION_COLUMNS = [
  "id",
  "session_id",
  "agent_id",
  "user_id",
  "channel",
  "metadata",
  "created_at",
] as const;

export const TRANSCRIPT_COLUMNS = [
  "id",
  "conversation_id",
  "session_id",
  "agent_id",
  "user_id",
  "role",
  "content",
  "turn_id",
  "citations",
  "metadata",
  "source",
  "sequence",
  "user_message",
  "assistant_message",
  "created_at",
] as const;

export const DOCUMENT_COLUMNS = [
  "id",
  "title",
  "file_name",
  "file_type",
  "content",
  "status",
  "chunk_count",
  "metadata",
  "created_at",
] as const;

export const CHUNK_COLUMNS = [
  "id",
  "document_id",
  "chunk_index",
  "content",
  "chunk_metadata",
  "document_title",
  "document_source_url",
] as const;

export const AGENT_DOCUMENT_COLUMNS = ["agent_id", "document_id", "access_type", "enabled"] as const;

const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function isUuid(value: string): boolean {
  return UUID_PATTERN.test(value);
}

export function requireUuid(value: string, what: string): string {
  if (!isUuid(value)) throw new InvalidInputError(`${what} must be a uuid`, { details: { field: what } });
  return value;
}

/** Text of a scalar column value (ids may arrive as numbers or bigints from old schemas). */
export function text(v: unknown): string {
  if (typeof v === "string") return v;
  if (v === null || v === undefined) return "";
  if (typeof v === "number" || typeof v === "bigint" || typeof v === "boolean") return String(v);
  if (v instanceof Date) return v.toISOString();
  return JSON.stringify(v);
}

export function textOrNull(v: unknown): string | null {
  return v === null || v === undefined ? null : text(v);
}

const str = text;
const strOrNull = textOrNull;

function numOr<T extends number | null>(v: unknown, fallback: T): number | T {
  if (typeof v === "number") return v;
  if (typeof v === "string" && v.trim() !== "" && Number.isFinite(Number(v))) return Number(v);
  return fallback;
}

function boolOr(v: unknown, fallback: boolean): boolean {
  return typeof v === "boolean" ? v : fallback;
}

function parseJson(v: unknown): unknown {
  if (typeof v === "string") {
    try {
      return JSON.parse(v) as unknown;
    } catch (err) {
      // Some old rows hold plain text in json columns: keep the text rather than fail the read.
      if (err instanceof SyntaxError) return v;
      throw err;
    }
  }
  return v;
}

function obj(v: unknown): Record<string, unknown> {
  const parsed = parseJson(v);
  return typeof parsed === "object" && parsed !== null && !Array.isArray(parsed)
    ? (parsed as Record<string, unknown>)
    : {};
}

function arr(v: unknown): unknown[] {
  const parsed = parseJson(v);
  return Array.isArray(parsed) ? parsed : [];
}

export function toDate(v: unknown): Date {
  if (v instanceof Date) return v;
  if (typeof v === "string" || typeof v === "number") return new Date(v);
  return new Date(Number.NaN);
}

function dateOrNull(v: unknown): Date | null {
  return v === null || v === undefined ? null : toDate(v);
}

export function agentFromRow(r: Row): AgentRecord {
  return {
    id: str(r["id"]),
    slug: str(r["slug"]),
    name: str(r["name"]),
    description: strOrNull(r["description"]),
    systemPrompt: strOrNull(r["system_prompt"]),
    agentImage: strOrNull(r["agent_image"]),
    voiceSettings: obj(r["voice_settings"]),
    webhooks: obj(r["webhooks"]),
    toolsConfig: obj(r["tools_config"]),
    enabled: boolOr(r["enabled"], true),
    showCitations: boolOr(r["show_citations"], true),
    ragResultsLimit: numOr(r["rag_results_limit"], 5),
    model: strOrNull(r["model"]),
    contextRetentionMinutes: numOr(r["context_retention_minutes"], null),
    maxContextMessages: numOr(r["max_context_messages"], null),
    textChatEnabled: boolOr(r["text_chat_enabled"], true),
    voiceChatEnabled: boolOr(r["voice_chat_enabled"], true),
    createdAt: dateOrNull(r["created_at"]),
    updatedAt: dateOrNull(r["updated_at"]),
  };
}

/** Column → value for an insert or update; JSON fields stay objects (the adapter encodes). */
export function agentToColumns(input: AgentInput | AgentPatch): Row {
  const row: Row = {};
  for (const [field, column] of Object.entries(AGENT_COLUMNS)) {
    if (field === "createdAt" || field === "updatedAt") continue;
    const value = (input as Record<string, unknown>)[field];
    if (value === undefined) continue;
    if (
      JSON_AGENT_FIELDS.has(field) &&
      (typeof value !== "object" || value === null || Array.isArray(value))
    ) {
      throw new InvalidInputError(`agent ${field} must be an object`, { details: { field } });
    }
    row[column] = value;
  }
  return row;
}

export function isJsonColumn(column: string): boolean {
  return [
    "voice_settings",
    "webhooks",
    "tools_config",
    "metadata",
    "citations",
    "chunk_metadata",
    "details",
  ].includes(column);
}

export function conversationFromRow(r: Row): ConversationRecord {
  return {
    id: str(r["id"]),
    sessionId: strOrNull(r["session_id"]),
    agentId: strOrNull(r["agent_id"]),
    userId: strOrNull(r["user_id"]),
    channel: str(r["channel"] ?? "text"),
    metadata: obj(r["metadata"]),
    createdAt: toDate(r["created_at"]),
  };
}

export function transcriptFromRow(r: Row): TranscriptRecord {
  return {
    id: str(r["id"]),
    conversationId: str(r["conversation_id"]),
    sessionId: strOrNull(r["session_id"]),
    agentId: strOrNull(r["agent_id"]),
    userId: strOrNull(r["user_id"]),
    role: str(r["role"]),
    content: str(r["content"]),
    turnId: strOrNull(r["turn_id"]),
    citations: arr(r["citations"]),
    metadata: obj(r["metadata"]),
    source: strOrNull(r["source"]),
    sequence: numOr(r["sequence"], null),
    userMessage: strOrNull(r["user_message"]),
    assistantMessage: strOrNull(r["assistant_message"]),
    createdAt: toDate(r["created_at"]),
  };
}

export function documentFromRow(r: Row): DocumentRecord {
  return {
    id: str(r["id"]),
    title: str(r["title"]),
    fileName: strOrNull(r["file_name"]),
    fileType: strOrNull(r["file_type"]),
    content: strOrNull(r["content"]),
    status: str(r["status"] ?? "pending"),
    chunkCount: numOr(r["chunk_count"], 0),
    metadata: obj(r["metadata"]),
    createdAt: toDate(r["created_at"]),
  };
}

/** Column → value of the fields `patch` gives (`metadata` stays an object; the adapter encodes). */
export function documentPatchToColumns(patch: DocumentPatch): Row {
  const row: Row = {};
  const stringField = (field: keyof DocumentPatch, column: string, nullable: boolean): void => {
    const v = patch[field];
    if (v === undefined) return;
    if (typeof v !== "string" && !(nullable && v === null)) {
      throw new InvalidInputError(`document ${field} must be a string${nullable ? " or null" : ""}`, {
        details: { field },
      });
    }
    row[column] = v;
  };
  stringField("title", "title", false);
  stringField("content", "content", true);
  stringField("status", "status", false);
  stringField("fileName", "file_name", true);
  stringField("fileType", "file_type", true);
  if (patch.metadata !== undefined) {
    const m: unknown = patch.metadata;
    if (typeof m !== "object" || m === null || Array.isArray(m)) {
      throw new InvalidInputError("document metadata must be an object", { details: { field: "metadata" } });
    }
    row["metadata"] = m;
  }
  return row;
}

/** Chunk indexes are non-negative integers, and with `unique`, distinct within one call. */
export function checkChunkIndexes(chunks: readonly ChunkInput[], options: { unique: boolean }): void {
  const seen = new Set<number>();
  for (const c of chunks) {
    if (!Number.isInteger(c.chunkIndex) || c.chunkIndex < 0) {
      throw new InvalidInputError("chunkIndex must be a non-negative integer");
    }
    if (options.unique) {
      if (seen.has(c.chunkIndex)) {
        throw new InvalidInputError(`chunkIndex ${c.chunkIndex} appears twice in one upsert`, {
          details: { chunkIndex: c.chunkIndex },
        });
      }
      seen.add(c.chunkIndex);
    }
  }
}

export function chunkFromRow(r: Row): ChunkRecord {
  return {
    id: str(r["id"]),
    documentId: str(r["document_id"]),
    chunkIndex: numOr(r["chunk_index"], 0),
    content: str(r["content"]),
    chunkMetadata: obj(r["chunk_metadata"]),
    documentTitle: strOrNull(r["document_title"]),
    documentSourceUrl: strOrNull(r["document_source_url"]),
  };
}

export function agentDocumentFromRow(r: Row): AgentDocumentRecord {
  return {
    agentId: str(r["agent_id"]),
    documentId: str(r["document_id"]),
    accessType: str(r["access_type"] ?? "read"),
    enabled: boolOr(r["enabled"], true),
  };
}

export function documentMatchFromRow(r: Row): DocumentMatch {
  return {
    id: str(r["id"]),
    documentId: str(r["document_id"]),
    title: strOrNull(r["title"]),
    content: str(r["content"]),
    chunkIndex: numOr(r["chunk_index"], 0),
    sourceUrl: strOrNull(r["source_url"]),
    sourceType: strOrNull(r["source_type"]),
    similarity: numOr(r["similarity"], 0),
    documentTitle: strOrNull(r["document_title"]),
  };
}

export function transcriptMatchFromRow(r: Row): TranscriptMatch {
  return {
    conversationId: str(r["conversation_id"]),
    userMessage: strOrNull(r["user_message"]),
    agentResponse: strOrNull(r["agent_response"]),
    similarity: numOr(r["similarity"], 0),
    createdAt: toDate(r["created_at"]),
  };
}

/**
 * Checks an embedding (finite numbers, expected dimension when known) and returns it as
 * pgvector's text form `[x,y,…]`, which is also a JSON array.
 */
export function vectorLiteral(embedding: readonly number[], expectedDimension: number | null): string {
  if (embedding.length === 0) throw new InvalidInputError("an embedding needs at least one dimension");
  if (expectedDimension !== null && embedding.length !== expectedDimension) {
    throw new EmbeddingDimensionMismatchError(
      `embedding has ${embedding.length} dimensions; this tenant stores ${expectedDimension}`,
      { details: { got: embedding.length, expected: expectedDimension } },
    );
  }
  for (const x of embedding) {
    if (typeof x !== "number" || !Number.isFinite(x)) {
      throw new InvalidInputError("embeddings must contain finite numbers only");
    }
  }
  return `[${embedding.join(",")}]`;
}

export function clampLimit(value: number | undefined, fallback: number, max: number): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < 0)
    throw new InvalidInputError(`limit must be a non-negative integer`);
  return Math.min(value, max);
}

export function providerField(provider: string): string {
  return `provider_keys:${provider}`;
}

export const PROVIDER_NAME_PATTERN = /^[a-z0-9][a-z0-9_.-]{0,63}$/;

export function requireProviderName(provider: string): string {
  if (!PROVIDER_NAME_PATTERN.test(provider)) {
    throw new InvalidInputError(`provider name must match ${String(PROVIDER_NAME_PATTERN)}`, {
      details: { provider },
    });
  }
  return provider;
}
