// The energy VAD behind @livekit/agents' VAD interface: the events AgentSession's turn detection
// and the STT stream adapter read (start once enough speech, a result per frame, end with the
// whole utterance).
import { VADEventType, initializeLogger } from "@livekit/agents";
import type { VADEvent } from "@livekit/agents";
import { AudioFrame } from "@livekit/rtc-node";
import { beforeAll, describe, expect, it } from "vitest";
import { loadVoiceRuntime } from "../../agent-worker/index.ts";
import { waitFor } from "../helpers/deadline.ts";

const { EnergyVadPlugin } = await loadVoiceRuntime();
const RATE = 16_000;
const FRAME = 320; // 20 ms

beforeAll(() => {
  initializeLogger({ pretty: false, level: "warn" });
});

function frames(ms: number, amplitude: number): AudioFrame[] {
  const out: AudioFrame[] = [];
  for (let t = 0; t < ms; t += 20) {
    const data = new Int16Array(FRAME);
    for (let i = 0; i < FRAME; i += 1)
      data[i] = Math.round(amplitude * Math.sin((2 * Math.PI * 440 * i) / RATE));
    out.push(new AudioFrame(data, RATE, 1, FRAME));
  }
  return out;
}

/** Pushes the frames through one stream and returns every event once each frame was processed. */
async function run(input: AudioFrame[], options = {}): Promise<VADEvent[]> {
  const stream = new EnergyVadPlugin(options).stream();
  const events: VADEvent[] = [];
  const reading = (async () => {
    for await (const ev of stream) events.push(ev);
  })();
  for (const frame of input) stream.pushFrame(frame);
  await waitFor("every frame's inference", () =>
    events.filter((e) => e.type === VADEventType.INFERENCE_DONE).length === input.length ? true : undefined,
  );
  stream.close();
  await reading;
  return events;
}

describe("energy VAD plugin", () => {
  it("vad - a stretch of speech: one START once enough speech, one END with the utterance, a result per frame", async () => {
    const events = await run([...frames(300, 0), ...frames(800, 8000), ...frames(1000, 0)], {
      silenceMs: 500,
      preRollMs: 200,
    });
    const kinds = events.map((e) => e.type).filter((t) => t !== VADEventType.INFERENCE_DONE);
    expect(kinds).toEqual([VADEventType.START_OF_SPEECH, VADEventType.END_OF_SPEECH]);
    const start = events.find((e) => e.type === VADEventType.START_OF_SPEECH);
    expect(start?.speaking).toBe(true);
    expect(start?.speechDuration).toBeGreaterThanOrEqual(200);
    const end = events.find((e) => e.type === VADEventType.END_OF_SPEECH);
    expect(end?.speaking).toBe(false);
    expect(end?.silenceDuration).toBeGreaterThanOrEqual(500);
    // The utterance: 200 ms pre-roll + 800 ms speech + the silence that ended it.
    const utterance = end?.frames[0];
    expect(utterance?.sampleRate).toBe(RATE);
    expect(utterance?.samplesPerChannel).toBe((RATE * (200 + 800 + 500)) / 1000);
    const results = events.filter((e) => e.type === VADEventType.INFERENCE_DONE);
    expect(results.filter((e) => e.probability === 1)).toHaveLength(40);
    expect(Math.max(...results.map((e) => e.rawAccumulatedSpeech))).toBe(800);
  });

  it("vad - a blip shorter than minSpeechMs starts nothing", async () => {
    const events = await run([...frames(200, 0), ...frames(100, 8000), ...frames(800, 0)], {
      minSpeechMs: 200,
    });
    expect(events.every((e) => e.type === VADEventType.INFERENCE_DONE)).toBe(true);
    expect(events.every((e) => !e.speaking)).toBe(true);
  });

  it("vad - two utterances give two START/END pairs; minSilenceDuration is the silence that ends one", async () => {
    const vad = new EnergyVadPlugin({ silenceMs: 400 });
    expect(vad.minSilenceDuration).toBe(400);
    const events = await run(
      [...frames(600, 8000), ...frames(600, 0), ...frames(600, 8000), ...frames(600, 0)],
      { silenceMs: 400 },
    );
    const kinds = events.map((e) => e.type).filter((t) => t !== VADEventType.INFERENCE_DONE);
    expect(kinds).toEqual([
      VADEventType.START_OF_SPEECH,
      VADEventType.END_OF_SPEECH,
      VADEventType.START_OF_SPEECH,
      VADEventType.END_OF_SPEECH,
    ]);
  });
});
