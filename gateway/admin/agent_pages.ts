/**
 * Console pages for a client's agents: list, create, edit, delete. A form becomes the body the
 * v2 agent routes take (checked by the same schemas, sent to the same tenant operations, audited
 * as the logged-in admin). The JSON columns are merged, not replaced: the form sets the
 * `voice_settings` keys it shows (providers, models, voice id) and `tools_config.rag`, and keeps
 * every other key the agent already has.
 */
import { AgentOps, agentView, PlatformOps, StoreErrorCodes, TenantOps } from "../../actors/index.ts";
import type { AgentRecord, ClientView } from "../../actors/index.ts";
import { SfError } from "../../bus/index.ts";
import { publicError } from "../error_status.ts";
import type { GatewayRequest, RouteDefinition } from "../http_types.ts";
import { agentSlugParam, clientIdParam } from "../routes/route_helpers.ts";
import { AGENT_CREATE_BODY, AGENT_PATCH_BODY } from "../routes/schemas.ts";
import { agentFieldsFromBody } from "../routes/views.ts";
import { assertMatches } from "../validation.ts";
import { fieldErrors } from "./client_pages.ts";
import { consoleRoute } from "./console.ts";
import type { ConsoleDeps, ConsoleRequest } from "./console.ts";
import type { AdminForm } from "./forms.ts";
import { html, redirect } from "./html.ts";
import { AgentForm, agentFormValues, AgentsPage } from "./views/agents.tsx";
import type { AgentFormValues, AgentViewData } from "./views/agents.tsx";
import type { FieldErrors } from "./views/fields.tsx";
import { PROVIDER_CATALOG } from "./views/provider_catalog.ts";
import type { ProviderKindName } from "./views/provider_catalog.ts";

type Body = Record<string, unknown>;

/** Problems the form has before any operation runs (rendered like schema errors). */
class FormErrors extends Error {
  override name = "FormErrors";
  readonly errors: FieldErrors;
  constructor(errors: FieldErrors) {
    super("the form has errors");
    this.errors = errors;
  }
}

const TEXT_FIELDS = [
  "name",
  "slug",
  "llm_provider",
  "llm_model",
  "stt_provider",
  "stt_model",
  "tts_provider",
  "tts_model",
  "voice_id",
  "rag_results_limit",
  "rag_match_threshold",
  "rag_transcript_results",
  "rag_context_tokens",
  "rag_embed_timeout_ms",
] as const;

/** The form as typed (text trimmed; the prompt and description kept as written). */
function readValues(form: AdminForm): AgentFormValues {
  const v: AgentFormValues = {
    enabled: form.checked("enabled"),
    text_chat_enabled: form.checked("text_chat_enabled"),
    voice_chat_enabled: form.checked("voice_chat_enabled"),
    show_citations: form.checked("show_citations"),
    rag_enabled: form.checked("rag_enabled"),
  };
  for (const k of TEXT_FIELDS) {
    const value = form.get(k);
    if (value !== undefined) v[k] = value;
  }
  for (const k of ["description", "system_prompt"] as const) {
    const raw = form.raw(k);
    // Browsers send textareas with CRLF line ends.
    if (raw !== undefined && raw.trim() !== "") v[k] = raw.replace(/\r\n/g, "\n");
  }
  return v;
}

/** A number field of `tools_config.rag`, in range; errors are collected under the form's name. */
function ragNumber(
  v: AgentFormValues,
  name: "rag_match_threshold" | "rag_transcript_results" | "rag_context_tokens" | "rag_embed_timeout_ms",
  min: number,
  max: number,
  integer: boolean,
  errors: Record<string, string>,
): number | undefined {
  const raw = v[name];
  if (raw === undefined) return undefined;
  const n = Number(raw);
  const pattern = integer ? /^-?\d+$/ : /^-?(?:\d+\.?\d*|\.\d+)$/;
  if (!pattern.test(raw) || !Number.isFinite(n) || n < min || n > max) {
    errors[name] = `${integer ? "A whole number" : "A number"} from ${min} to ${max}.`;
    return undefined;
  }
  return n;
}

/** The provider choice of one kind: one the contract lists, or the one the agent already has. */
function checkProvider(
  kind: ProviderKindName,
  name: "llm_provider" | "stt_provider" | "tts_provider",
  v: AgentFormValues,
  stored: string | undefined,
  errors: Record<string, string>,
): void {
  const chosen = v[name];
  if (chosen === undefined || chosen === stored) return;
  if (!PROVIDER_CATALOG[kind].some((p) => p.name === chosen)) {
    errors[name] = `Choose one of: ${PROVIDER_CATALOG[kind].map((p) => p.name).join(", ")}.`;
  }
}

function str(value: unknown): string | undefined {
  return typeof value === "string" && value.trim() !== "" ? value : undefined;
}

/**
 * The v2 body of the form: the agent's own fields, and its JSON columns merged over `current`
 * (the stored agent's, or empty for a new one). Throws nothing: problems the schema cannot see
 * are returned as field errors.
 */
function agentBody(
  v: AgentFormValues,
  current: Pick<AgentRecord, "voiceSettings" | "toolsConfig"> | undefined,
): { body: Body; errors: Record<string, string> } {
  const errors: Record<string, string> = {};
  const storedVoice: Record<string, unknown> = { ...(current?.voiceSettings ?? {}) };
  checkProvider("llm", "llm_provider", v, str(storedVoice["llm_provider"]), errors);
  checkProvider("stt", "stt_provider", v, str(storedVoice["stt_provider"]), errors);
  checkProvider(
    "tts",
    "tts_provider",
    v,
    str(storedVoice["tts_provider"]) ?? str(storedVoice["provider"]),
    errors,
  );
  const llm = PROVIDER_CATALOG.llm.find((p) => p.name === v.llm_provider);
  if (llm !== undefined && !llm.hasDefault && v.llm_model === undefined) {
    errors["llm_model"] = `${llm.name} has no default model: name one.`;
  }
  if (v.tts_provider !== undefined && v.voice_id === undefined) {
    errors["voice_id"] = "A text-to-speech provider needs a voice id.";
  }

  const voice = storedVoice;
  const put = (key: string, value: string | undefined) => {
    if (value === undefined) delete voice[key];
    else voice[key] = value;
  };
  put("llm_provider", v.llm_provider);
  put("llm_model", v.llm_model);
  put("stt_provider", v.stt_provider);
  put("stt_model", v.stt_model);
  put("tts_provider", v.tts_provider);
  // The old service's name for the TTS provider: kept in step where an agent still has it.
  if (Object.hasOwn(voice, "provider")) put("provider", v.tts_provider);
  put("model", v.tts_model);
  put("voice_id", v.voice_id);

  const tools: Record<string, unknown> = { ...(current?.toolsConfig ?? {}) };
  const storedRag = tools["rag"];
  const rag: Record<string, unknown> =
    typeof storedRag === "object" && storedRag !== null && !Array.isArray(storedRag)
      ? { ...(storedRag as Record<string, unknown>) }
      : {};
  rag["enabled"] = v.rag_enabled;
  const numbers: Array<[string, number | undefined]> = [
    ["match_threshold", ragNumber(v, "rag_match_threshold", -1, 1, false, errors)],
    ["transcript_results", ragNumber(v, "rag_transcript_results", 0, 50, true, errors)],
    ["context_tokens", ragNumber(v, "rag_context_tokens", 100, 100_000, true, errors)],
    ["embed_timeout_ms", ragNumber(v, "rag_embed_timeout_ms", 100, 120_000, true, errors)],
  ];
  for (const [key, n] of numbers) {
    if (n === undefined) delete rag[key];
    else rag[key] = n;
  }
  tools["rag"] = rag;

  const limit = v.rag_results_limit;
  const body: Body = {
    name: v.name ?? "",
    slug: v.slug ?? "",
    description: v.description ?? null,
    system_prompt: v.system_prompt ?? null,
    enabled: v.enabled,
    show_citations: v.show_citations,
    text_chat_enabled: v.text_chat_enabled,
    voice_chat_enabled: v.voice_chat_enabled,
    voice_settings: voice,
    tools_config: tools,
    // A number when it is digits; otherwise the text, for the schema to refuse.
    ...(limit === undefined ? {} : { rag_results_limit: /^\d{1,9}$/.test(limit) ? Number(limit) : limit }),
  };
  return { body, errors };
}

/** What a refused field should hold, in words (the schema's messages quote patterns). */
const FIELD_HELP: Readonly<Record<string, string>> = {
  name: "Give the agent a name (up to 200 characters).",
  slug: "Up to 128 letters, digits, _ and -, starting with a letter or digit.",
  rag_results_limit: "A whole number from 1 to 100.",
};

/** The form's field an operation's error is about, when it names one. */
function opFieldErrors(err: unknown): FieldErrors | undefined {
  // Schema paths name the body's fields, which the form's fields carry.
  const fromSchema = fieldErrors(err);
  if (fromSchema !== undefined) {
    const out: Record<string, string> = {};
    for (const [k, m] of Object.entries(fromSchema)) out[k] = FIELD_HELP[k] ?? m;
    return out;
  }
  if (!(err instanceof SfError)) return undefined;
  if (err.code === StoreErrorCodes.ALREADY_EXISTS) {
    return { slug: "Another agent of this client has this slug." };
  }
  const field = err.details?.["field"];
  if (typeof field === "string") return { [field === "systemPrompt" ? "system_prompt" : field]: err.message };
  return undefined;
}

const NEW_AGENT: AgentFormValues = {
  enabled: true,
  text_chat_enabled: true,
  voice_chat_enabled: true,
  show_citations: true,
  rag_enabled: true,
  llm_provider: "groq",
  llm_model: "llama-3.3-70b-versatile",
  rag_results_limit: "5",
};

export function agentPages(deps: ConsoleDeps): RouteDefinition[] {
  const { actors } = deps;

  const client = (id: string, req: GatewayRequest) =>
    actors.platform<ClientView>(PlatformOps.clientsGet, { id }, req);
  const getAgent = (id: string, slug: string, req: GatewayRequest) =>
    actors.tenant<AgentRecord>(id, TenantOps.getAgent, { slug }, req);

  /** The form again, with what was typed and why it was refused (422, or the error's 4xx). */
  const refused = (
    c: ConsoleRequest,
    owner: ClientView,
    values: AgentFormValues,
    err: unknown,
    agent?: Pick<AgentViewData, "slug" | "name">,
  ) => {
    let status = 422;
    let errors: FieldErrors | undefined;
    let message = "Some fields need attention.";
    if (err instanceof FormErrors) errors = err.errors;
    else {
      const e = publicError(err);
      if (e.status >= 500) throw err;
      status = e.status === 400 ? 422 : e.status;
      errors = opFieldErrors(err);
      if (errors === undefined) message = e.message;
    }
    return html(
      status,
      AgentForm({
        viewer: c.viewer,
        client: owner,
        ...(agent === undefined ? {} : { agent }),
        values,
        ...(errors === undefined ? {} : { errors }),
        error: message,
      }),
    );
  };

  return [
    consoleRoute(deps, {
      method: "GET",
      path: "/admin/clients/{id}/agents",
      operationId: "adminAgents",
      summary: "A client's agents",
      handler: async ({ req, viewer }) => {
        const id = clientIdParam(req);
        const owner = await client(id, req);
        const notice =
          req.query["created"] === "1"
            ? "Agent created."
            : req.query["deleted"] === "1"
              ? "Agent deleted."
              : undefined;
        let agents: AgentRecord[];
        try {
          agents = await actors.tenant<AgentRecord[]>(id, TenantOps.listAgents, {}, req);
        } catch (err) {
          if (err instanceof SfError && err.code === StoreErrorCodes.TENANT_DATABASE_NOT_CONFIGURED) {
            return html(
              409,
              AgentsPage({
                viewer,
                client: owner,
                agents: [],
                problem: "This client has no tenant database yet: its agents live there.",
              }),
            );
          }
          throw err;
        }
        return html(
          200,
          AgentsPage({
            viewer,
            client: owner,
            agents: agents.map((a) => agentView(a) as unknown as AgentViewData),
            ...(notice === undefined ? {} : { notice }),
          }),
        );
      },
    }),
    consoleRoute(deps, {
      method: "GET",
      path: "/admin/clients/{id}/agents/new",
      operationId: "adminAgentNew",
      summary: "The new-agent form",
      handler: async ({ req, viewer }) => {
        const owner = await client(clientIdParam(req), req);
        return html(200, AgentForm({ viewer, client: owner, values: NEW_AGENT }));
      },
    }),
    consoleRoute(deps, {
      method: "POST",
      path: "/admin/clients/{id}/agents",
      operationId: "adminAgentCreate",
      summary: "Creates an agent from the form (as POST /api/v2/clients/{id}/agents)",
      handler: async (c) => {
        const { req, form, session } = c;
        const id = clientIdParam(req);
        const owner = await client(id, req);
        const values = readValues(form);
        try {
          const { body, errors } = agentBody(values, undefined);
          if (Object.keys(errors).length > 0) throw new FormErrors(errors);
          assertMatches(AGENT_CREATE_BODY, body);
          await actors.tenant<AgentRecord>(
            id,
            AgentOps.createAgent,
            { actor: session.actor, agent: agentFieldsFromBody(body) },
            req,
          );
        } catch (err) {
          return refused(c, owner, values, err);
        }
        return redirect(`/admin/clients/${id}/agents?created=1`, c.htmx);
      },
    }),
    consoleRoute(deps, {
      method: "GET",
      path: "/admin/clients/{id}/agents/{slug}/edit",
      operationId: "adminAgentEdit",
      summary: "The edit form of one agent",
      handler: async ({ req, viewer }) => {
        const id = clientIdParam(req);
        const slug = agentSlugParam(req);
        const [owner, agent] = await Promise.all([client(id, req), getAgent(id, slug, req)]);
        const view = agentView(agent) as unknown as AgentViewData;
        return html(
          200,
          AgentForm({
            viewer,
            client: owner,
            agent: view,
            values: agentFormValues(view),
            ...(req.query["saved"] === "1" ? { notice: "Changes saved." } : {}),
          }),
        );
      },
    }),
    consoleRoute(deps, {
      method: "POST",
      path: "/admin/clients/{id}/agents/{slug}",
      operationId: "adminAgentUpdate",
      summary: "Saves the edit form (as PATCH /api/v2/clients/{id}/agents/{slug})",
      handler: async (c) => {
        const { req, form, session } = c;
        const id = clientIdParam(req);
        const slug = agentSlugParam(req);
        const [owner, stored] = await Promise.all([client(id, req), getAgent(id, slug, req)]);
        const values = readValues(form);
        let saved: AgentRecord;
        try {
          const { body, errors } = agentBody(values, stored);
          if (Object.keys(errors).length > 0) throw new FormErrors(errors);
          assertMatches(AGENT_PATCH_BODY, body);
          saved = await actors.tenant<AgentRecord>(
            id,
            AgentOps.updateAgent,
            { actor: session.actor, slug, patch: agentFieldsFromBody(body) },
            req,
          );
        } catch (err) {
          return refused(c, owner, values, err, { slug: stored.slug, name: stored.name });
        }
        return redirect(`/admin/clients/${id}/agents/${encodeURIComponent(saved.slug)}/edit?saved=1`, c.htmx);
      },
    }),
    consoleRoute(deps, {
      method: "POST",
      path: "/admin/clients/{id}/agents/{slug}/delete",
      operationId: "adminAgentDelete",
      summary: "Deletes an agent once its slug is typed to confirm",
      handler: async (c) => {
        const { req, form, session, viewer } = c;
        const id = clientIdParam(req);
        const slug = agentSlugParam(req);
        const [owner, stored] = await Promise.all([client(id, req), getAgent(id, slug, req)]);
        if (form.get("confirm_slug") !== stored.slug) {
          const view = agentView(stored) as unknown as AgentViewData;
          return html(
            422,
            AgentForm({
              viewer,
              client: owner,
              agent: view,
              values: agentFormValues(view),
              errors: { confirm_slug: "Type the agent's slug exactly to delete it." },
              error: "Not deleted: type the agent's slug to confirm.",
            }),
          );
        }
        await actors.tenant(id, AgentOps.deleteAgent, { actor: session.actor, slug }, req);
        return redirect(`/admin/clients/${id}/agents?deleted=1`, c.htmx);
      },
    }),
  ];
}
