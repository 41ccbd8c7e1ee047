import { describe, expect, it } from "vitest";
import { randomBytes } from "node:crypto";
import {
  decryptSecret,
  encryptSecret,
  envelopeKeyId,
  generateMasterKey,
  parseKeyringOptions,
  parseMasterKeysSpec,
} from "../store/api.ts";

const ctx = { tenantId: "tenant-1", field: "client_secrets:livekit" };

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    return (err as { code?: string }).code ?? "no code";
  }
  return "no error";
}

function flipChar(text: string, index: number): string {
  const c = text[index];
  return text.slice(0, index) + (c === "A" ? "B" : "A") + text.slice(index + 1);
}

describe("envelope encryption (AES-256-GCM, per-secret data key)", () => {
  const k1 = generateMasterKey();
  const k2 = generateMasterKey();
  const ring = parseKeyringOptions({ keys: { k1, k2 }, activeKeyId: "k2" });

  it("envelope - round trips under the active key and names it; each seal is different", () => {
    const a = encryptSecret(ring, "s3cr3t value ✓", ctx);
    const b = encryptSecret(ring, "s3cr3t value ✓", ctx);
    expect(a).not.toBe(b);
    expect(envelopeKeyId(a)).toBe("k2");
    expect(a).not.toContain("s3cr3t");
    expect(decryptSecret(ring, a, ctx)).toBe("s3cr3t value ✓");
  });

  it("envelope - any tampered part fails with SF_ERR_DECRYPT_FAILED", () => {
    const sealed = encryptSecret(ring, "value", ctx);
    const parts = sealed.split(":");
    for (const index of [4, 5, 6, 7]) {
      const changed = [...parts];
      changed[index] = flipChar(changed[index] ?? "", 2);
      expect(codeOf(() => decryptSecret(ring, changed.join(":"), ctx))).toBe("SF_ERR_DECRYPT_FAILED");
    }
    expect(codeOf(() => decryptSecret(ring, sealed.slice(0, -4), ctx))).toBe("SF_ERR_DECRYPT_FAILED");
    expect(codeOf(() => decryptSecret(ring, "not an envelope", ctx))).toBe("SF_ERR_DECRYPT_FAILED");
  });

  it("envelope - a ciphertext bound to another tenant or field does not open", () => {
    const sealed = encryptSecret(ring, "value", ctx);
    expect(codeOf(() => decryptSecret(ring, sealed, { ...ctx, tenantId: "tenant-2" }))).toBe(
      "SF_ERR_DECRYPT_FAILED",
    );
    expect(codeOf(() => decryptSecret(ring, sealed, { ...ctx, field: "client_secrets:database" }))).toBe(
      "SF_ERR_DECRYPT_FAILED",
    );
  });

  it("envelope - an unknown key id fails with SF_ERR_UNKNOWN_KEY_ID", () => {
    const sealed = encryptSecret(ring, "value", ctx);
    const onlyK1 = parseKeyringOptions({ keys: { k1 }, activeKeyId: "k1" });
    expect(codeOf(() => decryptSecret(onlyK1, sealed, ctx))).toBe("SF_ERR_UNKNOWN_KEY_ID");
    const renamed = sealed.replace(":k2:", ":k9:");
    expect(codeOf(() => decryptSecret(ring, renamed, ctx))).toBe("SF_ERR_UNKNOWN_KEY_ID");
  });

  it("envelope - a wrong master key under the right id fails with SF_ERR_MASTER_KEY_MISMATCH", () => {
    const sealed = encryptSecret(ring, "value", ctx);
    const wrong = parseKeyringOptions({ keys: { k2: generateMasterKey() }, activeKeyId: "k2" });
    expect(codeOf(() => decryptSecret(wrong, sealed, ctx))).toBe("SF_ERR_MASTER_KEY_MISMATCH");
  });

  it("envelope - a forged key check with the wrong key still fails (SF_ERR_DECRYPT_FAILED)", () => {
    const sealed = encryptSecret(ring, "value", ctx);
    const wrong = parseKeyringOptions({ keys: { k2: generateMasterKey() }, activeKeyId: "k2" });
    const forged = sealed.split(":");
    forged[3] = wrong.keyCheck("k2");
    expect(codeOf(() => decryptSecret(wrong, forged.join(":"), ctx))).toBe("SF_ERR_DECRYPT_FAILED");
  });

  it("keyring - bad keys, ids and active ids fail with SF_ERR_INVALID_KEYRING; keys never print", () => {
    expect(codeOf(() => parseKeyringOptions({ keys: { k1: "c2hvcnQ=" }, activeKeyId: "k1" }))).toBe(
      "SF_ERR_INVALID_KEYRING",
    );
    expect(codeOf(() => parseKeyringOptions({ keys: { "bad id": k1 }, activeKeyId: "bad id" }))).toBe(
      "SF_ERR_INVALID_KEYRING",
    );
    expect(codeOf(() => parseKeyringOptions({ keys: { k1 }, activeKeyId: "k2" }))).toBe(
      "SF_ERR_INVALID_KEYRING",
    );
    expect(codeOf(() => parseKeyringOptions({ keys: {}, activeKeyId: "k1" }))).toBe("SF_ERR_INVALID_KEYRING");
    const hex = randomBytes(32).toString("hex");
    const fromSpec = parseKeyringOptions({
      keys: parseMasterKeysSpec(` old:${k1} , new:${hex}`),
      activeKeyId: "new",
    });
    expect(fromSpec.keyIds).toEqual(["new", "old"]);
    expect(codeOf(() => parseMasterKeysSpec(`a:${k1},a:${k2}`))).toBe("SF_ERR_INVALID_KEYRING");
    const printed = `${String(fromSpec)} ${JSON.stringify(fromSpec)} ${JSON.stringify({ ring: fromSpec })}`;
    expect(printed).not.toContain(k1);
    expect(printed).not.toContain(hex);
    expect(printed).toContain("new");
  });
});
