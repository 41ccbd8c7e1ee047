/**
 * Embeddings through `POST {base}/embeddings`. SiliconFlow, OpenAI and Novita take the OpenAI
 * body `{ model, input: string[], dimensions?, encoding_format: "float" }`; Jina takes
 * `{ model, input, task, dimensions?, embedding_type: "float" }` with `task` =
 * `retrieval.query` or `retrieval.passage`. Inputs are split into batches of the provider's
 * maximum, vectors come back in input order (by each item's `index`), and every vector must have
 * the configured dimension: a mismatch is `SF_ERR_EMBEDDING_DIMENSION_MISMATCH`, never a
 * silently shorter vector.
 */
import { EmbeddingDimensionMismatchError } from "../../actors/index.ts";
import { badResponse, callProvider, isRecord, joinUrl, readJson } from "./http.ts";
import type { ProviderTarget } from "./http.ts";

/** Which stored vectors the text will be compared with (they may use different models). */
export type EmbeddingTarget = "documents" | "conversations";
/** A search query, or a passage being stored. */
export type EmbeddingRole = "query" | "passage";

export interface EmbedOptions {
  /** Default `documents`. */
  target?: EmbeddingTarget;
  /** Default `passage`. */
  role?: EmbeddingRole;
  signal?: AbortSignal;
}

export interface EmbeddingsClient {
  readonly kind: "embeddings";
  readonly provider: string;
  readonly dimension: number;
  readonly maxBatchSize: number;
  modelFor(target: EmbeddingTarget): string;
  /** One vector per input, in input order. */
  embed(texts: readonly string[], options?: EmbedOptions): Promise<number[][]>;
  embedOne(text: string, options?: EmbedOptions): Promise<number[]>;
}

export interface EmbeddingsClientOptions {
  target: ProviderTarget;
  baseUrl: string;
  documentModel: string;
  conversationModel: string;
  dimension: number;
  maxBatchSize: number;
  /** Send `dimensions` for this model. */
  sendDimensions: (model: string) => boolean;
  dialect: "openai" | "jina";
  requestTimeoutMs: number;
}

export class HttpEmbeddingsClient implements EmbeddingsClient {
  readonly kind = "embeddings" as const;
  readonly provider: string;
  readonly dimension: number;
  readonly maxBatchSize: number;
  private readonly url: string;

  constructor(private readonly options: EmbeddingsClientOptions) {
    this.provider = options.target.provider;
    this.dimension = options.dimension;
    this.maxBatchSize = options.maxBatchSize;
    this.url = joinUrl(options.baseUrl, "embeddings");
  }

  modelFor(target: EmbeddingTarget): string {
    return target === "conversations" ? this.options.conversationModel : this.options.documentModel;
  }

  async embed(texts: readonly string[], options: EmbedOptions = {}): Promise<number[][]> {
    const vectors: number[][] = [];
    for (let start = 0; start < texts.length; start += this.maxBatchSize) {
      const batch = texts.slice(start, start + this.maxBatchSize);
      vectors.push(...(await this.embedBatch(batch, options)));
    }
    return vectors;
  }

  async embedOne(text: string, options: EmbedOptions = {}): Promise<number[]> {
    const [vector] = await this.embed([text], options);
    if (vector === undefined) throw badResponse(this.options.target, "no vector for the input");
    return vector;
  }

  private async embedBatch(batch: readonly string[], options: EmbedOptions): Promise<number[][]> {
    const target = this.options.target;
    const model = this.modelFor(options.target ?? "documents");
    const body: Record<string, unknown> = { model, input: batch };
    if (this.options.sendDimensions(model)) body["dimensions"] = this.dimension;
    if (this.options.dialect === "jina") {
      body["task"] = (options.role ?? "passage") === "query" ? "retrieval.query" : "retrieval.passage";
      body["embedding_type"] = "float";
    } else {
      body["encoding_format"] = "float";
    }
    // The vectors are checked inside the call, so a malformed answer is measured as a failed call.
    return await callProvider(
      target,
      this.url,
      {
        method: "POST",
        headers: { authorization: `Bearer ${target.apiKey}`, "content-type": "application/json" },
        body: JSON.stringify(body),
      },
      { timeoutMs: this.options.requestTimeoutMs, ...(options.signal ? { signal: options.signal } : {}) },
      async (response) => this.vectorsOf(await readJson(target, response), batch.length, model),
    );
  }

  private vectorsOf(json: unknown, expected: number, model: string): number[][] {
    const target = this.options.target;
    if (!isRecord(json) || !Array.isArray(json["data"])) throw badResponse(target, "no `data` array");
    const data = json["data"] as unknown[];
    if (data.length !== expected) {
      throw badResponse(target, `${data.length} vectors for ${expected} inputs`);
    }
    const out: (number[] | undefined)[] = new Array<number[] | undefined>(expected).fill(undefined);
    data.forEach((item, position) => {
      if (!isRecord(item)) throw badResponse(target, "a `data` item is not an object");
      const index = item["index"] === undefined ? position : item["index"];
      if (typeof index !== "number" || !Number.isInteger(index) || index < 0 || index >= expected) {
        throw badResponse(target, "a `data` item has an invalid `index`");
      }
      if (out[index] !== undefined) throw badResponse(target, `two vectors for input ${index}`);
      const embedding = item["embedding"];
      if (!Array.isArray(embedding) || !embedding.every((x) => typeof x === "number" && Number.isFinite(x))) {
        throw badResponse(target, "an `embedding` is not an array of finite numbers");
      }
      if (embedding.length !== this.dimension) {
        throw new EmbeddingDimensionMismatchError(
          `${this.provider} embeddings: model ${model} returned ${embedding.length} dimensions, the tenant's embeddings have ${this.dimension}`,
          {
            details: {
              provider: this.provider,
              kind: "embeddings",
              model,
              expected: this.dimension,
              received: embedding.length,
            },
          },
        );
      }
      out[index] = embedding as number[];
    });
    return out.map((vector, index) => {
      if (vector === undefined) throw badResponse(target, `no vector for input ${index}`);
      return vector;
    });
  }
}
