/**
 * The worker's side of dispatch: durable pull consumers on SF_DISPATCH shared by every worker (a
 * work queue: each job goes to one worker at a time), one per mode (`<prefix>.dispatch.*.text`,
 * `<prefix>.dispatch.*.voice`: non-overlapping filters, so a worker that admits no more voice
 * sessions still takes text), with a fixed number of slots per worker and queue. Each slot pulls
 * one job when it is free and the worker admits more work, says `claimed` on SF_EVENTS, keeps the
 * job alive with `working()` while it runs, and acks only once the handler has recorded the
 * outcome. A worker that dies leaves its jobs unacked: the server redelivers them to another
 * worker after the ack wait. A job that keeps failing is given up after MaxDeliver attempts and
 * reported `failed` with `final: true` and its last error. A job that runs past its queue's
 * deadline is ended there: its signal is aborted, it is reported `failed` for good
 * (SF_ERR_JOB_TIMEOUT), and its slot is free again, whether or not its handler ever returns.
 *
 * One run per job. JetStream redelivers a message whose ack wait lapsed (the event loop was
 * blocked past it, say) even while its first run goes on, and every delivery of one stream
 * sequence acks, naks and extends the same pending entry: an ack or nak through any of them
 * counts, a stale one's too. So:
 * - a redelivery to the worker that still runs the job starts nothing: the running copy adopts
 *   the newer delivery (heartbeats, the outcome's ack or nak and the MaxDeliver count go through
 *   it), so it is neither lost nor run twice; a delivery of a job this worker has just acked or
 *   terminated (it crossed the ack on the wire) is dropped;
 * - a redelivery claimed by another worker supersedes the run here: each run follows its job's
 *   `claimed` events, and a later delivery's claim by another worker aborts the local run
 *   (SF_ERR_JOB_SUPERSEDED), which then stops heartbeating and records nothing (no `failed`, no
 *   nak that would hand the job out a third time): the later claim owns the job's outcome.
 */
import { AckPolicy, DeliverPolicy, jetstream, jetstreamManager } from "@nats-io/jetstream";
import type { Consumer, JetStreamClient, JsMsg } from "@nats-io/jetstream";
import type { NatsConnection, Subscription } from "@nats-io/transport-node";
import { nanos } from "@nats-io/transport-node";
import type { Logger } from "pino";
import { decodeBody, encodeBody, toWireError } from "../../bus/index.ts";
import type { Subjects, WireError } from "../../bus/index.ts";
import { ingestJobProblem, jobProblem } from "../../actors/index.ts";
import type { DispatchJob, IngestJob, JobEvent } from "../../actors/index.ts";
import { JobSupersededError, JobTimeoutError } from "../errors.ts";

export interface JobContext {
  readonly workerId: string;
  /** 1 for the first delivery. */
  readonly delivery: number;
  /** True on the last delivery MaxDeliver allows: a retryable failure now ends the job. */
  readonly finalAttempt: boolean;
  /** Aborted when the worker must stop at once, or when the job's deadline has passed. */
  readonly signal: AbortSignal;
  /** Publishes a lifecycle event of this job (joined, answered). */
  event(type: "joined" | "answered"): Promise<void>;
}

/** What every job on a work-queue stream carries. */
export interface WorkJob {
  readonly jobId: string;
  readonly tenant: string;
  readonly mode: string;
}

export type JobHandler<J extends WorkJob = DispatchJob> = (job: J, context: JobContext) => Promise<void>;

/** Which work queue a consumer pulls from; default the agent dispatch queue. */
export interface WorkQueue<J extends WorkJob> {
  /** Stream name. */
  stream: string;
  /** Durable consumer shared by every worker. */
  durable: string;
  filterSubject: string;
  /** A reason when a decoded body is not a job of this queue. */
  problem: (body: unknown) => string | undefined;
  /** Only for the type. */
  readonly sample?: J;
}

/** The text jobs of the agent dispatch queue (SF_DISPATCH). */
export function dispatchQueue(subjects: Subjects): WorkQueue<DispatchJob> {
  return {
    stream: subjects.streams.dispatch,
    durable: `${subjects.prefix}-workers`,
    filterSubject: `${subjects.prefix}.dispatch.*.text`,
    problem: jobProblem,
  };
}

/** The voice jobs of the agent dispatch queue (SF_DISPATCH), admitted apart from text. */
export function voiceQueue(subjects: Subjects): WorkQueue<DispatchJob> {
  return {
    stream: subjects.streams.dispatch,
    durable: `${subjects.prefix}-workers-voice`,
    filterSubject: `${subjects.prefix}.dispatch.*.voice`,
    problem: jobProblem,
  };
}

/** The document ingestion queue (SF_INGEST). */
export function ingestQueue(subjects: Subjects): WorkQueue<IngestJob> {
  return {
    stream: subjects.streams.ingest,
    durable: `${subjects.prefix}-ingest`,
    filterSubject: `${subjects.prefix}.ingest.>`,
    problem: ingestJobProblem,
  };
}

export interface JobConsumerOptions<J extends WorkJob = DispatchJob> {
  nc: NatsConnection;
  subjects: Subjects;
  workerId: string;
  handler: JobHandler<J>;
  /** Default `dispatchQueue(subjects)`. */
  queue?: WorkQueue<J>;
  log: Logger;
  /** Jobs in flight at most on this worker. Default 16. */
  slots?: number;
  /** Time without ack or working() before the server redelivers. Default 30000 ms. */
  ackWaitMs?: number;
  /** Deliveries before a job is given up. Default 5. */
  maxDeliver?: number;
  /** Whether the worker can take one more job now (memory, load); default always. */
  admit?: () => boolean;
  /** How long one pull waits for a job. Default 1000 ms (bounds how fast stop() is noticed). */
  pullExpiresMs?: number;
  /**
   * How long one job may run, from its claim to its outcome. Past it the job's signal is aborted,
   * the job is reported failed for good (SF_ERR_JOB_TIMEOUT) and its slot freed. Default 600000 ms.
   */
  jobTimeoutMs?: number;
  /** Called when a job ran past its deadline (for metrics). */
  onJobTimeout?: (job: J) => void;
  /**
   * Called when a delivery of a job did not start a run (for metrics): `adopted`, a redelivery of
   * a job running here; `settled`, a delivery of a job this worker had just acked or terminated;
   * `superseded`, the run here was aborted because another worker claimed a later delivery.
   */
  onDuplicateDelivery?: (job: J, kind: DuplicateDelivery) => void;
}

export type DuplicateDelivery = "adopted" | "settled" | "superseded";

/** One job running on this consumer. */
interface RunningJob {
  /** The job's stream sequence: every delivery of it acks, naks and extends the same entry. */
  readonly streamSequence: number;
  /** The latest delivery to this worker; a redelivery replaces it. */
  msg: JsMsg;
  /** Its delivery count (the server's, which MaxDeliver counts). */
  delivery: number;
  /** Another worker claimed a later delivery: this run's outcome is not recorded. */
  superseded: boolean;
  readonly abort: AbortController;
}

/** Stream sequences of jobs acked or terminated here, remembered to drop deliveries that crossed the ack. */
const SETTLED_MEMORY = 1024;

function retryDelayMs(delivery: number): number {
  return Math.min(250 * 2 ** (delivery - 1), 5000);
}

type ResolvedOptions<J extends WorkJob> = Required<
  Omit<JobConsumerOptions<J>, "admit" | "queue" | "onJobTimeout" | "onDuplicateDelivery">
> &
  Pick<JobConsumerOptions<J>, "onJobTimeout" | "onDuplicateDelivery"> & { admit: () => boolean };

/** How the handler's run ended, or that the deadline came first. */
type Settled = { type: "returned" } | { type: "threw"; err: unknown } | { type: "overdue" };

export class JobConsumer<J extends WorkJob = DispatchJob> {
  readonly #o: ResolvedOptions<J>;
  readonly #queue: WorkQueue<J>;
  readonly #js: JetStreamClient;
  #consumer: Consumer | undefined;
  #running = false;
  #loops: Promise<void>[] = [];
  #inFlight = 0;
  readonly #abort = new AbortController();
  /** The jobs running here, by job id. */
  readonly #runs = new Map<string, RunningJob>();
  /** `<stream sequence>.<job id>` of jobs acked or terminated here (a stream made anew reuses sequences). */
  readonly #settled = new Set<string>();

  constructor(options: JobConsumerOptions<J>) {
    this.#queue = options.queue ?? (dispatchQueue(options.subjects) as unknown as WorkQueue<J>);
    this.#o = {
      slots: 16,
      ackWaitMs: 30_000,
      maxDeliver: 5,
      pullExpiresMs: 1000,
      jobTimeoutMs: 600_000,
      admit: () => true,
      ...options,
    };
    this.#js = jetstream(options.nc);
  }

  get inFlight(): number {
    return this.#inFlight;
  }

  get slots(): number {
    return this.#o.slots;
  }

  /** The durable consumer of text jobs every dispatch worker shares. */
  static durableName(subjects: Subjects): string {
    return dispatchQueue(subjects).durable;
  }

  /** Creates the queue's durable consumer or brings it up to date, idempotently, then pulls. */
  async start(): Promise<void> {
    const { nc } = this.#o;
    const queue = this.#queue;
    const jsm = await jetstreamManager(nc);
    const name = queue.durable;
    const config = {
      durable_name: name,
      filter_subject: queue.filterSubject,
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.All,
      ack_wait: nanos(this.#o.ackWaitMs),
      max_deliver: this.#o.maxDeliver,
      max_ack_pending: 100_000,
    };
    try {
      const existing = await jsm.consumers.info(queue.stream, name);
      await jsm.consumers.update(queue.stream, name, {
        ack_wait: config.ack_wait,
        max_deliver: config.max_deliver,
        max_ack_pending: config.max_ack_pending,
        // A consumer made before the per-mode split (`<prefix>.dispatch.>`) is narrowed to its
        // mode, which a work queue requires before the other mode's consumer can exist.
        ...(existing.config.filter_subject === queue.filterSubject
          ? {}
          : { filter_subject: queue.filterSubject }),
      });
    } catch (err) {
      if (!(err instanceof Error && /consumer not found/i.test(err.message))) throw err;
      await jsm.consumers.add(queue.stream, config);
    }
    this.#consumer = await this.#js.consumers.get(queue.stream, name);
    this.#running = true;
    this.#loops = Array.from({ length: this.#o.slots }, (_, slot) => this.#slotLoop(slot));
  }

  /**
   * The `claimed` events of one job running here, while it runs: a later delivery's claim by
   * another worker supersedes the run. One subscription per run, so a worker hears only the
   * claims of its own jobs.
   */
  #followClaims(job: J, run: RunningJob): Subscription {
    const { nc, subjects, workerId, log } = this.#o;
    return nc.subscribe(subjects.jobEvent(job.tenant, job.jobId, "claimed"), {
      callback: (err, m) => {
        if (err) {
          log.warn({ err: toWireError(err) }, "claim subscription failed");
          return;
        }
        let event: unknown;
        try {
          event = decodeBody(m.data);
        } catch (decodeErr) {
          log.warn({ subject: m.subject, err: toWireError(decodeErr) }, "undecodable claim skipped");
          return;
        }
        if (typeof event !== "object" || event === null) return;
        const claim = event as Partial<Extract<JobEvent, { type: "claimed" }>>;
        if (typeof claim.delivery !== "number" || this.#runs.get(job.jobId) !== run) return;
        if (claim.workerId === workerId || claim.delivery <= run.delivery) return;
        this.#supersede(job.jobId, run, String(claim.workerId), claim.delivery);
      },
    });
  }

  #supersede(jobId: string, run: RunningJob, by: string, delivery: number): void {
    run.superseded = true;
    // Out of the table at once: a later delivery to this worker is a run of its own.
    this.#runs.delete(jobId);
    this.#o.log.warn(
      { jobId, delivery: run.delivery, by, byDelivery: delivery },
      "job claimed again by another worker; aborting the run here",
    );
    run.abort.abort(
      new JobSupersededError(`job ${jobId} was claimed again by worker ${by} (delivery ${delivery})`, {
        details: { job_id: jobId, worker_id: by, delivery },
      }),
    );
  }

  #rememberSettled(streamSequence: number, jobId: string): void {
    this.#settled.add(`${streamSequence}.${jobId}`);
    if (this.#settled.size > SETTLED_MEMORY) {
      const oldest = this.#settled.values().next();
      if (oldest.done !== true) this.#settled.delete(oldest.value);
    }
  }

  /**
   * A delivery of a job that is running here or has just been settled here: handled without a
   * second run. Returns false for a job this worker is not running.
   */
  #duplicate(msg: JsMsg, job: J): boolean {
    const streamSequence = msg.info.streamSequence;
    const jobLog = this.#o.log.child({
      tenant: job.tenant,
      jobId: job.jobId,
      delivery: msg.info.deliveryCount,
    });
    if (this.#settled.has(`${streamSequence}.${job.jobId}`)) {
      // It crossed this worker's ack on the wire; the ack removed the message already.
      jobLog.info("delivery of a job already settled here dropped");
      msg.ack();
      this.#o.onDuplicateDelivery?.(job, "settled");
      return true;
    }
    const run = this.#runs.get(job.jobId);
    if (run === undefined) return false;
    if (run.streamSequence !== streamSequence) {
      // The same job id published again past the dedupe window: run it once this copy has ended.
      jobLog.warn("another copy of a job running here; handing it back until this one ends");
      msg.nak(this.#o.ackWaitMs);
      return true;
    }
    // The ack wait lapsed while the job ran here (a blocked event loop): keep the one run, and
    // answer through the newest delivery; acking or naking either counts for the stream sequence.
    run.msg = msg;
    run.delivery = msg.info.deliveryCount;
    msg.working();
    jobLog.warn("redelivery of a job running here adopted by its run");
    // Claimed again, under the newest delivery: a worker still running an older one steps down.
    this.#publishEvent(job.tenant, job.jobId, {
      type: "claimed",
      jobId: job.jobId,
      workerId: this.#o.workerId,
      delivery: run.delivery,
      at: Date.now(),
    }).catch((err: unknown) => jobLog.warn({ err: toWireError(err) }, "could not record the adopted claim"));
    this.#o.onDuplicateDelivery?.(job, "adopted");
    return true;
  }

  async #slotLoop(slot: number): Promise<void> {
    const consumer = this.#consumer;
    if (consumer === undefined) return;
    while (this.#running) {
      if (!this.#o.admit()) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        continue;
      }
      let msg: JsMsg | null;
      try {
        msg = await consumer.next({ expires: this.#o.pullExpiresMs });
      } catch (err) {
        if (!this.#running) return;
        this.#o.log.warn({ slot, err: toWireError(err) }, "job pull failed");
        await new Promise((resolve) => setTimeout(resolve, 250));
        continue;
      }
      if (msg === null) continue;
      if (!this.#running) {
        // Pulled while stopping: hand it straight back so another worker takes it now.
        msg.nak();
        return;
      }
      await this.#run(msg);
    }
  }

  async #publishEvent(tenant: string, jobId: string, event: JobEvent): Promise<void> {
    await this.#js.publish(this.#o.subjects.jobEvent(tenant, jobId, event.type), encodeBody(event), {
      msgID: `${jobId}.${event.type}.${event.type === "failed" || event.type === "claimed" ? event.delivery : 0}`,
    });
  }

  async #run(msg: JsMsg): Promise<void> {
    const { workerId, log } = this.#o;
    const delivery = msg.info.deliveryCount;
    let job: J;
    try {
      const body = decodeBody(msg.data);
      const problem = this.#queue.problem(body);
      if (problem !== undefined) throw new Error(problem);
      job = body as J;
    } catch (err) {
      log.error({ subject: msg.subject, err: toWireError(err) }, "undecodable job dropped");
      msg.term("undecodable job");
      return;
    }
    if (this.#duplicate(msg, job)) return;
    this.#inFlight += 1;
    const jobLog = log.child({ tenant: job.tenant, jobId: job.jobId, delivery });
    // The job's own signal: the worker stopping, the job's deadline, or a later claim elsewhere.
    const run: RunningJob = {
      streamSequence: msg.info.streamSequence,
      msg,
      delivery,
      superseded: false,
      abort: new AbortController(),
    };
    this.#runs.set(job.jobId, run);
    const claims = this.#followClaims(job, run);
    const heartbeat = setInterval(
      () => {
        if (!run.superseded) run.msg.working();
      },
      Math.max(100, Math.floor(this.#o.ackWaitMs / 3)),
    );
    const jobAbort = run.abort;
    const stop = this.#abort.signal;
    const onStop = (): void => jobAbort.abort(stop.reason);
    if (stop.aborted) onStop();
    else stop.addEventListener("abort", onStop, { once: true });
    let deadline: NodeJS.Timeout | undefined;
    const overdue = new Promise<Settled>((resolve) => {
      deadline = setTimeout(() => resolve({ type: "overdue" }), this.#o.jobTimeoutMs);
    });
    const work = this.#work(job, run, jobAbort.signal, jobLog);
    try {
      const settled = await Promise.race([
        work.then(
          (): Settled => ({ type: "returned" }),
          (err: unknown): Settled => ({ type: "threw", err }),
        ),
        overdue,
      ]);
      if (settled.type === "returned") {
        // Done, even if another worker claimed it meanwhile: the outcome is recorded, so the
        // message goes (the later run's ack then finds nothing pending).
        await this.#publishEvent(job.tenant, job.jobId, {
          type: "done",
          jobId: job.jobId,
          workerId,
          at: Date.now(),
        });
        await run.msg.ackAck();
        this.#rememberSettled(run.streamSequence, job.jobId);
        jobLog.info("job done");
      } else if (run.superseded) {
        // The later claim owns the job: no failure on record, no nak handing it out again.
        jobLog.warn("superseded run ended; its outcome is left to the later claim");
        this.#o.onDuplicateDelivery?.(job, "superseded");
      } else if (settled.type === "overdue") {
        await this.#overdue(run, job, work, jobAbort, jobLog);
      } else if (stop.aborted) {
        // Stopped before it finished: not a failure of the job; another worker takes it now.
        jobLog.warn("job interrupted by shutdown; handing it back");
        run.msg.nak();
      } else {
        await this.#failed(run, job, toWireError(settled.err), jobLog);
      }
    } catch (err) {
      // Recording the outcome failed (done event, ack): the job comes back after the ack wait.
      jobLog.error({ err: toWireError(err) }, "could not record the job's outcome");
    } finally {
      clearTimeout(deadline);
      clearInterval(heartbeat);
      stop.removeEventListener("abort", onStop);
      claims.unsubscribe();
      if (this.#runs.get(job.jobId) === run) this.#runs.delete(job.jobId);
      this.#inFlight -= 1;
    }
  }

  /** Says `claimed`, then runs the handler. */
  async #work(job: J, run: RunningJob, signal: AbortSignal, jobLog: Logger): Promise<void> {
    const { workerId, maxDeliver } = this.#o;
    const { delivery } = run;
    await this.#publishEvent(job.tenant, job.jobId, {
      type: "claimed",
      jobId: job.jobId,
      workerId,
      delivery,
      at: Date.now(),
    });
    jobLog.info({ mode: job.mode }, "job claimed");
    await this.#o.handler(job, {
      workerId,
      delivery,
      // The newest delivery's count: a redelivery adopted by this run counts toward MaxDeliver.
      get finalAttempt() {
        return run.delivery >= maxDeliver;
      },
      signal,
      event: (type) =>
        this.#publishEvent(job.tenant, job.jobId, { type, jobId: job.jobId, workerId, at: Date.now() }),
    });
  }

  /**
   * The job outlasted its deadline: abort its signal, report it failed for good and free its slot.
   * The handler may still be running (a runtime that hangs); what it does from now on is logged only.
   */
  async #overdue(
    run: RunningJob,
    job: J,
    work: Promise<void>,
    jobAbort: AbortController,
    jobLog: Logger,
  ): Promise<void> {
    const limitMs = this.#o.jobTimeoutMs;
    const error = new JobTimeoutError(`the job ran past its deadline of ${limitMs} ms`, {
      details: { limit_ms: limitMs, mode: job.mode },
    });
    jobAbort.abort(error);
    void work.then(
      () => jobLog.warn({ limitMs }, "a job past its deadline returned late"),
      (err: unknown) =>
        jobLog.warn({ limitMs, err: toWireError(err) }, "a job past its deadline failed late"),
    );
    this.#o.onJobTimeout?.(job);
    await this.#failed(run, job, toWireError(error), jobLog);
  }

  async #failed(run: RunningJob, job: J, error: WireError, jobLog: Logger): Promise<void> {
    const { msg, delivery } = run;
    const final = !error.retryable || delivery >= this.#o.maxDeliver;
    try {
      await this.#publishEvent(job.tenant, job.jobId, {
        type: "failed",
        jobId: job.jobId,
        workerId: this.#o.workerId,
        error,
        final,
        delivery,
        at: Date.now(),
      });
    } catch (publishErr) {
      // Without the failure on record the job must not be dropped: let it come back.
      jobLog.error({ err: toWireError(publishErr) }, "could not record a job failure; redelivering");
      msg.nak(retryDelayMs(delivery));
      return;
    }
    if (final) {
      jobLog.warn({ err: error }, "job failed for good");
      msg.term(error.code);
      this.#rememberSettled(run.streamSequence, job.jobId);
    } else {
      jobLog.warn({ err: error }, "job failed; will be retried");
      msg.nak(retryDelayMs(delivery));
    }
  }

  /**
   * Stops pulling, lets the jobs in flight finish (up to `deadlineMs`), then aborts the rest;
   * an aborted job is not acked, so the server gives it to another worker.
   */
  async stop(deadlineMs = 30_000): Promise<void> {
    this.#running = false;
    const loops = Promise.all(this.#loops);
    const timer = setTimeout(() => this.#abort.abort(), deadlineMs);
    await loops;
    clearTimeout(timer);
  }
}
