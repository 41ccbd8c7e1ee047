/**
 * One reply subscription per connection for all of our requests (`<inbox>.*`), with pending
 * requests in a map. nats.js's own `request()` builds a stack-capturing Error for every request
 * it completes (its cancel path), the largest CPU cost of a request/reply on the calling side;
 * this multiplexer does the same job without it. A server "no responders" status (503) is
 * reported as such, at once.
 */
import { createInbox } from "@nats-io/transport-node";
import type { Msg, MsgHdrs, NatsConnection, Subscription } from "@nats-io/transport-node";

export type MuxOutcome = { type: "reply"; msg: Msg } | { type: "no-responders" } | { type: "timeout" };

interface Pending {
  resolve: (outcome: MuxOutcome) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
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
  readonly #pending = new Map<string, Pending>();
  #next = 0;

  private constructor(nc: NatsConnection) {
    this.#nc = nc;
    this.#prefix = createInbox();
    this.#sub = nc.subscribe(`${this.#prefix}.*`, {
      callback: (err, msg) => {
        if (err) {
          // The reply subscription failed (e.g. a permissions error): every waiting request fails with it.
          for (const [id, pending] of this.#pending) {
            clearTimeout(pending.timer);
            this.#pending.delete(id);
            pending.reject(err);
          }
          return;
        }
        const id = msg.subject.slice(this.#prefix.length + 1);
        const pending = this.#pending.get(id);
        if (pending === undefined) return; // a late reply to a request that gave up
        this.#pending.delete(id);
        clearTimeout(pending.timer);
        const noResponders =
          msg.headers?.hasError === true && msg.headers.code === 503 && msg.data.length === 0;
        pending.resolve(noResponders ? { type: "no-responders" } : { type: "reply", msg });
      },
    });
  }

  /** Publishes one request and settles with its reply, a no-responders status, or a timeout. */
  request(subject: string, data: Uint8Array, headers: MsgHdrs, timeoutMs: number): Promise<MuxOutcome> {
    const id = (this.#next++).toString(36);
    return new Promise<MuxOutcome>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        resolve({ type: "timeout" });
      }, timeoutMs);
      this.#pending.set(id, { resolve, reject, timer });
      try {
        this.#nc.publish(subject, data, { reply: `${this.#prefix}.${id}`, headers });
      } catch (err) {
        clearTimeout(timer);
        this.#pending.delete(id);
        reject(err instanceof Error ? err : new Error(String(err)));
      }
    });
  }

  get pending(): number {
    return this.#pending.size;
  }

  get subscription(): Subscription {
    return this.#sub;
  }
}
