/**
 * Scanning log files for secrets: every line of every `*.log` file under a folder is checked for
 * each registered secret (secret_registry.ts) and for the shapes no log line may hold whatever
 * their origin (a full `sk_` API key, a signed JWT). A hit names the file, the line and the kind of
 * secret, never the secret itself.
 */
import { createReadStream, readdirSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { createInterface } from "node:readline";
import { readRegisteredSecrets } from "./secret_registry.ts";
import type { RegisteredSecret } from "./secret_registry.ts";

export interface LogHit {
  file: string;
  /** 1-based. */
  line: number;
  /** 1-based column of the match. */
  column: number;
  kind: string;
  /** What was found, redacted: its first characters and its length. */
  hint: string;
}

export interface LogScanReport {
  files: number;
  lines: number;
  secrets: number;
  hits: LogHit[];
}

/** Secrets recognisable by their shape, registered or not. */
export const SECRET_SHAPES: ReadonlyArray<{ kind: string; re: RegExp }> = [
  // A platform API key: `sk_` + 32 random bytes in base64url (actors/crypto/api_keys.ts).
  { kind: "api_key", re: /(?<![A-Za-z0-9_-])sk_[A-Za-z0-9_-]{43}(?![A-Za-z0-9_-])/ },
  // A signed JWT (admin access tokens, LiveKit participant tokens): header and claims are JSON objects.
  { kind: "jwt", re: /eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{16,}/ },
];

/** `abc…(40)`: enough to tell which secret it was, not enough to use it. */
export function redact(value: string): string {
  return `${value.slice(0, 4)}…(${value.length})`;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** A matcher for one line: the first secret (registered, or by shape) it holds. */
export function secretMatcher(
  secrets: readonly RegisteredSecret[],
): (line: string) => { kind: string; column: number; hint: string } | undefined {
  const kinds = new Map<string, string>();
  for (const s of secrets) kinds.set(s.value, s.kind);
  // Longest first, so a secret that contains another is reported as itself.
  const values = [...kinds.keys()].sort((a, b) => b.length - a.length);
  const registered = values.length === 0 ? undefined : new RegExp(values.map(escapeRegExp).join("|"));
  return (line) => {
    if (registered !== undefined) {
      const m = registered.exec(line);
      if (m !== null) return { kind: kinds.get(m[0]) ?? "secret", column: m.index + 1, hint: redact(m[0]) };
    }
    for (const shape of SECRET_SHAPES) {
      const m = shape.re.exec(line);
      if (m !== null) return { kind: shape.kind, column: m.index + 1, hint: redact(m[0]) };
    }
    return undefined;
  };
}

/** Every `*.log` file under `dir`, recursively, sorted. */
export function logFiles(dir: string): string[] {
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw err;
  }
  const out: string[] = [];
  for (const e of entries) {
    const full = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...logFiles(full));
    else if (e.isFile() && e.name.endsWith(".log")) out.push(full);
  }
  return out.sort();
}

const BANNER_RULE = "─".repeat(78);
const BANNER_TITLE = "Sidekick Forge is running. Ctrl-C stops everything.";

/**
 * The one block a log may show secrets in: the banner `npm run dev` prints for the operator at
 * the terminal (actors/cli/dev/banner.ts), which gives the admin token and the demo API key on
 * purpose (issue 8: "prints the admin URL, admin token, API key"). It is recognised by its exact
 * frame — a 78-character rule, the title line, … , the closing rule — and nothing else is exempt.
 */
export class BannerSpan {
  #state: "out" | "rule" | "in" = "out";

  /** Whether `line` belongs to the banner (and is not to be scanned). Call once per line, in order. */
  holds(line: string): boolean {
    switch (this.#state) {
      case "out":
        if (line === BANNER_RULE) this.#state = "rule";
        return false;
      case "rule":
        this.#state = line === BANNER_TITLE ? "in" : line === BANNER_RULE ? "rule" : "out";
        return this.#state === "in";
      case "in":
        if (line === BANNER_RULE) this.#state = "out";
        return true;
    }
  }
}

/** Scans every line of every log file under `dir` (file names in hits are relative to it). */
export async function scanLogFolder(
  dir: string,
  secrets: readonly RegisteredSecret[],
): Promise<LogScanReport> {
  const match = secretMatcher(secrets);
  const report: LogScanReport = { files: 0, lines: 0, secrets: secrets.length, hits: [] };
  for (const file of logFiles(dir)) {
    report.files += 1;
    let n = 0;
    const banner = new BannerSpan();
    const lines = createInterface({ input: createReadStream(file), crlfDelay: Infinity });
    for await (const line of lines) {
      n += 1;
      if (banner.holds(line)) continue;
      const hit = match(line);
      if (hit !== undefined) report.hits.push({ file: path.relative(dir, file), line: n, ...hit });
    }
    report.lines += n;
  }
  return report;
}

export function describeHit(hit: LogHit): string {
  return `${hit.file}:${hit.line}:${hit.column}: ${hit.kind} ${hit.hint}`;
}

/** How many hits a failed check lists (all of them are in log-scan.json). */
const LISTED_HITS = 50;

/**
 * The end-of-run check: scans `<runDir>/logs` for the secrets registered under `<runDir>/secrets`,
 * writes `<runDir>/log-scan.json` (counts, kinds, hits; never a secret) and deletes the registered
 * values. `failed` when any line holds a secret; `message` names each file and line.
 */
export async function checkRunLogs(
  runDir: string,
): Promise<{ report: LogScanReport; failed: boolean; message: string }> {
  const secrets = readRegisteredSecrets(runDir);
  const report = await scanLogFolder(path.join(runDir, "logs"), secrets);
  rmSync(path.join(runDir, "secrets"), { recursive: true, force: true });
  const kinds: Record<string, number> = {};
  for (const s of secrets) kinds[s.kind] = (kinds[s.kind] ?? 0) + 1;
  writeFileSync(
    path.join(runDir, "log-scan.json"),
    `${JSON.stringify({ files: report.files, lines: report.lines, secrets: kinds, hits: report.hits }, null, 2)}\n`,
  );
  const summary = `log secret scan: ${report.lines} lines in ${report.files} process logs, ${report.secrets} registered secrets`;
  if (report.hits.length === 0) return { report, failed: false, message: `${summary}: clean (${runDir})` };
  const listed = report.hits.slice(0, LISTED_HITS).map((h) => `  ${describeHit(h)}`);
  const more = report.hits.length > LISTED_HITS ? [`  … ${report.hits.length - LISTED_HITS} more`] : [];
  return {
    report,
    failed: true,
    message: [
      `${summary}: ${report.hits.length} ${report.hits.length === 1 ? "line holds" : "lines hold"} a secret (logs under ${path.join(runDir, "logs")}):`,
      ...listed,
      ...more,
    ].join("\n"),
  };
}
