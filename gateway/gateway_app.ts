/**
 * The request pipeline, independent of any socket: parse the URL, answer CORS preflights,
 * route (404/405), enforce the body limit, parse and validate JSON, run the handler, map any
 * error to the envelope, add CORS headers (by the route's CORS mode and the caller the
 * authenticator recorded, see cors.ts), record metrics. The uWS shell feeds it `RawRequest`s;
 * tests call `inject` the way fastify's `inject` works.
 */
import type { Logger } from "pino";
import { SfError } from "../bus/index.ts";
import {
  corsAllowHeaders,
  corsResponseHeaders,
  isOriginAllowed,
  isOriginAllowedForTenant,
  parseCorsOptions,
  preflightHeaders,
} from "./cors.ts";
import type { CorsOptions, CorsPolicy } from "./cors.ts";
import type { TenantOriginIndex } from "./cors_listed_origins.ts";
import { errorResponse } from "./error_status.ts";
import {
  BadRequestError,
  CorsOriginDeniedError,
  MethodNotAllowedError,
  NotFoundError,
  PayloadTooLargeError,
  ValidationError,
} from "./errors.ts";
import { empty, isHttpMethod } from "./http_types.ts";
import type {
  GatewayRequest,
  GatewayResponse,
  HttpMethod,
  RawRequest,
  RequestContext,
  RouteCors,
  RouteDefinition,
  SerializedResponse,
} from "./http_types.ts";
import { createGatewayMetrics, methodLabel, UNMATCHED_ROUTE } from "./metrics.ts";
import type { GatewayMetrics } from "./metrics.ts";
import { decodeParams, parseJsonBody, parseUrl, pickRequestId } from "./request_parsing.ts";
import { RequestAbort } from "./request_abort.ts";
import { Router } from "./router.ts";
import { assertValid, createValidatorCompiler } from "./validation.ts";
import type { RouteValidators } from "./validation.ts";

export interface GatewayAppOptions {
  routes: readonly RouteDefinition[];
  log: Logger;
  /** Largest accepted body. Default 1 MiB. */
  maxBodyBytes?: number;
  cors?: CorsOptions;
  /** Which origins some tenant lists: preflights of thin-client routes. Absent: the global list only. */
  tenantOrigins?: TenantOriginIndex;
  metrics?: GatewayMetrics;
}

export interface InjectRequest {
  method: string;
  url: string;
  headers?: Record<string, string>;
  /** A string or Buffer is sent as is; anything else is JSON-encoded. */
  body?: unknown;
  signal?: AbortSignal;
}

export interface InjectResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
  json<T = unknown>(): T;
}

const NO_HEADERS: Readonly<Record<string, string>> = Object.freeze({});

export class GatewayApp {
  readonly router = new Router();
  readonly metrics: GatewayMetrics;
  readonly maxBodyBytes: number;
  readonly #log: Logger;
  readonly #cors: CorsPolicy;
  readonly #tenantOrigins: TenantOriginIndex | undefined;
  /** Patterns of the routes whose responses follow the tenant's CORS list. */
  readonly #tenantCorsPaths = new Set<string>();
  readonly #validators = new Map<RouteDefinition, RouteValidators>();
  /** The routes with a body limit of their own (uploads), for `bodyLimit`. */
  readonly #ownLimits = new Router();
  /** Instant responses of fixed GET paths (see `RouteDefinition.instant`). */
  readonly #instant = new Map<string, () => GatewayResponse>();

  constructor(options: GatewayAppOptions) {
    this.#log = options.log;
    this.maxBodyBytes = options.maxBodyBytes ?? 1024 * 1024;
    this.#cors = parseCorsOptions(options.cors ?? { origins: [] });
    this.#tenantOrigins = options.tenantOrigins;
    this.metrics = options.metrics ?? createGatewayMetrics();
    const compileValidators = createValidatorCompiler();
    for (const route of options.routes) {
      this.router.add(route);
      this.#validators.set(route, compileValidators(route));
      if (route.cors === "tenant") this.#tenantCorsPaths.add(route.path);
      if (route.maxBodyBytes !== undefined) this.#ownLimits.add(route);
      if (route.instant !== undefined) {
        if (route.method !== "GET" || route.path.includes("{")) {
          throw new Error(`route ${route.method} ${route.path}: only a GET of a fixed path can be instant`);
        }
        this.#instant.set(route.path, route.instant);
      }
    }
  }

  /** Paths whose plain GET a transport may answer with `answerInstant`. */
  get instantPaths(): readonly string[] {
    return [...this.#instant.keys()];
  }

  /**
   * The answer to a plain `GET <path>` of an instant route (no query string, no `Origin`, no
   * body): the body, headers (`x-request-id` from `requestIdHeader` when sane) and metrics that
   * `handle` gives the same request, without its async pipeline. undefined for any other path.
   */
  answerInstant(path: string, requestIdHeader: string | undefined): SerializedResponse | undefined {
    const instant = this.#instant.get(path);
    if (instant === undefined) return undefined;
    const started = performance.now();
    const requestId = pickRequestId(requestIdHeader);
    let response: GatewayResponse;
    try {
      response = instant();
    } catch (err) {
      response = errorResponse(err);
      this.#logError(err, "GET", path, requestId, response.status);
    }
    return this.#finish("GET", response, path, requestId, started, NO_HEADERS);
  }

  /** Runs one request through the pipeline. Never rejects: every failure becomes a response. */
  async handle(raw: RawRequest): Promise<SerializedResponse> {
    const started = performance.now();
    const requestId = pickRequestId(raw.headers["x-request-id"]);
    let route = UNMATCHED_ROUTE;
    let context: RequestContext | undefined;
    let response: GatewayResponse;
    try {
      response = await this.#run(raw, requestId, (pattern, ctx) => {
        route = pattern;
        context = ctx;
      });
    } catch (err) {
      response = errorResponse(err);
      this.#logError(err, raw.method, route, requestId, response.status);
    }
    // A preflight answer carries its own CORS headers; a request without Origin needs none.
    const origin = raw.headers["origin"];
    const cors =
      origin !== undefined && response.headers?.["access-control-allow-methods"] === undefined
        ? await this.#corsHeaders(origin, context, requestId)
        : NO_HEADERS;
    return this.#finish(raw.method, response, route, requestId, started, cors);
  }

  /** The response for a request refused before it reached the pipeline (e.g. an oversized body). */
  reject(raw: RawRequest, err: unknown): SerializedResponse {
    const requestId = pickRequestId(raw.headers["x-request-id"]);
    // A route that answers its errors itself (the console's HTML pages) answers this one too.
    const match =
      isHttpMethod(raw.method) && raw.method !== "OPTIONS"
        ? this.router.match(raw.method, parseUrl(raw.url).path)
        : undefined;
    const renderError = match?.type === "found" ? match.route.renderError : undefined;
    const response = renderError === undefined ? errorResponse(err) : renderError(err, raw);
    this.#logError(err, raw.method, UNMATCHED_ROUTE, requestId, response.status);
    return this.#finish(
      raw.method,
      response,
      UNMATCHED_ROUTE,
      requestId,
      performance.now(),
      corsResponseHeaders(this.#cors, raw.headers["origin"]),
    );
  }

  /** In-process request, no socket: for tests and tools. */
  async inject(request: InjectRequest): Promise<InjectResponse> {
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(request.headers ?? {})) headers[k.toLowerCase()] = v;
    let body: Buffer;
    if (request.body === undefined) body = Buffer.alloc(0);
    else if (Buffer.isBuffer(request.body)) body = request.body;
    else if (typeof request.body === "string") body = Buffer.from(request.body);
    else {
      body = Buffer.from(JSON.stringify(request.body));
      headers["content-type"] ??= "application/json";
    }
    const raw: RawRequest = {
      method: request.method.toUpperCase(),
      url: request.url,
      headers,
      body,
      remoteAddress: "127.0.0.1",
    };
    if (request.signal !== undefined) raw.signal = request.signal;
    const out = await this.handle(raw);
    let text = out.body.toString("utf8");
    const run = out.stream;
    if (run !== undefined) {
      // No socket: the stream is collected whole, and never backpressured.
      const chunks: string[] = [];
      const signal = request.signal ?? new AbortController().signal;
      await run({ write: (chunk) => (signal.aborted ? false : (chunks.push(chunk), true)), signal });
      text = chunks.join("");
    }
    return {
      status: out.status,
      headers: out.headers,
      body: text,
      json: <T>() => JSON.parse(text) as T,
    };
  }

  /** The largest body a request to `url` may send: its route's limit, else the gateway's. */
  bodyLimit(method: string, url: string): number {
    if (!isHttpMethod(method) || method === "OPTIONS") return this.maxBodyBytes;
    const path = parseUrl(url).path;
    // Only the routes with a limit of their own can change the answer: when none of them matches,
    // the route that does has the gateway's. When one does, the whole table says which route wins.
    if (this.#ownLimits.find(method, path) === undefined) return this.maxBodyBytes;
    const match = this.router.match(method, path);
    return match.type === "found" ? (match.route.maxBodyBytes ?? this.maxBodyBytes) : this.maxBodyBytes;
  }

  async #run(
    raw: RawRequest,
    requestId: string,
    onRoute: (pattern: string, context?: RequestContext) => void,
  ): Promise<GatewayResponse> {
    if (!isHttpMethod(raw.method)) throw new BadRequestError(`unknown method ${raw.method}`);
    const method: HttpMethod = raw.method;
    const { path, query } = parseUrl(raw.url);
    const origin = raw.headers["origin"];

    if (method === "OPTIONS") return this.#options(raw, path, origin, requestId, onRoute);

    const match = this.router.match(method, path);
    if (match.type === "not_found") throw new NotFoundError(`no route for ${path}`);
    if (match.type === "method_not_allowed") {
      onRoute(match.pattern);
      throw new MethodNotAllowedError(method, match.allowed);
    }
    const route = match.route;
    const context: RequestContext = { cors: route.cors ?? "global" };
    onRoute(route.path, context);
    const limit = route.maxBodyBytes ?? this.maxBodyBytes;
    if (raw.body.length > limit) return this.#refuse(route, raw, new PayloadTooLargeError(limit), requestId);

    const validators = this.#validators.get(route) ?? {};
    const validationStatus = route.validationStatus ?? 400;
    let body: unknown;
    try {
      assertValid(validators.query, query, "query");
      if (route.schema?.body !== undefined) {
        body = parseJsonBody(raw);
        assertValid(validators.body, body, "body");
      }
    } catch (err) {
      // Bad JSON stays 400; a body or query that fails its schema answers the route's status.
      if (err instanceof ValidationError) return errorResponse(err, validationStatus);
      throw err;
    }
    let params: Readonly<Record<string, string>>;
    try {
      params = decodeParams(match.params);
    } catch (err) {
      return this.#refuse(route, raw, err, requestId);
    }
    const req: GatewayRequest = {
      id: requestId,
      method,
      path,
      route: route.path,
      params,
      query,
      headers: raw.headers,
      body,
      rawBody: raw.body,
      remoteAddress: raw.remoteAddress,
      // A request handed over without one (in process) is never aborted.
      signal: raw.signal ?? new RequestAbort(),
      context,
    };
    return route.handler(req);
  }

  /**
   * A preflight carries no credentials: for a thin-client route it is answered for the global
   * list or an origin some tenant lists; the request itself is then held to the key's tenant.
   */
  async #options(
    raw: RawRequest,
    path: string,
    origin: string | undefined,
    requestId: string,
    onRoute: (pattern: string) => void,
  ): Promise<GatewayResponse> {
    const known = this.router.methodsFor(path);
    if (known === undefined) throw new NotFoundError(`no route for ${path}`);
    onRoute(known.pattern);
    const allow = [...known.methods, "OPTIONS"];
    const requested = raw.headers["access-control-request-method"];
    if (origin === undefined || requested === undefined) return empty(204, { allow: allow.join(", ") });
    const mode: RouteCors = this.#tenantCorsPaths.has(known.pattern) ? "tenant" : "global";
    const allowed =
      isOriginAllowed(this.#cors, origin) ||
      (mode === "tenant" &&
        this.#tenantOrigins !== undefined &&
        (await this.#tenantOrigins.listed(origin, requestId)));
    if (!allowed) throw new CorsOriginDeniedError(origin);
    if (!(known.methods as readonly string[]).includes(requested.toUpperCase())) {
      throw new MethodNotAllowedError(requested.toUpperCase(), known.methods);
    }
    return empty(204, preflightHeaders(this.#cors, origin, known.methods));
  }

  /**
   * The CORS headers of an ordinary response: the global list for every route; on a thin-client
   * route also the API key's tenant's list, or — when no credentials were accepted — the origins a
   * preflight admits (the answer is then an error envelope without tenant data). See cors.ts.
   */
  async #corsHeaders(
    origin: string | undefined,
    context: RequestContext | undefined,
    requestId: string,
  ): Promise<Record<string, string>> {
    if (origin === undefined) return {};
    if (isOriginAllowed(this.#cors, origin)) return corsAllowHeaders(this.#cors, origin);
    if (context?.cors !== "tenant") return { vary: "Origin" };
    const caller = context.caller;
    let allowed = false;
    if (caller?.type === "api_key") {
      allowed = isOriginAllowedForTenant(this.#cors, caller.corsOrigins, origin);
    } else if (caller === undefined && this.#tenantOrigins !== undefined) {
      try {
        allowed = await this.#tenantOrigins.listed(origin, requestId);
      } catch (err) {
        // The answer stays unreadable for that origin; the request itself is not affected.
        this.#log.warn(
          { requestId, code: err instanceof SfError ? err.code : undefined },
          "cors origin lookup failed",
        );
      }
    }
    return allowed ? corsAllowHeaders(this.#cors, origin) : { vary: "Origin" };
  }

  #finish(
    rawMethod: string,
    response: GatewayResponse,
    route: string,
    requestId: string,
    started: number,
    cors: Readonly<Record<string, string>>,
  ): SerializedResponse {
    const headers: Record<string, string> = {};
    let body: Buffer;
    let streamRun: SerializedResponse["stream"];
    switch (response.body.type) {
      case "json":
        headers["content-type"] = "application/json; charset=utf-8";
        body = Buffer.from(JSON.stringify(response.body.value));
        break;
      case "text":
        headers["content-type"] = response.body.contentType;
        body = Buffer.from(response.body.value);
        break;
      case "empty":
        body = Buffer.alloc(0);
        break;
      case "stream":
        headers["content-type"] = response.body.contentType;
        headers["cache-control"] = "no-cache, no-transform";
        headers["x-accel-buffering"] = "no";
        body = Buffer.alloc(0);
        streamRun = response.body.run;
        break;
    }
    Object.assign(headers, response.headers, cors);
    headers["x-request-id"] = requestId;
    // No browser guesses another type for any answer (an error envelope under /admin included).
    headers["x-content-type-options"] = "nosniff";
    const method = methodLabel(rawMethod);
    this.metrics.http.record(route, method, response.status, (performance.now() - started) / 1000);
    return streamRun === undefined
      ? { status: response.status, headers, body }
      : { status: response.status, headers, body, stream: streamRun };
  }

  /**
   * A request of `route` refused before its handler ran: the route's own error answer when it has
   * one (the console's pages), else the error goes on to become the JSON envelope.
   */
  #refuse(route: RouteDefinition, raw: RawRequest, err: unknown, requestId: string): GatewayResponse {
    if (route.renderError === undefined) throw err;
    const response = route.renderError(err, raw);
    this.#logError(err, raw.method, route.path, requestId, response.status);
    return response;
  }

  #logError(err: unknown, method: string, route: string, requestId: string, status: number): void {
    const data = {
      requestId,
      route,
      method,
      status,
      code: err instanceof SfError ? err.code : undefined,
    };
    if (status === 500) {
      this.#log.error(
        {
          ...data,
          err:
            err instanceof Error ? { name: err.name, message: err.message, stack: err.stack } : String(err),
        },
        "request failed",
      );
    } else if (status > 500) {
      this.#log.warn(data, "request failed");
    } else {
      this.#log.debug(data, "request refused");
    }
  }
}
