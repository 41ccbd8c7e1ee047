/**
 * Which user the agent hears: `AgentSession` has one audio input, a room has many microphones.
 * One user holds the floor at a time and only their audio goes to the session, so each utterance
 * the session's VAD cuts, the STT transcribes and the turn records belongs to one person.
 *
 * - The floor is sticky: its holder keeps it, silent or not, until another user has said at least
 *   `minSpeechMs` of speech while the holder is idle (no speech for `releaseAfterMs`, which must
 *   exceed the session VAD's silence so the holder's utterance has ended there first), or has sent
 *   nothing for `releaseAfterMs` (a muted or stalled track), or is gone.
 * - Nobody loses the start of what they say: a user without the floor is buffered (`preRollMs` of
 *   audio while quiet, the whole utterance while speaking), and the buffer is replayed to the
 *   session when they take the floor, then their live audio follows.
 * - Overlapping speech is taken in turns, not mixed: whoever spoke while someone else held the
 *   floor is heard after the holder finished, in the order they began. What a waiting user says
 *   beyond `maxBacklogMs` loses its oldest audio (`droppedSamples` counts it).
 * - Time is counted in samples, never by the wall clock: the decisions depend only on the audio.
 */
import { frameRms } from "./energy_vad.ts";

export interface SpeakerFloorOptions {
  sampleRate: number;
  /** RMS (of 32767) from which a frame is speech. Default 500, as the session's energy VAD. */
  thresholdRms?: number;
  /** Speech a user needs before they may take the floor. Default 200 ms. */
  minSpeechMs?: number;
  /**
   * Silence (or no audio at all) after which the holder yields to a waiting user. Default 700 ms:
   * it must exceed the session VAD's end-of-speech silence (500 ms, vad_plugin.ts).
   */
  releaseAfterMs?: number;
  /** Audio kept from a quiet user without the floor, replayed when they take it. Default 300 ms. */
  preRollMs?: number;
  /** Most audio kept for a user waiting for the floor. Default 10000 ms. */
  maxBacklogMs?: number;
}

/** Audio to pass to the session, with the user it came from. */
export interface FloorAudio {
  identity: string;
  samples: Int16Array;
}

interface Speaker {
  identity: string;
  /** Audio not passed on yet (only while this user does not hold the floor). */
  backlog: Int16Array[];
  backlogSamples: number;
  /** Inside an utterance: speech seen, not yet `releaseAfterMs` of silence after it. */
  active: boolean;
  speechSamples: number;
  silentRun: number;
  /** Said enough without the floor: waits for it, `order` saying since when. */
  waiting: boolean;
  order: number;
  /** Samples this user sent since the holder's last frame. */
  sinceHolderFrame: number;
}

export class SpeakerFloor {
  readonly #threshold: number;
  readonly #minSpeech: number;
  readonly #release: number;
  readonly #preRoll: number;
  readonly #maxBacklog: number;
  readonly #speakers = new Map<string, Speaker>();
  #holder: string | undefined;
  /** A holder that left in the middle of an utterance: the session still has to hear it end. */
  #cutOff: string | undefined;
  #sequence = 0;
  #dropped = 0;

  constructor(options: SpeakerFloorOptions) {
    const samples = (ms: number): number => Math.round((ms / 1000) * options.sampleRate);
    this.#threshold = options.thresholdRms ?? 500;
    this.#minSpeech = samples(options.minSpeechMs ?? 200);
    this.#release = samples(options.releaseAfterMs ?? 700);
    this.#preRoll = samples(options.preRollMs ?? 300);
    this.#maxBacklog = samples(options.maxBacklogMs ?? 10_000);
  }

  /** Who holds the floor, if anyone. */
  get holder(): string | undefined {
    return this.#holder;
  }

  /** Audio of waiting users dropped because their backlog was full. */
  get droppedSamples(): number {
    return this.#dropped;
  }

  /** One frame of a user's microphone (mono); returns what the session hears now, in order. */
  push(identity: string, samples: Int16Array): FloorAudio[] {
    let speaker = this.#speakers.get(identity);
    if (speaker === undefined) {
      speaker = {
        identity,
        backlog: [],
        backlogSamples: 0,
        active: false,
        speechSamples: 0,
        silentRun: 0,
        waiting: false,
        order: 0,
        sinceHolderFrame: 0,
      };
      this.#speakers.set(identity, speaker);
    }
    this.#detect(speaker, samples);
    if (this.#holder === identity) {
      for (const other of this.#speakers.values()) other.sinceHolderFrame = 0;
      const out: FloorAudio[] = [{ identity, samples }];
      if (!speaker.active) {
        const next = this.#nextWaiting();
        if (next !== undefined) out.push(...this.#take(next));
      }
      return out;
    }
    this.#buffer(speaker, samples);
    speaker.sinceHolderFrame += samples.length;
    if (!speaker.waiting && speaker.active && speaker.speechSamples >= this.#minSpeech) {
      speaker.waiting = true;
      this.#sequence += 1;
      speaker.order = this.#sequence;
    }
    const holder = this.#holder === undefined ? undefined : this.#speakers.get(this.#holder);
    // Nobody holds the floor (the first audio, or the holder left): the first to send takes it.
    if (holder === undefined) return this.#take(this.#nextWaiting() ?? speaker);
    const stalled = speaker.sinceHolderFrame >= this.#release;
    if (!holder.active || stalled) {
      const next = this.#nextWaiting() ?? (stalled ? speaker : undefined);
      if (next !== undefined) return this.#take(next);
    }
    return [];
  }

  /**
   * A user's microphone is gone (they left, or unpublished it). When they held the floor, a
   * waiting user takes it at once; returns what the session hears now.
   */
  remove(identity: string): FloorAudio[] {
    const speaker = this.#speakers.get(identity);
    this.#speakers.delete(identity);
    if (this.#holder !== identity) return [];
    this.#holder = undefined;
    if (speaker?.active === true) this.#cutOff = identity;
    const next = this.#nextWaiting();
    return next === undefined ? [] : this.#take(next);
  }

  #detect(speaker: Speaker, samples: Int16Array): void {
    if (frameRms(samples) >= this.#threshold) {
      if (!speaker.active) {
        speaker.active = true;
        speaker.speechSamples = 0;
      }
      speaker.speechSamples += samples.length;
      speaker.silentRun = 0;
    } else if (speaker.active) {
      speaker.silentRun += samples.length;
      if (speaker.silentRun >= this.#release) {
        speaker.active = false;
        speaker.speechSamples = 0;
        speaker.silentRun = 0;
      }
    }
  }

  #buffer(speaker: Speaker, samples: Int16Array): void {
    // A waiting user whose utterance ended keeps it and the silence that ended it, nothing more.
    if (speaker.waiting && !speaker.active) return;
    speaker.backlog.push(samples);
    speaker.backlogSamples += samples.length;
    const keep = speaker.active || speaker.waiting ? this.#maxBacklog : this.#preRoll;
    for (;;) {
      const first = speaker.backlog[0];
      if (first === undefined || speaker.backlogSamples - first.length < keep) break;
      if (speaker.waiting) this.#dropped += first.length;
      speaker.backlog.shift();
      speaker.backlogSamples -= first.length;
    }
  }

  #nextWaiting(): Speaker | undefined {
    let next: Speaker | undefined;
    for (const speaker of this.#speakers.values()) {
      if (speaker.identity === this.#holder || !speaker.waiting) continue;
      if (next === undefined || speaker.order < next.order) next = speaker;
    }
    return next;
  }

  /**
   * Gives `speaker` the floor; returns their backlog, which the session hears first. A holder cut
   * off in the middle of an utterance (stalled, or gone) is closed with `releaseAfterMs` of silence
   * first, so the session's VAD ends that utterance instead of joining it to the next one.
   */
  #take(speaker: Speaker): FloorAudio[] {
    const previous = this.#holder === undefined ? undefined : this.#speakers.get(this.#holder);
    const cutOff = previous?.active === true ? previous.identity : this.#cutOff;
    this.#cutOff = undefined;
    if (previous !== undefined) {
      previous.active = false;
      previous.speechSamples = 0;
      previous.silentRun = 0;
    }
    this.#holder = speaker.identity;
    const out: FloorAudio[] =
      cutOff === undefined ? [] : [{ identity: cutOff, samples: new Int16Array(this.#release) }];
    for (const samples of speaker.backlog) out.push({ identity: speaker.identity, samples });
    speaker.backlog = [];
    speaker.backlogSamples = 0;
    speaker.waiting = false;
    for (const other of this.#speakers.values()) other.sinceHolderFrame = 0;
    return out;
  }
}
