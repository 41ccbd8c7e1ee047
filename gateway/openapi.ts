/**
 * The OpenAPI 3.1 document, generated from the route table: every route registers its summary,
 * parameters and schemas, so the document cannot drift from the routes it describes.
 */
import type { SchemaObject } from "ajv/dist/2020.js";
import type { RouteDefinition } from "./http_types.ts";

export interface OpenApiInfo {
  title: string;
  version: string;
  description?: string;
}

export interface OpenApiDocument {
  openapi: "3.1.0";
  info: OpenApiInfo;
  paths: Record<string, Record<string, unknown>>;
  components: { schemas: Record<string, SchemaObject> };
}

/** The error envelope every 4xx/5xx answer carries. */
export const ERROR_ENVELOPE_SCHEMA: SchemaObject = {
  type: "object",
  required: ["error"],
  properties: {
    error: {
      type: "object",
      required: ["code", "message", "details"],
      properties: {
        code: { type: "string", pattern: "^SF_ERR_[A-Z0-9_]+$" },
        message: { type: "string" },
        details: { type: "object" },
      },
    },
  },
};

const PATH_PARAM_RE = /\{([A-Za-z_][A-Za-z0-9_]*)\}/g;

function parameters(route: RouteDefinition): unknown[] {
  const out: unknown[] = [];
  const paramProps = (route.schema?.params?.["properties"] ?? {}) as Record<string, SchemaObject>;
  for (const m of route.path.matchAll(PATH_PARAM_RE)) {
    const name = m[1] ?? "";
    out.push({ name, in: "path", required: true, schema: paramProps[name] ?? { type: "string" } });
  }
  const query = route.schema?.query;
  if (query !== undefined) {
    const props = (query["properties"] ?? {}) as Record<string, SchemaObject>;
    const required = new Set((query["required"] ?? []) as string[]);
    for (const [name, schema] of Object.entries(props)) {
      out.push({ name, in: "query", required: required.has(name), schema });
    }
  }
  return out;
}

function operation(route: RouteDefinition): Record<string, unknown> {
  const responses: Record<string, unknown> = {};
  for (const [status, spec] of Object.entries(route.responses)) {
    const content =
      spec.contentType !== undefined
        ? { [spec.contentType]: { schema: { type: "string" } } }
        : spec.schema !== undefined
          ? { "application/json": { schema: spec.schema } }
          : undefined;
    responses[status] =
      content === undefined ? { description: spec.description } : { description: spec.description, content };
  }
  responses["default"] = {
    description: "An error: `{ error: { code, message, details } }`",
    content: { "application/json": { schema: { $ref: "#/components/schemas/ErrorEnvelope" } } },
  };
  const op: Record<string, unknown> = {
    operationId: route.operationId,
    summary: route.summary,
    tags: route.tags ?? [],
    parameters: parameters(route),
    responses,
  };
  if (route.schema?.body !== undefined) {
    op["requestBody"] = { required: true, content: { "application/json": { schema: route.schema.body } } };
  }
  return op;
}

export function buildOpenApiDocument(routes: readonly RouteDefinition[], info: OpenApiInfo): OpenApiDocument {
  const paths: Record<string, Record<string, unknown>> = {};
  const sorted = [...routes].sort((a, b) => a.path.localeCompare(b.path) || a.method.localeCompare(b.method));
  for (const route of sorted) {
    const item = (paths[route.path] ??= {});
    item[route.method.toLowerCase()] = operation(route);
  }
  return {
    openapi: "3.1.0",
    info,
    paths,
    components: { schemas: { ErrorEnvelope: ERROR_ENVELOPE_SCHEMA } },
  };
}
