/**
 * vitest global setup: one fresh PostgreSQL database per test run on the shared server, so no
 * run sees schemas or rows a previous run left behind (test names derive from random ports,
 * which repeat). Exported to every test process through SF_DATABASE_URL; dropped at the end.
 *
 * It also gives the run a folder, `.sidekick/test-output/runs/<run id>` (SF_TEST_RUN_DIR), where
 * every platform process a test spawns writes its whole output (processes.ts) and the fixtures
 * register the secrets they hand out (secret_registry.ts). At the end every log line of the run
 * is scanned for those secrets: any hit fails the run, naming the file and line (log_scan.ts).
 */
import { randomBytes } from "node:crypto";
import { mkdirSync, readdirSync, rmSync, statSync } from "node:fs";
import path from "node:path";
import pg from "pg";
import { checkRunLogs } from "./log_scan.ts";
import { repoRoot, sharedServices } from "./services.ts";

/** Runs older than this are removed when a new one starts. */
const KEEP_RUNS_MS = 24 * 3600_000;

export default async function setup(): Promise<() => Promise<void>> {
  const runDir = startRunFolder();
  const base = sharedServices().databaseUrl;
  const name = `sf_test_${Date.now().toString(36)}_${randomBytes(4).toString("hex")}`;
  const admin = new pg.Client({ connectionString: base });
  await admin.connect();
  try {
    await admin.query(`create database ${name}`);
  } finally {
    await admin.end();
  }
  const url = new URL(base);
  url.pathname = `/${name}`;
  process.env["SF_DATABASE_URL"] = url.toString();
  return async () => {
    try {
      const client = new pg.Client({ connectionString: base });
      await client.connect();
      try {
        await client.query(`drop database if exists ${name} with (force)`);
      } finally {
        await client.end();
      }
    } finally {
      await scanRunLogs(runDir);
    }
  };
}

function startRunFolder(): string {
  const runs = path.join(repoRoot(), ".sidekick", "test-output", "runs");
  mkdirSync(runs, { recursive: true });
  const now = Date.now();
  for (const entry of readdirSync(runs)) {
    const dir = path.join(runs, entry);
    if (now - statSync(dir).mtimeMs > KEEP_RUNS_MS) rmSync(dir, { recursive: true, force: true });
  }
  const runDir = path.join(runs, `${new Date(now).toISOString().replace(/[:.]/g, "-")}-${process.pid}`);
  mkdirSync(runDir, { recursive: true });
  process.env["SF_TEST_RUN_DIR"] = runDir;
  return runDir;
}

/** Scans the run's logs; a hit fails the run (exit code 1) with the file and line. */
async function scanRunLogs(runDir: string): Promise<void> {
  const check = await checkRunLogs(runDir);
  if (check.failed) {
    console.error(check.message);
    process.exitCode = 1;
  } else {
    console.log(check.message);
  }
}
