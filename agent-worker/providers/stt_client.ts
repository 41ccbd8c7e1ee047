/**
 * Speech to text over the providers' REST APIs, for whole utterances.
 * - Deepgram: `POST {base}/listen?model=nova-3&smart_format=true` with the audio as the body
 *   (`Content-Type: audio/wav`) and `Authorization: Token <key>`; the transcript is at
 *   `results.channels[0].alternatives[0].transcript`.
 * - Cartesia: `POST {base}/stt`, multipart `file` + `model=ink-whisper` + `language`, with
 *   `X-API-Key` and `Cartesia-Version`; answers `{ text, language, duration, words? }`.
 * - OpenAI (and Groq's Whisper, same API): `POST {base}/audio/transcriptions`, multipart `file` +
 *   `model` + `language` + `response_format=json`, `Authorization: Bearer`; answers `{ text }`.
 * Each answer is checked inside `callProvider`, so a malformed one is measured as a failed call.
 */
import { encodeWav, pcmDurationMs } from "./audio.ts";
import type { PcmAudio } from "./audio.ts";
import { badResponse, callProvider, isRecord, joinUrl, readJson } from "./http.ts";
import type { ProviderTarget } from "./http.ts";
import { CARTESIA_VERSION } from "./registry.ts";

export interface Transcript {
  text: string;
  /** 0…1 when the provider reports it. */
  confidence?: number;
  /** Audio duration the provider reports, in ms. */
  durationMs?: number;
}

export interface TranscribeOptions {
  /** ISO-639-1; default `en`. */
  language?: string;
  signal?: AbortSignal;
}

export interface SttClient {
  readonly kind: "stt";
  readonly provider: string;
  readonly model: string;
  transcribe(audio: PcmAudio, options?: TranscribeOptions): Promise<Transcript>;
}

export interface SttClientOptions {
  target: ProviderTarget;
  baseUrl: string;
  model: string;
  requestTimeoutMs: number;
}

function callOptions(
  timeoutMs: number,
  signal: AbortSignal | undefined,
): { timeoutMs: number; signal?: AbortSignal } {
  return signal === undefined ? { timeoutMs } : { timeoutMs, signal };
}

/** What every STT client shares: its identity, taken from the options it is built with. */
export abstract class SpeechToTextClient<O extends { target: ProviderTarget; model: string }> {
  readonly kind = "stt" as const;
  readonly provider: string;
  readonly model: string;

  constructor(protected readonly options: O) {
    this.provider = options.target.provider;
    this.model = options.model;
  }
}

export class DeepgramSttClient extends SpeechToTextClient<SttClientOptions> implements SttClient {
  async transcribe(audio: PcmAudio, options: TranscribeOptions = {}): Promise<Transcript> {
    const target = this.options.target;
    const query = new URLSearchParams({
      model: this.model,
      smart_format: "true",
      language: options.language ?? "en",
    });
    const url = `${joinUrl(this.options.baseUrl, "listen")}?${query.toString()}`;
    return await callProvider(
      target,
      url,
      {
        method: "POST",
        headers: { authorization: `Token ${target.apiKey}`, "content-type": "audio/wav" },
        body: encodeWav(audio),
      },
      callOptions(this.options.requestTimeoutMs, options.signal),
      async (response) => deepgramTranscript(target, await readJson(target, response)),
    );
  }
}

function deepgramTranscript(target: ProviderTarget, json: unknown): Transcript {
  if (!isRecord(json) || !isRecord(json["results"])) throw badResponse(target, "no `results` object");
  const channels = json["results"]["channels"];
  const channel: unknown = Array.isArray(channels) ? channels[0] : undefined;
  const best = deepgramBestAlternative(
    target,
    channel,
    "no `results.channels[0].alternatives[0].transcript`",
  );
  const transcript: Transcript = { text: best["transcript"] };
  if (typeof best["confidence"] === "number") transcript.confidence = best["confidence"];
  const metadata = json["metadata"];
  if (isRecord(metadata) && typeof metadata["duration"] === "number") {
    transcript.durationMs = Math.round(metadata["duration"] * 1000);
  }
  return transcript;
}

/**
 * A Deepgram channel's first (best) alternative, batch or live; without a transcript string it is
 * `PROVIDER_BAD_RESPONSE` with `problem`.
 */
export function deepgramBestAlternative(
  target: ProviderTarget,
  channel: unknown,
  problem: string,
): Record<string, unknown> & { transcript: string } {
  const alternatives = isRecord(channel) ? channel["alternatives"] : undefined;
  const best: unknown = Array.isArray(alternatives) ? alternatives[0] : undefined;
  if (!isRecord(best) || typeof best["transcript"] !== "string") {
    throw badResponse(target, problem);
  }
  return best as Record<string, unknown> & { transcript: string };
}

/** The multipart body both Cartesia's and OpenAI's transcription APIs take: a WAV file, model, language. */
function wavForm(audio: PcmAudio, model: string, language: string): FormData {
  const form = new FormData();
  form.append("file", new Blob([encodeWav(audio)], { type: "audio/wav" }), "audio.wav");
  form.append("model", model);
  form.append("language", language);
  return form;
}

/** The `text` of a `{ text, … }` transcription answer. */
function textOf(target: ProviderTarget, json: unknown): string {
  if (!isRecord(json) || typeof json["text"] !== "string") throw badResponse(target, "no `text` string");
  return json["text"];
}

export class CartesiaSttClient extends SpeechToTextClient<SttClientOptions> implements SttClient {
  async transcribe(audio: PcmAudio, options: TranscribeOptions = {}): Promise<Transcript> {
    const target = this.options.target;
    const form = wavForm(audio, this.model, options.language ?? "en");
    return await callProvider(
      target,
      joinUrl(this.options.baseUrl, "stt"),
      {
        method: "POST",
        headers: { "x-api-key": target.apiKey, "cartesia-version": CARTESIA_VERSION },
        body: form,
      },
      callOptions(this.options.requestTimeoutMs, options.signal),
      async (response) => {
        const json = await readJson(target, response);
        const text = textOf(target, json);
        const transcript: Transcript = { text };
        const duration = isRecord(json) ? json["duration"] : undefined;
        if (typeof duration === "number") transcript.durationMs = Math.round(duration * 1000);
        return transcript;
      },
    );
  }
}

export class OpenAiTranscriptionSttClient extends SpeechToTextClient<SttClientOptions> implements SttClient {
  async transcribe(audio: PcmAudio, options: TranscribeOptions = {}): Promise<Transcript> {
    const target = this.options.target;
    const form = wavForm(audio, this.model, options.language ?? "en");
    form.append("response_format", "json");
    return await callProvider(
      target,
      joinUrl(this.options.baseUrl, "audio/transcriptions"),
      { method: "POST", headers: { authorization: `Bearer ${target.apiKey}` }, body: form },
      callOptions(this.options.requestTimeoutMs, options.signal),
      async (response): Promise<Transcript> => {
        const json = await readJson(target, response);
        const text = textOf(target, json);
        return { text, durationMs: Math.round(pcmDurationMs(audio)) };
      },
    );
  }
}
