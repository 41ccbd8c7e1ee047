/**
 * What the voice session and the agent runtime (agent_runtime.ts, loaded on the first voice job)
 * share, kept apart so the session can name them without loading `@livekit/agents`.
 */
import { SfError } from "../../bus/index.ts";

export const CHAT_TOPIC = "lk.chat";
export const TRANSCRIPTION_TOPIC = "lk.transcription";

export const VoiceSessionErrorCodes = {
  /** The worker stopped while the session ran (retryable: another worker may take the job). */
  WORKER_STOPPING: "SF_ERR_WORKER_STOPPING",
  /** The agent session closed on its own, with no provider error to name. */
  AGENT_SESSION_FAILED: "SF_ERR_VOICE_AGENT_FAILED",
  /** Joining the room and starting the agent in it outlasted its deadline. */
  JOIN_TIMEOUT: "SF_ERR_VOICE_JOIN_TIMEOUT",
} as const;

export class VoiceSessionError extends SfError {
  override name = "VoiceSessionError";
}

/** Retrieved context for one committed user turn. */
export interface TurnContext {
  message: string | null;
  citations: unknown[];
  documentIds: string[];
}

/** One answered user turn, as the agent session committed it. */
export interface AgentExchange {
  /** The user's committed turn (turns the agent had not answered yet are joined to it). */
  user: string;
  /** What the agent said (cut short when the user interrupted it). */
  assistant: string;
  interrupted: boolean;
  /** What retrieval put in the prompt for this turn, null without RAG. */
  context: TurnContext | null;
  /** The identities of the users who said the turn(s) answered, in order; empty when unknown. */
  speakers: string[];
  /** The turn's timings in ms (turn_timings.ts: stt_ms, retrieval_ms, llm_ms, response_ms, …). */
  timings: Readonly<Record<string, number>>;
}
