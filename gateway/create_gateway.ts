/** Builds the gateway app with its routes from a NATS connection and the parsed configuration. */
import type { NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "pino";
import { createSubjects } from "../bus/index.ts";
import type { GatewayConfig } from "./config.ts";
import { GatewayApp } from "./gateway_app.ts";
import type { HealthTimeouts } from "./health_checks.ts";
import type { RouteDefinition } from "./http_types.ts";
import { createGatewayMetrics } from "./metrics.ts";
import { systemRoutes } from "./system_routes.ts";

export const GATEWAY_VERSION = "0.1.0";

export interface CreateGatewayOptions {
  nc: NatsConnection;
  config: Pick<GatewayConfig, "subjectPrefix" | "partitions" | "maxBodyBytes" | "corsOrigins">;
  log: Logger;
  healthTimeouts?: Partial<HealthTimeouts>;
}

export function createGateway(options: CreateGatewayOptions): GatewayApp {
  const { config } = options;
  const subjects = createSubjects({ prefix: config.subjectPrefix, partitions: config.partitions });
  const metrics = createGatewayMetrics();
  let all: readonly RouteDefinition[] = [];
  const routes = systemRoutes({
    health: {
      nc: options.nc,
      subjects,
      ...(options.healthTimeouts === undefined ? {} : { timeouts: options.healthTimeouts }),
    },
    metrics,
    version: GATEWAY_VERSION,
    routes: () => all,
  });
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
