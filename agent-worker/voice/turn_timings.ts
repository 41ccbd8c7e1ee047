/**
 * The timings of one voice turn (ms), recorded with the turn (`metadata.timings`) and shown per
 * turn in the console's transcript view, as a text turn's are. They come from the library's own
 * per-message metrics (`ChatMessage.metrics`, in seconds; agents 1.9 fills them for the user's
 * and the agent's messages of a reply) and from what our `llmNode` measures itself:
 * - `stt_ms`: the user stopped speaking (where the VAD heard the speech end, not when it decided
 *   so) → the STT's final transcript (spoken turns). For an STT that transcribes the utterance the
 *   VAD cut, that includes the VAD's silence and the upload; for a streaming STT (Deepgram live),
 *   the provider's own endpointing silence and its answer, whether the final transcript came before
 *   or after the VAD's end of speech;
 * - `retrieval_ms`: retrieval for the turn, when it ran and found context;
 * - `llm_first_token_ms`, `llm_ms`: our LLM call, from the built prompt to its first and its last
 *   chunk (the library's own `llmNodeTtft` would count retrieval, which runs in our `llmNode`);
 * - `tts_first_audio_ms`: the TTS node's first audio (spoken replies);
 * - `response_ms`: the user stopped speaking (spoken) or the message was handed to the agent
 *   (typed) → the agent's first audio published (its first transcript text, without speech).
 * A part that did not happen in the turn is left out, never written as 0.
 */
import type { llm } from "@livekit/agents";

/** A type, not an interface: it is passed on as a plain record of numbers. */
export type VoiceTurnTimings = {
  stt_ms?: number;
  retrieval_ms?: number;
  llm_first_token_ms?: number;
  llm_ms?: number;
  tts_first_audio_ms?: number;
  response_ms?: number;
};

export interface LlmCallTimings {
  firstTokenMs?: number;
  totalMs?: number;
}

/** The LLM calls of the session's replies, by the id of the user message each answered. */
export class LlmTimings {
  readonly #byMessage = new Map<string, LlmCallTimings>();

  /** Passes `stream` on, noting when its first chunk came and when it ended. */
  measure<T>(messageId: string, stream: ReadableStream<T>): ReadableStream<T> {
    const started = performance.now();
    // A second reply to the same turn (the library retried it) replaces the first one's timings.
    const timings: LlmCallTimings = {};
    this.#byMessage.set(messageId, timings);
    return stream.pipeThrough(
      new TransformStream<T, T>({
        transform(chunk, controller) {
          timings.firstTokenMs ??= performance.now() - started;
          controller.enqueue(chunk);
        },
        flush() {
          timings.totalMs = performance.now() - started;
        },
      }),
    );
  }

  /** The timings of the reply to a user message, forgotten once read. */
  take(messageId: string): LlmCallTimings | undefined {
    const found = this.#byMessage.get(messageId);
    this.#byMessage.delete(messageId);
    return found;
  }
}

const ms = (seconds: number | undefined): number | undefined =>
  seconds === undefined || !Number.isFinite(seconds) ? undefined : Math.max(0, Math.round(seconds * 1000));

/** One answered turn's timings: `user` is the last user message the reply answered. */
export function voiceTurnTimings(
  user: llm.ChatMessage | undefined,
  assistant: llm.ChatMessage,
  measured: { retrievalMs?: number | undefined; llm?: LlmCallTimings | undefined },
): VoiceTurnTimings {
  const heard = user?.metrics ?? {};
  const said = assistant.metrics;
  // Spoken: the library's end of speech → agent speaking. Typed: from the message's creation,
  // which is when it was handed to the agent (`generateReply`).
  const response =
    said.e2eLatency ??
    (said.startedSpeakingAt !== undefined && user !== undefined && heard.stoppedSpeakingAt === undefined
      ? said.startedSpeakingAt - user.createdAt / 1000
      : undefined);
  const timings: VoiceTurnTimings = {
    stt_ms: ms(heard.transcriptionDelay),
    retrieval_ms: measured.retrievalMs === undefined ? undefined : Math.round(measured.retrievalMs),
    llm_first_token_ms:
      measured.llm?.firstTokenMs === undefined ? undefined : Math.round(measured.llm.firstTokenMs),
    llm_ms: measured.llm?.totalMs === undefined ? undefined : Math.round(measured.llm.totalMs),
    tts_first_audio_ms: ms(said.ttsNodeTtfb),
    response_ms: ms(response),
  };
  for (const key of Object.keys(timings) as (keyof VoiceTurnTimings)[]) {
    if (timings[key] === undefined) delete timings[key];
  }
  return timings;
}
