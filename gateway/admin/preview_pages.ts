/**
 * The agent preview: `GET /admin/clients/{id}/agents/{slug}/preview` (the page), and the two
 * calls admin.js makes from it with the session's CSRF token in `X-CSRF-Token`:
 *
 * - `POST …/preview/text` (form: `message`, `conversation_id`): one text turn answered as
 *   Server-Sent Events, exactly as `/api/embed/text/stream` streams it (routes/text_stream.ts),
 *   plus the turn's timings in the `done` event;
 * - `POST …/preview/voice` (form: `conversation_id`): a voice session dispatched like a voice
 *   trigger-agent, answered with `{ server_url, user_token, room_name, … }` for livekit-client.
 *
 * Both go through the trigger path of the API (chat/trigger_service.ts) with the body the v2
 * trigger takes, checked by its schema, for the client of the URL; the caller is the logged-in
 * admin (the tenant's rate limit applies), and the conversation's user is the admin's identity.
 * The page's CSP lets the script reach the tenant's LiveKit server, and nothing else outside.
 */
import { randomUUID } from "node:crypto";
import { PlatformOps, TenantOps } from "../../actors/index.ts";
import type { AgentRecord, ClientDetailView } from "../../actors/index.ts";
import type { TenantCaller } from "../chat/trigger_service.ts";
import { pickSession } from "../chat/trigger_service.ts";
import { json } from "../http_types.ts";
import type { GatewayRequest, RouteDefinition } from "../http_types.ts";
import { agentSlugParam, clientIdParam } from "../routes/route_helpers.ts";
import { textTurnStream } from "../routes/text_stream.ts";
import { EMBED_STREAM_BODY, V2_TRIGGER_BODY } from "../routes/trigger_routes.ts";
import { assertMatches } from "../validation.ts";
import { consoleRoute } from "./console.ts";
import type { ConsoleDeps, ConsoleRequest } from "./console.ts";
import { html, securityHeaders } from "./html.ts";
import { PreviewPage } from "./views/preview.tsx";

/** What a fetch answer from the console carries besides the CSP of console pages. */
const API_HEADERS = { ...securityHeaders(), "cache-control": "no-store" };

/**
 * The CSP `connect-src` sources for a LiveKit origin: its WebSocket origin, and the HTTP(S) one
 * livekit-client also calls (region settings, connection checks).
 */
export function livekitConnectSources(origin: string | null): string[] {
  if (origin === null) return [];
  const http = origin.replace(/^wss:/, "https:").replace(/^ws:/, "http:");
  return [origin, http];
}

/** The admin as the trigger path's caller for the client of the URL. */
function adminCaller(c: ConsoleRequest, tenant: string): TenantCaller {
  return {
    tenant,
    principal: { type: "admin", via: c.session.via === "token" ? "token" : "jwt", actor: c.session.actor },
  };
}

/** The conversation a form continues: absent or blank starts a new one. */
function conversationOf(c: ConsoleRequest): string | undefined {
  return c.form.get("conversation_id");
}

export function previewPages(deps: ConsoleDeps): RouteDefinition[] {
  const { actors, triggers } = deps;

  const load = async (req: GatewayRequest) => {
    const id = clientIdParam(req);
    const slug = agentSlugParam(req);
    const [client, agent] = await Promise.all([
      actors.platform<ClientDetailView>(PlatformOps.clientsGet, { id }, req),
      actors.tenant<AgentRecord>(id, TenantOps.getAgent, { slug }, req),
    ]);
    return { client, agent };
  };

  return [
    consoleRoute(deps, {
      method: "GET",
      path: "/admin/clients/{id}/agents/{slug}/preview",
      operationId: "adminAgentPreview",
      summary: "Chat with an agent (streamed text) and call it (LiveKit) from the browser",
      handler: async ({ req, viewer }) => {
        const { client, agent } = await load(req);
        const lk = client.credentials.livekit;
        const origin = lk.configured ? lk.origin : null;
        return html(
          200,
          PreviewPage({
            viewer,
            client: { id: client.id, name: client.name, status: client.status },
            agent: {
              slug: agent.slug,
              name: agent.name,
              enabled: agent.enabled,
              textEnabled: agent.textChatEnabled,
              voiceEnabled: agent.voiceChatEnabled,
            },
            livekitOrigin: origin,
          }),
          { connect: livekitConnectSources(origin) },
        );
      },
    }),
    consoleRoute(deps, {
      method: "POST",
      path: "/admin/clients/{id}/agents/{slug}/preview/text",
      operationId: "adminAgentPreviewText",
      summary: "One text turn with the agent, streamed as Server-Sent Events (the embed stream's events)",
      handler: async (c) => {
        const { req } = c;
        const tenant = clientIdParam(req);
        const conversationId = conversationOf(c);
        const body = {
          client_id: tenant,
          agent_slug: agentSlugParam(req),
          user_id: c.session.actor,
          message: c.form.get("message") ?? "",
          ...(conversationId === undefined ? {} : { conversation_id: conversationId }),
        };
        assertMatches(EMBED_STREAM_BODY, body);
        await triggers.limit(adminCaller(c, tenant));
        const { client_id: _client, ...actorBody } = body;
        return textTurnStream(
          triggers,
          {
            tenant,
            ...pickSession(undefined),
            jobId: randomUUID(),
            body: actorBody,
            traceId: req.id,
          },
          {
            doneExtra: (turn) => ({ job_id: turn.reply.job_id, timings: turn.timings }),
            headers: API_HEADERS,
          },
        );
      },
    }),
    consoleRoute(deps, {
      method: "POST",
      path: "/admin/clients/{id}/agents/{slug}/preview/voice",
      operationId: "adminAgentPreviewVoice",
      summary: "Dispatches a voice session with the agent; answers the room, server URL and user token",
      handler: async (c) => {
        const { req } = c;
        const tenant = clientIdParam(req);
        const conversationId = conversationOf(c);
        const slug = agentSlugParam(req);
        const body = {
          client_id: tenant,
          agent_slug: slug,
          mode: "voice",
          user_id: c.session.actor,
          room_name: `preview-${slug}-${randomUUID().slice(0, 8)}`.slice(0, 128),
          ...(conversationId === undefined ? {} : { conversation_id: conversationId }),
        };
        assertMatches(V2_TRIGGER_BODY, body);
        await triggers.limit(adminCaller(c, tenant));
        const { client_id: _client, mode: _mode, ...actorBody } = body;
        const { reply, voice } = await triggers.voice(tenant, actorBody, randomUUID(), req);
        return json(
          200,
          {
            job_id: reply.job_id,
            conversation_id: reply.conversation_id,
            room_name: voice.room_name,
            room_status: voice.room_status,
            server_url: voice.server_url,
            user_token: voice.user_token,
            worker_id: reply.worker_id,
            agent: { slug: reply.agent.slug, name: reply.agent.name },
            timings: { claim_ms: reply.claim_ms },
          },
          API_HEADERS,
        );
      },
    }),
  ];
}
