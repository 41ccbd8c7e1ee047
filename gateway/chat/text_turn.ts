/**
 * One text turn, as every text front door (v1/v2 trigger, SSE, WebSocket) runs it: subscribe to
 * the session's chat subject BEFORE the trigger (so no token can be missed), send `trigger` to
 * the tenant's owner (answered once a worker has claimed the job), then follow that job's frames
 * until its final message or error, all within one reply deadline. A trigger that repeats a
 * finished job (same Idempotency-Key) is answered with that job's recorded reply instead: it is
 * passed on as one token, and no frames are awaited.
 */
import type { NatsConnection } from "@nats-io/transport-node";
import type { TriggerReply } from "../../actors/index.ts";
import { decodeBody, fromWireError, isWireError, requestReply } from "../../bus/index.ts";
import type { Subjects } from "../../bus/index.ts";
import type { ChatFrame } from "../../actors/index.ts";
import { ClientGoneError, ReplyTimeoutError } from "../errors.ts";

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

export interface ChatBus {
  nc: NatsConnection;
  subjects: Subjects;
  /** Deadline of the `trigger` request (until a worker claims the job). */
  triggerTimeoutMs: number;
  /** Overall deadline, trigger included. */
  replyTimeoutMs: number;
}

export interface TextTurnRequest {
  tenant: string;
  /** Session id (a subject token): the chat subject the worker streams to. */
  sessionId: string;
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
  signal: AbortSignal;
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

  const sub = bus.nc.subscribe(bus.subjects.chatOut(turn.sessionId), {
    callback: (err, msg) => {
      if (err) {
        if (armed) rejectFinal(err);
        else pendingError ??= err;
        return;
      }
      let frame: unknown;
      try {
        frame = decodeBody(msg.data);
      } catch (decodeErr) {
        // Not a frame of ours: nothing on this subject may stop the turn, so it is skipped.
        frame = decodeErr;
      }
      if (!isChatFrame(frame)) return;
      if (jobId !== undefined) onFrame(frame);
      else if (early.length < MAX_EARLY_FRAMES) early.push(frame);
    },
  });
  let timer: ReturnType<typeof setTimeout> | undefined;
  const onAbort = (): void => rejectFinal(new ClientGoneError());
  try {
    // No flush: the subscription and the trigger go out on the same connection, in that order,
    // so the server registers the subscription before the trigger (and so the job) can exist.
    const triggerTimeoutMs =
      turn.idempotent === true ? bus.replyTimeoutMs : Math.min(bus.triggerTimeoutMs, bus.replyTimeoutMs);
    // Each call is its own request (the runtime dedupes only its retries); the job id is what
    // makes a repeated trigger the same job, and the tenant actor answers it by that id.
    const reply = await requestReply<TriggerReply>(
      bus.nc,
      bus.subjects.tenantOp(turn.tenant, "trigger"),
      {
        ...turn.body,
        mode: "text",
        session_id: turn.sessionId,
        job_id: turn.jobId,
        ...(turn.idempotent === true ? { idempotent: true } : {}),
      },
      {
        tenant: turn.tenant,
        timeoutMs: triggerTimeoutMs,
        attemptTimeoutMs: triggerTimeoutMs,
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
    sub.unsubscribe();
  }
}
