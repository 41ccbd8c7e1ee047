/**
 * One text turn, as every text front door (v1/v2 trigger, SSE, WebSocket) runs it: follow the
 * session's frames BEFORE the trigger (so no token can be missed), send `trigger` to the tenant's
 * owner (answered once a worker has claimed the job), then follow that job's frames until its
 * final message or error, all within one reply deadline. A session only this gateway follows
 * (an id it made up) is followed through the gateway's chat inbox (chat_inbox.ts); a session the
 * caller named through a subscription to its chat subject for the turn. A trigger that repeats a
 * finished job (same Idempotency-Key) is answered with that job's recorded reply instead: it is
 * passed on as one token, and no frames are awaited.
 */
import type { NatsConnection } from "@nats-io/transport-node";
import type { TriggerReply } from "../../actors/index.ts";
import { fromWireError, requestReply } from "../../bus/index.ts";
import type { AbortLike, Subjects } from "../../bus/index.ts";
import type { ChatFrame } from "../../actors/index.ts";
import { ClientGoneError, ReplyTimeoutError } from "../errors.ts";
import { readChatFrame } from "./chat_inbox.ts";
import type { ChatInbox, ChatListener } from "./chat_inbox.ts";

export { isChatFrame } from "./chat_inbox.ts";

export interface ChatBus {
  nc: NatsConnection;
  subjects: Subjects;
  /** Deadline of the `trigger` request (until a worker claims the job). */
  triggerTimeoutMs: number;
  /**
   * Upper bound of one attempt of the `trigger` request; a lost attempt is sent again with the
   * same request and job id (see `triggerRequestOptions`). Default `DEFAULT_TRIGGER_ATTEMPT_MS`.
   */
  triggerAttemptMs?: number;
  /** Overall deadline, trigger included. */
  replyTimeoutMs: number;
  /** The gateway's chat inbox, for the sessions it made up. Absent: every turn subscribes. */
  inbox?: ChatInbox;
}

export interface TextTurnRequest {
  tenant: string;
  /** Session id (a subject token): the chat subject the worker streams to. */
  sessionId: string;
  /**
   * The gateway made `sessionId` up (no one else can know it yet): its frames may come through the
   * gateway's chat inbox. Leave unset for a session id the caller gave.
   */
  madeUpSession?: boolean;
  /** Idempotency id of the job. */
  jobId: string;
  /**
   * The job id is the caller's Idempotency-Key: the tenant actor looks for a finished turn of it,
   * and the trigger may wait for a first job still running (so it gets the whole reply deadline).
   */
  idempotent?: boolean;
  /** The `trigger` body without session_id/job_id/mode. */
  body: { agent_slug: string; user_id: string; message: string } & Record<string, unknown>;
  traceId: string;
  signal: AbortLike;
  /** Called for each token of the job, in order. */
  onToken?: (delta: string, seq: number) => void;
  /** Called once the job is claimed, before any token is passed on. */
  onClaimed?: (reply: TriggerReply) => void;
}

export interface TextTurnResult {
  reply: TriggerReply;
  text: string;
  citations: unknown[];
  conversationId: string;
  timings: { claim_ms: number; first_token_ms: number | null; total_ms: number };
}

/** One attempt of a `trigger` request at most, when the bus does not say (half the default lease TTL). */
export const DEFAULT_TRIGGER_ATTEMPT_MS = 1500;

/**
 * How a `trigger` request is sent: within `timeoutMs` overall, in attempts of `triggerAttemptMs`
 * with one request id. The owner answers once a worker has claimed the job, which may take up to
 * its claim deadline; an attempt that ends before that is repeated, and the owner attaches the
 * repeat to the same pending answer (the runtime keeps deferred replies by request id). An owner
 * that is frozen or dead answers nothing: the repeats reach the host that took its partition over
 * about a lease TTL later, and that owner finds the job by its id (SF_DISPATCH's dedupe, the job's
 * events in SF_EVENTS), so no attempt ever starts a second job.
 */
export function triggerRequestOptions(
  bus: Pick<ChatBus, "triggerAttemptMs">,
  timeoutMs: number,
): { timeoutMs: number; attemptTimeoutMs: number } {
  return {
    timeoutMs,
    attemptTimeoutMs: Math.min(bus.triggerAttemptMs ?? DEFAULT_TRIGGER_ATTEMPT_MS, timeoutMs),
  };
}

/** Frames kept while the trigger reply (which names the job) is still on its way. */
const MAX_EARLY_FRAMES = 10_000;

const round = (ms: number): number => Math.round(ms * 100) / 100;

export async function runTextTurn(bus: ChatBus, turn: TextTurnRequest): Promise<TextTurnResult> {
  const started = performance.now();
  let jobId: string | undefined;
  let firstTokenMs: number | null = null;
  const early: ChatFrame[] = [];
  let resolveFinal!: (frame: Extract<ChatFrame, { type: "message" }>) => void;
  let rejectFinal!: (err: unknown) => void;
  const final = new Promise<Extract<ChatFrame, { type: "message" }>>((resolve, reject) => {
    resolveFinal = resolve;
    rejectFinal = reject;
  });
  // `final` is only rejected once it is being awaited (after the trigger reply): a subscription
  // error before that is kept here, so no rejection is ever left unhandled.
  let armed = false;
  let pendingError: Error | undefined;

  const onFrame = (frame: ChatFrame): void => {
    if (frame.job_id !== jobId) return;
    switch (frame.type) {
      case "token":
        if (firstTokenMs === null) firstTokenMs = round(performance.now() - started);
        turn.onToken?.(frame.delta, frame.seq);
        break;
      case "message":
        resolveFinal(frame);
        break;
      case "error":
        rejectFinal(fromWireError(frame.error));
        break;
    }
  };

  const listener: ChatListener = {
    frame(frame) {
      if (jobId !== undefined) onFrame(frame);
      else if (early.length < MAX_EARLY_FRAMES) early.push(frame);
    },
    error(err) {
      if (armed) rejectFinal(err);
      else pendingError ??= err;
    },
  };
  const inbox = turn.madeUpSession === true ? bus.inbox : undefined;
  let stopListening: () => void;
  if (inbox !== undefined) {
    stopListening = inbox.listen(turn.sessionId, listener);
  } else {
    const sub = bus.nc.subscribe(bus.subjects.chatOut(turn.sessionId), {
      callback: (err, msg) => {
        if (err) {
          listener.error(err);
          return;
        }
        const frame = readChatFrame(msg.data);
        if (frame !== undefined) listener.frame(frame);
      },
    });
    stopListening = () => sub.unsubscribe();
  }
  let timer: ReturnType<typeof setTimeout> | undefined;
  const onAbort = (): void => rejectFinal(new ClientGoneError());
  try {
    // No flush: the subscription (the inbox's, or this turn's) and the trigger go out on the same
    // connection, in that order, so the server has it before the trigger (and so the job) can exist.
    const triggerTimeoutMs =
      turn.idempotent === true ? bus.replyTimeoutMs : Math.min(bus.triggerTimeoutMs, bus.replyTimeoutMs);
    // Each call is its own request (the runtime dedupes only its retries: the attempts of this
    // call, see triggerRequestOptions); the job id is what makes a repeated trigger the same job,
    // and the tenant actor answers it by that id.
    const reply = await requestReply<TriggerReply>(
      bus.nc,
      bus.subjects.tenantOp(turn.tenant, "trigger"),
      {
        ...turn.body,
        mode: "text",
        session_id: turn.sessionId,
        ...(inbox === undefined ? {} : { chat_inbox: inbox.id }),
        job_id: turn.jobId,
        ...(turn.idempotent === true ? { idempotent: true } : {}),
      },
      {
        tenant: turn.tenant,
        ...triggerRequestOptions(bus, triggerTimeoutMs),
        traceId: turn.traceId,
        signal: turn.signal,
      },
    );
    jobId = reply.body.job_id;
    armed = true;
    if (pendingError !== undefined) {
      throw pendingError;
    }
    turn.onClaimed?.(reply.body);
    const recorded = reply.body.result;
    if (recorded !== undefined) {
      // A finished job's reply: its frames went out long ago (to the first caller's session).
      if (recorded.text !== "") turn.onToken?.(recorded.text, 0);
      return {
        reply: reply.body,
        text: recorded.text,
        citations: recorded.citations,
        conversationId: reply.body.conversation_id,
        timings: {
          claim_ms: reply.body.claim_ms,
          first_token_ms: null,
          total_ms: round(performance.now() - started),
        },
      };
    }
    for (const frame of early.splice(0)) onFrame(frame);
    const remainingMs = Math.max(0, bus.replyTimeoutMs - (performance.now() - started));
    timer = setTimeout(() => rejectFinal(new ReplyTimeoutError(bus.replyTimeoutMs)), remainingMs);
    if (turn.signal.aborted) onAbort();
    else turn.signal.addEventListener("abort", onAbort, { once: true });
    const done = await final;
    return {
      reply: reply.body,
      text: done.text,
      citations: done.citations,
      conversationId: done.conversation_id,
      timings: {
        claim_ms: reply.body.claim_ms,
        first_token_ms: firstTokenMs,
        total_ms: round(performance.now() - started),
      },
    };
  } finally {
    if (timer !== undefined) clearTimeout(timer);
    turn.signal.removeEventListener("abort", onAbort);
    stopListening();
  }
}
