/**
 * Console pages for a client's conversations: the list, filtered by agent and by user with the
 * v2 route's query schema and the same tenant operations, and one conversation's transcript with
 * citations and the timings its rows hold. Conversations are read from the tenant's own
 * database through its owner: an id that is not this tenant's is simply not found.
 */
import { AgentOps, isoText, redactSecrets } from "../../actors/index.ts";
import type { ConversationDetail, ConversationRecord, TranscriptRecord } from "../../actors/index.ts";
import type { RouteDefinition } from "../http_types.ts";
import { clientIdParam } from "../routes/route_helpers.ts";
import { CONVERSATION_LIST_QUERY, UUID_RE } from "../routes/schemas.ts";
import { assertMatches } from "../validation.ts";
import { fieldErrors } from "./client_pages.ts";
import { consoleRoute } from "./console.ts";
import type { ConsoleDeps } from "./console.ts";
import { clientRef, isNoDatabase, noDatabasePage, tenantAgents } from "./document_pages.ts";
import { html } from "./html.ts";
import { ConversationPage, ConversationsPage } from "./views/conversations.tsx";
import type {
  CitationItem,
  ConversationFilter,
  ConversationListItem,
  RecordedTiming,
  TranscriptItem,
} from "./views/conversations.tsx";
import { safeHref } from "./views/documents.tsx";
import type { AgentRef } from "./views/documents.tsx";

const DEFAULT_LIMIT = 50;
const MAX_LIMIT = 1000;
/** The transcript page shows at most this many rows (the latest). */
const TRANSCRIPT_LIMIT = 1000;

type Json = Record<string, unknown>;

function isObject(v: unknown): v is Json {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function text(v: unknown): string | null {
  return typeof v === "string" && v.trim() !== "" ? v : null;
}

function finite(v: unknown): number | null {
  return typeof v === "number" && Number.isFinite(v) ? v : null;
}

function listItem(c: ConversationRecord, agents: ReadonlyMap<string, AgentRef>): ConversationListItem {
  const metadata = redactSecrets(c.metadata ?? {});
  return {
    id: c.id,
    agent: c.agentId === null ? null : (agents.get(c.agentId) ?? null),
    userId: c.userId,
    externalUserId: text(metadata["external_user_id"]),
    channel: c.channel,
    sessionId: c.sessionId,
    createdAt: isoText(c.createdAt),
  };
}

/**
 * A citation as the worker records it (`document_id`, `title`, `chunk_index`, `chunk`,
 * `similarity`, `source_url`), or an older row's own shape: whatever names a title is shown.
 */
export function citationItem(raw: unknown): CitationItem | null {
  if (typeof raw === "string") {
    return raw.trim() === ""
      ? null
      : { title: raw, documentId: null, chunkIndex: null, similarity: null, sourceUrl: null, excerpt: null };
  }
  if (!isObject(raw)) return null;
  const c = redactSecrets(raw);
  const documentId = text(c["document_id"]);
  const title = text(c["title"]) ?? text(c["document_title"]) ?? text(c["source"]) ?? "Untitled document";
  const excerpt = text(c["chunk"]) ?? text(c["content"]);
  return {
    title,
    documentId: documentId !== null && UUID_RE.test(documentId) ? documentId.toLowerCase() : null,
    chunkIndex: finite(c["chunk_index"]),
    similarity: finite(c["similarity"]),
    sourceUrl: safeHref(text(c["source_url"]) ?? text(c["url"])) ?? null,
    excerpt: excerpt === null ? null : excerpt.slice(0, 1000),
  };
}

/** Millisecond timings a writer recorded: `metadata.timings.<name>` and top-level `<name>_ms`. */
export function recordedTimings(metadata: Json): RecordedTiming[] {
  const out: RecordedTiming[] = [];
  const timings = metadata["timings"];
  if (isObject(timings)) {
    for (const [name, v] of Object.entries(timings)) {
      const ms = finite(v);
      if (ms !== null && ms >= 0) out.push({ name, ms });
    }
  }
  for (const [name, v] of Object.entries(metadata)) {
    const ms = finite(v);
    if (name.endsWith("_ms") && ms !== null && ms >= 0) out.push({ name, ms });
  }
  return out.slice(0, 20);
}

function ragSummary(metadata: Json): TranscriptItem["rag"] {
  const rag = metadata["rag"];
  if (!isObject(rag)) return null;
  return {
    documents: Array.isArray(rag["document_ids"]) ? rag["document_ids"].length : null,
    pastTurns: finite(rag["transcripts"]),
    contextTokens: finite(rag["context_tokens"]),
  };
}

/** The rows in order, each with the gap since the row before it (only when the times differ). */
export function transcriptItems(rows: readonly TranscriptRecord[]): TranscriptItem[] {
  let previous: { at: number; turnId: string | null } | null = null;
  return rows.map((row) => {
    const createdAt = isoText(row.createdAt);
    const at = createdAt === null ? Number.NaN : Date.parse(createdAt);
    const gap =
      previous !== null && Number.isFinite(at) && Number.isFinite(previous.at) ? at - previous.at : 0;
    const sameTurn = previous !== null && row.turnId !== null && previous.turnId === row.turnId;
    previous = { at, turnId: row.turnId };
    const metadata = redactSecrets(isObject(row.metadata) ? row.metadata : {});
    // One user and one assistant row share a turn's metadata: its numbers are shown once, on the reply.
    const showTurnData = row.role !== "user";
    return {
      id: row.id,
      role: row.role,
      content: row.content,
      source: row.source,
      turnId: row.turnId,
      createdAt,
      gapMs: gap > 0 ? gap : null,
      sameTurn,
      citations: (Array.isArray(row.citations) ? row.citations : [])
        .slice(0, 50)
        .map(citationItem)
        .filter((c): c is CitationItem => c !== null),
      timings: showTurnData ? recordedTimings(metadata) : [],
      rag: showTurnData ? ragSummary(metadata) : null,
    };
  });
}

export function conversationPages(deps: ConsoleDeps): RouteDefinition[] {
  const { actors } = deps;
  return [
    consoleRoute(deps, {
      method: "GET",
      path: "/admin/clients/{id}/conversations",
      operationId: "adminConversations",
      summary: "A client's latest conversations, filtered by agent (`agent_slug`) and user (`user_id`)",
      handler: async ({ req, viewer }) => {
        const client = await clientRef(deps, req);
        let agents: AgentRef[];
        try {
          agents = await tenantAgents(deps, client.id, req);
        } catch (err) {
          if (isNoDatabase(err)) return noDatabasePage(viewer, client, "Conversations");
          throw err;
        }
        const typed = {
          agent_slug: (req.query["agent_slug"] ?? "").trim(),
          user_id: (req.query["user_id"] ?? "").trim(),
        };
        const limitRaw = (req.query["limit"] ?? "").trim();
        const query: Record<string, string> = {};
        for (const [k, v] of Object.entries({ ...typed, limit: limitRaw })) if (v !== "") query[k] = v;
        const page = {
          viewer,
          client,
          agents,
          typed,
          limit: DEFAULT_LIMIT,
          maxLimit: MAX_LIMIT,
        };
        try {
          assertMatches(CONVERSATION_LIST_QUERY, query);
        } catch (err) {
          const errors = fieldErrors(err);
          if (errors === undefined) throw err;
          return html(
            422,
            ConversationsPage({
              ...page,
              conversations: [],
              filter: {},
              errors,
              error: "Check the filters.",
            }),
          );
        }
        const limit = Math.max(1, Math.min(Number(query["limit"] ?? DEFAULT_LIMIT), MAX_LIMIT));
        const filter: ConversationFilter = {
          ...(query["agent_slug"] === undefined ? {} : { agent_slug: query["agent_slug"] }),
          ...(query["user_id"] === undefined ? {} : { user_id: query["user_id"].toLowerCase() }),
        };
        if (filter.agent_slug !== undefined && !agents.some((a) => a.slug === filter.agent_slug)) {
          return html(
            404,
            ConversationsPage({
              ...page,
              conversations: [],
              filter,
              errors: { agent_slug: `This client has no agent “${filter.agent_slug}”.` },
            }),
          );
        }
        const conversations = await actors.tenant<ConversationRecord[]>(
          client.id,
          AgentOps.listConversations,
          { ...filter, limit },
          req,
        );
        const byId = new Map(agents.map((a) => [a.id, a]));
        return html(
          200,
          ConversationsPage({
            ...page,
            limit,
            conversations: conversations.map((c) => listItem(c, byId)),
            filter,
          }),
        );
      },
    }),
    consoleRoute(deps, {
      method: "GET",
      path: "/admin/clients/{id}/conversations/{conversationId}",
      operationId: "adminConversation",
      summary: "One conversation's transcript: roles, text, times, citations and recorded timings",
      handler: async ({ req, viewer }) => {
        const client = await clientRef(deps, req);
        const id = clientIdParam(req);
        const [agents, detail] = await Promise.all([
          tenantAgents(deps, id, req),
          actors.tenant<ConversationDetail>(
            id,
            AgentOps.getConversation,
            { id: req.params["conversationId"] ?? "", transcript_limit: TRANSCRIPT_LIMIT },
            req,
          ),
        ]);
        const byId = new Map(agents.map((a) => [a.id, a]));
        const metadata = redactSecrets(detail.conversation.metadata ?? {});
        return html(
          200,
          ConversationPage({
            viewer,
            client,
            conversation: { ...listItem(detail.conversation, byId), roomName: text(metadata["room_name"]) },
            transcripts: transcriptItems(detail.transcripts),
            truncated: detail.transcripts.length >= TRANSCRIPT_LIMIT,
          }),
        );
      },
    }),
  ];
}
