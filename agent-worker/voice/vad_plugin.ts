/**
 * The energy VAD (energy_vad.ts) behind `@livekit/agents`' VAD interface, so `AgentSession` can
 * use it for turn detection and to cut utterances for our non-streaming STT clients. It needs no
 * model: Silero (`@livekit/agents-plugin-silero`) loads offline but brings onnxruntime-node
 * (≈ 200 MB), and what it calls speech is what a voice model says is speech, which a test tone is
 * not. Events follow the library's contract: START_OF_SPEECH once an utterance holds
 * `minSpeechMs` of speech, INFERENCE_DONE per frame, END_OF_SPEECH with the whole utterance
 * (pre-roll included) after `silenceMs` of silence. The utterance's frame keeps the `userdata` of
 * its last speech frame (who said it, users_audio_input.ts).
 */
import { VAD, VADEventType, VADStream } from "@livekit/agents";
import type { VADEvent } from "@livekit/agents";
import { AudioFrame } from "@livekit/rtc-node";
import { EnergyVad } from "./energy_vad.ts";
import type { EnergyVadOptions } from "./energy_vad.ts";

export type EnergyVadPluginOptions = Omit<EnergyVadOptions, "sampleRate">;

const DEFAULT_SILENCE_MS = 500;

export class EnergyVadPlugin extends VAD {
  label = "sidekick.EnergyVAD";
  readonly #options: EnergyVadPluginOptions;

  constructor(options: EnergyVadPluginOptions = {}) {
    // `updateInterval` is the library's metrics batching hint: one event per 20 ms frame.
    super({ updateInterval: 20 });
    this.#options = { ...options };
  }

  override get minSilenceDuration(): number | null {
    return this.#options.silenceMs ?? DEFAULT_SILENCE_MS;
  }

  stream(): VADStream {
    return new EnergyVadStream(this, this.#options);
  }
}

/** Channel 0 of an interleaved frame (the room input is mono; this guards other layouts). */
function firstChannel(frame: AudioFrame): Int16Array {
  if (frame.channels === 1) return frame.data;
  const out = new Int16Array(frame.samplesPerChannel);
  for (let i = 0; i < out.length; i += 1) out[i] = frame.data[i * frame.channels] ?? 0;
  return out;
}

class EnergyVadStream extends VADStream {
  readonly #options: EnergyVadPluginOptions;

  constructor(vad: EnergyVadPlugin, options: EnergyVadPluginOptions) {
    super(vad);
    this.#options = options;
    this.#run().catch((err: unknown) => {
      this.logger.error({ err }, "energy VAD stream failed");
      if (!this.closed) this.close();
    });
  }

  async #run(): Promise<void> {
    let vad: EnergyVad | undefined;
    let rate = 0;
    let started = false;
    let samplesIndex = 0;
    let timestampMs = 0;
    // Published durations (while speaking / while not) and the raw runs of speech and silence.
    let speechMs = 0;
    let silenceMs = 0;
    let speechRunMs = 0;
    let silenceRunMs = 0;
    let speechUserdata: Record<string, unknown> = {};
    const reset = (): void => {
      vad = undefined;
      started = false;
      speechMs = 0;
      silenceMs = 0;
      speechRunMs = 0;
      silenceRunMs = 0;
    };
    while (!this.closed) {
      const { done, value } = await this.inputReader.read();
      if (done) break;
      if (typeof value === "symbol") {
        // The flush sentinel: a hard segment boundary.
        reset();
        continue;
      }
      const began = performance.now();
      if (vad === undefined || value.sampleRate !== rate) {
        rate = value.sampleRate;
        vad = new EnergyVad({ ...this.#options, sampleRate: rate });
      }
      const samples = firstChannel(value);
      const utterance = vad.push(samples);
      const frameMs = (samples.length / rate) * 1000;
      samplesIndex += samples.length;
      timestampMs += frameMs;
      if (vad.lastFrameWasSpeech) {
        speechUserdata = value.userdata;
        speechRunMs += frameMs;
        silenceRunMs = 0;
      } else {
        silenceRunMs += frameMs;
        speechRunMs = 0;
      }
      if (started) speechMs += frameMs;
      else silenceMs += frameMs;
      const event = (type: VADEventType, frames: AudioFrame[]): VADEvent => ({
        type,
        samplesIndex,
        timestamp: timestampMs,
        speechDuration: speechMs,
        silenceDuration: silenceMs,
        frames,
        probability: vad?.lastFrameWasSpeech === true ? 1 : 0,
        inferenceDuration: performance.now() - began,
        speaking: started,
        rawAccumulatedSilence: silenceRunMs,
        rawAccumulatedSpeech: speechRunMs,
      });
      if (!this.sendVADEvent(event(VADEventType.INFERENCE_DONE, [value]))) continue;
      if (!started && vad.speaking) {
        started = true;
        speechMs = speechRunMs;
        silenceMs = 0;
        if (!this.sendVADEvent(event(VADEventType.START_OF_SPEECH, [value]))) continue;
      }
      if (started && (utterance !== undefined || !vad.active)) {
        started = false;
        silenceMs = silenceRunMs;
        const frames =
          utterance === undefined
            ? []
            : [new AudioFrame(utterance, rate, 1, utterance.length, speechUserdata)];
        const ended = event(VADEventType.END_OF_SPEECH, frames);
        speechMs = 0;
        if (!this.sendVADEvent({ ...ended, speaking: false })) continue;
      }
    }
  }
}
