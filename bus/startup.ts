/**
 * Start-up steps that talk to JetStream (creating streams, buckets and consumers) while the
 * cluster may not answer yet: a node just started, or stream leaders are being elected after a
 * node was lost. Such a step is retried while its failure means "NATS did not answer" (a
 * retryable SfError, or a NATS client error that natsUnavailableError recognises) or "not enough
 * cluster nodes up to place the replicas", with backoff, until a deadline; any other failure, or
 * the deadline, ends the start-up as before. Other callers that wait out NATS (the gateway's rate
 * limiter) use the same loop with their own deadline, backoff and test of what is worth retrying.
 */
import { JetStreamApiError } from "@nats-io/jetstream";
import { causeChain, natsUnavailableError, SfError } from "./errors.ts";
import { pause } from "./request.ts";

export interface StartupRetryOptions {
  /** Give up after this long (before a wait that would end past it). Default 60000 ms. */
  deadlineMs?: number;
  /** The first wait between attempts, doubled after each; default 250 ms. */
  backoffMs?: number;
  /** The longest wait between attempts; default 4000 ms. */
  maxBackoffMs?: number;
  /** Which failures are worth another attempt; default: NATS did not answer (see above). */
  retryable?: (err: unknown) => boolean;
  /** Told about each retryable failure before the next attempt. */
  onRetry?: (what: string, attempt: number, err: unknown) => void;
  /** Ends the waiting early (shutdown). */
  signal?: AbortSignal;
}

/**
 * JetStream's "no suitable peers for placement" (err_code 10005): the meta leader does not see
 * enough nodes up for the replicas asked, while a node restarts or a cluster is still forming (an
 * actor host of the chaos run's 3-node phase failed its start-up on "peer offline" this way). It
 * passes once the node is back; a cluster that stays short of nodes still fails at the deadline.
 */
const JETSTREAM_NO_PEERS_FOR_PLACEMENT = 10005;

function waitsForPlacement(err: unknown): boolean {
  for (const link of causeChain(err)) {
    if (link instanceof JetStreamApiError && link.code === JETSTREAM_NO_PEERS_FOR_PLACEMENT) return true;
  }
  return false;
}

function isRetryable(err: unknown): boolean {
  if (err instanceof SfError) return err.retryable;
  return natsUnavailableError(err) !== undefined || waitsForPlacement(err);
}

export async function retryWhileUnavailable<T>(
  what: string,
  step: () => Promise<T>,
  options: StartupRetryOptions = {},
): Promise<T> {
  const deadline = performance.now() + (options.deadlineMs ?? 60_000);
  const retryable = options.retryable ?? isRetryable;
  const maxBackoffMs = options.maxBackoffMs ?? 4000;
  let backoffMs = options.backoffMs ?? 250;
  for (let attempt = 1; ; attempt += 1) {
    try {
      return await step();
    } catch (err) {
      if (!retryable(err) || performance.now() + backoffMs > deadline || options.signal?.aborted === true) {
        throw err;
      }
      options.onRetry?.(what, attempt, err);
      await pause(backoffMs, options.signal);
      backoffMs = Math.min(backoffMs * 2, maxBackoffMs);
    }
  }
}
