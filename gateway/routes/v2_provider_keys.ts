/**
 * v2 provider keys (admin only): the tenant's API keys for its LLM, STT, TTS and embedding
 * providers, stored sealed in the tenant's database. Write-only: reads say which providers have
 * a key and when it changed, never the key. A new key is used by the next job.
 */
import { ProviderKeyOps } from "../../actors/index.ts";
import type { ProviderKeyView } from "../../actors/index.ts";
import { json } from "../http_types.ts";
import type { RouteDefinition } from "../http_types.ts";
import type { ApiRouteDeps } from "./route_helpers.ts";
import { clientIdParam } from "./route_helpers.ts";
import { PROVIDER_KEY_BODY, PROVIDER_NAME_SCHEMA, UUID_PATTERN } from "./schemas.ts";

const TAGS = ["v2", "provider-keys"] as const;
const PARAMS = {
  type: "object",
  properties: { id: { type: "string", pattern: UUID_PATTERN }, provider: PROVIDER_NAME_SCHEMA },
};
const VIEW = {
  type: "object",
  required: ["provider", "configured", "updated_at"],
  properties: {
    provider: { type: "string" },
    configured: { type: "boolean" },
    updated_at: { type: "string" },
  },
};

export function v2ProviderKeyRoutes(deps: ApiRouteDeps): RouteDefinition[] {
  const { auth, actors } = deps;
  return [
    {
      method: "GET",
      path: "/api/v2/clients/{id}/provider-keys",
      operationId: "v2ListProviderKeys",
      summary: "Which providers the client has a key for (never the keys)",
      tags: TAGS,
      schema: { params: { type: "object", properties: { id: { type: "string", pattern: UUID_PATTERN } } } },
      responses: {
        200: {
          description: "Configured provider keys",
          schema: {
            type: "object",
            required: ["provider_keys"],
            properties: { provider_keys: { type: "array", items: VIEW } },
          },
        },
      },
      handler: async (req) => {
        await auth.admin(req);
        return json(200, await actors.tenant(clientIdParam(req), ProviderKeyOps.listProviderKeys, {}, req));
      },
    },
    {
      method: "PUT",
      path: "/api/v2/clients/{id}/provider-keys/{provider}",
      operationId: "v2SetProviderKey",
      summary: "Sets (or replaces) the client's API key for one provider; write-only",
      tags: TAGS,
      schema: {
        params: PARAMS,
        body: PROVIDER_KEY_BODY,
      },
      responses: { 200: { description: "Stored", schema: VIEW } },
      handler: async (req) => {
        const admin = await auth.admin(req);
        const view = await actors.tenant<ProviderKeyView>(
          clientIdParam(req),
          ProviderKeyOps.setProviderKey,
          {
            actor: admin.actor,
            provider: req.params["provider"] ?? "",
            api_key: (req.body as { api_key: string }).api_key,
          },
          req,
        );
        return json(200, view, { "cache-control": "no-store" });
      },
    },
    {
      method: "DELETE",
      path: "/api/v2/clients/{id}/provider-keys/{provider}",
      operationId: "v2DeleteProviderKey",
      summary: "Removes the client's key for one provider (its agents then fail with an error naming it)",
      tags: TAGS,
      schema: { params: PARAMS },
      responses: { 200: { description: "Removed (deleted: false when there was none)" } },
      handler: async (req) => {
        const admin = await auth.admin(req);
        return json(
          200,
          await actors.tenant(
            clientIdParam(req),
            ProviderKeyOps.deleteProviderKey,
            { actor: admin.actor, provider: req.params["provider"] ?? "" },
            req,
          ),
        );
      },
    },
  ];
}
