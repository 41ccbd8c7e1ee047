export { parseGatewayConfig } from "./config.ts";
export type { GatewayConfig } from "./config.ts";
export { createGateway, GATEWAY_VERSION } from "./create_gateway.ts";
export type { CreateGatewayOptions } from "./create_gateway.ts";
export { GatewayApp } from "./gateway_app.ts";
export { parseUrl, pickRequestId, decodeParams, parseJsonBody } from "./request_parsing.ts";
export type { GatewayAppOptions, InjectRequest, InjectResponse } from "./gateway_app.ts";
export { startUwsServer } from "./uws_server.ts";
export type { UwsServer, UwsServerOptions, StopResult } from "./uws_server.ts";
export { Router } from "./router.ts";
export type { RouteMatch } from "./router.ts";
export { HTTP_METHODS, isHttpMethod, json, text, empty } from "./http_types.ts";
export type {
  HttpMethod,
  RawRequest,
  GatewayRequest,
  GatewayResponse,
  ResponseBody,
  SerializedResponse,
  Handler,
  ResponseSpec,
  RouteSchema,
  RouteDefinition,
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
} from "./errors.ts";
export type { GatewayErrorCode } from "./errors.ts";
export { ERROR_STATUS, statusForCode, errorResponse } from "./error_status.ts";
export type { StatusRule, ErrorEnvelope } from "./error_status.ts";
export {
  parseCorsOptions,
  isOriginAllowed,
  corsResponseHeaders,
  preflightHeaders,
  DEFAULT_CORS_ALLOW_HEADERS,
} from "./cors.ts";
export type { CorsOptions, CorsPolicy } from "./cors.ts";
export { createGatewayMetrics, methodLabel, UNMATCHED_ROUTE } from "./metrics.ts";
export type { GatewayMetrics } from "./metrics.ts";
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
