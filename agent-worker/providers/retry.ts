/**
 * Retrying a provider call on retryable coded errors (429, 5xx, network, timeouts), waiting what
 * the provider asked for (`details.retryAfterMs`) or an exponential backoff with jitter. A wait
 * longer than `maxDelayMs` is not attempted: the error goes back to the caller, whose job
 * (ingestion, a chat turn) decides. Streams that already delivered text are not retryable and so
 * are never repeated here.
 */
import { SfError } from "../../bus/index.ts";
import { ProviderAbortedError } from "../errors.ts";

export interface ProviderRetryOptions {
  /** Attempts in all, the first included. Default 3. */
  maxAttempts?: number;
  /** First backoff when the provider gave no Retry-After. Default 250. */
  baseDelayMs?: number;
  /** Longest single wait. Default 10 000. */
  maxDelayMs?: number;
  signal?: AbortSignal;
  /** Called before each wait (for logs and metrics). */
  onRetry?: (event: { attempt: number; delayMs: number; error: SfError }) => void;
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted === true) {
      reject(new ProviderAbortedError("retry wait aborted by the caller"));
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(new ProviderAbortedError("retry wait aborted by the caller"));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

export async function withProviderRetry<T>(
  call: () => Promise<T>,
  options: ProviderRetryOptions = {},
): Promise<T> {
  const maxAttempts = options.maxAttempts ?? 3;
  const baseDelayMs = options.baseDelayMs ?? 250;
  const maxDelayMs = options.maxDelayMs ?? 10_000;
  for (let attempt = 1; ; attempt += 1) {
    try {
      return await call();
    } catch (err) {
      if (!(err instanceof SfError) || !err.retryable || attempt >= maxAttempts) throw err;
      const asked = err.details?.["retryAfterMs"];
      const backoff = baseDelayMs * 2 ** (attempt - 1);
      const delayMs =
        typeof asked === "number" ? asked : Math.round(backoff / 2 + (Math.random() * backoff) / 2);
      if (delayMs > maxDelayMs) throw err;
      options.onRetry?.({ attempt, delayMs, error: err });
      await sleep(delayMs, options.signal);
    }
  }
}
