/**
 * v2 client administration (admin only): clients, their write-only credentials and API keys.
 * Credentials are accepted in create/PATCH bodies and only ever shown masked.
 */
import { NotFoundError, PlatformOps } from "../../actors/index.ts";
import type {
  ApiKeysCreateReply,
  ApiKeysListReply,
  ApiKeyView,
  ClientDetailView,
  ClientsListReply,
} from "../../actors/index.ts";
import { empty, json } from "../http_types.ts";
import type { GatewayRequest, RouteDefinition } from "../http_types.ts";
import type { ApiRouteDeps } from "./route_helpers.ts";
import { clientIdParam, intQuery, setClientCredentials } from "./route_helpers.ts";
import {
  API_KEY_CREATE_BODY,
  API_KEY_SCHEMA,
  CLIENT_CREATE_BODY,
  CLIENT_DETAIL_SCHEMA,
  CLIENT_LIST_QUERY,
  CLIENT_PATCH_BODY,
  CLIENT_SCHEMA,
  UUID_PATTERN,
  UUID_RE,
} from "./schemas.ts";

const TAGS = ["v2", "clients"] as const;
const ID_PARAM = { type: "object", properties: { id: { type: "string", pattern: UUID_PATTERN } } };

type Body = Readonly<Record<string, unknown>>;

export function v2ClientRoutes(deps: ApiRouteDeps): RouteDefinition[] {
  const { auth, actors, keys, origins } = deps;

  const detailWithKeys = async (id: string, req: GatewayRequest) => {
    const [detail, apiKeys] = await Promise.all([
      actors.platform<ClientDetailView>(PlatformOps.clientsGet, { id }, req),
      actors.platform<ApiKeysListReply>(PlatformOps.apiKeysList, { client_id: id }, req),
    ]);
    return { ...detail, api_keys: apiKeys.api_keys };
  };

  const setCredentials = (id: string, actor: string, body: Body, req: GatewayRequest) =>
    setClientCredentials(actors, id, actor, body, req);

  return [
    {
      method: "GET",
      path: "/api/v2/clients",
      operationId: "v2ListClients",
      summary: "Lists clients, searched by slug or name (`q`), paged by limit and offset",
      tags: TAGS,
      schema: { query: CLIENT_LIST_QUERY },
      responses: {
        200: {
          description: "A page of clients",
          schema: {
            type: "object",
            required: ["clients", "limit", "offset"],
            properties: {
              clients: { type: "array", items: CLIENT_SCHEMA },
              limit: { type: "integer" },
              offset: { type: "integer" },
            },
          },
        },
      },
      handler: async (req) => {
        await auth.admin(req);
        const limit = intQuery(req, "limit");
        const offset = intQuery(req, "offset");
        const page = await actors.platform<ClientsListReply>(
          PlatformOps.clientsList,
          {
            ...(req.query["q"] === undefined ? {} : { search: req.query["q"] }),
            ...(req.query["status"] === undefined ? {} : { status: req.query["status"] }),
            ...(limit === undefined ? {} : { limit: Math.max(1, Math.min(limit, 1000)) }),
            ...(offset === undefined ? {} : { offset }),
          },
          req,
        );
        return json(200, page);
      },
    },
    {
      method: "POST",
      path: "/api/v2/clients",
      operationId: "v2CreateClient",
      summary: "Creates a client; `tenant_database` and `livekit` credentials may be given (write-only)",
      tags: TAGS,
      schema: { body: CLIENT_CREATE_BODY },
      responses: { 201: { description: "The client, credentials masked", schema: CLIENT_DETAIL_SCHEMA } },
      handler: async (req) => {
        const admin = await auth.admin(req);
        const body = req.body as Body;
        const created = await actors.platform<ClientDetailView>(
          PlatformOps.clientsCreate,
          {
            actor: admin.actor,
            slug: body["slug"],
            name: body["name"],
            ...(body["status"] === undefined ? {} : { status: body["status"] }),
            ...(body["id"] === undefined ? {} : { id: body["id"] }),
            ...(body["settings"] === undefined ? {} : { settings: body["settings"] }),
          },
          req,
        );
        await setCredentials(created.id, admin.actor, body, req);
        if (body["settings"] !== undefined) origins?.clear();
        return json(201, await detailWithKeys(created.id, req));
      },
    },
    {
      method: "GET",
      path: "/api/v2/clients/{id}",
      operationId: "v2GetClient",
      summary: "One client with its masked credentials and its API keys (never the keys themselves)",
      tags: TAGS,
      schema: { params: ID_PARAM },
      responses: { 200: { description: "The client", schema: CLIENT_DETAIL_SCHEMA } },
      handler: async (req) => {
        await auth.admin(req);
        return json(200, await detailWithKeys(clientIdParam(req), req));
      },
    },
    {
      method: "PATCH",
      path: "/api/v2/clients/{id}",
      operationId: "v2UpdateClient",
      summary: "Changes a client's slug, name, status and/or credentials (`null` removes a credential)",
      tags: TAGS,
      schema: { params: ID_PARAM, body: CLIENT_PATCH_BODY },
      responses: { 200: { description: "The client, credentials masked", schema: CLIENT_DETAIL_SCHEMA } },
      handler: async (req) => {
        const admin = await auth.admin(req);
        const id = clientIdParam(req);
        const body = req.body as Body;
        const fields = ["slug", "name", "status", "settings"].filter((f) => body[f] !== undefined);
        if (fields.length > 0) {
          await actors.platform(
            PlatformOps.clientsUpdate,
            { actor: admin.actor, id, ...Object.fromEntries(fields.map((f) => [f, body[f]])) },
            req,
          );
        }
        if (body["settings"] !== undefined) {
          // Its CORS origins may have changed: this gateway sees it at once, others on the event.
          keys.dropClient(id);
          origins?.clear();
        }
        await setCredentials(id, admin.actor, body, req);
        return json(200, await detailWithKeys(id, req));
      },
    },
    {
      method: "DELETE",
      path: "/api/v2/clients/{id}",
      operationId: "v2DeleteClient",
      summary: "Deletes a client with its credentials and API keys (its tenant database is left untouched)",
      tags: TAGS,
      schema: { params: ID_PARAM },
      responses: { 204: { description: "Deleted" } },
      handler: async (req) => {
        const admin = await auth.admin(req);
        const id = clientIdParam(req);
        await actors.platform(PlatformOps.clientsDelete, { actor: admin.actor, id }, req);
        keys.dropClient(id);
        return empty(204);
      },
    },
    {
      method: "POST",
      path: "/api/v2/clients/{id}/api-keys",
      operationId: "v2CreateApiKey",
      summary: "Issues an API key for the client: the key is in this answer only",
      tags: TAGS,
      schema: { params: ID_PARAM, body: API_KEY_CREATE_BODY },
      responses: {
        201: {
          description: "The key's record and, this once, the key",
          schema: {
            type: "object",
            required: ["api_key", "key"],
            properties: { api_key: API_KEY_SCHEMA, key: { type: "string" } },
          },
        },
      },
      handler: async (req) => {
        const admin = await auth.admin(req);
        const id = clientIdParam(req);
        const body = (req.body ?? {}) as Body;
        const created = await actors.platform<ApiKeysCreateReply>(
          PlatformOps.apiKeysCreate,
          { actor: admin.actor, client_id: id, ...body },
          req,
        );
        return json(201, created, { "cache-control": "no-store" });
      },
    },
    {
      method: "DELETE",
      path: "/api/v2/clients/{id}/api-keys/{keyId}",
      operationId: "v2RevokeApiKey",
      summary: "Revokes one of the client's API keys; it is refused from then on",
      tags: TAGS,
      schema: {
        params: {
          type: "object",
          properties: {
            id: { type: "string", pattern: UUID_PATTERN },
            keyId: { type: "string", pattern: UUID_PATTERN },
          },
        },
      },
      responses: {
        200: {
          description: "The revoked key's record",
          schema: { type: "object", required: ["api_key"], properties: { api_key: API_KEY_SCHEMA } },
        },
      },
      handler: async (req) => {
        const admin = await auth.admin(req);
        const id = clientIdParam(req);
        const keyId = req.params["keyId"] ?? "";
        if (!UUID_RE.test(keyId)) throw new NotFoundError("api key not found", { details: { keyId } });
        const revoked = await actors.platform<ApiKeyView>(
          PlatformOps.apiKeysRevoke,
          { actor: admin.actor, client_id: id, key_id: keyId },
          req,
        );
        keys.dropClient(id);
        return json(200, { api_key: revoked });
      },
    },
  ];
}
