/**
 * Utterance segmentation by energy: 16-bit mono PCM frames in, whole utterances out. A frame is
 * speech when its RMS reaches `thresholdRms`; an utterance starts at the first speech frame
 * (with `preRollMs` of audio before it), ends after `silenceMs` without speech, and is dropped
 * when shorter than `minSpeechMs`. The buffer is bounded: an utterance is cut at `maxUtteranceMs`.
 */
export interface EnergyVadOptions {
  sampleRate: number;
  /** Default 500 (of 32767). */
  thresholdRms?: number;
  /** Default 500 ms. */
  silenceMs?: number;
  /** Default 200 ms. */
  minSpeechMs?: number;
  /** Default 15000 ms. */
  maxUtteranceMs?: number;
  /** Default 200 ms. */
  preRollMs?: number;
}

export function frameRms(samples: Int16Array): number {
  if (samples.length === 0) return 0;
  let sum = 0;
  for (const s of samples) sum += s * s;
  return Math.sqrt(sum / samples.length);
}

export class EnergyVad {
  readonly #rate: number;
  readonly #threshold: number;
  readonly #silenceSamples: number;
  readonly #minSpeechSamples: number;
  readonly #maxSamples: number;
  readonly #preRollSamples: number;
  #preRoll: Int16Array[] = [];
  #preRollLength = 0;
  #chunks: Int16Array[] = [];
  #length = 0;
  #speechSamples = 0;
  #silentRun = 0;
  #active = false;
  #lastSpeech = false;

  constructor(options: EnergyVadOptions) {
    this.#rate = options.sampleRate;
    this.#threshold = options.thresholdRms ?? 500;
    this.#silenceSamples = this.#samples(options.silenceMs ?? 500);
    this.#minSpeechSamples = this.#samples(options.minSpeechMs ?? 200);
    this.#maxSamples = this.#samples(options.maxUtteranceMs ?? 15_000);
    this.#preRollSamples = this.#samples(options.preRollMs ?? 200);
  }

  /** Inside an utterance (speech seen, its trailing silence not yet long enough). */
  get active(): boolean {
    return this.#active;
  }

  /** Inside an utterance that already holds `minSpeechMs` of speech: it will be returned. */
  get speaking(): boolean {
    return this.#active && this.#speechSamples >= this.#minSpeechSamples;
  }

  /** Whether the last frame pushed was loud enough to be speech. */
  get lastFrameWasSpeech(): boolean {
    return this.#lastSpeech;
  }

  /** Consecutive silent samples at the end of the current utterance (0 outside one). */
  get trailingSilenceSamples(): number {
    return this.#silentRun;
  }

  #samples(ms: number): number {
    return Math.round((ms / 1000) * this.#rate);
  }

  /** Feeds one frame; returns a finished utterance when this frame ended one. */
  push(frame: Int16Array): Int16Array | undefined {
    const speech = frameRms(frame) >= this.#threshold;
    this.#lastSpeech = speech;
    if (!this.#active) {
      if (!speech) {
        this.#preRoll.push(frame);
        this.#preRollLength += frame.length;
        while (
          this.#preRoll.length > 0 &&
          this.#preRollLength - (this.#preRoll[0]?.length ?? 0) >= this.#preRollSamples
        ) {
          this.#preRollLength -= this.#preRoll.shift()?.length ?? 0;
        }
        return undefined;
      }
      this.#active = true;
      this.#chunks = this.#preRoll;
      this.#length = this.#preRollLength;
      this.#preRoll = [];
      this.#preRollLength = 0;
      this.#speechSamples = 0;
      this.#silentRun = 0;
    }
    this.#chunks.push(frame);
    this.#length += frame.length;
    if (speech) {
      this.#speechSamples += frame.length;
      this.#silentRun = 0;
    } else {
      this.#silentRun += frame.length;
    }
    if (this.#silentRun >= this.#silenceSamples || this.#length >= this.#maxSamples) return this.#finish();
    return undefined;
  }

  /** Ends the current utterance (the stream ended); returns it when it holds enough speech. */
  flush(): Int16Array | undefined {
    return this.#active ? this.#finish() : undefined;
  }

  #finish(): Int16Array | undefined {
    const enough = this.#speechSamples >= this.#minSpeechSamples;
    const out = enough ? new Int16Array(this.#length) : undefined;
    if (out !== undefined) {
      let offset = 0;
      for (const chunk of this.#chunks) {
        out.set(chunk, offset);
        offset += chunk.length;
      }
    }
    this.#chunks = [];
    this.#length = 0;
    this.#speechSamples = 0;
    this.#silentRun = 0;
    this.#active = false;
    return out;
  }
}
