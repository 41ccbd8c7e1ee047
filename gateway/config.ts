/**
 * The gateway's configuration: the one place that reads the environment. Everything else
 * takes the parsed, frozen object.
 */
import { ConfigError, envInt as int } from "../actors/index.ts";
import type { Env } from "../actors/index.ts";

export interface GatewayConfig {
  readonly natsUrl: string;
  readonly subjectPrefix: string;
  readonly partitions: number;
  /** HTTP port; 0 picks a free one (the bound port is logged). */
  readonly port: number;
  readonly host: string;
  readonly maxBodyBytes: number;
  /** Largest document upload (SF_GATEWAY_MAX_UPLOAD_BYTES); default 6 MiB, below NATS max_payload. */
  readonly maxUploadBytes: number;
  /** Allowed CORS origins for every route; `*` allows any. Tenants add their own (see cors.ts). */
  readonly corsOrigins: readonly string[];
  /** How long "does some tenant list this origin" is reused for preflights (SF_GATEWAY_CORS_CACHE_MS, default 10 s). */
  readonly corsCacheMs: number;
  readonly logLevel: string;
  /** How long shutdown waits for in-flight requests. */
  readonly shutdownGraceMs: number;
  /** Overall deadline of one NATS request made for an HTTP request (retries included). */
  readonly requestTimeoutMs: number;
  /** Deadline of a `trigger` request: until a worker claims the job (SF_GATEWAY_TRIGGER_TIMEOUT_MS, default 30 s). */
  readonly triggerTimeoutMs: number;
  /**
   * Upper bound of one attempt of a `trigger` request (SF_GATEWAY_TRIGGER_ATTEMPT_MS, default
   * 1.5 s: half the default lease TTL, SF_LEASE_TTL_MS). An attempt that gets no answer is sent
   * again with the same request and job id: the owner that is still waiting for the claim attaches
   * it to the same job, and an owner that took the tenant over from a frozen or dead host answers
   * it, so a caller waits about a lease TTL for a lost owner rather than the whole trigger deadline.
   */
  readonly triggerAttemptMs: number;
  /** Overall deadline of a text reply, trigger included (SF_GATEWAY_REPLY_TIMEOUT_MS, default 120 s). */
  readonly replyTimeoutMs: number;
  readonly rateLimit: GatewayRateLimitConfig;
  readonly ws: GatewayWsConfig;
  readonly auth: GatewayAuthConfig;
  readonly admin: GatewayAdminConfig;
  /** Replicas of the KV buckets the gateway owns (rate limits, console sessions): SF_STREAM_REPLICAS, as the hosts. */
  readonly streamReplicas: number;
}

export interface GatewayRateLimitConfig {
  /** Trigger requests per minute per API key (SF_RATE_LIMIT_PER_MINUTE_KEY, default 600; 0 = no limit). */
  readonly perMinuteKey: number;
  /** Trigger requests per minute per tenant (SF_RATE_LIMIT_PER_MINUTE_TENANT, default 3000; 0 = no limit). */
  readonly perMinuteTenant: number;
  /** NATS KV bucket holding the token buckets, shared by every gateway (SF_RATE_LIMIT_BUCKET, default `sf_rate`). */
  readonly kvBucket: string;
}

export interface GatewayWsConfig {
  /** Largest inbound WebSocket message (SF_WS_MAX_PAYLOAD_BYTES, default 64 KiB); larger closes with 1009. */
  readonly maxPayloadBytes: number;
  /** Seconds without traffic before uWS pings/closes (SF_WS_IDLE_TIMEOUT_S, default 60; multiple of 4 rounded by uWS). */
  readonly idleTimeoutSeconds: number;
  /** Bytes queued for a slow reader before its socket is closed with 1008 (SF_WS_MAX_BACKPRESSURE_BYTES, default 1 MiB). */
  readonly maxBackpressureBytes: number;
  /** Replies one connection may wait on at once (SF_WS_MAX_IN_FLIGHT, default 4). */
  readonly maxInFlight: number;
}

/**
 * A secret from the environment: its value is read only through `reveal()`, and it serialises
 * (JSON, util.inspect, template strings) as `[REDACTED]`, so logging the config leaks nothing.
 */
export class SecretValue {
  readonly #value: string;
  constructor(value: string) {
    this.#value = value;
  }
  reveal(): string {
    return this.#value;
  }
  toJSON(): string {
    return "[REDACTED]";
  }
  toString(): string {
    return "[REDACTED]";
  }
  [Symbol.for("nodejs.util.inspect.custom")](): string {
    return "[REDACTED]";
  }
}

export interface GatewayAuthConfig {
  /** SF_ADMIN_TOKEN: the embedded admin token (compared in constant time); unset: no token login. */
  readonly adminToken: SecretValue | undefined;
  /** SF_JWT_SECRET: the platform's Supabase Auth JWT secret (HS256); unset: no JWT login. */
  readonly jwtSecret: SecretValue | undefined;
  /** JWT `role` claims that are admins: `service_role` plus SF_JWT_ADMIN_ROLES (default `sf_admin`). */
  readonly adminRoles: readonly string[];
  /** Tolerance for `exp`/`nbf` against this host's clock (SF_JWT_CLOCK_SKEW_MS, default 30 s). */
  readonly jwtClockSkewMs: number;
  /** How long a verified API key is trusted without asking again (SF_API_KEY_CACHE_MS, 0–10 s, default 3 s). */
  readonly apiKeyCacheMs: number;
}

/** The operator's console at /admin (gateway/admin/). */
export interface GatewayAdminConfig {
  /** NATS KV bucket of console sessions, shared by every gateway (SF_ADMIN_SESSION_BUCKET, default `sf_admin_sessions`). */
  readonly sessionBucket: string;
  /** A session unused this long ends (SF_ADMIN_IDLE_TIMEOUT_MS, default 30 min). */
  readonly idleTimeoutMs: number;
  /** A session ends this long after login however busy it is (SF_ADMIN_SESSION_MAX_MS, default 12 h). */
  readonly maxSessionMs: number;
  /** Session cookie sent with `Secure` (SF_ADMIN_COOKIE_SECURE, default true; browsers accept it on loopback http). */
  readonly cookieSecure: boolean;
  /** The platform's Supabase (SF_SUPABASE_URL): email + password login through Supabase Auth; unset: token login only. */
  readonly supabaseUrl: string | undefined;
  /** The platform Supabase's anon key (SF_SUPABASE_ANON_KEY), needed with SF_SUPABASE_URL. */
  readonly supabaseAnonKey: SecretValue | undefined;
}

const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"];

function origins(raw: string | undefined): string[] {
  if (raw === undefined || raw.trim() === "") return [];
  const list = raw
    .split(",")
    .map((o) => o.trim().replace(/\/+$/, ""))
    .filter((o) => o !== "");
  for (const o of list) {
    if (o === "*") continue;
    let url: URL;
    try {
      url = new URL(o);
    } catch (err) {
      throw new ConfigError(`SF_GATEWAY_CORS_ORIGINS: ${JSON.stringify(o)} is not an origin`, { cause: err });
    }
    if (url.origin !== o) {
      throw new ConfigError(
        `SF_GATEWAY_CORS_ORIGINS: ${JSON.stringify(o)} must be scheme://host[:port] only`,
      );
    }
  }
  return list;
}

function secret(env: Env, name: string, minLength: number): SecretValue | undefined {
  const raw = env[name];
  if (raw === undefined || raw === "") return undefined;
  if (raw.length < minLength) throw new ConfigError(`${name} must be at least ${minLength} characters`);
  return new SecretValue(raw);
}

function roles(raw: string | undefined): string[] {
  const extra = (raw ?? "sf_admin")
    .split(",")
    .map((r) => r.trim())
    .filter((r) => r !== "");
  for (const r of extra) {
    if (!/^[A-Za-z0-9_.:-]{1,64}$/.test(r))
      throw new ConfigError(`SF_JWT_ADMIN_ROLES: ${JSON.stringify(r)} is not a role name`);
  }
  return [...new Set(["service_role", ...extra])];
}

function parseAuth(env: Env): GatewayAuthConfig {
  return Object.freeze({
    adminToken: secret(env, "SF_ADMIN_TOKEN", 16),
    jwtSecret: secret(env, "SF_JWT_SECRET", 32),
    adminRoles: Object.freeze(roles(env["SF_JWT_ADMIN_ROLES"])),
    jwtClockSkewMs: int(env, "SF_JWT_CLOCK_SKEW_MS", 30_000, 0, 300_000),
    apiKeyCacheMs: int(env, "SF_API_KEY_CACHE_MS", 3000, 0, 10_000),
  });
}

export function parseGatewayConfig(env: Env = process.env): GatewayConfig {
  const logLevel = env["SF_LOG_LEVEL"] ?? "info";
  if (!LOG_LEVELS.includes(logLevel)) {
    throw new ConfigError(`SF_LOG_LEVEL must be one of ${LOG_LEVELS.join(", ")}`);
  }
  return Object.freeze({
    natsUrl: env["NATS_URL"] ?? "nats://127.0.0.1:4222",
    subjectPrefix: env["SF_SUBJECT_PREFIX"] ?? "sf",
    partitions: int(env, "SF_PARTITIONS", 256, 1, 65_536),
    port: int(env, "SF_GATEWAY_PORT", 8080, 0, 65_535),
    host: env["SF_GATEWAY_HOST"] ?? "127.0.0.1",
    maxBodyBytes: int(env, "SF_GATEWAY_MAX_BODY_BYTES", 1024 * 1024, 1, 1024 * 1024 * 1024),
    maxUploadBytes: int(env, "SF_GATEWAY_MAX_UPLOAD_BYTES", 6 * 1024 * 1024, 1, 7 * 1024 * 1024),
    corsOrigins: Object.freeze(origins(env["SF_GATEWAY_CORS_ORIGINS"])),
    corsCacheMs: int(env, "SF_GATEWAY_CORS_CACHE_MS", 10_000, 0, 300_000),
    logLevel,
    shutdownGraceMs: int(env, "SF_GATEWAY_SHUTDOWN_GRACE_MS", 10_000, 0, 600_000),
    requestTimeoutMs: int(env, "SF_GATEWAY_REQUEST_TIMEOUT_MS", 5000, 100, 120_000),
    triggerTimeoutMs: int(env, "SF_GATEWAY_TRIGGER_TIMEOUT_MS", 30_000, 100, 600_000),
    triggerAttemptMs: int(env, "SF_GATEWAY_TRIGGER_ATTEMPT_MS", 1500, 100, 600_000),
    replyTimeoutMs: int(env, "SF_GATEWAY_REPLY_TIMEOUT_MS", 120_000, 100, 3_600_000),
    rateLimit: Object.freeze({
      perMinuteKey: int(env, "SF_RATE_LIMIT_PER_MINUTE_KEY", 600, 0, 1_000_000),
      perMinuteTenant: int(env, "SF_RATE_LIMIT_PER_MINUTE_TENANT", 3000, 0, 10_000_000),
      kvBucket: bucketName(env["SF_RATE_LIMIT_BUCKET"] ?? "sf_rate"),
    }),
    ws: Object.freeze({
      maxPayloadBytes: int(env, "SF_WS_MAX_PAYLOAD_BYTES", 64 * 1024, 256, 16 * 1024 * 1024),
      idleTimeoutSeconds: int(env, "SF_WS_IDLE_TIMEOUT_S", 60, 8, 960),
      maxBackpressureBytes: int(env, "SF_WS_MAX_BACKPRESSURE_BYTES", 1024 * 1024, 1024, 256 * 1024 * 1024),
      maxInFlight: int(env, "SF_WS_MAX_IN_FLIGHT", 4, 1, 1000),
    }),
    auth: parseAuth(env),
    admin: parseAdmin(env),
    streamReplicas: int(env, "SF_STREAM_REPLICAS", 1, 1, 5),
  });
}

function parseAdmin(env: Env): GatewayAdminConfig {
  const supabaseUrl = env["SF_SUPABASE_URL"]?.trim() || undefined;
  const supabaseAnonKey = secret(env, "SF_SUPABASE_ANON_KEY", 16);
  if (supabaseUrl !== undefined) {
    let url: URL;
    try {
      url = new URL(supabaseUrl);
    } catch (err) {
      throw new ConfigError("SF_SUPABASE_URL must be an http(s) URL", { cause: err });
    }
    if (url.protocol !== "http:" && url.protocol !== "https:")
      throw new ConfigError("SF_SUPABASE_URL must be an http(s) URL");
    if (supabaseAnonKey === undefined)
      throw new ConfigError("SF_SUPABASE_URL is set: SF_SUPABASE_ANON_KEY is required with it");
  }
  const secure = (env["SF_ADMIN_COOKIE_SECURE"] ?? "true").trim().toLowerCase();
  if (secure !== "true" && secure !== "false")
    throw new ConfigError("SF_ADMIN_COOKIE_SECURE must be true or false");
  return Object.freeze({
    sessionBucket: bucketName(
      env["SF_ADMIN_SESSION_BUCKET"] ?? "sf_admin_sessions",
      "SF_ADMIN_SESSION_BUCKET",
    ),
    idleTimeoutMs: int(env, "SF_ADMIN_IDLE_TIMEOUT_MS", 30 * 60_000, 10_000, 24 * 3_600_000),
    maxSessionMs: int(env, "SF_ADMIN_SESSION_MAX_MS", 12 * 3_600_000, 60_000, 7 * 24 * 3_600_000),
    cookieSecure: secure === "true",
    supabaseUrl,
    supabaseAnonKey,
  });
}

function bucketName(raw: string, name = "SF_RATE_LIMIT_BUCKET"): string {
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(raw)) throw new ConfigError(`${name} must be a KV bucket name`);
  return raw;
}
