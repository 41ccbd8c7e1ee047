/**
 * AES-256-GCM envelope encryption of tenant secrets.
 *
 * Each secret gets its own random 256-bit data key; the plaintext is sealed with the data key,
 * and the data key is sealed with the active master key. Both seals carry associated data that
 * binds them to the tenant and the field, so a ciphertext copied to another tenant or field
 * does not open. The text form is
 *
 *   sfenc:v1:<keyId>:<keyCheck>:<wrapIv>:<wrappedKey+tag>:<iv>:<ciphertext+tag>
 *
 * (base64url parts). `keyCheck` is a short HMAC of the master key: it lets a wrong master key
 * under the right id fail with SF_ERR_MASTER_KEY_MISMATCH instead of a generic decrypt error.
 */
import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import { DecryptFailedError, MasterKeyMismatchError } from "./errors.ts";
import type { Keyring } from "./keyring.ts";

export const ENVELOPE_PREFIX = "sfenc";
export const ENVELOPE_VERSION = "v1";
const IV_BYTES = 12;
const TAG_BYTES = 16;
const DATA_KEY_BYTES = 32;

/** What a secret belongs to; bound into the ciphertext as associated data. */
export interface SecretContext {
  tenantId: string;
  /** e.g. `client_secrets:livekit`, `provider_keys:groq`. */
  field: string;
}

interface ParsedEnvelope {
  keyId: string;
  keyCheck: string;
  wrapIv: Buffer;
  wrappedKey: Buffer;
  iv: Buffer;
  sealed: Buffer;
}

function dataAad(ctx: SecretContext): Buffer {
  return Buffer.from(
    JSON.stringify([`${ENVELOPE_PREFIX}:${ENVELOPE_VERSION}:data`, ctx.tenantId, ctx.field]),
  );
}

function keyAad(keyId: string, ctx: SecretContext): Buffer {
  return Buffer.from(
    JSON.stringify([`${ENVELOPE_PREFIX}:${ENVELOPE_VERSION}:key`, keyId, ctx.tenantId, ctx.field]),
  );
}

function seal(key: Buffer, iv: Buffer, aad: Buffer, plaintext: Buffer): Buffer {
  const cipher = createCipheriv("aes-256-gcm", key, iv, { authTagLength: TAG_BYTES });
  cipher.setAAD(aad);
  return Buffer.concat([cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
}

function open(key: Buffer, iv: Buffer, aad: Buffer, sealed: Buffer): Buffer {
  const decipher = createDecipheriv("aes-256-gcm", key, iv, { authTagLength: TAG_BYTES });
  decipher.setAAD(aad);
  decipher.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES));
  return Buffer.concat([decipher.update(sealed.subarray(0, sealed.length - TAG_BYTES)), decipher.final()]);
}

/** Seals `plaintext` under the keyring's active key. */
export function encryptSecret(keyring: Keyring, plaintext: string, ctx: SecretContext): string {
  const keyId = keyring.activeKeyId;
  const masterKey = keyring.masterKey(keyId);
  const dataKey = randomBytes(DATA_KEY_BYTES);
  try {
    const wrapIv = randomBytes(IV_BYTES);
    const wrappedKey = seal(masterKey, wrapIv, keyAad(keyId, ctx), dataKey);
    const iv = randomBytes(IV_BYTES);
    const sealed = seal(dataKey, iv, dataAad(ctx), Buffer.from(plaintext, "utf8"));
    return [
      ENVELOPE_PREFIX,
      ENVELOPE_VERSION,
      keyId,
      keyring.keyCheck(keyId),
      wrapIv.toString("base64url"),
      wrappedKey.toString("base64url"),
      iv.toString("base64url"),
      sealed.toString("base64url"),
    ].join(":");
  } finally {
    dataKey.fill(0);
  }
}

const B64URL = /^[A-Za-z0-9_-]*$/;

function parseEnvelope(envelope: string, ctx: SecretContext): ParsedEnvelope {
  const parts = envelope.split(":");
  const malformed = (why: string): DecryptFailedError =>
    new DecryptFailedError(`secret ${ctx.field} of tenant ${ctx.tenantId} is not a valid envelope (${why})`, {
      details: { tenantId: ctx.tenantId, field: ctx.field, reason: "malformed" },
    });
  if (parts.length !== 8) throw malformed("wrong number of parts");
  const [prefix, version, keyId, keyCheck, wrapIv, wrappedKey, iv, sealed] = parts as [
    string,
    string,
    string,
    string,
    string,
    string,
    string,
    string,
  ];
  if (prefix !== ENVELOPE_PREFIX) throw malformed("unknown prefix");
  if (version !== ENVELOPE_VERSION) throw malformed(`unsupported version ${version}`);
  for (const part of [keyCheck, wrapIv, wrappedKey, iv, sealed]) {
    if (!B64URL.test(part)) throw malformed("bad encoding");
  }
  const parsed: ParsedEnvelope = {
    keyId,
    keyCheck,
    wrapIv: Buffer.from(wrapIv, "base64url"),
    wrappedKey: Buffer.from(wrappedKey, "base64url"),
    iv: Buffer.from(iv, "base64url"),
    sealed: Buffer.from(sealed, "base64url"),
  };
  if (parsed.wrapIv.length !== IV_BYTES || parsed.iv.length !== IV_BYTES) throw malformed("bad iv");
  if (parsed.wrappedKey.length !== DATA_KEY_BYTES + TAG_BYTES) throw malformed("bad wrapped key");
  if (parsed.sealed.length < TAG_BYTES) throw malformed("truncated ciphertext");
  return parsed;
}

/** The master key id an envelope was sealed with (no decryption). */
export function envelopeKeyId(envelope: string): string | null {
  const parts = envelope.split(":");
  if (parts.length !== 8 || parts[0] !== ENVELOPE_PREFIX) return null;
  return parts[2] ?? null;
}

/**
 * Opens an envelope. Throws `SF_ERR_UNKNOWN_KEY_ID` (key id not in the ring),
 * `SF_ERR_MASTER_KEY_MISMATCH` (a different key under that id) or `SF_ERR_DECRYPT_FAILED`
 * (tampered, malformed, or bound to another tenant/field).
 */
export function decryptSecret(keyring: Keyring, envelope: string, ctx: SecretContext): string {
  const parsed = parseEnvelope(envelope, ctx);
  const masterKey = keyring.masterKey(parsed.keyId);
  if (keyring.keyCheck(parsed.keyId) !== parsed.keyCheck) {
    throw new MasterKeyMismatchError(
      `master key "${parsed.keyId}" in the keyring is not the key that sealed ${ctx.field} of tenant ${ctx.tenantId}`,
      { details: { tenantId: ctx.tenantId, field: ctx.field, keyId: parsed.keyId } },
    );
  }
  let dataKey: Buffer;
  try {
    dataKey = open(masterKey, parsed.wrapIv, keyAad(parsed.keyId, ctx), parsed.wrappedKey);
  } catch (cause) {
    throw new DecryptFailedError(`data key of ${ctx.field} (tenant ${ctx.tenantId}) failed authentication`, {
      cause,
      details: { tenantId: ctx.tenantId, field: ctx.field, keyId: parsed.keyId, reason: "authentication" },
    });
  }
  try {
    return open(dataKey, parsed.iv, dataAad(ctx), parsed.sealed).toString("utf8");
  } catch (cause) {
    throw new DecryptFailedError(`secret ${ctx.field} of tenant ${ctx.tenantId} failed authentication`, {
      cause,
      details: { tenantId: ctx.tenantId, field: ctx.field, keyId: parsed.keyId, reason: "authentication" },
    });
  } finally {
    dataKey.fill(0);
  }
}
