/**
 * A text turn answered as Server-Sent Events, the framing of `POST /api/embed/text/stream`
 * (SEED_CONTRACT.md): a `:stream-open` comment, `data: {"delta"}` per token as the worker streams
 * it, then `data: {"done": true, "full_text", "conversation_id", "citations"}` or
 * `data: {"error", "code", "no_fallback": true}`. The console's agent preview streams the same way.
 */
import type { TriggerService } from "../chat/trigger_service.ts";
import type { TextTurnRequest, TextTurnResult } from "../chat/text_turn.ts";
import { publicError } from "../error_status.ts";
import { stream } from "../http_types.ts";
import type { GatewayResponse } from "../http_types.ts";

export const SSE_CONTENT_TYPE = "text/event-stream; charset=utf-8";

/** One `data:` event. */
export function sseEvent(value: unknown): string {
  return `data: ${JSON.stringify(value)}\n\n`;
}

export interface TextStreamOptions {
  /** Fields added to the final `done` event. */
  doneExtra?: (turn: TextTurnResult) => Record<string, unknown>;
  headers?: Record<string, string>;
}

/** Runs `turn` and streams it; the turn follows the client (it ends when the client goes away). */
export function textTurnStream(
  svc: TriggerService,
  turn: Omit<TextTurnRequest, "signal" | "onToken">,
  options: TextStreamOptions = {},
): GatewayResponse {
  return stream(
    200,
    SSE_CONTENT_TYPE,
    async (sink) => {
      sink.write(":stream-open\n\n");
      try {
        const result = await svc.text({
          ...turn,
          signal: sink.signal,
          onToken: (delta) => {
            sink.write(sseEvent({ delta }));
          },
        });
        sink.write(
          sseEvent({
            done: true,
            full_text: result.text,
            conversation_id: result.conversationId,
            citations: result.citations,
            ...options.doneExtra?.(result),
          }),
        );
      } catch (err) {
        if (sink.signal.aborted) return;
        const e = publicError(err);
        sink.write(sseEvent({ error: e.message, code: e.code, no_fallback: true }));
      }
    },
    options.headers,
  );
}
