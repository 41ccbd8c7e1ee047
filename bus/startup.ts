/**
 * Start-up steps that talk to JetStream (creating streams, buckets and consumers) while the
 * cluster may not answer yet: a node just started, or stream leaders are being elected after a
 * node was lost. Such a step is retried while its failure means "NATS did not answer" (a
 * retryable SfError, or a NATS client error that natsUnavailableError recognises), with backoff,
 * until a deadline; any other failure, or the deadline, ends the start-up as before.
 */
import { natsUnavailableError, SfError } from "./errors.ts";
import { pause } from "./request.ts";

export interface StartupRetryOptions {
  /** Give up after this long. Default 60000 ms. */
  deadlineMs?: number;
  /** Told about each retryable failure before the next attempt. */
  onRetry?: (what: string, attempt: number, err: unknown) => void;
  /** Ends the waiting early (shutdown). */
  signal?: AbortSignal;
}

function isRetryable(err: unknown): boolean {
  if (err instanceof SfError) return err.retryable;
  return natsUnavailableError(err) !== undefined;
}

export async function retryWhileUnavailable<T>(
  what: string,
  step: () => Promise<T>,
  options: StartupRetryOptions = {},
): Promise<T> {
  const deadline = performance.now() + (options.deadlineMs ?? 60_000);
  let backoffMs = 250;
  for (let attempt = 1; ; attempt += 1) {
    try {
      return await step();
    } catch (err) {
      if (!isRetryable(err) || performance.now() + backoffMs > deadline || options.signal?.aborted === true) {
        throw err;
      }
      options.onRetry?.(what, attempt, err);
      await pause(backoffMs, options.signal);
      backoffMs = Math.min(backoffMs * 2, 4000);
    }
  }
}
