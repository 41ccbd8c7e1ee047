import { describe, expect, it } from "vitest";
import WebSocket from "ws";
import { openPlatformStore, openTenantStore, provisionTenantDatabase } from "../../actors/index.ts";
import { waitFor } from "../helpers/deadline.ts";
import { NatsTestServer } from "../helpers/nats_server.ts";
import { defaultPlatformSchema, spawnActorHost, spawnTs, testKeyring } from "../helpers/processes.ts";
import { sharedServices } from "../helpers/services.ts";
import { startProviderFixture } from "../fixtures/providers/provider_fixture.ts";
import { spawnGateway } from "../helpers/gateway_process.ts";

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
    await using host = await spawnActorHost({
      natsUrl: server.url,
      hostId: "h1",
      partitions: P,
      tenantMaxJobs: 2 * CONNECTIONS,
    });
    await using worker = await spawnTs("worker", "agent-worker/main.ts", {
      readyLine: "agent worker ready",
      env: {
        NATS_URL: server.url,
        SF_PARTITIONS: String(P),
        SF_WORKER_ID: "w1",
        SF_WORKER_SLOTS: "128",
        SF_METRICS_PORT: "0",
        SF_PROVIDER_ENDPOINTS: JSON.stringify(fixture.endpoints()),
      },
    });
    const gw = await spawnGateway({
      natsUrl: server.url,
      partitions: P,
      maxBodyBytes: 64 * 1024,
      extraEnv: {
        SF_RATE_LIMIT_PER_MINUTE_KEY: "0",
        SF_RATE_LIMIT_PER_MINUTE_TENANT: "0",
        SF_GATEWAY_REPLY_TIMEOUT_MS: "60000",
      },
    });
    const platform = await openPlatformStore({
      database: {
        kind: "postgres",
        url: sharedServices().databaseUrl,
        schema: defaultPlatformSchema(server.url),
      },
      keyring: testKeyring(),
    });
    const client = await platform.createClient({ slug: `ws-${server.port}`, name: "WS load" });
    const database = {
      kind: "postgres" as const,
      url: sharedServices().databaseUrl,
      schema: `ws_${server.port}`,
    };
    await provisionTenantDatabase({ tenantId: client.id, database, vector: "optional" });
    await platform.setTenantDatabase(client.id, database);
    const store = await openTenantStore({ tenantId: client.id, database, keyring: testKeyring() });
    const sockets: WebSocket[] = [];
    try {
      await store.createAgent({
        slug: "helper",
        name: "Helper",
        voiceSettings: { llm_provider: "groq", llm_model: "llama-3.3-70b-versatile" },
      });
      await store.setProviderKey("groq", fixture.keys.groq);
      const key = (await platform.createApiKey({ clientId: client.id, name: "ws" })).secret;
      const url = `${gw.base.replace("http", "ws")}/ws?token=${encodeURIComponent(key)}`;
      const frames: Frame[][] = [];
      await Promise.all(
        Array.from(
          { length: CONNECTIONS },
          (_, i) =>
            new Promise<void>((resolve, reject) => {
              const ws = new WebSocket(url);
              sockets.push(ws);
              frames[i] = [];
              ws.on("message", (data: Buffer) => frames[i]?.push(JSON.parse(data.toString("utf8")) as Frame));
              ws.once("open", () => resolve());
              ws.once("error", reject);
            }),
        ),
      );
      sockets.forEach((ws, i) =>
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
      await gw.proc.stop();
    }
    void host;
    void worker;
  });
});
