/**
 * An abort signal made only when something asks for it. Every request has one (its client may go
 * away), but most handlers never look at it, and creating an `AbortSignal` is the single largest
 * cost of the shared request pipeline on Node 20 (a quarter of a `GET /health` handled in process,
 * in a CPU profile). `abort()` before the signal exists is remembered: the signal is then made
 * already aborted.
 */
export class LazyAbort {
  #controller: AbortController | undefined;
  #aborted = false;

  get signal(): AbortSignal {
    if (this.#controller === undefined) {
      this.#controller = new AbortController();
      if (this.#aborted) this.#controller.abort();
    }
    return this.#controller.signal;
  }

  get aborted(): boolean {
    return this.#aborted;
  }

  abort(): void {
    if (this.#aborted) return;
    this.#aborted = true;
    this.#controller?.abort();
  }
}
