/**
 * Cuts streamed s16le PCM into fixed-size frames as it arrives, for audio that must be played
 * out in equal frames (20 ms in the voice pipeline) while the rest is still on its way.
 */
export class PcmFramer {
  readonly #samplesPerFrame: number;
  #frame: Int16Array;
  #filled = 0;

  constructor(samplesPerFrame: number) {
    if (!Number.isInteger(samplesPerFrame) || samplesPerFrame < 1) {
      throw new RangeError(`samplesPerFrame must be a positive integer, got ${samplesPerFrame}`);
    }
    this.#samplesPerFrame = samplesPerFrame;
    this.#frame = new Int16Array(samplesPerFrame);
  }

  /** The frames `pcm` (whole s16le samples) completes, in order; each is a new array. */
  push(pcm: Uint8Array): Int16Array[] {
    if (pcm.byteLength % 2 !== 0) throw new RangeError("PCM chunks must hold whole 16-bit samples");
    // An Int16Array view needs an even byte offset; a chunk that starts odd is copied.
    const bytes = pcm.byteOffset % 2 === 0 ? pcm : pcm.slice();
    const samples = new Int16Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 2);
    const frames: Int16Array[] = [];
    let at = 0;
    while (at < samples.length) {
      const take = Math.min(this.#samplesPerFrame - this.#filled, samples.length - at);
      this.#frame.set(samples.subarray(at, at + take), this.#filled);
      this.#filled += take;
      at += take;
      if (this.#filled === this.#samplesPerFrame) {
        frames.push(this.#frame);
        this.#frame = new Int16Array(this.#samplesPerFrame);
        this.#filled = 0;
      }
    }
    return frames;
  }

  /** The samples left over after the last whole frame (a shorter last frame), if any. */
  flush(): Int16Array | undefined {
    if (this.#filled === 0) return undefined;
    const rest = this.#frame.slice(0, this.#filled);
    this.#frame = new Int16Array(this.#samplesPerFrame);
    this.#filled = 0;
    return rest;
  }
}
