/**
 * A bounded, turn-based mailbox: one item runs at a time, in arrival order. `offer` refuses
 * at once when the mailbox is full, so overload is answered instead of queued without limit.
 */
export class Mailbox<T> {
  readonly #capacity: number;
  readonly #run: (item: T) => Promise<void>;
  readonly #onError: (err: unknown) => void;
  readonly #queue: T[] = [];
  #head = 0;
  #running = false;
  #idleWaiters: Array<() => void> = [];

  constructor(capacity: number, run: (item: T) => Promise<void>, onError: (err: unknown) => void) {
    this.#capacity = capacity;
    this.#run = run;
    this.#onError = onError;
  }

  /** Items waiting plus the one running. */
  get depth(): number {
    return this.#queue.length - this.#head + (this.#running ? 1 : 0);
  }

  get idle(): boolean {
    return this.depth === 0;
  }

  offer(item: T): boolean {
    if (this.depth >= this.#capacity) return false;
    this.#queue.push(item);
    if (!this.#running) void this.#drain();
    return true;
  }

  /** Drops every waiting item (the running one finishes); returns what was dropped. */
  clear(): T[] {
    const dropped = this.#queue.slice(this.#head);
    this.#queue.length = 0;
    this.#head = 0;
    return dropped;
  }

  /** Resolves once nothing is queued or running. */
  whenIdle(): Promise<void> {
    if (this.idle) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  async #drain(): Promise<void> {
    this.#running = true;
    while (this.#head < this.#queue.length) {
      const item = this.#queue[this.#head] as T;
      this.#head += 1;
      if (this.#head > 1024 && this.#head * 2 > this.#queue.length) {
        this.#queue.splice(0, this.#head);
        this.#head = 0;
      }
      try {
        await this.#run(item);
      } catch (err) {
        this.#onError(err);
      }
    }
    this.#queue.length = 0;
    this.#head = 0;
    this.#running = false;
    const waiters = this.#idleWaiters;
    this.#idleWaiters = [];
    for (const resolve of waiters) resolve();
  }
}
