/**
 * The compose stack (deploy/compose/compose.yaml) and the image's entrypoint: rendered by the
 * Docker CLI's `docker compose config` (no daemon needed), then checked for the parts, the
 * settings the processes must agree on, and environment variables no code reads. The image
 * itself is not built here (no Docker daemon); its entrypoint runs against this checkout.
 */
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { repoRoot, binaryPaths } from "../helpers/services.ts";
import { WORKER_MALLOC_ENV } from "../../actors/index.ts";
import { envReadBy, isProcessName, PROCESS_SOURCES } from "./code_env.ts";
import type { ProcessName } from "./code_env.ts";
import { dockerCompose, ensureTool, INSTALL_TIMEOUT_MS, run } from "./tools.ts";

const COMPOSE_FILE = path.join(repoRoot(), "deploy", "compose", "compose.yaml");
const DOCKERFILE = path.join(repoRoot(), "deploy", "docker", "Dockerfile");
const ENTRYPOINT = path.join(repoRoot(), "deploy", "docker", "entrypoint.sh");

/** The values the compose file requires (`${VAR:?…}`), made up. */
const SECRETS = {
  SF_MASTER_KEYS: `test:${"ab".repeat(32)}`,
  SF_POSTGRES_PASSWORD: "compose-test-password",
  LIVEKIT_API_KEY: "compose-test-key",
  LIVEKIT_API_SECRET: "compose-test-secret-of-32-characters-or-more",
  GRAFANA_ADMIN_PASSWORD: "compose-test-grafana",
};

interface ComposeService {
  image?: string;
  build?: unknown;
  command?: string[] | null;
  environment?: Record<string, string | null>;
  healthcheck?: { test?: string[]; disable?: boolean };
  restart?: string;
  deploy?: { replicas?: number } | null;
  stop_grace_period?: string;
  depends_on?: Record<string, { condition: string }>;
}
interface ComposeProject {
  services: Record<string, ComposeService>;
}

let docker: { docker: string; env: Record<string, string> };
let promtool: string;
let emptyEnvFile: string;

/** `docker compose config --format json` with only `env` in the environment (no .env file). */
async function composeConfig(env: Record<string, string>): Promise<ComposeProject> {
  const { stdout } = await run(
    docker.docker,
    ["compose", "--env-file", emptyEnvFile, "-f", COMPOSE_FILE, "config", "--format", "json"],
    { env: { ...hermeticEnv(), ...docker.env, ...env }, replaceEnv: true },
  );
  return JSON.parse(stdout) as ComposeProject;
}

function hermeticEnv(): Record<string, string> {
  return { PATH: process.env["PATH"] ?? "/usr/bin:/bin", HOME: process.env["HOME"] ?? "/root" };
}

function seconds(duration: string | undefined): number {
  const match = /^(\d+)(ms|s|m)$/.exec(duration ?? "");
  if (match === null) throw new Error(`not a simple duration: ${String(duration)}`);
  const value = Number(match[1]);
  return match[2] === "ms" ? value / 1000 : match[2] === "m" ? value * 60 : value;
}

/** The platform's services: those running our image, by the process their command starts. */
function platformServices(project: ComposeProject): Array<[string, ProcessName, ComposeService]> {
  const ours = Object.entries(project.services).filter(([, s]) => s.build !== undefined);
  return ours.map(([name, s]) => {
    const command = s.command?.[0];
    if (!isProcessName(command)) throw new Error(`${name}: command ${String(command)} is not a process`);
    return [name, command, s];
  });
}

beforeAll(async () => {
  docker = await dockerCompose();
  promtool = await ensureTool("promtool");
  emptyEnvFile = path.join(mkdtempSync(path.join(tmpdir(), "sf-compose-")), "empty.env");
  writeFileSync(emptyEnvFile, "");
}, INSTALL_TIMEOUT_MS);

describe("compose", () => {
  it("compose - docker compose config renders the stack, and refuses to without its secrets", async () => {
    const project = await composeConfig(SECRETS);
    expect(Object.keys(project.services).length).toBeGreaterThan(0);
    for (const missing of Object.keys(SECRETS)) {
      const partial: Record<string, string> = { ...SECRETS };
      delete partial[missing];
      await expect(composeConfig(partial)).rejects.toThrow(new RegExp(`set ${missing}`));
    }
  });

  it("compose - 3 NATS nodes, 2 gateways, 2 actor hosts, N workers, livekit, Prometheus and Grafana", async () => {
    const project = await composeConfig({ ...SECRETS, SF_WORKER_REPLICAS: "5" });
    const byProcess = (p: ProcessName) => platformServices(project).filter(([, process]) => process === p);
    expect(byProcess("gateway")).toHaveLength(2);
    expect(byProcess("actor-host")).toHaveLength(2);
    const workers = byProcess("worker");
    expect(workers).toHaveLength(1);
    expect(workers[0]?.[2].deploy?.replicas).toBe(5);
    const images = Object.values(project.services).map((s) => s.image ?? "");
    expect(images.filter((i) => /^nats:/.test(i))).toHaveLength(3);
    for (const image of ["livekit/livekit-server:", "prom/prometheus:", "grafana/grafana:", "postgres:"]) {
      expect(
        images.some((i) => i.startsWith(image)),
        image,
      ).toBe(true);
    }
    expect(images.some((i) => i.startsWith("natsio/prometheus-nats-exporter:"))).toBe(true);
  });

  it("compose - every service restarts, and every one but the exporter has a health check", async () => {
    const project = await composeConfig(SECRETS);
    for (const [name, service] of Object.entries(project.services)) {
      expect(service.restart, name).toBe("unless-stopped");
      // The exporter's image has no shell or HTTP client; Prometheus's `up` watches it.
      if (name === "nats-exporter") continue;
      expect(service.healthcheck?.test?.length ?? 0, `${name} health check`).toBeGreaterThan(0);
    }
    // The platform starts once the NATS cluster (and the database, for the actor hosts) is healthy.
    for (const [name, process, service] of platformServices(project)) {
      const needs = ["nats-1", "nats-2", "nats-3", ...(process === "actor-host" ? ["postgres"] : [])];
      for (const dep of needs)
        expect(service.depends_on?.[dep]?.condition, `${name} -> ${dep}`).toBe("service_healthy");
    }
  });

  it("compose - every variable given to a platform container is one its process reads", async () => {
    const project = await composeConfig(SECRETS);
    for (const [name, process, service] of platformServices(project)) {
      const read = envReadBy(process);
      const unread = Object.keys(service.environment ?? {}).filter((v) => !read.has(v));
      expect(unread, `${name} (${process}) sets variables its code never reads`).toEqual([]);
    }
    // The image's own ENV applies to every process: each must be read by at least one.
    const anyProcess = new Set(Object.keys(PROCESS_SOURCES).flatMap((p) => [...envReadBy(p as ProcessName)]));
    const imageEnv = dockerfileEnv(readFileSync(DOCKERFILE, "utf8"));
    expect(imageEnv.length).toBeGreaterThan(0);
    expect(imageEnv.filter((v) => !anyProcess.has(v))).toEqual([]);
  });

  it("compose - the processes agree on NATS, subjects, partitions and replicas; actor hosts get their secrets", async () => {
    const project = await composeConfig(SECRETS);
    const services = platformServices(project);
    for (const shared of ["NATS_URL", "SF_SUBJECT_PREFIX", "SF_PARTITIONS"]) {
      const values = new Set(services.map(([, , s]) => s.environment?.[shared]));
      expect([...values], shared).toHaveLength(1);
      expect([...values][0], shared).toBeTruthy();
    }
    const natsNodes = Object.values(project.services).filter((s) => /^nats:/.test(s.image ?? "")).length;
    const provisioners = services.filter(([, p]) => p === "actor-host" || p === "worker");
    for (const [name, , service] of provisioners) {
      expect(service.environment?.["SF_STREAM_REPLICAS"], name).toBe(String(natsNodes));
    }
    const hosts = services.filter(([, p]) => p === "actor-host");
    for (const [name, , service] of hosts) {
      expect(service.environment?.["SF_MASTER_KEYS"], name).toBe(SECRETS.SF_MASTER_KEYS);
      expect(service.environment?.["SF_PLATFORM_DATABASE_URL"], name).toMatch(
        /^postgres:\/\/.*@postgres:5432\//,
      );
    }
    expect(new Set(hosts.map(([, , s]) => s.environment?.["SF_HOST_ID"])).size).toBe(hosts.length);
  });

  it("compose - stop grace periods cover each process's drain", async () => {
    const project = await composeConfig(SECRETS);
    for (const [name, process, service] of platformServices(project)) {
      const grace = seconds(service.stop_grace_period);
      const env = service.environment ?? {};
      const drain =
        process === "gateway"
          ? Number(env["SF_GATEWAY_SHUTDOWN_GRACE_MS"] ?? 10_000) / 1000
          : process === "worker"
            ? Number(env["SF_JOB_ACK_WAIT_MS"] ?? 30_000) / 1000
            : Number(env["SF_CLAIM_TIMEOUT_MS"] ?? 10_000) / 1000;
      expect(grace, `${name}: stop_grace_period ${grace}s for a ${drain}s drain`).toBeGreaterThanOrEqual(
        drain + 5,
      );
    }
  });

  it("compose - nats-server accepts the cluster config and promtool the Prometheus config", async () => {
    const conf = path.join(repoRoot(), "deploy", "nats", "nats-cluster.conf");
    const nats = await run(binaryPaths().natsServer, ["-c", conf, "--name", "nats-1", "-t"]);
    expect(nats.stdout + nats.stderr).toMatch(/is valid/);

    const dir = mkdtempSync(path.join(tmpdir(), "sf-prometheus-"));
    copyFileSync(
      path.join(repoRoot(), "deploy", "compose", "prometheus.yml"),
      path.join(dir, "prometheus.yml"),
    );
    copyFileSync(
      path.join(repoRoot(), "deploy", "helm", "sidekick-forge", "files", "alerts.yml"),
      path.join(dir, "alerts.yml"),
    );
    const checked = await run(promtool, ["check", "config", path.join(dir, "prometheus.yml")]);
    expect(checked.stdout).toMatch(/SUCCESS: \d+ rules found/);
  });
});

describe("image", () => {
  it("image - non-root, tini as PID 1, the entrypoint of this checkout, every COPY source present", () => {
    const dockerfile = readFileSync(DOCKERFILE, "utf8");
    const runtime = dockerfile.slice(dockerfile.lastIndexOf("\nFROM "));
    expect(runtime).toMatch(/^USER 10001:10001$/m);
    expect(runtime).toMatch(
      /^ENTRYPOINT \["\/usr\/bin\/tini", "--", "\/app\/deploy\/docker\/entrypoint\.sh"\]$/m,
    );
    expect(dockerfile).toMatch(/^ARG NODE_IMAGE=node:20[.0-9]*-bookworm-slim$/m);
    expect(dockerfile).toMatch(/npm ci --omit=dev/);
    for (const m of dockerfile.matchAll(/^COPY (?!--from)(.+)$/gm)) {
      const parts = (m[1] ?? "").split(/\s+/).filter((p) => !p.startsWith("--"));
      for (const source of parts.slice(0, -1)) {
        expect(existsSync(path.join(repoRoot(), source)), source).toBe(true);
      }
    }
  });

  it("image - the entrypoint starts each process by its command", async () => {
    await run("sh", ["-n", ENTRYPOINT]);
    const usage = await run("sh", [ENTRYPOINT, "--help"]).catch((err: Error) => err.message);
    expect(usage).toMatch(/usage: <image> gateway \| actor-host \| worker \| sidekick/);
    // `sidekick` alone: the operator CLI's usage (exit 2), whichever form the checkout has.
    const cli = await run("sh", [ENTRYPOINT, "sidekick"], { timeoutMs: 30_000 }).catch(
      (err: Error) => err.message,
    );
    expect(cli).toMatch(/exit code 2\)/);
    expect(cli).toMatch(/usage: sidekick|sidekick: commands:/);
    // A setting out of range stops each process in its config parser, which names it: proof that
    // the command reached the right process, without starting one.
    const cases: Array<[string, Record<string, string>, RegExp]> = [
      ["gateway", { SF_GATEWAY_PORT: "-1" }, /SF_GATEWAY_PORT must be/],
      ["actor-host", { SF_MASTER_KEYS: "" }, /SF_MASTER_KEYS is required/],
      ["worker", { SF_WORKER_SLOTS: "0" }, /SF_WORKER_SLOTS must be/],
    ];
    for (const [command, env, message] of cases) {
      const failed = await run("sh", [ENTRYPOINT, command], { env, timeoutMs: 30_000 }).then(
        () => "exited 0",
        (err: Error) => err.message,
      );
      expect(failed, command).toMatch(message);
    }
  });
  it("image - the entrypoint gives the worker glibc's malloc settings (WORKER_MALLOC_ENV), not the others, and keeps an operator's own", async () => {
    // A `node` that prints the environment it was started with, in place of the real one.
    const bin = mkdtempSync(path.join(tmpdir(), "sf-entrypoint-"));
    writeFileSync(path.join(bin, "node"), "#!/bin/sh\nenv\n", { mode: 0o755 });
    const envOf = async (
      command: string,
      extra: Record<string, string> = {},
    ): Promise<Map<string, string>> => {
      const base = Object.fromEntries(
        Object.entries(process.env).filter(
          (e): e is [string, string] => e[1] !== undefined && !e[0].startsWith("MALLOC_"),
        ),
      );
      const { stdout } = await run("sh", [ENTRYPOINT, command], {
        env: { ...base, PATH: `${bin}:${process.env["PATH"] ?? ""}`, ...extra },
        replaceEnv: true,
      });
      return new Map(
        stdout
          .split("\n")
          .filter((l) => l.includes("="))
          .map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]),
      );
    };
    try {
      const worker = await envOf("worker");
      expect(Object.keys(WORKER_MALLOC_ENV).length).toBeGreaterThan(0);
      for (const [name, value] of Object.entries(WORKER_MALLOC_ENV))
        expect(worker.get(name), name).toBe(value);
      for (const other of ["gateway", "actor-host"]) {
        const env = await envOf(other);
        for (const name of Object.keys(WORKER_MALLOC_ENV))
          expect(env.has(name), `${other}: ${name}`).toBe(false);
      }
      expect((await envOf("worker", { MALLOC_ARENA_MAX: "4" })).get("MALLOC_ARENA_MAX")).toBe("4");
    } finally {
      rmSync(bin, { recursive: true, force: true });
    }
  });
});

/** Names set by ENV instructions (`ENV A=1 B=2`, continued lines included). */
function dockerfileEnv(dockerfile: string): string[] {
  const joined = dockerfile.replace(/\\\n/g, " ");
  const names: string[] = [];
  for (const m of joined.matchAll(/^ENV\s+(.+)$/gm)) {
    for (const pair of (m[1] ?? "").matchAll(/([A-Za-z_][A-Za-z0-9_]*)=/g)) if (pair[1]) names.push(pair[1]);
  }
  return names;
}
