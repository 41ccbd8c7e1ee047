/**
 * One reply subscription per connection for all of our requests (`<inbox>.*`), with pending
 * requests in a map. nats.js's own `request()` builds a stack-capturing Error for every request
 * it completes (its cancel path), the largest CPU cost of a request/reply on the calling side;
 * this multiplexer does the same job without it. A server "no responders" status (503) is
 * reported as such, at once.
 *
 * `inbox()` listens to the reply subjects of every attempt of one request (`<id>_<attempt>`)
 * until the request is done: an answer to an attempt that was given up on and sent again still
 * reaches the caller, which learns which attempt it answers. Before, each attempt stopped
 * listening when the next was sent, so a turn slower than one attempt (a read-only op, whose
 * answer the actor does not keep for repeats, on a database that takes 3 s to time out)
 * answered every attempt too late, until the caller's deadline ran out.
 */
import { createInbox } from "@nats-io/transport-node";
import type { Msg, MsgHdrs, NatsConnection, Subscription } from "@nats-io/transport-node";

export type MuxOutcome = { type: "reply"; msg: Msg } | { type: "no-responders" } | { type: "timeout" };

/** What an inbox hands out: the outcome, and which attempt a reply answers (0 for a timeout). */
export type InboxOutcome = MuxOutcome & { attempt: number };

/** The reply subjects of the attempts of one request (`ReplyMux.inbox`), read as one stream. */
export interface ReplyInbox {
  /** The reply subject to publish attempt `attempt` (1, 2, …) with. */
  subjectFor(attempt: number): string;
  /** The next reply to any attempt (one that came earlier first), or a timeout after `timeoutMs`. */
  next(timeoutMs: number): Promise<InboxOutcome>;
  /** Stops listening; later replies are dropped. */
  close(): void;
}

interface InboxWaiter {
  resolve: (outcome: InboxOutcome) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

/** Replies kept for an inbox whose caller is not waiting: more are repeats nobody will read. */
const INBOX_QUEUE_LIMIT = 16;
const TIMED_OUT: InboxOutcome = { type: "timeout", attempt: 0 };

/** An open inbox: replies that arrived with nobody waiting, and the one waiter. */
class MuxInbox implements ReplyInbox {
  readonly queued: InboxOutcome[] = [];
  waiter: InboxWaiter | undefined;
  error: Error | undefined;

  constructor(
    readonly prefix: string,
    readonly id: string,
    private readonly inboxes: Map<string, MuxInbox>,
  ) {}

  subjectFor(attempt: number): string {
    return `${this.prefix}.${this.id}_${attempt}`;
  }

  next(timeoutMs: number): Promise<InboxOutcome> {
    if (this.error !== undefined) return Promise.reject(this.error);
    const queued = this.queued.shift();
    if (queued !== undefined) return Promise.resolve(queued);
    if (this.waiter !== undefined) return Promise.reject(new Error("ReplyInbox.next: already waiting"));
    return new Promise<InboxOutcome>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiter = undefined;
        resolve(TIMED_OUT);
      }, timeoutMs);
      this.waiter = { resolve, reject, timer };
    });
  }

  /** Hands a reply to the waiter, or keeps it for the next `next()`. */
  deliver(outcome: InboxOutcome): void {
    const waiter = this.waiter;
    if (waiter !== undefined) {
      this.waiter = undefined;
      clearTimeout(waiter.timer);
      waiter.resolve(outcome);
    } else if (this.queued.length < INBOX_QUEUE_LIMIT) {
      this.queued.push(outcome);
    }
  }

  fail(err: Error): void {
    this.error = err;
    const waiter = this.waiter;
    this.waiter = undefined;
    if (waiter !== undefined) {
      clearTimeout(waiter.timer);
      waiter.reject(err);
    }
  }

  close(): void {
    this.inboxes.delete(this.id);
    const waiter = this.waiter;
    this.waiter = undefined;
    if (waiter !== undefined) {
      clearTimeout(waiter.timer);
      waiter.resolve(TIMED_OUT);
    }
  }
}

export class ReplyMux {
  static readonly #byConnection = new WeakMap<NatsConnection, ReplyMux>();

  /** The multiplexer of a connection, created on first use. */
  static of(nc: NatsConnection): ReplyMux {
    let mux = ReplyMux.#byConnection.get(nc);
    if (mux === undefined) {
      mux = new ReplyMux(nc);
      ReplyMux.#byConnection.set(nc, mux);
    }
    return mux;
  }

  readonly #nc: NatsConnection;
  readonly #prefix: string;
  readonly #sub: Subscription;
  readonly #inboxes = new Map<string, MuxInbox>();
  #next = 0;

  private constructor(nc: NatsConnection) {
    this.#nc = nc;
    this.#prefix = createInbox();
    this.#sub = nc.subscribe(`${this.#prefix}.*`, {
      callback: (err, msg) => {
        if (err) {
          // The reply subscription failed (e.g. a permissions error): every waiting request fails with it.
          for (const inbox of this.#inboxes.values()) inbox.fail(err);
          return;
        }
        // `<prefix>.<inbox id>_<attempt>`; a reply to a request that gave up finds no inbox and is dropped.
        const token = msg.subject.slice(this.#prefix.length + 1);
        const sep = token.indexOf("_");
        const inbox = sep < 0 ? undefined : this.#inboxes.get(token.slice(0, sep));
        if (inbox === undefined) return;
        const attempt = Number(token.slice(sep + 1));
        const noResponders =
          msg.headers?.hasError === true && msg.headers.code === 503 && msg.data.length === 0;
        inbox.deliver(noResponders ? { type: "no-responders", attempt } : { type: "reply", msg, attempt });
      },
    });
  }

  /** Publishes one request (a single attempt) and settles with its reply, a no-responders status, or a timeout. */
  async request(subject: string, data: Uint8Array, headers: MsgHdrs, timeoutMs: number): Promise<MuxOutcome> {
    const inbox = this.inbox();
    try {
      this.publish(subject, data, headers, inbox, 1);
      return await inbox.next(timeoutMs);
    } finally {
      inbox.close();
    }
  }

  /** A reply subject for all the attempts of one request; close it when the request is done. */
  inbox(): ReplyInbox {
    const id = (this.#next++).toString(36);
    const inbox = new MuxInbox(this.#prefix, id, this.#inboxes);
    this.#inboxes.set(id, inbox);
    return inbox;
  }

  /** Publishes attempt `attempt` of a request on `subject`, answered to `inbox`. */
  publish(subject: string, data: Uint8Array, headers: MsgHdrs, inbox: ReplyInbox, attempt: number): void {
    this.#nc.publish(subject, data, { reply: inbox.subjectFor(attempt), headers });
  }

  get pending(): number {
    return this.#inboxes.size;
  }

  get subscription(): Subscription {
    return this.#sub;
  }
}
