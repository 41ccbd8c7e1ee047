/**
 * The tools the deployment tests need, installed on first use by deploy/tools.sh into the
 * machine's cache (helm and docker compose built with Go, promtool from Debian's package). A
 * tool that cannot be installed fails the test with the script's own message: nothing skips.
 */
import { execFile } from "node:child_process";
import { mkdtempSync, mkdirSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { repoRoot } from "../helpers/services.ts";

const execFileAsync = promisify(execFile);

/** First installs build from source: helm takes a few minutes, docker compose several. */
export const INSTALL_TIMEOUT_MS = 25 * 60_000;

export type Tool = "helm" | "compose" | "promtool";

/** The tool's path, after installing it if this machine does not have it cached yet. */
export async function ensureTool(tool: Tool): Promise<string> {
  try {
    const { stdout } = await execFileAsync("bash", [path.join(repoRoot(), "deploy", "tools.sh"), tool], {
      cwd: repoRoot(),
      timeout: INSTALL_TIMEOUT_MS,
      maxBuffer: 16 * 1024 * 1024,
    });
    const file = stdout.trim().split("\n").at(-1);
    if (file === undefined || file === "") throw new Error("deploy/tools.sh printed no path");
    return file;
  } catch (err) {
    const e = err as { stderr?: string; message?: string };
    throw new Error(
      `could not install ${tool} with deploy/tools.sh: ${e.stderr ?? e.message ?? String(err)}`,
      {
        cause: err,
      },
    );
  }
}

export interface RunResult {
  stdout: string;
  stderr: string;
}

/** Runs a command; a non-zero exit throws with its output. */
export async function run(
  file: string,
  args: readonly string[],
  options: {
    env?: Record<string, string>;
    /** Run with `env` only, not this process's environment plus `env`. */
    replaceEnv?: boolean;
    cwd?: string;
    timeoutMs?: number;
  } = {},
): Promise<RunResult> {
  try {
    const { stdout, stderr } = await execFileAsync(file, [...args], {
      cwd: options.cwd ?? repoRoot(),
      env: options.replaceEnv === true ? options.env : { ...process.env, ...options.env },
      timeout: options.timeoutMs ?? 60_000,
      maxBuffer: 64 * 1024 * 1024,
    });
    return { stdout, stderr };
  } catch (err) {
    const e = err as { code?: unknown; stdout?: string; stderr?: string; message?: string };
    throw new Error(
      `${path.basename(file)} ${args.join(" ")} failed (exit code ${String(e.code)}): ${e.message ?? String(err)}\n${e.stdout ?? ""}\n${e.stderr ?? ""}`,
      { cause: err },
    );
  }
}

/**
 * `docker compose` through the Docker CLI, with the compose plugin from the cache: a private
 * DOCKER_CONFIG whose cli-plugins/docker-compose links to it, so the user's own Docker config
 * is neither read nor changed. Needs no Docker daemon for `config`.
 */
export async function dockerCompose(): Promise<{ docker: string; env: Record<string, string> }> {
  const plugin = await ensureTool("compose");
  const docker = await findDocker();
  const config = mkdtempSync(path.join(tmpdir(), "sf-docker-config-"));
  mkdirSync(path.join(config, "cli-plugins"));
  symlinkSync(plugin, path.join(config, "cli-plugins", "docker-compose"));
  return { docker, env: { DOCKER_CONFIG: config } };
}

async function findDocker(): Promise<string> {
  try {
    const { stdout } = await execFileAsync("bash", ["-c", "command -v docker"]);
    return stdout.trim();
  } catch (err) {
    throw new Error("the Docker CLI (docker) is not on PATH; the compose tests need it", { cause: err });
  }
}
