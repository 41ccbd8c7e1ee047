// Our TTS behind @livekit/agents' `tts.TTS`, against the provider fixture over real HTTP: each
// 20 ms frame reaches the library while the provider is still sending the sentence, the frames
// add up to exactly the audio sent, closing the synthesis closes the provider's stream, and a
// stream cut mid-sentence ends the sentence with the provider's coded error.
import { initializeLogger } from "@livekit/agents";
import type { tts } from "@livekit/agents";
import { beforeAll, describe, expect, it } from "vitest";
import type { SfError } from "../../bus/index.ts";
import { AgentWorkerErrorCodes, loadVoiceRuntime, resolveProviders } from "../../agent-worker/index.ts";
import type { ProviderReports, TtsClient } from "../../agent-worker/index.ts";
import { sineTonePcm, speechDurationMs } from "../fixtures/providers/audio.ts";
import type { ProviderFixture } from "../fixtures/providers/provider_fixture.ts";
import { useProviderFixture } from "../helpers/provider_fixture_hooks.ts";

const { ProviderTts } = await loadVoiceRuntime();
const VOICE = "694f9389-aac1-45b6-b726-9d9369183238";
const TEXT = "Your parcel left the warehouse this morning and should arrive tomorrow.";

let fixture: ProviderFixture;

beforeAll(() => {
  initializeLogger({ pretty: false, level: "warn" });
});
useProviderFixture((f) => (fixture = f));

function client(provider: "elevenlabs" | "cartesia" | "openai"): TtsClient {
  return resolveProviders(
    {
      kinds: ["tts"],
      voiceSettings: { tts_provider: provider, voice_id: provider === "openai" ? "alloy" : VOICE },
    },
    { [provider]: fixture.keys[provider] },
    fixture.endpoints(),
  ).tts;
}

interface Reported {
  reports: ProviderReports;
  refused: SfError[];
  transient: SfError[];
}

function reported(): Reported {
  const refused: SfError[] = [];
  const transient: SfError[] = [];
  return {
    reports: { refused: (e) => refused.push(e), transient: (e) => transient.push(e) },
    refused,
    transient,
  };
}

function samplesOf(events: tts.SynthesizedAudio[]): Int16Array {
  const total = events.reduce((n, e) => n + e.frame.samplesPerChannel, 0);
  const out = new Int16Array(total);
  let at = 0;
  for (const e of events) {
    out.set(e.frame.data, at);
    at += e.frame.samplesPerChannel;
  }
  return out;
}

describe("ProviderTts streaming", () => {
  it.each([
    ["cartesia", 16_000],
    ["openai", 24_000],
  ] as const)(
    "tts plugin - %s: the first 20 ms frame reaches the library while the provider holds the rest",
    async (provider, rate) => {
      fixture.setLatency({ audioChunkBytes: 4_001 });
      const release = fixture.holdAudio(1);
      const ended = fixture.nextAudioEnd();
      const { reports, refused, transient } = reported();
      const plugin = new ProviderTts(client(provider), reports, rate);
      const stream = plugin.synthesize(TEXT);
      const first = await stream.next();
      expect(first.done).toBe(false);
      // The provider sent one chunk and waits: the frame was handed over before its last byte.
      expect(fixture.audioStreams).toEqual([]);
      const events = [first.value as tts.SynthesizedAudio];
      release();
      for await (const ev of stream) events.push(ev);
      const step = (rate * 20) / 1000;
      for (const ev of events.slice(0, -1)) {
        expect(ev.frame.samplesPerChannel).toBe(step);
        expect(ev.frame.sampleRate).toBe(rate);
        expect(ev.final).toBe(false);
      }
      expect(events.at(-1)?.final).toBe(true);
      expect(events.at(-1)?.frame.samplesPerChannel).toBeLessThanOrEqual(step);
      expect(new Set(events.map((e) => e.requestId)).size).toBe(1);
      // Exactly the audio the provider sent, in order.
      const sent = sineTonePcm(speechDurationMs(TEXT), rate);
      const expected = new Int16Array(sent.buffer, sent.byteOffset, sent.byteLength / 2);
      expect(
        Buffer.from(samplesOf(events).buffer).equals(
          Buffer.from(expected.buffer, expected.byteOffset, expected.byteLength),
        ),
      ).toBe(true);
      expect(await ended).toMatchObject({ provider, outcome: "complete" });
      expect(refused).toEqual([]);
      expect(transient).toEqual([]);
    },
  );

  it("tts plugin - closing the synthesis mid-sentence closes the provider's HTTP stream", async () => {
    const release = fixture.holdAudio(1);
    const ended = fixture.nextAudioEnd();
    const { reports, refused, transient } = reported();
    const stream = new ProviderTts(client("elevenlabs"), reports, 16_000).synthesize(TEXT);
    expect((await stream.next()).done).toBe(false);
    stream.close();
    const end = await ended;
    expect(end).toMatchObject({ provider: "elevenlabs", outcome: "client_closed", chunks: 1 });
    expect(end.sentBytes).toBeLessThan(end.totalBytes);
    // An abort the library asked for is no provider failure.
    expect(refused).toEqual([]);
    expect(transient).toEqual([]);
    release();
  });

  it("tts plugin - a library abort signal mid-sentence closes the provider's HTTP stream", async () => {
    const release = fixture.holdAudio(1);
    const ended = fixture.nextAudioEnd();
    const abort = new AbortController();
    const { reports, refused } = reported();
    const stream = new ProviderTts(client("cartesia"), reports, 16_000).synthesize(
      TEXT,
      undefined,
      abort.signal,
    );
    expect((await stream.next()).done).toBe(false);
    abort.abort();
    expect(await ended).toMatchObject({ provider: "cartesia", outcome: "client_closed" });
    const rest: tts.SynthesizedAudio[] = [];
    for await (const ev of stream) rest.push(ev);
    expect(rest.length).toBeLessThan(10);
    expect(refused).toEqual([]);
    release();
  });

  it("tts plugin - a stream cut mid-sentence plays what came and reports the provider's error", async () => {
    fixture.setLatency({ audioChunkBytes: 1_600 });
    fixture.addFault({
      provider: "elevenlabs",
      kind: "tts",
      times: 1,
      fault: { type: "cut_audio", afterBytes: 6_400 },
    });
    const { reports, refused, transient } = reported();
    const events: tts.SynthesizedAudio[] = [];
    for await (const ev of new ProviderTts(client("elevenlabs"), reports, 16_000).synthesize(TEXT))
      events.push(ev);
    // 6 400 bytes = 3 200 samples = 10 frames; the one held back for `final` is never sent.
    expect(events.length).toBe(9);
    expect(events.every((e) => !e.final)).toBe(true);
    expect(refused).toEqual([]);
    expect(transient).toHaveLength(1);
    const err = transient[0];
    expect(err?.code).toBe(AgentWorkerErrorCodes.PROVIDER_STREAM_INTERRUPTED);
    expect(err?.message).toContain("elevenlabs tts");
    expect(err?.details).toMatchObject({ provider: "elevenlabs", kind: "tts" });
  });

  it("tts plugin - a refused key ends the session through `refused`, with no audio", async () => {
    const { reports, refused, transient } = reported();
    const wrong = resolveProviders(
      { kinds: ["tts"], voiceSettings: { tts_provider: "cartesia", voice_id: VOICE } },
      { cartesia: "sk_car_wrong_0123456789" },
      fixture.endpoints(),
    ).tts;
    const events: tts.SynthesizedAudio[] = [];
    for await (const ev of new ProviderTts(wrong, reports, 16_000).synthesize(TEXT)) events.push(ev);
    expect(events).toEqual([]);
    expect(transient).toEqual([]);
    expect(refused.map((e) => e.code)).toEqual([AgentWorkerErrorCodes.PROVIDER_AUTH]);
  });
});
