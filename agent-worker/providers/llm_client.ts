/**
 * Chat completions through the OpenAI-compatible API that Groq, OpenAI, Cerebras and DeepInfra
 * all speak: `POST {base}/chat/completions` with `stream: true`, answered as Server-Sent Events
 * (`data: {chat.completion.chunk}` … `data: [DONE]`). Text deltas are yielded in order; a stream
 * that ends without `[DONE]` is an error, never a silent truncation.
 */
import { ProviderUnavailableError } from "../errors.ts";
import {
  CallControl,
  CallMeter,
  badResponse,
  excerptOf,
  httpStatusError,
  isRecord,
  joinUrl,
} from "./http.ts";
import type { ProviderTarget } from "./http.ts";
import { readSseData } from "./sse.ts";

export type ChatRole = "system" | "user" | "assistant";

export interface ChatMessage {
  role: ChatRole;
  content: string;
}

export interface ChatRequest {
  messages: readonly ChatMessage[];
  temperature?: number;
  /** Sent as `max_tokens`. */
  maxTokens?: number;
}

export interface ChatStreamOptions {
  signal?: AbortSignal;
  /** Overrides the client's first-token deadline for this call. */
  firstTokenTimeoutMs?: number;
  /** Overrides the client's whole-answer deadline for this call. */
  overallTimeoutMs?: number;
}

export interface LlmClient {
  readonly kind: "llm";
  readonly provider: string;
  readonly model: string;
  /** Text deltas in order. Throws coded provider errors (see `errors.ts`). */
  stream(request: ChatRequest, options?: ChatStreamOptions): AsyncGenerator<string, void, undefined>;
  /** The whole answer (the same streamed call, collected). */
  complete(request: ChatRequest, options?: ChatStreamOptions): Promise<string>;
}

export interface OpenAiCompatibleLlmOptions {
  target: ProviderTarget;
  baseUrl: string;
  model: string;
  firstTokenTimeoutMs: number;
  overallTimeoutMs: number;
}

export class OpenAiCompatibleLlmClient implements LlmClient {
  readonly kind = "llm" as const;
  readonly provider: string;
  readonly model: string;
  private readonly target: ProviderTarget;
  private readonly url: string;

  constructor(private readonly options: OpenAiCompatibleLlmOptions) {
    this.target = options.target;
    this.provider = options.target.provider;
    this.model = options.model;
    this.url = joinUrl(options.baseUrl, "chat/completions");
  }

  async *stream(
    request: ChatRequest,
    options: ChatStreamOptions = {},
  ): AsyncGenerator<string, void, undefined> {
    const control = new CallControl(this.target, options.signal);
    const meter = new CallMeter(this.target);
    control.arm("first_token", options.firstTokenTimeoutMs ?? this.options.firstTokenTimeoutMs);
    control.arm("overall", options.overallTimeoutMs ?? this.options.overallTimeoutMs);
    let delivered = 0;
    let stage: "request" | "stream" = "request";
    try {
      control.throwIfStopped(stage);
      const response = await this.target.fetch(this.url, {
        method: "POST",
        headers: {
          authorization: `Bearer ${this.target.apiKey}`,
          "content-type": "application/json",
          accept: "text/event-stream",
        },
        body: JSON.stringify(this.body(request)),
        signal: control.signal,
      });
      if (!response.ok) throw await httpStatusError(this.target, response);
      if (response.body === null) throw badResponse(this.target, "the stream has no body");
      stage = "stream";
      let finished = false;
      for await (const data of readSseData(response.body)) {
        if (data.trim() === "[DONE]") {
          finished = true;
          break;
        }
        const delta = this.deltaOf(data, delivered);
        if (delta === "") continue;
        if (delivered === 0) {
          control.disarm("first_token");
          meter.firstToken();
        }
        delivered += 1;
        yield delta;
        control.throwIfStopped(stage, delivered);
      }
      control.throwIfStopped(stage, delivered);
      if (!finished) {
        throw control.translate(new Error("the body ended before data: [DONE]"), "stream", delivered);
      }
      meter.ok();
    } catch (err) {
      const error = control.translate(err, stage, delivered);
      meter.failed(error);
      throw error;
    } finally {
      control.dispose();
      // A reader that stops iterating early ends the call here, reported as aborted.
      meter.end();
    }
  }

  async complete(request: ChatRequest, options: ChatStreamOptions = {}): Promise<string> {
    let text = "";
    for await (const delta of this.stream(request, options)) text += delta;
    return text;
  }

  private body(request: ChatRequest): Record<string, unknown> {
    const body: Record<string, unknown> = {
      model: this.model,
      messages: request.messages.map((m) => ({ role: m.role, content: m.content })),
      stream: true,
    };
    if (request.temperature !== undefined) body["temperature"] = request.temperature;
    if (request.maxTokens !== undefined) body["max_tokens"] = request.maxTokens;
    return body;
  }

  /** The text of one `chat.completion.chunk` ("" for role-only, usage-only or final chunks). */
  private deltaOf(data: string, delivered: number): string {
    let chunk: unknown;
    try {
      chunk = JSON.parse(data) as unknown;
    } catch (err) {
      throw badResponse(this.target, "a stream event is not JSON", excerptOf(data, this.target.apiKey), err);
    }
    if (!isRecord(chunk)) throw badResponse(this.target, "a stream event is not an object");
    if (chunk["error"] !== undefined) {
      // Providers report failures that happen after the 200 as an error event in the stream.
      throw new ProviderUnavailableError(`${this.provider} llm: the provider reported an error mid-stream`, {
        retryable: delivered === 0,
        details: {
          provider: this.provider,
          kind: "llm",
          delivered,
          excerpt: excerptOf(JSON.stringify(chunk["error"]), this.target.apiKey),
        },
      });
    }
    const choices = chunk["choices"];
    if (choices === null || choices === undefined) return "";
    if (!Array.isArray(choices)) throw badResponse(this.target, "`choices` is not an array");
    const first: unknown = choices[0];
    if (first === undefined) return "";
    if (!isRecord(first)) throw badResponse(this.target, "a choice is not an object");
    const delta = first["delta"];
    if (delta === undefined || delta === null) return "";
    if (!isRecord(delta)) throw badResponse(this.target, "`delta` is not an object");
    const content = delta["content"];
    if (content === undefined || content === null) return "";
    if (typeof content !== "string") throw badResponse(this.target, "`delta.content` is not a string");
    return content;
  }
}
