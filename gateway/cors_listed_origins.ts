/**
 * Which origins some tenant lists in `settings.cors_origins`: what a credential-less preflight to
 * a thin-client route is answered by (see cors.ts). Answers come from the platform op
 * `cors-origin-listed` (any actor host) and are cached per origin, yes or no, for `cacheMs`;
 * the whole cache is dropped on any client's `settings` or `credentials` event (a list changed,
 * or a client was deleted), so a change is seen at once where the events arrive and within
 * `cacheMs` everywhere. One lookup per origin is in flight at a time.
 */
import type { NatsConnection, Subscription } from "@nats-io/transport-node";
import type { Logger } from "pino";
import { ClientEvents, PlatformOps } from "../actors/index.ts";
import type { CorsOriginListedReply } from "../actors/index.ts";
import { requestReply } from "../bus/index.ts";
import type { Subjects } from "../bus/index.ts";

/** What the pipeline asks during a preflight. */
export interface TenantOriginIndex {
  /** True when an active tenant lists `origin` (or `*`). */
  listed(origin: string, traceId?: string): Promise<boolean>;
}

export interface ListedOriginsOptions {
  nc: NatsConnection;
  subjects: Subjects;
  /** How long an answer is reused; 0 asks every time. */
  cacheMs: number;
  /** Deadline of one lookup. */
  timeoutMs: number;
  /** Origins remembered at most (oldest forgotten first). Default 10000. */
  maxEntries?: number;
}

export class ListedOrigins implements TenantOriginIndex {
  readonly #o: ListedOriginsOptions;
  readonly #maxEntries: number;
  readonly #cache = new Map<string, { listed: boolean; expiresAtMs: number }>();
  readonly #pending = new Map<string, Promise<boolean>>();
  /** Bumped on every drop, so a lookup that started before it is not cached after it. */
  #generation = 0;

  constructor(options: ListedOriginsOptions) {
    this.#o = options;
    this.#maxEntries = options.maxEntries ?? 10_000;
  }

  listed(origin: string, traceId?: string): Promise<boolean> {
    const now = performance.now();
    const hit = this.#cache.get(origin);
    if (hit !== undefined && hit.expiresAtMs > now) return Promise.resolve(hit.listed);
    const pending = this.#pending.get(origin);
    if (pending !== undefined) return pending;
    const generation = this.#generation;
    const lookup = this.#lookup(origin, traceId).then(
      (listed) => {
        this.#pending.delete(origin);
        if (this.#o.cacheMs > 0 && generation === this.#generation) this.#remember(origin, listed);
        return listed;
      },
      (err: unknown) => {
        this.#pending.delete(origin);
        throw err;
      },
    );
    this.#pending.set(origin, lookup);
    return lookup;
  }

  /** Forgets every answer (a tenant's list changed). */
  clear(): void {
    this.#generation += 1;
    this.#cache.clear();
  }

  /** Drops the cache on client `settings` and `credentials` (deletion) events. */
  watch(log: Logger): Subscription {
    const { nc, subjects } = this.#o;
    const prefixTokens = subjects.prefix.split(".").length;
    return nc.subscribe(`${subjects.prefix}.evt.client.*.*`, {
      callback: (err, msg) => {
        if (err) {
          log.warn({ err: err.message }, "client event subscription error");
          return;
        }
        const what = msg.subject.split(".")[prefixTokens + 3];
        if (what === ClientEvents.settings || what === ClientEvents.credentials) this.clear();
      },
    });
  }

  async #lookup(origin: string, traceId: string | undefined): Promise<boolean> {
    const reply = await requestReply<CorsOriginListedReply>(
      this.#o.nc,
      this.#o.subjects.platformOp(PlatformOps.corsOriginListed),
      { origin },
      { timeoutMs: this.#o.timeoutMs, ...(traceId === undefined ? {} : { traceId }) },
    );
    return reply.body.listed === true;
  }

  #remember(origin: string, listed: boolean): void {
    this.#cache.delete(origin);
    if (this.#cache.size >= this.#maxEntries) {
      const oldest = this.#cache.keys().next();
      if (oldest.done !== true) this.#cache.delete(oldest.value);
    }
    this.#cache.set(origin, { listed, expiresAtMs: performance.now() + this.#o.cacheMs });
  }
}
