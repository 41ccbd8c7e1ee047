// Deepgram's live transcription against the provider fixture's WebSocket stand-in: interim
// results while the user still speaks, a `speech_final` result once endpointing hears silence,
// `CloseStream` flushing what is pending, and the coded errors (refused key, a dropped socket,
// the caller's abort), each naming the provider.
import { describe, expect, it } from "vitest";
import { AgentWorkerErrorCodes, DeepgramLiveSttClient } from "../../agent-worker/index.ts";
import type { LiveTranscriptEvent, LiveTranscription } from "../../agent-worker/index.ts";
import { sineTonePcm } from "../fixtures/providers/audio.ts";
import { waitFor } from "../helpers/deadline.ts";
import { startProviderFixture } from "../fixtures/providers/provider_fixture.ts";
import type { ProviderFixture } from "../fixtures/providers/provider_fixture.ts";
import { expectNoSecret, rejection } from "./provider_test_kit.ts";
import { useProviderFixture } from "../helpers/provider_fixture_hooks.ts";

const RATE = 16_000;
let fixture: ProviderFixture;

useProviderFixture((f) => (fixture = f));

function client(key = fixture.keys.deepgram): DeepgramLiveSttClient {
  return new DeepgramLiveSttClient({
    target: { provider: "deepgram", kind: "stt", apiKey: key, fetch },
    baseUrl: fixture.endpoints().deepgram,
    model: "nova-3",
    requestTimeoutMs: 5_000,
  });
}

const speech = (ms: number): Buffer => sineTonePcm(ms, RATE, 220);
const silence = (ms: number): Buffer => Buffer.alloc(Math.round((ms / 1000) * RATE) * 2);

/** Sends `pcm` in 20 ms messages, as a microphone would. */
function sendAudio(live: LiveTranscription, pcm: Buffer): void {
  for (let at = 0; at < pcm.length; at += 640) live.send(pcm.subarray(at, at + 640));
}

async function collect(iterator: AsyncIterator<LiveTranscriptEvent>): Promise<LiveTranscriptEvent[]> {
  const events: LiveTranscriptEvent[] = [];
  for (;;) {
    const next = await iterator.next();
    if (next.done === true) return events;
    events.push(next.value);
  }
}

describe("deepgram live stt", () => {
  it("stt live - interim results arrive while the user speaks; silence brings the speech_final transcript", async () => {
    fixture.queueTranscript("Where is my parcel today", "deepgram");
    const live = await client().listen({ sampleRate: RATE, endpointingMs: 300 });
    const events = live[Symbol.asyncIterator]();
    sendAudio(live, speech(600));
    // Nothing that ends the utterance was sent yet: this result came while the user "speaks".
    const first = await events.next();
    expect(first.value).toMatchObject({ type: "interim", speechFinal: false });
    expect("Where is my parcel today".startsWith((first.value as LiveTranscriptEvent).text)).toBe(true);
    sendAudio(live, silence(400));
    const seen: LiveTranscriptEvent[] = [];
    for (;;) {
      const next = await events.next();
      if (next.done === true) break;
      seen.push(next.value);
      if (next.value.type === "final") break;
    }
    const final = seen.at(-1);
    expect(final).toMatchObject({ type: "final", speechFinal: true, text: "Where is my parcel today" });
    expect(final?.confidence).toBeGreaterThan(0.5);
    expect(final?.durationMs).toBeGreaterThanOrEqual(600);
    const ended = fixture.nextLiveEnd();
    live.close();
    expect(await collect(events)).toEqual([]);
    expect(await ended).toMatchObject({
      outcome: "closed",
      audioBytes: speech(600).length + silence(400).length,
    });
    const [call] = fixture.callsTo("deepgram", "stt");
    expect(call?.path).toBe("/v1/listen");
    expect(call?.query).toMatchObject({
      model: "nova-3",
      encoding: "linear16",
      sample_rate: "16000",
      channels: "1",
      interim_results: "true",
      endpointing: "300",
    });
    expect(fixture.violations).toEqual([]);
  });

  it("stt live - KeepAlives hold a silent stream open past the provider's idle timeout; without them it is closed (NET-0001)", async () => {
    // Deepgram closes a socket that hears nothing for ~10 s; this fixture does it after 600 ms.
    const strict = await startProviderFixture({ liveIdleTimeoutMs: 600 });
    try {
      const listen = (keepAliveMs: number) =>
        new DeepgramLiveSttClient({
          target: { provider: "deepgram", kind: "stt", apiKey: strict.keys.deepgram, fetch },
          baseUrl: strict.endpoints().deepgram,
          model: "nova-3",
          requestTimeoutMs: 5_000,
        }).listen({ sampleRate: RATE, interimResults: false, keepAliveMs });
      const held = await listen(150);
      const events = held[Symbol.asyncIterator]();
      // Six KeepAlives 150 ms apart: the stream stayed silent for longer than the idle timeout.
      await waitFor("six KeepAlives", () => strict.liveKeepAlives >= 6, {
        timeoutMs: 10_000,
        intervalMs: 20,
      });
      sendAudio(held, speech(500));
      held.close();
      const all = await collect(events);
      expect(all).toHaveLength(1);
      expect(all[0]).toMatchObject({ type: "final" });

      const silent = await listen(60_000);
      const err = await rejection(
        silent[Symbol.asyncIterator]().next(),
        AgentWorkerErrorCodes.PROVIDER_STREAM_INTERRUPTED,
      );
      expect(err.details).toMatchObject({ provider: "deepgram", kind: "stt", code: 1011 });
      expect(strict.liveSessions.map((s) => s.outcome)).toEqual(["closed", "idle"]);
    } finally {
      await strict.close();
    }
  });

  it("stt live - CloseStream flushes the utterance still open, then the stream ends cleanly", async () => {
    const live = await client().listen({ sampleRate: RATE, interimResults: false });
    const events = live[Symbol.asyncIterator]();
    sendAudio(live, speech(500));
    live.close();
    const all = await collect(events);
    expect(all).toHaveLength(1);
    expect(all[0]).toMatchObject({ type: "final", speechFinal: false });
    expect(all[0]?.text).toMatch(/^utterance [0-9a-f]{8}$/);
  });

  it("stt live - a refused key is AUTH from the handshake's 401, without the key", async () => {
    const key = "dg-wrong-key-0123456789";
    const err = await rejection(
      client(key).listen({ sampleRate: RATE }),
      AgentWorkerErrorCodes.PROVIDER_AUTH,
    );
    expect(err.details).toMatchObject({ provider: "deepgram", kind: "stt", status: 401 });
    expect(String(err.details?.["excerpt"])).toContain("INVALID_AUTH");
    expectNoSecret(err, key);
  });

  it("stt live - a socket dropped mid-stream fails with STREAM_INTERRUPTED naming deepgram", async () => {
    fixture.addFault({
      provider: "deepgram",
      kind: "stt",
      times: 1,
      fault: { type: "drop_live", afterResults: 1 },
    });
    const live = await client().listen({ sampleRate: RATE });
    const events = live[Symbol.asyncIterator]();
    sendAudio(live, speech(600));
    expect((await events.next()).value).toMatchObject({ type: "interim" });
    const err = await rejection(events.next(), AgentWorkerErrorCodes.PROVIDER_STREAM_INTERRUPTED);
    expect(err.message).toContain("deepgram stt");
    expect(err.details).toMatchObject({ provider: "deepgram", kind: "stt", delivered: 1 });
  });

  it("stt live - the caller's abort closes the socket and fails with ABORTED", async () => {
    const abort = new AbortController();
    const live = await client().listen({ sampleRate: RATE, signal: abort.signal });
    const events = live[Symbol.asyncIterator]();
    sendAudio(live, speech(300));
    expect((await events.next()).value).toMatchObject({ type: "interim" });
    const ended = fixture.nextLiveEnd();
    abort.abort();
    expect(await ended).toMatchObject({ outcome: "client_gone" });
    await rejection(events.next(), AgentWorkerErrorCodes.PROVIDER_ABORTED);
  });
});
