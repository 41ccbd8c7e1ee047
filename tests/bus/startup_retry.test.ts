/** Start-up steps are retried while NATS does not answer, and only then, until their deadline. */
import { JetStreamApiError } from "@nats-io/jetstream";
import { describe, expect, it } from "vitest";
import { BusErrorCodes, retryWhileUnavailable, SfError } from "../../bus/index.ts";

const unavailable = (): SfError =>
  new SfError(BusErrorCodes.UNAVAILABLE, "NATS did not answer in time; the outcome is unknown", {
    retryable: true,
  });

describe("retryWhileUnavailable", () => {
  it("retries a step that found NATS unavailable until it succeeds", async () => {
    let calls = 0;
    const retries: number[] = [];
    const result = await retryWhileUnavailable(
      "provisioning",
      () => {
        calls += 1;
        return calls < 3 ? Promise.reject(unavailable()) : Promise.resolve("made");
      },
      { onRetry: (_what, attempt) => retries.push(attempt) },
    );
    expect(result).toBe("made");
    expect(calls).toBe(3);
    expect(retries).toEqual([1, 2]);
  });

  it("retries a step JetStream could not place while a cluster node is offline", async () => {
    let calls = 0;
    const result = await retryWhileUnavailable("provisioning", () => {
      calls += 1;
      return calls < 3
        ? Promise.reject(
            new JetStreamApiError({
              code: 400,
              err_code: 10005,
              description: "no suitable peers for placement, peer offline",
            }),
          )
        : Promise.resolve("placed");
    });
    expect(result).toBe("placed");
    expect(calls).toBe(3);
  });

  it.each([
    [
      "a failure that is not about availability",
      new SfError(BusErrorCodes.INTERNAL, "insufficient storage resources available", { retryable: false }),
    ],
    [
      "another JetStream refusal",
      new JetStreamApiError({
        code: 400,
        err_code: 10047,
        description: "insufficient storage resources available",
      }),
    ],
  ])("does not retry %s", async (_what, refused) => {
    let calls = 0;
    await expect(
      retryWhileUnavailable("provisioning", () => {
        calls += 1;
        return Promise.reject(refused);
      }),
    ).rejects.toBe(refused);
    expect(calls).toBe(1);
  });

  it("gives up with the last failure at its deadline", async () => {
    let calls = 0;
    await expect(
      retryWhileUnavailable(
        "provisioning",
        () => {
          calls += 1;
          return Promise.reject(unavailable());
        },
        { deadlineMs: 600 },
      ),
    ).rejects.toMatchObject({ code: BusErrorCodes.UNAVAILABLE });
    // 250 ms, then 500 ms would pass the deadline: two attempts.
    expect(calls).toBe(2);
  });
});
