/**
 * A streaming STT behind `@livekit/agents`' `stt.STT` (`streaming: true, interimResults: true`):
 * the session's audio goes to the provider's live API as it is heard, and its results come back
 * as the library's speech events while the user still speaks (interim transcripts), with the
 * final transcript as soon as the provider's endpointing hears the user stop — no whole-utterance
 * upload after the end of speech. Whole-buffer `recognize` (which the session does not use for a
 * streaming STT) goes through the provider's REST client.
 *
 * Each transcript names its speaker the way `ProviderStt`'s does: the user whose frames the
 * utterance starts in (users_audio_input.ts passes one speaker at a time and names it on each
 * frame). The stream keeps, by position in the audio sent, who was speaking from when, and looks
 * up the start the provider gives for each result, so a transcript that arrives after someone
 * else took the floor still names the user who said it. Errors reach the library the way `ProviderStt`'s do (`forLibrary`): a
 * refusal is reported and ends the session, a transient failure may be retried by the library.
 */
import { asLanguageCode, stt } from "@livekit/agents";
import type { APIConnectOptions, AudioBuffer } from "@livekit/agents";
import type { SttClient } from "../providers/stt_client.ts";
import type { LiveSttClient, LiveTranscriptEvent } from "../providers/stt_live.ts";
import { SfError } from "../../bus/index.ts";
import { AgentWorkerErrorCodes } from "../errors.ts";
import { ProviderCallError, ProviderStt, forLibrary } from "./provider_plugins.ts";
import type { ProviderReports } from "./provider_plugins.ts";
import { speakerOf } from "./users_audio_input.ts";

/**
 * Audio goes to the provider in messages of at least this much (ms): microphone frames are 20 ms
 * (users_audio_input.ts), and a WebSocket message per frame cost each session a socket write 50
 * times a second (about a tenth of the worker's CPU in a profile of 10 sessions). Deepgram asks
 * for 20–250 ms per message; 60 ms adds at most 40 ms before the provider hears the end of an
 * utterance, well under its endpointing silence. A flush or the end of the input sends what is
 * held at once.
 */
export const LIVE_STT_CHUNK_MS = 60;

export interface ProviderLiveSttOptions {
  /** ISO-639-1; default `en`. */
  language?: string;
  /** The rate audio is sent at (frames are resampled to it). Default 16000. */
  sampleRate?: number;
  /** Silence (ms) after which the provider ends an utterance. Default 300. */
  endpointingMs?: number;
}

export class ProviderLiveStt extends stt.STT {
  label: string;
  readonly #live: LiveSttClient;
  readonly #reports: ProviderReports;
  readonly #whole: ProviderStt;
  readonly #options: Required<ProviderLiveSttOptions>;

  constructor(
    rest: SttClient,
    live: LiveSttClient,
    reports: ProviderReports,
    options: ProviderLiveSttOptions = {},
  ) {
    super({ streaming: true, interimResults: true });
    this.#live = live;
    this.#reports = reports;
    this.#options = {
      language: options.language ?? "en",
      sampleRate: options.sampleRate ?? 16_000,
      endpointingMs: options.endpointingMs ?? 300,
    };
    this.#whole = new ProviderStt(rest, reports, this.#options.language);
    this.label = `sidekick.${live.provider}.stt.live`;
  }

  override get model(): string {
    return this.#live.model;
  }

  override get provider(): string {
    return this.#live.provider;
  }

  protected async _recognize(buffer: AudioBuffer, abortSignal?: AbortSignal): Promise<stt.SpeechEvent> {
    return await this.#whole.recognize(buffer, abortSignal);
  }

  stream(options?: { connOptions?: APIConnectOptions }): stt.SpeechStream {
    return new LiveSpeechStream(this, this.#live, this.#reports, this.#options, options?.connOptions);
  }
}

class LiveSpeechStream extends stt.SpeechStream {
  label: string;
  readonly #client: LiveSttClient;
  readonly #reports: ProviderReports;
  readonly #options: Required<ProviderLiveSttOptions>;

  constructor(
    owner: ProviderLiveStt,
    client: LiveSttClient,
    reports: ProviderReports,
    options: Required<ProviderLiveSttOptions>,
    connOptions?: APIConnectOptions,
  ) {
    super(owner, options.sampleRate, connOptions);
    this.#client = client;
    this.#reports = reports;
    this.#options = options;
    this.label = `${owner.label}.stream`;
  }

  protected async run(): Promise<void> {
    const signal = this.abortSignal;
    let live;
    try {
      live = await this.#client.listen({
        sampleRate: this.#options.sampleRate,
        language: this.#options.language,
        endpointingMs: this.#options.endpointingMs,
        signal,
      });
    } catch (err) {
      if (signal.aborted) return;
      throw forLibrary(err, this.#reports);
    }
    // Who spoke from when (ms into this attempt's audio, which is the provider's clock).
    const speakers = new SpeakerTimeline();
    let sentMs = 0;
    // Set when this attempt failed: a retried attempt reads the same input, and this one must not.
    let stopped = false;
    // Audio held until it makes a message of LIVE_STT_CHUNK_MS.
    const held: Uint8Array[] = [];
    let heldMs = 0;
    const sendHeld = (): void => {
      if (held.length === 0) return;
      live.send(held.length === 1 ? (held[0] as Uint8Array) : Buffer.concat(held));
      held.length = 0;
      heldMs = 0;
    };
    const pump = async (): Promise<void> => {
      for await (const item of this.input) {
        if (signal.aborted || stopped) return;
        if (item === stt.SpeechStream.FLUSH_SENTINEL) {
          sendHeld();
          live.finalize();
          continue;
        }
        const speaker = speakerOf(item);
        if (speaker !== undefined) speakers.note(sentMs, speaker);
        const ms = (item.samplesPerChannel * 1000) / item.sampleRate;
        sentMs += ms;
        heldMs += ms;
        held.push(new Uint8Array(item.data.buffer, item.data.byteOffset, item.data.byteLength));
        if (heldMs >= LIVE_STT_CHUNK_MS) sendHeld();
      }
      // The input ended: what is held goes out, the provider flushes what it still holds, then closes.
      sendHeld();
      live.close();
    };
    const read = async (): Promise<void> => {
      let speaking = false;
      for await (const event of live) {
        if (event.text !== "") {
          if (!speaking) {
            speaking = true;
            this.queue.put({ type: stt.SpeechEventType.START_OF_SPEECH });
          }
          this.queue.put({
            type:
              event.type === "final"
                ? stt.SpeechEventType.FINAL_TRANSCRIPT
                : stt.SpeechEventType.INTERIM_TRANSCRIPT,
            alternatives: [this.#speechData(event, speakers.at(event.startMs))],
          });
        }
        if (speaking && event.type === "final" && event.speechFinal) {
          speaking = false;
          this.queue.put({ type: stt.SpeechEventType.END_OF_SPEECH });
        }
      }
    };
    try {
      await Promise.all([pump(), read()]);
    } catch (err) {
      stopped = true;
      live.close();
      if (signal.aborted) return;
      // A live socket that broke off can be opened again: the library may retry the attempt.
      if (err instanceof SfError && err.code === AgentWorkerErrorCodes.PROVIDER_STREAM_INTERRUPTED) {
        throw new ProviderCallError(err);
      }
      throw forLibrary(err, this.#reports);
    }
  }

  #speechData(event: LiveTranscriptEvent, speaker: string | undefined): stt.SpeechData {
    const start = event.startMs / 1000 + this.startTimeOffset;
    return {
      language: asLanguageCode(this.#options.language),
      text: event.text,
      startTime: start,
      endTime: start + event.durationMs / 1000,
      confidence: event.confidence,
      speakerId: speaker ?? null,
    };
  }
}

/** Who was speaking from when, in ms of one live stream's audio. */
class SpeakerTimeline {
  readonly #changes: { fromMs: number; speaker: string }[] = [];

  note(atMs: number, speaker: string): void {
    if (this.#changes.at(-1)?.speaker !== speaker) this.#changes.push({ fromMs: atMs, speaker });
    // Older changes are only looked up for results still due: a minute back is plenty.
    while (this.#changes.length > 1 && (this.#changes[1] as { fromMs: number }).fromMs < atMs - 60_000) {
      this.#changes.shift();
    }
  }

  /** The speaker at `ms` (the first one named, for a position before any frame named one). */
  at(ms: number): string | undefined {
    let found = this.#changes[0]?.speaker;
    for (const change of this.#changes) {
      if (change.fromMs > ms) break;
      found = change.speaker;
    }
    return found;
  }
}
