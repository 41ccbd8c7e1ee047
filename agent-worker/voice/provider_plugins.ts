/**
 * Our provider clients behind `@livekit/agents`' model interfaces, so `AgentSession` runs the
 * tenant's own STT, LLM and TTS through the same code the text path uses: the platform's endpoint
 * overrides, deadlines, coded errors, and no fallback to another provider. The upstream plugins
 * would call the providers' real URLs with their own keys handling instead.
 *
 * - STT: whole utterances (`streaming: false`; Cartesia, OpenAI, Groq: Deepgram is streamed live,
 *   live_stt_plugin.ts); the session pairs it with the VAD
 *   (`stt.StreamAdapter`) and sends each utterance the VAD cuts. The transcript's `speakerId` is
 *   the user the utterance came from.
 * - TTS: one request per sentence (`streaming: false`: the session's `tts.StreamAdapter` splits
 *   the reply into sentences), answered as a streamed body of 16-bit mono PCM; each 20 ms frame is
 *   handed to the library as soon as its bytes arrive, so a sentence starts playing after the
 *   provider's first bytes, not its last. Aborting the synthesis closes the HTTP stream.
 * - LLM: the chat context as `{ role, content }` messages, streamed deltas back as chat chunks.
 *
 * Errors: a provider that refuses (key, model, request: a non-retryable coded error) is reported
 * through `refused`, which ends the voice session naming it; a call the library aborted ends
 * quietly. A transient LLM or STT failure becomes an `APIConnectionError` the library may retry.
 * TTS failures never reach the library: with a non-streaming TTS, agents 1.9 wraps it in a
 * `tts.StreamAdapter` per reply that re-emits the TTS's `error` events on itself, where nothing
 * listens, and an unhandled `error` event would bring the whole worker process down. So a sentence
 * whose synthesis fails transiently (including a stream that breaks off mid-sentence, after part
 * of it played) is reported through `transient`, naming the provider, and ends there.
 */
import { APIConnectionError, asLanguageCode, llm, mergeFrames, shortuuid, stt, tts } from "@livekit/agents";
import type { APIConnectOptions, AudioBuffer } from "@livekit/agents";
import { AudioFrame } from "@livekit/rtc-node";
import { SfError } from "../../bus/index.ts";
import { AgentWorkerErrorCodes, ProviderBadResponseError } from "../errors.ts";
import type { ChatMessage, ChatRole, LlmClient } from "../providers/llm_client.ts";
import type { SttClient } from "../providers/stt_client.ts";
import type { TtsClient } from "../providers/tts_client.ts";
import { PcmFramer } from "./pcm_framer.ts";
import { speakerOf } from "./users_audio_input.ts";

export interface ProviderReports {
  /** A provider refused a call: the session ends with this error. */
  refused: (err: SfError) => void;
  /** A call failed in a way a later call may not (logged; that part of the reply is lost). */
  transient: (err: SfError) => void;
}

const FRAME_MS = 20;

/** A transient provider failure, as the library's retryable error; the coded error rides along. */
export class ProviderCallError extends APIConnectionError {
  constructor(readonly providerError: SfError) {
    super({ message: providerError.message, options: { retryable: true } });
  }
}

/** What to throw into the library for what a client threw. */
export function forLibrary(err: unknown, reports: ProviderReports): Error {
  if (err instanceof SfError) {
    if (err.retryable) return new ProviderCallError(err);
    if (err.code !== AgentWorkerErrorCodes.PROVIDER_ABORTED) reports.refused(err);
    return err;
  }
  return err instanceof Error ? err : new Error(String(err));
}

// --- speech to text --------------------------------------------------------------------------

export class ProviderStt extends stt.STT {
  label: string;
  readonly #client: SttClient;
  readonly #reports: ProviderReports;
  readonly #language: string;

  constructor(client: SttClient, reports: ProviderReports, language = "en") {
    super({ streaming: false, interimResults: false });
    this.#client = client;
    this.#reports = reports;
    this.#language = language;
    this.label = `sidekick.${client.provider}.stt`;
  }

  override get model(): string {
    return this.#client.model;
  }

  override get provider(): string {
    return this.#client.provider;
  }

  protected async _recognize(buffer: AudioBuffer, abortSignal?: AbortSignal): Promise<stt.SpeechEvent> {
    const frame = mergeFrames(buffer);
    const pcm = new Uint8Array(frame.data.buffer, frame.data.byteOffset, frame.data.byteLength);
    const durationS = frame.samplesPerChannel / frame.sampleRate;
    try {
      const transcript = await this.#client.transcribe(
        { pcm, sampleRate: frame.sampleRate, channels: frame.channels },
        abortSignal === undefined
          ? { language: this.#language }
          : { language: this.#language, signal: abortSignal },
      );
      return {
        type: stt.SpeechEventType.FINAL_TRANSCRIPT,
        alternatives: [
          {
            language: asLanguageCode(this.#language),
            text: transcript.text,
            startTime: 0,
            endTime: durationS,
            confidence: transcript.confidence ?? 1,
            // The user the utterance came from (users_audio_input.ts), when its frames name one.
            speakerId: speakerOf(buffer) ?? null,
          },
        ],
      };
    } catch (err) {
      throw forLibrary(err, this.#reports);
    }
  }

  stream(): stt.SpeechStream {
    throw new Error(`${this.label} transcribes whole utterances; the session wraps it in stt.StreamAdapter`);
  }
}

// --- text to speech --------------------------------------------------------------------------

export class ProviderTts extends tts.TTS {
  label: string;
  readonly #client: TtsClient;
  readonly #reports: ProviderReports;

  constructor(client: TtsClient, reports: ProviderReports, sampleRate: number) {
    super(sampleRate, 1, { streaming: false });
    this.#client = client;
    this.#reports = reports;
    this.label = `sidekick.${client.provider}.tts`;
  }

  override get model(): string {
    return this.#client.model;
  }

  override get provider(): string {
    return this.#client.provider;
  }

  synthesize(text: string, connOptions?: APIConnectOptions, abortSignal?: AbortSignal): tts.ChunkedStream {
    return new ProviderChunkedStream(text, this, this.#client, this.#reports, connOptions, abortSignal);
  }

  stream(): tts.SynthesizeStream {
    throw new Error(`${this.label} synthesizes whole sentences; the session wraps it in tts.StreamAdapter`);
  }
}

class ProviderChunkedStream extends tts.ChunkedStream {
  label: string;
  readonly #owner: ProviderTts;
  readonly #client: TtsClient;
  readonly #reports: ProviderReports;

  constructor(
    text: string,
    owner: ProviderTts,
    client: TtsClient,
    reports: ProviderReports,
    connOptions?: APIConnectOptions,
    abortSignal?: AbortSignal,
  ) {
    super(text, owner, connOptions, abortSignal);
    this.#owner = owner;
    this.#client = client;
    this.#reports = reports;
    this.label = `${owner.label}.chunked`;
  }

  /**
   * Streams the sentence: each 20 ms frame is queued as soon as its bytes arrived, while the rest
   * of the audio is still coming. One frame is held back so the last can be marked `final`.
   */
  protected async run(): Promise<void> {
    const rate = this.#owner.sampleRate;
    const provider = this.#client.provider;
    if (this.#client.sampleRate !== rate) {
      this.#reports.refused(
        new ProviderBadResponseError(`${provider} tts: the audio is not ${rate} Hz`, {
          details: { kind: "tts", provider, sampleRate: this.#client.sampleRate },
        }),
      );
      return;
    }
    const framer = new PcmFramer((rate * FRAME_MS) / 1000);
    const requestId = shortuuid("tts_");
    let held: Int16Array | undefined;
    const put = (samples: Int16Array, final: boolean): void => {
      this.queue.put({
        requestId,
        segmentId: requestId,
        frame: new AudioFrame(samples, rate, 1, samples.length),
        final,
      });
    };
    try {
      for await (const pcm of this.#client.stream(this.inputText, { signal: this.abortSignal })) {
        if (this.abortSignal.aborted) return;
        for (const frame of framer.push(pcm)) {
          if (held !== undefined) put(held, false);
          held = frame;
        }
      }
    } catch (err) {
      if (this.abortSignal.aborted) return;
      if (err instanceof SfError && err.code === AgentWorkerErrorCodes.PROVIDER_ABORTED) return;
      this.#report(err);
      // The frames already queued play; the sentence ends where the provider's stream did.
      return;
    }
    if (this.abortSignal.aborted) return;
    const rest = framer.flush();
    if (rest !== undefined) {
      if (held !== undefined) put(held, false);
      held = rest;
    }
    if (held !== undefined) put(held, true);
  }

  /**
   * A refusal (key, model, request, malformed audio) ends the session; a transient failure (the
   * provider unreachable or slow, its stream broken off) loses this sentence, logged with the
   * provider's coded error.
   */
  #report(err: unknown): void {
    const provider = this.#client.provider;
    const coded =
      err instanceof SfError
        ? err
        : new ProviderBadResponseError(`${provider} tts: the call failed`, {
            cause: err,
            details: { kind: "tts", provider },
          });
    const transient =
      coded.retryable ||
      coded.code === AgentWorkerErrorCodes.PROVIDER_STREAM_INTERRUPTED ||
      coded.code === AgentWorkerErrorCodes.PROVIDER_TIMEOUT;
    if (transient) this.#reports.transient(coded);
    else this.#reports.refused(coded);
  }
}

// --- chat completions ------------------------------------------------------------------------

/** The chat context's messages as our clients take them (instructions are system messages). */
export function chatMessagesOf(chatCtx: llm.ChatContext): ChatMessage[] {
  const messages: ChatMessage[] = [];
  for (const item of chatCtx.items) {
    if (item.type !== "message") continue;
    const content = item.textContent ?? "";
    const role: ChatRole = item.role === "developer" ? "system" : item.role;
    if (content.trim() === "" && role === "system") continue;
    messages.push({ role, content });
  }
  return messages;
}

export class ProviderLlm extends llm.LLM {
  readonly #client: LlmClient;
  readonly #reports: ProviderReports;

  constructor(client: LlmClient, reports: ProviderReports) {
    super();
    this.#client = client;
    this.#reports = reports;
  }

  label(): string {
    return `sidekick.${this.#client.provider}.llm`;
  }

  override get model(): string {
    return this.#client.model;
  }

  override get provider(): string {
    return this.#client.provider;
  }

  chat({
    chatCtx,
    toolCtx,
    connOptions,
  }: {
    chatCtx: llm.ChatContext;
    toolCtx?: llm.ToolContextLike;
    connOptions?: APIConnectOptions;
  }): llm.LLMStream {
    return new ProviderLlmStream(this, this.#client, this.#reports, {
      chatCtx,
      ...(toolCtx === undefined ? {} : { toolCtx }),
      connOptions: connOptions ?? { maxRetry: 0, retryIntervalMs: 0, timeoutMs: 0 },
    });
  }
}

class ProviderLlmStream extends llm.LLMStream {
  readonly #client: LlmClient;
  readonly #reports: ProviderReports;

  constructor(
    owner: ProviderLlm,
    client: LlmClient,
    reports: ProviderReports,
    options: { chatCtx: llm.ChatContext; toolCtx?: llm.ToolContextLike; connOptions: APIConnectOptions },
  ) {
    super(owner, options);
    this.#client = client;
    this.#reports = reports;
  }

  protected async run(): Promise<void> {
    const id = shortuuid("chat_");
    const signal = this.abortController.signal;
    try {
      for await (const delta of this.#client.stream({ messages: chatMessagesOf(this.chatCtx) }, { signal })) {
        this.queue.put({ id, delta: { role: "assistant", content: delta } });
      }
    } catch (err) {
      if (signal.aborted) return;
      throw forLibrary(err, this.#reports);
    }
  }
}
