/**
 * Platform API keys: `sk_` + 32 random bytes in base64url (256 bits). The full key is shown
 * once, at creation; the platform stores only its SHA-256 hash and a short display prefix,
 * which is also the lookup key. Verification compares hashes with `timingSafeEqual`.
 */
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";

export const API_KEY_PREFIX = "sk_";
const API_KEY_RANDOM_BYTES = 32;
/** Characters of the random part kept in the display prefix (after `sk_`). */
const DISPLAY_CHARS = 8;
const API_KEY_PATTERN = /^sk_[A-Za-z0-9_-]{43}$/;

export interface GeneratedApiKey {
  /** The full key: give it to the user once, never store or log it. */
  secret: string;
  /** `sk_` + the first 8 characters: stored, shown in listings, used for lookup. */
  displayPrefix: string;
  /** Hex SHA-256 of the full key: stored. */
  hash: string;
}

export function isWellFormedApiKey(value: string): boolean {
  return API_KEY_PATTERN.test(value);
}

export function hashApiKey(secret: string): string {
  return createHash("sha256").update(secret, "utf8").digest("hex");
}

/** The display/lookup prefix of a key, or null when the key is not well formed. */
export function apiKeyDisplayPrefix(secret: string): string | null {
  if (!isWellFormedApiKey(secret)) return null;
  return secret.slice(0, API_KEY_PREFIX.length + DISPLAY_CHARS);
}

export function generateApiKey(): GeneratedApiKey {
  const secret = API_KEY_PREFIX + randomBytes(API_KEY_RANDOM_BYTES).toString("base64url");
  return {
    secret,
    displayPrefix: secret.slice(0, API_KEY_PREFIX.length + DISPLAY_CHARS),
    hash: hashApiKey(secret),
  };
}

/** Constant-time check of a presented key against a stored hex hash. */
export function verifyApiKeyHash(secret: string, storedHashHex: string): boolean {
  const presented = createHash("sha256").update(secret, "utf8").digest();
  if (!/^[0-9a-f]{64}$/i.test(storedHashHex)) return false;
  const stored = Buffer.from(storedHashHex, "hex");
  return timingSafeEqual(presented, stored);
}
