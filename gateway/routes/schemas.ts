/**
 * JSON schemas of the v1 and v2 API bodies, queries and replies. They are compiled by Ajv for
 * validation and copied into the OpenAPI document, so the two never drift apart.
 */
import type { SchemaObject } from "ajv/dist/2020.js";
import { CORS_ORIGIN_PATTERN, MAX_CORS_ORIGIN_LENGTH, MAX_CORS_ORIGINS } from "../../actors/index.ts";

export const UUID_PATTERN = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$";
export const UUID_RE = new RegExp(UUID_PATTERN);
export const CLIENT_SLUG_PATTERN_TEXT = "^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$";
export const AGENT_SLUG_PATTERN_TEXT = "^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$";
const DIGITS = "^[0-9]{1,9}$";

const nullable = (schema: SchemaObject): SchemaObject => ({ anyOf: [schema, { type: "null" }] });
const str = (maxLength: number): SchemaObject => ({ type: "string", minLength: 1, maxLength });

export const CLIENT_STATUS_SCHEMA: SchemaObject = { enum: ["active", "suspended", "disabled"] };

/** Write-only: stored sealed, never returned. */
export const TENANT_DATABASE_SCHEMA: SchemaObject = {
  type: "object",
  required: ["kind"],
  additionalProperties: false,
  properties: {
    kind: { enum: ["supabase", "postgres", "pglite"] },
    url: str(4000),
    service_role_key: str(4000),
    schema: str(63),
    embedding_dimension: { type: "integer", minimum: 1, maximum: 16000 },
    data_dir: str(1000),
  },
};

/** Write-only: stored sealed, never returned. */
export const LIVEKIT_SCHEMA: SchemaObject = {
  type: "object",
  required: ["url", "api_key", "api_secret"],
  additionalProperties: false,
  properties: { url: str(2000), api_key: str(500), api_secret: str(500) },
};

/** The tenant's embedding settings (`embedding_index`, what stored vectors were made with, is the platform's). */
const EMBEDDING_SETTINGS_SCHEMA: SchemaObject = {
  type: ["object", "null"],
  required: ["provider"],
  additionalProperties: false,
  properties: {
    provider: { type: "string", pattern: "^[a-z][a-z0-9_-]{0,63}$" },
    document_model: { type: ["string", "null"], minLength: 1, maxLength: 200 },
    conversation_model: { type: ["string", "null"], minLength: 1, maxLength: 200 },
    dimension: { type: ["integer", "null"], minimum: 1, maximum: 16000 },
  },
};

/**
 * Browser origins that may use the client's API keys on the thin-client routes and /ws (see
 * gateway/cors.ts); `null` removes the list. The platform op checks the same rules (and that a
 * web origin is written as a browser sends it).
 */
const CORS_ORIGINS_SCHEMA: SchemaObject = {
  type: ["array", "null"],
  maxItems: MAX_CORS_ORIGINS,
  uniqueItems: true,
  items: { type: "string", maxLength: MAX_CORS_ORIGIN_LENGTH, pattern: CORS_ORIGIN_PATTERN },
  description: "Exact origins `scheme://host[:port]` (lower case, no path), or `*`; at most 50",
};

const CLIENT_SETTINGS_SCHEMA: SchemaObject = {
  type: "object",
  additionalProperties: false,
  properties: { embedding: EMBEDDING_SETTINGS_SCHEMA, cors_origins: CORS_ORIGINS_SCHEMA },
};

const CLIENT_FIELDS: Record<string, SchemaObject> = {
  slug: { type: "string", pattern: CLIENT_SLUG_PATTERN_TEXT },
  name: str(200),
  status: CLIENT_STATUS_SCHEMA,
  tenant_database: nullable(TENANT_DATABASE_SCHEMA),
  livekit: nullable(LIVEKIT_SCHEMA),
  settings: CLIENT_SETTINGS_SCHEMA,
};

export const CLIENT_CREATE_BODY: SchemaObject = {
  type: "object",
  required: ["slug", "name"],
  additionalProperties: false,
  properties: {
    ...CLIENT_FIELDS,
    id: { type: "string", pattern: UUID_PATTERN },
    tenant_database: TENANT_DATABASE_SCHEMA,
    livekit: LIVEKIT_SCHEMA,
  },
};

export const CLIENT_PATCH_BODY: SchemaObject = {
  type: "object",
  minProperties: 1,
  additionalProperties: false,
  properties: CLIENT_FIELDS,
};

export const CLIENT_LIST_QUERY: SchemaObject = {
  type: "object",
  properties: {
    q: { type: "string", maxLength: 200 },
    status: CLIENT_STATUS_SCHEMA,
    limit: { type: "string", pattern: DIGITS },
    offset: { type: "string", pattern: DIGITS },
  },
};

const AGENT_FIELDS: Record<string, SchemaObject> = {
  slug: { type: "string", pattern: AGENT_SLUG_PATTERN_TEXT },
  name: str(200),
  description: nullable({ type: "string", maxLength: 100_000 }),
  system_prompt: nullable({ type: "string", maxLength: 100_000 }),
  agent_image: nullable({ type: "string", maxLength: 100_000 }),
  model: nullable({ type: "string", maxLength: 200 }),
  voice_settings: { type: "object" },
  webhooks: { type: "object" },
  tools_config: { type: "object" },
  enabled: { type: "boolean" },
  show_citations: { type: "boolean" },
  text_chat_enabled: { type: "boolean" },
  voice_chat_enabled: { type: "boolean" },
  rag_results_limit: { type: "integer", minimum: 1, maximum: 100 },
  context_retention_minutes: nullable({ type: "integer", minimum: 0, maximum: 1_000_000 }),
  max_context_messages: nullable({ type: "integer", minimum: 0, maximum: 1_000_000 }),
};

export const AGENT_CREATE_BODY: SchemaObject = {
  type: "object",
  required: ["slug", "name"],
  additionalProperties: false,
  properties: { ...AGENT_FIELDS, id: { type: "string", pattern: UUID_PATTERN } },
};

export const AGENT_PATCH_BODY: SchemaObject = {
  type: "object",
  minProperties: 1,
  additionalProperties: false,
  properties: AGENT_FIELDS,
};

export const API_KEY_CREATE_BODY: SchemaObject = {
  type: "object",
  additionalProperties: false,
  properties: {
    label: str(200),
    scopes: {
      type: "array",
      maxItems: 32,
      items: { type: "string", pattern: "^(?:\\*|[a-z][a-z0-9_.:*-]{0,63})$" },
      description:
        "`agents:trigger` (or none, for legacy WordPress keys), `documents:read`, `documents:write`, `<area>:*`, `*`",
    },
    site_url: { type: "string", pattern: "^https?://", maxLength: 2000 },
    expires_at: str(64),
  },
};

/** A provider's name in the provider-keys routes (`groq`, `deepgram`, …). */
export const PROVIDER_NAME_SCHEMA: SchemaObject = { type: "string", pattern: "^[a-z][a-z0-9_-]{0,63}$" };

/** Write-only: stored sealed in the tenant's database, never returned. */
export const PROVIDER_KEY_BODY: SchemaObject = {
  type: "object",
  required: ["api_key"],
  additionalProperties: false,
  properties: { api_key: { type: "string", minLength: 8, maxLength: 4096, pattern: "^\\S+$" } },
};

export const CONVERSATION_LIST_QUERY: SchemaObject = {
  type: "object",
  properties: {
    agent_slug: { type: "string", pattern: AGENT_SLUG_PATTERN_TEXT },
    user_id: { type: "string", pattern: UUID_PATTERN },
    limit: { type: "string", pattern: DIGITS },
  },
};

export const CONVERSATION_GET_QUERY: SchemaObject = {
  type: "object",
  properties: { transcript_limit: { type: "string", pattern: DIGITS } },
};

export const V1_CLIENT_QUERY: SchemaObject = {
  type: "object",
  properties: { client_id: { type: "string", pattern: UUID_PATTERN } },
};

// ---- replies (documentation) -------------------------------------------------------------------

export const CLIENT_SCHEMA: SchemaObject = {
  type: "object",
  required: ["id", "slug", "name", "status", "created_at", "updated_at"],
  properties: {
    id: { type: "string" },
    slug: { type: "string" },
    name: { type: "string" },
    status: CLIENT_STATUS_SCHEMA,
    settings: {
      type: "object",
      description:
        "`embedding` (provider, document_model, conversation_model, dimension), `embedding_index` and `cors_origins`",
    },
    created_at: { type: "string" },
    updated_at: { type: "string" },
  },
};

export const API_KEY_SCHEMA: SchemaObject = {
  type: "object",
  required: ["id", "client_id", "prefix", "scopes"],
  properties: {
    id: { type: "string" },
    client_id: { type: "string" },
    label: { type: "string" },
    prefix: { type: "string", description: "`sk_` and 8 characters: never the key" },
    scopes: { type: "array", items: { type: "string" } },
    site_url: nullable({ type: "string" }),
    created_at: { type: "string" },
    last_used_at: nullable({ type: "string" }),
    expires_at: nullable({ type: "string" }),
    revoked_at: nullable({ type: "string" }),
  },
};

export const CLIENT_DETAIL_SCHEMA: SchemaObject = {
  ...CLIENT_SCHEMA,
  required: [...(CLIENT_SCHEMA["required"] as string[]), "credentials"],
  properties: {
    ...(CLIENT_SCHEMA["properties"] as Record<string, SchemaObject>),
    credentials: {
      type: "object",
      description: "Which credentials are set, values masked (`post…(58)`): never the values",
      properties: {
        tenant_database: { type: "object", required: ["configured"] },
        livekit: { type: "object", required: ["configured"] },
      },
    },
    api_keys: { type: "array", items: API_KEY_SCHEMA },
  },
};

export const AGENT_SCHEMA: SchemaObject = {
  type: "object",
  required: ["id", "slug", "name", "enabled"],
  properties: { id: { type: "string" }, ...AGENT_FIELDS, created_at: nullable({ type: "string" }) },
};

export const CONVERSATION_SCHEMA: SchemaObject = {
  type: "object",
  required: ["id", "channel", "created_at"],
  properties: {
    id: { type: "string" },
    session_id: nullable({ type: "string" }),
    agent_id: nullable({ type: "string" }),
    user_id: nullable({ type: "string" }),
    channel: { type: "string" },
    metadata: { type: "object" },
    created_at: { type: "string" },
  },
};

export const TRANSCRIPT_SCHEMA: SchemaObject = {
  type: "object",
  required: ["id", "conversation_id", "role", "content"],
  properties: {
    id: { type: "string" },
    conversation_id: { type: "string" },
    role: { type: "string" },
    content: { type: "string" },
    turn_id: nullable({ type: "string" }),
    citations: { type: "array" },
    created_at: { type: "string" },
  },
};
