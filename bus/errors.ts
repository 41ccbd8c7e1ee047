/**
 * Errors with stable codes. Every error the platform raises on purpose is an `SfError` with a
 * `code` from a registry (fastify's FST_ERR_* is the model). Errors that cross NATS travel as
 * plain data (`WireError`) and are rebuilt into an `SfError` with the same code on the other side.
 * The NATS client's own errors that mean "the server or JetStream did not answer now" (a timeout,
 * no responders during a leader election, a closed connection) are coded retryable too, never
 * SF_ERR_INTERNAL: their outcome is unknown, and a retry is what the caller should do.
 */
import { JetStreamApiError } from "@nats-io/jetstream";
import { errors } from "@nats-io/transport-node";

export const BusErrorCodes = {
  /** No host answered within the caller's overall deadline. */
  TIMEOUT: "SF_ERR_TIMEOUT",
  /** Nobody subscribed to the subject, and the deadline ran out while retrying. */
  NO_RESPONDERS: "SF_ERR_NO_RESPONDERS",
  /** The payload could not be decoded or its envelope is not one we speak. */
  BAD_MESSAGE: "SF_ERR_BAD_MESSAGE",
  /** An operation name nobody implements. */
  UNKNOWN_OP: "SF_ERR_UNKNOWN_OP",
  /** A tenant id is missing or malformed. */
  BAD_TENANT: "SF_ERR_BAD_TENANT",
  /** The actor's mailbox is full: try again later. */
  OVERLOADED: "SF_ERR_OVERLOADED",
  /** The receiver no longer owns the tenant (lost its lease). */
  NOT_OWNER: "SF_ERR_NOT_OWNER",
  /** A write carried an epoch older than the newest owner's. */
  FENCED: "SF_ERR_FENCED",
  /** A dependency (JetStream, KV) did not answer in time: the outcome is unknown, retry. */
  UNAVAILABLE: "SF_ERR_UNAVAILABLE",
  /** The connection to NATS is closed or draining. */
  CONNECTION_CLOSED: "SF_ERR_CONNECTION_CLOSED",
  /** An error that had no code of its own (a bug): its message is kept, its stack is not sent. */
  INTERNAL: "SF_ERR_INTERNAL",
} as const;

export type BusErrorCode = (typeof BusErrorCodes)[keyof typeof BusErrorCodes];

/** An error as it crosses the bus: plain data only. */
export interface WireError {
  code: string;
  message: string;
  retryable: boolean;
  details?: Record<string, unknown>;
}

export interface SfErrorOptions {
  cause?: unknown;
  retryable?: boolean;
  details?: Record<string, unknown>;
}

/** The base of every coded error in Sidekick Forge. */
export class SfError extends Error {
  override name = "SfError";
  readonly code: string;
  readonly retryable: boolean;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: string, message: string, options: SfErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.retryable = options.retryable ?? false;
    this.details = options.details;
  }

  toWire(): WireError {
    const wire: WireError = { code: this.code, message: this.message, retryable: this.retryable };
    if (this.details !== undefined) wire.details = this.details;
    return wire;
  }
}

/** An error that came back from another process over NATS. */
export class RemoteError extends SfError {
  override name = "RemoteError";
}

/** HTTP-like status JetStream answers with while a stream or the meta layer has no leader. */
const JETSTREAM_UNAVAILABLE_STATUS = 503;
/**
 * "duplicate message id is in process": another publish with the same Nats-Msg-Id is still being
 * stored (two deliveries of one job saying the same event, around a leader change). The message is
 * not lost: a retry gets the duplicate ack once it is stored.
 */
const JETSTREAM_DUPLICATE_IN_PROCESS = 10158;

/**
 * An error and its causes, outermost first, at most four deep: the NATS clients wrap what went
 * wrong (a JetStream call's failure in a request error in a connection error), so a check for a
 * kind of failure reads the chain.
 */
export function* causeChain(err: unknown): Generator<Error> {
  let link: unknown = err;
  for (let depth = 0; depth < 4 && link instanceof Error; depth += 1, link = link.cause) yield link;
}

/**
 * A NATS client error that says the server, or JetStream behind it, did not answer now (the
 * outcome of the call is unknown): coded SF_ERR_UNAVAILABLE, or SF_ERR_CONNECTION_CLOSED for a
 * closed connection, both retryable. Undefined for anything else. The client wraps the first
 * cause (a JetStream publish with no stream leader to answer is "jetstream is not enabled" caused
 * by a request error caused by no responders), so the cause chain is read.
 */
export function natsUnavailableError(err: unknown): SfError | undefined {
  if (!(err instanceof Error)) return undefined;
  let unanswered = false;
  for (const link of causeChain(err)) {
    if (link instanceof errors.ClosedConnectionError || link instanceof errors.DrainingConnectionError) {
      return new SfError(BusErrorCodes.CONNECTION_CLOSED, "the NATS connection is closed", {
        cause: err,
        retryable: true,
      });
    }
    if (
      link instanceof errors.TimeoutError ||
      link instanceof errors.NoRespondersError ||
      link instanceof errors.ConnectionError ||
      (link instanceof errors.RequestError && /^connection (closed|disconnected)$/.test(link.message)) ||
      (link instanceof JetStreamApiError &&
        (link.status === JETSTREAM_UNAVAILABLE_STATUS || link.code === JETSTREAM_DUPLICATE_IN_PROCESS))
    ) {
      unanswered = true;
    }
  }
  if (!unanswered) return undefined;
  // The client's text (subjects, key names) stays in the cause, for the logs.
  return new SfError(BusErrorCodes.UNAVAILABLE, "NATS did not answer in time; the outcome is unknown", {
    cause: err,
    retryable: true,
  });
}

/**
 * Turns anything thrown into wire data: an SfError as it is, a NATS client error that means "no
 * answer now" as SF_ERR_UNAVAILABLE (retryable), anything else as SF_ERR_INTERNAL.
 */
export function toWireError(err: unknown): WireError {
  if (err instanceof SfError) return err.toWire();
  const unavailable = natsUnavailableError(err);
  if (unavailable !== undefined) return unavailable.toWire();
  const message = err instanceof Error ? err.message : String(err);
  return { code: BusErrorCodes.INTERNAL, message, retryable: false };
}

/** Rebuilds wire data into an error carrying the same code. */
export function fromWireError(wire: WireError): RemoteError {
  const options: SfErrorOptions = { retryable: wire.retryable };
  if (wire.details !== undefined) options.details = wire.details;
  return new RemoteError(wire.code, wire.message, options);
}

export function isWireError(value: unknown): value is WireError {
  if (typeof value !== "object" || value === null) return false;
  const v = value as Record<string, unknown>;
  return (
    typeof v["code"] === "string" && typeof v["message"] === "string" && typeof v["retryable"] === "boolean"
  );
}
