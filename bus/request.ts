/**
 * Request/reply with an overall deadline. Transport failures (no responders, a lost or slow
 * attempt) and the owner-moved error are retried inside that deadline with the same request
 * id, so the receiver can deduplicate; an error the receiver sends back is rebuilt into a typed
 * `RemoteError` and surfaces at once: a remote error never turns into a timeout.
 */
import { errors } from "@nats-io/transport-node";
import type { NatsConnection } from "@nats-io/transport-node";
import { randomUUID } from "node:crypto";
import { encodeBody, readReply, requestHeaders } from "./codec.ts";
import { BusErrorCodes, fromWireError, SfError } from "./errors.ts";
import { ReplyMux } from "./reply_mux.ts";
import type { InboxOutcome } from "./reply_mux.ts";

export interface RequestOptions {
  /** Overall deadline for the call, all retries included. Default 5000 ms. */
  timeoutMs?: number;
  /** Upper bound for one attempt. Default min(timeoutMs, 2000) ms. */
  attemptTimeoutMs?: number;
  tenant?: string;
  traceId?: string;
  /** Idempotency id, the same on every attempt. Default: a new UUID. */
  requestId?: string;
  /** Remote error codes that are retried within the deadline. Default: SF_ERR_NOT_OWNER, SF_ERR_UNAVAILABLE. */
  retryCodes?: readonly string[];
  /** Aborts the call (and its retries) early. */
  signal?: AbortLike;
}

/**
 * What a call needs of an abort signal. An `AbortSignal` is one; the gateway's requests carry a
 * cheaper one (gateway/request_abort.ts).
 */
export interface AbortLike {
  readonly aborted: boolean;
  addEventListener(type: "abort", listener: () => void, options?: { once?: boolean }): void;
  removeEventListener(type: "abort", listener: () => void): void;
}

export interface RequestResult<T> {
  body: T;
  /** Host id and fencing epoch of the responder, when it sent them. */
  host: string | undefined;
  epoch: number | undefined;
  attempts: number;
  requestId: string;
}

const DEFAULT_RETRY_CODES: readonly string[] = [BusErrorCodes.NOT_OWNER, BusErrorCodes.UNAVAILABLE];

function isClosed(err: unknown): boolean {
  return err instanceof errors.ClosedConnectionError || err instanceof errors.DrainingConnectionError;
}

/** Resolves after `ms`, or early when `signal` aborts. */
export function pause(ms: number, signal: AbortLike | undefined): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done, { once: true });
  });
}

export async function requestReply<T = unknown>(
  nc: NatsConnection,
  subject: string,
  body: unknown,
  options: RequestOptions = {},
): Promise<RequestResult<T>> {
  const timeoutMs = options.timeoutMs ?? 5000;
  const attemptTimeoutMs = Math.min(options.attemptTimeoutMs ?? 2000, timeoutMs);
  const retryCodes = options.retryCodes ?? DEFAULT_RETRY_CODES;
  const requestId = options.requestId ?? randomUUID();
  const traceId = options.traceId ?? requestId;
  const started = performance.now();
  const deadlineWall = Date.now() + timeoutMs;
  const data = encodeBody(body);
  let attempts = 0;
  let backoffMs = 10;
  let lastFailure: SfError | undefined;
  /** The latest retryable error an earlier attempt was answered with. */
  let staleFailure: SfError | undefined;
  const mux = ReplyMux.of(nc);
  // Replies to every attempt are read until the call ends. An answer to an attempt sent earlier
  // counts at once when it is a result or an error that is neither retryable nor retried. A
  // retryable one is stale: the attempt in flight may still succeed (a receiver runs a waiting
  // repeat anew after such an error). It is still what the call fails with when only timeouts
  // follow until the deadline.
  const inbox = mux.inbox();
  try {
    for (;;) {
      const remaining = timeoutMs - (performance.now() - started);
      if (remaining <= 0 || options.signal?.aborted === true) {
        const timedOut = lastFailure === undefined || lastFailure.code === BusErrorCodes.TIMEOUT;
        throw (
          (timedOut ? staleFailure : undefined) ??
          lastFailure ??
          new SfError(BusErrorCodes.TIMEOUT, `no reply on ${subject} within ${timeoutMs} ms`, {
            retryable: true,
          })
        );
      }
      attempts += 1;
      const hdrs = requestHeaders({ tenant: options.tenant, traceId, deadline: deadlineWall, requestId });
      const attemptEnds = performance.now() + Math.max(1, Math.min(attemptTimeoutMs, remaining));
      let outcome: InboxOutcome;
      let decoded: ReturnType<typeof readReply> | undefined;
      try {
        mux.publish(subject, data, hdrs, inbox, attempts);
        for (;;) {
          const wait = attemptEnds - performance.now();
          outcome = wait > 0 ? await inbox.next(wait) : { type: "timeout", attempt: 0 };
          decoded = outcome.type === "reply" ? readReply(outcome.msg) : undefined;
          if (outcome.type === "timeout" || outcome.attempt === attempts) break;
          // An earlier attempt's answer (its no-responders status is stale).
          if (decoded === undefined) continue;
          if (decoded.type === "ok") break;
          if (!decoded.error.retryable && !retryCodes.includes(decoded.error.code)) break;
          staleFailure = fromWireError(decoded.error);
        }
      } catch (err) {
        if (isClosed(err)) {
          throw new SfError(BusErrorCodes.CONNECTION_CLOSED, "the NATS connection is closed", { cause: err });
        }
        throw err;
      }
      if (outcome.type === "no-responders") {
        lastFailure = new SfError(BusErrorCodes.NO_RESPONDERS, `no responders on ${subject}`, {
          retryable: true,
          details: { attempts },
        });
        await pause(Math.min(backoffMs, Math.max(0, remaining)), options.signal);
        backoffMs = Math.min(backoffMs * 2, 200);
        continue;
      }
      if (decoded === undefined) {
        lastFailure = new SfError(BusErrorCodes.TIMEOUT, `no reply on ${subject} within ${timeoutMs} ms`, {
          retryable: true,
          details: { attempts },
        });
        continue;
      }
      if (decoded.type === "ok") {
        return { body: decoded.body as T, host: decoded.host, epoch: decoded.epoch, attempts, requestId };
      }
      const remote = fromWireError(decoded.error);
      if (retryCodes.includes(remote.code)) {
        lastFailure = remote;
        await pause(Math.min(backoffMs, Math.max(0, remaining)), options.signal);
        backoffMs = Math.min(backoffMs * 2, 200);
        continue;
      }
      throw remote;
    }
  } finally {
    inbox.close();
  }
}
