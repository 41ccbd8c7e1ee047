/**
 * Coded errors of agent-worker/. Provider errors carry `details.provider` and `details.kind`
 * (and `status` for HTTP failures) so a caller can report which provider failed and how; none
 * of them ever carries an API key, and response bodies appear only as a short, key-scrubbed
 * excerpt in `details.excerpt`.
 */
import { SfError } from "../bus/index.ts";
import type { SfErrorOptions } from "../bus/index.ts";

export const AgentWorkerErrorCodes = {
  /** Unknown provider, no key for it, or a required setting (voice id, model, …) missing. */
  PROVIDER_MISCONFIGURED: "SF_ERR_PROVIDER_MISCONFIGURED",
  /** The provider refused the key (HTTP 401/403). Not retryable. */
  PROVIDER_AUTH: "SF_ERR_PROVIDER_AUTH",
  /** HTTP 429; `details.retryAfterMs` when the provider said how long to wait. Retryable. */
  PROVIDER_RATE_LIMITED: "SF_ERR_PROVIDER_RATE_LIMITED",
  /** HTTP 5xx/408, a refused or reset connection, or an error event from the provider. Retryable. */
  PROVIDER_UNAVAILABLE: "SF_ERR_PROVIDER_UNAVAILABLE",
  /** Any other HTTP 4xx (bad model name, unsupported parameter, …). Not retryable. */
  PROVIDER_REQUEST_REJECTED: "SF_ERR_PROVIDER_REQUEST_REJECTED",
  /** A body that does not parse or does not have the provider's documented shape. */
  PROVIDER_BAD_RESPONSE: "SF_ERR_PROVIDER_BAD_RESPONSE",
  /** A streamed reply ended before its terminator (`data: [DONE]`): never a silent truncation. */
  PROVIDER_STREAM_INTERRUPTED: "SF_ERR_PROVIDER_STREAM_INTERRUPTED",
  /** No first token, or no complete answer, within the configured time. Retryable. */
  PROVIDER_TIMEOUT: "SF_ERR_PROVIDER_TIMEOUT",
  /** The caller's AbortSignal fired. */
  PROVIDER_ABORTED: "SF_ERR_PROVIDER_ABORTED",
  /** A job ran past its queue's deadline (`details.limit_ms`); its slot was freed. Not retryable. */
  JOB_TIMEOUT: "SF_ERR_JOB_TIMEOUT",
  /**
   * Another worker claimed a later delivery of a job this worker was still running (its ack wait
   * had lapsed): this run is aborted and its outcome left to the later one. Not retryable.
   */
  JOB_SUPERSEDED: "SF_ERR_JOB_SUPERSEDED",
} as const;

export type AgentWorkerErrorCode = (typeof AgentWorkerErrorCodes)[keyof typeof AgentWorkerErrorCodes];

export class ProviderMisconfiguredError extends SfError {
  override name = "ProviderMisconfiguredError";
  constructor(message: string, options: SfErrorOptions = {}) {
    super(AgentWorkerErrorCodes.PROVIDER_MISCONFIGURED, message, { ...options, retryable: false });
  }
}

export class ProviderAuthError extends SfError {
  override name = "ProviderAuthError";
  constructor(message: string, options: SfErrorOptions = {}) {
    super(AgentWorkerErrorCodes.PROVIDER_AUTH, message, { ...options, retryable: false });
  }
}

export class ProviderRateLimitedError extends SfError {
  override name = "ProviderRateLimitedError";
  constructor(message: string, options: SfErrorOptions = {}) {
    super(AgentWorkerErrorCodes.PROVIDER_RATE_LIMITED, message, { ...options, retryable: true });
  }
}

export class ProviderUnavailableError extends SfError {
  override name = "ProviderUnavailableError";
  constructor(message: string, options: SfErrorOptions = {}) {
    super(AgentWorkerErrorCodes.PROVIDER_UNAVAILABLE, message, { retryable: true, ...options });
  }
}

export class ProviderRequestRejectedError extends SfError {
  override name = "ProviderRequestRejectedError";
  constructor(message: string, options: SfErrorOptions = {}) {
    super(AgentWorkerErrorCodes.PROVIDER_REQUEST_REJECTED, message, { ...options, retryable: false });
  }
}

export class ProviderBadResponseError extends SfError {
  override name = "ProviderBadResponseError";
  constructor(message: string, options: SfErrorOptions = {}) {
    super(AgentWorkerErrorCodes.PROVIDER_BAD_RESPONSE, message, { ...options, retryable: false });
  }
}

/** `retryable` is true only when nothing had been delivered to the caller yet. */
export class ProviderStreamInterruptedError extends SfError {
  override name = "ProviderStreamInterruptedError";
  constructor(message: string, options: SfErrorOptions = {}) {
    super(AgentWorkerErrorCodes.PROVIDER_STREAM_INTERRUPTED, message, options);
  }
}

export class ProviderTimeoutError extends SfError {
  override name = "ProviderTimeoutError";
  constructor(message: string, options: SfErrorOptions = {}) {
    super(AgentWorkerErrorCodes.PROVIDER_TIMEOUT, message, { retryable: true, ...options });
  }
}

export class ProviderAbortedError extends SfError {
  override name = "ProviderAbortedError";
  constructor(message: string, options: SfErrorOptions = {}) {
    super(AgentWorkerErrorCodes.PROVIDER_ABORTED, message, { ...options, retryable: false });
  }
}

/** A job outlasted its deadline: it is ended, reported failed for good, and its slot freed. */
export class JobTimeoutError extends SfError {
  override name = "JobTimeoutError";
  constructor(message: string, options: SfErrorOptions = {}) {
    super(AgentWorkerErrorCodes.JOB_TIMEOUT, message, { ...options, retryable: false });
  }
}

/** The abort reason of a run whose job another worker claimed again (see JobConsumer). */
export class JobSupersededError extends SfError {
  override name = "JobSupersededError";
  constructor(message: string, options: SfErrorOptions = {}) {
    super(AgentWorkerErrorCodes.JOB_SUPERSEDED, message, { ...options, retryable: false });
  }
}
