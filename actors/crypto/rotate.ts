/**
 * Rotation of every stored secret to the keyring's active master key.
 *
 * Zero downtime: deploy the new keyring (new key added and made active, old keys kept) to every
 * process first; new writes then use the new key while old ciphertexts keep decrypting. Then run
 * `rotateSecrets`, which re-seals each secret that is not on the active key with a fresh data
 * key and writes it back with compare-and-set (a secret changed meanwhile is left alone: it was
 * already written with the active key). When the report shows `remaining === 0` and no
 * failures, the old key can leave the keyring.
 */
import { SfError } from "../../bus/index.ts";
import { decryptSecret, encryptSecret } from "./envelope.ts";
import type { SecretContext } from "./envelope.ts";
import type { Keyring } from "./keyring.ts";

/** One stored secret, as a rotation source lists it. */
export interface StoredSecret {
  /** Opaque, stable, sortable reference inside its source (e.g. `<client id>/<field>`). */
  ref: string;
  context: SecretContext;
  envelope: string;
  keyId: string;
}

/** A table of sealed secrets (platform `client_secrets`, a tenant's `provider_keys`, …). */
export interface RotatableSecrets {
  readonly name: string;
  /** Secrets whose key id is not `activeKeyId`, ordered by `ref`, strictly after `afterRef`. */
  listNotOnKey(activeKeyId: string, limit: number, afterRef: string | null): Promise<StoredSecret[]>;
  /** Replaces the envelope if it still equals `secret.envelope`; false when it changed meanwhile. */
  replaceEnvelope(secret: StoredSecret, envelope: string, keyId: string): Promise<boolean>;
}

export interface RotateOptions {
  /** Secrets read per round trip; default 100. */
  batchSize?: number;
  onProgress?: (event: { source: string; rotated: number; skipped: number; failed: number }) => void;
}

export interface RotationFailure {
  source: string;
  ref: string;
  code: string;
}

export interface RotationReport {
  activeKeyId: string;
  rotated: number;
  /** Changed by someone else during rotation (and so already on the active key). */
  skipped: number;
  failed: RotationFailure[];
  /** Secrets still not on the active key after the run (failures included). */
  remaining: number;
}

export async function rotateSecrets(
  sources: readonly RotatableSecrets[],
  keyring: Keyring,
  options: RotateOptions = {},
): Promise<RotationReport> {
  const batchSize = options.batchSize ?? 100;
  const activeKeyId = keyring.activeKeyId;
  const report: RotationReport = { activeKeyId, rotated: 0, skipped: 0, failed: [], remaining: 0 };
  for (const source of sources) {
    let afterRef: string | null = null;
    let rotated = 0;
    let skipped = 0;
    let failed = 0;
    for (;;) {
      const batch = await source.listNotOnKey(activeKeyId, batchSize, afterRef);
      if (batch.length === 0) break;
      for (const secret of batch) {
        afterRef = secret.ref;
        let plaintext: string;
        try {
          plaintext = decryptSecret(keyring, secret.envelope, secret.context);
        } catch (err) {
          // A secret we cannot open stays as it is; the report names it by reference and code.
          const code = err instanceof SfError ? err.code : "SF_ERR_INTERNAL";
          report.failed.push({ source: source.name, ref: secret.ref, code });
          failed++;
          continue;
        }
        const envelope = encryptSecret(keyring, plaintext, secret.context);
        if (await source.replaceEnvelope(secret, envelope, activeKeyId)) rotated++;
        else skipped++;
      }
      options.onProgress?.({ source: source.name, rotated, skipped, failed });
      if (batch.length < batchSize) break;
    }
    report.rotated += rotated;
    report.skipped += skipped;
    let remainingAfter: string | null = null;
    for (;;) {
      const left = await source.listNotOnKey(activeKeyId, batchSize, remainingAfter);
      report.remaining += left.length;
      const last = left.at(-1);
      if (last === undefined || left.length < batchSize) break;
      remainingAfter = last.ref;
    }
  }
  return report;
}
