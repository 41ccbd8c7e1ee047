/**
 * Chat completions through the OpenAI-compatible API that Groq, OpenAI, Cerebras and DeepInfra
 * all speak: `POST {base}/chat/completions` with `stream: true`, answered as Server-Sent Events
 * (`data: {chat.completion.chunk}` … `data: [DONE]`). Text deltas are yielded in order; a stream
 * that ends without `[DONE]` is an error, never a silent truncation.
 */
import { ProviderUnavailableError } from "../errors.ts";
import {
  CallControl,
  badResponse,
  excerptOf,
  httpStatusError,
  isRecord,
  joinUrl,
  parseJson,
  streamCall,
} from "./http.ts";
import type { ProviderTarget, StreamingCall } from "./http.ts";
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
    control.arm("first_token", options.firstTokenTimeoutMs ?? this.options.firstTokenTimeoutMs);
    control.arm("overall", options.overallTimeoutMs ?? this.options.overallTimeoutMs);
    yield* streamCall(this.target, control, (call) => this.deltas(request, call));
  }

  /** The call itself: the request, then each text delta until `data: [DONE]`. */
  private async *deltas(request: ChatRequest, call: StreamingCall): AsyncGenerator<string, void, undefined> {
    const { control, meter } = call;
    control.throwIfStopped(call.stage);
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
    call.stage = "stream";
    let finished = false;
    for await (const data of readSseData(response.body)) {
      if (data.trim() === "[DONE]") {
        finished = true;
        break;
      }
      const delta = this.deltaOf(data, call.delivered);
      if (delta === "") continue;
      if (call.delivered === 0) {
        control.disarm("first_token");
        meter.firstToken();
      }
      call.delivered += 1;
      yield delta;
      control.throwIfStopped(call.stage, call.delivered);
    }
    control.throwIfStopped(call.stage, call.delivered);
    if (!finished) {
      throw control.translate(new Error("the body ended before data: [DONE]"), "stream", call.delivered);
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
    const chunk = parseJson(this.target, data, "a stream event is not JSON");
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
