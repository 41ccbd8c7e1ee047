/**
 * `npm run secrets:rotate`: re-encrypts every stored secret (platform client secrets and each
 * tenant's provider keys) with the active master key, without downtime (see `rotation.ts`).
 * `sidekick secrets rotate-key` runs the same rotation with a progress line and a table.
 *
 * Environment: SF_MASTER_KEYS must list the old and the new key, SF_MASTER_KEY_ACTIVE names the
 * new one; the platform database as for the actor host. Prints a JSON report; exits 1 when any
 * secret could not be rotated.
 */
import { parseActorHostConfig } from "../config.ts";
import { rotateAllSecrets } from "./rotation.ts";

async function main(): Promise<number> {
  const report = await rotateAllSecrets(parseActorHostConfig(), {
    onProgress: (event) => process.stderr.write(`${JSON.stringify({ progress: event })}\n`),
  });
  process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  return report.failed.length === 0 && report.remaining === 0 ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    const e = err as { code?: string; message?: string };
    process.stderr.write(
      `${JSON.stringify({ error: { code: e.code ?? "SF_ERR_INTERNAL", message: e.message } })}\n`,
    );
    process.exit(1);
  },
);
