/**
 * A client's keys: its provider keys (write-only: which providers have one and when it changed,
 * never the key) and its API keys (the list, the issue form, the one page that shows a new key,
 * with a copy button, and the revoke confirmation).
 */
import type { ApiKeyView, ClientView } from "../../../actors/index.ts";
import { ClientCrumbs, contractProviders, KIND_LABELS } from "./agents.tsx";
import { FieldError } from "./fields.tsx";
import type { FieldErrors } from "./fields.tsx";
import type { ProviderKindName } from "./provider_catalog.ts";
import { CsrfField, EmptyState, Layout, Notice, PageHeader, TenantDatabaseProblem } from "./layout.tsx";
import type { Viewer } from "./layout.tsx";

export interface ProviderKeyRow {
  provider: string;
  configured: boolean;
  updated_at: string;
}

function When({ at }: { at: string | null }) {
  if (at === null) return <span class="text-slate-400">never</span>;
  return <time datetime={at}>{`${at.slice(0, 16).replace("T", " ")} UTC`}</time>;
}

function Banner({ notice, error }: { notice?: string | undefined; error?: string | undefined }) {
  if (notice === undefined && error === undefined) return null;
  return (
    <div class="mb-4 space-y-2">
      {notice === undefined ? null : <Notice kind="success">{notice}</Notice>}
      {error === undefined ? null : <Notice kind="error">{error}</Notice>}
    </div>
  );
}

// ---- provider keys ---------------------------------------------------------------------------

export function ProviderKeysPage({
  viewer,
  client,
  keys,
  notice,
  error,
  errors,
  failed,
  problem,
}: {
  viewer: Viewer;
  client: ClientView;
  keys: readonly ProviderKeyRow[];
  notice?: string;
  error?: string;
  errors?: FieldErrors;
  /** The provider whose form was refused (its field errors are shown there). */
  failed?: string;
  /** Why the keys could not be read (no tenant database). */
  problem?: string;
}) {
  const base = `/admin/clients/${client.id}/provider-keys`;
  const known = contractProviders();
  const byName = new Map(keys.map((k) => [k.provider, k]));
  const rows: Array<{ name: string; kinds: ProviderKindName[] }> = [
    ...known,
    ...keys
      .filter((k) => !known.some((p) => p.name === k.provider))
      .map((k) => ({ name: k.provider, kinds: [] })),
  ];
  const otherFailed = failed !== undefined && !rows.some((r) => r.name === failed);
  return (
    <Layout title={`Provider keys · ${client.name}`} viewer={viewer} section="clients">
      <ClientCrumbs client={client} here="Provider keys" />
      <PageHeader title={`Provider keys of ${client.name}`} />
      <p class="mb-4 max-w-3xl text-sm text-slate-600">
        The client's own API keys for its LLM, speech and embedding providers, stored sealed in its tenant
        database. They are write-only: this page shows which providers have a key and when it changed, never
        the key. A new key is used by the next job.
      </p>
      <Banner notice={notice} error={error} />
      {problem !== undefined ? (
        <TenantDatabaseProblem clientId={client.id} problem={problem} />
      ) : (
        <>
          <ul
            class="divide-y divide-slate-100 rounded-lg border border-slate-200 bg-white"
            aria-label="Providers"
          >
            {rows.map((row) => {
              const key = byName.get(row.name);
              const fieldId = `key-${row.name}`;
              const rowErrors = failed === row.name ? errors : undefined;
              return (
                <li class="grid gap-3 px-4 py-3 md:grid-cols-[12rem_1fr_auto] md:items-start">
                  <div>
                    <p class="font-mono text-sm font-medium">{row.name}</p>
                    <p class="text-xs text-slate-500">
                      {row.kinds.length === 0
                        ? "other provider"
                        : row.kinds.map((k) => KIND_LABELS[k]).join(", ")}
                    </p>
                    <p class="mt-1 text-xs">
                      {key === undefined ? (
                        <span class="badge bg-slate-200 text-slate-600">not set</span>
                      ) : (
                        <>
                          <span class="badge bg-emerald-100 text-emerald-800">set</span>{" "}
                          <span class="text-slate-500">
                            updated <When at={key.updated_at} />
                          </span>
                        </>
                      )}
                    </p>
                  </div>
                  <form method="post" action={base} class="flex flex-wrap items-start gap-2">
                    <CsrfField viewer={viewer} />
                    <input type="hidden" name="provider" value={row.name} />
                    <div class="min-w-0 flex-1">
                      <label for={fieldId} class="sr-only">
                        {`${key === undefined ? "Key" : "New key"} for ${row.name}`}
                      </label>
                      <input
                        id={fieldId}
                        name="api_key"
                        type="password"
                        autocomplete="off"
                        spellcheck={false}
                        class="field-input mt-0 font-mono"
                        placeholder={
                          key === undefined ? "Paste the key" : "•••••• (type a new key to replace it)"
                        }
                        {...(rowErrors?.["api_key"] === undefined
                          ? {}
                          : { "aria-invalid": "true", "aria-describedby": "api_key-error" })}
                      />
                      <FieldError errors={rowErrors} name="api_key" />
                    </div>
                    <button type="submit" class="btn-primary">
                      {key === undefined ? "Save key" : "Replace key"}
                    </button>
                  </form>
                  {key === undefined ? (
                    <span class="hidden md:block" />
                  ) : (
                    <form
                      method="post"
                      action={`${base}/${row.name}/delete`}
                      hx-post={`${base}/${row.name}/delete`}
                      hx-confirm={`Remove the ${row.name} key? Agents using ${row.name} fail until a new key is set.`}
                    >
                      <CsrfField viewer={viewer} />
                      <button type="submit" class="btn-secondary">
                        Remove
                      </button>
                    </form>
                  )}
                </li>
              );
            })}
          </ul>
          <section class="mt-6 card">
            <h2 class="font-semibold">Another provider</h2>
            <form
              method="post"
              action={base}
              class="mt-3 grid gap-3 sm:grid-cols-[12rem_1fr_auto] sm:items-end"
            >
              <CsrfField viewer={viewer} />
              <div>
                <label for="other-provider" class="field-label">
                  Provider
                </label>
                <input
                  id="other-provider"
                  name="provider"
                  autocomplete="off"
                  class="field-input font-mono"
                  placeholder="name"
                  value={otherFailed ? failed : ""}
                />
                <FieldError errors={otherFailed ? errors : undefined} name="provider" />
              </div>
              <div>
                <label for="other-key" class="field-label">
                  Key
                </label>
                <input
                  id="other-key"
                  name="api_key"
                  type="password"
                  autocomplete="off"
                  class="field-input font-mono"
                />
                <FieldError errors={otherFailed ? errors : undefined} name="api_key" />
              </div>
              <button type="submit" class="btn-primary">
                Save key
              </button>
            </form>
          </section>
        </>
      )}
    </Layout>
  );
}

// ---- API keys --------------------------------------------------------------------------------

export interface ApiKeyFormValues {
  label?: string;
  site_url?: string;
  scopes: readonly string[];
}

export interface ScopeChoice {
  scope: string;
  help: string;
}

function KeyStatus({ k }: { k: ApiKeyView }) {
  if (k.revoked_at !== null) return <span class="badge bg-red-100 text-red-800">revoked</span>;
  if (k.expires_at !== null && Date.parse(k.expires_at) <= Date.now()) {
    return <span class="badge bg-amber-100 text-amber-800">expired</span>;
  }
  return <span class="badge bg-emerald-100 text-emerald-800">active</span>;
}

function ApiKeyTable({ client, keys }: { client: ClientView; keys: readonly ApiKeyView[] }) {
  if (keys.length === 0)
    return <EmptyState title="No API keys yet">Issue one with the form below.</EmptyState>;
  return (
    <div class="table-wrap">
      <table class="data-table">
        <thead>
          <tr>
            <th scope="col">Label</th>
            <th scope="col">Prefix</th>
            <th scope="col">Scopes</th>
            <th scope="col" class="hidden md:table-cell">
              Site URL
            </th>
            <th scope="col" class="hidden sm:table-cell">
              Created
            </th>
            <th scope="col" class="hidden sm:table-cell">
              Last used
            </th>
            <th scope="col">Status</th>
            <th scope="col">
              <span class="sr-only">Actions</span>
            </th>
          </tr>
        </thead>
        <tbody class="divide-y divide-slate-100">
          {keys.map((k) => (
            <tr>
              <td class="font-medium">
                {k.label === "" ? <span class="text-slate-400">(no label)</span> : k.label}
              </td>
              <td class="font-mono text-xs">{`${k.prefix}…`}</td>
              <td class="font-mono text-xs">
                {k.scopes.length === 0 ? (
                  <span class="text-slate-500">legacy: agents:trigger</span>
                ) : (
                  k.scopes.join(" ")
                )}
              </td>
              <td class="hidden break-all text-xs md:table-cell">{k.site_url ?? ""}</td>
              <td class="hidden text-xs text-slate-500 sm:table-cell">
                <When at={k.created_at} />
              </td>
              <td class="hidden text-xs text-slate-500 sm:table-cell">
                <When at={k.last_used_at} />
              </td>
              <td>
                <KeyStatus k={k} />
                {k.revoked_at === null ? null : (
                  <p class="mt-1 text-xs text-slate-500">
                    <When at={k.revoked_at} />
                  </p>
                )}
              </td>
              <td class="text-right">
                {k.revoked_at === null ? (
                  <a
                    href={`/admin/clients/${client.id}/api-keys/${k.id}/revoke`}
                    class="text-sm font-medium text-red-700 hover:underline"
                    aria-label={`Revoke ${k.label === "" ? k.prefix : k.label}`}
                  >
                    Revoke
                  </a>
                ) : null}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function IssueForm({
  viewer,
  client,
  scopes,
  values,
  errors,
}: {
  viewer: Viewer;
  client: ClientView;
  scopes: readonly ScopeChoice[];
  values: ApiKeyFormValues;
  errors?: FieldErrors | undefined;
}) {
  return (
    <section class="mt-6 card">
      <h2 class="font-semibold">Issue a key</h2>
      <p class="mt-1 text-sm text-slate-500">
        The key is shown once, on the next page; only its prefix is kept.
      </p>
      <form method="post" action={`/admin/clients/${client.id}/api-keys`} class="mt-4 space-y-4" novalidate>
        <CsrfField viewer={viewer} />
        <div class="grid gap-4 sm:grid-cols-2">
          <div>
            <label for="label" class="field-label">
              Label
            </label>
            <input
              id="label"
              name="label"
              maxLength={200}
              autocomplete="off"
              class="field-input"
              value={values.label ?? ""}
              placeholder="WordPress shop"
            />
            <FieldError errors={errors} name="label" />
          </div>
          <div>
            <label for="site_url" class="field-label">
              Site URL
            </label>
            <input
              id="site_url"
              name="site_url"
              type="url"
              autocomplete="off"
              class="field-input"
              value={values.site_url ?? ""}
              placeholder="https://www.example.com"
            />
            <p class="field-help">The site the key is for (optional).</p>
            <FieldError errors={errors} name="site_url" />
          </div>
        </div>
        <fieldset>
          <legend class="field-label">Scopes</legend>
          <div class="mt-2 space-y-2">
            {scopes.map((s) => {
              const id = `scope-${s.scope.replace(/[^a-z0-9]+/g, "-")}`;
              return (
                <div class="flex items-start gap-2">
                  <input
                    id={id}
                    type="checkbox"
                    name="scopes"
                    value={s.scope}
                    checked={values.scopes.includes(s.scope)}
                    class="mt-1 h-4 w-4"
                  />
                  <label for={id} class="text-sm">
                    <span class="font-mono">{s.scope}</span> <span class="text-slate-500">— {s.help}</span>
                  </label>
                </div>
              );
            })}
          </div>
          <p class="field-help">None checked: a legacy key, which may trigger agents and nothing else.</p>
          <FieldError errors={errors} name="scopes" />
        </fieldset>
        <button type="submit" class="btn-primary">
          Issue key
        </button>
      </form>
    </section>
  );
}

export function ApiKeysPage({
  viewer,
  client,
  keys,
  scopes,
  values,
  notice,
  error,
  errors,
}: {
  viewer: Viewer;
  client: ClientView;
  keys: readonly ApiKeyView[];
  scopes: readonly ScopeChoice[];
  values: ApiKeyFormValues;
  notice?: string;
  error?: string;
  errors?: FieldErrors;
}) {
  return (
    <Layout title={`API keys · ${client.name}`} viewer={viewer} section="clients">
      <ClientCrumbs client={client} here="API keys" />
      <PageHeader title={`API keys of ${client.name}`} />
      <Banner notice={notice} error={error} />
      <ApiKeyTable client={client} keys={keys} />
      <IssueForm viewer={viewer} client={client} scopes={scopes} values={values} errors={errors} />
    </Layout>
  );
}

/** The one page that shows a new key (sent no-store; the key is kept nowhere). */
export function ApiKeyIssuedPage({
  viewer,
  client,
  issued,
  secret,
}: {
  viewer: Viewer;
  client: ClientView;
  issued: ApiKeyView;
  secret: string;
}) {
  return (
    <Layout title={`New API key · ${client.name}`} viewer={viewer} section="clients">
      <ClientCrumbs client={client} here="New API key" />
      <PageHeader title="New API key" />
      <div class="card max-w-3xl space-y-4">
        <Notice kind="info">
          Copy the key now: it is shown on this page only, and cannot be read again. Lost keys are revoked and
          replaced.
        </Notice>
        <div>
          <p class="field-label" id="new-api-key-label">
            {issued.label === "" ? "The key" : `The key “${issued.label}”`}
          </p>
          <div class="mt-1 flex flex-wrap items-center gap-2">
            <code
              id="new-api-key"
              class="block min-w-0 flex-1 break-all rounded-md border border-slate-300 bg-slate-50 px-3 py-2 font-mono text-sm select-all"
              aria-labelledby="new-api-key-label"
            >
              {secret}
            </code>
            <button type="button" class="btn-secondary" data-copy="#new-api-key">
              Copy
            </button>
          </div>
          <p class="field-help" aria-live="polite" data-copy-status></p>
        </div>
        <dl class="grid gap-2 text-sm sm:grid-cols-2">
          <div>
            <dt class="text-xs uppercase tracking-wide text-slate-500">Prefix</dt>
            <dd class="font-mono">{issued.prefix}</dd>
          </div>
          <div>
            <dt class="text-xs uppercase tracking-wide text-slate-500">Scopes</dt>
            <dd class="font-mono">
              {issued.scopes.length === 0 ? "legacy: agents:trigger" : issued.scopes.join(" ")}
            </dd>
          </div>
          {issued.site_url === null ? null : (
            <div>
              <dt class="text-xs uppercase tracking-wide text-slate-500">Site URL</dt>
              <dd class="break-all">{issued.site_url}</dd>
            </div>
          )}
        </dl>
        <a href={`/admin/clients/${client.id}/api-keys`} class="btn-primary">
          Done: back to the API keys
        </a>
      </div>
    </Layout>
  );
}

export function RevokeApiKeyPage({
  viewer,
  client,
  apiKey,
  error,
}: {
  viewer: Viewer;
  client: ClientView;
  apiKey: ApiKeyView;
  error?: string;
}) {
  const base = `/admin/clients/${client.id}/api-keys`;
  const name = apiKey.label === "" ? apiKey.prefix : `${apiKey.label} (${apiKey.prefix}…)`;
  return (
    <Layout title={`Revoke API key · ${client.name}`} viewer={viewer} section="clients">
      <ClientCrumbs client={client} here="Revoke API key" />
      <PageHeader title="Revoke API key" />
      <div class="card max-w-2xl space-y-4 border-red-200">
        {error === undefined ? null : <Notice kind="error">{error}</Notice>}
        {apiKey.revoked_at !== null ? (
          <p class="text-sm">This key was already revoked.</p>
        ) : (
          <>
            <p class="text-sm text-slate-700">
              Revoke <span class="font-medium">{name}</span>? Every request with it is refused from now on
              (401). This cannot be undone.
            </p>
            <form method="post" action={`${base}/${apiKey.id}/revoke`} class="flex flex-wrap gap-3">
              <CsrfField viewer={viewer} />
              <input type="hidden" name="confirm" value="revoke" />
              <button type="submit" class="btn-danger">
                Revoke key
              </button>
              <a href={base} class="btn-secondary">
                Cancel
              </a>
            </form>
          </>
        )}
      </div>
    </Layout>
  );
}
