/**
 * An actor host: owns partitions through leases, serves the tenants in them one turn at a
 * time, and hands partitions over cleanly.
 *
 * - Each owned partition has one subscription on `<prefix>.t.<p>.*.*`, in a queue group named
 *   for the partition and the lease epoch (`Subjects.partitionQueue`). A graceful handover never
 *   overlaps (the old owner drains its subscription before it releases the lease, and the new
 *   owner subscribes only once it has won the lease). A frozen (SIGSTOPped) owner's subscription
 *   lives on at the server until its connection is evicted; were both in one group, NATS would
 *   keep giving it about half of the partition's messages, to wait there unanswered. In a group
 *   of its own epoch the new owner gets every message; the frozen host's copies are dropped
 *   when it wakes, because its lease check fails.
 * - Before every turn and before every reply the lease is checked on the monotonic clock; a
 *   host whose lease has run out drops the message (no reply, no write) and unsubscribes.
 * - Balancing: every host claims free partitions (rendezvous order, so hosts rarely race), and a
 *   host above ceil(P/N) releases a capped number per round, draining them first.
 * - stop(): leaves the membership, drains and releases every partition, so the others take over
 *   with no failed request.
 */
import type { KV } from "@nats-io/kv";
import { Svcm } from "@nats-io/services";
import type { Service } from "@nats-io/services";
import type { Msg, MsgHdrs, NatsConnection, Subscription } from "@nats-io/transport-node";
import type { Logger } from "pino";
import {
  BusErrorCodes,
  encodeBody,
  encodeErrorReply,
  replyHeaders,
  fixedReplyHeaders,
  fnv1a32,
  isToken,
  readRequest,
  SfError,
  toWireError,
} from "../../bus/index.ts";
import type { RequestMeta, Subjects, WireError } from "../../bus/index.ts";
import { deferredPromise } from "./actor.ts";
import type { Actor, ActorContext, ActorFactory } from "./actor.ts";
import { FencedState } from "./fenced_state.ts";
import { KeyView } from "./key_view.ts";
import { LeaseTable } from "./lease_table.ts";
import type { LeaseEvent } from "./lease_table.ts";
import { Mailbox } from "./mailbox.ts";
import type { HostMetrics } from "./metrics.ts";

export interface ActorHostOptions {
  nc: NatsConnection;
  subjects: Subjects;
  hostId: string;
  buckets: { leases: KV; members: KV; state: KV };
  factory: ActorFactory;
  log: Logger;
  metrics: HostMetrics;
  /** Messages one actor may have waiting. Default 1024. */
  mailboxCapacity?: number;
  /** An actor idle this long is passivated. Default 300000 ms. */
  idlePassivateMs?: number;
  /** How often partitions are claimed and balanced. Default 500 ms. */
  balanceIntervalMs?: number;
  /** Partitions released per balancing round at most. Default 32. */
  maxMovesPerRound?: number;
  /** A host does not reclaim a partition it released for this long. Default 3000 ms. */
  releaseCooldownMs?: number;
  /** Replies remembered per actor for retried request ids. Default 1024. */
  replyCacheSize?: number;
}

interface Cell {
  readonly tenant: string;
  readonly partition: number;
  readonly epoch: number;
  readonly actor: Actor;
  readonly mailbox: Mailbox<Turn>;
  readonly replies: Map<string, ReplyEntry>;
  /** Deferred replies still pending, by request id: a retry joins the same outcome. */
  readonly pending: Map<string, Promise<ReplyEntry>>;
  /**
   * Requests waiting in the mailbox or running, by request id, with the repeats of each that
   * arrived meanwhile: a repeat (the caller's next attempt) waits for the same outcome without
   * taking a mailbox slot of its own.
   */
  readonly queued: Map<string, Turn[]>;
  activated: boolean;
  dead: boolean;
  /** The reply headers of every successful turn of this owner epoch, built once. */
  okHeaders?: MsgHdrs;
  lastUsed: number;
}

interface ReplyEntry {
  data: Uint8Array;
  ok: boolean;
  error?: WireError;
}

interface Turn {
  readonly msg: Msg;
  readonly op: string;
  readonly body: unknown;
  readonly meta: RequestMeta;
  readonly arrived: number;
}

interface Served {
  readonly epoch: number;
  readonly sub: Subscription;
}

export class ActorHost {
  readonly hostId: string;
  readonly #nc: NatsConnection;
  readonly #subjects: Subjects;
  readonly #buckets: { leases: KV; members: KV; state: KV };
  readonly #factory: ActorFactory;
  readonly #log: Logger;
  readonly #metrics: HostMetrics;
  readonly #leases: LeaseTable;
  readonly #members: KeyView;
  readonly #mailboxCapacity: number;
  readonly #idlePassivateMs: number;
  readonly #balanceIntervalMs: number;
  readonly #maxMoves: number;
  readonly #cooldownMs: number;
  readonly #replyCacheSize: number;
  readonly #served = new Map<number, Served>();
  readonly #cells = new Map<string, Cell>();
  readonly #cooldown = new Map<number, number>();
  readonly #acquiredAt = new Map<number, number>();
  readonly #releasing = new Set<number>();
  readonly #timers: NodeJS.Timeout[] = [];
  readonly #prefixTokens: number;
  #service: Service | undefined;
  #stopping = false;
  #balancing: Promise<void> | undefined;
  #balanceAgain = false;
  #lastMembers = 0;
  #queued = 0;
  readonly #turnsOk: { inc(): void };
  readonly #turnsError: { inc(): void };
  readonly #turnsDedup: { inc(): void };
  readonly #turnsOverloaded: { inc(): void };
  #watchStop: (() => void) | undefined;

  readonly #memberTtlMs: number;

  constructor(options: ActorHostOptions, ttlMs: number, memberTtlMs: number) {
    this.#memberTtlMs = memberTtlMs;
    const turns = options.metrics.turns;
    this.#turnsOk = turns.labels("ok");
    this.#turnsError = turns.labels("error");
    this.#turnsDedup = turns.labels("dedup");
    this.#turnsOverloaded = turns.labels("overloaded");
    options.metrics.sources.mailboxDepth = () => this.#queued;
    options.metrics.sources.activeActors = () => this.#cells.size;
    this.hostId = options.hostId;
    this.#nc = options.nc;
    this.#subjects = options.subjects;
    this.#buckets = options.buckets;
    this.#factory = options.factory;
    this.#log = options.log;
    this.#metrics = options.metrics;
    this.#mailboxCapacity = options.mailboxCapacity ?? 1024;
    this.#idlePassivateMs = options.idlePassivateMs ?? 300_000;
    this.#balanceIntervalMs = options.balanceIntervalMs ?? 500;
    this.#maxMoves = options.maxMovesPerRound ?? 32;
    this.#cooldownMs = options.releaseCooldownMs ?? 3000;
    this.#replyCacheSize = options.replyCacheSize ?? 1024;
    this.#prefixTokens = options.subjects.prefix.split(".").length;
    this.#members = new KeyView(options.buckets.members, {
      name: "members",
      onWatchEnded: (err) =>
        this.#log.warn(
          { err: err === undefined ? undefined : toWireError(err) },
          "membership watch ended; reopening",
        ),
    });
    this.#leases = new LeaseTable({ kv: options.buckets.leases, hostId: options.hostId, ttlMs });
    this.#leases.onEvent((event) => this.#onLeaseEvent(event));
  }

  /** Creates a host whose lease and membership TTLs are the buckets' max ages (the server's truth). */
  static async create(options: ActorHostOptions): Promise<ActorHost> {
    const [leases, members] = await Promise.all([
      options.buckets.leases.status(),
      options.buckets.members.status(),
    ]);
    for (const status of [leases, members]) {
      if (!(status.ttl > 0)) {
        throw new SfError(BusErrorCodes.INTERNAL, `bucket ${status.bucket} has no TTL; provision it first`);
      }
    }
    if (members.ttl >= leases.ttl) {
      throw new SfError(
        BusErrorCodes.INTERNAL,
        `membership TTL (${members.ttl} ms) must be shorter than the lease TTL (${leases.ttl} ms)`,
      );
    }
    return new ActorHost(options, leases.ttl, members.ttl);
  }

  get leaseTtlMs(): number {
    return this.#leases.ttlMs;
  }

  ownedPartitions(): number[] {
    return this.#leases.owned();
  }

  activeActors(): number {
    return this.#cells.size;
  }

  async start(): Promise<void> {
    await this.#heartbeat();
    this.#service = await new Svcm(this.#nc).add({
      name: "sf-actor-host",
      version: "0.1.0",
      description: "Sidekick Forge actor host: owns tenant partitions",
      metadata: { host: this.hostId, pid: String(process.pid), prefix: this.#subjects.prefix },
      queue: "",
      statsHandler: () => Promise.resolve(this.#describe()),
    });
    this.#service.addEndpoint("partitions", {
      subject: this.#subjects.hostControl(this.hostId, "partitions"),
      handler: (err, msg) => {
        if (err) {
          this.#log.warn({ err: err.message }, "partitions endpoint error");
          return;
        }
        msg.respond(encodeBody(this.#describe()));
      },
      metadata: { description: "partitions this host owns and its active actors" },
    });
    await this.#watchLeases();
    const ttl = this.#leases.ttlMs;
    this.#every(Math.max(50, Math.floor(ttl / 3)), () => this.#leases.renewAll());
    this.#every(Math.max(50, Math.floor(this.#memberTtlMs / 3)), () => this.#heartbeat());
    this.#every(Math.max(20, Math.min(100, Math.floor(ttl / 20))), () => this.#leases.expireStale());
    this.#every(this.#balanceIntervalMs, () => this.#requestBalance());
    this.#every(Math.max(1000, Math.floor(this.#idlePassivateMs / 4)), () => this.#passivateIdle());
    await this.#requestBalance();
    this.#log.info(
      { host: this.hostId, ttlMs: ttl, partitions: this.#subjects.partitions },
      "actor host started",
    );
  }

  #describe(): { host: string; partitions: number[]; actors: number; stopping: boolean } {
    return {
      host: this.hostId,
      partitions: this.ownedPartitions(),
      actors: this.#cells.size,
      stopping: this.#stopping,
    };
  }

  #every(ms: number, fn: () => unknown): void {
    const timer = setInterval(() => {
      try {
        const result = fn();
        if (result instanceof Promise) {
          result.catch((err: unknown) => this.#log.warn({ err: toWireError(err) }, "periodic task failed"));
        }
      } catch (err) {
        this.#log.warn({ err: toWireError(err) }, "periodic task failed");
      }
    }, ms);
    this.#timers.push(timer);
  }

  async #watchLeases(): Promise<void> {
    await this.#members.start();
    await this.#leases.watch({
      onChange: (_key, operation) => {
        if (operation !== "PUT" && !this.#stopping) void this.#requestBalance();
      },
      onWatchEnded: (err) =>
        this.#log.warn(
          { err: err === undefined ? undefined : toWireError(err) },
          "lease watch ended; reopening",
        ),
    });
    this.#watchStop = () => {
      this.#leases.stopWatching();
      this.#members.stop();
    };
  }

  async #heartbeat(): Promise<void> {
    if (this.#stopping) return;
    await this.#buckets.members.put(
      this.hostId,
      encodeBody({ host: this.hostId, pid: process.pid, at: Date.now() }),
    );
  }

  async #liveMembers(): Promise<number> {
    return Math.max(1, (await this.#members.live()).size);
  }

  /** Runs a balancing round now, or right after the one in progress. */
  #requestBalance(): Promise<void> {
    if (this.#stopping) return Promise.resolve();
    if (this.#balancing !== undefined) {
      this.#balanceAgain = true;
      return this.#balancing;
    }
    this.#balancing = (async () => {
      try {
        do {
          this.#balanceAgain = false;
          await this.#balanceOnce();
        } while (this.#balanceAgain && !this.#stopping);
      } finally {
        this.#balancing = undefined;
      }
    })();
    return this.#balancing;
  }

  #rank(partition: number): number {
    return fnv1a32(`${this.hostId}/${partition}`);
  }

  async #balanceOnce(): Promise<void> {
    const [held, members] = await Promise.all([this.#leases.heldByAnyone(), this.#liveMembers()]);
    if (this.#stopping) return;
    const now = performance.now();
    for (const [p, until] of this.#cooldown) if (until <= now) this.#cooldown.delete(p);
    const P = this.#subjects.partitions;
    const free: number[] = [];
    for (let p = 0; p < P; p++) {
      if (!held.has(p) && !this.#cooldown.has(p) && !this.#releasing.has(p)) free.push(p);
    }
    free.sort((a, b) => this.#rank(b) - this.#rank(a));
    // Free partitions are claimed whoever is above target: availability first, balance after.
    let acquired = 0;
    for (let i = 0; i < free.length; i += 32) {
      if (this.#stopping) return;
      const leases = await Promise.all(free.slice(i, i + 32).map((p) => this.#leases.acquire(p)));
      acquired += leases.filter((l) => l !== undefined).length;
    }
    if (acquired > 0) {
      this.#log.info({ host: this.hostId, acquired, owned: this.#leases.size }, "partitions acquired");
    }
    // Release only when the membership has looked the same for two rounds in a row, so a
    // heartbeat seen late does not move partitions back and forth.
    const stable = members === this.#lastMembers;
    this.#lastMembers = members;
    const target = Math.ceil(P / members);
    // A partition taken over moments ago (a failover) stays put for a cooldown: no flapping.
    const settled = now - this.#cooldownMs;
    const owned = this.#leases
      .owned()
      .filter((p) => !this.#releasing.has(p) && (this.#acquiredAt.get(p) ?? 0) <= settled);
    const total = this.#leases.size - this.#releasing.size;
    const excess = members > 1 && stable ? Math.min(total - target, owned.length, this.#maxMoves) : 0;
    if (excess > 0) {
      const victims = owned.sort((a, b) => this.#rank(a) - this.#rank(b)).slice(0, excess);
      this.#log.info(
        { host: this.hostId, members, target, releasing: victims.length },
        "rebalancing partitions",
      );
      await Promise.all(victims.map((p) => this.#handOver(p, true)));
    }
  }

  #onLeaseEvent(event: LeaseEvent): void {
    switch (event.type) {
      case "acquired":
        this.#acquiredAt.set(event.partition, performance.now());
        this.#metrics.leaseChanges.inc({ change: "acquired" });
        this.#log.debug(
          { host: this.hostId, partition: event.partition, epoch: event.epoch },
          "partition acquired",
        );
        this.#serve(event.partition, event.epoch);
        break;
      case "lost":
        this.#metrics.leaseChanges.inc({ change: `lost_${event.reason}` });
        this.#log.warn(
          { host: this.hostId, partition: event.partition, reason: event.reason },
          "partition lease lost",
        );
        this.#abandon(event.partition);
        break;
      case "released":
        this.#metrics.leaseChanges.inc({ change: "released" });
        break;
      case "renewed":
        return;
    }
    this.#metrics.partitionsOwned.set(this.#leases.size);
  }

  #serve(partition: number, epoch: number): void {
    const existing = this.#served.get(partition);
    if (existing !== undefined) existing.sub.unsubscribe();
    const sub = this.#nc.subscribe(this.#subjects.partitionWildcard(partition), {
      // A group per ownership: a former owner that is frozen, not gone, takes none of its messages.
      queue: this.#subjects.partitionQueue(partition, epoch),
      callback: (err, msg) => {
        if (err) {
          this.#log.warn({ partition, err: err.message }, "partition subscription error");
          return;
        }
        this.#onMessage(partition, msg);
      },
    });
    this.#served.set(partition, { epoch, sub });
  }

  /** The lease is gone: stop at once, drop queued turns without replying. */
  #abandon(partition: number): void {
    const served = this.#served.get(partition);
    if (served !== undefined) {
      served.sub.unsubscribe();
      this.#served.delete(partition);
    }
    for (const cell of this.#cells.values()) {
      if (cell.partition !== partition) continue;
      cell.dead = true;
      const dropped = cell.mailbox.clear();
      if (dropped.length > 0) this.#metrics.dropped.inc({ reason: "not_owner" }, dropped.length);
      this.#cells.delete(cell.tenant);
    }
  }

  /** Graceful handover: stop taking messages, finish what arrived, passivate, release the lease. */
  async #handOver(partition: number, cooldown: boolean): Promise<void> {
    if (this.#releasing.has(partition)) return;
    this.#releasing.add(partition);
    try {
      const served = this.#served.get(partition);
      if (served !== undefined) {
        await served.sub.drain();
        this.#served.delete(partition);
      }
      const cells = [...this.#cells.values()].filter((c) => c.partition === partition);
      await Promise.all(cells.map((c) => c.mailbox.whenIdle()));
      await Promise.all(cells.map((c) => this.#passivate(c)));
      if (cooldown) this.#cooldown.set(partition, performance.now() + this.#cooldownMs);
      await this.#leases.release(partition);
    } finally {
      this.#releasing.delete(partition);
      this.#metrics.partitionsOwned.set(this.#leases.size);
    }
  }

  #onMessage(partition: number, msg: Msg): void {
    const arrived = performance.now();
    const lease = this.#leases.valid(partition);
    if (lease === undefined) {
      this.#metrics.dropped.inc({ reason: "not_owner" });
      return;
    }
    // `<prefix>.t.<partition>.<tenant>.<op>`: the last two tokens, without splitting the subject.
    const subject = msg.subject;
    const opDot = subject.lastIndexOf(".");
    const tenantDot = subject.lastIndexOf(".", opDot - 1);
    const tenant = tenantDot < 0 ? undefined : subject.slice(tenantDot + 1, opDot);
    const op = opDot < 0 ? undefined : subject.slice(opDot + 1);
    let request: { meta: RequestMeta; body: unknown };
    try {
      request = readRequest(msg);
    } catch (err) {
      this.#replyError(msg, toWireError(err), lease.epoch);
      return;
    }
    if (
      !isToken(tenant) ||
      op === undefined ||
      (request.meta.tenant !== undefined && request.meta.tenant !== tenant) ||
      (this.#cells.get(tenant)?.partition ?? this.#subjects.partitionOf(tenant)) !== partition
    ) {
      // A tenant addressed through the wrong partition would get a second owner: refuse it.
      this.#replyError(
        msg,
        {
          code: BusErrorCodes.BAD_TENANT,
          message: "the subject's tenant is malformed, differs from Sf-Tenant, or is not in this partition",
          retryable: false,
        },
        lease.epoch,
      );
      return;
    }
    if (request.meta.deadline < Date.now()) {
      this.#metrics.dropped.inc({ reason: "expired_deadline" });
      return;
    }
    let cell = this.#cells.get(tenant);
    if (cell === undefined || cell.dead || cell.epoch !== lease.epoch) {
      cell = this.#newCell(tenant, partition, lease.epoch);
    }
    const turn: Turn = { msg, op, body: request.body, meta: request.meta, arrived };
    if (this.#joinSameRequest(cell, turn)) return;
    cell.queued.set(request.meta.requestId, []);
    if (!cell.mailbox.offer(turn)) {
      cell.queued.delete(request.meta.requestId);
      this.#turnsOverloaded.inc();
      this.#replyError(
        msg,
        {
          code: BusErrorCodes.OVERLOADED,
          message: `tenant ${tenant} has ${this.#mailboxCapacity} messages waiting; try again later`,
          retryable: true,
        },
        lease.epoch,
      );
      return;
    }
    this.#queued += 1;
  }

  /**
   * A repeat of a request this actor has answered, is answering, or has waiting: it gets that
   * request's answer (fenced like any reply) instead of a turn of its own. false: a new request.
   */
  #joinSameRequest(cell: Cell, turn: Turn): boolean {
    const id = turn.meta.requestId;
    const pending = cell.pending.get(id);
    const cached = cell.replies.get(id);
    const waiting = cell.queued.get(id);
    if (pending !== undefined) void pending.then((entry) => this.#respond(cell, turn, entry));
    else if (cached !== undefined) this.#respond(cell, turn, cached);
    else if (waiting !== undefined) waiting.push(turn);
    else return false;
    this.#turnsDedup.inc();
    return true;
  }

  /** The repeats that waited for `turn`'s outcome; they stop waiting here. */
  #takeRepeats(cell: Cell, turn: Turn): Turn[] {
    const repeats = cell.queued.get(turn.meta.requestId) ?? [];
    cell.queued.delete(turn.meta.requestId);
    return repeats;
  }

  #newCell(tenant: string, partition: number, epoch: number): Cell {
    const log = this.#log.child({ tenant, partition, epoch });
    const state = this.#buckets.state;
    const leases = this.#leases;
    const context: ActorContext = {
      tenant,
      partition,
      epoch,
      hostId: this.hostId,
      log,
      state: <T>(name?: string) =>
        new FencedState<T>(state, name === undefined ? tenant : `${tenant}.${name}`, epoch),
      stillOwner: () => leases.holds(partition, epoch),
    };
    const cell: Cell = {
      tenant,
      partition,
      epoch,
      actor: this.#factory(context),
      mailbox: new Mailbox<Turn>(
        this.#mailboxCapacity,
        (turn) => this.#runTurn(cell, turn),
        (err) => log.error({ err: toWireError(err) }, "actor turn crashed"),
      ),
      replies: new Map(),
      pending: new Map(),
      queued: new Map(),
      activated: false,
      dead: false,
      lastUsed: performance.now(),
    };
    this.#cells.set(tenant, cell);
    return cell;
  }

  async #runTurn(cell: Cell, turn: Turn): Promise<void> {
    try {
      await this.#turn(cell, turn);
    } catch (err) {
      // The turn crashed without an answer: its repeats must not wait on it for ever.
      this.#takeRepeats(cell, turn);
      throw err;
    }
  }

  async #turn(cell: Cell, turn: Turn): Promise<void> {
    this.#queued -= 1;
    cell.lastUsed = performance.now();
    if (cell.dead || !this.#leases.holds(cell.partition, cell.epoch)) {
      const dropped = 1 + this.#takeRepeats(cell, turn).length;
      this.#metrics.dropped.inc({ reason: "not_owner" }, dropped);
      return;
    }
    let ok = true;
    let result: unknown;
    let error: WireError | undefined;
    try {
      if (!cell.activated) {
        await cell.actor.activate?.();
        cell.activated = true;
      }
      result = await cell.actor.handle({ op: turn.op, body: turn.body, meta: turn.meta });
    } catch (err) {
      ok = false;
      error = toWireError(err);
      if (error.code === BusErrorCodes.UNAVAILABLE) {
        // A write whose outcome is unknown: re-read the durable truth before the next turn.
        cell.activated = false;
      }
      if (error.code === BusErrorCodes.FENCED) {
        // A newer owner wrote this actor's state: we are a zombie for it. Say nothing.
        cell.dead = true;
        this.#cells.delete(cell.tenant);
        this.#metrics.dropped.inc({ reason: "fenced" }, 1 + this.#takeRepeats(cell, turn).length);
        return;
      }
    }
    const later = ok ? deferredPromise(result) : undefined;
    if (later !== undefined) {
      const settled = later.then(
        (body) => this.#remember(cell, turn, true, body, undefined),
        (err: unknown) => this.#remember(cell, turn, false, undefined, toWireError(err)),
      );
      cell.pending.set(turn.meta.requestId, settled);
      const repeats = this.#takeRepeats(cell, turn);
      void settled.then((entry) => {
        cell.pending.delete(turn.meta.requestId);
        this.#respond(cell, turn, entry);
        for (const repeat of repeats) this.#respond(cell, repeat, entry);
        (entry.ok ? this.#turnsOk : this.#turnsError).inc();
      });
      return;
    }
    const entry = this.#remember(cell, turn, ok, result, error);
    this.#respond(cell, turn, entry);
    this.#settleRepeats(cell, turn, entry);
    (ok ? this.#turnsOk : this.#turnsError).inc();
  }

  /**
   * The repeats that waited for `turn` get its answer too: they asked the same thing while it was
   * being worked out. But after SF_ERR_UNAVAILABLE (the outcome of a write to the actor's own
   * state is unknown, and the next turn re-reads it) the first repeat runs anew, as a retry that
   * came after the answer would, and the others wait for it.
   */
  #settleRepeats(cell: Cell, turn: Turn, entry: ReplyEntry): void {
    const repeats = this.#takeRepeats(cell, turn);
    const [next, ...rest] = repeats;
    if (next === undefined) return;
    const id = turn.meta.requestId;
    if (entry.error?.code === BusErrorCodes.UNAVAILABLE) {
      cell.queued.set(id, rest);
      if (cell.mailbox.offer(next)) {
        this.#queued += 1;
        return;
      }
      cell.queued.delete(id);
    }
    for (const repeat of repeats) this.#respond(cell, repeat, entry);
  }

  /** Encodes a final answer and remembers it for retries of the same request id. */
  #remember(cell: Cell, turn: Turn, ok: boolean, result: unknown, error: WireError | undefined): ReplyEntry {
    const entry: ReplyEntry = ok
      ? { data: encodeBody(result), ok }
      : { data: encodeBody(error), ok, error: error };
    // A retryable error is not final: a retry runs again. Nor is a read-only op's answer kept.
    if ((ok || error?.retryable !== true) && cell.actor.readOnlyOps?.has(turn.op) !== true) {
      cell.replies.set(turn.meta.requestId, entry);
      if (cell.replies.size > this.#replyCacheSize) {
        const oldest = cell.replies.keys().next();
        if (oldest.done !== true) cell.replies.delete(oldest.value);
      }
    }
    return entry;
  }

  #respond(cell: Cell, turn: Turn, entry: ReplyEntry): void {
    // Fencing of replies: a host that lost its lease (a paused owner that woke up) says nothing.
    if (!this.#leases.holds(cell.partition, cell.epoch)) {
      this.#metrics.dropped.inc({ reason: "not_owner" });
      return;
    }
    if (turn.msg.reply === undefined || turn.msg.reply === "") return;
    const meta = { host: this.hostId, epoch: cell.epoch };
    const headers = entry.ok
      ? (cell.okHeaders ??= fixedReplyHeaders("ok", meta))
      : replyHeaders("error", meta);
    turn.msg.respond(entry.data, { headers });
    this.#metrics.turnDuration.observe((performance.now() - turn.arrived) / 1000);
  }

  #replyError(msg: Msg, error: WireError, epoch: number): void {
    if (msg.reply === undefined || msg.reply === "") return;
    const reply = encodeErrorReply(error, { host: this.hostId, epoch });
    msg.respond(reply.data, { headers: reply.headers });
  }

  async #passivate(cell: Cell): Promise<void> {
    if (this.#cells.get(cell.tenant) === cell) this.#cells.delete(cell.tenant);
    cell.dead = true;
    if (cell.activated) {
      try {
        await cell.actor.passivate?.();
      } catch (err) {
        this.#log.warn({ tenant: cell.tenant, err: toWireError(err) }, "actor passivation failed");
      }
    }
  }

  async #passivateIdle(): Promise<void> {
    const cutoff = performance.now() - this.#idlePassivateMs;
    const idle = [...this.#cells.values()].filter((c) => c.mailbox.idle && c.lastUsed < cutoff);
    await Promise.all(idle.map((c) => this.#passivate(c)));
  }

  /** Graceful stop: leave the membership, hand every partition over, then stop the service. */
  async stop(): Promise<void> {
    if (this.#stopping) return;
    this.#stopping = true;
    this.#log.info({ host: this.hostId, partitions: this.#leases.size }, "actor host stopping");
    await this.#balancing;
    await this.#buckets.members.delete(this.hostId);
    await Promise.all(this.#leases.owned().map((p) => this.#handOver(p, false)));
    for (const timer of this.#timers) clearInterval(timer);
    this.#watchStop?.();
    await this.#service?.stop();
    this.#log.info({ host: this.hostId }, "actor host stopped");
  }
}
