// Which user the agent hears in a room of several: one speaker at a time, nobody's start lost,
// overlapping speech taken in turns, the floor handed on when its holder goes quiet, mute or away.
import { describe, expect, it } from "vitest";
import { SpeakerFloor } from "../../agent-worker/index.ts";
import type { FloorAudio } from "../../agent-worker/index.ts";

const RATE = 16_000;
const FRAME = 320; // 20 ms

let frames = 0;

/** A 20 ms frame; its first sample numbers it, so equal contents mean the same frame. */
function frame(loud: boolean): Int16Array {
  const data = new Int16Array(FRAME);
  frames += 1;
  if (loud)
    for (let i = 0; i < FRAME; i += 1) data[i] = Math.round(8000 * Math.sin((2 * Math.PI * 440 * i) / RATE));
  data[0] = frames;
  return data;
}

/** `ms` of audio, speech or silence, as distinct 20 ms frames. */
function audio(ms: number, loud: boolean): Int16Array[] {
  return Array.from({ length: ms / 20 }, () => frame(loud));
}

/** Pushes the users' audio one 20 ms tick at a time, every user in each tick; returns what was passed on. */
function play(floor: SpeakerFloor, users: Record<string, Int16Array[]>): FloorAudio[] {
  const out: FloorAudio[] = [];
  const ticks = Math.max(...Object.values(users).map((frames) => frames.length));
  for (let t = 0; t < ticks; t += 1) {
    for (const [identity, frames] of Object.entries(users)) {
      const f = frames[t];
      if (f !== undefined) out.push(...floor.push(identity, f));
    }
  }
  return out;
}

/** The runs of consecutive audio from one user, as `identity:count`. */
function runs(out: FloorAudio[]): string[] {
  const result: { identity: string; count: number }[] = [];
  for (const a of out) {
    const last = result[result.length - 1];
    if (last?.identity === a.identity) last.count += 1;
    else result.push({ identity: a.identity, count: 1 });
  }
  return result.map((r) => `${r.identity}:${r.count}`);
}

describe("speaker floor", () => {
  it("floor - the first user to send holds it; a second user who speaks while the holder is quiet takes it, their start replayed", () => {
    const floor = new SpeakerFloor({ sampleRate: RATE });
    const first = audio(3000, false);
    const second = [...audio(1000, false), ...audio(800, true), ...audio(1200, false)];
    const out = play(floor, { first, second });
    expect(floor.holder).toBe("second");
    // Every frame of the second user's speech reached the session, in order, none of the first's after.
    const secondSpeech = second.slice(50, 90);
    const passed = out.filter((a) => a.identity === "second").map((a) => a.samples);
    expect(passed.filter((s) => secondSpeech.includes(s))).toEqual(secondSpeech);
    const firstFrameOfSpeech = out.findIndex((a) => a.samples === secondSpeech[0]);
    expect(out.slice(firstFrameOfSpeech).every((a) => a.identity === "second")).toBe(true);
    // Before it: the first user's silence, then the second's pre-roll (300 ms).
    expect(runs(out.slice(0, firstFrameOfSpeech))).toEqual(["first:60", "second:15"]);
  });

  it("floor - overlapping speech is taken in turns: the second speaker is heard whole after the first finished", () => {
    const floor = new SpeakerFloor({ sampleRate: RATE });
    // The first speaks 0–1000 ms; the second speaks 500–1500 ms, over the end of the first.
    const first = [...audio(1000, true), ...audio(2000, false)];
    const second = [...audio(500, false), ...audio(1000, true), ...audio(1500, false)];
    const out = play(floor, { first, second });
    const firstSpeech = first.slice(0, 50);
    const secondSpeech = second.slice(25, 75);
    // No mixing: the first user's speech and the silence that ended it (700 ms), then the second's
    // pre-roll, whole utterance and what followed.
    const order = out.map((a) => a.samples);
    expect(order.slice(0, 50)).toEqual(firstSpeech);
    const secondStart = order.indexOf(secondSpeech[0] as Int16Array);
    expect(secondStart).toBeGreaterThan(50 + 34);
    expect(out.slice(0, secondStart - 15).every((a) => a.identity === "first")).toBe(true);
    expect(order.slice(secondStart, secondStart + 50)).toEqual(secondSpeech);
    expect(floor.droppedSamples).toBe(0);
  });

  it("floor - a holder who leaves mid-utterance is closed with silence and a waiting user takes over", () => {
    const floor = new SpeakerFloor({ sampleRate: RATE, releaseAfterMs: 700 });
    const out = play(floor, {
      first: audio(1000, true),
      second: [...audio(400, false), ...audio(600, true)],
    });
    expect(out.every((a) => a.identity === "first")).toBe(true);
    const handed = floor.remove("first");
    expect(floor.holder).toBe("second");
    const [closing, ...backlog] = handed;
    expect(closing?.identity).toBe("first");
    expect(closing?.samples.length).toBe((RATE * 700) / 1000);
    expect(closing?.samples.every((s) => s === 0)).toBe(true);
    // The second user's pre-roll (300 ms) and the 600 ms they said meanwhile.
    expect(backlog.map((a) => a.identity)).toEqual(Array(45).fill("second"));
    // Their next frame goes straight through.
    const next = frame(true);
    expect(floor.push("second", next)).toEqual([{ identity: "second", samples: next }]);
  });

  it("floor - a holder whose audio stops (muted) yields once others sent releaseAfterMs of audio", () => {
    const floor = new SpeakerFloor({ sampleRate: RATE, releaseAfterMs: 700 });
    play(floor, { first: audio(200, false) });
    expect(floor.holder).toBe("first");
    const out = play(floor, { second: audio(680, false) });
    expect(out).toEqual([]);
    expect(floor.holder).toBe("first");
    const last = frame(false);
    expect(floor.push("second", last).map((a) => a.identity)).toEqual(Array(15).fill("second"));
    expect(floor.holder).toBe("second");
  });

  it("floor - a waiting user's backlog is bounded: the oldest audio is dropped and counted", () => {
    const floor = new SpeakerFloor({ sampleRate: RATE, maxBacklogMs: 1000 });
    const first = [...audio(3000, true), ...audio(1000, false)];
    const second = audio(2000, true);
    const out = play(floor, { first, second });
    const passed = out.filter((a) => a.identity === "second").map((a) => a.samples);
    // 1 s of the 2 s said is kept; the first second is gone.
    expect(passed).toEqual(second.slice(50));
    expect(floor.droppedSamples).toBe(50 * FRAME);
  });

  it("floor - a short noise from another user does not move the floor", () => {
    const floor = new SpeakerFloor({ sampleRate: RATE });
    const out = play(floor, {
      first: audio(2000, false),
      second: [...audio(500, false), ...audio(100, true), ...audio(1400, false)],
    });
    expect(floor.holder).toBe("first");
    expect(out.every((a) => a.identity === "first")).toBe(true);
    expect(out).toHaveLength(100);
  });
});
