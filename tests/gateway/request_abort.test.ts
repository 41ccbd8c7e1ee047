// A request's abort behaves as an AbortSignal does for the code that waits on it: each listener
// runs once, on the abort; a removed one never; one added after the abort never (callers check
// `aborted` first).
import { describe, expect, it } from "vitest";
import { RequestAbort } from "../../gateway/index.ts";

describe("gateway - request abort", () => {
  it("runs each listener once on the abort, none that was removed or added after it", () => {
    const abort = new RequestAbort();
    expect(abort.aborted).toBe(false);
    const calls: string[] = [];
    const a = (): void => void calls.push("a");
    const b = (): void => void calls.push("b");
    const c = (): void => void calls.push("c");
    abort.addEventListener("abort", a);
    abort.addEventListener("abort", b, { once: true });
    abort.addEventListener("abort", c);
    abort.removeEventListener("abort", b);
    abort.abort();
    abort.abort();
    expect(abort.aborted).toBe(true);
    expect(calls).toEqual(["a", "c"]);
    abort.addEventListener("abort", b);
    abort.abort();
    expect(calls).toEqual(["a", "c"]);
  });
});
