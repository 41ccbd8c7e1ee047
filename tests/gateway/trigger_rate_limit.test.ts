import { describe, expect, it } from "vitest";
import { NatsTestServer } from "../helpers/nats_server.ts";
import { spawnActorHost } from "../helpers/processes.ts";
import { addHelperAgent, createPostgresTenant, openTestPlatform, spawnWorker } from "../helpers/stack.ts";
import { startProviderFixture } from "../fixtures/providers/provider_fixture.ts";
import { spawnGateway } from "../helpers/gateway_process.ts";

const P = 16;
const LIMIT = 3;

describe("rate limits across gateways", () => {
  it("rate limit - N per minute per tenant holds in total across two gateways; the rest get 429 with Retry-After", async () => {
    await using server = await NatsTestServer.start();
    await using fixture = await startProviderFixture();
    const gatewayEnv = {
      natsUrl: server.url,
      partitions: P,
      maxBodyBytes: 64 * 1024,
      extraEnv: {
        SF_RATE_LIMIT_PER_MINUTE_TENANT: String(LIMIT),
        SF_RATE_LIMIT_PER_MINUTE_KEY: "1000",
        SF_GATEWAY_REPLY_TIMEOUT_MS: "20000",
      },
    };
    const [host, worker, gw1, gw2] = await Promise.all([
      spawnActorHost({ natsUrl: server.url, hostId: "rl-h1", partitions: P }),
      spawnWorker({ natsUrl: server.url, partitions: P, workerId: "w1", endpoints: fixture.endpoints() }),
      spawnGateway(gatewayEnv),
      spawnGateway(gatewayEnv),
    ]);
    await using _host = host;
    await using _worker = worker;
    const platform = await openTestPlatform(server.url);
    try {
      const client = await createPostgresTenant(platform, {
        slug: `rl-${server.port}`,
        name: "Rate limited",
        schema: `rl_${server.port}`,
      });
      await addHelperAgent(client.store, fixture);
      await client.store.close();
      // Two keys of the same tenant: the tenant bucket is what both share.
      const keys = [
        (await platform.createApiKey({ clientId: client.id })).secret,
        (await platform.createApiKey({ clientId: client.id })).secret,
      ];

      const total = LIMIT + 4;
      const results = await Promise.all(
        Array.from({ length: total }, async (_, i) => {
          const base = (i % 2 === 0 ? gw1 : gw2).base;
          const res = await fetch(`${base}/api/v2/trigger-agent`, {
            method: "POST",
            headers: { "content-type": "application/json", "x-api-key": keys[i % 2]! },
            body: JSON.stringify({ agent_slug: "helper", user_id: `u${i}`, message: `hello ${i}` }),
          });
          const body = (await res.json()) as { error?: { code?: string } };
          return { status: res.status, retryAfter: res.headers.get("retry-after"), code: body.error?.code };
        }),
      );
      const ok = results.filter((r) => r.status === 200);
      const limited = results.filter((r) => r.status === 429);
      expect(ok).toHaveLength(LIMIT);
      expect(limited).toHaveLength(total - LIMIT);
      for (const r of limited) {
        expect(r.code).toBe("SF_ERR_RATE_LIMITED");
        expect(Number(r.retryAfter)).toBeGreaterThanOrEqual(1);
      }
      // Only the admitted requests reached a worker.
      expect(fixture.chatTurns).toHaveLength(LIMIT);
    } finally {
      await platform.close();
      await gw1.proc.stop();
      await gw2.proc.stop();
    }
  });
});
