/**
 * What every process's config module shares: reading integers from the environment with
 * bounds (a bad value is a ConfigError naming the variable), and the shutdown sequence run on
 * SIGTERM/SIGINT (each step in order, then exit 0; any failure is logged and exits 1).
 */
import type { Logger } from "pino";
import { toWireError } from "../../bus/index.ts";
import { ConfigError } from "../errors.ts";

export type Env = Record<string, string | undefined>;

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
