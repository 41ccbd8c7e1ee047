/**
 * Console pages for a client's keys. Provider keys (write-only): which providers have one, set or
 * replace one by typing it, remove one — the operations of the v2 provider-keys routes. API keys:
 * list, issue (the new key shown on that answer only, sent no-store), revoke after a confirmation
 * page — the platform operations of the v2 api-keys routes. Every change is audited as the
 * logged-in admin.
 */
import { PlatformOps, ProviderKeyOps, StoreErrorCodes } from "../../actors/index.ts";
import type {
  ApiKeysCreateReply,
  ApiKeysListReply,
  ApiKeyView,
  ClientView,
  ProviderKeyView,
} from "../../actors/index.ts";
import { SfError } from "../../bus/index.ts";
import { Scopes } from "../auth/scopes.ts";
import { publicError } from "../error_status.ts";
import { NotFoundError } from "../errors.ts";
import type { GatewayRequest, RouteDefinition } from "../http_types.ts";
import { clientIdParam } from "../routes/route_helpers.ts";
import { API_KEY_CREATE_BODY, PROVIDER_KEY_BODY, PROVIDER_NAME_SCHEMA, UUID_RE } from "../routes/schemas.ts";
import { assertMatches } from "../validation.ts";
import { fieldErrors } from "./client_pages.ts";
import { consoleRoute } from "./console.ts";
import type { ConsoleDeps, ConsoleRequest } from "./console.ts";
import { html, redirect } from "./html.ts";
import type { FieldErrors } from "./views/fields.tsx";
import { ApiKeyIssuedPage, ApiKeysPage, ProviderKeysPage, RevokeApiKeyPage } from "./views/keys.tsx";
import type { ApiKeyFormValues, ScopeChoice } from "./views/keys.tsx";

/** Problems the form has before the operation runs. */
class FormProblem extends Error {
  override name = "FormProblem";
  readonly errors: FieldErrors;
  constructor(errors: FieldErrors) {
    super("the form has errors");
    this.errors = errors;
  }
}

const PROVIDER_RE = new RegExp(PROVIDER_NAME_SCHEMA["pattern"] as string);

/** The scopes an API key can be issued with (gateway/auth/scopes.ts), as checkboxes. */
const SCOPE_HELP: Readonly<Record<string, string>> = {
  [Scopes.agentsTrigger]: "trigger agents: trigger-agent, the embed stream, /ws",
  [Scopes.documentsRead]: "read the knowledge base",
  [Scopes.documentsWrite]: "upload and delete documents (includes documents:read)",
};
const SCOPE_CHOICES: readonly ScopeChoice[] = Object.values(Scopes).map((scope) => ({
  scope,
  help: SCOPE_HELP[scope] ?? scope,
}));
const NEW_KEY: ApiKeyFormValues = { scopes: [Scopes.agentsTrigger] };

function keyIdParam(req: GatewayRequest): string {
  const keyId = req.params["keyId"] ?? "";
  if (!UUID_RE.test(keyId)) throw new NotFoundError("api key not found", { details: { keyId } });
  return keyId.toLowerCase();
}

function noDatabase(err: unknown): boolean {
  return err instanceof SfError && err.code === StoreErrorCodes.TENANT_DATABASE_NOT_CONFIGURED;
}

export function keyPages(deps: ConsoleDeps): RouteDefinition[] {
  const { actors, keys } = deps;

  const client = (id: string, req: GatewayRequest) =>
    actors.platform<ClientView>(PlatformOps.clientsGet, { id }, req);
  const providerKeys = async (id: string, req: GatewayRequest) =>
    (await actors.tenant<{ provider_keys: ProviderKeyView[] }>(id, ProviderKeyOps.listProviderKeys, {}, req))
      .provider_keys;
  const apiKeys = async (id: string, req: GatewayRequest) =>
    (await actors.platform<ApiKeysListReply>(PlatformOps.apiKeysList, { client_id: id }, req)).api_keys;

  /** The provider-keys page with one row's form refused (the typed key is never shown back). */
  const providerRefused = async (
    c: ConsoleRequest,
    owner: ClientView,
    provider: string,
    errors: FieldErrors | undefined,
    message: string,
    status: number,
  ) =>
    html(
      status,
      ProviderKeysPage({
        viewer: c.viewer,
        client: owner,
        keys: await providerKeys(owner.id, c.req),
        failed: provider,
        ...(errors === undefined ? {} : { errors }),
        error: message,
      }),
    );

  return [
    // ---- provider keys -----------------------------------------------------------------------
    consoleRoute(deps, {
      method: "GET",
      path: "/admin/clients/{id}/provider-keys",
      operationId: "adminProviderKeys",
      summary: "Which providers the client has a key for (never the keys)",
      handler: async ({ req, viewer }) => {
        const id = clientIdParam(req);
        const owner = await client(id, req);
        const notice =
          req.query["saved"] !== undefined
            ? "Key saved."
            : req.query["removed"] !== undefined
              ? "Key removed."
              : undefined;
        try {
          const list = await providerKeys(id, req);
          return html(
            200,
            ProviderKeysPage({
              viewer,
              client: owner,
              keys: list,
              ...(notice === undefined ? {} : { notice }),
            }),
          );
        } catch (err) {
          if (!noDatabase(err)) throw err;
          return html(
            409,
            ProviderKeysPage({
              viewer,
              client: owner,
              keys: [],
              problem: "This client has no tenant database yet: provider keys are stored there.",
            }),
          );
        }
      },
    }),
    consoleRoute(deps, {
      method: "POST",
      path: "/admin/clients/{id}/provider-keys",
      operationId: "adminProviderKeySet",
      summary:
        "Sets or replaces the client's key for one provider (as PUT /api/v2/clients/{id}/provider-keys/{provider})",
      handler: async (c) => {
        const { req, form, session } = c;
        const id = clientIdParam(req);
        const owner = await client(id, req);
        const provider = form.get("provider") ?? "";
        if (!PROVIDER_RE.test(provider)) {
          return providerRefused(
            c,
            owner,
            provider,
            { provider: "Lower-case letters, digits, _ and -, starting with a letter." },
            "Not saved: the provider's name is not valid.",
            422,
          );
        }
        // As typed: the API refuses a key with white space rather than trimming it.
        const body = { api_key: form.raw("api_key") ?? "" };
        try {
          assertMatches(PROVIDER_KEY_BODY, body);
        } catch (err) {
          if (fieldErrors(err) === undefined) throw err;
          return providerRefused(
            c,
            owner,
            provider,
            { api_key: "A key is 8 to 4096 characters, without spaces." },
            `Not saved: the ${provider} key is not valid.`,
            422,
          );
        }
        try {
          await actors.tenant<ProviderKeyView>(
            id,
            ProviderKeyOps.setProviderKey,
            { actor: session.actor, provider, api_key: body.api_key },
            req,
          );
        } catch (err) {
          const e = publicError(err);
          if (e.status >= 500) throw err;
          return providerRefused(c, owner, provider, undefined, e.message, e.status === 400 ? 422 : e.status);
        }
        return redirect(`/admin/clients/${id}/provider-keys?saved=${provider}`, c.htmx);
      },
    }),
    consoleRoute(deps, {
      method: "POST",
      path: "/admin/clients/{id}/provider-keys/{provider}/delete",
      operationId: "adminProviderKeyDelete",
      summary:
        "Removes the client's key for one provider (as DELETE /api/v2/clients/{id}/provider-keys/{provider})",
      handler: async (c) => {
        const { req, session } = c;
        const id = clientIdParam(req);
        const provider = req.params["provider"] ?? "";
        if (!PROVIDER_RE.test(provider)) {
          throw new NotFoundError("provider key not found", { details: { provider } });
        }
        await actors.tenant(id, ProviderKeyOps.deleteProviderKey, { actor: session.actor, provider }, req);
        return redirect(`/admin/clients/${id}/provider-keys?removed=${provider}`, c.htmx);
      },
    }),

    // ---- API keys ----------------------------------------------------------------------------
    consoleRoute(deps, {
      method: "GET",
      path: "/admin/clients/{id}/api-keys",
      operationId: "adminApiKeys",
      summary: "The client's API keys (prefixes only) and the issue form",
      handler: async ({ req, viewer }) => {
        const id = clientIdParam(req);
        const [owner, list] = await Promise.all([client(id, req), apiKeys(id, req)]);
        const notice = req.query["revoked"] === "1" ? "Key revoked." : undefined;
        return html(
          200,
          ApiKeysPage({
            viewer,
            client: owner,
            keys: list,
            scopes: SCOPE_CHOICES,
            values: NEW_KEY,
            ...(notice === undefined ? {} : { notice }),
          }),
        );
      },
    }),
    consoleRoute(deps, {
      method: "POST",
      path: "/admin/clients/{id}/api-keys",
      operationId: "adminApiKeyIssue",
      summary: "Issues an API key (as POST /api/v2/clients/{id}/api-keys); the answer shows it once",
      handler: async (c) => {
        const { req, form, session, viewer } = c;
        const id = clientIdParam(req);
        const owner = await client(id, req);
        const label = form.get("label");
        const site = form.get("site_url");
        const scopes = form.all("scopes");
        const values: ApiKeyFormValues = {
          scopes,
          ...(label === undefined ? {} : { label }),
          ...(site === undefined ? {} : { site_url: site }),
        };
        const body: Record<string, unknown> = {
          ...(label === undefined ? {} : { label }),
          ...(scopes.length === 0 ? {} : { scopes }),
          ...(site === undefined ? {} : { site_url: site }),
        };
        let created: ApiKeysCreateReply;
        try {
          const unknown = scopes.filter((s) => !SCOPE_CHOICES.some((k) => k.scope === s));
          if (label === undefined || unknown.length > 0) {
            throw new FormProblem({
              ...(label === undefined ? { label: "Give the key a label, e.g. the site it is for." } : {}),
              ...(unknown.length === 0 ? {} : { scopes: `Unknown scope: ${unknown.join(", ")}.` }),
            });
          }
          assertMatches(API_KEY_CREATE_BODY, body);
          created = await actors.platform<ApiKeysCreateReply>(
            PlatformOps.apiKeysCreate,
            { actor: session.actor, client_id: id, ...body },
            req,
          );
        } catch (err) {
          const errors = err instanceof FormProblem ? err.errors : (fieldErrors(err) ?? detailField(err));
          const e = err instanceof FormProblem ? undefined : publicError(err);
          if (e !== undefined && e.status >= 500) throw err;
          return html(
            e === undefined || e.status === 400 ? 422 : e.status,
            ApiKeysPage({
              viewer,
              client: owner,
              keys: await apiKeys(id, req),
              scopes: SCOPE_CHOICES,
              values,
              ...(errors === undefined ? {} : { errors }),
              error:
                errors === undefined && e !== undefined
                  ? e.message
                  : "Not issued: some fields need attention.",
            }),
          );
        }
        // The one answer that carries the key: html() sends it no-store.
        return html(
          200,
          ApiKeyIssuedPage({ viewer, client: owner, issued: created.api_key, secret: created.key }),
          { headers: { "x-robots-tag": "noindex" } },
        );
      },
    }),
    consoleRoute(deps, {
      method: "GET",
      path: "/admin/clients/{id}/api-keys/{keyId}/revoke",
      operationId: "adminApiKeyRevokeConfirm",
      summary: "Asks to confirm revoking one API key",
      handler: async ({ req, viewer }) => {
        const id = clientIdParam(req);
        const keyId = keyIdParam(req);
        const [owner, list] = await Promise.all([client(id, req), apiKeys(id, req)]);
        const apiKey = list.find((k) => k.id === keyId);
        if (apiKey === undefined) throw new NotFoundError("api key not found", { details: { keyId } });
        return html(200, RevokeApiKeyPage({ viewer, client: owner, apiKey }));
      },
    }),
    consoleRoute(deps, {
      method: "POST",
      path: "/admin/clients/{id}/api-keys/{keyId}/revoke",
      operationId: "adminApiKeyRevoke",
      summary: "Revokes one API key (as DELETE /api/v2/clients/{id}/api-keys/{keyId}) once confirmed",
      handler: async (c) => {
        const { req, form, session, viewer } = c;
        const id = clientIdParam(req);
        const keyId = keyIdParam(req);
        if (form.get("confirm") !== "revoke") {
          const [owner, list] = await Promise.all([client(id, req), apiKeys(id, req)]);
          const apiKey: ApiKeyView | undefined = list.find((k) => k.id === keyId);
          if (apiKey === undefined) throw new NotFoundError("api key not found", { details: { keyId } });
          return html(
            422,
            RevokeApiKeyPage({
              viewer,
              client: owner,
              apiKey,
              error: "Not revoked: confirm with the Revoke key button.",
            }),
          );
        }
        await actors.platform<ApiKeyView>(
          PlatformOps.apiKeysRevoke,
          { actor: session.actor, client_id: id, key_id: keyId },
          req,
        );
        keys.dropClient(id);
        return redirect(`/admin/clients/${id}/api-keys?revoked=1`, c.htmx);
      },
    }),
  ];
}

/** The field an operation's InvalidArgument error names (`site_url`, …). */
function detailField(err: unknown): FieldErrors | undefined {
  if (!(err instanceof SfError)) return undefined;
  const field = err.details?.["field"];
  return typeof field === "string" ? { [field]: err.message } : undefined;
}
