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
 * `npx tsx bench/tts_first_audio.ts [--quick]` writes bench/results/tts-first-audio[.quick].json.
 */
import { mkdir, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { initializeLogger } from "@livekit/agents";
import { loadVoiceRuntime, resolveProviders } from "../agent-worker/index.ts";
import type { ProviderReports, TtsClient } from "../agent-worker/index.ts";
import { startProviderFixture } from "../tests/fixtures/providers/provider_fixture.ts";
import type { ProviderFixture } from "../tests/fixtures/providers/provider_fixture.ts";
import { machine, percentile } from "./harness.ts";

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

function stats(ms: number[]): Record<string, number> {
  const sorted = [...ms].sort((a, b) => a - b);
  const round = (n: number): number => Math.round(n * 10) / 10;
  return {
    p50_ms: round(percentile(sorted, 50)),
    p95_ms: round(percentile(sorted, 95)),
    mean_ms: round(sorted.reduce((a, b) => a + b, 0) / Math.max(1, sorted.length)),
  };
}

async function main(): Promise<void> {
  const quick = process.argv.includes("--quick");
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
  const summary = {
    streamed_first_frame: stats(streamed),
    whole_body_first_frame: stats(wholeBody),
  };
  const result = {
    name: "tts-first-audio",
    quick,
    started_at: new Date().toISOString(),
    machine: machine(),
    setup: {
      provider: "cartesia (fixture, loopback)",
      sentence_chars: TEXT.length,
      audio_ms: Math.round(audioMs),
      chunk_bytes: CHUNK_BYTES,
      chunk_delay_ms: CHUNK_DELAY_MS,
      rounds,
    },
    summary,
  };
  console.table({ streamed: summary.streamed_first_frame, whole_body: summary.whole_body_first_frame });
  const file = join(
    dirname(fileURLToPath(import.meta.url)),
    "results",
    `tts-first-audio${quick ? ".quick" : ""}.json`,
  );
  await mkdir(dirname(file), { recursive: true });
  await writeFile(file, `${JSON.stringify(result, null, 2)}\n`);
  console.log(`wrote ${file}`);
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
