/**
 * Confirmed dispatch, on the producing side. A job is published to SF_DISPATCH with its id as
 * `Nats-Msg-Id` (a retried trigger inside the duplicate window never makes a second job), and
 * the caller is answered only once a worker has said `claimed` on SF_EVENTS. If nobody claims it
 * before the deadline, the job is withdrawn from the stream and the caller gets
 * SF_ERR_NO_AGENT_CAPACITY: a dispatch is never silently dropped. The outcome (`done`, or
 * `failed` with `final: true` and the worker's last error) can be awaited the same way.
 *
 * One Dispatcher per host: a single subscription on `<prefix>.job.>` routes events to waiters.
 *
 * The withdrawal at the claim deadline is a timer's side effect: it happens only while the caller
 * (the tenant's owner) still owns the tenant (`DispatchOptions.stillOwner`). An owner frozen past
 * its lease wakes with its deadline long gone; the job it published is now the job the new owner
 * found by its id, and a worker may be about to claim it, so the woken host leaves it alone.
 */
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import type { JetStreamClient } from "@nats-io/jetstream";
import type { NatsConnection, Subscription } from "@nats-io/transport-node";
import type { Logger } from "pino";
import { decodeBody, encodeBody, fromWireError, isWireError, SfError } from "../../bus/index.ts";
import type { Subjects } from "../../bus/index.ts";
import type { DispatchStats } from "./dispatch_stats.ts";
import type { DispatchJob, JobEvent } from "./job.ts";

export const DispatchErrorCodes = {
  /** No worker claimed the job before the deadline; it was withdrawn. */
  NO_AGENT_CAPACITY: "SF_ERR_NO_AGENT_CAPACITY",
  /** The job ran out of attempts; `details.error` is the worker's last error. */
  JOB_FAILED: "SF_ERR_JOB_FAILED",
} as const;

export interface Claim {
  jobId: string;
  workerId: string;
  /** Wall-clock epoch ms of the claim. */
  claimedAt: number;
  /** ms from publish to claim. */
  claimMs: number;
  /** True when the stream had this job already (a retried trigger). */
  duplicate: boolean;
}

interface Waiter {
  onEvent(event: JobEvent): void;
}

/** The decoded body as a job event when it has every field its type needs, else undefined. */
function asJobEvent(value: unknown): JobEvent | undefined {
  if (typeof value !== "object" || value === null) return undefined;
  const v = value as Record<string, unknown>;
  if (typeof v["jobId"] !== "string" || typeof v["workerId"] !== "string" || typeof v["at"] !== "number") {
    return undefined;
  }
  switch (v["type"]) {
    case "joined":
    case "answered":
    case "done":
      return value as JobEvent;
    case "claimed":
      return typeof v["delivery"] === "number" ? (value as JobEvent) : undefined;
    case "failed":
      return typeof v["delivery"] === "number" && typeof v["final"] === "boolean" && isWireError(v["error"])
        ? (value as JobEvent)
        : undefined;
    default:
      return undefined;
  }
}

export interface DispatcherOptions {
  nc: NatsConnection;
  subjects: Subjects;
  log: Logger;
  /** How long a job may wait for a worker to claim it. Default 10000 ms. */
  claimTimeoutMs?: number;
  /** Where claims, withdrawals and final failures are counted (the dashboard's dispatch window). */
  stats?: DispatchStats;
}

export interface DispatchOptions {
  /**
   * True while the dispatching actor still owns its tenant (ActorContext.stillOwner). Checked
   * before the claim deadline withdraws the job: a host that is no longer the owner withdraws
   * nothing. Default: always the owner (a dispatcher used outside an actor).
   */
  stillOwner?: () => boolean;
}

export class Dispatcher {
  readonly #nc: NatsConnection;
  readonly #subjects: Subjects;
  readonly #log: Logger;
  readonly #claimTimeoutMs: number;
  readonly #js: JetStreamClient;
  readonly #stats: DispatchStats | undefined;
  readonly #waiters = new Map<string, Set<Waiter>>();
  #sub: Subscription | undefined;

  constructor(options: DispatcherOptions) {
    this.#nc = options.nc;
    this.#subjects = options.subjects;
    this.#log = options.log;
    this.#claimTimeoutMs = options.claimTimeoutMs ?? 10_000;
    this.#js = jetstream(options.nc);
    this.#stats = options.stats;
  }

  start(): void {
    this.#sub = this.#nc.subscribe(`${this.#subjects.prefix}.job.>`, {
      callback: (err, msg) => {
        if (err) {
          this.#log.warn({ err: err.message }, "job event subscription error");
          return;
        }
        let event: JobEvent | undefined;
        try {
          event = asJobEvent(decodeBody(msg.data));
        } catch (e) {
          this.#log.warn({ subject: msg.subject, err: (e as Error).message }, "undecodable job event");
          return;
        }
        // Anything on these subjects may be published by anyone: a body that is not an event is
        // skipped (a throw here would stop the connection's reader, and with it the whole host).
        if (event === undefined) {
          this.#log.warn({ subject: msg.subject }, "malformed job event skipped");
          return;
        }
        const waiters = this.#waiters.get(event.jobId);
        if (waiters !== undefined) for (const w of [...waiters]) w.onEvent(event);
      },
    });
  }

  async stop(): Promise<void> {
    await this.#sub?.drain();
  }

  #watch(jobId: string, waiter: Waiter): () => void {
    let set = this.#waiters.get(jobId);
    if (set === undefined) {
      set = new Set();
      this.#waiters.set(jobId, set);
    }
    set.add(waiter);
    return () => {
      set.delete(waiter);
      if (set.size === 0) this.#waiters.delete(jobId);
    };
  }

  /**
   * Publishes the job and resolves once a worker claims it. Starts watching the job's outcome
   * first, so `outcome` below never misses a fast worker.
   */
  async dispatch(
    job: DispatchJob,
    options: DispatchOptions = {},
  ): Promise<{ claim: Claim; outcome: Promise<void> }> {
    const stillOwner = options.stillOwner ?? (() => true);
    const started = performance.now();
    let resolveClaim!: (claim: { workerId: string; at: number }) => void;
    let rejectClaim!: (err: Error) => void;
    const claimed = new Promise<{ workerId: string; at: number }>((resolve, reject) => {
      resolveClaim = resolve;
      rejectClaim = reject;
    });
    let resolveOutcome!: () => void;
    let rejectOutcome!: (err: Error) => void;
    const outcome = new Promise<void>((resolve, reject) => {
      resolveOutcome = resolve;
      rejectOutcome = reject;
    });
    // A caller may want only the claim: the outcome's failure is still on record here.
    outcome.catch((err: unknown) =>
      this.#log.info({ tenant: job.tenant, jobId: job.jobId, err: (err as Error).message }, "job failed"),
    );
    const unwatch = this.#watch(job.jobId, {
      onEvent: (event) => {
        if (event.type === "claimed") resolveClaim({ workerId: event.workerId, at: event.at });
        if (event.type === "done") {
          resolveOutcome();
          unwatch();
        }
        if (event.type === "failed" && event.final) {
          this.#stats?.record("failed");
          const err = new SfError(
            DispatchErrorCodes.JOB_FAILED,
            `job ${job.jobId} failed: ${event.error.message}`,
            {
              cause: fromWireError(event.error),
              details: { jobId: job.jobId, error: event.error },
            },
          );
          rejectClaim(err);
          rejectOutcome(err);
          unwatch();
        }
      },
    });
    let ack;
    try {
      ack = await this.#js.publish(this.#subjects.dispatch(job.tenant, job.mode), encodeBody(job), {
        msgID: job.jobId,
      });
    } catch (err) {
      unwatch();
      throw err;
    }
    if (ack.duplicate) {
      // A retried trigger: the job exists already. What happened to it is on record in SF_EVENTS.
      for (const event of await this.#recorded(job)) {
        if (event.type === "claimed") resolveClaim({ workerId: event.workerId, at: event.at });
      }
      for (const event of await this.#recorded(job)) {
        if (event.type !== "claimed") this.#waiters.get(job.jobId)?.forEach((w) => w.onEvent(event));
      }
    }
    const timer = setTimeout(() => {
      rejectClaim(
        new SfError(
          DispatchErrorCodes.NO_AGENT_CAPACITY,
          `no agent worker claimed job ${job.jobId} in time`,
          {
            retryable: true,
            details: { jobId: job.jobId, waitedMs: this.#claimTimeoutMs },
          },
        ),
      );
    }, this.#claimTimeoutMs);
    try {
      const claim = await claimed;
      const claimMs = Math.round((performance.now() - started) * 100) / 100;
      if (!ack.duplicate) this.#stats?.claimed(job.mode, claimMs);
      return {
        claim: {
          jobId: job.jobId,
          workerId: claim.workerId,
          claimedAt: claim.at,
          claimMs,
          duplicate: ack.duplicate,
        },
        outcome,
      };
    } catch (err) {
      if (err instanceof SfError && err.code === DispatchErrorCodes.NO_AGENT_CAPACITY) {
        if (stillOwner()) {
          this.#stats?.record("no_capacity");
          // Withdraw it so no worker starts it after the caller was told there was no capacity.
          await this.#withdraw(ack.seq, job);
        } else {
          // Our lease lapsed (we were frozen): the job is the new owner's now, and nobody hears
          // this caller's answer. Leave the stream as it is.
          this.#log.info(
            { tenant: job.tenant, jobId: job.jobId },
            "job not withdrawn: this host no longer owns its tenant",
          );
        }
        unwatch();
      }
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  /** The job's recorded events (claimed, done, final failure), read from SF_EVENTS. */
  async #recorded(job: DispatchJob): Promise<JobEvent[]> {
    const jsm = await jetstreamManager(this.#nc);
    const events: JobEvent[] = [];
    for (const type of ["claimed", "done", "failed"] as const) {
      try {
        const msg = await jsm.streams.getMessage(this.#subjects.streams.events, {
          last_by_subj: this.#subjects.jobEvent(job.tenant, job.jobId, type),
        });
        const event = msg === null ? undefined : asJobEvent(decodeBody(msg.data));
        if (event !== undefined) events.push(event);
      } catch (err) {
        if (!(err instanceof Error && /no message found/i.test(err.message))) throw err;
      }
    }
    return events;
  }

  async #withdraw(seq: number, job: DispatchJob): Promise<void> {
    try {
      const jsm = await jetstreamManager(this.#nc);
      await jsm.streams.deleteMessage(this.#subjects.streams.dispatch, seq, false);
      this.#log.warn({ tenant: job.tenant, jobId: job.jobId }, "job withdrawn: no worker claimed it");
    } catch (err) {
      // Already gone (claimed and finished meanwhile): nothing to withdraw.
      this.#log.info(
        { tenant: job.tenant, jobId: job.jobId, err: (err as Error).message },
        "job not withdrawn",
      );
    }
  }
}
