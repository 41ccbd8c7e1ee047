/**
 * The gateway's chat inbox: one subscription, `<prefix>.chat.<inbox>.*.out`, for the frames of
 * every session that only this gateway follows (the session ids it makes up itself: a trigger
 * without `session_id`, a WebSocket connection). Its turns name the inbox in their trigger
 * (`chat_inbox`), the worker sends their frames to `<prefix>.chat.<inbox>.<session>.out`, and the
 * inbox hands each frame to the turns waiting on that session.
 *
 * Instead of a subscription made and dropped per turn: no SUB/UNSUB per turn on the connection,
 * and no interest change for the NATS server (and every node of a cluster) to process per turn.
 * A session a caller names stays on `<prefix>.chat.<session>.out` with a subscription per turn,
 * since others may follow it there too.
 */
import { randomUUID } from "node:crypto";
import type { NatsConnection, Subscription } from "@nats-io/transport-node";
import type { ChatFrame } from "../../actors/index.ts";
import { decodeBody, isWireError } from "../../bus/index.ts";
import type { Subjects } from "../../bus/index.ts";

export function isChatFrame(value: unknown): value is ChatFrame {
  if (typeof value !== "object" || value === null) return false;
  const v = value as Record<string, unknown>;
  if (typeof v["job_id"] !== "string" || typeof v["seq"] !== "number") return false;
  switch (v["type"]) {
    case "token":
      return typeof v["delta"] === "string";
    case "message":
      return typeof v["text"] === "string" && typeof v["conversation_id"] === "string";
    case "error":
      return isWireError(v["error"]);
    default:
      return false;
  }
}

/**
 * A chat subject's message as a frame; undefined for anything else (nothing published on a chat
 * subject may stop a turn, so what is not a frame is skipped).
 */
export function readChatFrame(data: Uint8Array): ChatFrame | undefined {
  let value: unknown;
  try {
    value = decodeBody(data);
  } catch {
    return undefined;
  }
  return isChatFrame(value) ? value : undefined;
}

/** A turn waiting on a session. */
export interface ChatListener {
  /** Each of the session's frames, in arrival order. */
  frame(frame: ChatFrame): void;
  /** The inbox's subscription failed: no more frames will come. */
  error(err: Error): void;
}

export interface ChatInboxOptions {
  nc: NatsConnection;
  subjects: Subjects;
  /** The inbox token. Default `gw-<uuid>`, new for each gateway. */
  id?: string;
}

export class ChatInbox {
  readonly id: string;
  readonly #nc: NatsConnection;
  readonly #subjects: Subjects;
  /** `<prefix>.chat.<inbox>.`: what every subject of the inbox starts with. */
  readonly #head: string;
  readonly #listeners = new Map<string, ChatListener[]>();
  #sub: Subscription | undefined;

  constructor(options: ChatInboxOptions) {
    this.#nc = options.nc;
    this.#subjects = options.subjects;
    this.id = options.id ?? `gw-${randomUUID()}`;
    this.#head = `${this.#subjects.prefix}.chat.${this.id}.`;
    // Checks the token now rather than on the first turn.
    this.#subjects.chatInbox(this.id);
  }

  /**
   * Hands `session`'s frames to `listener` until the returned function is called. The inbox
   * subscribes on first use, before returning: a trigger published after this call on the same
   * connection cannot have frames the server delivers elsewhere.
   */
  listen(session: string, listener: ChatListener): () => void {
    this.#sub ??= this.#subscribe();
    const list = this.#listeners.get(session);
    if (list === undefined) this.#listeners.set(session, [listener]);
    else list.push(listener);
    return () => {
      const current = this.#listeners.get(session);
      if (current === undefined) return;
      const i = current.indexOf(listener);
      if (i === -1) return;
      if (current.length === 1) this.#listeners.delete(session);
      else current.splice(i, 1);
    };
  }

  /** Sessions with a turn waiting on them. */
  get sessions(): number {
    return this.#listeners.size;
  }

  #subscribe(): Subscription {
    return this.#nc.subscribe(this.#subjects.chatInbox(this.id), {
      callback: (err, msg) => {
        if (err) {
          // Every waiting turn fails with it; the next turn subscribes again.
          this.#sub = undefined;
          const all = [...this.#listeners.values()];
          this.#listeners.clear();
          for (const list of all) for (const l of list) l.error(err);
          return;
        }
        // `<head><session>.out`: the wildcard is exactly one token.
        const session = msg.subject.slice(this.#head.length, -4);
        const list = this.#listeners.get(session);
        if (list === undefined) return; // a turn that has given up, or nobody's
        const frame = readChatFrame(msg.data);
        if (frame === undefined) return;
        if (list.length === 1) list[0]?.frame(frame);
        else for (const l of [...list]) l.frame(frame);
      },
    });
  }
}
