import { describe, expect, it } from "vitest";
import { EnergyVad } from "../../agent-worker/index.ts";

const RATE = 16_000;
const FRAME = 320; // 20 ms

function frames(ms: number, amplitude: number): Int16Array[] {
  const out: Int16Array[] = [];
  for (let t = 0; t < ms; t += 20) {
    const f = new Int16Array(FRAME);
    for (let i = 0; i < FRAME; i += 1)
      f[i] = Math.round(amplitude * Math.sin((2 * Math.PI * 440 * i) / RATE));
    out.push(f);
  }
  return out;
}

function feed(vad: EnergyVad, input: Int16Array[]): Int16Array[] {
  const utterances: Int16Array[] = [];
  for (const f of input) {
    const u = vad.push(f);
    if (u !== undefined) utterances.push(u);
  }
  return utterances;
}

describe("energy VAD", () => {
  it("one utterance per stretch of speech, ended by silence, with pre-roll", () => {
    const vad = new EnergyVad({ sampleRate: RATE, silenceMs: 400, preRollMs: 100 });
    const out = feed(vad, [
      ...frames(500, 0),
      ...frames(600, 8000),
      ...frames(500, 0),
      ...frames(400, 8000),
      ...frames(500, 0),
    ]);
    expect(out).toHaveLength(2);
    // 100 ms pre-roll + 600 ms speech + 400 ms of the closing silence.
    expect(out[0]?.length).toBe(((100 + 600 + 400) / 1000) * RATE);
  });

  it("drops clicks shorter than the minimum speech and bounds an endless utterance", () => {
    const vad = new EnergyVad({ sampleRate: RATE, minSpeechMs: 200, maxUtteranceMs: 2000, preRollMs: 0 });
    expect(feed(vad, [...frames(40, 8000), ...frames(600, 0)])).toHaveLength(0);
    const long = feed(vad, frames(5000, 8000));
    expect(long).toHaveLength(2);
    expect(long.every((u) => u.length === 2 * RATE)).toBe(true);
    expect(vad.flush()?.length).toBe(1 * RATE);
  });
});
