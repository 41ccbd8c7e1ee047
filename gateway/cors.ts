/**
 * CORS for thin clients: an allow-list of origins (`*` allows any), preflight answers, and the
 * headers added to ordinary responses. Per-tenant origins come later, with tenant routes.
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

/** Headers for an ordinary (non-preflight) response to a request carrying `origin`. */
export function corsResponseHeaders(policy: CorsPolicy, origin: string | undefined): Record<string, string> {
  if (origin === undefined) return {};
  if (!isOriginAllowed(policy, origin)) return { vary: "Origin" };
  return {
    "access-control-allow-origin": origin,
    "access-control-expose-headers": policy.exposeHeaders.join(", "),
    vary: "Origin",
  };
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
