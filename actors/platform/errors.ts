/** Error codes of the platform operations (authentication of API keys, access to a tenant). */
import { SfError } from "../../bus/index.ts";
import type { SfErrorOptions } from "../../bus/index.ts";

export const PlatformErrorCodes = {
  /** No valid credentials: an unknown, revoked or expired API key, a bad token. */
  UNAUTHENTICATED: "SF_ERR_UNAUTHENTICATED",
  /** Valid credentials that do not reach this resource (another tenant's key, a key on an admin route). */
  FORBIDDEN: "SF_ERR_FORBIDDEN",
} as const;

export type PlatformErrorCode = (typeof PlatformErrorCodes)[keyof typeof PlatformErrorCodes];

export class UnauthenticatedError extends SfError {
  override name = "UnauthenticatedError";
  constructor(message: string, options: SfErrorOptions = {}) {
    super(PlatformErrorCodes.UNAUTHENTICATED, message, options);
  }
}

export class ForbiddenError extends SfError {
  override name = "ForbiddenError";
  constructor(message: string, options: SfErrorOptions = {}) {
    super(PlatformErrorCodes.FORBIDDEN, message, options);
  }
}
