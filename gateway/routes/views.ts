/**
 * Tenant records as the HTTP API shows them: the column names of SEED_CONTRACT.md (snake_case),
 * ISO times, and secret-named properties inside JSON columns redacted (an old `voice_settings`
 * may still hold a provider key).
 */
import { redactSecrets } from "../../actors/index.ts";
import type { AgentPatch, AgentRecord, ConversationRecord, TranscriptRecord } from "../../actors/index.ts";

function iso(value: unknown): string | null {
  if (value === null || value === undefined) return null;
  if (value instanceof Date) return value.toISOString();
  return typeof value === "string" || typeof value === "number" ? String(value) : null;
}

export function agentView(a: AgentRecord): Record<string, unknown> {
  return {
    id: a.id,
    slug: a.slug,
    name: a.name,
    description: a.description,
    system_prompt: a.systemPrompt,
    agent_image: a.agentImage,
    voice_settings: redactSecrets(a.voiceSettings),
    webhooks: redactSecrets(a.webhooks),
    tools_config: redactSecrets(a.toolsConfig),
    enabled: a.enabled,
    show_citations: a.showCitations,
    rag_results_limit: a.ragResultsLimit,
    model: a.model,
    context_retention_minutes: a.contextRetentionMinutes,
    max_context_messages: a.maxContextMessages,
    text_chat_enabled: a.textChatEnabled,
    voice_chat_enabled: a.voiceChatEnabled,
    created_at: iso(a.createdAt),
    updated_at: iso(a.updatedAt),
  };
}

/** HTTP field → the store's field name. */
const AGENT_FIELD_NAMES: Readonly<Record<string, keyof AgentPatch | "id">> = {
  id: "id",
  slug: "slug",
  name: "name",
  description: "description",
  system_prompt: "systemPrompt",
  agent_image: "agentImage",
  model: "model",
  voice_settings: "voiceSettings",
  webhooks: "webhooks",
  tools_config: "toolsConfig",
  enabled: "enabled",
  show_citations: "showCitations",
  text_chat_enabled: "textChatEnabled",
  voice_chat_enabled: "voiceChatEnabled",
  rag_results_limit: "ragResultsLimit",
  context_retention_minutes: "contextRetentionMinutes",
  max_context_messages: "maxContextMessages",
};

/** A validated HTTP agent body in the store's field names. */
export function agentFieldsFromBody(body: Readonly<Record<string, unknown>>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(body)) {
    const name = AGENT_FIELD_NAMES[k];
    if (name !== undefined) out[name] = v;
  }
  return out;
}

export function conversationView(c: ConversationRecord): Record<string, unknown> {
  return {
    id: c.id,
    session_id: c.sessionId,
    agent_id: c.agentId,
    user_id: c.userId,
    channel: c.channel,
    metadata: redactSecrets(c.metadata),
    created_at: iso(c.createdAt),
  };
}

export function transcriptView(t: TranscriptRecord): Record<string, unknown> {
  return {
    id: t.id,
    conversation_id: t.conversationId,
    session_id: t.sessionId,
    agent_id: t.agentId,
    user_id: t.userId,
    role: t.role,
    content: t.content,
    turn_id: t.turnId,
    citations: t.citations,
    metadata: redactSecrets(t.metadata),
    source: t.source,
    sequence: t.sequence,
    user_message: t.userMessage,
    assistant_message: t.assistantMessage,
    created_at: iso(t.createdAt),
  };
}
