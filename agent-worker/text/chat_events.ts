/**
 * What a text job streams to the gateway holding the user's socket, on core subject
 * `<prefix>.chat.<session>.out`: tokens in order, then one final message, or one error.
 * Every frame names its job, so several jobs can share a session.
 */
import type { WireError } from "../../bus/index.ts";

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
