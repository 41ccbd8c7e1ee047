/**
 * v2 tenant data (admin only): a client's agents and conversations, served by the owner of the
 * tenant from the tenant's own database.
 */
import { AgentOps, agentView, TenantOps } from "../../actors/index.ts";
import type { AgentRecord, ConversationDetail, ConversationRecord } from "../../actors/index.ts";
import { empty, json } from "../http_types.ts";
import type { RouteDefinition } from "../http_types.ts";
import type { ApiRouteDeps } from "./route_helpers.ts";
import { agentSlugParam, clientIdParam, intQuery } from "./route_helpers.ts";
import {
  AGENT_CREATE_BODY,
  AGENT_PATCH_BODY,
  AGENT_SCHEMA,
  AGENT_SLUG_PATTERN_TEXT,
  CONVERSATION_GET_QUERY,
  CONVERSATION_LIST_QUERY,
  CONVERSATION_SCHEMA,
  TRANSCRIPT_SCHEMA,
  UUID_PATTERN,
} from "./schemas.ts";
import { agentFieldsFromBody, conversationView, transcriptView } from "./views.ts";

const AGENT_TAGS = ["v2", "agents"] as const;
const CONVERSATION_TAGS = ["v2", "conversations"] as const;
const ID = { type: "string", pattern: UUID_PATTERN };
const ID_PARAM = { type: "object", properties: { id: ID } };
const AGENT_PARAMS = {
  type: "object",
  properties: { id: ID, slug: { type: "string", pattern: AGENT_SLUG_PATTERN_TEXT } },
};

export function v2TenantRoutes(deps: ApiRouteDeps): RouteDefinition[] {
  const { auth, actors } = deps;
  return [
    {
      method: "GET",
      path: "/api/v2/clients/{id}/agents",
      operationId: "v2ListAgents",
      summary: "The client's agents, from its tenant database",
      tags: AGENT_TAGS,
      schema: { params: ID_PARAM },
      responses: {
        200: {
          description: "The agents",
          schema: {
            type: "object",
            required: ["agents"],
            properties: { agents: { type: "array", items: AGENT_SCHEMA } },
          },
        },
      },
      handler: async (req) => {
        await auth.admin(req);
        const id = clientIdParam(req);
        const agents = await actors.tenant<AgentRecord[]>(id, TenantOps.listAgents, {}, req);
        return json(200, { agents: agents.map(agentView) });
      },
    },
    {
      method: "POST",
      path: "/api/v2/clients/{id}/agents",
      operationId: "v2CreateAgent",
      summary: "Creates an agent in the client's tenant database",
      tags: AGENT_TAGS,
      schema: { params: ID_PARAM, body: AGENT_CREATE_BODY },
      responses: { 201: { description: "The agent", schema: AGENT_SCHEMA } },
      handler: async (req) => {
        const admin = await auth.admin(req);
        const id = clientIdParam(req);
        const agent = await actors.tenant<AgentRecord>(
          id,
          AgentOps.createAgent,
          { actor: admin.actor, agent: agentFieldsFromBody(req.body as Record<string, unknown>) },
          req,
        );
        return json(201, agentView(agent));
      },
    },
    {
      method: "GET",
      path: "/api/v2/clients/{id}/agents/{slug}",
      operationId: "v2GetAgent",
      summary: "One agent of the client",
      tags: AGENT_TAGS,
      schema: { params: AGENT_PARAMS },
      responses: { 200: { description: "The agent", schema: AGENT_SCHEMA } },
      handler: async (req) => {
        await auth.admin(req);
        const id = clientIdParam(req);
        const slug = agentSlugParam(req);
        const agent = await actors.tenant<AgentRecord>(id, TenantOps.getAgent, { slug }, req);
        return json(200, agentView(agent));
      },
    },
    {
      method: "PATCH",
      path: "/api/v2/clients/{id}/agents/{slug}",
      operationId: "v2UpdateAgent",
      summary: "Changes fields of one agent of the client",
      tags: AGENT_TAGS,
      schema: { params: AGENT_PARAMS, body: AGENT_PATCH_BODY },
      responses: { 200: { description: "The agent", schema: AGENT_SCHEMA } },
      handler: async (req) => {
        const admin = await auth.admin(req);
        const id = clientIdParam(req);
        const slug = agentSlugParam(req);
        const agent = await actors.tenant<AgentRecord>(
          id,
          AgentOps.updateAgent,
          { actor: admin.actor, slug, patch: agentFieldsFromBody(req.body as Record<string, unknown>) },
          req,
        );
        return json(200, agentView(agent));
      },
    },
    {
      method: "DELETE",
      path: "/api/v2/clients/{id}/agents/{slug}",
      operationId: "v2DeleteAgent",
      summary: "Deletes one agent of the client",
      tags: AGENT_TAGS,
      schema: { params: AGENT_PARAMS },
      responses: { 204: { description: "Deleted" } },
      handler: async (req) => {
        const admin = await auth.admin(req);
        const id = clientIdParam(req);
        const slug = agentSlugParam(req);
        await actors.tenant(id, AgentOps.deleteAgent, { actor: admin.actor, slug }, req);
        return empty(204);
      },
    },
    {
      method: "GET",
      path: "/api/v2/clients/{id}/conversations",
      operationId: "v2ListConversations",
      summary: "The client's latest conversations, optionally of one agent or one user",
      tags: CONVERSATION_TAGS,
      schema: { params: ID_PARAM, query: CONVERSATION_LIST_QUERY },
      responses: {
        200: {
          description: "Conversations, newest first",
          schema: {
            type: "object",
            required: ["conversations"],
            properties: { conversations: { type: "array", items: CONVERSATION_SCHEMA } },
          },
        },
      },
      handler: async (req) => {
        await auth.admin(req);
        const id = clientIdParam(req);
        const limit = intQuery(req, "limit");
        const conversations = await actors.tenant<ConversationRecord[]>(
          id,
          AgentOps.listConversations,
          {
            ...(req.query["agent_slug"] === undefined ? {} : { agent_slug: req.query["agent_slug"] }),
            ...(req.query["user_id"] === undefined ? {} : { user_id: req.query["user_id"] }),
            ...(limit === undefined ? {} : { limit: Math.max(1, Math.min(limit, 1000)) }),
          },
          req,
        );
        return json(200, { conversations: conversations.map(conversationView) });
      },
    },
    {
      method: "GET",
      path: "/api/v2/clients/{id}/conversations/{conversationId}",
      operationId: "v2GetConversation",
      summary: "One conversation of the client with its transcript rows, in order",
      tags: CONVERSATION_TAGS,
      schema: {
        params: { type: "object", properties: { id: ID, conversationId: ID } },
        query: CONVERSATION_GET_QUERY,
      },
      responses: {
        200: {
          description: "The conversation and its transcripts",
          schema: {
            type: "object",
            required: ["conversation", "transcripts"],
            properties: {
              conversation: CONVERSATION_SCHEMA,
              transcripts: { type: "array", items: TRANSCRIPT_SCHEMA },
            },
          },
        },
      },
      handler: async (req) => {
        await auth.admin(req);
        const id = clientIdParam(req);
        const limit = intQuery(req, "transcript_limit");
        const detail = await actors.tenant<ConversationDetail>(
          id,
          AgentOps.getConversation,
          {
            id: req.params["conversationId"] ?? "",
            ...(limit === undefined ? {} : { transcript_limit: Math.max(1, Math.min(limit, 1000)) }),
          },
          req,
        );
        return json(200, {
          conversation: conversationView(detail.conversation),
          transcripts: detail.transcripts.map(transcriptView),
        });
      },
    },
  ];
}
