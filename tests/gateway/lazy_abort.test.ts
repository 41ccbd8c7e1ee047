// The request's abort signal is made on first use; an abort that came before still shows.
import { describe, expect, it } from "vitest";
import { LazyAbort } from "../../gateway/index.ts";

describe("gateway - lazy abort signal", () => {
  it("a signal asked for after the abort is already aborted; one asked for before gets the abort event", () => {
    const early = new LazyAbort();
    early.abort();
    expect(early.aborted).toBe(true);
    expect(early.signal.aborted).toBe(true);

    const late = new LazyAbort();
    const signal = late.signal;
    expect(signal.aborted).toBe(false);
    let events = 0;
    signal.addEventListener("abort", () => (events += 1));
    late.abort();
    late.abort();
    expect(signal.aborted).toBe(true);
    expect(events).toBe(1);
    // The same signal every time.
    expect(late.signal).toBe(signal);
  });
});
