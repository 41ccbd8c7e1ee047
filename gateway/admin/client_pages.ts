/**
 * Console pages for clients: list with search, create, detail, edit, delete. Forms become the
 * same bodies the v2 API takes, checked by the same schemas and sent to the same platform
 * operations (audited as the logged-in admin); credentials are write-only — a blank secret field
 * keeps what is stored, and changing one makes the platform publish the credentials event, so
 * tenant actors drop their cached configuration without a restart.
 */
import { PlatformOps } from "../../actors/index.ts";
import type { ApiKeysListReply, ClientDetailView, ClientsListReply } from "../../actors/index.ts";
import { SfError } from "../../bus/index.ts";
import { publicError } from "../error_status.ts";
import { GatewayErrorCodes } from "../errors.ts";
import type { GatewayRequest, RouteDefinition } from "../http_types.ts";
import { clientIdParam, setClientCredentials } from "../routes/route_helpers.ts";
import { CLIENT_CREATE_BODY, CLIENT_PATCH_BODY } from "../routes/schemas.ts";
import { assertMatches } from "../validation.ts";
import { consoleRoute } from "./console.ts";
import type { ConsoleDeps, ConsoleRequest } from "./console.ts";
import type { AdminForm } from "./forms.ts";
import { html, redirect } from "./html.ts";
import { ClientDetailPage, ClientForm, ClientRows, ClientsPage } from "./views/clients.tsx";
import type { ClientFormValues } from "./views/clients.tsx";
import type { FieldErrors } from "./views/fields.tsx";

type Body = Record<string, unknown>;

/** The field a schema issue points at (`/tenant_database/url` → `tenant_database`). */
export function fieldErrors(err: unknown): FieldErrors | undefined {
  if (!(err instanceof SfError) || err.code !== GatewayErrorCodes.VALIDATION_FAILED) return undefined;
  const issues = (err.details?.["issues"] ?? []) as Array<{ path: string; message: string }>;
  const out: Record<string, string> = {};
  for (const i of issues) {
    const field = i.path.split("/")[1] ?? "";
    out[field] ??= i.message;
  }
  return out;
}

function lines(raw: string | undefined): string[] {
  return (raw ?? "")
    .split(/[\s,]+/)
    .map((s) => s.trim().replace(/\/+$/, ""))
    .filter((s) => s !== "");
}

function formValues(form: AdminForm): ClientFormValues {
  const v: ClientFormValues = {};
  const pick = (k: keyof ClientFormValues) => {
    const value = form.get(k);
    if (value !== undefined) v[k] = value;
  };
  for (const k of [
    "slug",
    "name",
    "status",
    "db_kind",
    "db_schema",
    "db_embedding_dimension",
    "db_data_dir",
    "livekit_url",
    "emb_provider",
    "emb_document_model",
    "emb_conversation_model",
    "emb_dimension",
  ] as const)
    pick(k);
  const origins = form.raw("cors_origins");
  if (origins !== undefined) v.cors_origins = origins;
  return v;
}

function embeddingValues(c: ClientDetailView): ClientFormValues {
  const e = c.settings.embedding;
  if (e === null || e === undefined || typeof e.provider !== "string") return {};
  const v: ClientFormValues = { emb_provider: e.provider };
  if (typeof e.document_model === "string") v.emb_document_model = e.document_model;
  if (typeof e.conversation_model === "string") v.emb_conversation_model = e.conversation_model;
  if (typeof e.dimension === "number") v.emb_dimension = String(e.dimension);
  return v;
}

function detailValues(c: ClientDetailView): ClientFormValues {
  return {
    slug: c.slug,
    name: c.name,
    status: c.status,
    cors_origins: (c.settings.cors_origins ?? []).join("\n"),
    ...embeddingValues(c),
    ...(c.credentials.tenant_database.configured && c.credentials.tenant_database.schema !== null
      ? { db_schema: c.credentials.tenant_database.schema }
      : {}),
  };
}

/** The embedding settings of the form (`null`: none), in the API's shape. */
function embeddingSettings(form: AdminForm): Body | null {
  const provider = form.get("emb_provider");
  if (provider === undefined) return null;
  const out: Body = { provider };
  const documentModel = form.get("emb_document_model");
  if (documentModel !== undefined) out["document_model"] = documentModel;
  const conversationModel = form.get("emb_conversation_model");
  if (conversationModel !== undefined) out["conversation_model"] = conversationModel;
  const dim = form.get("emb_dimension");
  if (dim !== undefined) out["dimension"] = /^\d{1,6}$/.test(dim) ? Number(dim) : dim;
  return out;
}

/** The credentials of the form, in the API's shape; undefined parts are left as stored. */
function credentialBody(form: AdminForm, editing: boolean): Body {
  const out: Body = {};
  if (editing && form.checked("db_remove")) out["tenant_database"] = null;
  else {
    const kind = form.get("db_kind");
    if (kind !== undefined) {
      const db: Body = { kind };
      const put = (field: string, name: string) => {
        const value = form.get(name);
        if (value !== undefined) db[field] = value;
      };
      put("url", "db_url");
      put("service_role_key", "db_service_role_key");
      put("schema", "db_schema");
      put("data_dir", "db_data_dir");
      const dim = form.get("db_embedding_dimension");
      if (dim !== undefined) db["embedding_dimension"] = /^\d{1,6}$/.test(dim) ? Number(dim) : dim;
      out["tenant_database"] = db;
    }
  }
  if (editing && form.checked("livekit_remove")) out["livekit"] = null;
  else {
    const url = form.get("livekit_url");
    const key = form.get("livekit_api_key");
    const secret = form.get("livekit_api_secret");
    // The URL alone is shown back on edit: only typing a key or secret replaces the credentials.
    if (key !== undefined || secret !== undefined || (!editing && url !== undefined)) {
      const lk: Body = {};
      if (url !== undefined) lk["url"] = url;
      if (key !== undefined) lk["api_key"] = key;
      if (secret !== undefined) lk["api_secret"] = secret;
      out["livekit"] = lk;
    }
  }
  return out;
}

export function clientPages(deps: ConsoleDeps): RouteDefinition[] {
  const { actors, keys, origins } = deps;

  const load = async (id: string, req: GatewayRequest) => {
    const [client, apiKeys] = await Promise.all([
      actors.platform<ClientDetailView>(PlatformOps.clientsGet, { id }, req),
      actors.platform<ApiKeysListReply>(PlatformOps.apiKeysList, { client_id: id }, req),
    ]);
    return { client, apiKeys: apiKeys.api_keys };
  };

  const refused = (c: ConsoleRequest, err: unknown, client?: ClientDetailView) => {
    const errors = fieldErrors(err);
    const e = publicError(err);
    if (e.status >= 500) throw err;
    return html(
      e.status === 400 ? 422 : e.status,
      ClientForm({
        viewer: c.viewer,
        ...(client === undefined ? {} : { client }),
        values: formValues(c.form),
        ...(errors === undefined ? {} : { errors }),
        error: errors === undefined ? e.message : "Some fields need attention.",
      }),
    );
  };

  return [
    consoleRoute(deps, {
      method: "GET",
      path: "/admin/clients",
      operationId: "adminClients",
      summary: "Clients, searched by name or slug (`q`)",
      handler: async ({ req, viewer, htmx }) => {
        const q = (req.query["q"] ?? "").trim().slice(0, 200);
        const page = await actors.platform<ClientsListReply>(
          PlatformOps.clientsList,
          { ...(q === "" ? {} : { search: q }), limit: 200 },
          req,
        );
        if (htmx && req.headers["hx-target"] === "client-rows") {
          return html(200, ClientRows({ clients: page.clients, q }), { fragment: true });
        }
        return html(200, ClientsPage({ viewer, clients: page.clients, q }));
      },
    }),
    consoleRoute(deps, {
      method: "GET",
      path: "/admin/clients/new",
      operationId: "adminClientNew",
      summary: "The new-client form",
      handler: ({ viewer }) =>
        Promise.resolve(html(200, ClientForm({ viewer, values: { status: "active" } }))),
    }),
    consoleRoute(deps, {
      method: "POST",
      path: "/admin/clients",
      operationId: "adminClientCreate",
      summary: "Creates a client from the form",
      handler: async (c) => {
        const { req, form, session } = c;
        const origins_ = lines(form.raw("cors_origins"));
        const embedding = embeddingSettings(form);
        const body: Body = {
          slug: form.get("slug") ?? "",
          name: form.get("name") ?? "",
          status: form.get("status") ?? "active",
          ...(origins_.length === 0 && embedding === null
            ? {}
            : {
                settings: {
                  ...(origins_.length === 0 ? {} : { cors_origins: origins_ }),
                  ...(embedding === null ? {} : { embedding }),
                },
              }),
          ...credentialBody(form, false),
        };
        let created: ClientDetailView;
        try {
          assertMatches(CLIENT_CREATE_BODY, body);
          created = await actors.platform<ClientDetailView>(
            PlatformOps.clientsCreate,
            {
              actor: session.actor,
              slug: body["slug"],
              name: body["name"],
              status: body["status"],
              ...(body["settings"] === undefined ? {} : { settings: body["settings"] }),
            },
            req,
          );
        } catch (err) {
          return refused(c, err);
        }
        try {
          await setClientCredentials(actors, created.id, session.actor, body, req);
        } catch (err) {
          // The client exists: say what was not stored, on its edit form.
          const { client } = await load(created.id, req);
          return refused(c, err, client);
        }
        if (body["settings"] !== undefined) origins?.clear();
        return redirect(`/admin/clients/${created.id}?created=1`, c.htmx);
      },
    }),
    consoleRoute(deps, {
      method: "GET",
      path: "/admin/clients/{id}",
      operationId: "adminClient",
      summary: "One client: masked credentials, sections, delete",
      handler: async ({ req, viewer }) => {
        const { client, apiKeys } = await load(clientIdParam(req), req);
        const notice =
          req.query["created"] === "1"
            ? "Client created."
            : req.query["saved"] === "1"
              ? "Changes saved."
              : undefined;
        return html(
          200,
          ClientDetailPage({ viewer, client, apiKeys, ...(notice === undefined ? {} : { notice }) }),
        );
      },
    }),
    consoleRoute(deps, {
      method: "GET",
      path: "/admin/clients/{id}/edit",
      operationId: "adminClientEdit",
      summary: "The edit form of a client (credentials write-only)",
      handler: async ({ req, viewer }) => {
        const { client } = await load(clientIdParam(req), req);
        return html(200, ClientForm({ viewer, client, values: detailValues(client) }));
      },
    }),
    consoleRoute(deps, {
      method: "POST",
      path: "/admin/clients/{id}",
      operationId: "adminClientUpdate",
      summary: "Saves the edit form: fields, and credentials typed anew",
      handler: async (c) => {
        const { req, form, session } = c;
        const id = clientIdParam(req);
        const { client } = await load(id, req);
        const origins_ = lines(form.raw("cors_origins"));
        const patch: Body = {
          slug: form.get("slug") ?? "",
          name: form.get("name") ?? "",
          status: form.get("status") ?? client.status,
          settings: {
            cors_origins: origins_.length === 0 ? null : origins_,
            embedding: embeddingSettings(form),
          },
          ...credentialBody(form, true),
        };
        try {
          assertMatches(CLIENT_PATCH_BODY, patch);
          await actors.platform(
            PlatformOps.clientsUpdate,
            {
              actor: session.actor,
              id,
              slug: patch["slug"],
              name: patch["name"],
              status: patch["status"],
              settings: patch["settings"],
            },
            req,
          );
          keys.dropClient(id);
          origins?.clear();
          await setClientCredentials(actors, id, session.actor, patch, req);
        } catch (err) {
          return refused(c, err, client);
        }
        return redirect(`/admin/clients/${id}?saved=1`, c.htmx);
      },
    }),
    consoleRoute(deps, {
      method: "POST",
      path: "/admin/clients/{id}/delete",
      operationId: "adminClientDelete",
      summary: "Deletes a client once its slug is typed to confirm",
      handler: async (c) => {
        const { req, form, session, viewer } = c;
        const id = clientIdParam(req);
        const { client, apiKeys } = await load(id, req);
        if (form.get("confirm_slug") !== client.slug) {
          return html(
            422,
            ClientDetailPage({
              viewer,
              client,
              apiKeys,
              notice: "Not deleted: type the client's slug to confirm.",
            }),
          );
        }
        await actors.platform(PlatformOps.clientsDelete, { actor: session.actor, id }, req);
        keys.dropClient(id);
        return redirect("/admin/clients", c.htmx);
      },
    }),
  ];
}
