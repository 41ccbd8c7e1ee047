/**
 * A client's conversations: the list (filtered by agent and by user), and one conversation's
 * transcript with each message's role, text and time, the documents the agent cited, and the
 * timings the rows hold (the gaps between their `created_at`, and any `timings` a writer recorded
 * in the row's metadata). Nothing here is computed that the rows do not hold.
 */
import { FieldError } from "./fields.tsx";
import type { FieldErrors } from "./fields.tsx";
import { documentPath, shortTime } from "./documents.tsx";
import type { AgentRef, ClientRef } from "./documents.tsx";
import { Breadcrumb, clientCrumbs, EmptyState, Layout, Notice, PageHeader } from "./layout.tsx";
import type { Crumb, Viewer } from "./layout.tsx";

export function conversationsPath(clientId: string): string {
  return `/admin/clients/${clientId}/conversations`;
}

export interface ConversationListItem {
  id: string;
  agent: AgentRef | null;
  /** The stored user id (a uuid). */
  userId: string | null;
  /** The id the client's site sent (`metadata.external_user_id`), when recorded. */
  externalUserId: string | null;
  channel: string;
  sessionId: string | null;
  createdAt: string | null;
}

export interface ConversationFilter {
  agent_slug?: string;
  user_id?: string;
}

function filterQuery(filter: ConversationFilter, extra: Record<string, string> = {}): string {
  const q = new URLSearchParams();
  if (filter.agent_slug !== undefined) q.set("agent_slug", filter.agent_slug);
  if (filter.user_id !== undefined) q.set("user_id", filter.user_id);
  for (const [k, v] of Object.entries(extra)) q.set(k, v);
  const s = q.toString();
  return s === "" ? "" : `?${s}`;
}

function ClientBreadcrumb({ client, tail }: { client: ClientRef; tail?: Crumb }) {
  return <Breadcrumb trail={clientCrumbs(client, ...(tail === undefined ? [] : [tail]))} />;
}

function ChannelBadge({ channel }: { channel: string }) {
  const cls =
    channel === "voice"
      ? "badge bg-violet-100 text-violet-800"
      : channel === "text"
        ? "badge bg-sky-100 text-sky-800"
        : "badge bg-slate-100 text-slate-700";
  return <span class={cls}>{channel}</span>;
}

export interface ConversationsPageProps {
  viewer: Viewer;
  client: ClientRef;
  agents: readonly AgentRef[];
  conversations: readonly ConversationListItem[];
  filter: ConversationFilter;
  /** The raw filter values, shown back in the form after a refusal. */
  typed: { agent_slug: string; user_id: string };
  limit: number;
  maxLimit: number;
  errors?: FieldErrors;
  error?: string;
}

export function ConversationsPage(p: ConversationsPageProps) {
  const base = conversationsPath(p.client.id);
  const filtered = p.filter.agent_slug !== undefined || p.filter.user_id !== undefined;
  const more = p.conversations.length === p.limit && p.limit < p.maxLimit;
  return (
    <Layout title={`Conversations · ${p.client.name}`} viewer={p.viewer} section="clients">
      <ClientBreadcrumb client={p.client} />
      <PageHeader title={`Conversations · ${p.client.name}`} />
      <form method="get" action={base} class="card mb-4 grid gap-3 sm:grid-cols-3 sm:items-end" role="search">
        <div>
          <label for="filter-agent" class="field-label">
            Agent
          </label>
          <select id="filter-agent" name="agent_slug" class="field-input">
            <option value="" selected={p.typed.agent_slug === ""}>
              All agents
            </option>
            {p.agents.map((a) => (
              <option value={a.slug} selected={p.typed.agent_slug === a.slug}>
                {`${a.name} (${a.slug})`}
              </option>
            ))}
          </select>
          <FieldError errors={p.errors} name="agent_slug" />
        </div>
        <div>
          <label for="filter-user" class="field-label">
            User id
          </label>
          <input
            id="filter-user"
            name="user_id"
            value={p.typed.user_id}
            placeholder="uuid"
            autocomplete="off"
            class="field-input font-mono"
            aria-describedby="filter-user-help"
          />
          <p id="filter-user-help" class="field-help">
            The stored user id (a uuid); pick one from the list.
          </p>
          <FieldError errors={p.errors} name="user_id" />
        </div>
        <div class="flex gap-2">
          <button type="submit" class="btn-primary">
            Filter
          </button>
          {filtered ? (
            <a href={base} class="btn-secondary">
              Clear
            </a>
          ) : null}
        </div>
      </form>
      {p.error === undefined ? null : (
        <div class="mb-4">
          <Notice kind="error">{p.error}</Notice>
        </div>
      )}
      {p.conversations.length === 0 ? (
        p.error !== undefined ? null : (
          <EmptyState title={filtered ? "No conversation matches these filters" : "No conversations yet"}>
            {filtered ? undefined : "They appear here once users talk to this client's agents."}
          </EmptyState>
        )
      ) : (
        <div class="table-wrap">
          <table class="data-table">
            <thead>
              <tr>
                <th scope="col">Started</th>
                <th scope="col">Agent</th>
                <th scope="col">User</th>
                <th scope="col" class="hidden sm:table-cell">
                  Channel
                </th>
                <th scope="col" class="hidden sm:table-cell">
                  <span class="sr-only">Transcript</span>
                </th>
              </tr>
            </thead>
            <tbody class="divide-y divide-slate-100">
              {p.conversations.map((c) => (
                <tr id={`conversation-${c.id}`}>
                  <td class="whitespace-nowrap">
                    <a href={`${base}/${c.id}`} class="text-indigo-700 hover:underline">
                      <time datetime={c.createdAt ?? ""}>{shortTime(c.createdAt)}</time>
                    </a>
                  </td>
                  <td>
                    {c.agent === null ? (
                      <span class="text-slate-400">unknown agent</span>
                    ) : (
                      <a
                        href={`${base}${filterQuery({ ...p.filter, agent_slug: c.agent.slug })}`}
                        class="text-indigo-700 hover:underline"
                        title={`Only ${c.agent.slug}'s conversations`}
                      >
                        {c.agent.name}
                      </a>
                    )}
                  </td>
                  <td class="max-w-48 truncate">
                    {c.userId === null ? (
                      <span class="text-slate-400">—</span>
                    ) : (
                      <a
                        href={`${base}${filterQuery({ ...p.filter, user_id: c.userId })}`}
                        class="font-mono text-xs text-indigo-700 hover:underline"
                        title={`Only this user's conversations (${c.userId})`}
                      >
                        {c.externalUserId ?? c.userId}
                      </a>
                    )}
                  </td>
                  <td class="hidden sm:table-cell">
                    <ChannelBadge channel={c.channel} />
                  </td>
                  <td class="hidden text-right sm:table-cell">
                    <a href={`${base}/${c.id}`} class="btn-secondary">
                      Transcript
                    </a>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {more ? (
        <div class="mt-4">
          <a
            href={`${base}${filterQuery(p.filter, { limit: String(Math.min(p.limit + 50, p.maxLimit)) })}`}
            class="btn-secondary"
          >
            Show more
          </a>
        </div>
      ) : null}
    </Layout>
  );
}

/** One citation as the transcript shows it (from the row's `citations`, whatever its shape). */
export interface CitationItem {
  title: string;
  /** A document of this tenant: linked to its page. */
  documentId: string | null;
  chunkIndex: number | null;
  similarity: number | null;
  /** An http(s) URL only. */
  sourceUrl: string | null;
  excerpt: string | null;
}

/** A timing the row's metadata records (a writer's own measurement, in milliseconds). */
export interface RecordedTiming {
  name: string;
  ms: number;
}

export interface TranscriptItem {
  id: string;
  role: string;
  content: string;
  source: string | null;
  turnId: string | null;
  createdAt: string | null;
  /** Milliseconds since the previous row's `created_at`, when the rows' times differ. */
  gapMs: number | null;
  /** The previous row belongs to the same turn (the gap is the reply's, not the user's pause). */
  sameTurn: boolean;
  citations: CitationItem[];
  timings: RecordedTiming[];
  /** What retrieval put into the turn (`metadata.rag`), when recorded. */
  rag: { documents: number | null; pastTurns: number | null; contextTokens: number | null } | null;
}

export interface ConversationPageProps {
  viewer: Viewer;
  client: ClientRef;
  conversation: ConversationListItem & { roomName: string | null };
  transcripts: readonly TranscriptItem[];
  /** The store returned as many rows as asked for: older ones may exist. */
  truncated: boolean;
}

/** `1.2 s`, `340 ms`, `3 min 5 s`. */
export function formatMs(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const minutes = Math.floor(ms / 60_000);
  return `${minutes} min ${Math.round((ms % 60_000) / 1000)} s`;
}

function timeOfDay(iso: string | null): string {
  if (iso === null) return "—";
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : `${d.toISOString().slice(11, 19)} UTC`;
}

const ROLE_BADGE: Readonly<Record<string, string>> = {
  user: "badge bg-slate-200 text-slate-800",
  assistant: "badge bg-indigo-100 text-indigo-800",
};

function Citations({ clientId, citations }: { clientId: string; citations: readonly CitationItem[] }) {
  return (
    <div class="mt-3 border-t border-slate-100 pt-2">
      <h3 class="text-xs font-medium uppercase tracking-wide text-slate-500">Cited</h3>
      <ol class="mt-1 space-y-1 text-sm">
        {citations.map((c, i) => (
          <li class="citation">
            <span class="text-slate-500">{`[${i + 1}] `}</span>
            {c.documentId === null ? (
              <span class="font-medium">{c.title}</span>
            ) : (
              <a
                href={documentPath(clientId, c.documentId)}
                class="font-medium text-indigo-700 hover:underline"
              >
                {c.title}
              </a>
            )}
            {c.chunkIndex === null ? null : <span class="text-slate-500">{` · chunk ${c.chunkIndex}`}</span>}
            {c.similarity === null ? null : (
              <span class="text-slate-500">{` · similarity ${c.similarity.toFixed(3)}`}</span>
            )}
            {c.sourceUrl === null ? null : (
              <>
                {" · "}
                <a href={c.sourceUrl} rel="noopener noreferrer" class="text-indigo-700 hover:underline">
                  source
                </a>
              </>
            )}
            {c.excerpt === null ? null : (
              <details class="mt-1">
                <summary class="cursor-pointer text-xs text-slate-500">Excerpt</summary>
                <p class="mt-1 whitespace-pre-wrap text-xs text-slate-600">{c.excerpt}</p>
              </details>
            )}
          </li>
        ))}
      </ol>
    </div>
  );
}

function Timings({ item }: { item: TranscriptItem }) {
  const parts: string[] = [];
  if (item.gapMs !== null) {
    parts.push(`${formatMs(item.gapMs)} after the ${item.sameTurn ? "user's message" : "previous message"}`);
  }
  for (const t of item.timings) parts.push(`${t.name} ${formatMs(t.ms)}`);
  if (item.rag !== null) {
    const r: string[] = [];
    if (item.rag.documents !== null) r.push(`${item.rag.documents} documents`);
    if (item.rag.pastTurns !== null) r.push(`${item.rag.pastTurns} past turns`);
    if (item.rag.contextTokens !== null) r.push(`${item.rag.contextTokens} context tokens`);
    if (r.length > 0) parts.push(`retrieval: ${r.join(", ")}`);
  }
  if (parts.length === 0) return null;
  return <p class="mt-2 text-xs text-slate-500">{parts.join(" · ")}</p>;
}

export function ConversationPage({
  viewer,
  client,
  conversation,
  transcripts,
  truncated,
}: ConversationPageProps) {
  const c = conversation;
  const base = conversationsPath(client.id);
  return (
    <Layout title={`Conversation · ${client.name}`} viewer={viewer} section="clients">
      <ClientBreadcrumb client={client} tail={{ href: base, label: "Conversations" }} />
      <PageHeader title="Conversation" />
      <section class="card mb-4" aria-label="Conversation">
        <dl class="grid gap-3 text-sm sm:grid-cols-2 md:grid-cols-3">
          <div>
            <dt class="text-xs uppercase tracking-wide text-slate-500">Agent</dt>
            <dd>{c.agent === null ? "unknown agent" : `${c.agent.name} (${c.agent.slug})`}</dd>
          </div>
          <div>
            <dt class="text-xs uppercase tracking-wide text-slate-500">User</dt>
            <dd class="font-mono text-xs break-all">
              {c.userId === null ? (
                "—"
              ) : (
                <a href={`${base}?user_id=${c.userId}`} class="text-indigo-700 hover:underline">
                  {c.externalUserId ?? c.userId}
                </a>
              )}
            </dd>
          </div>
          <div>
            <dt class="text-xs uppercase tracking-wide text-slate-500">Channel</dt>
            <dd>
              <ChannelBadge channel={c.channel} />
            </dd>
          </div>
          <div>
            <dt class="text-xs uppercase tracking-wide text-slate-500">Started</dt>
            <dd>
              <time datetime={c.createdAt ?? ""}>{shortTime(c.createdAt)}</time>
            </dd>
          </div>
          {c.roomName === null ? null : (
            <div>
              <dt class="text-xs uppercase tracking-wide text-slate-500">Room</dt>
              <dd class="font-mono text-xs break-all">{c.roomName}</dd>
            </div>
          )}
          <div>
            <dt class="text-xs uppercase tracking-wide text-slate-500">Id</dt>
            <dd class="font-mono text-xs break-all">{c.id}</dd>
          </div>
        </dl>
      </section>
      {truncated ? (
        <div class="mb-4">
          <Notice kind="info">{`Showing the latest ${transcripts.length} messages.`}</Notice>
        </div>
      ) : null}
      {transcripts.length === 0 ? (
        <EmptyState title="No messages in this conversation yet" />
      ) : (
        <ol class="space-y-3" aria-label="Transcript">
          {transcripts.map((t) => (
            <li
              id={`message-${t.id}`}
              class={
                t.role === "assistant" ? "card border-indigo-100 sm:ml-8" : "card border-slate-200 sm:mr-8"
              }
            >
              <div class="flex flex-wrap items-center gap-2 text-xs text-slate-500">
                <span class={ROLE_BADGE[t.role] ?? "badge bg-amber-100 text-amber-800"} data-role={t.role}>
                  {t.role}
                </span>
                <time datetime={t.createdAt ?? ""}>{timeOfDay(t.createdAt)}</time>
                {t.source === null ? null : <span>{`via ${t.source}`}</span>}
              </div>
              <p class="mt-2 whitespace-pre-wrap break-words text-sm">{t.content}</p>
              {t.citations.length === 0 ? null : <Citations clientId={client.id} citations={t.citations} />}
              <Timings item={t} />
            </li>
          ))}
        </ol>
      )}
    </Layout>
  );
}
