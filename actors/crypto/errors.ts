/**
 * Coded errors of the credential crypto. Messages name key ids and fields, never key material
 * or plaintext, so they are safe to log and to send over the bus.
 */
import { SfError } from "../../bus/index.ts";
import type { SfErrorOptions } from "../../bus/index.ts";

export const CryptoErrorCodes = {
  /** The ciphertext was altered, is malformed, or is bound to another tenant/field. */
  DECRYPT_FAILED: "SF_ERR_DECRYPT_FAILED",
  /** The ciphertext names a master key id the keyring does not hold. */
  UNKNOWN_KEY_ID: "SF_ERR_UNKNOWN_KEY_ID",
  /** The keyring holds the key id, but its key is not the one the ciphertext was made with. */
  MASTER_KEY_MISMATCH: "SF_ERR_MASTER_KEY_MISMATCH",
  /** The keyring configuration is invalid (bad key length, unknown active id, bad spec). */
  INVALID_KEYRING: "SF_ERR_INVALID_KEYRING",
} as const;

export type CryptoErrorCode = (typeof CryptoErrorCodes)[keyof typeof CryptoErrorCodes];

export class DecryptFailedError extends SfError {
  override name = "DecryptFailedError";
  constructor(message: string, options: SfErrorOptions = {}) {
    super(CryptoErrorCodes.DECRYPT_FAILED, message, options);
  }
}

export class UnknownKeyIdError extends SfError {
  override name = "UnknownKeyIdError";
  constructor(message: string, options: SfErrorOptions = {}) {
    super(CryptoErrorCodes.UNKNOWN_KEY_ID, message, options);
  }
}

export class MasterKeyMismatchError extends SfError {
  override name = "MasterKeyMismatchError";
  constructor(message: string, options: SfErrorOptions = {}) {
    super(CryptoErrorCodes.MASTER_KEY_MISMATCH, message, options);
  }
}

export class InvalidKeyringError extends SfError {
  override name = "InvalidKeyringError";
  constructor(message: string, options: SfErrorOptions = {}) {
    super(CryptoErrorCodes.INVALID_KEYRING, message, options);
  }
}
