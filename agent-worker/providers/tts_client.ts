/**
 * Text to speech over the providers' REST APIs, returning mono s16le PCM (16 kHz, or 24 kHz for
 * OpenAI, whose `pcm` has that fixed rate: each client says its `sampleRate`).
 * - ElevenLabs: `POST {base}/text-to-speech/{voice_id}?output_format=pcm_16000` with
 *   `xi-api-key`, body `{ text, model_id }`; the answer is raw PCM.
 * - Cartesia: `POST {base}/tts/bytes` with `X-API-Key` and `Cartesia-Version`, body
 *   `{ model_id, transcript, voice: { mode: "id", id }, output_format: { container: "raw",
 *   encoding: "pcm_s16le", sample_rate: 16000 }, language }`; the answer is raw PCM.
 * - OpenAI: `POST {base}/audio/speech` with `Authorization: Bearer`, body `{ model, input, voice,
 *   response_format: "pcm" }`; the answer is raw 24 kHz PCM (the language follows the text).
 */
import type { PcmAudio } from "./audio.ts";
import { badResponse, callProvider, joinUrl } from "./http.ts";
import type { ProviderTarget } from "./http.ts";
import { CARTESIA_VERSION } from "./registry.ts";

/** The rate we ask ElevenLabs and Cartesia for. */
export const TTS_SAMPLE_RATE = 16_000;
/** OpenAI's `pcm` speech format: s16le, 24 kHz, mono. */
export const OPENAI_SPEECH_SAMPLE_RATE = 24_000;

export interface SynthesizeOptions {
  /** ISO-639-1; default `en`. */
  language?: string;
  signal?: AbortSignal;
}

export interface TtsClient {
  readonly kind: "tts";
  readonly provider: string;
  readonly model: string;
  readonly voiceId: string;
  /** The sample rate of the PCM `synthesize` returns. */
  readonly sampleRate: number;
  synthesize(text: string, options?: SynthesizeOptions): Promise<PcmAudio>;
}

export interface TtsClientOptions {
  target: ProviderTarget;
  baseUrl: string;
  model: string;
  voiceId: string;
  requestTimeoutMs: number;
}

async function readPcm(target: ProviderTarget, response: Response, sampleRate: number): Promise<PcmAudio> {
  const contentType = response.headers.get("content-type") ?? "";
  const bytes = new Uint8Array(await response.arrayBuffer());
  if (contentType.includes("json")) throw badResponse(target, "expected audio, got JSON");
  if (bytes.byteLength === 0) throw badResponse(target, "empty audio");
  if (bytes.byteLength % 2 !== 0) throw badResponse(target, "odd number of bytes for 16-bit PCM");
  return { pcm: bytes, sampleRate, channels: 1 };
}

/**
 * What every REST TTS client shares: its identity, and one JSON POST whose answer is raw PCM at
 * the client's `sampleRate`. Subclasses supply the provider's path, headers and body.
 */
abstract class JsonPcmTtsClient implements TtsClient {
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

  abstract synthesize(text: string, options?: SynthesizeOptions): Promise<PcmAudio>;

  protected postForPcm(
    path: string,
    headers: Record<string, string>,
    body: unknown,
    signal: AbortSignal | undefined,
  ): Promise<PcmAudio> {
    const target = this.options.target;
    return callProvider(
      target,
      joinUrl(this.options.baseUrl, path),
      {
        method: "POST",
        headers: { ...headers, "content-type": "application/json" },
        body: JSON.stringify(body),
      },
      signal === undefined
        ? { timeoutMs: this.options.requestTimeoutMs }
        : { timeoutMs: this.options.requestTimeoutMs, signal },
      (response) => readPcm(target, response, this.sampleRate),
    );
  }
}

export class ElevenLabsTtsClient extends JsonPcmTtsClient {
  readonly sampleRate = TTS_SAMPLE_RATE;

  synthesize(text: string, options: SynthesizeOptions = {}): Promise<PcmAudio> {
    const path = `text-to-speech/${encodeURIComponent(this.voiceId)}?output_format=pcm_${TTS_SAMPLE_RATE}`;
    const body: Record<string, unknown> = { text, model_id: this.model };
    if (options.language !== undefined) body["language_code"] = options.language;
    return this.postForPcm(path, { "xi-api-key": this.options.target.apiKey }, body, options.signal);
  }
}

export class CartesiaTtsClient extends JsonPcmTtsClient {
  readonly sampleRate = TTS_SAMPLE_RATE;

  synthesize(text: string, options: SynthesizeOptions = {}): Promise<PcmAudio> {
    const body = {
      model_id: this.model,
      transcript: text,
      voice: { mode: "id", id: this.voiceId },
      output_format: { container: "raw", encoding: "pcm_s16le", sample_rate: TTS_SAMPLE_RATE },
      language: options.language ?? "en",
    };
    const headers = { "x-api-key": this.options.target.apiKey, "cartesia-version": CARTESIA_VERSION };
    return this.postForPcm("tts/bytes", headers, body, options.signal);
  }
}

export class OpenAiSpeechTtsClient extends JsonPcmTtsClient {
  readonly sampleRate = OPENAI_SPEECH_SAMPLE_RATE;

  synthesize(text: string, options: SynthesizeOptions = {}): Promise<PcmAudio> {
    const body = { model: this.model, input: text, voice: this.voiceId, response_format: "pcm" };
    const headers = { authorization: `Bearer ${this.options.target.apiKey}` };
    return this.postForPcm("audio/speech", headers, body, options.signal);
  }
}
