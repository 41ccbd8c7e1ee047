/** Error codes raised by actors/ (the transport-level ones live in bus/errors.ts). */
import { SfError } from "../bus/index.ts";
import type { SfErrorOptions } from "../bus/index.ts";

export const ActorErrorCodes = {
  /** A request body that does not fit the operation. */
  INVALID_ARGUMENT: "SF_ERR_INVALID_ARGUMENT",
  /** Process configuration (environment) that cannot be used. */
  CONFIG_INVALID: "SF_ERR_CONFIG_INVALID",
} as const;

export class InvalidArgumentError extends SfError {
  override name = "InvalidArgumentError";
  constructor(message: string, options: SfErrorOptions = {}) {
    super(ActorErrorCodes.INVALID_ARGUMENT, message, options);
  }
}

export class ConfigError extends SfError {
  override name = "ConfigError";
  constructor(message: string, options: SfErrorOptions = {}) {
    super(ActorErrorCodes.CONFIG_INVALID, message, options);
  }
}
