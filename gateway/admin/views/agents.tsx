/**
 * A client's agents: the list, and the create/edit form (prompt, switches, the providers and
 * models of SEED_CONTRACT.md as dropdowns, voice id, retrieval settings) with the delete box.
 * Views get the agent as the API shows it (agentView: secret-named JSON properties redacted).
 */
import type { ClientView, EmbeddingSettings } from "../../../actors/index.ts";
import { StatusBadge } from "./clients.tsx";
import { FieldError, TextField } from "./fields.tsx";
import type { FieldErrors } from "./fields.tsx";
import {
  Breadcrumb,
  clientCrumbs,
  CsrfField,
  EmptyState,
  Layout,
  Notice,
  PageHeader,
  TenantDatabaseProblem,
} from "./layout.tsx";
import type { Viewer } from "./layout.tsx";
import { PROVIDER_CATALOG } from "./provider_catalog.ts";
import type { ProviderKindName } from "./provider_catalog.ts";

export const KIND_LABELS: Readonly<Record<ProviderKindName, string>> = {
  llm: "LLM",
  stt: "Speech to text",
  tts: "Text to speech",
  embeddings: "Embeddings",
};

/** Every provider the contract names, with the kinds it serves (for the provider-keys page). */
export function contractProviders(): Array<{ name: string; kinds: ProviderKindName[] }> {
  const out = new Map<string, ProviderKindName[]>();
  for (const kind of Object.keys(PROVIDER_CATALOG) as ProviderKindName[]) {
    for (const p of PROVIDER_CATALOG[kind]) out.set(p.name, [...(out.get(p.name) ?? []), kind]);
  }
  return [...out].map(([name, kinds]) => ({ name, kinds }));
}

/** An agent as agentView shows it (the fields these pages read). */
export interface AgentViewData {
  id: string;
  slug: string;
  name: string;
  description: string | null;
  system_prompt: string | null;
  voice_settings: Record<string, unknown>;
  tools_config: Record<string, unknown>;
  enabled: boolean;
  show_citations: boolean;
  rag_results_limit: number;
  model: string | null;
  text_chat_enabled: boolean;
  voice_chat_enabled: boolean;
}

/** What the agent form shows: text fields as typed, switches as booleans. */
export interface AgentFormValues {
  name?: string;
  slug?: string;
  description?: string;
  system_prompt?: string;
  enabled: boolean;
  text_chat_enabled: boolean;
  voice_chat_enabled: boolean;
  show_citations: boolean;
  llm_provider?: string;
  llm_model?: string;
  stt_provider?: string;
  stt_model?: string;
  tts_provider?: string;
  tts_model?: string;
  voice_id?: string;
  rag_enabled: boolean;
  rag_results_limit?: string;
  rag_match_threshold?: string;
  rag_transcript_results?: string;
  rag_context_tokens?: string;
  rag_embed_timeout_ms?: string;
}

function text(value: unknown): string | undefined {
  if (typeof value === "number" && Number.isFinite(value)) return String(value);
  if (typeof value !== "string") return undefined;
  return value.trim() === "" ? undefined : value;
}

function ragObject(tools: Record<string, unknown>): Record<string, unknown> {
  const rag = tools["rag"];
  return typeof rag === "object" && rag !== null && !Array.isArray(rag)
    ? (rag as Record<string, unknown>)
    : {};
}

/** The form's values for a stored agent. */
export function agentFormValues(a: AgentViewData): AgentFormValues {
  const vs = a.voice_settings;
  const rag = ragObject(a.tools_config);
  const v: AgentFormValues = {
    enabled: a.enabled,
    text_chat_enabled: a.text_chat_enabled,
    voice_chat_enabled: a.voice_chat_enabled,
    show_citations: a.show_citations,
    rag_enabled: rag["enabled"] !== false,
  };
  const entries: Array<[keyof AgentFormValues, unknown]> = [
    ["name", a.name],
    ["slug", a.slug],
    ["description", a.description],
    ["system_prompt", a.system_prompt],
    ["llm_provider", vs["llm_provider"]],
    ["llm_model", vs["llm_model"] ?? a.model],
    ["stt_provider", vs["stt_provider"]],
    ["stt_model", vs["stt_model"]],
    ["tts_provider", vs["tts_provider"] ?? vs["provider"]],
    ["tts_model", vs["model"]],
    ["voice_id", vs["voice_id"]],
    ["rag_results_limit", a.rag_results_limit],
    ["rag_match_threshold", rag["match_threshold"]],
    ["rag_transcript_results", rag["transcript_results"]],
    ["rag_context_tokens", rag["context_tokens"]],
    ["rag_embed_timeout_ms", rag["embed_timeout_ms"]],
  ];
  for (const [k, raw] of entries) {
    const t = text(raw);
    if (t !== undefined) (v as unknown as Record<string, unknown>)[k] = t;
  }
  return v;
}

/** Breadcrumb back to the client. */
export function ClientCrumbs({ client, here }: { client: Pick<ClientView, "id" | "slug">; here: string }) {
  return <Breadcrumb trail={clientCrumbs(client, { label: here })} />;
}

function OnOff({ on, label }: { on: boolean; label: string }) {
  return (
    <span class={on ? "badge bg-emerald-100 text-emerald-800" : "badge bg-slate-200 text-slate-600"}>
      {label} {on ? "on" : "off"}
    </span>
  );
}

function providerSummary(a: AgentViewData): string {
  const vs = a.voice_settings;
  const llm = text(vs["llm_provider"]);
  const llmModel = text(vs["llm_model"]) ?? text(a.model);
  const parts = [
    `LLM ${llm === undefined ? "—" : llmModel === undefined ? llm : `${llm} / ${llmModel}`}`,
    `STT ${text(vs["stt_provider"]) ?? "—"}`,
    `TTS ${text(vs["tts_provider"]) ?? text(vs["provider"]) ?? "—"}`,
  ];
  return parts.join(" · ");
}

export function AgentsPage({
  viewer,
  client,
  agents,
  notice,
  problem,
}: {
  viewer: Viewer;
  client: ClientView;
  agents: readonly AgentViewData[];
  notice?: string;
  /** Why the agents could not be read (no tenant database, …). */
  problem?: string;
}) {
  const base = `/admin/clients/${client.id}/agents`;
  return (
    <Layout title={`Agents · ${client.name}`} viewer={viewer} section="clients">
      <ClientCrumbs client={client} here="Agents" />
      <PageHeader title={`Agents of ${client.name}`}>
        {problem === undefined ? (
          <a href={`${base}/new`} class="btn-primary">
            New agent
          </a>
        ) : null}
      </PageHeader>
      {notice === undefined ? null : (
        <div class="mb-4">
          <Notice kind="success">{notice}</Notice>
        </div>
      )}
      {problem !== undefined ? (
        <TenantDatabaseProblem clientId={client.id} problem={problem} />
      ) : agents.length === 0 ? (
        <EmptyState title="No agents yet">
          <a href={`${base}/new`} class="btn-primary mt-3">
            Create the first agent
          </a>
        </EmptyState>
      ) : (
        <div class="table-wrap">
          <table class="data-table">
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Slug</th>
                <th scope="col">Status</th>
                <th scope="col">Channels</th>
                <th scope="col" class="hidden md:table-cell">
                  Providers
                </th>
                <th scope="col">
                  <span class="sr-only">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody class="divide-y divide-slate-100">
              {agents.map((a) => (
                <tr>
                  <td>
                    <a
                      href={`${base}/${encodeURIComponent(a.slug)}/edit`}
                      class="font-medium text-indigo-700 hover:underline"
                    >
                      {a.name}
                    </a>
                  </td>
                  <td class="font-mono text-xs">{a.slug}</td>
                  <td>
                    <StatusBadge status={a.enabled ? "active" : "disabled"} />
                  </td>
                  <td>
                    <div class="flex flex-wrap gap-1">
                      <OnOff on={a.text_chat_enabled} label="Text" />
                      <OnOff on={a.voice_chat_enabled} label="Voice" />
                    </div>
                  </td>
                  <td class="hidden text-xs text-slate-600 md:table-cell">{providerSummary(a)}</td>
                  <td>
                    <a
                      href={`${base}/${encodeURIComponent(a.slug)}/preview`}
                      class="btn-secondary whitespace-nowrap"
                      aria-label={`Preview ${a.name}`}
                    >
                      Preview
                    </a>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </Layout>
  );
}

function Checkbox({
  name,
  label,
  checked,
  help,
}: {
  name: string;
  label: string;
  checked: boolean;
  help?: string;
}) {
  return (
    <div class="flex items-start gap-2">
      <input id={name} name={name} type="checkbox" value="1" checked={checked} class="mt-1 h-4 w-4" />
      <div>
        <label for={name} class="text-sm font-medium text-slate-700">
          {label}
        </label>
        {help === undefined ? null : <p class="field-help mt-0">{help}</p>}
      </div>
    </div>
  );
}

function ProviderSelect({
  kind,
  name,
  label,
  values,
  errors,
}: {
  kind: ProviderKindName;
  name: "llm_provider" | "stt_provider" | "tts_provider";
  label: string;
  values: AgentFormValues;
  errors: FieldErrors | undefined;
}) {
  const current = values[name];
  const known = PROVIDER_CATALOG[kind].map((p) => p.name);
  const invalid = errors?.[name] !== undefined;
  return (
    <div>
      <label for={name} class="field-label">
        {label}
      </label>
      <select
        id={name}
        name={name}
        class="field-input"
        {...(invalid ? { "aria-invalid": "true", "aria-describedby": `${name}-error` } : {})}
      >
        <option value="" selected={current === undefined}>
          none
        </option>
        {known.map((p) => (
          <option value={p} selected={current === p}>
            {p}
          </option>
        ))}
        {current !== undefined && !known.includes(current) ? (
          <option value={current} selected>
            {`${current} (not in the contract's list)`}
          </option>
        ) : null}
      </select>
      <FieldError errors={errors} name={name} />
    </div>
  );
}

/** Suggested models of a kind, each labelled with its provider. */
function ModelList({ id, kind }: { id: string; kind: ProviderKindName }) {
  return (
    <datalist id={id}>
      {PROVIDER_CATALOG[kind].flatMap((p) =>
        p.models.map((m, i) => (
          <option value={m} label={`${p.name}${i === 0 && p.hasDefault ? " (default)" : ""}`} />
        )),
      )}
    </datalist>
  );
}

function modelHelp(kind: ProviderKindName): string {
  const parts = PROVIDER_CATALOG[kind].map((p) =>
    p.models[0] !== undefined && p.hasDefault
      ? `${p.name}: ${p.models[0]} when empty`
      : p.hasDefault
        ? `${p.name}: its default when empty`
        : `${p.name}: required`,
  );
  return parts.join("; ");
}

function embeddingText(e: EmbeddingSettings | null | undefined): string {
  const provider = e?.provider;
  if (provider === undefined || provider === null || provider === "") {
    return "No embedding provider is set for this client: retrieval (documents and past turns) needs one.";
  }
  const model = e?.document_model ?? "its default model";
  return `${provider}, ${model}, ${e?.dimension ?? 1024} dimensions (a client setting shared by all its agents).`;
}

export function AgentForm({
  viewer,
  client,
  agent,
  values,
  errors,
  error,
  notice,
}: {
  viewer: Viewer;
  client: ClientView;
  /** The stored agent when editing. */
  agent?: Pick<AgentViewData, "slug" | "name">;
  values: AgentFormValues;
  errors?: FieldErrors;
  error?: string;
  notice?: string;
}) {
  const editing = agent !== undefined;
  const list = `/admin/clients/${client.id}/agents`;
  const action = editing ? `${list}/${encodeURIComponent(agent.slug)}` : list;
  const title = editing ? `Edit ${agent.name}` : "New agent";
  return (
    <Layout title={title} viewer={viewer} section="clients">
      <Breadcrumb
        trail={clientCrumbs(client, { label: "Agents", href: list }, { label: editing ? agent.slug : "new" })}
      />
      <PageHeader title={title} />
      {notice === undefined ? null : (
        <div class="mb-4">
          <Notice kind="success">{notice}</Notice>
        </div>
      )}
      <form method="post" action={action} class="space-y-6" novalidate>
        <CsrfField viewer={viewer} />
        {error === undefined ? null : <Notice kind="error">{error}</Notice>}
        <section class="card grid gap-4 sm:grid-cols-2">
          <h2 class="font-semibold sm:col-span-2">Agent</h2>
          <TextField name="name" label="Name" values={values} errors={errors} />
          <TextField
            name="slug"
            label="Slug"
            values={values}
            errors={errors}
            mono
            help="Letters, digits, _ and -; thin clients name the agent by it."
          />
          <div class="sm:col-span-2">
            <label for="description" class="field-label">
              Description
            </label>
            <textarea id="description" name="description" rows={2} class="field-input">
              {values.description ?? ""}
            </textarea>
            <FieldError errors={errors} name="description" />
          </div>
          <div class="sm:col-span-2">
            <label for="system_prompt" class="field-label">
              System prompt
            </label>
            <textarea id="system_prompt" name="system_prompt" rows={8} class="field-input font-mono">
              {values.system_prompt ?? ""}
            </textarea>
            <FieldError errors={errors} name="system_prompt" />
          </div>
          <div class="grid gap-3 sm:col-span-2 sm:grid-cols-2">
            <Checkbox
              name="enabled"
              label="Enabled"
              checked={values.enabled}
              help="Disabled agents refuse every chat."
            />
            <Checkbox name="show_citations" label="Show citations" checked={values.show_citations} />
            <Checkbox name="text_chat_enabled" label="Text chat" checked={values.text_chat_enabled} />
            <Checkbox name="voice_chat_enabled" label="Voice chat" checked={values.voice_chat_enabled} />
          </div>
        </section>

        <section class="card space-y-4">
          <div>
            <h2 class="font-semibold">Providers</h2>
            <p class="text-sm text-slate-500">
              Each provider is called with this client's own key for it (
              <a href={`/admin/clients/${client.id}/provider-keys`} class="underline">
                provider keys
              </a>
              ); there is no fallback to another provider.
            </p>
          </div>
          <ModelList id="llm-models" kind="llm" />
          <ModelList id="stt-models" kind="stt" />
          <ModelList id="tts-models" kind="tts" />
          <div class="grid gap-4 sm:grid-cols-2">
            <ProviderSelect
              kind="llm"
              name="llm_provider"
              label="LLM provider"
              values={values}
              errors={errors}
            />
            <TextField
              name="llm_model"
              label="LLM model"
              values={values}
              errors={errors}
              mono
              list="llm-models"
              help={modelHelp("llm")}
            />
            <ProviderSelect
              kind="stt"
              name="stt_provider"
              label="Speech-to-text provider"
              values={values}
              errors={errors}
            />
            <TextField
              name="stt_model"
              label="Speech-to-text model"
              values={values}
              errors={errors}
              mono
              list="stt-models"
              help={modelHelp("stt")}
            />
            <ProviderSelect
              kind="tts"
              name="tts_provider"
              label="Text-to-speech provider"
              values={values}
              errors={errors}
            />
            <TextField
              name="tts_model"
              label="Text-to-speech model"
              values={values}
              errors={errors}
              mono
              list="tts-models"
              help={modelHelp("tts")}
            />
            <TextField
              name="voice_id"
              label="Voice id"
              values={values}
              errors={errors}
              mono
              help="The provider's voice; required with a text-to-speech provider."
            />
          </div>
        </section>

        <section class="card space-y-4">
          <div>
            <h2 class="font-semibold">Knowledge retrieval (RAG)</h2>
            <p class="text-sm text-slate-500">Embeddings: {embeddingText(client.settings.embedding)}</p>
          </div>
          <Checkbox
            name="rag_enabled"
            label="Retrieval on"
            checked={values.rag_enabled}
            help="Off: no embedding call and no document or transcript search for this agent."
          />
          <div class="grid gap-4 sm:grid-cols-2 md:grid-cols-3">
            <TextField
              name="rag_results_limit"
              label="Document chunks per turn"
              values={values}
              errors={errors}
              inputMode="numeric"
              placeholder="5"
              help="1 to 100."
            />
            <TextField
              name="rag_match_threshold"
              label="Minimum similarity"
              values={values}
              errors={errors}
              inputMode="decimal"
              placeholder="0.3"
              help="-1 to 1 (cosine); empty: 0.3."
            />
            <TextField
              name="rag_transcript_results"
              label="Past turns per turn"
              values={values}
              errors={errors}
              inputMode="numeric"
              placeholder="3"
              help="0 to 50; empty: 3."
            />
            <TextField
              name="rag_context_tokens"
              label="Context token budget"
              values={values}
              errors={errors}
              inputMode="numeric"
              placeholder="2000"
              help="100 to 100000; empty: 2000."
            />
            <TextField
              name="rag_embed_timeout_ms"
              label="Embedding deadline (ms)"
              values={values}
              errors={errors}
              inputMode="numeric"
              placeholder="10000"
              help="100 to 120000; empty: 10000."
            />
          </div>
        </section>

        <div class="flex flex-wrap gap-3">
          <button type="submit" class="btn-primary">
            {editing ? "Save changes" : "Create agent"}
          </button>
          <a href={list} class="btn-secondary">
            Cancel
          </a>
        </div>
      </form>
      {editing ? (
        <section class="mt-8 card border-red-200">
          <h2 class="font-semibold text-red-800">Delete this agent</h2>
          <p class="mt-1 text-sm text-slate-600">
            Removes the agent from the client's database; its conversations stay.
          </p>
          <form
            method="post"
            action={`${list}/${encodeURIComponent(agent.slug)}/delete`}
            class="mt-3 flex flex-wrap items-end gap-3"
          >
            <CsrfField viewer={viewer} />
            <div>
              <label for="confirm_slug" class="field-label">
                Type the slug <span class="font-mono">{agent.slug}</span> to confirm
              </label>
              <input id="confirm_slug" name="confirm_slug" autocomplete="off" class="field-input" />
              <FieldError errors={errors} name="confirm_slug" />
            </div>
            <button type="submit" class="btn-danger">
              Delete agent
            </button>
          </form>
        </section>
      ) : null}
    </Layout>
  );
}
