/**
 * CORS for browsers. Two lists decide which origins may call the gateway from a page:
 *
 * - the gateway's global list (SF_GATEWAY_CORS_ORIGINS, `*` for any), for every route;
 * - each tenant's own list (`clients.settings.cors_origins`, set by PATCH /api/v2/clients/{id}),
 *   only for the thin-client routes (`cors: "tenant"`: trigger-agent v1/v2, the embed SSE stream,
 *   `/api/v2/documents…`) and `/ws`, and only for requests made with an API key of that tenant.
 *
 * A preflight (OPTIONS) carries no credentials, so it cannot know the tenant. For a thin-client
 * route it is answered for an origin in the global list or listed by at least one active tenant
 * (platform op `cors-origin-listed`, cached per origin, see cors_listed_origins.ts); for any
 * other route only for the global list. A preflight only lets the browser send the request; the
 * request itself is held to the key's tenant:
 *
 * - API key of tenant T from origin O: O must be in the global list or in T's list, else the
 *   authenticator answers 403 SF_ERR_CORS_ORIGIN_DENIED as soon as the key is verified, before
 *   any work, and without an allow header. A site listed by tenant B can therefore neither read
 *   nor run requests with tenant A's key (a leaked key is no use from another tenant's site).
 * - admin credentials: the global list only.
 * - no accepted credentials (401, a body refused before authentication): the answer is an error
 *   envelope that holds no tenant data; origins a preflight would admit may read it, so a widget
 *   can tell why it failed.
 * - requests without `Origin` (servers, the WordPress plugin's PHP) are not concerned.
 *
 * `/ws` has no preflight: its upgrade checks `Origin` the same way and closes with 4403.
 * A tenant's list travels with its API key's verification (`api-keys-verify`), so it is cached
 * with the verified key (SF_API_KEY_CACHE_MS) and dropped on `<prefix>.evt.client.<id>.settings`.
 */
export interface CorsOptions {
  /** Allowed origins (`https://example.com`), or `*`. Empty: no cross-origin access. */
  origins: readonly string[];
  /** Request headers a browser may send. */
  allowHeaders?: readonly string[];
  /** Response headers a browser may read. */
  exposeHeaders?: readonly string[];
  /** How long a browser may cache a preflight answer. Default 600 s. */
  maxAgeSeconds?: number;
}

export interface CorsPolicy {
  readonly anyOrigin: boolean;
  readonly origins: ReadonlySet<string>;
  readonly allowHeaders: readonly string[];
  readonly exposeHeaders: readonly string[];
  readonly maxAgeSeconds: number;
}

export const DEFAULT_CORS_ALLOW_HEADERS: readonly string[] = [
  "authorization",
  "content-type",
  "x-api-key",
  "x-request-id",
];

export function parseCorsOptions(options: CorsOptions): CorsPolicy {
  return Object.freeze({
    anyOrigin: options.origins.includes("*"),
    origins: new Set(options.origins.filter((o) => o !== "*").map((o) => o.replace(/\/+$/, ""))),
    allowHeaders: options.allowHeaders ?? DEFAULT_CORS_ALLOW_HEADERS,
    exposeHeaders: options.exposeHeaders ?? ["retry-after", "x-request-id"],
    maxAgeSeconds: options.maxAgeSeconds ?? 600,
  });
}

export function isOriginAllowed(policy: CorsPolicy, origin: string): boolean {
  return policy.anyOrigin || policy.origins.has(origin);
}

/** Whether a page at `origin` may use an API key of a tenant listing `tenantOrigins`. */
export function isOriginAllowedForTenant(
  policy: CorsPolicy,
  tenantOrigins: readonly string[],
  origin: string,
): boolean {
  return isOriginAllowed(policy, origin) || tenantOrigins.includes("*") || tenantOrigins.includes(origin);
}

/** Headers for an ordinary response that `origin` may read. */
export function corsAllowHeaders(policy: CorsPolicy, origin: string): Record<string, string> {
  return {
    "access-control-allow-origin": origin,
    "access-control-expose-headers": policy.exposeHeaders.join(", "),
    vary: "Origin",
  };
}

/** Headers for an ordinary (non-preflight) response to a request carrying `origin` (global list only). */
export function corsResponseHeaders(policy: CorsPolicy, origin: string | undefined): Record<string, string> {
  if (origin === undefined) return {};
  if (!isOriginAllowed(policy, origin)) return { vary: "Origin" };
  return corsAllowHeaders(policy, origin);
}

/** Headers for a successful preflight: only the methods the path really has. */
export function preflightHeaders(
  policy: CorsPolicy,
  origin: string,
  methods: readonly string[],
): Record<string, string> {
  return {
    "access-control-allow-origin": origin,
    "access-control-allow-methods": methods.join(", "),
    "access-control-allow-headers": policy.allowHeaders.join(", "),
    "access-control-max-age": String(policy.maxAgeSeconds),
    vary: "Origin, Access-Control-Request-Method, Access-Control-Request-Headers",
  };
}
