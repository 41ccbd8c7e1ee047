/**
 * An agent as the HTTP API and the CLI show it: the column names of SEED_CONTRACT.md
 * (snake_case), ISO times, and secret-named properties inside JSON columns redacted (an old
 * `voice_settings` may still hold a provider key).
 */
import { redactSecrets } from "../crypto/index.ts";
import type { AgentPatch, AgentRecord } from "../store/index.ts";

/** A date (or an ISO string already) as ISO text; null when absent. */
export function isoText(value: unknown): string | null {
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
    created_at: isoText(a.createdAt),
    updated_at: isoText(a.updatedAt),
  };
}

/** An agent's changeable columns (SEED_CONTRACT.md names) → the store's field names. */
export const AGENT_COLUMN_FIELDS: Readonly<Record<string, keyof AgentPatch>> = Object.freeze({
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
});
