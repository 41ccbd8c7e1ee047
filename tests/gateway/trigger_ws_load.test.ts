import { describe, expect, it } from "vitest";
import type WebSocket from "ws";
import { waitFor } from "../helpers/deadline.ts";
import { NatsTestServer } from "../helpers/nats_server.ts";
import { createChatTenant, openTestPlatform, startChatStack } from "../helpers/stack.ts";
import { openWsClient } from "../helpers/ws_client.ts";
import { startProviderFixture } from "../fixtures/providers/provider_fixture.ts";

const P = 16;
const CONNECTIONS = 1000;

interface Frame {
  type: string;
  text?: string;
  code?: string;
}

describe("websocket chat at scale", () => {
  it("ws - 1,000 concurrent connections on loopback each exchange a message and get their own reply", async () => {
    await using server = await NatsTestServer.start();
    await using fixture = await startProviderFixture();
    await using stack = await startChatStack({
      natsUrl: server.url,
      partitions: P,
      fixture,
      name: "ws-load",
      host: { tenantMaxJobs: 2 * CONNECTIONS },
      workerSlots: 128,
      maxBodyBytes: 64 * 1024,
      gatewayEnv: { SF_GATEWAY_REPLY_TIMEOUT_MS: "60000" },
    });
    const { gw } = stack;
    const platform = await openTestPlatform(server.url);
    const { store, key } = await createChatTenant(platform, fixture, {
      slug: `ws-${server.port}`,
      name: "WS load",
      schema: `ws_${server.port}`,
      keyName: "ws",
    });
    const sockets: WebSocket[] = [];
    try {
      const url = `${gw.base.replace("http", "ws")}/ws?token=${encodeURIComponent(key)}`;
      const clients = await Promise.all(
        Array.from({ length: CONNECTIONS }, () => openWsClient<Frame>(url, { sockets })),
      );
      const frames = clients.map((c) => c.frames);
      clients.forEach(({ ws }, i) =>
        ws.send(
          JSON.stringify({
            type: "message",
            agent_slug: "helper",
            text: `hello from ${i}`,
            user_id: `u-${i}`,
          }),
        ),
      );
      await waitFor(
        "every socket's final message",
        () => frames.every((f) => f.some((x) => x.type === "message" || x.type === "error")),
        { timeoutMs: 90_000, intervalMs: 200 },
      );
      const errors = frames.flat().filter((f) => f.type === "error");
      expect(errors).toEqual([]);
      for (const [i, f] of frames.entries()) {
        const final = f.find((x) => x.type === "message");
        expect(final?.text, `socket ${i}`).toContain(`hello from ${i}`);
      }
      const turns = await store.listConversations({ limit: 2 * CONNECTIONS });
      expect(turns.length).toBe(CONNECTIONS);
    } finally {
      for (const ws of sockets) ws.terminate();
      await store.close();
      await platform.close();
    }
  });
});
