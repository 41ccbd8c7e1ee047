/**
 * Text to speech over the providers' streaming HTTP APIs, as mono s16le PCM (16 kHz, or 24 kHz for
 * OpenAI, whose `pcm` has that fixed rate: each client says its `sampleRate`). Each answer is a
 * chunked body sent as the audio is made; `stream` yields it as it arrives.
 * - ElevenLabs: `POST {base}/text-to-speech/{voice_id}/stream?output_format=pcm_16000` with
 *   `xi-api-key`, body `{ text, model_id, language_code? }`; the body is raw PCM.
 * - Cartesia: `POST {base}/tts/bytes` with `X-API-Key` and `Cartesia-Version`, body
 *   `{ model_id, transcript, voice: { mode: "id", id }, output_format: { container: "raw",
 *   encoding: "pcm_s16le", sample_rate: 16000 }, language }`; the body is raw PCM, streamed.
 * - OpenAI: `POST {base}/audio/speech` with `Authorization: Bearer`, body `{ model, input, voice,
 *   response_format: "pcm" }`; the body is raw 24 kHz PCM, streamed with chunked transfer encoding
 *   (the language follows the text).
 *
 * A body may split a sample between two network chunks: `stream` holds the odd byte back, so each
 * chunk it yields is whole samples. A body that breaks off is `PROVIDER_STREAM_INTERRUPTED`, one
 * that ends on half a sample or with no audio `PROVIDER_BAD_RESPONSE`, each naming the provider.
 */
import type { PcmAudio } from "./audio.ts";
import { CallControl, badResponse, httpStatusError, joinUrl, streamCall } from "./http.ts";
import type { ProviderTarget, StreamingCall } from "./http.ts";
import { CARTESIA_VERSION } from "./registry.ts";

/** The rate we ask ElevenLabs and Cartesia for. */
export const TTS_SAMPLE_RATE = 16_000;
/** OpenAI's `pcm` speech format: s16le, 24 kHz, mono. */
export const OPENAI_SPEECH_SAMPLE_RATE = 24_000;

export interface SynthesizeOptions {
  /** ISO-639-1; default `en`. */
  language?: string;
  /** Aborting it closes the HTTP stream; the call then fails with `PROVIDER_ABORTED`. */
  signal?: AbortSignal;
}

export interface TtsClient {
  readonly kind: "tts";
  readonly provider: string;
  readonly model: string;
  readonly voiceId: string;
  /** The sample rate of the PCM `stream` and `synthesize` return. */
  readonly sampleRate: number;
  /**
   * The audio as it arrives: mono s16le PCM at `sampleRate`, each chunk a whole number of samples
   * (never empty). Stopping the iteration early closes the HTTP stream.
   */
  stream(text: string, options?: SynthesizeOptions): AsyncGenerator<Uint8Array, void, undefined>;
  /** The whole audio (the same streamed call, collected). */
  synthesize(text: string, options?: SynthesizeOptions): Promise<PcmAudio>;
}

export interface TtsClientOptions {
  target: ProviderTarget;
  baseUrl: string;
  model: string;
  voiceId: string;
  /** Bounds the whole call, from the request to the last byte of audio. */
  requestTimeoutMs: number;
}

/** One provider request: where, with which headers, and the JSON body. */
interface SpeechRequest {
  path: string;
  headers: Record<string, string>;
  body: unknown;
}

/**
 * What every TTS client shares: its identity, and one JSON POST whose streamed answer is raw PCM
 * at the client's `sampleRate`. Subclasses supply the provider's path, headers and body.
 */
abstract class StreamingPcmTtsClient implements TtsClient {
  readonly kind = "tts" as const;
  readonly provider: string;
  readonly model: string;
  readonly voiceId: string;
  abstract readonly sampleRate: number;

  constructor(protected readonly options: TtsClientOptions) {
    this.provider = options.target.provider;
    this.model = options.model;
    this.voiceId = options.voiceId;
  }

  protected abstract request(text: string, options: SynthesizeOptions): SpeechRequest;

  async *stream(text: string, options: SynthesizeOptions = {}): AsyncGenerator<Uint8Array, void, undefined> {
    const request = this.request(text, options);
    const control = new CallControl(this.options.target, options.signal);
    control.arm("overall", this.options.requestTimeoutMs);
    yield* streamCall(this.options.target, control, (call) => this.audio(request, call));
  }

  /** The call itself: the request, then the PCM in whole samples as it arrives. */
  private async *audio(
    request: SpeechRequest,
    call: StreamingCall,
  ): AsyncGenerator<Uint8Array, void, undefined> {
    const target = this.options.target;
    const { control, meter } = call;
    control.throwIfStopped(call.stage);
    const response = await target.fetch(joinUrl(this.options.baseUrl, request.path), {
      method: "POST",
      headers: { ...request.headers, "content-type": "application/json" },
      body: JSON.stringify(request.body),
      signal: control.signal,
    });
    if (!response.ok) throw await httpStatusError(target, response);
    if ((response.headers.get("content-type") ?? "").includes("json")) {
      throw badResponse(target, "expected audio, got JSON");
    }
    if (response.body === null) throw badResponse(target, "the answer has no body");
    call.stage = "stream";
    const samples = new SampleAligner();
    for await (const bytes of readBody(response.body)) {
      const chunk = samples.push(bytes);
      if (chunk === undefined) continue;
      if (call.delivered === 0) meter.firstToken();
      call.delivered += chunk.byteLength;
      yield chunk;
      control.throwIfStopped(call.stage, call.delivered);
    }
    control.throwIfStopped(call.stage, call.delivered);
    if (samples.pending) throw badResponse(target, "odd number of bytes for 16-bit PCM");
    if (call.delivered === 0) throw badResponse(target, "empty audio");
  }

  async synthesize(text: string, options: SynthesizeOptions = {}): Promise<PcmAudio> {
    const chunks: Uint8Array[] = [];
    for await (const chunk of this.stream(text, options)) chunks.push(chunk);
    return { pcm: Buffer.concat(chunks), sampleRate: this.sampleRate, channels: 1 };
  }
}

/** The body's chunks as they arrive (the reader is released however the iteration ends). */
async function* readBody(body: ReadableStream<Uint8Array>): AsyncGenerator<Uint8Array, void, undefined> {
  const reader = body.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      if (value.byteLength > 0) yield value;
    }
  } finally {
    reader.releaseLock();
  }
}

/**
 * Cuts a byte stream into whole 16-bit samples: a chunk that ends inside a sample keeps its last
 * byte for the next one. Each chunk returned is a fresh copy starting at offset 0, so an
 * `Int16Array` can view it.
 */
class SampleAligner {
  #carry: number | undefined;

  /** Whether a half sample is waiting for its second byte. */
  get pending(): boolean {
    return this.#carry !== undefined;
  }

  /** The whole samples completed by `bytes` (undefined when none). */
  push(bytes: Uint8Array): Uint8Array | undefined {
    const carried = this.#carry === undefined ? 0 : 1;
    const total = carried + bytes.byteLength;
    const whole = total - (total % 2);
    const out = whole === 0 ? undefined : new Uint8Array(whole);
    if (out !== undefined) {
      if (this.#carry !== undefined) out[0] = this.#carry;
      out.set(bytes.subarray(0, whole - carried), carried);
    }
    this.#carry = total % 2 === 1 ? bytes[bytes.byteLength - 1] : undefined;
    return out;
  }
}

export class ElevenLabsTtsClient extends StreamingPcmTtsClient {
  readonly sampleRate = TTS_SAMPLE_RATE;

  protected request(text: string, options: SynthesizeOptions): SpeechRequest {
    const voice = encodeURIComponent(this.voiceId);
    const body: Record<string, unknown> = { text, model_id: this.model };
    if (options.language !== undefined) body["language_code"] = options.language;
    return {
      path: `text-to-speech/${voice}/stream?output_format=pcm_${TTS_SAMPLE_RATE}`,
      headers: { "xi-api-key": this.options.target.apiKey },
      body,
    };
  }
}

export class CartesiaTtsClient extends StreamingPcmTtsClient {
  readonly sampleRate = TTS_SAMPLE_RATE;

  protected request(text: string, options: SynthesizeOptions): SpeechRequest {
    const body = {
      model_id: this.model,
      transcript: text,
      voice: { mode: "id", id: this.voiceId },
      output_format: { container: "raw", encoding: "pcm_s16le", sample_rate: TTS_SAMPLE_RATE },
      language: options.language ?? "en",
    };
    const headers = { "x-api-key": this.options.target.apiKey, "cartesia-version": CARTESIA_VERSION };
    return { path: "tts/bytes", headers, body };
  }
}

export class OpenAiSpeechTtsClient extends StreamingPcmTtsClient {
  readonly sampleRate = OPENAI_SPEECH_SAMPLE_RATE;

  protected request(text: string): SpeechRequest {
    const body = { model: this.model, input: text, voice: this.voiceId, response_format: "pcm" };
    return { path: "audio/speech", headers: { authorization: `Bearer ${this.options.target.apiKey}` }, body };
  }
}
