/**
 * What every process's config module shares: reading integers from the environment with
 * bounds (a bad value is a ConfigError naming the variable), and the shutdown sequence run on
 * SIGTERM/SIGINT (each step in order, then exit 0; any failure is logged and exits 1).
 */
import type { Logger } from "pino";
import { toWireError } from "../../bus/index.ts";
import { ConfigError } from "../errors.ts";

export type Env = Record<string, string | undefined>;

/**
 * glibc malloc settings the agent worker runs with wherever it is started: the image's entrypoint
 * (deploy/docker/entrypoint.sh, hence compose and the Helm chart) and `npm run dev`'s supervisor
 * set them unless the environment already does; the voice bench runs its worker with them. glibc
 * reads them, not our code. MALLOC_ARENA_MAX=2: by default glibc gives threads that contend for
 * an arena new ones, up to 8 per core, and keeps what was freed in each; the worker's native
 * threads (the LiveKit FFI's Rust runtime, WebRTC) spread the voice sessions' allocations over
 * them. Measured with bench/voice.ts (docs/capacity.md, "Memory after voice sessions"): native
 * memory with 10 sessions open 112-154 MiB with 2 arenas against 184-185 with glibc's defaults.
 */
export const WORKER_MALLOC_ENV: Readonly<Record<string, string>> = Object.freeze({ MALLOC_ARENA_MAX: "2" });

/** `env` with the worker's malloc settings (WORKER_MALLOC_ENV) where it does not set them itself. */
export function withWorkerMallocEnv(env: Env): Env {
  const out: Env = { ...env };
  for (const [name, value] of Object.entries(WORKER_MALLOC_ENV)) {
    if (out[name] === undefined || out[name] === "") out[name] = value;
  }
  return out;
}

export function envInt(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === "") return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new ConfigError(`${name} must be an integer from ${min} to ${max}, got ${JSON.stringify(raw)}`);
  }
  return value;
}

/** Runs `steps` once on the first SIGTERM or SIGINT, then exits. */
export function onShutdown(log: Logger, steps: ReadonlyArray<() => Promise<unknown>>): void {
  let stopping = false;
  const shutdown = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, "shutting down");
    steps
      .reduce<Promise<unknown>>((previous, step) => previous.then(step), Promise.resolve())
      .then(
        () => process.exit(0),
        (err: unknown) => {
          log.error({ err: toWireError(err) }, "shutdown failed");
          process.exit(1);
        },
      );
  };
  process.on("SIGTERM", () => shutdown("SIGTERM"));
  process.on("SIGINT", () => shutdown("SIGINT"));
}
