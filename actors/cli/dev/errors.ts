/** Coded errors of `npm run dev`'s helpers. Remote errors keep the code they came back with. */
import { SfError } from "../../../bus/index.ts";
import type { SfErrorOptions } from "../../../bus/index.ts";

export const DevErrorCodes = {
  /** No actor host answered a platform request before the seeding gave up waiting. */
  PLATFORM_UNREACHABLE: "SF_ERR_PLATFORM_UNREACHABLE",
} as const;

export class PlatformUnreachableError extends SfError {
  override name = "PlatformUnreachableError";
  constructor(message: string, options: SfErrorOptions = {}) {
    super(DevErrorCodes.PLATFORM_UNREACHABLE, message, { retryable: true, ...options });
  }
}
