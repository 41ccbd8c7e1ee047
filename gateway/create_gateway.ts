/** Builds the gateway app with its routes from a NATS connection and the parsed configuration. */
import type { NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "pino";
import { createSubjects } from "../bus/index.ts";
import { ActorClient } from "./actor_client.ts";
import { ApiKeyVerifier } from "./auth/api_key_verifier.ts";
import { Authenticator } from "./auth/authenticator.ts";
import type { GatewayConfig } from "./config.ts";
import { GatewayApp } from "./gateway_app.ts";
import type { HealthTimeouts } from "./health_checks.ts";
import type { RouteDefinition } from "./http_types.ts";
import { createGatewayMetrics } from "./metrics.ts";
import type { ApiRouteDeps } from "./routes/route_helpers.ts";
import { v1Routes } from "./routes/v1_routes.ts";
import { v2ClientRoutes } from "./routes/v2_clients.ts";
import { v2TenantRoutes } from "./routes/v2_tenant.ts";
import { systemRoutes } from "./system_routes.ts";

export const GATEWAY_VERSION = "0.1.0";

export interface CreateGatewayOptions {
  nc: NatsConnection;
  config: Pick<
    GatewayConfig,
    "subjectPrefix" | "partitions" | "maxBodyBytes" | "corsOrigins" | "requestTimeoutMs" | "auth"
  >;
  log: Logger;
  healthTimeouts?: Partial<HealthTimeouts>;
  /** The API key verifier (its cache is evicted by client events when the caller watches them). */
  apiKeys?: ApiKeyVerifier;
}

export function createGateway(options: CreateGatewayOptions): GatewayApp {
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
  const api: ApiRouteDeps = {
    auth: new Authenticator(config.auth, keys),
    actors: new ActorClient({ nc, subjects, timeoutMs: config.requestTimeoutMs }),
    keys,
  };
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
    ...v1Routes(api),
  ];
  const app = new GatewayApp({
    routes,
    log: options.log,
    maxBodyBytes: config.maxBodyBytes,
    cors: { origins: config.corsOrigins },
    metrics,
  });
  all = app.router.routes();
  return app;
}
