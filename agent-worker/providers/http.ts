/**
 * HTTP calls to providers: deadlines, the caller's AbortSignal, and the mapping of HTTP
 * statuses and network failures to coded errors. Every error names the provider and kind; a
 * response body appears only as a short excerpt with the API key scrubbed out, and the key
 * itself never reaches a message or `details`. Every call is timed and its outcome reported to
 * the target's `ProviderMetrics` (`CallMeter`).
 */
import { SfError } from "../../bus/index.ts";
import {
  AgentWorkerErrorCodes,
  ProviderAbortedError,
  ProviderAuthError,
  ProviderBadResponseError,
  ProviderRateLimitedError,
  ProviderRequestRejectedError,
  ProviderStreamInterruptedError,
  ProviderTimeoutError,
  ProviderUnavailableError,
} from "../errors.ts";
import { NO_PROVIDER_METRICS } from "./provider_metrics.ts";
import type { ProviderMetrics } from "./provider_metrics.ts";
import type { ProviderKind } from "./registry.ts";

/** The `fetch` the clients use (Node's global one unless a caller injects another). */
export type FetchFn = (input: string | URL, init?: RequestInit) => Promise<Response>;

/** Who is being called: used in every error, and to scrub the key from excerpts. */
export interface ProviderTarget {
  readonly provider: string;
  readonly kind: ProviderKind;
  readonly apiKey: string;
  readonly fetch: FetchFn;
  /** Where each call's duration and outcome go. Default: nowhere. */
  readonly metrics?: ProviderMetrics;
}

const EXCERPT_CHARS = 200;
const ERROR_BODY_LIMIT_BYTES = 4096;

export function joinUrl(baseUrl: string, path: string): string {
  return `${baseUrl.replace(/\/+$/, "")}/${path.replace(/^\/+/, "")}`;
}

/** A short, single-line, key-free excerpt of a response body. */
export function excerptOf(body: string, apiKey: string): string {
  let text = body;
  if (apiKey.length > 0) text = text.split(apiKey).join("[redacted]");
  text = text.replace(/\s+/g, " ").trim();
  return text.length > EXCERPT_CHARS ? `${text.slice(0, EXCERPT_CHARS)}…` : text;
}

/**
 * `retry-after-ms` (OpenAI's), else `retry-after` as seconds or an HTTP date; undefined when
 * absent or unreadable.
 */
export function parseRetryAfterMs(headers: Headers, nowMs = Date.now()): number | undefined {
  const ms = headers.get("retry-after-ms");
  if (ms !== null && ms.trim() !== "") {
    const value = Number(ms);
    if (Number.isFinite(value) && value >= 0) return Math.round(value);
  }
  const raw = headers.get("retry-after");
  if (raw === null || raw.trim() === "") return undefined;
  const seconds = Number(raw);
  if (Number.isFinite(seconds)) return seconds >= 0 ? Math.round(seconds * 1000) : undefined;
  const date = Date.parse(raw);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, date - nowMs);
}

/** Reads at most `limitBytes` of a body as text (error bodies can be large HTML pages). */
async function readTextLimited(response: Response, limitBytes: number): Promise<string> {
  const body = response.body as ReadableStream<Uint8Array> | null;
  if (body === null) return "";
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    while (size < limitBytes) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      size += value.byteLength;
    }
  } finally {
    if (size >= limitBytes) await reader.cancel();
    reader.releaseLock();
  }
  return new TextDecoder().decode(Buffer.concat(chunks).subarray(0, limitBytes));
}

/** The coded error for a non-2xx answer. */
export async function httpStatusError(target: ProviderTarget, response: Response): Promise<SfError> {
  const status = response.status;
  let excerpt = "";
  try {
    excerpt = excerptOf(await readTextLimited(response, ERROR_BODY_LIMIT_BYTES), target.apiKey);
  } catch (err) {
    excerpt = `(body unreadable: ${err instanceof Error ? err.name : "error"})`;
  }
  const details: Record<string, unknown> = { provider: target.provider, kind: target.kind, status, excerpt };
  const what = `${target.provider} ${target.kind}`;
  if (status === 401 || status === 403) {
    return new ProviderAuthError(`${what}: the provider refused the API key (HTTP ${status})`, { details });
  }
  if (status === 429) {
    const retryAfterMs = parseRetryAfterMs(response.headers);
    if (retryAfterMs !== undefined) details["retryAfterMs"] = retryAfterMs;
    return new ProviderRateLimitedError(`${what}: rate limited (HTTP 429)`, { details });
  }
  if (status === 408 || status >= 500) {
    return new ProviderUnavailableError(`${what}: provider unavailable (HTTP ${status})`, { details });
  }
  return new ProviderRequestRejectedError(`${what}: request rejected (HTTP ${status})`, { details });
}

export type CallStage = "request" | "stream";

/**
 * One call's cancellation: the caller's signal plus named deadlines (`request`, `first_token`,
 * `overall`). `signal` aborts when any of them fires; `translate` turns what was thrown into the
 * coded error that says why.
 */
export class CallControl {
  private readonly controller = new AbortController();
  private readonly timers = new Map<string, { timer: NodeJS.Timeout; ms: number }>();
  private firedPhase: string | undefined;
  private firedMs = 0;
  private readonly onCallerAbort = (): void => this.controller.abort(new Error("aborted by caller"));

  constructor(
    private readonly target: ProviderTarget,
    private readonly callerSignal?: AbortSignal,
  ) {
    if (callerSignal?.aborted === true) this.onCallerAbort();
    else callerSignal?.addEventListener("abort", this.onCallerAbort, { once: true });
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  arm(phase: string, ms: number): void {
    this.disarm(phase);
    const timer = setTimeout(() => {
      if (this.firedPhase === undefined) {
        this.firedPhase = phase;
        this.firedMs = ms;
      }
      this.controller.abort(new Error(`${phase} deadline`));
    }, ms);
    // A deadline alone never keeps the process alive (the call's socket does while it is open).
    timer.unref();
    this.timers.set(phase, { timer, ms });
  }

  disarm(phase: string): void {
    const entry = this.timers.get(phase);
    if (entry !== undefined) clearTimeout(entry.timer);
    this.timers.delete(phase);
  }

  /** Throws the coded error if a deadline fired or the caller aborted (checked between steps). */
  throwIfStopped(stage: CallStage, delivered = 0): void {
    if (this.controller.signal.aborted) throw this.translate(new Error("stopped"), stage, delivered);
  }

  /** Clears the deadlines and releases the connection (aborting a finished call is harmless). */
  dispose(): void {
    for (const { timer } of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
    this.callerSignal?.removeEventListener("abort", this.onCallerAbort);
    if (!this.controller.signal.aborted) this.controller.abort(new Error("call finished"));
  }

  /**
   * Coded errors pass through; otherwise a fired deadline is a timeout, a caller abort is
   * `PROVIDER_ABORTED`, and anything else is a network failure: unavailable before the answer
   * started, an interrupted stream after.
   */
  translate(err: unknown, stage: CallStage, delivered = 0): SfError {
    if (isSfError(err) && !this.controller.signal.aborted) return err;
    const what = `${this.target.provider} ${this.target.kind}`;
    const base = { provider: this.target.provider, kind: this.target.kind };
    if (this.firedPhase !== undefined) {
      return new ProviderTimeoutError(`${what}: no ${phaseText(this.firedPhase)} within ${this.firedMs} ms`, {
        cause: err,
        details: { ...base, phase: this.firedPhase, timeoutMs: this.firedMs, delivered },
      });
    }
    if (this.callerSignal?.aborted === true) {
      return new ProviderAbortedError(`${what}: call aborted by the caller`, {
        cause: err,
        details: { ...base, delivered },
      });
    }
    if (isSfError(err)) return err;
    const reason = networkReason(err);
    if (stage === "stream") {
      return new ProviderStreamInterruptedError(`${what}: the stream broke off (${reason})`, {
        cause: err,
        retryable: delivered === 0,
        details: { ...base, reason, delivered },
      });
    }
    return new ProviderUnavailableError(`${what}: provider unreachable (${reason})`, {
      cause: err,
      details: { ...base, reason },
    });
  }
}

/**
 * Times one call from its request and reports how it ended: `ok()` once the answer is read,
 * `failed(err)` with the coded error, and `end()` in `finally`, which reports a call that did
 * neither (a stream whose reader stopped reading) as aborted. Reports once.
 */
export class CallMeter {
  readonly #target: ProviderTarget;
  readonly #metrics: ProviderMetrics;
  readonly #started = performance.now();
  #ended = false;
  #firstToken = false;

  constructor(target: ProviderTarget) {
    this.#target = target;
    this.#metrics = target.metrics ?? NO_PROVIDER_METRICS;
  }

  /** A streamed answer's first token (reported once). */
  firstToken(): void {
    if (this.#firstToken) return;
    this.#firstToken = true;
    this.#metrics.firstToken(this.#target.provider, this.#target.kind, this.#seconds());
  }

  ok(): void {
    this.#report("ok");
  }

  /** A caller's abort is `aborted`, anything else an `error` with its code. */
  failed(err: SfError): void {
    this.#report(err.code === AgentWorkerErrorCodes.PROVIDER_ABORTED ? "aborted" : "error", err.code);
  }

  end(): void {
    this.#report("aborted");
  }

  #seconds(): number {
    return (performance.now() - this.#started) / 1000;
  }

  #report(outcome: "ok" | "error" | "aborted", code?: string): void {
    if (this.#ended) return;
    this.#ended = true;
    const { provider, kind } = this.#target;
    this.#metrics.callEnded({
      provider,
      kind,
      outcome,
      seconds: this.#seconds(),
      ...(code === undefined ? {} : { code }),
    });
  }
}

function phaseText(phase: string): string {
  if (phase === "first_token") return "first token";
  if (phase === "overall") return "complete answer";
  return "answer";
}

function isSfError(err: unknown): err is SfError {
  return err instanceof SfError;
}

/** A short reason from a fetch failure (undici puts the system error in `cause`). */
function networkReason(err: unknown): string {
  if (!(err instanceof Error)) return "unknown failure";
  const cause = err.cause;
  if (cause instanceof Error) {
    const code = (cause as NodeJS.ErrnoException).code;
    return typeof code === "string" ? code : cause.message.slice(0, 80);
  }
  return err.message.slice(0, 80);
}

/**
 * A request/response call (not streamed): `read` runs under the same deadline as the request,
 * so a body that trickles in is bounded too. `read` should also check the answer's shape, so
 * that a malformed answer is measured as the failed call it is.
 */
export async function callProvider<T>(
  target: ProviderTarget,
  url: string,
  init: RequestInit,
  options: { signal?: AbortSignal; timeoutMs: number },
  read: (response: Response) => Promise<T>,
): Promise<T> {
  const control = new CallControl(target, options.signal);
  const meter = new CallMeter(target);
  control.arm("request", options.timeoutMs);
  try {
    control.throwIfStopped("request");
    const response = await target.fetch(url, { ...init, signal: control.signal });
    if (!response.ok) throw await httpStatusError(target, response);
    const value = await read(response);
    control.throwIfStopped("request");
    meter.ok();
    return value;
  } catch (err) {
    const error = control.translate(err, "request");
    meter.failed(error);
    throw error;
  } finally {
    control.dispose();
    meter.end();
  }
}

/** A streamed call under way: how far its answer got, which decides the coded error it ends with. */
export interface StreamingCall {
  readonly control: CallControl;
  readonly meter: CallMeter;
  /** `stream` once the answer started. */
  stage: CallStage;
  /** What the caller has been given so far (chunks, bytes: the client's unit). */
  delivered: number;
}

/**
 * A streamed call (`control` already armed with its deadlines): yields what `produce` yields, turns
 * what it throws into the coded error for the call's stage and delivery, reports the outcome, and
 * in the end clears the deadlines and releases the connection. Also reached when the reader stops
 * early, which ends the call and reports it as aborted.
 */
export async function* streamCall<T>(
  target: ProviderTarget,
  control: CallControl,
  produce: (call: StreamingCall) => AsyncGenerator<T, void, undefined>,
): AsyncGenerator<T, void, undefined> {
  const call: StreamingCall = { control, meter: new CallMeter(target), stage: "request", delivered: 0 };
  try {
    yield* produce(call);
    call.meter.ok();
  } catch (err) {
    const error = control.translate(err, call.stage, call.delivered);
    call.meter.failed(error);
    throw error;
  } finally {
    control.dispose();
    call.meter.end();
  }
}

/** Parses a JSON body, or throws `PROVIDER_BAD_RESPONSE` with a scrubbed excerpt. */
export async function readJson(target: ProviderTarget, response: Response): Promise<unknown> {
  return parseJson(target, await response.text(), "the body is not JSON");
}

/** Parses JSON text from the provider, or throws `PROVIDER_BAD_RESPONSE` (`problem`, scrubbed excerpt). */
export function parseJson(target: ProviderTarget, text: string, problem: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw badResponse(target, problem, excerptOf(text, target.apiKey), err);
  }
}

export function badResponse(
  target: ProviderTarget,
  problem: string,
  excerpt?: string,
  cause?: unknown,
): ProviderBadResponseError {
  const details: Record<string, unknown> = { provider: target.provider, kind: target.kind, problem };
  if (excerpt !== undefined) details["excerpt"] = excerpt;
  return new ProviderBadResponseError(`${target.provider} ${target.kind}: ${problem}`, {
    details,
    ...(cause === undefined ? {} : { cause }),
  });
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
