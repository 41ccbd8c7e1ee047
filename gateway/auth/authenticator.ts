/**
 * Who is calling. Admins present a Supabase Auth JWT (HS256, `role` among the admin roles) or
 * the embedded admin token; tenants present an API key (`Authorization: Bearer sk_…` or
 * `X-API-Key`). No credentials or bad ones answer 401 SF_ERR_UNAUTHENTICATED; valid ones that do
 * not reach the resource answer 403 SF_ERR_FORBIDDEN. The caller is recorded on the request
 * (`req.context.caller`) for the response's CORS headers; on a thin-client route, an API key used
 * from a browser origin its tenant does not list answers 403 SF_ERR_CORS_ORIGIN_DENIED (cors.ts).
 */
import { createHash, timingSafeEqual } from "node:crypto";
import { API_KEY_PREFIX, ForbiddenError, UnauthenticatedError } from "../../actors/index.ts";
import type { GatewayAuthConfig } from "../config.ts";
import { isOriginAllowedForTenant, parseCorsOptions } from "../cors.ts";
import type { CorsPolicy } from "../cors.ts";
import { CorsOriginDeniedError } from "../errors.ts";
import type { GatewayRequest } from "../http_types.ts";
import type { ApiKeyVerifier } from "./api_key_verifier.ts";
import { looksLikeJwt, verifyHs256Jwt } from "./jwt.ts";

export type Principal =
  | { type: "admin"; via: "jwt" | "token"; /** `admin:<subject>`: the audit identity. */ actor: string }
  | {
      type: "api_key";
      keyId: string;
      clientId: string;
      scopes: readonly string[];
      /** The tenant's `settings.cors_origins` (empty when it lists none). */
      corsOrigins: readonly string[];
      actor: string;
    };

export type AdminPrincipal = Extract<Principal, { type: "admin" }>;

const BEARER_RE = /^Bearer[ \t]+(\S+)[ \t]*$/i;
const SUBJECT_CLEAN_RE = /[^A-Za-z0-9_.@:+-]/g;

function digest(value: string): Buffer {
  return createHash("sha256").update(value, "utf8").digest();
}

function missing(): UnauthenticatedError {
  return new UnauthenticatedError("credentials are required", { details: { reason: "missing" } });
}

export class Authenticator {
  readonly #config: GatewayAuthConfig;
  readonly #keys: ApiKeyVerifier;
  readonly #cors: CorsPolicy;
  readonly #adminTokenDigest: Buffer | undefined;

  /** `cors`: the gateway's global CORS policy (default: no origin). */
  constructor(config: GatewayAuthConfig, keys: ApiKeyVerifier, cors?: CorsPolicy) {
    this.#config = config;
    this.#keys = keys;
    this.#cors = cors ?? parseCorsOptions({ origins: [] });
    const token = config.adminToken?.reveal();
    this.#adminTokenDigest = token === undefined ? undefined : digest(token);
  }

  /** The caller (recorded on `req.context`); throws 401 when it presents no credentials or bad ones. */
  async authenticate(req: GatewayRequest): Promise<Principal> {
    const principal = await this.#identify(req);
    if (principal.type === "admin") {
      req.context.caller = { type: "admin" };
      return principal;
    }
    req.context.caller = {
      type: "api_key",
      clientId: principal.clientId,
      corsOrigins: principal.corsOrigins,
    };
    const origin = req.headers["origin"];
    if (req.context.cors === "tenant" && origin !== undefined && !this.originAllowed(principal, origin)) {
      throw new CorsOriginDeniedError(origin, { details: { reason: "tenant" } });
    }
    return principal;
  }

  /** Whether a page at `origin` may use `principal`'s API key (the global list, or its tenant's). */
  originAllowed(principal: Extract<Principal, { type: "api_key" }>, origin: string): boolean {
    return isOriginAllowedForTenant(this.#cors, principal.corsOrigins, origin);
  }

  async #identify(req: GatewayRequest): Promise<Principal> {
    const authorization = req.headers["authorization"];
    let presented: string | undefined;
    if (authorization !== undefined && authorization !== "") {
      const m = BEARER_RE.exec(authorization);
      if (m?.[1] === undefined) {
        throw new UnauthenticatedError("the Authorization header must be `Bearer <token>`", {
          details: { reason: "scheme" },
        });
      }
      presented = m[1];
    }
    const headerKey = req.headers["x-api-key"];
    if (presented === undefined && headerKey !== undefined && headerKey !== "") {
      return this.#apiKey(headerKey.trim(), req.id);
    }
    if (presented === undefined) throw missing();
    if (presented.startsWith(API_KEY_PREFIX)) return this.#apiKey(presented, req.id);
    if (looksLikeJwt(presented)) return this.#jwt(presented);
    return this.#adminToken(presented);
  }

  /**
   * An admin credential typed into (or obtained by) the console's login: the embedded admin token
   * or a Supabase Auth JWT with an admin role. 401/403 otherwise.
   */
  verifyAdminCredential(credential: string): AdminPrincipal {
    const principal = looksLikeJwt(credential) ? this.#jwt(credential) : this.#adminToken(credential);
    if (principal.type !== "admin") throw new ForbiddenError("this credential is not an admin's");
    return principal;
  }

  /** Whether the console can log in with the embedded admin token at all. */
  get adminTokenEnabled(): boolean {
    return this.#adminTokenDigest !== undefined;
  }

  /** Whether admin JWTs (Supabase Auth) are accepted at all. */
  get jwtEnabled(): boolean {
    return this.#config.jwtSecret !== undefined;
  }

  /** An admin, or 401/403. */
  async admin(req: GatewayRequest): Promise<AdminPrincipal> {
    const principal = await this.authenticate(req);
    if (principal.type !== "admin") throw new ForbiddenError("this route needs admin credentials");
    return principal;
  }

  /** An admin, or an API key of `clientId`; 403 for another tenant's key. */
  async tenant(req: GatewayRequest, clientId: string): Promise<Principal> {
    const principal = await this.authenticate(req);
    if (principal.type === "api_key" && principal.clientId !== clientId.toLowerCase()) {
      throw new ForbiddenError("this API key does not belong to that client");
    }
    return principal;
  }

  async #apiKey(key: string, traceId: string): Promise<Principal> {
    const verified = await this.#keys.verify(key, traceId);
    return {
      type: "api_key",
      keyId: verified.keyId,
      clientId: verified.clientId,
      scopes: verified.scopes,
      corsOrigins: verified.corsOrigins ?? [],
      actor: `api_key:${verified.keyId}`,
    };
  }

  #jwt(token: string): Principal {
    const secret = this.#config.jwtSecret?.reveal();
    if (secret === undefined) {
      throw new UnauthenticatedError("the bearer token is not valid", {
        details: { reason: "jwt_disabled" },
      });
    }
    const claims = verifyHs256Jwt(token, secret, {
      nowMs: Date.now(),
      clockSkewMs: this.#config.jwtClockSkewMs,
    });
    const role = claims["role"];
    if (typeof role !== "string" || !this.#config.adminRoles.includes(role)) {
      throw new ForbiddenError("the token's role is not an admin role");
    }
    const sub = typeof claims["sub"] === "string" && claims["sub"] !== "" ? claims["sub"] : role;
    const subject = sub.replace(SUBJECT_CLEAN_RE, "_").slice(0, 128);
    return { type: "admin", via: "jwt", actor: `admin:${subject}` };
  }

  #adminToken(token: string): Principal {
    const expected = this.#adminTokenDigest;
    // Digests have a fixed length, so the comparison time does not depend on the token's.
    const matches = expected !== undefined && timingSafeEqual(digest(token), expected);
    if (!matches)
      throw new UnauthenticatedError("the bearer token is not valid", { details: { reason: "token" } });
    return { type: "admin", via: "token", actor: "admin:token" };
  }
}
