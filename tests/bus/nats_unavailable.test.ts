/**
 * The NATS client's own failures (no responders, a timeout, JetStream without a leader to answer,
 * a closed connection) are "no answer now": coded retryable (SF_ERR_UNAVAILABLE,
 * SF_ERR_CONNECTION_CLOSED), never SF_ERR_INTERNAL, so a job is retried instead of failed for good
 * and a client gets a 503 to retry instead of a 500. Found by the chaos run (tests/chaos).
 */
import { jetstream, JetStreamApiError } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { describe, expect, it } from "vitest";
import { BusErrorCodes, natsUnavailableError, toWireError } from "../../bus/index.ts";
import { errorResponse, RateLimiter, RateLimitErrorCodes } from "../../gateway/index.ts";
import { waitFor } from "../helpers/deadline.ts";
import { NatsTestServer } from "../helpers/nats_server.ts";

async function thrown(f: () => Promise<unknown>): Promise<unknown> {
  try {
    await f();
  } catch (err) {
    return err;
  }
  throw new Error("expected a failure");
}

describe("NATS client errors", () => {
  it("errors - no responders, a timeout and a JetStream publish nobody answers are SF_ERR_UNAVAILABLE, retryable", async () => {
    await using server = await NatsTestServer.start();
    const nc = await connect({ servers: server.url });
    try {
      const noResponders = await thrown(() => nc.request("nobody.listens", "x", { timeout: 1000 }));
      nc.subscribe("never.answers", { callback: () => undefined });
      const timeout = await thrown(() => nc.request("never.answers", "x", { timeout: 50 }));
      // No stream leader to answer (here: no stream at all): the client says "jetstream is not
      // enabled", caused by no responders.
      const publish = await thrown(() => jetstream(nc).publish("no.stream.here", "x"));
      for (const err of [noResponders, timeout, publish]) {
        expect(toWireError(err)).toMatchObject({ code: BusErrorCodes.UNAVAILABLE, retryable: true });
      }
      // The client's text (subjects) stays in the cause: it is not what callers are told.
      expect(natsUnavailableError(publish)?.message).not.toContain("no.stream.here");
    } finally {
      await nc.close();
    }
    const closed = await thrown(() => nc.request("any", "x", { timeout: 1000 }));
    expect(toWireError(closed)).toMatchObject({ code: BusErrorCodes.CONNECTION_CLOSED, retryable: true });
    expect(toWireError(new Error("a bug"))).toMatchObject({ code: BusErrorCodes.INTERNAL, retryable: false });
    expect(natsUnavailableError(new Error("a bug"))).toBeUndefined();
  });

  it("errors - JetStream's own 'no leader now' (503) and 'same message id still being stored' (10158) are retryable; a wrong last sequence is not", () => {
    const api = (code: number, err_code: number, description: string) =>
      new JetStreamApiError({ code, err_code, description });
    expect(toWireError(api(503, 10008, "JetStream system temporarily unavailable"))).toMatchObject({
      code: BusErrorCodes.UNAVAILABLE,
      retryable: true,
    });
    expect(toWireError(api(409, 10158, "duplicate message id is in process"))).toMatchObject({
      code: BusErrorCodes.UNAVAILABLE,
      retryable: true,
    });
    expect(natsUnavailableError(api(400, 10071, "wrong last sequence: 5"))).toBeUndefined();
  });

  it("errors - the gateway answers a NATS timeout with 503 SF_ERR_UNAVAILABLE and Retry-After, not 500", async () => {
    await using server = await NatsTestServer.start();
    const nc = await connect({ servers: server.url });
    try {
      nc.subscribe("never.answers", { callback: () => undefined });
      const timeout = await thrown(() => nc.request("never.answers", "x", { timeout: 50 }));
      const response = errorResponse(timeout);
      expect(response.status).toBe(503);
      expect(response.headers?.["retry-after"]).toBe("1");
      expect(JSON.stringify(response.body)).toContain(BusErrorCodes.UNAVAILABLE);
    } finally {
      await nc.close();
    }
  });

  it("rate limit - a take waits (up to waitMs) for a bucket store that stopped answering, and is served once NATS is back", async () => {
    await using server = await NatsTestServer.start();
    const nc = await connect({ servers: server.url, reconnectTimeWait: 100, maxReconnectAttempts: -1 });
    try {
      const limiter = new RateLimiter({
        nc,
        bucket: "sf_rate_wait",
        perMinuteKey: 600,
        perMinuteTenant: 600,
        waitMs: 30_000,
      });
      await limiter.take("tenant-a", "key-a");
      await server.stop();
      let settled: string | undefined;
      const during = limiter.take("tenant-a", "key-a").then(
        () => (settled = "served"),
        (err: unknown) => (settled = `refused ${(err as { code?: string }).code}`),
      );
      // Still waiting while NATS is down (the default, waitMs 0, refuses here: the test below).
      await new Promise<void>((resolve) => setImmediate(resolve));
      expect(settled).toBeUndefined();
      await server.restart();
      await during;
      expect(settled).toBe("served");
    } finally {
      await nc.close();
    }
  });

  it("rate limit - eight takers looping through a nats-server restart are all served: a KV read lost in the restart is given up on after 1 s and tried again", async () => {
    await using server = await NatsTestServer.start();
    const nc = await connect({ servers: server.url, reconnectTimeWait: 100, maxReconnectAttempts: -1 });
    try {
      const limiter = new RateLimiter({
        nc,
        bucket: "sf_rate_loop",
        perMinuteKey: 600_000,
        perMinuteTenant: 600_000,
        waitMs: 5000,
      });
      let served = 0;
      let stop = false;
      const refused: unknown[] = [];
      const takers = Array.from({ length: 8 }, async (_, i) => {
        while (!stop) {
          try {
            await limiter.take(`tenant-${i}`, `key-${i}`);
            served += 1;
          } catch (err) {
            refused.push(err);
          }
        }
      });
      await waitFor("takes before the restart", () => served >= 50);
      await server.restart();
      const after = served;
      await waitFor("takes after the restart", () => served >= after + 50, { timeoutMs: 15_000 });
      stop = true;
      await Promise.all(takers);
      // Before, a read sent as the server went down waited JetStream's 5 s, used up the wait,
      // and was refused with SF_ERR_RATE_LIMIT_UNAVAILABLE (the 19 refusals of the chaos run).
      expect(refused).toEqual([]);
    } finally {
      await nc.close();
    }
  });

  it("rate limit - with no wait (waitMs 0, the default) a bucket store that does not answer refuses with SF_ERR_RATE_LIMIT_UNAVAILABLE (503), then serves again", async () => {
    await using server = await NatsTestServer.start();
    const nc = await connect({ servers: server.url, reconnectTimeWait: 100, maxReconnectAttempts: -1 });
    try {
      const limiter = new RateLimiter({ nc, bucket: "sf_rate_test", perMinuteKey: 600, perMinuteTenant: 0 });
      await limiter.take("tenant-a", "key-a");
      await server.stop();
      const refused = await thrown(() => limiter.take("tenant-a", "key-a"));
      expect(refused).toMatchObject({ code: RateLimitErrorCodes.UNAVAILABLE, retryable: true });
      expect(errorResponse(refused).status).toBe(503);
      await server.restart();
      // Once the client is back, the same limiter serves again (nothing failed is kept).
      await waitFor(
        "the limiter to serve again",
        async () => {
          await limiter.take("tenant-a", "key-a");
          return true;
        },
        { timeoutMs: 15_000, intervalMs: 100 },
      );
    } finally {
      await nc.close();
    }
  });
});
