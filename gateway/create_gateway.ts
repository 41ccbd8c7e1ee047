/** Builds the gateway app with its routes from a NATS connection and the parsed configuration. */
import type { NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "pino";
import { createSubjects } from "../bus/index.ts";
import { ActorClient } from "./actor_client.ts";
import { adminRoutes } from "./admin/admin_routes.ts";
import { AdminSessions } from "./admin/sessions.ts";
import { ChatInbox } from "./chat/chat_inbox.ts";
import { TriggerService } from "./chat/trigger_service.ts";
import { ApiKeyVerifier } from "./auth/api_key_verifier.ts";
import { Authenticator } from "./auth/authenticator.ts";
import type { GatewayConfig } from "./config.ts";
import { parseCorsOptions } from "./cors.ts";
import { ListedOrigins } from "./cors_listed_origins.ts";
import { GatewayApp } from "./gateway_app.ts";
import type { HealthTimeouts } from "./health_checks.ts";
import { json } from "./http_types.ts";
import type { RouteDefinition } from "./http_types.ts";
import { createGatewayMetrics } from "./metrics.ts";
import { RateLimiter } from "./rate_limit.ts";
import { triggerRoutes } from "./routes/trigger_routes.ts";
import type { ApiRouteDeps } from "./routes/route_helpers.ts";
import { v1Routes } from "./routes/v1_routes.ts";
import { v2ClientRoutes } from "./routes/v2_clients.ts";
import { v2TenantRoutes } from "./routes/v2_tenant.ts";
import { v2DocumentRoutes } from "./routes/v2_documents.ts";
import { v2ProviderKeyRoutes } from "./routes/v2_provider_keys.ts";
import { systemRoutes } from "./system_routes.ts";
import { WsChat } from "./ws_chat.ts";

export const GATEWAY_VERSION = "0.1.0";

export interface CreateGatewayOptions {
  nc: NatsConnection;
  config: Pick<
    GatewayConfig,
    | "subjectPrefix"
    | "partitions"
    | "maxBodyBytes"
    | "maxUploadBytes"
    | "corsOrigins"
    | "corsCacheMs"
    | "requestTimeoutMs"
    | "triggerTimeoutMs"
    | "triggerAttemptMs"
    | "replyTimeoutMs"
    | "rateLimit"
    | "ws"
    | "auth"
    | "admin"
    | "streamReplicas"
  >;
  log: Logger;
  healthTimeouts?: Partial<HealthTimeouts>;
  /** The API key verifier (its cache is evicted by client events when the caller watches them). */
  apiKeys?: ApiKeyVerifier;
  /** Origins tenants list, for preflights (its cache is dropped by client events when the caller watches them). */
  listedOrigins?: ListedOrigins;
}

/** The HTTP app and the `/ws` chat handler the uWS shell serves next to it. */
export interface Gateway {
  app: GatewayApp;
  ws: WsChat;
}

export function createGateway(options: CreateGatewayOptions): GatewayApp {
  return createGatewayWithWs(options).app;
}

export function createGatewayWithWs(options: CreateGatewayOptions): Gateway {
  const { config, nc } = options;
  const subjects = createSubjects({ prefix: config.subjectPrefix, partitions: config.partitions });
  const metrics = createGatewayMetrics();
  const keys =
    options.apiKeys ??
    new ApiKeyVerifier({
      nc,
      subjects,
      cacheMs: config.auth.apiKeyCacheMs,
      timeoutMs: config.requestTimeoutMs,
    });
  const cors = { origins: config.corsOrigins };
  const listedOrigins =
    options.listedOrigins ??
    new ListedOrigins({ nc, subjects, cacheMs: config.corsCacheMs, timeoutMs: config.requestTimeoutMs });
  const auth = new Authenticator(config.auth, keys, parseCorsOptions(cors));
  const api: ApiRouteDeps = {
    auth,
    actors: new ActorClient({ nc, subjects, timeoutMs: config.requestTimeoutMs }),
    keys,
    origins: listedOrigins,
  };
  const triggers = new TriggerService({
    auth,
    actors: api.actors,
    bus: {
      nc,
      subjects,
      triggerTimeoutMs: config.triggerTimeoutMs,
      triggerAttemptMs: config.triggerAttemptMs,
      replyTimeoutMs: config.replyTimeoutMs,
      // One subscription for the frames of every session this gateway makes up (chat/chat_inbox.ts).
      inbox: new ChatInbox({ nc, subjects }),
    },
    limiter: new RateLimiter({
      nc,
      bucket: config.rateLimit.kvBucket,
      perMinuteKey: config.rateLimit.perMinuteKey,
      perMinuteTenant: config.rateLimit.perMinuteTenant,
      replicas: config.streamReplicas,
      // A bucket store that does not answer (NATS restarting) is waited for as long as a request.
      waitMs: config.requestTimeoutMs,
    }),
  });
  const maxUploadBytes = uploadLimit(config.maxUploadBytes, nc.info?.max_payload);
  let all: readonly RouteDefinition[] = [];
  const routes = [
    ...systemRoutes({
      health: {
        nc,
        subjects,
        ...(options.healthTimeouts === undefined ? {} : { timeouts: options.healthTimeouts }),
      },
      metrics,
      version: GATEWAY_VERSION,
      routes: () => all,
    }),
    ...v2ClientRoutes(api),
    ...v2TenantRoutes(api),
    ...v2ProviderKeyRoutes(api),
    ...v2DocumentRoutes(api, { maxUploadBytes }),
    ...v1Routes(api),
    ...triggerRoutes(triggers),
    wsRouteDocumentation(),
    ...adminRoutes({
      ...api,
      config: config.admin,
      health: {
        nc,
        subjects,
        metrics,
        ...(options.healthTimeouts === undefined ? {} : { timeouts: options.healthTimeouts }),
      },
      triggers,
      maxUploadBytes,
      sessions: new AdminSessions({
        nc,
        bucket: config.admin.sessionBucket,
        idleTimeoutMs: config.admin.idleTimeoutMs,
        maxSessionMs: config.admin.maxSessionMs,
        replicas: config.streamReplicas,
      }),
    }),
  ];
  const app = new GatewayApp({
    routes,
    log: options.log,
    maxBodyBytes: config.maxBodyBytes,
    cors,
    tenantOrigins: listedOrigins,
    metrics,
  });
  all = app.router.routes();
  const ws = new WsChat({ auth, triggers, metrics, config: config.ws, log: options.log });
  return { app, ws };
}

/**
 * `GET /ws` is served by the uWS shell's WebSocket route (an upgrade never reaches the HTTP
 * pipeline); this entry documents it in /openapi.json, and answers a plain GET with 426.
 */
function wsRouteDocumentation(): RouteDefinition {
  return {
    method: "GET",
    path: "/ws",
    operationId: "wsChat",
    summary:
      "WebSocket text chat (upgrade; API key in Authorization/X-API-Key or ?token=): send " +
      "{type:'message', agent_slug, text, conversation_id?, user_id?, request_id?, idempotency_key?}, " +
      "receive {type:'claimed'}, {type:'token'} frames and a final {type:'message'} or " +
      "{type:'error', code, message}. idempotency_key (1-200 of A-Za-z0-9._:-, as the HTTP " +
      "Idempotency-Key) names the job: the same message re-sent with it, on this or a new socket, gets " +
      "the first job's reply (one token and the final message), never a second turn; with another " +
      "text it is answered SF_ERR_IDEMPOTENCY_KEY_REUSED. The key needs scope agents:trigger " +
      "(or no scopes); a browser's Origin must be in the global CORS list or the key's tenant's " +
      "settings.cors_origins. Close codes: 4401 unauthenticated, 4403 forbidden (scope or origin), " +
      "1008 policy (slow reader), 1009 message too big.",
    tags: ["websocket"],
    responses: {
      101: { description: "Switching protocols" },
      426: { description: "Upgrade required: this path only speaks WebSocket" },
    },
    handler: () =>
      Promise.resolve(
        json(
          426,
          {
            error: {
              code: "SF_ERR_UPGRADE_REQUIRED",
              message: "this path speaks WebSocket only",
              details: {},
            },
          },
          { upgrade: "websocket" },
        ),
      ),
  };
}

/**
 * An upload travels to the tenant actor and on to SF_INGEST in one NATS message: it must stay
 * below the server's max_payload, with room for the envelope and the other form fields.
 */
function uploadLimit(configured: number, maxPayload: number | undefined): number {
  if (maxPayload === undefined || maxPayload <= 0) return configured;
  return Math.max(1, Math.min(configured, maxPayload - 128 * 1024));
}
