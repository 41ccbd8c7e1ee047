/**
 * The gateway's request/response abstraction. Handlers are plain async functions from a
 * `GatewayRequest` to a `GatewayResponse`: they never see a socket, so they run the same under
 * the uWS shell and under `GatewayApp.inject` in tests.
 */
import type { SchemaObject } from "ajv/dist/2020.js";
import type { AbortLike } from "../bus/index.ts";

export const HTTP_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"] as const;
export type HttpMethod = (typeof HTTP_METHODS)[number];

export function isHttpMethod(value: string): value is HttpMethod {
  return (HTTP_METHODS as readonly string[]).includes(value);
}

/** A request as the transport hands it over: everything already copied out of the socket. */
export interface RawRequest {
  /** Upper-case method. */
  method: string;
  /** Path and query string as sent (`/a/b?x=1`). */
  url: string;
  /** Header names in lower case. */
  headers: Readonly<Record<string, string>>;
  body: Buffer;
  remoteAddress: string;
  /** Aborts when the client goes away before the response is written. */
  signal?: AbortLike;
}

/**
 * How a route's responses are shared with browsers of other origins (see cors.ts): `global`
 * answers only the origins of SF_GATEWAY_CORS_ORIGINS; `tenant` (the thin-client routes) also
 * those of the calling API key's tenant (`settings.cors_origins`).
 */
export type RouteCors = "global" | "tenant";

/** Who turned out to be calling, as the authenticator recorded it. */
export type RequestCaller =
  { type: "admin" } | { type: "api_key"; clientId: string; corsOrigins: readonly string[] };

/**
 * What the pipeline learns while a request runs: the route's CORS mode (set before the handler)
 * and the caller (set by the authenticator once credentials are accepted), which the CORS
 * headers of the response are decided by.
 */
export interface RequestContext {
  readonly cors: RouteCors;
  caller?: RequestCaller;
}

export interface GatewayRequest {
  /** Request id: the caller's `x-request-id` when it is a sane token, else a new UUID. */
  readonly id: string;
  readonly method: HttpMethod;
  /** The path without the query string, still percent-encoded. */
  readonly path: string;
  /** The route pattern that matched (`/api/v2/clients/{id}`). */
  readonly route: string;
  /** Path parameters, percent-decoded. */
  readonly params: Readonly<Record<string, string>>;
  /** Query parameters; for a repeated name, the first value. */
  readonly query: Readonly<Record<string, string>>;
  readonly headers: Readonly<Record<string, string>>;
  /** The parsed JSON body when the route declares a body schema, else undefined. */
  readonly body: unknown;
  readonly rawBody: Buffer;
  readonly remoteAddress: string;
  /** Aborts when the client goes away before the response is written. */
  readonly signal: AbortLike;
  readonly context: RequestContext;
}

/**
 * Where a streamed body goes. `write` never blocks: the transport queues what the socket cannot
 * take yet (corked writes, `onWritable` on uWS) and cuts a reader whose queue passes its bound;
 * it answers false once the client is gone (or was cut), after which the producer should stop.
 */
export interface StreamSink {
  write(chunk: string): boolean;
  /** Aborts when the client goes away (or is cut for reading too slowly). */
  readonly signal: AbortLike;
}

/** A body produced over time (Server-Sent Events). `run` must not reject: it reports errors in the stream. */
export interface StreamBody {
  type: "stream";
  contentType: string;
  run: (sink: StreamSink) => Promise<void>;
}

export type ResponseBody =
  | { type: "json"; value: unknown }
  | { type: "text"; value: string; contentType: string }
  | { type: "empty" }
  | StreamBody;

export interface GatewayResponse {
  status: number;
  headers?: Readonly<Record<string, string>>;
  body: ResponseBody;
}

/** A response ready for the wire. */
export interface SerializedResponse {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
  /** Set for streamed bodies: the transport writes the head, then runs it (`body` is empty). */
  stream?: StreamBody["run"];
}

export type Handler = (req: GatewayRequest) => Promise<GatewayResponse>;

export interface ResponseSpec {
  description: string;
  /** JSON schema of the body (for `application/json`). */
  schema?: SchemaObject;
  /** Content type when the body is not JSON. */
  contentType?: string;
}

export interface RouteSchema {
  /** Schema of the JSON body; declaring it makes the gateway parse and validate the body. */
  body?: SchemaObject;
  /** Object schema of the query parameters (values are strings). */
  query?: SchemaObject;
  /** Object schema of the path parameters; defaults to strings. */
  params?: SchemaObject;
}

export interface RouteDefinition {
  method: Exclude<HttpMethod, "HEAD" | "OPTIONS">;
  /** OpenAPI-style pattern: `/api/v2/clients/{id}`. */
  path: string;
  operationId: string;
  summary: string;
  tags?: readonly string[];
  schema?: RouteSchema;
  responses: Readonly<Record<number, ResponseSpec>>;
  /** Largest body this route accepts (uploads); default the gateway's limit. */
  maxBodyBytes?: number;
  /** Status for a body or query that fails its schema (legacy v1 routes answer 422). Default 400. */
  validationStatus?: 400 | 422;
  /** `tenant` for thin-client routes called from tenants' sites and apps (see cors.ts). Default `global`. */
  cors?: RouteCors;
  handler: Handler;
  /**
   * How a request of this route refused before `handler` runs (a body over the limit, a path
   * parameter that is not valid percent-encoding) is answered. Default: the JSON error envelope.
   * The console answers with its HTML error page, as it does for every other error.
   */
  renderError?: (
    err: unknown,
    req: { readonly headers: Readonly<Record<string, string>> },
  ) => GatewayResponse;
  /**
   * For a GET route of a fixed path that reads nothing of the request (no credentials, body,
   * parameters or query): its response, built at once. A transport may answer a plain GET of the
   * path (no query, no `Origin`, no body) with `GatewayApp.answerInstant` instead of the async
   * pipeline; the answer, its headers and its metrics are the same. `handler` must answer the same.
   */
  instant?: () => GatewayResponse;
}

export function json(status: number, value: unknown, headers?: Record<string, string>): GatewayResponse {
  return headers === undefined
    ? { status, body: { type: "json", value } }
    : { status, headers, body: { type: "json", value } };
}

export function text(status: number, value: string, contentType: string): GatewayResponse {
  return { status, body: { type: "text", value, contentType } };
}

export function empty(status: number, headers?: Record<string, string>): GatewayResponse {
  return headers === undefined
    ? { status, body: { type: "empty" } }
    : { status, headers, body: { type: "empty" } };
}

export function stream(
  status: number,
  contentType: string,
  run: StreamBody["run"],
  headers?: Record<string, string>,
): GatewayResponse {
  const body: StreamBody = { type: "stream", contentType, run };
  return headers === undefined ? { status, body } : { status, headers, body };
}
