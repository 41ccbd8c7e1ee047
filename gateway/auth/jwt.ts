/**
 * Verifying Supabase Auth JWTs: HS256 only (a token naming any other algorithm, `none`
 * included, is refused before its signature is looked at), signature compared in constant
 * time, `exp` required and `nbf` honoured within the configured clock skew.
 */
import { createHmac, timingSafeEqual } from "node:crypto";
import { UnauthenticatedError } from "../../actors/index.ts";

export type JwtClaims = Readonly<Record<string, unknown>>;

export interface VerifyJwtOptions {
  nowMs: number;
  clockSkewMs: number;
}

const SEGMENT_RE = /^[A-Za-z0-9_-]+$/;
/** Tokens longer than this are not JWTs we issue or accept. */
const MAX_TOKEN_LENGTH = 8192;

function refuse(reason: string): UnauthenticatedError {
  return new UnauthenticatedError("the bearer token is not valid", { details: { reason } });
}

function decodeJson(segment: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(segment, "base64url").toString("utf8"));
  } catch (cause) {
    throw new UnauthenticatedError("the bearer token is not valid", {
      cause,
      details: { reason: "malformed" },
    });
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw refuse("malformed");
  return value as Record<string, unknown>;
}

/** True when the token has the shape of a JWT (three base64url segments). */
export function looksLikeJwt(token: string): boolean {
  const parts = token.split(".");
  return parts.length === 3 && parts.every((p) => SEGMENT_RE.test(p));
}

/** The token's claims when it is a valid HS256 JWT signed with `secret`; throws SF_ERR_UNAUTHENTICATED otherwise. */
export function verifyHs256Jwt(token: string, secret: string, options: VerifyJwtOptions): JwtClaims {
  if (token.length > MAX_TOKEN_LENGTH) throw refuse("malformed");
  const parts = token.split(".");
  const [header, payload, signature] = parts;
  if (parts.length !== 3 || header === undefined || payload === undefined || signature === undefined) {
    throw refuse("malformed");
  }
  if (!SEGMENT_RE.test(header) || !SEGMENT_RE.test(payload) || !SEGMENT_RE.test(signature)) {
    throw refuse("malformed");
  }
  const head = decodeJson(header);
  if (head["alg"] !== "HS256") throw refuse("algorithm");
  if (head["typ"] !== undefined && head["typ"] !== "JWT") throw refuse("malformed");
  const expected = createHmac("sha256", secret).update(`${header}.${payload}`).digest();
  const presented = Buffer.from(signature, "base64url");
  if (presented.length !== expected.length || !timingSafeEqual(presented, expected))
    throw refuse("signature");
  const claims = decodeJson(payload);
  const exp = claims["exp"];
  if (typeof exp !== "number" || !Number.isFinite(exp)) throw refuse("no_expiry");
  if (exp * 1000 + options.clockSkewMs <= options.nowMs) throw refuse("expired");
  const nbf = claims["nbf"];
  if (nbf !== undefined && (typeof nbf !== "number" || nbf * 1000 - options.clockSkewMs > options.nowMs)) {
    throw refuse("not_yet_valid");
  }
  return claims;
}

/** Signs claims as an HS256 JWT (tools and tests; the platform itself only verifies). */
export function signHs256Jwt(claims: Record<string, unknown>, secret: string): string {
  const header = Buffer.from(JSON.stringify({ alg: "HS256", typ: "JWT" })).toString("base64url");
  const payload = Buffer.from(JSON.stringify(claims)).toString("base64url");
  const signature = createHmac("sha256", secret).update(`${header}.${payload}`).digest("base64url");
  return `${header}.${payload}.${signature}`;
}
