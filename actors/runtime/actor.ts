/** What an actor is, seen from the runtime that hosts it. */
import type { Logger } from "pino";
import type { RequestMeta } from "../../bus/index.ts";
import type { FencedState } from "./fenced_state.ts";

export interface ActorContext {
  readonly tenant: string;
  readonly partition: number;
  /** The owner's fencing epoch (lease revision); every durable write carries it. */
  readonly epoch: number;
  readonly hostId: string;
  readonly log: Logger;
  /** Durable, fenced state of this actor (one record per name). */
  state<T>(name?: string): FencedState<T>;
  /** True while this host still holds a valid lease on the actor's partition. */
  stillOwner(): boolean;
}

export interface ActorMessage {
  readonly op: string;
  readonly body: unknown;
  readonly meta: RequestMeta;
}

export interface Actor {
  /** Runs in the actor's first turn on this host (load state, fence older owners). */
  activate?(): Promise<void>;
  /** One turn: returns the reply body, or throws an SfError for a coded error reply. */
  handle(message: ActorMessage): Promise<unknown>;
  /** Runs when the actor goes idle or its partition moves away. */
  passivate?(): Promise<void>;
  /**
   * Operations that change nothing: a retry may simply run them again, so the runtime does not
   * keep their replies for deduplication (less memory held per actor).
   */
  readonly readOnlyOps?: ReadonlySet<string>;
}

export type ActorFactory = (context: ActorContext) => Actor;

const DEFER: unique symbol = Symbol("sf.actor.deferred-reply");

/**
 * A reply that comes later than the turn: the actor's turn ends (its mailbox moves on) and the
 * caller is answered when `promise` settles, still fenced by the owner's lease. Use it for work
 * that waits on the outside world (a worker claiming a job), never to mutate actor state late.
 */
export interface DeferredReply {
  readonly [DEFER]: Promise<unknown>;
}

export function deferReply(promise: Promise<unknown>): DeferredReply {
  return { [DEFER]: promise };
}

export function deferredPromise(value: unknown): Promise<unknown> | undefined {
  if (typeof value === "object" && value !== null && DEFER in value) return (value as DeferredReply)[DEFER];
  return undefined;
}
