/**
 * Live speech to text over Deepgram's streaming API: `GET wss://api.deepgram.com/v1/listen` with
 * `Authorization: Token <key>` and the audio described in the query (`encoding=linear16`,
 * `sample_rate`, `channels=1`, `model`, `language`, `interim_results`, `endpointing`,
 * `smart_format`). Audio goes up as binary messages; Deepgram answers with JSON messages, of
 * which `Results` carry the transcript at `channel.alternatives[0].transcript`, with `is_final`
 * (this stretch of audio will not change) and `speech_final` (endpointing saw the speaker stop).
 * `{"type":"Finalize"}` flushes what is pending; `{"type":"CloseStream"}` flushes, sends a
 * `Metadata` summary and closes the socket normally.
 *
 * A refused handshake is the same coded error as a refused HTTP call (`httpStatusError`); a
 * socket that closes before `CloseStream` was answered is `PROVIDER_STREAM_INTERRUPTED`; the
 * caller's abort is `PROVIDER_ABORTED`. Every error names the provider, never the key.
 */
import WebSocket from "ws";
import type { RawData } from "ws";
import type { SfError } from "../../bus/index.ts";
import { ProviderStreamInterruptedError } from "../errors.ts";
import { CallControl, CallMeter, excerptOf, httpStatusError, isRecord, joinUrl, parseJson } from "./http.ts";
import type { ProviderTarget } from "./http.ts";
import { SpeechToTextClient, deepgramBestAlternative } from "./stt_client.ts";

export interface LiveTranscriptEvent {
  /** `interim`: may still change; `final`: this stretch of audio is settled (`is_final`). */
  type: "interim" | "final";
  text: string;
  confidence: number;
  /** Where the stretch starts in the stream's audio, and how long it is (ms). */
  startMs: number;
  durationMs: number;
  /** Deepgram's `speech_final`: endpointing found the end of the utterance. */
  speechFinal: boolean;
}

export interface LiveTranscriptionOptions {
  /** Of the s16le mono PCM that will be sent. */
  sampleRate: number;
  /** ISO-639-1; default `en`. */
  language?: string;
  /** Default true. */
  interimResults?: boolean;
  /** Silence (ms) that ends an utterance; default 300. */
  endpointingMs?: number;
  /** A KeepAlive goes out after this long without audio; default 4000 (Deepgram waits ~10 s). */
  keepAliveMs?: number;
  signal?: AbortSignal;
}

/** One live transcription: send audio, read results; `close` ends it after the last result. */
export interface LiveTranscription extends AsyncIterable<LiveTranscriptEvent> {
  /** s16le mono PCM at the stream's sample rate. */
  send(pcm: Uint8Array): void;
  /** Asks for the results of all audio sent so far (`Finalize`). */
  finalize(): void;
  /** `CloseStream`: the results still due arrive, then the iteration ends. */
  close(): void;
}

export interface LiveSttClient {
  readonly kind: "stt";
  readonly provider: string;
  readonly model: string;
  /** Resolves once the provider accepted the stream. */
  listen(options: LiveTranscriptionOptions): Promise<LiveTranscription>;
}

export interface LiveSttClientOptions {
  target: ProviderTarget;
  /** The provider's HTTP base (`https://api.deepgram.com/v1`); the socket uses its ws(s) form. */
  baseUrl: string;
  model: string;
  /** Bounds the handshake. */
  requestTimeoutMs: number;
}

const ERROR_BODY_LIMIT_BYTES = 4096;

export class DeepgramLiveSttClient extends SpeechToTextClient<LiveSttClientOptions> implements LiveSttClient {
  async listen(options: LiveTranscriptionOptions): Promise<LiveTranscription> {
    const target = this.options.target;
    const query = new URLSearchParams({
      model: this.model,
      language: options.language ?? "en",
      encoding: "linear16",
      sample_rate: String(options.sampleRate),
      channels: "1",
      interim_results: String(options.interimResults ?? true),
      endpointing: String(options.endpointingMs ?? 300),
      smart_format: "true",
    });
    const url = `${joinUrl(this.options.baseUrl, "listen").replace(/^http/, "ws")}?${query.toString()}`;
    const control = new CallControl(target, options.signal);
    const meter = new CallMeter(target);
    control.arm("request", this.options.requestTimeoutMs);
    const socket = new WebSocket(url, { headers: { authorization: `Token ${target.apiKey}` } });
    const stopSocket = (): void => socket.terminate();
    control.signal.addEventListener("abort", stopSocket, { once: true });
    try {
      await new Promise<void>((resolve, reject) => {
        socket.once("open", () => resolve());
        socket.once("unexpected-response", (_req, res) => {
          const chunks: Buffer[] = [];
          let size = 0;
          res.on("data", (chunk: Buffer) => {
            if (size < ERROR_BODY_LIMIT_BYTES) chunks.push(chunk);
            size += chunk.length;
          });
          res.on("end", () => {
            const headers = new Headers();
            for (const [name, value] of Object.entries(res.headers)) {
              if (typeof value === "string") headers.set(name, value);
            }
            const response = new Response(Buffer.concat(chunks), { status: res.statusCode ?? 500, headers });
            // The coded error first: ending the socket rejects with a plain "closed" error.
            void httpStatusError(target, response)
              .then(reject, reject)
              .finally(() => socket.terminate());
          });
          res.on("error", reject);
        });
        socket.once("error", reject);
        socket.once("close", () => reject(new Error("closed during the handshake")));
      });
    } catch (err) {
      control.signal.removeEventListener("abort", stopSocket);
      const error = control.translate(err, "request");
      control.dispose();
      meter.failed(error);
      meter.end();
      throw error;
    }
    control.disarm("request");
    return new DeepgramLiveTranscription(
      target,
      socket,
      control,
      meter,
      options.keepAliveMs ?? KEEP_ALIVE_MS,
    );
  }
}

/** Silence on the socket after which a KeepAlive goes out (Deepgram's timeout is about 10 s). */
const KEEP_ALIVE_MS = 4000;

/** Results as they come, or the error that ended them. */
class DeepgramLiveTranscription implements LiveTranscription {
  readonly #events: LiveTranscriptEvent[] = [];
  #wake: (() => void) | undefined;
  #error: SfError | undefined;
  #done = false;
  #closing = false;
  #delivered = 0;
  #lastSentAt = performance.now();
  readonly #keepAlive: ReturnType<typeof setInterval>;

  constructor(
    private readonly target: ProviderTarget,
    private readonly socket: WebSocket,
    private readonly control: CallControl,
    private readonly meter: CallMeter,
    keepAliveMs: number,
  ) {
    socket.on("message", (data: RawData, isBinary: boolean) => {
      if (isBinary) return;
      const text = Array.isArray(data)
        ? Buffer.concat(data).toString("utf8")
        : Buffer.from(data as ArrayBuffer).toString("utf8");
      try {
        const event = this.#parse(text);
        if (event !== undefined) {
          if (this.#delivered === 0) meter.firstToken();
          this.#delivered += 1;
          this.#events.push(event);
          this.#notify();
        }
      } catch (err) {
        this.#fail(this.control.translate(err, "stream", this.#delivered));
        socket.terminate();
      }
    });
    // Deepgram closes a live socket that has had no audio for about 10 s (NET-0001), and a
    // session sends none while nobody speaks: a KeepAlive every few seconds of silence holds it.
    this.#keepAlive = setInterval(() => {
      if (this.#closing || socket.readyState !== WebSocket.OPEN) return;
      if (performance.now() - this.#lastSentAt < keepAliveMs) return;
      socket.send(JSON.stringify({ type: "KeepAlive" }));
      this.#lastSentAt = performance.now();
    }, keepAliveMs / 2);
    this.#keepAlive.unref();
    socket.on("error", (err) => this.#fail(this.control.translate(err, "stream", this.#delivered)));
    socket.on("close", (code: number, reason: Buffer) => {
      clearInterval(this.#keepAlive);
      if (this.#closing && code === 1000 && !this.control.signal.aborted) {
        this.#finish();
        return;
      }
      const what = `${target.provider} ${target.kind}`;
      const cause = new ProviderStreamInterruptedError(`${what}: the live stream closed (code ${code})`, {
        retryable: this.#delivered === 0,
        details: {
          provider: target.provider,
          kind: target.kind,
          code,
          reason: excerptOf(reason.toString("utf8"), target.apiKey),
          delivered: this.#delivered,
        },
      });
      // A caller's abort or a deadline says so; otherwise the close itself is the error.
      this.#fail(
        this.control.signal.aborted ? this.control.translate(cause, "stream", this.#delivered) : cause,
      );
    });
  }

  send(pcm: Uint8Array): void {
    if (this.#closing || this.socket.readyState !== WebSocket.OPEN) return;
    this.socket.send(pcm);
    this.#lastSentAt = performance.now();
  }

  finalize(): void {
    if (this.#closing || this.socket.readyState !== WebSocket.OPEN) return;
    this.socket.send(JSON.stringify({ type: "Finalize" }));
  }

  close(): void {
    if (this.#closing) return;
    this.#closing = true;
    if (this.socket.readyState === WebSocket.OPEN) this.socket.send(JSON.stringify({ type: "CloseStream" }));
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<LiveTranscriptEvent, void, undefined> {
    try {
      for (;;) {
        const event = this.#events.shift();
        if (event !== undefined) {
          yield event;
          continue;
        }
        if (this.#error !== undefined) throw this.#error;
        if (this.#done) return;
        await new Promise<void>((resolve) => {
          this.#wake = resolve;
        });
      }
    } finally {
      // A reader that stops early ends the stream: the socket goes, the call counts as aborted.
      if (!this.#done && this.#error === undefined) this.socket.terminate();
      this.control.dispose();
      this.meter.end();
    }
  }

  #notify(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }

  #finish(): void {
    if (this.#done || this.#error !== undefined) return;
    this.#done = true;
    this.meter.ok();
    this.#notify();
  }

  #fail(error: SfError): void {
    if (this.#done || this.#error !== undefined) return;
    this.#error = error;
    this.meter.failed(error);
    this.#notify();
  }

  /** A `Results` message as an event; other messages (Metadata, SpeechStarted, …) are none. */
  #parse(text: string): LiveTranscriptEvent | undefined {
    const message = parseJson(this.target, text, "a live message is not JSON");
    if (!isRecord(message) || message["type"] !== "Results") return undefined;
    const best = deepgramBestAlternative(
      this.target,
      message["channel"],
      "no `channel.alternatives[0].transcript` in Results",
    );
    const seconds = (value: unknown): number => (typeof value === "number" ? Math.round(value * 1000) : 0);
    return {
      type: message["is_final"] === true ? "final" : "interim",
      text: best["transcript"],
      confidence: typeof best["confidence"] === "number" ? best["confidence"] : 0,
      startMs: seconds(message["start"]),
      durationMs: seconds(message["duration"]),
      speechFinal: message["speech_final"] === true,
    };
  }
}
