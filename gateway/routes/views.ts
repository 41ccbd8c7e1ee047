/**
 * Tenant records as the HTTP API shows them: the column names of SEED_CONTRACT.md (snake_case),
 * ISO times, and secret-named properties inside JSON columns redacted (an old `voice_settings`
 * may still hold a provider key).
 */
import { AGENT_COLUMN_FIELDS, isoText, redactSecrets } from "../../actors/index.ts";
import type { AgentPatch, ConversationRecord, TranscriptRecord } from "../../actors/index.ts";

/** HTTP field → the store's field name. */
const AGENT_FIELD_NAMES: Readonly<Record<string, keyof AgentPatch | "id">> = {
  id: "id",
  ...AGENT_COLUMN_FIELDS,
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
    created_at: isoText(c.createdAt),
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
    created_at: isoText(t.createdAt),
  };
}
