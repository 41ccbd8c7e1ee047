/**
 * Which HTTP status each error code answers with, and the error envelope every error response
 * carries: `{ "error": { "code", "message", "details" } }`. Codes from the bus (remote errors
 * included), from actors/ and from the gateway itself are all in one table.
 */
import { ActorErrorCodes, PlatformErrorCodes, StoreErrorCodes } from "../actors/index.ts";
import { BusErrorCodes, SfError } from "../bus/index.ts";
import { GatewayErrorCodes } from "./errors.ts";
import { json } from "./http_types.ts";
import type { GatewayResponse } from "./http_types.ts";

export interface StatusRule {
  status: number;
  /** Seconds for a `Retry-After` header, for errors worth retrying later. */
  retryAfterSeconds?: number;
}

export const ERROR_STATUS: Readonly<Record<string, StatusRule>> = Object.freeze({
  [GatewayErrorCodes.BAD_JSON]: { status: 400 },
  [GatewayErrorCodes.VALIDATION_FAILED]: { status: 400 },
  [GatewayErrorCodes.BAD_REQUEST]: { status: 400 },
  [GatewayErrorCodes.CORS_ORIGIN_DENIED]: { status: 403 },
  [GatewayErrorCodes.NOT_FOUND]: { status: 404 },
  [GatewayErrorCodes.METHOD_NOT_ALLOWED]: { status: 405 },
  [GatewayErrorCodes.PAYLOAD_TOO_LARGE]: { status: 413 },
  [GatewayErrorCodes.UNSUPPORTED_MEDIA_TYPE]: { status: 415 },
  [GatewayErrorCodes.SHUTTING_DOWN]: { status: 503, retryAfterSeconds: 1 },
  [ActorErrorCodes.INVALID_ARGUMENT]: { status: 400 },
  [BusErrorCodes.BAD_TENANT]: { status: 400 },
  [BusErrorCodes.BAD_MESSAGE]: { status: 400 },
  [BusErrorCodes.UNKNOWN_OP]: { status: 501 },
  [BusErrorCodes.OVERLOADED]: { status: 503, retryAfterSeconds: 1 },
  [BusErrorCodes.NO_RESPONDERS]: { status: 503, retryAfterSeconds: 1 },
  [BusErrorCodes.UNAVAILABLE]: { status: 503, retryAfterSeconds: 1 },
  [BusErrorCodes.NOT_OWNER]: { status: 503, retryAfterSeconds: 1 },
  [BusErrorCodes.FENCED]: { status: 503, retryAfterSeconds: 1 },
  [BusErrorCodes.CONNECTION_CLOSED]: { status: 503, retryAfterSeconds: 1 },
  [BusErrorCodes.TIMEOUT]: { status: 504 },
  [BusErrorCodes.INTERNAL]: { status: 500 },
  [PlatformErrorCodes.UNAUTHENTICATED]: { status: 401 },
  [PlatformErrorCodes.FORBIDDEN]: { status: 403 },
  [StoreErrorCodes.TENANT_NOT_FOUND]: { status: 404 },
  [StoreErrorCodes.AGENT_NOT_FOUND]: { status: 404 },
  [StoreErrorCodes.ALREADY_EXISTS]: { status: 409 },
  [StoreErrorCodes.INVALID_INPUT]: { status: 400 },
  [StoreErrorCodes.TENANT_DATABASE_NOT_CONFIGURED]: { status: 409 },
  [StoreErrorCodes.DATABASE_UNAVAILABLE]: { status: 503, retryAfterSeconds: 1 },
});

const INTERNAL: StatusRule = { status: 500 };

export function statusForCode(code: string): StatusRule {
  return ERROR_STATUS[code] ?? INTERNAL;
}

export interface ErrorEnvelope {
  error: { code: string; message: string; details: Record<string, unknown> };
}

/**
 * The response for anything a handler (or the pipeline) threw; `status` overrides the table
 * (legacy routes answer 422 for validation). Errors without a code, and codes that map to 500,
 * answer with a generic message: their text stays in the logs.
 */
export function errorResponse(err: unknown, status?: number): GatewayResponse {
  const coded = err instanceof SfError;
  const code = coded ? err.code : BusErrorCodes.INTERNAL;
  const base = statusForCode(code);
  const rule: StatusRule = status === undefined ? base : { ...base, status };
  const exposed = coded && rule.status !== 500;
  const message = exposed ? err.message : "internal error";
  const details = exposed ? (err.details ?? {}) : {};
  const envelope: ErrorEnvelope = { error: { code, message, details } };
  const headers: Record<string, string> = {};
  if (rule.retryAfterSeconds !== undefined) headers["retry-after"] = String(rule.retryAfterSeconds);
  if (code === PlatformErrorCodes.UNAUTHENTICATED)
    headers["www-authenticate"] = 'Bearer realm="sidekick-forge"';
  if (err instanceof SfError && code === GatewayErrorCodes.METHOD_NOT_ALLOWED) {
    const allowed = err.details?.["allowed"];
    if (Array.isArray(allowed)) headers["allow"] = allowed.join(", ");
  }
  return json(rule.status, envelope, headers);
}
