/** Error codes raised by gateway/ (the bus and actor codes live in their own folders). */
import { SfError } from "../bus/index.ts";
import type { SfErrorOptions } from "../bus/index.ts";

export const GatewayErrorCodes = {
  /** The body is not valid JSON. */
  BAD_JSON: "SF_ERR_BAD_JSON",
  /** The body is larger than the configured limit. */
  PAYLOAD_TOO_LARGE: "SF_ERR_PAYLOAD_TOO_LARGE",
  /** No route has this path. */
  NOT_FOUND: "SF_ERR_NOT_FOUND",
  /** A route has this path, but not for this method. */
  METHOD_NOT_ALLOWED: "SF_ERR_METHOD_NOT_ALLOWED",
  /** The body or query does not match the route's schema. */
  VALIDATION_FAILED: "SF_ERR_VALIDATION_FAILED",
  /** A body was sent with a content type other than JSON. */
  UNSUPPORTED_MEDIA_TYPE: "SF_ERR_UNSUPPORTED_MEDIA_TYPE",
  /** The request line cannot be understood (bad percent-encoding, unknown method). */
  BAD_REQUEST: "SF_ERR_BAD_REQUEST",
  /** A CORS preflight from an origin that is not allowed. */
  CORS_ORIGIN_DENIED: "SF_ERR_CORS_ORIGIN_DENIED",
  /** The gateway is draining for shutdown and takes no new requests. */
  SHUTTING_DOWN: "SF_ERR_SHUTTING_DOWN",
  /** A field the mode needs is missing (`message` for text, `room_name` for voice). */
  MISSING_FIELD: "SF_ERR_MISSING_FIELD",
  /** A mode the platform does not serve (`video`). */
  MODE_NOT_SUPPORTED: "SF_ERR_MODE_NOT_SUPPORTED",
  /** The agent's reply did not arrive within the reply deadline. */
  REPLY_TIMEOUT: "SF_ERR_REPLY_TIMEOUT",
  /** The caller's API key or tenant is over its request rate; `Retry-After` says when to come back. */
  RATE_LIMITED: "SF_ERR_RATE_LIMITED",
  /** The caller went away before the reply was ready. */
  CLIENT_GONE: "SF_ERR_CLIENT_GONE",
  /** A console form or HTMX request without the session's CSRF token (or from another site). */
  CSRF_FAILED: "SF_ERR_CSRF_FAILED",
  /** Console login refused: wrong token, email or password, or an account that is not an admin. */
  LOGIN_FAILED: "SF_ERR_LOGIN_FAILED",
  /** The console's session store (NATS KV) cannot be reached. */
  ADMIN_SESSIONS_UNAVAILABLE: "SF_ERR_ADMIN_SESSIONS_UNAVAILABLE",
} as const;

export type GatewayErrorCode = (typeof GatewayErrorCodes)[keyof typeof GatewayErrorCodes];

export class BadJsonError extends SfError {
  override name = "BadJsonError";
  constructor(message: string, options: SfErrorOptions = {}) {
    super(GatewayErrorCodes.BAD_JSON, message, options);
  }
}

export class PayloadTooLargeError extends SfError {
  override name = "PayloadTooLargeError";
  constructor(limitBytes: number, options: SfErrorOptions = {}) {
    super(GatewayErrorCodes.PAYLOAD_TOO_LARGE, `the body is larger than ${limitBytes} bytes`, {
      ...options,
      details: { limit_bytes: limitBytes, ...options.details },
    });
  }
}

export class NotFoundError extends SfError {
  override name = "NotFoundError";
  constructor(message: string, options: SfErrorOptions = {}) {
    super(GatewayErrorCodes.NOT_FOUND, message, options);
  }
}

export class MethodNotAllowedError extends SfError {
  override name = "MethodNotAllowedError";
  readonly allowed: readonly string[];
  constructor(method: string, allowed: readonly string[], options: SfErrorOptions = {}) {
    super(GatewayErrorCodes.METHOD_NOT_ALLOWED, `method ${method} is not allowed here`, {
      ...options,
      details: { allowed: [...allowed], ...options.details },
    });
    this.allowed = allowed;
  }
}

export class ValidationError extends SfError {
  override name = "ValidationError";
  constructor(message: string, options: SfErrorOptions = {}) {
    super(GatewayErrorCodes.VALIDATION_FAILED, message, options);
  }
}

export class UnsupportedMediaTypeError extends SfError {
  override name = "UnsupportedMediaTypeError";
  constructor(message: string, options: SfErrorOptions = {}) {
    super(GatewayErrorCodes.UNSUPPORTED_MEDIA_TYPE, message, options);
  }
}

export class BadRequestError extends SfError {
  override name = "BadRequestError";
  constructor(message: string, options: SfErrorOptions = {}) {
    super(GatewayErrorCodes.BAD_REQUEST, message, options);
  }
}

export class CorsOriginDeniedError extends SfError {
  override name = "CorsOriginDeniedError";
  constructor(origin: string, options: SfErrorOptions = {}) {
    super(GatewayErrorCodes.CORS_ORIGIN_DENIED, "this origin is not allowed", {
      ...options,
      details: { origin, ...options.details },
    });
  }
}

export class ShuttingDownError extends SfError {
  override name = "ShuttingDownError";
  constructor(options: SfErrorOptions = {}) {
    super(GatewayErrorCodes.SHUTTING_DOWN, "the gateway is shutting down", { retryable: true, ...options });
  }
}

export class MissingFieldError extends SfError {
  override name = "MissingFieldError";
  constructor(field: string, mode: string, options: SfErrorOptions = {}) {
    super(GatewayErrorCodes.MISSING_FIELD, `${field} is required for mode ${mode}`, {
      ...options,
      details: { field, mode, ...options.details },
    });
  }
}

export class ModeNotSupportedError extends SfError {
  override name = "ModeNotSupportedError";
  constructor(mode: string, options: SfErrorOptions = {}) {
    super(GatewayErrorCodes.MODE_NOT_SUPPORTED, `mode ${mode} is not supported; use text or voice`, {
      ...options,
      details: { mode, supported: ["text", "voice"], ...options.details },
    });
  }
}

export class ReplyTimeoutError extends SfError {
  override name = "ReplyTimeoutError";
  constructor(waitedMs: number, options: SfErrorOptions = {}) {
    super(GatewayErrorCodes.REPLY_TIMEOUT, `the agent did not reply within ${waitedMs} ms`, {
      retryable: true,
      ...options,
      details: { waited_ms: waitedMs, ...options.details },
    });
  }
}

export class RateLimitedError extends SfError {
  override name = "RateLimitedError";
  constructor(scope: "api_key" | "tenant", limitPerMinute: number, retryAfterSeconds: number) {
    super(
      GatewayErrorCodes.RATE_LIMITED,
      `rate limit of ${limitPerMinute} requests per minute per ${scope}`,
      {
        retryable: true,
        details: { scope, limit_per_minute: limitPerMinute, retry_after_seconds: retryAfterSeconds },
      },
    );
  }
}

export class ClientGoneError extends SfError {
  override name = "ClientGoneError";
  constructor(options: SfErrorOptions = {}) {
    super(GatewayErrorCodes.CLIENT_GONE, "the client went away", options);
  }
}
