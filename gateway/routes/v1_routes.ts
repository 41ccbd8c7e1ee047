/**
 * The legacy v1 client and agent routes of SEED_CONTRACT.md ("Other v1 routes"): the same data
 * as v2, in the old service's shapes. Admins reach every tenant; an API key reaches its own
 * tenant's agent routes (another tenant's `client_id` answers 403). A query that fails its
 * schema answers 422, as legacy clients expect.
 */
import { agentView, PlatformOps, TenantOps } from "../../actors/index.ts";
import type { AgentRecord, ClientDetailView, ClientsListReply } from "../../actors/index.ts";
import type { Principal } from "../auth/authenticator.ts";
import { errorResponse } from "../error_status.ts";
import { ValidationError } from "../errors.ts";
import { json } from "../http_types.ts";
import type { GatewayRequest, GatewayResponse, RouteDefinition } from "../http_types.ts";
import type { ApiRouteDeps } from "./route_helpers.ts";
import { agentSlugParam, clientIdParam } from "./route_helpers.ts";
import {
  AGENT_SCHEMA,
  AGENT_SLUG_PATTERN_TEXT,
  CLIENT_DETAIL_SCHEMA,
  CLIENT_SCHEMA,
  UUID_PATTERN,
  V1_CLIENT_QUERY,
} from "./schemas.ts";

const TAGS = ["v1"] as const;
const V1_LIST_PAGE = 1000;

export function v1Routes(deps: ApiRouteDeps): RouteDefinition[] {
  const { auth, actors } = deps;

  /**
   * The tenant of a v1 agent request: `client_id` when given (an API key must own it), else the
   * API key's client; an admin must name one (422).
   */
  const tenantOf = async (
    req: GatewayRequest,
  ): Promise<{ clientId: string; principal: Principal } | GatewayResponse> => {
    const given = req.query["client_id"];
    if (given !== undefined) {
      const clientId = given.toLowerCase();
      return { clientId, principal: await auth.tenant(req, clientId) };
    }
    const principal = await auth.authenticate(req);
    if (principal.type === "api_key") return { clientId: principal.clientId, principal };
    return errorResponse(
      new ValidationError("client_id is required", {
        details: { location: "query", issues: [{ path: "/client_id", message: "is required" }] },
      }),
      422,
    );
  };
  const isResponse = (v: unknown): v is GatewayResponse =>
    typeof v === "object" && v !== null && "status" in v && "body" in v;

  const listAgents = async (req: GatewayRequest) => {
    const tenant = await tenantOf(req);
    if (isResponse(tenant)) return tenant;
    const agents = await actors.tenant<AgentRecord[]>(tenant.clientId, TenantOps.listAgents, {}, req);
    return { clientId: tenant.clientId, agents };
  };

  return [
    {
      method: "GET",
      path: "/api/v1/clients",
      operationId: "v1ListClients",
      summary: "Every client (legacy): an array",
      tags: TAGS,
      validationStatus: 422,
      responses: { 200: { description: "The clients", schema: { type: "array", items: CLIENT_SCHEMA } } },
      handler: async (req) => {
        await auth.admin(req);
        const page = await actors.platform<ClientsListReply>(
          PlatformOps.clientsList,
          { limit: V1_LIST_PAGE, offset: 0 },
          req,
        );
        return json(200, page.clients);
      },
    },
    {
      method: "GET",
      path: "/api/v1/clients/{id}",
      operationId: "v1GetClient",
      summary: "One client (legacy), credentials masked",
      tags: TAGS,
      validationStatus: 422,
      schema: { params: { type: "object", properties: { id: { type: "string", pattern: UUID_PATTERN } } } },
      responses: { 200: { description: "The client", schema: CLIENT_DETAIL_SCHEMA } },
      handler: async (req) => {
        await auth.admin(req);
        const id = clientIdParam(req);
        return json(200, await actors.platform<ClientDetailView>(PlatformOps.clientsGet, { id }, req));
      },
    },
    {
      method: "GET",
      path: "/api/v1/agents",
      operationId: "v1ListAgents",
      summary: "The agents of `client_id` (or of the API key's client): an array",
      tags: TAGS,
      validationStatus: 422,
      schema: { query: V1_CLIENT_QUERY },
      responses: { 200: { description: "The agents", schema: { type: "array", items: AGENT_SCHEMA } } },
      handler: async (req) => {
        const listed = await listAgents(req);
        if (isResponse(listed)) return listed;
        return json(200, listed.agents.map(agentView));
      },
    },
    {
      method: "GET",
      path: "/api/v1/agents/{slug}",
      operationId: "v1GetAgent",
      summary: "One agent of `client_id` (or of the API key's client)",
      tags: TAGS,
      validationStatus: 422,
      schema: {
        query: V1_CLIENT_QUERY,
        params: {
          type: "object",
          properties: { slug: { type: "string", pattern: AGENT_SLUG_PATTERN_TEXT } },
        },
      },
      responses: { 200: { description: "The agent", schema: AGENT_SCHEMA } },
      handler: async (req) => {
        const tenant = await tenantOf(req);
        if (isResponse(tenant)) return tenant;
        const slug = agentSlugParam(req);
        const agent = await actors.tenant<AgentRecord>(tenant.clientId, TenantOps.getAgent, { slug }, req);
        return json(200, agentView(agent));
      },
    },
    {
      method: "POST",
      path: "/api/v1/agents/sync",
      operationId: "v1SyncAgents",
      summary: "Reads the client's agents from its tenant database again and lists them",
      tags: TAGS,
      validationStatus: 422,
      schema: { query: V1_CLIENT_QUERY },
      responses: {
        200: {
          description: "The synced agents",
          schema: {
            type: "object",
            required: ["success", "message", "agent_count", "agents"],
            properties: {
              success: { const: true },
              message: { type: "string" },
              agent_count: { type: "integer" },
              agents: {
                type: "array",
                items: {
                  type: "object",
                  required: ["slug", "name"],
                  properties: { slug: { type: "string" }, name: { type: "string" } },
                },
              },
            },
          },
        },
      },
      handler: async (req) => {
        const listed = await listAgents(req);
        if (isResponse(listed)) return listed;
        const agents = listed.agents.map((a) => ({ slug: a.slug, name: a.name }));
        return json(200, {
          success: true,
          message: `Synced ${agents.length} agent${agents.length === 1 ? "" : "s"}`,
          agent_count: agents.length,
          agents,
        });
      },
    },
    {
      method: "GET",
      path: "/api/v1/me",
      operationId: "v1Me",
      summary: "Who the credentials belong to: an admin, or an API key and its client",
      tags: TAGS,
      validationStatus: 422,
      responses: {
        200: {
          description: "The caller",
          schema: {
            type: "object",
            required: ["authenticated", "type"],
            properties: {
              authenticated: { const: true },
              type: { enum: ["admin", "api_key"] },
              client: CLIENT_SCHEMA,
            },
          },
        },
      },
      handler: async (req) => {
        const principal = await auth.authenticate(req);
        if (principal.type === "admin") {
          return json(200, {
            authenticated: true,
            type: "admin",
            via: principal.via,
            actor: principal.actor,
          });
        }
        const detail = await actors.platform<ClientDetailView>(
          PlatformOps.clientsGet,
          { id: principal.clientId },
          req,
        );
        const { credentials: _credentials, ...client } = detail;
        return json(200, {
          authenticated: true,
          type: "api_key",
          key_id: principal.keyId,
          scopes: principal.scopes,
          client_id: principal.clientId,
          client,
        });
      },
    },
  ];
}
