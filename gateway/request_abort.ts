import type { AbortLike } from "../bus/index.ts";

/**
 * The abort of one request: set when its client goes away before the response is written. Every
 * request has one, and most never abort, so it is a flag and a short list of listeners instead of
 * an `AbortController`: making an `AbortSignal` (an EventTarget) was the single largest cost of
 * the shared request pipeline on Node 20 (a quarter of a `GET /health` handled in process), and
 * its listeners a few percent more of a trigger's gateway CPU, in CPU profiles.
 *
 * It is what `requestReply`, `runTextTurn` and the stream sinks take (bus `AbortLike`, which an
 * `AbortSignal` also is), and it behaves as one: each listener runs once, on the abort.
 */
export class RequestAbort implements AbortLike {
  #aborted = false;
  #listeners: Array<() => void> = [];

  get aborted(): boolean {
    return this.#aborted;
  }

  /** `once` is how every listener runs anyway: the abort happens once. */
  addEventListener(_type: "abort", listener: () => void, _options?: { once?: boolean }): void {
    // As on an AbortSignal, a listener added after the abort never runs: callers check `aborted`.
    if (!this.#aborted) this.#listeners.push(listener);
  }

  removeEventListener(_type: "abort", listener: () => void): void {
    const i = this.#listeners.indexOf(listener);
    if (i >= 0) this.#listeners.splice(i, 1);
  }

  abort(): void {
    if (this.#aborted) return;
    this.#aborted = true;
    const listeners = this.#listeners;
    this.#listeners = [];
    for (const listener of listeners) listener();
  }
}
