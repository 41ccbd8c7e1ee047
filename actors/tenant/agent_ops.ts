/**
 * The tenant actor's agent and conversation operations: create, update and delete agents, list
 * conversations, read one with its transcripts. They run in the owner's turn on the tenant's own
 * database; changes are written to the platform audit log under the identity the caller names.
 */
import { InvalidArgumentError } from "../errors.ts";
import {
  actorField,
  isUuid,
  objectBody,
  onlyFields,
  optionalBoolean,
  optionalInt,
  optionalObject,
  optionalString,
  stringField,
  uuidField,
} from "../platform/op_input.ts";
import type { OpBody } from "../platform/op_input.ts";
import { NotFoundError } from "../store/index.ts";
import type {
  AgentInput,
  AgentPatch,
  AgentRecord,
  AuditEntryInput,
  ConversationRecord,
  TenantStore,
  TranscriptRecord,
} from "../store/index.ts";

export const AgentOps = {
  createAgent: "agents-create",
  updateAgent: "agents-update",
  deleteAgent: "agents-delete",
  listConversations: "conversations-list",
  getConversation: "conversation-get",
} as const;

export type AgentOpName = (typeof AgentOps)[keyof typeof AgentOps];

/** Records a change in the platform audit log. */
export type AuditWriter = (entry: AuditEntryInput) => Promise<unknown>;

export interface ConversationDetail {
  conversation: ConversationRecord;
  transcripts: TranscriptRecord[];
}

/** Agent slugs: letters, digits, `_` and `-`, as the URLs and subjects that carry them allow. */
export const AGENT_SLUG_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$/;

const NULLABLE_TEXT = ["description", "systemPrompt", "agentImage", "model"] as const;
const JSON_FIELDS = ["voiceSettings", "webhooks", "toolsConfig"] as const;
const BOOLEAN_FIELDS = ["enabled", "showCitations", "textChatEnabled", "voiceChatEnabled"] as const;
const NULLABLE_INT = ["contextRetentionMinutes", "maxContextMessages"] as const;
const PATCH_FIELDS = [
  "slug",
  "name",
  ...NULLABLE_TEXT,
  ...JSON_FIELDS,
  ...BOOLEAN_FIELDS,
  ...NULLABLE_INT,
  "ragResultsLimit",
] as const;

function agentFields(op: string, body: OpBody): AgentPatch {
  onlyFields(op, body, PATCH_FIELDS);
  const out: AgentPatch = {};
  const slug = optionalString(op, body, "slug", { max: 128, pattern: AGENT_SLUG_PATTERN });
  if (slug !== undefined) out.slug = slug;
  const name = optionalString(op, body, "name", { max: 200 });
  if (name !== undefined) out.name = name;
  for (const f of NULLABLE_TEXT) {
    const v = body[f];
    if (v === undefined) continue;
    if (v !== null && (typeof v !== "string" || v.length > 100_000)) {
      throw new InvalidArgumentError(`${op}: "${f}" must be a string or null`, { details: { field: f } });
    }
    out[f] = v;
  }
  for (const f of JSON_FIELDS) {
    const v = optionalObject(op, body, f);
    if (v !== undefined) out[f] = v;
  }
  for (const f of BOOLEAN_FIELDS) {
    const v = optionalBoolean(op, body, f);
    if (v !== undefined) out[f] = v;
  }
  for (const f of NULLABLE_INT) {
    if (body[f] === null) out[f] = null;
    else {
      const v = optionalInt(op, body, f, 0, 1_000_000);
      if (v !== undefined) out[f] = v;
    }
  }
  const rag = optionalInt(op, body, "ragResultsLimit", 1, 100);
  if (rag !== undefined) out.ragResultsLimit = rag;
  return out;
}

function agentObject(op: string, body: OpBody): OpBody {
  const agent = optionalObject(op, body, "agent");
  if (agent === undefined)
    throw new InvalidArgumentError(`${op} needs an "agent" object`, { details: { field: "agent" } });
  return agent;
}

function slugField(op: string, body: OpBody): string {
  return stringField(op, body, "slug", { max: 128, pattern: AGENT_SLUG_PATTERN });
}

/**
 * Runs one agent/conversation op for `tenant` on its store; undefined when `op` is not one of them.
 */
export async function handleAgentOp(
  op: string,
  raw: unknown,
  tenant: string,
  store: () => Promise<TenantStore>,
  audit: AuditWriter | undefined,
): Promise<{ reply: unknown } | undefined> {
  switch (op) {
    case AgentOps.createAgent: {
      const body = objectBody(op, raw);
      onlyFields(op, body, ["actor", "agent"]);
      const actor = actorField(op, body);
      const fields = agentObject(op, body);
      const id = fields["id"] === undefined ? undefined : uuidField(op, fields, "id");
      const { id: _id, ...rest } = fields;
      const input: AgentInput = {
        ...agentFields(op, rest),
        slug: slugField(op, fields),
        name: stringField(op, fields, "name", { max: 200 }),
        ...(id === undefined ? {} : { id }),
      };
      const agent = await (await store()).createAgent(input);
      await audit?.({
        clientId: tenant,
        actor,
        action: "agent.create",
        target: agent.slug,
        details: { agentId: agent.id },
      });
      return { reply: agent };
    }
    case AgentOps.updateAgent: {
      const body = objectBody(op, raw);
      onlyFields(op, body, ["actor", "slug", "patch"]);
      const actor = actorField(op, body);
      const slug = slugField(op, body);
      const patchBody = optionalObject(op, body, "patch");
      if (patchBody === undefined)
        throw new InvalidArgumentError(`${op} needs a "patch" object`, { details: { field: "patch" } });
      const patch = agentFields(op, patchBody);
      if (Object.keys(patch).length === 0) throw new InvalidArgumentError(`${op}: the patch changes nothing`);
      const agent: AgentRecord = await (await store()).updateAgent(slug, patch);
      await audit?.({
        clientId: tenant,
        actor,
        action: "agent.update",
        target: slug,
        details: { agentId: agent.id, fields: Object.keys(patch) },
      });
      return { reply: agent };
    }
    case AgentOps.deleteAgent: {
      const body = objectBody(op, raw);
      onlyFields(op, body, ["actor", "slug"]);
      const actor = actorField(op, body);
      const slug = slugField(op, body);
      await (await store()).deleteAgent(slug);
      await audit?.({ clientId: tenant, actor, action: "agent.delete", target: slug });
      return { reply: { slug, deleted: true } };
    }
    case AgentOps.listConversations: {
      const body = objectBody(op, raw ?? {});
      onlyFields(op, body, ["agent_slug", "user_id", "limit"]);
      const agentSlug = optionalString(op, body, "agent_slug", { max: 128 });
      const userId = body["user_id"] === undefined ? undefined : uuidField(op, body, "user_id");
      const limit = optionalInt(op, body, "limit", 1, 1000);
      const s = await store();
      const agentId = agentSlug === undefined ? undefined : (await s.getAgent(agentSlug)).id;
      const conversations = await s.listConversations({
        ...(agentId === undefined ? {} : { agentId }),
        ...(userId === undefined ? {} : { userId }),
        ...(limit === undefined ? {} : { limit }),
      });
      return { reply: conversations };
    }
    case AgentOps.getConversation: {
      const body = objectBody(op, raw);
      onlyFields(op, body, ["id", "transcript_limit"]);
      const id = body["id"];
      // Any id that is not one of the tenant's conversations is simply not found.
      if (!isUuid(id)) throw new NotFoundError("conversation not found", { details: { field: "id" } });
      const limit = optionalInt(op, body, "transcript_limit", 1, 1000);
      const s = await store();
      const conversation = await s.getConversation(id);
      const transcripts = await s.listTranscripts(id, limit === undefined ? {} : { limit });
      const detail: ConversationDetail = { conversation, transcripts };
      return { reply: detail };
    }
    default:
      return undefined;
  }
}
