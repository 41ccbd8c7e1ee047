/**
 * Closing with deadlines: a voice session's end must never wait on a promise that may not settle
 * (the agent session's close, leaving the room). Past its deadline the work is left behind, its
 * eventual failure logged, and the caller goes on.
 */
import type { Logger } from "pino";
import { toWireError } from "../../bus/index.ts";
import type { AgentRuntime } from "./voice_runtime.ts";

/**
 * Waits for `work` at most `limitMs`: "late" when the deadline came first. A failure (before the
 * deadline or after it) goes to `failed`, never to the caller.
 */
export async function settleWithin(
  work: Promise<unknown>,
  limitMs: number,
  failed: (err: unknown) => void,
): Promise<"settled" | "late"> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<"late">((resolve) => {
    timer = setTimeout(() => resolve("late"), limitMs);
  });
  const settled = work.then(
    () => "settled" as const,
    (err: unknown) => {
      failed(err);
      return "settled" as const;
    },
  );
  try {
    return await Promise.race([settled, late]);
  } finally {
    clearTimeout(timer);
  }
}

export interface CloseRuntimeOptions {
  /** Let the reply in progress finish first (within `drainTimeoutMs`). */
  drain: boolean;
  drainTimeoutMs: number;
  /** How long the close without drain may take before the session is left behind. */
  closeTimeoutMs: number;
  log: Logger;
}

/**
 * How closing an agent session ended: "closed"; "cut_short" (the drain outlasted its deadline,
 * the close without drain did not); "abandoned" (that close outlasted its deadline too).
 */
export type RuntimeCloseOutcome = "closed" | "cut_short" | "abandoned";

/** Ends the agent session within `drainTimeoutMs` (when draining) plus `closeTimeoutMs`. */
export async function closeAgentRuntime(
  runtime: AgentRuntime,
  options: CloseRuntimeOptions,
): Promise<RuntimeCloseOutcome> {
  const { log } = options;
  const failed = (err: unknown): void =>
    log.warn({ err: toWireError(err) }, "closing the agent session failed");
  const started = performance.now();
  let outcome: RuntimeCloseOutcome = "closed";
  if (options.drain) {
    const limitMs = options.drainTimeoutMs;
    if ((await settleWithin(runtime.close({ drain: true }), limitMs, failed)) === "late") {
      log.warn({ limitMs }, "the agent session did not finish in time; closing it");
      outcome = "cut_short";
    }
  }
  if (outcome === "cut_short" || !options.drain) {
    const limitMs = options.closeTimeoutMs;
    if ((await settleWithin(runtime.close({ drain: false }), limitMs, failed)) === "late") {
      log.error({ limitMs }, "the agent session did not close in time; leaving it behind");
      return "abandoned";
    }
  }
  log.debug({ ms: Math.round(performance.now() - started), outcome }, "agent session closed");
  return outcome;
}
