export { parseGatewayConfig } from "./config.ts";
export type { GatewayConfig } from "./config.ts";
export { createGateway, createGatewayWithWs, GATEWAY_VERSION } from "./create_gateway.ts";
export type { CreateGatewayOptions, Gateway } from "./create_gateway.ts";
export {
  triggerRoutes,
  V1_TRIGGER_BODY,
  V2_TRIGGER_BODY,
  EMBED_STREAM_BODY,
} from "./routes/trigger_routes.ts";
export {
  TriggerService,
  idempotencyKey,
  pickJobId,
  pickSession,
  pickSessionId,
} from "./chat/trigger_service.ts";
export type { TriggerServiceDeps, TenantCaller } from "./chat/trigger_service.ts";
export { runTextTurn, isChatFrame } from "./chat/text_turn.ts";
export { ChatInbox, readChatFrame } from "./chat/chat_inbox.ts";
export type { ChatInboxOptions, ChatListener } from "./chat/chat_inbox.ts";
export type { ChatBus, TextTurnRequest, TextTurnResult } from "./chat/text_turn.ts";
export { RateLimiter, RateLimitErrorCodes } from "./rate_limit.ts";
export type { RateLimiterOptions } from "./rate_limit.ts";
export { WsChat, WsCloseCodes } from "./ws_chat.ts";
export type { WsChatHandler, WsChatOptions, WsAdmission, ChatSocket } from "./ws_chat.ts";
export { GatewayApp } from "./gateway_app.ts";
export {
  parseUrl,
  pickRequestId,
  decodeParams,
  parseJsonBody,
  parseClientJson,
  MAX_JSON_DEPTH,
} from "./request_parsing.ts";
export type { GatewayAppOptions, InjectRequest, InjectResponse } from "./gateway_app.ts";
export { startUwsServer } from "./uws_server.ts";
export { LoopBatch } from "./loop_batch.ts";
export { RequestAbort } from "./request_abort.ts";
export type { UwsServer, UwsServerOptions, StopResult } from "./uws_server.ts";
export { Router } from "./router.ts";
export type { RouteMatch } from "./router.ts";
export { HTTP_METHODS, isHttpMethod, json, text, empty, stream } from "./http_types.ts";
export type {
  HttpMethod,
  RawRequest,
  GatewayRequest,
  GatewayResponse,
  ResponseBody,
  SerializedResponse,
  StreamBody,
  StreamSink,
  Handler,
  ResponseSpec,
  RouteSchema,
  RouteDefinition,
  RouteCors,
  RequestCaller,
  RequestContext,
} from "./http_types.ts";
export {
  GatewayErrorCodes,
  BadJsonError,
  PayloadTooLargeError,
  NotFoundError,
  MethodNotAllowedError,
  ValidationError,
  UnsupportedMediaTypeError,
  BadRequestError,
  CorsOriginDeniedError,
  ShuttingDownError,
  MissingFieldError,
  ModeNotSupportedError,
  ReplyTimeoutError,
  RateLimitedError,
  ClientGoneError,
} from "./errors.ts";
export type { GatewayErrorCode } from "./errors.ts";
export { ERROR_STATUS, statusForCode, errorResponse, publicError } from "./error_status.ts";
export type { StatusRule, ErrorEnvelope } from "./error_status.ts";
export {
  parseCorsOptions,
  isOriginAllowed,
  isOriginAllowedForTenant,
  corsAllowHeaders,
  corsResponseHeaders,
  preflightHeaders,
  DEFAULT_CORS_ALLOW_HEADERS,
} from "./cors.ts";
export type { CorsOptions, CorsPolicy } from "./cors.ts";
export { ListedOrigins } from "./cors_listed_origins.ts";
export type { ListedOriginsOptions, TenantOriginIndex } from "./cors_listed_origins.ts";
export { createGatewayMetrics, methodLabel, UNMATCHED_ROUTE } from "./metrics.ts";
export type { GatewayMetrics } from "./metrics.ts";
export { RequestMetrics } from "./request_metrics.ts";
export type { Sample } from "./request_metrics.ts";
export { buildOpenApiDocument, ERROR_ENVELOPE_SCHEMA } from "./openapi.ts";
export type { OpenApiDocument, OpenApiInfo } from "./openapi.ts";
export {
  detailedHealth,
  checkNats,
  checkJetStream,
  checkActorHosts,
  checkWorkers,
  checkPlatformDb,
  DEFAULT_HEALTH_TIMEOUTS,
  ACTOR_HOST_SERVICE,
} from "./health_checks.ts";
export type {
  HealthDeps,
  HealthTimeouts,
  DetailedHealth,
  NatsCheck,
  JetStreamCheck,
  ActorHostsCheck,
  ActorHostInfo,
  WorkersCheck,
  PlatformDbCheck,
} from "./health_checks.ts";
export { systemRoutes, SERVICE_NAME } from "./system_routes.ts";
export type { SystemRouteDeps } from "./system_routes.ts";
export { createValidatorCompiler, assertValid } from "./validation.ts";
export type { RouteValidators, ValidationIssue } from "./validation.ts";
export { SecretValue } from "./config.ts";
export type { GatewayAuthConfig, GatewayRateLimitConfig, GatewayWsConfig } from "./config.ts";
export { ActorClient } from "./actor_client.ts";
export type { ActorClientOptions } from "./actor_client.ts";
export { ApiKeyVerifier } from "./auth/api_key_verifier.ts";
export type { ApiKeyVerifierOptions } from "./auth/api_key_verifier.ts";
export { Authenticator } from "./auth/authenticator.ts";
export type { Principal, AdminPrincipal } from "./auth/authenticator.ts";
export { Scopes, hasScope, requireScope } from "./auth/scopes.ts";
export type { Scope } from "./auth/scopes.ts";
export { verifyHs256Jwt, signHs256Jwt, looksLikeJwt } from "./auth/jwt.ts";
export type { JwtClaims, VerifyJwtOptions } from "./auth/jwt.ts";
export { v1Routes } from "./routes/v1_routes.ts";
export { v2ClientRoutes } from "./routes/v2_clients.ts";
export { v2TenantRoutes } from "./routes/v2_tenant.ts";
export { v2DocumentRoutes, parseUpload, DOCUMENT_SCHEMA } from "./routes/v2_documents.ts";
export { v2ProviderKeyRoutes } from "./routes/v2_provider_keys.ts";
export type { ApiRouteDeps } from "./routes/route_helpers.ts";
export { AdminSessions } from "./admin/sessions.ts";
export type { AdminSession, AdminSessionsOptions } from "./admin/sessions.ts";
