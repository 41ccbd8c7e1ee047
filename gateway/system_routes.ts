/** The service routes every gateway answers: `/`, `/health`, `/health/detailed`, `/metrics`, `/openapi.json`. */
import type { SchemaObject } from "ajv/dist/2020.js";
import { detailedHealth } from "./health_checks.ts";
import type { HealthDeps } from "./health_checks.ts";
import { json, text } from "./http_types.ts";
import type { GatewayResponse, RouteDefinition } from "./http_types.ts";
import type { GatewayMetrics } from "./metrics.ts";
import { buildOpenApiDocument } from "./openapi.ts";
import type { OpenApiInfo } from "./openapi.ts";

export const SERVICE_NAME = "sidekick-forge";
/** What `json()` answers are sent as. */
const JSON_TYPE = "application/json; charset=utf-8";

export interface SystemRouteDeps {
  /** NATS, subjects and check deadlines for `/health/detailed`. */
  health: Omit<HealthDeps, "metrics">;
  metrics: GatewayMetrics;
  version: string;
  /** Every route of the app, for `/openapi.json` (read when the document is first asked for). */
  routes: () => readonly RouteDefinition[];
}

const HEALTH_SCHEMA: SchemaObject = {
  type: "object",
  required: ["status", "service", "timestamp"],
  properties: {
    status: { const: "healthy" },
    service: { const: SERVICE_NAME },
    timestamp: { type: "string", format: "date-time" },
  },
};

const CHECK_PROPERTIES: Record<string, SchemaObject> = {
  ok: { type: "boolean" },
  latency_ms: { type: "number" },
  error: { type: "string" },
};

function checkSchema(extra: Record<string, SchemaObject> = {}): SchemaObject {
  return { type: "object", required: ["ok"], properties: { ...CHECK_PROPERTIES, ...extra } };
}

const DETAILED_HEALTH_SCHEMA: SchemaObject = {
  type: "object",
  required: ["status", "checks"],
  properties: {
    status: { enum: ["healthy", "degraded"] },
    checks: {
      type: "object",
      required: ["nats", "jetstream", "actor_hosts", "workers", "platform_db"],
      properties: {
        nats: checkSchema(),
        jetstream: checkSchema({ streams: { type: "object", additionalProperties: { type: "boolean" } } }),
        actor_hosts: checkSchema({
          count: { type: "integer" },
          hosts: {
            type: "array",
            items: {
              type: "object",
              properties: {
                id: { type: "string" },
                partitions: { type: "array", items: { type: "integer" } },
              },
            },
          },
        }),
        workers: checkSchema({ count: { type: "integer" } }),
        platform_db: checkSchema(),
      },
    },
  },
};

let healthAtMs = Number.NaN;
let healthBody = "";

/** Liveness. The body is the same for every answer within one millisecond, so it is built once per millisecond. */
function health(): GatewayResponse {
  const now = Date.now();
  if (now !== healthAtMs) {
    healthAtMs = now;
    healthBody = JSON.stringify({
      status: "healthy",
      service: SERVICE_NAME,
      timestamp: new Date(now).toISOString(),
    });
  }
  return text(200, healthBody, JSON_TYPE);
}

export function systemRoutes(deps: SystemRouteDeps): RouteDefinition[] {
  const info: OpenApiInfo = {
    title: "Sidekick Forge gateway",
    version: deps.version,
    description: "HTTP front door of Sidekick Forge",
  };
  let openapi: string | undefined;
  return [
    {
      method: "GET",
      path: "/",
      operationId: "root",
      summary: "Names the service and links its health and API documents",
      tags: ["system"],
      responses: {
        200: {
          description: "Service name and links",
          schema: {
            type: "object",
            required: ["service", "version", "links"],
            properties: {
              service: { const: SERVICE_NAME },
              version: { type: "string" },
              links: { type: "object", additionalProperties: { type: "string" } },
            },
          },
        },
      },
      handler: () =>
        Promise.resolve(
          json(200, {
            service: SERVICE_NAME,
            version: deps.version,
            links: { health: "/health", health_detailed: "/health/detailed", openapi: "/openapi.json" },
          }),
        ),
    },
    {
      method: "GET",
      path: "/health",
      operationId: "health",
      summary: "Liveness: answers while the process serves HTTP, checks no dependency",
      tags: ["system"],
      responses: { 200: { description: "The gateway is alive", schema: HEALTH_SCHEMA } },
      handler: () => Promise.resolve(health()),
      // Liveness reads nothing of the request: the transports answer it without the pipeline.
      instant: health,
    },
    {
      method: "GET",
      path: "/health/detailed",
      operationId: "healthDetailed",
      summary: "Checks NATS, JetStream streams, actor hosts, workers and the platform database",
      tags: ["system"],
      responses: {
        200: {
          description:
            "Each dependency's state; status is degraded when any check is not ok (still HTTP 200)",
          schema: DETAILED_HEALTH_SCHEMA,
        },
      },
      handler: async () => json(200, await detailedHealth({ ...deps.health, metrics: deps.metrics })),
    },
    {
      method: "GET",
      path: "/metrics",
      operationId: "metrics",
      summary: "Prometheus metrics of this gateway process",
      tags: ["system"],
      responses: { 200: { description: "Prometheus text format", contentType: "text/plain; version=0.0.4" } },
      handler: async () =>
        text(200, await deps.metrics.registry.metrics(), deps.metrics.registry.contentType),
    },
    {
      method: "GET",
      path: "/openapi.json",
      operationId: "openapi",
      summary: "The OpenAPI 3.1 document of every HTTP route",
      tags: ["system"],
      responses: {
        200: {
          description: "OpenAPI 3.1 document",
          schema: { type: "object", required: ["openapi", "paths"] },
        },
      },
      handler: () => {
        openapi ??= JSON.stringify(buildOpenApiDocument(deps.routes(), info));
        return Promise.resolve(text(200, openapi, "application/json; charset=utf-8"));
      },
    },
  ];
}
