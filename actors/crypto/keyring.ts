/**
 * The master keyring: several AES-256 master keys, each with an id, and the id of the one that
 * encrypts new secrets. Older keys stay in the ring so that secrets written with them keep
 * decrypting while `rotateSecrets` moves everything to the active key (zero downtime).
 *
 * The key bytes never leave this module except through `masterKey()`, which the envelope code
 * uses; `inspect`, `toJSON` and `String()` show only the ids.
 */
import { createHmac, randomBytes } from "node:crypto";
import { inspect } from "node:util";
import { InvalidKeyringError, UnknownKeyIdError } from "./errors.ts";

/** A key id: 1–32 characters of `[A-Za-z0-9_-]` (it is stored next to every ciphertext). */
export const KEY_ID_PATTERN = /^[A-Za-z0-9_-]{1,32}$/;
const MASTER_KEY_BYTES = 32;
const KEY_CHECK_LABEL = "sidekick-forge key check v1";

export interface KeyringOptions {
  /**
   * Master keys by id: 32 bytes as a `Uint8Array`, base64/base64url text, or 64 hex characters.
   * At least one key.
   */
  keys: Readonly<Record<string, string | Uint8Array>>;
  /** The id of the key that encrypts new secrets. Must be one of `keys`. */
  activeKeyId: string;
}

export class Keyring {
  readonly activeKeyId: string;
  readonly keyIds: readonly string[];
  readonly #keys: ReadonlyMap<string, Buffer>;
  readonly #checks: ReadonlyMap<string, string>;

  /** Use `parseKeyringOptions`; the constructor trusts its input. */
  private constructor(keys: Map<string, Buffer>, activeKeyId: string) {
    this.#keys = keys;
    this.#checks = new Map([...keys].map(([id, key]) => [id, keyCheckValue(key)]));
    this.activeKeyId = activeKeyId;
    this.keyIds = Object.freeze([...keys.keys()].sort());
    Object.freeze(this);
  }

  /** @internal Builds a keyring from validated keys; call `parseKeyringOptions` instead. */
  static fromValidated(keys: Map<string, Buffer>, activeKeyId: string): Keyring {
    return new Keyring(keys, activeKeyId);
  }

  has(keyId: string): boolean {
    return this.#keys.has(keyId);
  }

  /** The master key bytes for `keyId`; throws `SF_ERR_UNKNOWN_KEY_ID`. For the envelope code only. */
  masterKey(keyId: string): Buffer {
    const key = this.#keys.get(keyId);
    if (key === undefined) {
      throw new UnknownKeyIdError(`master key id "${keyId}" is not in the keyring`, {
        details: { keyId, known: [...this.keyIds] },
      });
    }
    return key;
  }

  /** A short public check value of a key: tells "wrong key under this id" from tampering. */
  keyCheck(keyId: string): string {
    const check = this.#checks.get(keyId);
    if (check === undefined) {
      throw new UnknownKeyIdError(`master key id "${keyId}" is not in the keyring`, {
        details: { keyId, known: [...this.keyIds] },
      });
    }
    return check;
  }

  toJSON(): { activeKeyId: string; keyIds: readonly string[] } {
    return { activeKeyId: this.activeKeyId, keyIds: this.keyIds };
  }

  toString(): string {
    return `Keyring(active=${this.activeKeyId}, ids=${this.keyIds.join(",")})`;
  }

  [inspect.custom](): string {
    return this.toString();
  }
}

/** 6 bytes of HMAC-SHA256(key, label), base64url: identifies a key without revealing it. */
function keyCheckValue(key: Buffer): string {
  return createHmac("sha256", key).update(KEY_CHECK_LABEL).digest().subarray(0, 6).toString("base64url");
}

function decodeMasterKey(id: string, value: string | Uint8Array): Buffer {
  let bytes: Buffer;
  if (typeof value !== "string") {
    bytes = Buffer.from(value);
  } else {
    const text = value.trim();
    if (/^[0-9a-fA-F]{64}$/.test(text)) bytes = Buffer.from(text, "hex");
    else if (/^[A-Za-z0-9+/_-]+={0,2}$/.test(text)) bytes = Buffer.from(text, "base64");
    else
      throw new InvalidKeyringError(`master key "${id}" is neither base64 nor hex`, {
        details: { keyId: id },
      });
  }
  if (bytes.length !== MASTER_KEY_BYTES) {
    throw new InvalidKeyringError(
      `master key "${id}" must be ${MASTER_KEY_BYTES} bytes, got ${bytes.length}`,
      {
        details: { keyId: id, length: bytes.length },
      },
    );
  }
  return bytes;
}

/** Validates keyring options into a frozen `Keyring`; throws `SF_ERR_INVALID_KEYRING`. */
export function parseKeyringOptions(options: KeyringOptions): Keyring {
  const entries = Object.entries(options.keys);
  if (entries.length === 0) throw new InvalidKeyringError("the keyring needs at least one master key");
  const keys = new Map<string, Buffer>();
  for (const [id, value] of entries) {
    if (!KEY_ID_PATTERN.test(id)) {
      throw new InvalidKeyringError(`master key id "${id}" must match ${String(KEY_ID_PATTERN)}`, {
        details: { keyId: id },
      });
    }
    keys.set(id, decodeMasterKey(id, value));
  }
  if (!keys.has(options.activeKeyId)) {
    throw new InvalidKeyringError(`active key id "${options.activeKeyId}" is not among the keys`, {
      details: { activeKeyId: options.activeKeyId, keyIds: [...keys.keys()] },
    });
  }
  return Keyring.fromValidated(keys, options.activeKeyId);
}

/**
 * Parses the environment form of the keys, `id1:<base64|hex>,id2:<base64|hex>` (whitespace
 * allowed around entries), into `KeyringOptions.keys`. The config module reads the variable.
 */
export function parseMasterKeysSpec(spec: string): Record<string, string> {
  const keys: Record<string, string> = {};
  for (const raw of spec.split(",")) {
    const entry = raw.trim();
    if (entry === "") continue;
    const colon = entry.indexOf(":");
    if (colon <= 0) throw new InvalidKeyringError("master keys must be written as id:key[,id:key…]");
    const id = entry.slice(0, colon).trim();
    if (id in keys)
      throw new InvalidKeyringError(`master key id "${id}" appears twice`, { details: { keyId: id } });
    keys[id] = entry.slice(colon + 1).trim();
  }
  return keys;
}

/** A fresh random master key, base64 (for `sidekick keys new`-style commands). */
export function generateMasterKey(): string {
  return randomBytes(MASTER_KEY_BYTES).toString("base64");
}
