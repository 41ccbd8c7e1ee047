/**
 * A client's knowledge base: the documents with their ingestion status (rows still in progress
 * poll their own fragment every 2 s and stop once ready or failed), the upload form (multipart,
 * posted by HTMX with the CSRF header), and one document's page with its agent assignment and
 * delete.
 */
import type { Child } from "hono/jsx";
import type { DocumentView } from "../../../actors/index.ts";
import { Breadcrumb, clientCrumbs, CsrfField, EmptyState, Layout, Notice, PageHeader } from "./layout.tsx";
import type { Crumb, Viewer } from "./layout.tsx";

/** The client as these pages name it (never its credentials). */
export interface ClientRef {
  id: string;
  name: string;
  slug: string;
}

export interface AgentRef {
  id: string;
  slug: string;
  name: string;
}

/** A document's `status` read: the worker writes `queued`, `extracting`, `embedding 40/120`, `ready`, `failed: <reason>`. */
export type DocumentPhase =
  | { kind: "queued" }
  | { kind: "extracting" }
  | { kind: "embedding"; done: number; total: number }
  | { kind: "ready" }
  | { kind: "failed"; reason: string }
  /** A status this platform does not write (an attached database's own): shown as it is, not polled. */
  | { kind: "other"; text: string };

export function documentPhase(status: string): DocumentPhase {
  if (status === "queued") return { kind: "queued" };
  if (status === "extracting") return { kind: "extracting" };
  if (status === "ready") return { kind: "ready" };
  const embedding = /^embedding (\d+)\/(\d+)$/.exec(status);
  if (embedding !== null)
    return { kind: "embedding", done: Number(embedding[1]), total: Number(embedding[2]) };
  if (status === "failed" || status.startsWith("failed:")) {
    return { kind: "failed", reason: status.slice("failed:".length).trim() };
  }
  return { kind: "other", text: status };
}

/** Ingestion still runs: the page keeps asking for the document's status. */
export function inProgress(status: string): boolean {
  const kind = documentPhase(status).kind;
  return kind === "queued" || kind === "extracting" || kind === "embedding";
}

export function formatBytes(n: number | null): string {
  if (n === null) return "—";
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`;
  return `${(n / (1024 * 1024)).toFixed(1)} MB`;
}

/** `2025-01-31 14:05 UTC` from an ISO time. */
export function shortTime(iso: string | null): string {
  if (iso === null) return "—";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return `${d.toISOString().slice(0, 16).replace("T", " ")} UTC`;
}

export function documentsPath(clientId: string): string {
  return `/admin/clients/${clientId}/documents`;
}

export function documentPath(clientId: string, documentId: string): string {
  return `${documentsPath(clientId)}/${documentId}`;
}

export function DocumentStatus({ status }: { status: string }) {
  const phase = documentPhase(status);
  switch (phase.kind) {
    case "queued":
      return <span class="badge bg-slate-100 text-slate-700">queued</span>;
    case "extracting":
      return <span class="badge bg-sky-100 text-sky-800">extracting</span>;
    case "embedding":
      return (
        <span class="inline-flex flex-col gap-1">
          <span class="badge bg-sky-100 text-sky-800">{`embedding ${phase.done}/${phase.total}`}</span>
          <progress
            class="h-1.5 w-28 accent-sky-600"
            max={phase.total}
            value={phase.done}
            aria-label={`Embedded ${phase.done} of ${phase.total} chunks`}
          />
        </span>
      );
    case "ready":
      return <span class="badge bg-emerald-100 text-emerald-800">ready</span>;
    case "failed":
      return (
        <span class="inline-flex flex-col gap-1">
          <span class="badge w-fit bg-red-100 text-red-800">failed</span>
          {phase.reason === "" ? null : <span class="text-xs text-red-700">{phase.reason}</span>}
        </span>
      );
    case "other":
      return <span class="badge bg-slate-100 text-slate-700">{phase.text}</span>;
  }
}

function AgentBadges({ agents }: { agents: readonly string[] }) {
  if (agents.length === 0) return <span class="text-slate-400">none</span>;
  return (
    <span class="flex flex-wrap gap-1">
      {agents.map((slug) => (
        <span class="badge bg-indigo-50 font-mono text-indigo-700">{slug}</span>
      ))}
    </span>
  );
}

/** One row of the list; a row whose ingestion still runs polls `…/row` and is replaced by the answer. */
export function DocumentRow({ clientId, doc }: { clientId: string; doc: DocumentView }) {
  const polling = inProgress(doc.status);
  return (
    <tr
      id={`doc-${doc.id}`}
      {...(polling
        ? {
            "hx-get": `${documentPath(clientId, doc.id)}/row`,
            "hx-trigger": "every 2s",
            "hx-swap": "outerHTML",
          }
        : {})}
    >
      <td>
        <a href={documentPath(clientId, doc.id)} class="font-medium text-indigo-700 hover:underline">
          {doc.title}
        </a>
        {doc.file_name === null || doc.file_name === doc.title ? null : (
          <div class="text-xs text-slate-500">{doc.file_name}</div>
        )}
      </td>
      <td data-status={doc.status}>
        <DocumentStatus status={doc.status} />
      </td>
      <td class="tabular-nums">{doc.chunk_count}</td>
      <td class="hidden sm:table-cell">
        <AgentBadges agents={doc.agents} />
      </td>
      <td class="hidden tabular-nums md:table-cell">{formatBytes(doc.size_bytes)}</td>
      <td class="hidden text-slate-500 md:table-cell">
        <time datetime={doc.created_at}>{shortTime(doc.created_at)}</time>
      </td>
    </tr>
  );
}

/** What `…/row` answers for a document that no longer exists: a final row (polling stops). */
export function DeletedRow({ documentId }: { documentId: string }) {
  return (
    <tr id={`doc-${documentId}`}>
      <td colspan={6} class="text-slate-500">
        This document was deleted.
      </td>
    </tr>
  );
}

/** What `…/row` answers when the status could not be read: says why and asks again later. */
export function RowError({
  clientId,
  documentId,
  message,
}: {
  clientId: string;
  documentId: string;
  message: string;
}) {
  return (
    <tr
      id={`doc-${documentId}`}
      hx-get={`${documentPath(clientId, documentId)}/row`}
      hx-trigger="every 10s"
      hx-swap="outerHTML"
    >
      <td colspan={6} class="text-red-700" role="alert">
        {`The status could not be read (${message}); trying again.`}
      </td>
    </tr>
  );
}

export interface UploadValues {
  title?: string;
  description?: string;
  agents?: readonly string[];
}

function AgentCheckboxes({
  agents,
  checked,
  idPrefix,
}: {
  agents: readonly AgentRef[];
  checked: readonly string[];
  idPrefix: string;
}) {
  return (
    <div class="grid gap-2 sm:grid-cols-2">
      {agents.map((a) => (
        <label for={`${idPrefix}-${a.slug}`} class="flex items-center gap-2 text-sm">
          <input
            id={`${idPrefix}-${a.slug}`}
            type="checkbox"
            name="agent_slugs"
            value={a.slug}
            checked={checked.includes(a.slug)}
            class="h-4 w-4 rounded border-slate-300"
          />
          <span>
            {a.name} <span class="font-mono text-xs text-slate-500">{a.slug}</span>
          </span>
        </label>
      ))}
    </div>
  );
}

/**
 * The upload form: multipart, sent by HTMX (which adds the session's CSRF header); the answer is
 * a redirect to the list, or this form again with the reason it was refused.
 */
export function UploadForm({
  clientId,
  agents,
  maxUploadBytes,
  values = {},
  error,
}: {
  clientId: string;
  agents: readonly AgentRef[];
  maxUploadBytes: number;
  values?: UploadValues;
  error?: string;
}) {
  return (
    <form
      id="upload-form"
      method="post"
      action={documentsPath(clientId)}
      enctype="multipart/form-data"
      hx-post={documentsPath(clientId)}
      hx-encoding="multipart/form-data"
      hx-target="this"
      hx-swap="outerHTML"
      hx-disabled-elt="find button[type=submit]"
      class="card space-y-4"
    >
      <h2 class="font-semibold">Upload a document</h2>
      <noscript>
        <Notice kind="info">Uploading needs JavaScript (the form is sent by HTMX).</Notice>
      </noscript>
      {error === undefined ? null : <Notice kind="error">{error}</Notice>}
      <div class="grid gap-4 sm:grid-cols-2">
        <div class="sm:col-span-2">
          <label for="upload-file" class="field-label">
            File
          </label>
          <input
            id="upload-file"
            name="file"
            type="file"
            required
            accept=".txt,.md,.markdown,.html,.htm,.pdf,text/plain,text/markdown,text/html,application/pdf"
            data-max-bytes={String(maxUploadBytes)}
            aria-describedby="upload-file-help"
            class="field-input"
          />
          <p id="upload-file-help" class="field-help">
            {`Text, Markdown, HTML or PDF, up to ${formatBytes(maxUploadBytes)}.`}
          </p>
        </div>
        <div>
          <label for="upload-title" class="field-label">
            Title
          </label>
          <input
            id="upload-title"
            name="title"
            maxLength={500}
            class="field-input"
            value={values.title ?? ""}
            aria-describedby="upload-title-help"
          />
          <p id="upload-title-help" class="field-help">
            Optional: the file name is used without one.
          </p>
        </div>
        <div>
          <label for="upload-description" class="field-label">
            Description
          </label>
          <input
            id="upload-description"
            name="description"
            maxLength={2000}
            class="field-input"
            value={values.description ?? ""}
          />
        </div>
      </div>
      <fieldset>
        <legend class="field-label">Agents that may use it</legend>
        {agents.length === 0 ? (
          <p class="field-help">This client has no agents yet; assign the document once there are some.</p>
        ) : (
          <div class="mt-2">
            <AgentCheckboxes agents={agents} checked={values.agents ?? []} idPrefix="upload-agent" />
          </div>
        )}
      </fieldset>
      <div class="flex items-center gap-3">
        <button type="submit" class="btn-primary">
          Upload
        </button>
        <span class="htmx-indicator text-sm text-slate-500" aria-hidden="true">
          Uploading…
        </span>
      </div>
    </form>
  );
}

function ClientBreadcrumb({ client, tail }: { client: ClientRef; tail?: Crumb }) {
  return <Breadcrumb trail={clientCrumbs(client, ...(tail === undefined ? [] : [tail]))} />;
}

/** The page of a client whose tenant database is not configured. */
export function NoDatabasePage({
  viewer,
  client,
  what,
}: {
  viewer: Viewer;
  client: ClientRef;
  what: string;
}) {
  return (
    <Layout title={`${what} · ${client.name}`} viewer={viewer} section="clients">
      <ClientBreadcrumb client={client} />
      <PageHeader title={what} />
      <EmptyState title="This client has no tenant database yet">
        <p>Its documents, agents and conversations live in its own database.</p>
        <a href={`/admin/clients/${client.id}/edit`} class="btn-primary mt-3">
          Configure the database
        </a>
      </EmptyState>
    </Layout>
  );
}

export interface DocumentsPageProps {
  viewer: Viewer;
  client: ClientRef;
  documents: readonly DocumentView[];
  agents: readonly AgentRef[];
  maxUploadBytes: number;
  /** The agent filter (`agent_slug`), when set. */
  agentSlug?: string;
  offset: number;
  pageSize: number;
  notice?: string;
  error?: string;
}

export function DocumentsPage(p: DocumentsPageProps) {
  const base = documentsPath(p.client.id);
  const filter = p.agentSlug === undefined ? "" : `&agent_slug=${encodeURIComponent(p.agentSlug)}`;
  const hasMore = p.documents.length === p.pageSize;
  return (
    <Layout title={`Knowledge base · ${p.client.name}`} viewer={p.viewer} section="clients">
      <ClientBreadcrumb client={p.client} />
      <PageHeader title={`Knowledge base · ${p.client.name}`} />
      {p.notice === undefined ? null : (
        <div class="mb-4">
          <Notice kind="success">{p.notice}</Notice>
        </div>
      )}
      {p.error === undefined ? null : (
        <div class="mb-4">
          <Notice kind="error">{p.error}</Notice>
        </div>
      )}
      <div class="grid gap-6 lg:grid-cols-3">
        <section class="space-y-3 lg:col-span-2" aria-labelledby="documents-heading">
          <div class="flex flex-wrap items-end justify-between gap-3">
            <h2 id="documents-heading" class="font-semibold">
              Documents
            </h2>
            {p.agents.length === 0 ? null : (
              <form method="get" action={base} class="flex items-end gap-2">
                <div>
                  <label for="agent-filter" class="field-label">
                    Agent
                  </label>
                  <select id="agent-filter" name="agent_slug" class="field-input">
                    <option value="" selected={p.agentSlug === undefined}>
                      All documents
                    </option>
                    {p.agents.map((a) => (
                      <option value={a.slug} selected={p.agentSlug === a.slug}>
                        {a.name}
                      </option>
                    ))}
                  </select>
                </div>
                <button type="submit" class="btn-secondary">
                  Filter
                </button>
              </form>
            )}
          </div>
          {p.documents.length === 0 ? (
            <EmptyState
              title={
                p.agentSlug === undefined
                  ? p.offset === 0
                    ? "No documents yet"
                    : "No more documents"
                  : `No document is assigned to ${p.agentSlug}`
              }
            >
              {p.agentSlug === undefined && p.offset === 0
                ? "Upload a file: it is split into chunks and embedded for the agents you pick."
                : undefined}
            </EmptyState>
          ) : (
            <div class="table-wrap">
              <table class="data-table">
                <thead>
                  <tr>
                    <th scope="col">Title</th>
                    <th scope="col">Status</th>
                    <th scope="col">Chunks</th>
                    <th scope="col" class="hidden sm:table-cell">
                      Agents
                    </th>
                    <th scope="col" class="hidden md:table-cell">
                      Size
                    </th>
                    <th scope="col" class="hidden md:table-cell">
                      Uploaded
                    </th>
                  </tr>
                </thead>
                <tbody class="divide-y divide-slate-100">
                  {p.documents.map((doc) => (
                    <DocumentRow clientId={p.client.id} doc={doc} />
                  ))}
                </tbody>
              </table>
            </div>
          )}
          {p.offset === 0 && !hasMore ? null : (
            <nav aria-label="Pages" class="flex gap-2">
              {p.offset === 0 ? null : (
                <a
                  href={`${base}?offset=${Math.max(0, p.offset - p.pageSize)}${filter}`}
                  class="btn-secondary"
                >
                  Newer
                </a>
              )}
              {hasMore ? (
                <a href={`${base}?offset=${p.offset + p.pageSize}${filter}`} class="btn-secondary">
                  Older
                </a>
              ) : null}
            </nav>
          )}
        </section>
        <div>
          <UploadForm clientId={p.client.id} agents={p.agents} maxUploadBytes={p.maxUploadBytes} />
        </div>
      </div>
    </Layout>
  );
}

/** The status block of one document's page; polls `…/status` while ingestion runs. */
export function DocumentStatusPanel({ clientId, doc }: { clientId: string; doc: DocumentView }) {
  const polling = inProgress(doc.status);
  return (
    <div
      id="document-status"
      class="space-y-1"
      data-status={doc.status}
      {...(polling
        ? {
            "hx-get": `${documentPath(clientId, doc.id)}/status`,
            "hx-trigger": "every 2s",
            "hx-swap": "outerHTML",
          }
        : {})}
    >
      <DocumentStatus status={doc.status} />
      <p class="text-sm text-slate-600">{`${doc.chunk_count} chunks`}</p>
    </div>
  );
}

/** What `…/status` answers for a document that no longer exists (polling stops). */
export function DeletedStatus() {
  return (
    <div id="document-status">
      <p class="text-sm text-slate-600">This document was deleted.</p>
    </div>
  );
}

function Fact({ label, children }: { label: string; children: Child }) {
  return (
    <div>
      <dt class="text-xs uppercase tracking-wide text-slate-500">{label}</dt>
      <dd class="mt-0.5 text-sm break-all">{children}</dd>
    </div>
  );
}

/** An http(s) URL, or undefined for anything else (never a `javascript:` link). */
export function safeHref(url: string | null | undefined): string | undefined {
  if (typeof url !== "string") return undefined;
  try {
    const u = new URL(url);
    return u.protocol === "https:" || u.protocol === "http:" ? u.href : undefined;
  } catch {
    return undefined;
  }
}

export interface DocumentPageProps {
  viewer: Viewer;
  client: ClientRef;
  doc: DocumentView;
  agents: readonly AgentRef[];
  notice?: string;
  error?: string;
}

export function DocumentPage({ viewer, client, doc, agents, notice, error }: DocumentPageProps) {
  const path = documentPath(client.id, doc.id);
  const source = safeHref(doc.source_url);
  return (
    <Layout title={`${doc.title} · ${client.name}`} viewer={viewer} section="clients">
      <ClientBreadcrumb client={client} tail={{ href: documentsPath(client.id), label: "Knowledge base" }} />
      <PageHeader title={doc.title} />
      {notice === undefined ? null : (
        <div class="mb-4">
          <Notice kind="success">{notice}</Notice>
        </div>
      )}
      {error === undefined ? null : (
        <div class="mb-4">
          <Notice kind="error">{error}</Notice>
        </div>
      )}
      <div class="grid gap-4 md:grid-cols-3">
        <section class="card space-y-3" aria-labelledby="status-heading">
          <h2 id="status-heading" class="font-semibold">
            Ingestion
          </h2>
          <DocumentStatusPanel clientId={client.id} doc={doc} />
        </section>
        <section class="card md:col-span-2" aria-labelledby="file-heading">
          <h2 id="file-heading" class="mb-3 font-semibold">
            File
          </h2>
          <dl class="grid gap-3 sm:grid-cols-2">
            <Fact label="File name">{doc.file_name ?? "—"}</Fact>
            <Fact label="Type">{doc.file_type ?? "—"}</Fact>
            <Fact label="Size">{formatBytes(doc.size_bytes)}</Fact>
            <Fact label="Text">{`${doc.content_chars} characters`}</Fact>
            <Fact label="Uploaded">{shortTime(doc.created_at)}</Fact>
            <Fact label="Id">
              <span class="font-mono text-xs">{doc.id}</span>
            </Fact>
            {doc.description === null ? null : <Fact label="Description">{doc.description}</Fact>}
            {doc.source_url === null ? null : (
              <Fact label="Source">
                {source === undefined ? (
                  doc.source_url
                ) : (
                  <a href={source} rel="noopener noreferrer" class="text-indigo-700 hover:underline">
                    {doc.source_url}
                  </a>
                )}
              </Fact>
            )}
          </dl>
        </section>
      </div>

      <section class="card mt-4" aria-labelledby="agents-heading">
        <h2 id="agents-heading" class="font-semibold">
          Agents
        </h2>
        <p class="mb-3 text-sm text-slate-500">Only the agents checked here retrieve from this document.</p>
        {agents.length === 0 ? (
          <EmptyState title="This client has no agents yet">
            <a href={`/admin/clients/${client.id}/agents`} class="btn-secondary mt-3">
              Agents
            </a>
          </EmptyState>
        ) : (
          <form method="post" action={`${path}/agents`} class="space-y-3">
            <CsrfField viewer={viewer} />
            <fieldset>
              <legend class="sr-only">Assigned agents</legend>
              <AgentCheckboxes agents={agents} checked={doc.agents} idPrefix="assign-agent" />
            </fieldset>
            <button type="submit" class="btn-primary">
              Save assignment
            </button>
          </form>
        )}
      </section>

      <section class="card mt-4 border-red-200" aria-labelledby="delete-heading">
        <h2 id="delete-heading" class="font-semibold text-red-800">
          Delete this document
        </h2>
        <p class="mt-1 text-sm text-slate-600">
          Removes the document, its chunks and its agent assignments from the tenant database.
        </p>
        <form method="post" action={`${path}/delete`} class="mt-3 flex flex-wrap items-center gap-3">
          <CsrfField viewer={viewer} />
          <label for="confirm-delete" class="flex items-center gap-2 text-sm">
            <input
              id="confirm-delete"
              type="checkbox"
              name="confirm"
              value="yes"
              required
              class="h-4 w-4 rounded border-slate-300"
            />
            {`Yes, delete “${doc.title}”`}
          </label>
          <button type="submit" class="btn-danger">
            Delete document
          </button>
        </form>
      </section>
    </Layout>
  );
}
