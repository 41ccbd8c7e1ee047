/**
 * Which HTTP status each error code answers with, and the error envelope every error response
 * carries: `{ "error": { "code", "message", "details" } }`. Codes from the bus (remote errors
 * included), from actors/ and from the gateway itself are all in one table.
 */
import {
  ActorErrorCodes,
  DispatchErrorCodes,
  DispatchOpErrorCodes,
  PlatformErrorCodes,
  StoreErrorCodes,
} from "../actors/index.ts";
import { BusErrorCodes, natsUnavailableError, SfError } from "../bus/index.ts";
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
  [GatewayErrorCodes.CSRF_FAILED]: { status: 403 },
  [GatewayErrorCodes.LOGIN_FAILED]: { status: 401 },
  [GatewayErrorCodes.ADMIN_SESSIONS_UNAVAILABLE]: { status: 503, retryAfterSeconds: 1 },
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
  [StoreErrorCodes.VECTOR_UNAVAILABLE]: { status: 409 },
  [StoreErrorCodes.EMBEDDING_DIMENSION_MISMATCH]: { status: 409 },
  [StoreErrorCodes.ALREADY_EXISTS]: { status: 409 },
  [StoreErrorCodes.INVALID_INPUT]: { status: 400 },
  [StoreErrorCodes.TENANT_DATABASE_NOT_CONFIGURED]: { status: 409 },
  [StoreErrorCodes.DATABASE_UNAVAILABLE]: { status: 503, retryAfterSeconds: 1 },
  // A request that began on a tenant database handle closed under it (the tenant's database
  // configuration changed): a retry opens the new one.
  [StoreErrorCodes.STORE_CLOSED]: { status: 503, retryAfterSeconds: 1 },
  // trigger-agent: the gateway's checks, the tenant actor's and the dispatcher's answers.
  [GatewayErrorCodes.MISSING_FIELD]: { status: 400 },
  [GatewayErrorCodes.MODE_NOT_SUPPORTED]: { status: 400 },
  [GatewayErrorCodes.REPLY_TIMEOUT]: { status: 504 },
  [GatewayErrorCodes.RATE_LIMITED]: { status: 429, retryAfterSeconds: 1 },
  [GatewayErrorCodes.CLIENT_GONE]: { status: 499 },
  SF_ERR_RATE_LIMIT_UNAVAILABLE: { status: 503, retryAfterSeconds: 1 },
  [DispatchOpErrorCodes.AGENT_DISABLED]: { status: 400 },
  [DispatchOpErrorCodes.MODE_DISABLED]: { status: 400 },
  [DispatchOpErrorCodes.MODE_UNAVAILABLE]: { status: 501 },
  [DispatchOpErrorCodes.QUOTA_EXCEEDED]: { status: 429, retryAfterSeconds: 1 },
  [DispatchOpErrorCodes.IDEMPOTENCY_KEY_REUSED]: { status: 409 },
  [DispatchOpErrorCodes.JOB_RESULT_UNAVAILABLE]: { status: 502 },
  [DispatchErrorCodes.NO_AGENT_CAPACITY]: { status: 503, retryAfterSeconds: 2 },
  [DispatchErrorCodes.JOB_FAILED]: { status: 502 },
  SF_ERR_CONVERSATION_NOT_FOUND: { status: 404 },
  // Errors a worker reports for a job (agent-worker/errors.ts): the tenant's provider setup or the provider.
  SF_ERR_PROVIDER_MISCONFIGURED: { status: 409 },
  SF_ERR_PROVIDER_AUTH: { status: 502 },
  SF_ERR_PROVIDER_RATE_LIMITED: { status: 503, retryAfterSeconds: 5 },
  SF_ERR_PROVIDER_UNAVAILABLE: { status: 502 },
  SF_ERR_PROVIDER_REQUEST_REJECTED: { status: 502 },
  SF_ERR_PROVIDER_BAD_RESPONSE: { status: 502 },
  SF_ERR_PROVIDER_STREAM_INTERRUPTED: { status: 502 },
  SF_ERR_PROVIDER_TIMEOUT: { status: 504 },
  // Voice (actors/voice): the tenant's LiveKit setup or server.
  SF_ERR_LIVEKIT_NOT_CONFIGURED: { status: 409 },
  SF_ERR_LIVEKIT_UNAVAILABLE: { status: 503, retryAfterSeconds: 1 },
  SF_ERR_ROOM_CONFLICT: { status: 409 },
  // Documents and retrieval (actors/tenant/document_ops.ts, agent-worker/rag).
  SF_ERR_EMBEDDINGS_STALE: { status: 409 },
  SF_ERR_EMBEDDINGS_NOT_CONFIGURED: { status: 409 },
  SF_ERR_STALE_JOB: { status: 409 },
  SF_ERR_DOCUMENT_UNREADABLE: { status: 422 },
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
export function errorResponse(thrown: unknown, status?: number): GatewayResponse {
  // NATS or JetStream not answering (a restart, a leader election) is a 503 to retry, not a bug.
  const err = thrown instanceof SfError ? thrown : (natsUnavailableError(thrown) ?? thrown);
  const coded = err instanceof SfError;
  const code = coded ? err.code : BusErrorCodes.INTERNAL;
  const base = statusForCode(code);
  const rule: StatusRule = status === undefined ? base : { ...base, status };
  const exposed = coded && rule.status !== 500;
  const message = exposed ? err.message : "internal error";
  const details = exposed ? (err.details ?? {}) : {};
  const envelope: ErrorEnvelope = { error: { code, message, details } };
  const headers: Record<string, string> = {};
  const dynamicRetry = exposed ? details["retry_after_seconds"] : undefined;
  if (typeof dynamicRetry === "number" && Number.isFinite(dynamicRetry) && dynamicRetry > 0) {
    headers["retry-after"] = String(Math.ceil(dynamicRetry));
  } else if (rule.retryAfterSeconds !== undefined) {
    headers["retry-after"] = String(rule.retryAfterSeconds);
  }
  if (code === PlatformErrorCodes.UNAUTHENTICATED)
    headers["www-authenticate"] = 'Bearer realm="sidekick-forge"';
  if (err instanceof SfError && code === GatewayErrorCodes.METHOD_NOT_ALLOWED) {
    const allowed = err.details?.["allowed"];
    if (Array.isArray(allowed)) headers["allow"] = allowed.join(", ");
  }
  return json(rule.status, envelope, headers);
}

/** The code and message a client may see for an error (what the envelope would carry). */
export function publicError(err: unknown): ErrorEnvelope["error"] & { status: number } {
  const response = errorResponse(err);
  const envelope = (response.body as { type: "json"; value: ErrorEnvelope }).value;
  return { ...envelope.error, status: response.status };
}
