/**
 * The end-of-run log secret scan (tests/helpers/log_scan.ts, run by the global teardown): it
 * finds registered secrets and secret-shaped values in process logs, names the file and line
 * without printing the secret, and fails the check; and a spawned platform process's whole output
 * really lands in the run's log folder, where the scan reads it.
 */
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { generateApiKey } from "../../actors/index.ts";
import { checkRunLogs, scanLogFolder, secretMatcher } from "../helpers/log_scan.ts";
import { spawnTs } from "../helpers/processes.ts";
import { readRegisteredSecrets, registerSecret, testRunDir } from "../helpers/secret_registry.ts";
import type { RegisteredSecret } from "../helpers/secret_registry.ts";

const dirs: string[] = [];

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), "sf-logscan-"));
  dirs.push(dir);
  return dir;
}

function writeLog(root: string, rel: string, lines: string[]): void {
  const file = path.join(root, rel);
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, `${lines.join("\n")}\n`);
}

afterAll(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

describe("log secret scan", () => {
  it("log scan - a registered secret in any line fails the check with the file and line, never the secret", async () => {
    const runDir = await tempDir();
    const adminToken = `adm_${randomBytes(24).toString("hex")}`;
    const masterKey = randomBytes(32).toString("base64");
    // Registered the way fixtures do, into this run folder's registry.
    const previous = process.env["SF_TEST_RUN_DIR"];
    process.env["SF_TEST_RUN_DIR"] = runDir;
    try {
      registerSecret("admin_token", adminToken);
      registerSecret("master_key", masterKey);
      registerSecret("provider_key", "short"); // too short to scan for: ignored
    } finally {
      if (previous === undefined) delete process.env["SF_TEST_RUN_DIR"];
      else process.env["SF_TEST_RUN_DIR"] = previous;
    }
    expect(
      readRegisteredSecrets(runDir)
        .map((s) => s.kind)
        .sort(),
    ).toEqual(["admin_token", "master_key"]);
    writeLog(runDir, "logs/tests/a.test.ts/gateway-1.log", [
      '{"level":30,"msg":"gateway ready"}',
      '{"level":20,"msg":"request refused","code":"SF_ERR_UNAUTHENTICATED"}',
      `{"level":50,"msg":"boom","token":"${adminToken}"}`,
    ]);
    writeLog(runDir, "logs/tests/b.test.ts/actor-host_h1-2.log", [
      "starting",
      `keyring loaded test:${masterKey}`,
    ]);
    writeLog(runDir, "logs/tests/b.test.ts/worker_w1-3.log", ["clean line", "another clean line"]);

    const check = await checkRunLogs(runDir);
    expect(check.failed).toBe(true);
    expect(check.report).toMatchObject({ files: 3, lines: 7, secrets: 2 });
    expect(check.report.hits.map((h) => [h.file, h.line, h.kind])).toEqual([
      ["tests/a.test.ts/gateway-1.log", 3, "admin_token"],
      ["tests/b.test.ts/actor-host_h1-2.log", 2, "master_key"],
    ]);
    expect(check.message).toContain("tests/a.test.ts/gateway-1.log:3:");
    expect(check.message).toContain("tests/b.test.ts/actor-host_h1-2.log:2:");
    // Neither the message nor the report on disk repeats a secret; the registry is gone.
    const report = readFileSync(path.join(runDir, "log-scan.json"), "utf8");
    for (const text of [check.message, report]) {
      expect(text).not.toContain(adminToken);
      expect(text).not.toContain(masterKey);
    }
    expect(existsSync(path.join(runDir, "secrets"))).toBe(false);
  });

  it("log scan - full API keys and signed JWTs are found by their shape, registered or not", () => {
    const match = secretMatcher([]);
    const key = generateApiKey().secret;
    const jwt = `eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1c2VyLTEiLCJleHAiOjE3MDB9.${randomBytes(32).toString("base64url")}`;
    expect(match(`{"msg":"verify","key":"${key}"}`)).toMatchObject({ kind: "api_key", column: 24 });
    expect(match(`token=${jwt}`)).toMatchObject({ kind: "jwt", column: 7 });
    // The display prefix, a malformed key and a longer token are not a key.
    expect(match(`{"prefix":"${key.slice(0, 11)}"}`)).toBeUndefined();
    expect(match(`sk_${"x".repeat(40)}`)).toBeUndefined();
    expect(match(`${key}x`)).toBeUndefined();
    // The hint shows only the start and the length.
    expect(match(key)?.hint).toBe(`${key.slice(0, 4)}…(46)`);
  });

  it("log scan - only the exact frame of npm run dev's operator banner may show the admin token and demo key", async () => {
    const root = await tempDir();
    const token = `adm_${randomBytes(24).toString("hex")}`;
    const rule = "─".repeat(78);
    const secrets: RegisteredSecret[] = [{ kind: "admin_token", value: token }];
    writeLog(root, "dev/npm_run_dev-1.log", [
      "dev: starting",
      rule,
      "Sidekick Forge is running. Ctrl-C stops everything.",
      `  admin token  ${token}`,
      rule,
      // After the banner: a leak again.
      `{"msg":"oops","token":"${token}"}`,
    ]);
    // A rule without the banner's title exempts nothing.
    writeLog(root, "other/fake-1.log", [rule, `  admin token  ${token}`, rule]);
    const report = await scanLogFolder(root, secrets);
    expect(report.hits.map((h) => `${h.file}:${h.line}`)).toEqual([
      "dev/npm_run_dev-1.log:6",
      "other/fake-1.log:2",
    ]);
  });

  it("log scan - clean logs pass and every line is counted", async () => {
    const root = await tempDir();
    writeLog(root, "x/one.log", ["a", "b", "c"]);
    writeLog(root, "y/two.log", ["d"]);
    writeLog(root, "y/not-a-log.txt", ["sk_ignored"]);
    const secrets: RegisteredSecret[] = [
      { kind: "jwt_secret", value: `jwt_${randomBytes(16).toString("hex")}` },
    ];
    expect(await scanLogFolder(root, secrets)).toEqual({ files: 2, lines: 4, secrets: 1, hits: [] });
  });

  it("log scan - a spawned process's whole output is kept in the run's log folder, where the scan finds a leak", async () => {
    const runDir = testRunDir();
    expect(runDir, "vitest's global setup sets SF_TEST_RUN_DIR").toBeDefined();
    // Not registered for the run (and not secret-shaped): this deliberate leak must not fail it.
    const leak = `leak-${randomBytes(12).toString("hex")}`;
    const scriptDir = await tempDir();
    const script = path.join(scriptDir, "leaky.ts");
    writeFileSync(
      script,
      [
        'console.log("starting");',
        "for (let i = 0; i < 3; i += 1) console.log(`line ${i}`);",
        "console.error(`oops ${process.env.SF_TEST_LEAK}`);",
        'console.log("ready");',
      ].join("\n"),
    );
    const proc = await spawnTs("leaky one", script, { env: { SF_TEST_LEAK: leak }, readyLine: "ready" });
    await proc.exited;
    const file = proc.logFile;
    expect(file).toBeDefined();
    expect(path.relative(path.join(runDir ?? "", "logs"), file ?? "")).toBe(
      path.join("tests", "security", "log_scan.test.ts", `leaky_one-${proc.pid}.log`),
    );
    // stdout and stderr both, every line (their relative order is the pipes' business).
    const logged = readFileSync(file ?? "", "utf8").split("\n");
    expect([...logged].sort()).toEqual(
      ["", "line 0", "line 1", "line 2", `oops ${leak}`, "ready", "starting"].sort(),
    );
    const report = await scanLogFolder(path.dirname(file ?? ""), [{ kind: "admin_token", value: leak }]);
    expect(report.hits).toEqual([
      expect.objectContaining({
        file: path.basename(file ?? ""),
        line: logged.indexOf(`oops ${leak}`) + 1,
        kind: "admin_token",
      }),
    ]);
  });
});
