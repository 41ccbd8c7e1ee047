/**
 * Time from the start of one sentence's synthesis to its first 20 ms frame handed to the voice
 * pipeline, over the provider fixture on loopback with the audio sent in chunks a fixed delay
 * apart (a provider making speech faster than real time).
 *
 * - `streamed`: our `tts.TTS` (`ProviderTts.synthesize`), which queues each frame as its bytes
 *   arrive: the first frame follows the provider's first chunk.
 * - `whole_body`: the same HTTP call read to its end before any frame (`TtsClient.synthesize`),
 *   which is what the TTS did before it streamed: its first frame could follow only the last byte.
 *
 * `npm run bench -- tts [--quick]` writes bench/results/tts[.quick].json.
 */
import { initializeLogger } from "@livekit/agents";
import { loadVoiceRuntime, resolveProviders } from "../agent-worker/index.ts";
import type { ProviderReports, TtsClient } from "../agent-worker/index.ts";
import { startProviderFixture } from "../tests/fixtures/providers/provider_fixture.ts";
import type { ProviderFixture } from "../tests/fixtures/providers/provider_fixture.ts";
import { percentile } from "./harness.ts";
import type { Bench } from "./harness.ts";

const TEXT = "Your parcel left the warehouse this morning and should arrive tomorrow before noon.";
const RATE = 16_000;
/** 100 ms of 16 kHz audio per chunk, one every 25 ms: four times faster than real time. */
const CHUNK_BYTES = 3_200;
const CHUNK_DELAY_MS = 25;

function client(fixture: ProviderFixture): TtsClient {
  return resolveProviders(
    { kinds: ["tts"], voiceSettings: { tts_provider: "cartesia", voice_id: "bench-voice" } },
    { cartesia: fixture.keys.cartesia },
    fixture.endpoints(),
  ).tts;
}

interface Stats {
  p50_ms: number;
  p95_ms: number;
  mean_ms: number;
}

function stats(ms: number[]): Stats {
  const sorted = [...ms].sort((a, b) => a - b);
  const round = (n: number): number => Math.round(n * 10) / 10;
  return {
    p50_ms: round(percentile(sorted, 50)),
    p95_ms: round(percentile(sorted, 95)),
    mean_ms: round(sorted.reduce((a, b) => a + b, 0) / Math.max(1, sorted.length)),
  };
}

export const run: Bench = async ({ quick = false }) => {
  const rounds = quick ? 3 : 20;
  initializeLogger({ pretty: false, level: "warn" });
  const { ProviderTts } = await loadVoiceRuntime();
  await using fixture = await startProviderFixture({
    audioChunkBytes: CHUNK_BYTES,
    audioChunkDelayMs: CHUNK_DELAY_MS,
  });
  const failures: string[] = [];
  const reports: ProviderReports = {
    refused: (err) => failures.push(err.code),
    transient: (err) => failures.push(err.code),
  };
  const tts = client(fixture);
  const streamed: number[] = [];
  const wholeBody: number[] = [];
  let audioMs = 0;
  for (let i = 0; i < rounds; i += 1) {
    const t0 = performance.now();
    const stream = new ProviderTts(tts, reports, RATE).synthesize(TEXT);
    const first = await stream.next();
    if (first.done === true) throw new Error(`no audio (${failures.join(", ")})`);
    streamed.push(performance.now() - t0);
    let samples = first.value.frame.samplesPerChannel;
    for await (const ev of stream) samples += ev.frame.samplesPerChannel;
    audioMs = (samples / RATE) * 1000;

    const t1 = performance.now();
    await tts.synthesize(TEXT);
    wholeBody.push(performance.now() - t1);
  }
  if (failures.length > 0) throw new Error(`provider calls failed: ${failures.join(", ")}`);
  const first = { streamed: stats(streamed), whole_body: stats(wholeBody) };
  return {
    table: Object.entries(first).map(([path, s]) => ({ path, ...s })),
    summary: {
      streamed_first_frame_p50_ms: first.streamed.p50_ms,
      streamed_first_frame_p95_ms: first.streamed.p95_ms,
      streamed_first_frame_mean_ms: first.streamed.mean_ms,
      whole_body_first_frame_p50_ms: first.whole_body.p50_ms,
      whole_body_first_frame_p95_ms: first.whole_body.p95_ms,
      whole_body_first_frame_mean_ms: first.whole_body.mean_ms,
    },
    details: {
      setup: {
        provider: "cartesia (fixture, loopback)",
        sentence_chars: TEXT.length,
        audio_ms: Math.round(audioMs),
        chunk_bytes: CHUNK_BYTES,
        chunk_delay_ms: CHUNK_DELAY_MS,
        rounds,
      },
    },
  };
};
