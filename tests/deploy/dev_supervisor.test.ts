/**
 * `npm run dev`'s supervisor (actors/cli/dev/run_dev.ts, what deploy/dev.sh execs once the
 * services are up) against a test nats-server, with the platform on the shared PostgreSQL and its
 * data in a temporary directory: it starts the actor host, gateway and worker with prefixed output
 * and seeds the demo tenant; a killed gateway comes back after the backoff, which doubles when it
 * dies again soon; SIGINT stops every process and the supervisor exits 0.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WORKER_MALLOC_ENV } from "../../actors/index.ts";
import { waitFor } from "../helpers/deadline.ts";
import { NatsTestServer } from "../helpers/nats_server.ts";
import { freePort } from "../helpers/ports.ts";
import { defaultPlatformSchema, spawnTs, TEST_MASTER_KEY } from "../helpers/processes.ts";
import type { TestProcess } from "../helpers/processes.ts";
import { sharedServices } from "../helpers/services.ts";

const ADMIN = `adm_${randomBytes(24).toString("hex")}`;
const BACKOFF_MS = 200;

let server: NatsTestServer;
let dev: TestProcess;
let dir: string;
let port: number;
/** Every pid the supervisor reported, to be sure none outlives the test. */
const pids = new Set<number>();

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/** The pids in `dev: started a (pid 1), b (pid 2)` and `dev: a restarted (pid 3, run 2)` lines. */
function reportedPids(): Map<string, number> {
  const latest = new Map<string, number>();
  for (const line of dev.lines) {
    if (line.startsWith("dev: started ")) {
      for (const m of line.matchAll(/([a-z-]+) \(pid (\d+)\)/g)) latest.set(m[1] ?? "", Number(m[2]));
    }
    const restarted = /^dev: ([a-z-]+) restarted \(pid (\d+), run \d+\)/.exec(line);
    if (restarted !== null) latest.set(restarted[1] ?? "", Number(restarted[2]));
  }
  for (const pid of latest.values()) pids.add(pid);
  return latest;
}

async function gatewayHealthy(): Promise<boolean> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/health`, { signal: AbortSignal.timeout(1000) });
    await res.body?.cancel();
    return res.status === 200;
  } catch {
    return false;
  }
}

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), "sf-dev-run-"));
  server = await NatsTestServer.start();
  port = await freePort();
  dev = await spawnTs("npm run dev", "actors/cli/dev/run_dev.ts", {
    readyLine: "Sidekick Forge is running",
    readyTimeoutMs: 120_000,
    env: {
      NATS_URL: server.url,
      SF_SUBJECT_PREFIX: "sf",
      SF_PARTITIONS: "16",
      SF_PLATFORM_DATABASE_URL: sharedServices().databaseUrl,
      SF_PLATFORM_SCHEMA: defaultPlatformSchema(server.url),
      SF_MASTER_KEYS: `test:${TEST_MASTER_KEY}`,
      SF_ADMIN_TOKEN: ADMIN,
      SF_GATEWAY_PORT: String(port),
      SF_METRICS_PORT: "0",
      SF_DATA_DIR: dir,
      SF_DEV_RESTART_BACKOFF_MS: String(BACKOFF_MS),
      LIVEKIT_URL: "",
      SF_LOG_LEVEL: "info",
    },
  });
  reportedPids();
}, 150_000);

afterAll(async () => {
  await dev?.stop(30_000);
  reportedPids();
  for (const pid of pids) if (alive(pid)) process.kill(pid, "SIGKILL");
  await server?.[Symbol.asyncDispose]();
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
});

describe("npm run dev - supervisor", () => {
  it("start - runs the actor host, gateway and worker with prefixed output, seeds the demo tenant and prints the banner", async () => {
    const started = reportedPids();
    expect([...started.keys()].sort()).toEqual(["actor-host", "agent-worker", "gateway", "seed"]);
    await waitFor("prefixed output of each process", () =>
      ["[actor-host] ", "[gateway] ", "[agent-worker] "].every((p) => dev.lines.some((l) => l.startsWith(p))),
    );
    // The banner's last line (its lines reach us as they are written, one by one).
    await dev.waitForLine(`-d '{"api_key":`);
    const banner = dev.lines.join("\n");
    expect(banner).toContain(`http://127.0.0.1:${port}/api/v1/trigger-agent`);
    expect(banner).toContain(ADMIN);
    expect(banner).toMatch(/API key\s+sk_/);
    expect(await gatewayHealthy()).toBe(true);
  });

  it("start - the agent worker runs with glibc's malloc settings (WORKER_MALLOC_ENV), the other processes with the supervisor's environment", () => {
    const started = reportedPids();
    const environ = (name: string): Map<string, string> => {
      const pid = started.get(name);
      if (pid === undefined) throw new Error(`no pid reported for ${name}`);
      return new Map(
        readFileSync(`/proc/${pid}/environ`, "utf8")
          .split("\0")
          .filter((kv) => kv.includes("="))
          .map((kv) => [kv.slice(0, kv.indexOf("=")), kv.slice(kv.indexOf("=") + 1)]),
      );
    };
    const worker = environ("agent-worker");
    const gateway = environ("gateway");
    expect(Object.keys(WORKER_MALLOC_ENV).length).toBeGreaterThan(0);
    for (const [name, value] of Object.entries(WORKER_MALLOC_ENV)) {
      expect(worker.get(name), name).toBe(process.env[name] || value);
      expect(gateway.get(name), name).toBe(process.env[name]);
    }
  });

  it("restart - a killed gateway is back after the backoff, which doubles when it dies again soon; the seeding is not rerun", async () => {
    const first = reportedPids().get("gateway") ?? 0;
    process.kill(first, "SIGKILL");
    await dev.waitForLine(`dev: restarting gateway in ${(BACKOFF_MS / 1000).toFixed(1)} s`);
    await dev.waitForLine("dev: gateway restarted", 20_000);
    await waitFor("the restarted gateway", gatewayHealthy, { timeoutMs: 30_000 });
    const second = reportedPids().get("gateway") ?? 0;
    expect(second).not.toBe(first);

    process.kill(second, "SIGKILL");
    await dev.waitForLine(`dev: restarting gateway in ${((2 * BACKOFF_MS) / 1000).toFixed(1)} s`);
    await waitFor(
      "the third gateway",
      () => dev.lines.some((l) => /^dev: gateway restarted \(pid \d+, run 3\)/.test(l)),
      {
        timeoutMs: 20_000,
      },
    );
    await waitFor("the third gateway answering", gatewayHealthy, { timeoutMs: 30_000 });
    expect(dev.lines.some((l) => l.startsWith("dev: seed restarted"))).toBe(false);
    expect(dev.lines.some((l) => l.startsWith("dev: restarting actor-host"))).toBe(false);
  });

  it("stop - SIGINT stops every process and the supervisor exits 0", async () => {
    const latest = [...reportedPids().entries()].filter(([name]) => name !== "seed").map(([, pid]) => pid);
    expect(latest.every(alive)).toBe(true);
    dev.signal("SIGINT");
    expect(await dev.exited).toBe(0);
    expect(dev.lines).toContain("dev: stopped");
    expect([...pids].filter(alive)).toEqual([]);
    // They stopped on SIGTERM (the actor host handing its partitions over), not SIGKILL.
    expect(dev.lines.some((l) => l.includes("did not stop within"))).toBe(false);
  });
});
