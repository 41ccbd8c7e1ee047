/**
 * Token buckets per API key and per tenant that hold across every gateway: each bucket is one
 * entry of a NATS KV bucket, changed only by compare-and-set (`create` for a new bucket,
 * `update(revision)` after), so two gateways taking the same last token cannot both win. A full
 * bucket is the absence of an entry; entries expire once a bucket would have refilled anyway.
 * The clock is the wall clock of the gateway taking the token (gateways are assumed NTP-synced).
 * While the KV store does not answer (NATS restarting, the bucket's stream electing a leader), a
 * take polls it again (bus/startup.ts `retryWhileUnavailable`) while `waitMs` lasts before it
 * refuses with SF_ERR_RATE_LIMIT_UNAVAILABLE.
 */
import type { KV } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import {
  BusErrorCodes,
  ensureKvBucket,
  natsUnavailableError,
  retryWhileUnavailable,
  SfError,
} from "../bus/index.ts";
import { RateLimitedError } from "./errors.ts";

export interface RateLimiterOptions {
  nc: NatsConnection;
  /** KV bucket name shared by every gateway. */
  bucket: string;
  /** Requests per minute per API key; 0 disables. */
  perMinuteKey: number;
  /** Requests per minute per tenant; 0 disables. */
  perMinuteTenant: number;
  /** Compare-and-set attempts per bucket before giving up under contention. Default 50. */
  maxAttempts?: number;
  /**
   * Replicas of the KV bucket (SF_STREAM_REPLICAS, as the hosts' buckets). Default 1. On a
   * cluster, one replica makes every trigger wait for the one node that holds it.
   */
  replicas?: number;
  /**
   * How long a take waits for a KV store that does not answer before it refuses (the gateway
   * passes its request deadline, SF_GATEWAY_REQUEST_TIMEOUT_MS). Default 0: refuse at once.
   */
  waitMs?: number;
}

interface BucketState {
  /** Tokens left at `at`. */
  tokens: number;
  /** Wall clock of the last change, ms. */
  at: number;
}

const MINUTE_MS = 60_000;
/** One KV read or write of a bucket: local and small, so a second without an answer means lost. */
const KV_OP_TIMEOUT_MS = 1000;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

export const RateLimitErrorCodes = {
  /** The shared bucket store could not be reached or stayed contended. */
  UNAVAILABLE: "SF_ERR_RATE_LIMIT_UNAVAILABLE",
} as const;

export class RateLimiter {
  readonly #o: Required<RateLimiterOptions>;
  #kv: Promise<KV> | undefined;

  constructor(options: RateLimiterOptions) {
    this.#o = { maxAttempts: 50, replicas: 1, waitMs: 0, ...options };
  }

  get enabled(): boolean {
    return this.#o.perMinuteKey > 0 || this.#o.perMinuteTenant > 0;
  }

  /**
   * Takes one token from the API key's bucket, then one from the tenant's; throws
   * SF_ERR_RATE_LIMITED (429, `retry_after_seconds`) when either is empty. A request refused by
   * the tenant bucket has spent its key token: the key limit is the finer one.
   */
  async take(tenant: string, apiKeyId: string | undefined): Promise<void> {
    if (apiKeyId !== undefined && this.#o.perMinuteKey > 0) {
      await this.#takeOne(`key.${apiKeyId}`, "api_key", this.#o.perMinuteKey);
    }
    if (this.#o.perMinuteTenant > 0) {
      await this.#takeOne(`tenant.${tenant}`, "tenant", this.#o.perMinuteTenant);
    }
  }

  #bucket(): Promise<KV> {
    this.#kv ??= this.#open();
    return this.#kv;
  }

  async #open(): Promise<KV> {
    try {
      return await ensureKvBucket(this.#o.nc, this.#o.bucket, {
        ttlMs: 2 * MINUTE_MS,
        replicas: this.#o.replicas,
        // A read or write lost in a NATS restart is given up on after this and tried again (within
        // waitMs), instead of being waited for until JetStream's default 5 s.
        timeoutMs: KV_OP_TIMEOUT_MS,
      });
    } catch (err) {
      // Try again on the next request rather than keep a failed handle.
      this.#kv = undefined;
      throw err;
    }
  }

  /** One token from one bucket, polling a KV store that does not answer while `waitMs` lasts. */
  #takeOne(key: string, scope: "api_key" | "tenant", perMinute: number): Promise<void> {
    return retryWhileUnavailable("rate limit bucket", () => this.#tryTakeOne(key, scope, perMinute), {
      deadlineMs: this.#o.waitMs,
      backoffMs: 25,
      maxBackoffMs: 500,
      retryable: transient,
    });
  }

  async #tryTakeOne(key: string, scope: "api_key" | "tenant", perMinute: number): Promise<void> {
    let kv: KV;
    try {
      kv = await this.#bucket();
    } catch (err) {
      throw unavailable(err);
    }
    const perMs = perMinute / MINUTE_MS;
    for (let attempt = 0; attempt < this.#o.maxAttempts; attempt += 1) {
      let entry;
      try {
        entry = await kv.get(key);
      } catch (err) {
        throw unavailable(err);
      }
      const now = Date.now();
      let revision = 0;
      let state: BucketState = { tokens: perMinute, at: now };
      if (entry !== null && entry.operation === "PUT" && entry.value.length > 0) {
        const stored = JSON.parse(decoder.decode(entry.value)) as BucketState;
        revision = entry.revision;
        const elapsed = Math.max(0, now - stored.at);
        state = { tokens: Math.min(perMinute, stored.tokens + elapsed * perMs), at: now };
      } else if (entry !== null) {
        revision = entry.revision;
      }
      if (state.tokens < 1) {
        const retryAfterSeconds = Math.max(1, Math.ceil((1 - state.tokens) / perMs / 1000));
        throw new RateLimitedError(scope, perMinute, retryAfterSeconds);
      }
      const next = encoder.encode(JSON.stringify({ tokens: state.tokens - 1, at: now }));
      try {
        if (revision === 0) await kv.create(key, next);
        else await kv.update(key, next, revision);
        return;
      } catch (err) {
        // Another gateway changed the bucket first (wrong last sequence): read it again.
        if (!isCasConflict(err)) throw unavailable(err);
      }
    }
    throw new SfError(RateLimitErrorCodes.UNAVAILABLE, "the rate limit bucket stayed contended", {
      retryable: true,
      details: { scope },
    });
  }
}

/** The KV store did not answer (NATS restarting, its stream electing a leader): 503, retry. */
function unavailable(err: unknown): SfError {
  return new SfError(RateLimitErrorCodes.UNAVAILABLE, "the rate limit store is unavailable", {
    cause: err,
    retryable: true,
  });
}

/** A refusal because NATS did not answer (not contention, not a closed connection): worth polling. */
function transient(err: unknown): boolean {
  if (!(err instanceof SfError) || err.code !== RateLimitErrorCodes.UNAVAILABLE) return false;
  const nats = natsUnavailableError(err.cause);
  return nats !== undefined && nats.code !== BusErrorCodes.CONNECTION_CLOSED;
}

function isCasConflict(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const code = (err as { code?: unknown }).code;
  const text = `${err.message} ${typeof code === "string" || typeof code === "number" ? code : ""}`;
  return /wrong last sequence|10071|key exists|10164/i.test(text);
}
