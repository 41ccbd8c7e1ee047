/** An in-process GatewayApp with routes defined by the tests (never by product code). */
import { createLogger } from "../../actors/index.ts";
import { GatewayApp, json } from "../../gateway/index.ts";
import type { CorsOptions, GatewayRequest, RouteDefinition, TenantOriginIndex } from "../../gateway/index.ts";

export const silentLog = createLogger({ name: "gateway-test", level: "silent" });

export interface Seen {
  last: GatewayRequest | undefined;
}

export const ITEM_SCHEMA = {
  type: "object",
  required: ["name"],
  additionalProperties: false,
  properties: { name: { type: "string", minLength: 1 }, size: { type: "integer", minimum: 0 } },
} as const;

/**
 * Routes: GET /items, GET /items/{id}, GET /items/special (static beats param), POST /items
 * (validated body), POST /legacy/items (422 on validation), GET /throw (throws `thrower()`).
 */
export function testRoutes(seen: Seen, thrower: () => unknown = () => new Error("boom")): RouteDefinition[] {
  const record = (req: GatewayRequest) => {
    seen.last = req;
    return Promise.resolve(
      json(200, { route: req.route, params: req.params, query: req.query, body: req.body }),
    );
  };
  return [
    {
      method: "GET",
      path: "/items",
      operationId: "listItems",
      summary: "list",
      schema: { query: { type: "object", properties: { limit: { type: "string", pattern: "^[0-9]+$" } } } },
      responses: { 200: { description: "ok" } },
      handler: record,
    },
    {
      method: "GET",
      path: "/items/{id}",
      operationId: "getItem",
      summary: "one",
      responses: { 200: { description: "ok" } },
      handler: record,
    },
    {
      method: "GET",
      path: "/items/special",
      operationId: "special",
      summary: "static",
      responses: { 200: { description: "ok" } },
      handler: record,
    },
    {
      method: "POST",
      path: "/items",
      operationId: "createItem",
      summary: "create",
      schema: { body: ITEM_SCHEMA },
      responses: { 200: { description: "ok" } },
      handler: record,
    },
    {
      method: "POST",
      path: "/legacy/items",
      operationId: "createLegacyItem",
      summary: "create, legacy statuses",
      schema: { body: ITEM_SCHEMA },
      validationStatus: 422,
      responses: { 200: { description: "ok" } },
      handler: record,
    },
    {
      method: "GET",
      path: "/throw",
      operationId: "throw",
      summary: "throws",
      responses: { 200: { description: "never" } },
      handler: () => {
        // Handlers may throw anything, not only Errors: the pipeline must cope.
        const thrown = thrower();
        return Promise.reject(thrown instanceof Error ? thrown : new Error(String(thrown)));
      },
    },
  ];
}

export function testApp(
  options: {
    cors?: CorsOptions;
    maxBodyBytes?: number;
    thrower?: () => unknown;
    extra?: RouteDefinition[];
    tenantOrigins?: TenantOriginIndex;
  } = {},
): { app: GatewayApp; seen: Seen } {
  const seen: Seen = { last: undefined };
  const app = new GatewayApp({
    routes: [...testRoutes(seen, options.thrower), ...(options.extra ?? [])],
    log: silentLog,
    maxBodyBytes: options.maxBodyBytes ?? 1024,
    cors: options.cors ?? { origins: ["https://allowed.example"] },
    ...(options.tenantOrigins === undefined ? {} : { tenantOrigins: options.tenantOrigins }),
  });
  return { app, seen };
}

export interface Envelope {
  error: { code: string; message: string; details: Record<string, unknown> };
}
