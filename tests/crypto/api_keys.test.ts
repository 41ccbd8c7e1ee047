import { describe, expect, it } from "vitest";
import {
  apiKeyDisplayPrefix,
  generateApiKey,
  hashApiKey,
  isWellFormedApiKey,
  verifyApiKeyHash,
} from "../store/api.ts";

describe("API keys", () => {
  it("api keys - sk_ + 256 random bits, display prefix of 11 characters, SHA-256 hash", () => {
    const keys = Array.from({ length: 50 }, () => generateApiKey());
    expect(new Set(keys.map((k) => k.secret)).size).toBe(50);
    for (const k of keys) {
      expect(k.secret).toMatch(/^sk_[A-Za-z0-9_-]{43}$/);
      expect(Buffer.from(k.secret.slice(3), "base64url")).toHaveLength(32);
      expect(k.displayPrefix).toBe(k.secret.slice(0, 11));
      expect(k.hash).toBe(hashApiKey(k.secret));
      expect(k.hash).toMatch(/^[0-9a-f]{64}$/);
      expect(apiKeyDisplayPrefix(k.secret)).toBe(k.displayPrefix);
    }
  });

  it("api keys - verification accepts only the exact key and tolerates malformed stored hashes", () => {
    const { secret, hash } = generateApiKey();
    expect(verifyApiKeyHash(secret, hash)).toBe(true);
    expect(verifyApiKeyHash(`${secret}x`, hash)).toBe(false);
    expect(verifyApiKeyHash(secret.toUpperCase(), hash)).toBe(false);
    expect(verifyApiKeyHash(secret, "not-a-hash")).toBe(false);
    expect(isWellFormedApiKey("sk_short")).toBe(false);
    expect(apiKeyDisplayPrefix("pk_" + secret.slice(3))).toBeNull();
  });
});
