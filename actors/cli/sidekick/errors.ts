/** Coded errors of the operator CLI. Remote errors keep the code they came back with. */
import { SfError } from "../../../bus/index.ts";
import type { SfErrorOptions } from "../../../bus/index.ts";

export const CliErrorCodes = {
  /** The command line does not fit the command: exit code 2. */
  USAGE: "SF_ERR_USAGE",
  /** A check or a test the command ran did not pass: exit code 1. */
  CHECK_FAILED: "SF_ERR_CHECK_FAILED",
} as const;

export class UsageError extends SfError {
  override name = "UsageError";
  constructor(message: string, options: SfErrorOptions = {}) {
    super(CliErrorCodes.USAGE, message, options);
  }
}

export class CheckFailedError extends SfError {
  override name = "CheckFailedError";
  constructor(message: string, options: SfErrorOptions = {}) {
    super(CliErrorCodes.CHECK_FAILED, message, options);
  }
}

/** The process exit code for an error: 2 for usage errors, 1 for everything else. */
export function exitCodeOf(err: unknown): number {
  return err instanceof UsageError ? 2 : 1;
}
