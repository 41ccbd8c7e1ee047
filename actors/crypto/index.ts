export {
  CryptoErrorCodes,
  DecryptFailedError,
  UnknownKeyIdError,
  MasterKeyMismatchError,
  InvalidKeyringError,
} from "./errors.ts";
export type { CryptoErrorCode } from "./errors.ts";
export {
  Keyring,
  parseKeyringOptions,
  parseMasterKeysSpec,
  generateMasterKey,
  KEY_ID_PATTERN,
} from "./keyring.ts";
export type { KeyringOptions } from "./keyring.ts";
export {
  encryptSecret,
  decryptSecret,
  envelopeKeyId,
  ENVELOPE_PREFIX,
  ENVELOPE_VERSION,
} from "./envelope.ts";
export type { SecretContext } from "./envelope.ts";
export {
  API_KEY_PREFIX,
  generateApiKey,
  hashApiKey,
  apiKeyDisplayPrefix,
  isWellFormedApiKey,
  verifyApiKeyHash,
} from "./api_keys.ts";
export type { GeneratedApiKey } from "./api_keys.ts";
export {
  SECRET_FIELD_NAMES,
  LOG_REDACT_PATHS,
  REDACTED,
  logRedactOptions,
  maskSecret,
  redactSecrets,
  isSecretFieldName,
} from "./redact.ts";
export { rotateSecrets } from "./rotate.ts";
export type {
  RotatableSecrets,
  StoredSecret,
  RotateOptions,
  RotationReport,
  RotationFailure,
} from "./rotate.ts";
