/**
 * The dispatch contract between tenant actors (producers) and agent workers (consumers): the
 * job on `<prefix>.dispatch.<tenant>.<mode>` (stream SF_DISPATCH, `Nats-Msg-Id` = job id) and
 * its lifecycle events on `<prefix>.job.<tenant>.<job>.<event>` (stream SF_EVENTS).
 */
import { isToken } from "../../bus/index.ts";
import type { Subjects, WireError } from "../../bus/index.ts";

export type JobMode = "text" | "voice";

export interface DispatchJob {
  readonly jobId: string;
  readonly tenant: string;
  readonly mode: JobMode;
  readonly agentSlug: string;
  readonly conversationId: string;
  readonly sessionId: string;
  /**
   * Text jobs: the chat inbox of the gateway that alone follows this session; frames then go to
   * `chatVia(chatInbox, sessionId)` instead of `chatOut(sessionId)`.
   */
  readonly chatInbox?: string;
  readonly userId: string;
  /** The user's message (text mode). */
  readonly message?: string;
  /** The LiveKit room to join (voice mode). */
  readonly roomName?: string;
  readonly context?: Record<string, unknown>;
  /** Wall-clock epoch ms. */
  readonly createdAt: number;
}

export const JobEventTypes = ["claimed", "joined", "answered", "failed", "done"] as const;
export type JobEventType = (typeof JobEventTypes)[number];

export type JobEvent =
  | { type: "claimed"; jobId: string; workerId: string; delivery: number; at: number }
  | { type: "joined"; jobId: string; workerId: string; at: number }
  | { type: "answered"; jobId: string; workerId: string; at: number }
  | {
      type: "failed";
      jobId: string;
      workerId: string;
      error: WireError;
      final: boolean;
      delivery: number;
      at: number;
    }
  | { type: "done"; jobId: string; workerId: string; at: number };

const MODES: readonly string[] = ["text", "voice"];

/** Checks a decoded job body; returns a reason when it is not a job. */
export function jobProblem(value: unknown): string | undefined {
  if (typeof value !== "object" || value === null) return "a job is an object";
  const v = value as Record<string, unknown>;
  for (const field of ["jobId", "tenant", "agentSlug", "conversationId", "sessionId", "userId"]) {
    if (typeof v[field] !== "string" || v[field] === "") return `job.${field} must be a non-empty string`;
  }
  // They name the job's event subjects: a job whose events cannot be published is no job.
  for (const field of ["jobId", "tenant"]) {
    if (!isToken(v[field])) return `job.${field} must be a subject token`;
  }
  if (typeof v["mode"] !== "string" || !MODES.includes(v["mode"])) return "job.mode must be text or voice";
  if (typeof v["createdAt"] !== "number") return "job.createdAt must be a number";
  if (v["chatInbox"] !== undefined && !isToken(v["chatInbox"]))
    return "job.chatInbox must be a subject token";
  return undefined;
}

/** Where a text job's chat frames go: the gateway's inbox when the job names one, else the session's subject. */
export function chatSubject(subjects: Subjects, job: Pick<DispatchJob, "sessionId" | "chatInbox">): string {
  return job.chatInbox === undefined
    ? subjects.chatOut(job.sessionId)
    : subjects.chatVia(job.chatInbox, job.sessionId);
}

/**
 * What a text job streams to the gateway holding the user's socket, on core subject
 * `<prefix>.chat.<session>.out` (or that gateway's inbox, see `chatSubject`): tokens in order,
 * then one final message, or one error.
 * Every frame names its job, so several jobs can share a session.
 */
export type ChatFrame =
  | { type: "token"; job_id: string; seq: number; delta: string }
  | {
      type: "message";
      job_id: string;
      conversation_id: string;
      text: string;
      citations: unknown[];
      seq: number;
    }
  | { type: "error"; job_id: string; error: WireError; seq: number };
