/**
 * The secrets a test run hands to the platform, collected so the run's logs can be scanned for
 * them (tests/helpers/log_scan.ts, run by the global teardown in global_setup.ts).
 *
 * vitest runs test files in forked processes, so each process appends what its fixtures register
 * to its own file, `<run dir>/secrets/<pid>.jsonl`; the teardown reads them all, scans, and
 * deletes the folder. The run dir comes from SF_TEST_RUN_DIR, which the global setup sets; outside
 * a vitest run (benches use the same helpers) nothing is written.
 *
 * Fixtures register what they create or accept: the master key, the admin tokens, JWT secrets
 * and LiveKit secret a process is started with (processes.ts reads them from its environment),
 * the provider fixture's keys, the PostgREST fixture's service-role key, API keys a suite issues.
 */
import { appendFileSync, mkdirSync, readdirSync, readFileSync } from "node:fs";
import path from "node:path";

export const SecretKinds = [
  "api_key",
  "admin_token",
  "jwt_secret",
  "master_key",
  "livekit_secret",
  "provider_key",
  "service_role_key",
  "database_password",
] as const;

export type SecretKind = (typeof SecretKinds)[number];

export interface RegisteredSecret {
  kind: SecretKind;
  value: string;
}

/** Shorter values would match ordinary words; nothing the fixtures make is this short. */
export const MIN_SECRET_LENGTH = 8;

/** The folder of this vitest run (SF_TEST_RUN_DIR), or undefined outside one. */
export function testRunDir(): string | undefined {
  const dir = process.env["SF_TEST_RUN_DIR"];
  return dir === undefined || dir === "" ? undefined : dir;
}

const registered = new Set<string>();

/** Records `value` as a secret of this run (a no-op outside a vitest run, or for a value too short). */
export function registerSecret(kind: SecretKind, value: string | undefined | null): void {
  const dir = testRunDir();
  if (dir === undefined || value === undefined || value === null || value.length < MIN_SECRET_LENGTH) return;
  const key = `${kind}\u0000${value}`;
  if (registered.has(key)) return;
  registered.add(key);
  const folder = path.join(dir, "secrets");
  mkdirSync(folder, { recursive: true });
  // Synchronous: a forked test process may exit right after its last test.
  appendFileSync(path.join(folder, `${process.pid}.jsonl`), `${JSON.stringify({ kind, value })}\n`);
}

/** Every secret registered during the run in `runDir`, deduplicated. */
export function readRegisteredSecrets(runDir: string): RegisteredSecret[] {
  const folder = path.join(runDir, "secrets");
  let files: string[];
  try {
    files = readdirSync(folder).filter((f) => f.endsWith(".jsonl"));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw err;
  }
  const out = new Map<string, RegisteredSecret>();
  for (const file of files) {
    for (const line of readFileSync(path.join(folder, file), "utf8").split("\n")) {
      if (line === "") continue;
      const parsed = JSON.parse(line) as RegisteredSecret;
      out.set(`${parsed.kind}\u0000${parsed.value}`, parsed);
    }
  }
  return [...out.values()];
}

/**
 * The secrets in a child process's environment: what the platform processes are given through
 * their configuration (admin token, JWT secret, master keys, LiveKit secret, database password).
 */
export function registerEnvironmentSecrets(env: Readonly<Record<string, string | undefined>>): void {
  registerSecret("admin_token", env["SF_ADMIN_TOKEN"]);
  registerSecret("jwt_secret", env["SF_JWT_SECRET"]);
  registerSecret("livekit_secret", env["LIVEKIT_API_SECRET"]);
  // `id:key,id:key`
  for (const entry of (env["SF_MASTER_KEYS"] ?? "").split(",")) {
    const colon = entry.indexOf(":");
    if (colon > 0) registerSecret("master_key", entry.slice(colon + 1).trim());
  }
  for (const name of ["SF_PLATFORM_DATABASE_URL", "SF_DATABASE_URL"]) {
    const url = env[name];
    if (url === undefined || url === "") continue;
    let password = "";
    try {
      password = new URL(url).password;
    } catch {
      continue;
    }
    // As it appears in a URL (percent-encoded): `:<password>@` (the bare word may be an ordinary one, e.g. a user name).
    if (password !== "") registerSecret("database_password", `:${password}@`);
  }
}
