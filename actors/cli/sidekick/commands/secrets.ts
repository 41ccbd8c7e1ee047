/**
 * `secrets rotate-key`: re-encrypts every stored secret with the active master key, the same
 * rotation as `npm run secrets:rotate` (actors/cli/rotation.ts), with a progress line and a
 * summary. Reads the actor host's configuration: SF_MASTER_KEYS (old and new key),
 * SF_MASTER_KEY_ACTIVE (the new one) and the platform database (SF_PLATFORM_DATABASE_URL /
 * SF_PLATFORM_SCHEMA, or the embedded one under SF_DATA_DIR).
 */
import { parseActorHostConfig } from "../../../config.ts";
import type { Command } from "../command.ts";
import { formatPairs, formatTable } from "../table.ts";

export const secretCommands: Command[] = [
  {
    path: ["secrets", "rotate-key"],
    usage: "",
    summary: "re-encrypts every stored secret with the active master key (SF_MASTER_KEY_ACTIVE)",
    spec: {},
    async run({ out }) {
      const config = parseActorHostConfig();
      // Loaded here: the stores and their drivers are needed by this command only.
      const { rotateAllSecrets } = await import("../../rotation.ts");
      out.progress("opening the platform database");
      const report = await rotateAllSecrets(config, {
        onTenantOpened: ({ opened }) => out.progress(`opened ${opened} tenant database(s)`),
        onProgress: (e) =>
          out.progress(
            `rotating ${e.source}: ${e.rotated} rotated, ${e.skipped} skipped, ${e.failed} failed`,
          ),
      });
      out.done();
      const ok = report.failed.length === 0 && report.remaining === 0;
      if (out.json) out.data(report);
      else {
        out.text(
          formatPairs([
            ["active key", report.activeKeyId],
            ["sources", report.sources.length],
            ["rotated", report.rotated],
            ["skipped", `${report.skipped} (changed meanwhile, already on the active key)`],
            ["failed", report.failed.length],
            ["remaining", report.remaining],
            ["result", out.status(ok ? "ok" : "fail")],
          ]),
        );
        if (report.failed.length > 0) {
          out.text(
            `\n${formatTable(
              [{ header: "source" }, { header: "secret" }, { header: "code" }],
              report.failed.map((f) => [f.source, f.ref, f.code]),
            )}`,
          );
        }
      }
      return ok ? 0 : 1;
    },
  },
];
