// The streaming STT behind @livekit/agents' `stt.STT`, against the fixture's Deepgram live API:
// interim transcripts while the user still speaks, the final one (naming the speaker) once the
// provider hears silence, and a dropped socket handed to the library as a retryable error.
import { initializeLogger, stt } from "@livekit/agents";
import { AudioFrame } from "@livekit/rtc-node";
import { beforeAll, describe, expect, it } from "vitest";
import type { SfError } from "../../bus/index.ts";
import {
  AgentWorkerErrorCodes,
  DeepgramLiveSttClient,
  loadVoiceRuntime,
  resolveProviders,
} from "../../agent-worker/index.ts";
import type { ProviderReports } from "../../agent-worker/index.ts";
import { sineTonePcm } from "../fixtures/providers/audio.ts";
import type { ProviderFixture } from "../fixtures/providers/provider_fixture.ts";
import { useProviderFixture } from "../helpers/provider_fixture_hooks.ts";

const { ProviderLiveStt, ProviderCallError, SPEAKER_USERDATA_KEY } = await loadVoiceRuntime();
const RATE = 16_000;
let fixture: ProviderFixture;

beforeAll(() => {
  initializeLogger({ pretty: false, level: "warn" });
});
useProviderFixture((f) => (fixture = f));

/** The stream's next events, through END_OF_SPEECH (or until the stream ends). */
async function eventsUntilEndOfSpeech(stream: AsyncIterator<stt.SpeechEvent>): Promise<stt.SpeechEvent[]> {
  const events: stt.SpeechEvent[] = [];
  for (;;) {
    const next = await stream.next();
    if (next.done === true) break;
    events.push(next.value);
    if (next.value.type === stt.SpeechEventType.END_OF_SPEECH) break;
  }
  return events;
}

function plugin(reports: ProviderReports): InstanceType<typeof ProviderLiveStt> {
  const rest = resolveProviders(
    { kinds: ["stt"], voiceSettings: { stt_provider: "deepgram" } },
    { deepgram: fixture.keys.deepgram },
    fixture.endpoints(),
  ).stt;
  const live = new DeepgramLiveSttClient({
    target: { provider: "deepgram", kind: "stt", apiKey: fixture.keys.deepgram, fetch },
    baseUrl: fixture.endpoints().deepgram,
    model: "nova-3",
    requestTimeoutMs: 5_000,
  });
  return new ProviderLiveStt(rest, live, reports, { sampleRate: RATE, endpointingMs: 300 });
}

/** 20 ms frames of `pcm`, each naming `speaker` the way our audio input does. */
function frames(pcm: Buffer, speaker: string): AudioFrame[] {
  const out: AudioFrame[] = [];
  for (let at = 0; at < pcm.length; at += 640) {
    const bytes = Uint8Array.prototype.slice.call(pcm.subarray(at, at + 640));
    const frame = new AudioFrame(new Int16Array(bytes.buffer), RATE, 1, bytes.byteLength / 2);
    frame.userdata[SPEAKER_USERDATA_KEY] = speaker;
    out.push(frame);
  }
  return out;
}

function reported(): { reports: ProviderReports; refused: SfError[] } {
  const refused: SfError[] = [];
  return { reports: { refused: (e) => refused.push(e), transient: () => undefined }, refused };
}

describe("ProviderLiveStt", () => {
  it("live stt plugin - interim transcripts while the user speaks, the final one naming the speaker", async () => {
    fixture.queueTranscript("Where is my parcel today", "deepgram");
    const { reports, refused } = reported();
    const stream = plugin(reports).stream();
    const speech = sineTonePcm(610, RATE, 220);
    for (const frame of frames(speech, "user_alice")) stream.pushFrame(frame);
    // Only speech was pushed so far: these events came before the user stopped.
    const first = await stream.next();
    expect(first.value).toMatchObject({ type: stt.SpeechEventType.START_OF_SPEECH });
    const interim = await stream.next();
    expect(interim.value).toMatchObject({ type: stt.SpeechEventType.INTERIM_TRANSCRIPT });
    for (const frame of frames(Buffer.alloc(400 * 32), "user_alice")) stream.pushFrame(frame);
    const events = await eventsUntilEndOfSpeech(stream);
    const final = events.find((e) => e.type === stt.SpeechEventType.FINAL_TRANSCRIPT);
    expect(final?.alternatives?.[0]).toMatchObject({
      text: "Where is my parcel today",
      speakerId: "user_alice",
      language: "en",
    });
    expect(events.at(-1)?.type).toBe(stt.SpeechEventType.END_OF_SPEECH);
    const ended = fixture.nextLiveEnd();
    stream.endInput();
    const end = await ended;
    expect(end).toMatchObject({ outcome: "closed" });
    // Every byte pushed reached the provider, in messages of 60 ms (1,920 bytes) or more, not one
    // per 20 ms frame; only the last, sent when the input ended, may be shorter.
    expect(end.audioBytes).toBe(speech.length + 400 * 32);
    const messages = end.audioMessageBytes;
    expect(messages.length).toBeGreaterThan(1);
    expect(messages.slice(0, -1).every((bytes) => bytes >= 1920 && bytes <= 250 * 32)).toBe(true);
    expect(refused).toEqual([]);
    expect(fixture.violations).toEqual([]);
  });

  it("live stt plugin - a final transcript that arrives once another user holds the floor names the user who said it", async () => {
    fixture.queueTranscript("Alice said this", "deepgram");
    const { reports, refused } = reported();
    const stream = plugin(reports).stream();
    // Alice speaks; then Bob's (silent) frames are the ones heard while the provider's endpointing
    // waits, so the final result comes after the last frame named Bob.
    for (const frame of frames(sineTonePcm(600, RATE, 220), "user_alice")) stream.pushFrame(frame);
    for (const frame of frames(Buffer.alloc(400 * 32), "user_bob")) stream.pushFrame(frame);
    const events = await eventsUntilEndOfSpeech(stream);
    const final = events.find((e) => e.type === stt.SpeechEventType.FINAL_TRANSCRIPT);
    expect(final?.alternatives?.[0]).toMatchObject({ text: "Alice said this", speakerId: "user_alice" });
    for (const interim of events.filter((e) => e.type === stt.SpeechEventType.INTERIM_TRANSCRIPT)) {
      expect(interim.alternatives?.[0]?.speakerId).toBe("user_alice");
    }
    const ended = fixture.nextLiveEnd();
    stream.endInput();
    await ended;
    expect(refused).toEqual([]);
  });

  it("live stt plugin - a socket dropped mid-utterance reaches the library as a retryable error naming deepgram", async () => {
    fixture.addFault({
      provider: "deepgram",
      kind: "stt",
      times: 1,
      fault: { type: "drop_live", afterResults: 1 },
    });
    const { reports, refused } = reported();
    const sttPlugin = plugin(reports);
    const errors: Error[] = [];
    sttPlugin.on("error", (ev: { error: Error }) => errors.push(ev.error));
    const stream = sttPlugin.stream({ connOptions: { maxRetry: 0, retryIntervalMs: 0, timeoutMs: 5_000 } });
    for (const frame of frames(sineTonePcm(600, RATE, 220), "user_bob")) stream.pushFrame(frame);
    const seen: stt.SpeechEvent[] = [];
    for await (const ev of stream) seen.push(ev);
    expect(seen.map((e) => e.type)).toEqual([
      stt.SpeechEventType.START_OF_SPEECH,
      stt.SpeechEventType.INTERIM_TRANSCRIPT,
    ]);
    expect(errors).toHaveLength(1);
    const error = errors[0];
    expect(error).toBeInstanceOf(ProviderCallError);
    const coded = (error as InstanceType<typeof ProviderCallError>).providerError;
    expect(coded.code).toBe(AgentWorkerErrorCodes.PROVIDER_STREAM_INTERRUPTED);
    expect(coded.details).toMatchObject({ provider: "deepgram", kind: "stt" });
    expect(refused).toEqual([]);
  });
});
