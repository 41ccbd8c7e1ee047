/**
 * Clients: the searchable list, the create and edit form (credentials write-only: shown masked,
 * replaced only by typing new ones), and the detail page.
 */
import type { ApiKeyView, ClientDetailView, ClientView } from "../../../actors/index.ts";
import { Breadcrumb, CsrfField, EmptyState, Layout, Notice, PageHeader } from "./layout.tsx";
import type { Viewer } from "./layout.tsx";
import { FieldError, TextField } from "./fields.tsx";
import type { FieldErrors } from "./fields.tsx";
import { PROVIDER_CATALOG } from "./provider_catalog.ts";

const STATUS_BADGE: Record<string, string> = {
  active: "badge bg-emerald-100 text-emerald-800",
  suspended: "badge bg-amber-100 text-amber-800",
  disabled: "badge bg-slate-200 text-slate-700",
};

export function StatusBadge({ status }: { status: string }) {
  return <span class={STATUS_BADGE[status] ?? "badge bg-slate-100"}>{status}</span>;
}

export function ClientRows({ clients, q }: { clients: readonly ClientView[]; q: string }) {
  if (clients.length === 0) {
    return (
      <div id="client-rows">
        {q === "" ? (
          <EmptyState title="No clients yet">
            <a href="/admin/clients/new" class="btn-primary mt-3">
              Create the first client
            </a>
          </EmptyState>
        ) : (
          <EmptyState title={`No client matches “${q}”`} />
        )}
      </div>
    );
  }
  return (
    <div id="client-rows" class="table-wrap">
      <table class="data-table">
        <thead>
          <tr>
            <th scope="col">Name</th>
            <th scope="col">Slug</th>
            <th scope="col">Status</th>
            <th scope="col" class="hidden sm:table-cell">
              Created
            </th>
          </tr>
        </thead>
        <tbody class="divide-y divide-slate-100">
          {clients.map((c) => (
            <tr>
              <td>
                <a href={`/admin/clients/${c.id}`} class="font-medium text-indigo-700 hover:underline">
                  {c.name}
                </a>
              </td>
              <td class="font-mono text-xs">{c.slug}</td>
              <td>
                <StatusBadge status={c.status} />
              </td>
              <td class="hidden text-slate-500 sm:table-cell">{c.created_at.slice(0, 10)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

export function ClientsPage({
  viewer,
  clients,
  q,
}: {
  viewer: Viewer;
  clients: readonly ClientView[];
  q: string;
}) {
  return (
    <Layout title="Clients" viewer={viewer} section="clients">
      <PageHeader title="Clients">
        <a href="/admin/clients/new" class="btn-primary">
          New client
        </a>
      </PageHeader>
      <form method="get" action="/admin/clients" class="mb-4" role="search">
        <label for="client-search" class="sr-only">
          Search clients
        </label>
        <input
          id="client-search"
          type="search"
          name="q"
          value={q}
          placeholder="Search by name or slug"
          class="field-input max-w-md"
          hx-get="/admin/clients"
          hx-trigger="input changed delay:250ms, search"
          hx-target="#client-rows"
          hx-select="#client-rows"
          hx-swap="outerHTML"
          hx-push-url="true"
        />
      </form>
      <ClientRows clients={clients} q={q} />
    </Layout>
  );
}

/** What the client form shows back after a refused submit (never a credential). */
export interface ClientFormValues {
  slug?: string;
  name?: string;
  status?: string;
  cors_origins?: string;
  db_kind?: string;
  db_schema?: string;
  db_embedding_dimension?: string;
  db_data_dir?: string;
  emb_provider?: string;
  emb_document_model?: string;
  emb_conversation_model?: string;
  emb_dimension?: string;
  livekit_url?: string;
}

export function ClientForm({
  viewer,
  client,
  values,
  errors,
  error,
}: {
  viewer: Viewer;
  client?: ClientDetailView;
  values: ClientFormValues;
  errors?: FieldErrors;
  error?: string;
}) {
  const editing = client !== undefined;
  const action = editing ? `/admin/clients/${client.id}` : "/admin/clients";
  const db = client?.credentials.tenant_database;
  const lk = client?.credentials.livekit;
  return (
    <Layout title={editing ? `Edit ${client.name}` : "New client"} viewer={viewer} section="clients">
      <PageHeader title={editing ? `Edit ${client.name}` : "New client"} />
      <form method="post" action={action} class="space-y-6" novalidate>
        <CsrfField viewer={viewer} />
        {error === undefined ? null : <Notice kind="error">{error}</Notice>}
        <section class="card grid gap-4 sm:grid-cols-2">
          <TextField name="name" label="Name" values={values} errors={errors} required maxLength={200} />
          <TextField
            name="slug"
            label="Slug"
            values={values}
            errors={errors}
            mono
            required
            help="Lower-case letters, digits and dashes."
          />
          <div>
            <label for="status" class="field-label">
              Status
            </label>
            <select id="status" name="status" class="field-input">
              {["active", "suspended", "disabled"].map((s) => (
                <option value={s} selected={(values.status ?? "active") === s}>
                  {s}
                </option>
              ))}
            </select>
            <FieldError errors={errors} name="status" />
          </div>
          <div>
            <label for="cors_origins" class="field-label">
              Allowed browser origins
            </label>
            <textarea
              id="cors_origins"
              name="cors_origins"
              rows={3}
              class="field-input font-mono"
              placeholder="https://www.example.com"
            >
              {values.cors_origins ?? ""}
            </textarea>
            <p class="field-help">
              One origin per line (scheme://host[:port]); sites that may use this client's API keys.
            </p>
            <FieldError errors={errors} name="settings" />
          </div>
        </section>

        <section class="card space-y-4">
          <div>
            <h2 class="font-semibold">Tenant database</h2>
            <p class="text-sm text-slate-500">
              {db?.configured === true
                ? `Configured (${db.kind}${db.url === undefined ? "" : `, ${db.url}`}${db.service_role_key === undefined ? "" : `, key ${db.service_role_key}`}). Leave the secret fields empty to keep them.`
                : "Not configured."}
            </p>
          </div>
          <div class="grid gap-4 sm:grid-cols-2">
            <div>
              <label for="db_kind" class="field-label">
                Kind
              </label>
              <select id="db_kind" name="db_kind" class="field-input">
                <option value="" selected={(values.db_kind ?? "") === ""}>
                  {editing ? "unchanged" : "none"}
                </option>
                {["supabase", "postgres", "pglite"].map((k) => (
                  <option value={k} selected={values.db_kind === k}>
                    {k}
                  </option>
                ))}
              </select>
            </div>
            <div>
              <label for="db_url" class="field-label">
                URL
              </label>
              <input
                id="db_url"
                name="db_url"
                type="password"
                autocomplete="off"
                class="field-input"
                placeholder={db?.configured === true ? "•••••• (unchanged)" : ""}
              />
              <p class="field-help">Supabase project URL, or a postgres:// connection string.</p>
            </div>
            <div>
              <label for="db_service_role_key" class="field-label">
                Service role key
              </label>
              <input
                id="db_service_role_key"
                name="db_service_role_key"
                type="password"
                autocomplete="off"
                class="field-input"
                placeholder={db?.configured === true ? "•••••• (unchanged)" : ""}
              />
            </div>
            <TextField name="db_schema" label="Schema" values={values} errors={errors} mono />
            <TextField
              name="db_embedding_dimension"
              label="Embedding dimension"
              values={values}
              errors={errors}
              inputMode="numeric"
            />
            <TextField
              name="db_data_dir"
              label="PGlite data directory"
              values={values}
              errors={errors}
              mono
              placeholder="tenants/acme"
              help="For kind pglite: the embedded database's folder under the host's data directory."
            />
          </div>
          <FieldError errors={errors} name="tenant_database" />
          {editing && db?.configured === true ? (
            <label class="flex items-center gap-2 text-sm">
              <input type="checkbox" name="db_remove" value="1" /> Remove the database credentials
            </label>
          ) : null}
        </section>

        <section class="card space-y-4">
          <div>
            <h2 class="font-semibold">Embeddings</h2>
            <p class="text-sm text-slate-500">
              The remote provider that embeds this client's documents and conversations (its key is set on the
              Provider keys page). Changing the provider, a model or the dimension makes stored vectors stale
              until they are embedded again.
            </p>
          </div>
          <div class="grid gap-4 sm:grid-cols-2">
            <div>
              <label for="emb_provider" class="field-label">
                Provider
              </label>
              <select id="emb_provider" name="emb_provider" class="field-input">
                <option value="" selected={(values.emb_provider ?? "") === ""}>
                  none
                </option>
                {PROVIDER_CATALOG.embeddings.map(({ name: p }) => (
                  <option value={p} selected={values.emb_provider === p}>
                    {p}
                  </option>
                ))}
              </select>
            </div>
            <TextField
              name="emb_dimension"
              label="Dimension"
              values={values}
              errors={errors}
              inputMode="numeric"
              placeholder="1024"
            />
            <TextField
              name="emb_document_model"
              label="Document model"
              values={values}
              errors={errors}
              mono
              placeholder="Qwen/Qwen3-Embedding-0.6B"
            />
            <TextField
              name="emb_conversation_model"
              label="Conversation model"
              values={values}
              errors={errors}
              mono
            />
          </div>
          <FieldError errors={errors} name="settings" />
        </section>

        <section class="card space-y-4">
          <div>
            <h2 class="font-semibold">LiveKit</h2>
            <p class="text-sm text-slate-500">
              {lk?.configured === true
                ? `Configured (${lk.url}, key ${lk.api_key}, secret ${lk.api_secret}). Type all three fields to replace them.`
                : "Not configured: voice agents need it."}
            </p>
          </div>
          <div class="grid gap-4 sm:grid-cols-3">
            <TextField
              name="livekit_url"
              label="Server URL"
              values={values}
              errors={errors}
              placeholder={lk?.configured === true ? `${lk.url} (unchanged)` : "wss://…"}
            />
            <div>
              <label for="livekit_api_key" class="field-label">
                API key
              </label>
              <input
                id="livekit_api_key"
                name="livekit_api_key"
                type="password"
                autocomplete="off"
                class="field-input"
              />
            </div>
            <div>
              <label for="livekit_api_secret" class="field-label">
                API secret
              </label>
              <input
                id="livekit_api_secret"
                name="livekit_api_secret"
                type="password"
                autocomplete="off"
                class="field-input"
              />
            </div>
          </div>
          <FieldError errors={errors} name="livekit" />
          {editing && lk?.configured === true ? (
            <label class="flex items-center gap-2 text-sm">
              <input type="checkbox" name="livekit_remove" value="1" /> Remove the LiveKit credentials
            </label>
          ) : null}
        </section>

        <div class="flex gap-3">
          <button type="submit" class="btn-primary">
            {editing ? "Save changes" : "Create client"}
          </button>
          <a href={editing ? `/admin/clients/${client.id}` : "/admin/clients"} class="btn-secondary">
            Cancel
          </a>
        </div>
      </form>
    </Layout>
  );
}

function Credential({ label, children }: { label: string; children: string }) {
  return (
    <div>
      <dt class="text-xs uppercase tracking-wide text-slate-500">{label}</dt>
      <dd class="mt-0.5 font-mono text-sm break-all">{children}</dd>
    </div>
  );
}

export function ClientDetailPage({
  viewer,
  client,
  apiKeys,
  notice,
}: {
  viewer: Viewer;
  client: ClientDetailView;
  apiKeys: readonly ApiKeyView[];
  notice?: string;
}) {
  const db = client.credentials.tenant_database;
  const lk = client.credentials.livekit;
  const base = `/admin/clients/${client.id}`;
  const origins = client.settings.cors_origins ?? [];
  return (
    <Layout title={client.name} viewer={viewer} section="clients">
      <Breadcrumb trail={[{ label: client.slug }]} />
      <PageHeader title={client.name}>
        <a href={`${base}/edit`} class="btn-secondary">
          Edit
        </a>
      </PageHeader>
      {notice === undefined ? null : (
        <div class="mb-4">
          <Notice kind="success">{notice}</Notice>
        </div>
      )}
      <nav aria-label="Client sections" class="mb-6 flex flex-wrap gap-2">
        {[
          ["agents", "Agents"],
          ["api-keys", `API keys (${apiKeys.filter((k) => k.revoked_at === null).length})`],
          ["provider-keys", "Provider keys"],
          ["documents", "Knowledge base"],
          ["conversations", "Conversations"],
        ].map(([path, label]) => (
          <a href={`${base}/${path}`} class="btn-secondary">
            {label}
          </a>
        ))}
      </nav>
      <div class="grid gap-4 md:grid-cols-3">
        <section class="card">
          <h2 class="mb-3 font-semibold">Client</h2>
          <dl class="space-y-2">
            <Credential label="Slug">{client.slug}</Credential>
            <Credential label="Id">{client.id}</Credential>
            <div>
              <dt class="text-xs uppercase tracking-wide text-slate-500">Status</dt>
              <dd>
                <StatusBadge status={client.status} />
              </dd>
            </div>
            <Credential label="Browser origins">
              {origins.length === 0 ? "none" : origins.join(", ")}
            </Credential>
            <Credential label="Embeddings">{embeddingText(client)}</Credential>
          </dl>
        </section>
        <section class="card">
          <h2 class="mb-3 font-semibold">Tenant database</h2>
          {db.configured ? (
            <dl class="space-y-2">
              <Credential label="Kind">{db.kind}</Credential>
              {db.url === undefined ? null : <Credential label="URL">{db.url}</Credential>}
              {db.service_role_key === undefined ? null : (
                <Credential label="Service role key">{db.service_role_key}</Credential>
              )}
              {db.schema === null ? null : <Credential label="Schema">{db.schema}</Credential>}
            </dl>
          ) : (
            <p class="text-sm text-slate-500">Not configured.</p>
          )}
        </section>
        <section class="card">
          <h2 class="mb-3 font-semibold">LiveKit</h2>
          {lk.configured ? (
            <dl class="space-y-2">
              <Credential label="URL">{lk.url}</Credential>
              <Credential label="API key">{lk.api_key}</Credential>
              <Credential label="API secret">{lk.api_secret}</Credential>
            </dl>
          ) : (
            <p class="text-sm text-slate-500">Not configured.</p>
          )}
        </section>
      </div>
      <section class="mt-8 card border-red-200">
        <h2 class="font-semibold text-red-800">Delete this client</h2>
        <p class="mt-1 text-sm text-slate-600">
          Removes the client, its credentials and API keys. Its tenant database is left untouched.
        </p>
        <form method="post" action={`${base}/delete`} class="mt-3 flex flex-wrap items-end gap-3">
          <CsrfField viewer={viewer} />
          <div>
            <label for="confirm_slug" class="field-label">
              Type the slug <span class="font-mono">{client.slug}</span> to confirm
            </label>
            <input id="confirm_slug" name="confirm_slug" autocomplete="off" class="field-input" />
          </div>
          <button type="submit" class="btn-danger">
            Delete client
          </button>
        </form>
      </section>
    </Layout>
  );
}

function embeddingText(client: ClientDetailView): string {
  const e = client.settings.embedding;
  if (e === null || e === undefined || typeof e.provider !== "string") return "not configured";
  const parts: string[] = [e.provider];
  if (typeof e.document_model === "string") parts.push(e.document_model);
  if (typeof e.dimension === "number") parts.push(`${e.dimension} dimensions`);
  return parts.join(" · ");
}
