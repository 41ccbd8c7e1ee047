/**
 * Starts the requests that completed during one event-loop turn together, in one `setImmediate`.
 *
 * Why: a socket server calls into JavaScript once per request, and Node runs the microtask queue
 * after every such call; nats.js writes its outbound buffer to the socket from a microtask. So a
 * request started from its own callback sends its NATS messages in a write of its own, one
 * `write()` syscall per request, which was the largest single CPU cost of a trigger under load.
 * Started together, the requests of one turn queue their messages before that microtask runs and
 * leave in one write. `setImmediate` runs right after the poll phase in which the requests were
 * read, so no request waits for another turn of the loop.
 */
export class LoopBatch {
  #jobs: Array<() => void> = [];
  #scheduled = false;
  readonly #onError: (err: unknown) => void;

  /** `onError`: what to do with an error a job throws (the other jobs of the batch still run). */
  constructor(onError: (err: unknown) => void) {
    this.#onError = onError;
  }

  /** Runs `job` at the end of this turn's poll phase, with every other job pushed in the same turn. */
  push(job: () => void): void {
    this.#jobs.push(job);
    if (this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(this.#run);
  }

  /** Jobs waiting for the batch to run. */
  get pending(): number {
    return this.#jobs.length;
  }

  readonly #run = (): void => {
    this.#scheduled = false;
    const jobs = this.#jobs;
    this.#jobs = [];
    for (const job of jobs) {
      try {
        job();
      } catch (err) {
        this.#onError(err);
      }
    }
  };
}
