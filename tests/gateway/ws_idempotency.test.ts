/**
 * WebSocket chat messages with an `idempotency_key`, through real processes (gateway, actor host,
 * agent worker, the provider fixture) and a tenant database on the shared PostgreSQL: a client
 * whose socket drops after the job was claimed, before its reply, reconnects and sends the same
 * message with the same key. It gets the first job's reply, and the tenant records one user turn
 * and one agent turn (the provider is asked once). A repeat after the turn is recorded is answered
 * from the record; the key with another text is refused with SF_ERR_IDEMPOTENCY_KEY_REUSED, and a
 * key of the wrong shape with SF_ERR_VALIDATION_FAILED.
 */
import { describe, expect, it } from "vitest";
import type WebSocket from "ws";
import { waitFor } from "../helpers/deadline.ts";
import { NatsTestServer } from "../helpers/nats_server.ts";
import { createChatTenant, openTestPlatform, startChatStack } from "../helpers/stack.ts";
import { nextFrame, openWsClient } from "../helpers/ws_client.ts";
import type { WsClient } from "../helpers/ws_client.ts";
import { startProviderFixture } from "../fixtures/providers/provider_fixture.ts";

const P = 8;

interface Frame {
  type: string;
  job_id?: string;
  conversation_id?: string;
  text?: string;
  delta?: string;
  code?: string;
  request_id?: string;
}

/** The first frame for `requestId` of one of `types`, waited for. */
function frameOf(client: WsClient<Frame>, requestId: string, types: string[]): Promise<Frame> {
  return nextFrame(
    client,
    `a ${types.join("/")} frame for ${requestId}`,
    (f) => f.request_id === requestId && types.includes(f.type),
  );
}

describe("websocket idempotency keys", () => {
  it("ws - a message re-sent with its idempotency_key after a reconnect gets the first job's reply, and the tenant records one user turn and one agent turn", async () => {
    await using server = await NatsTestServer.start();
    // The first token comes a while after the claim, so the first socket can drop in between.
    await using fixture = await startProviderFixture({ firstTokenDelayMs: 1500, tokenDelayMs: 5 });
    await using stack = await startChatStack({
      natsUrl: server.url,
      partitions: P,
      fixture,
      name: "ws-idem",
      host: { claimTimeoutMs: 30_000 },
      workerSlots: 8,
      gatewayEnv: { SF_GATEWAY_TRIGGER_TIMEOUT_MS: "30000", SF_GATEWAY_REPLY_TIMEOUT_MS: "30000" },
    });
    const { gw } = stack;
    const platform = await openTestPlatform(server.url);
    const { store, agent, key } = await createChatTenant(platform, fixture, {
      slug: `ws-idem-${server.port}`,
      name: "WS idem",
      schema: `ws_idem_${server.port}`,
      keyName: "ws",
    });
    const sockets: WebSocket[] = [];
    try {
      const url = `${gw.base.replace("http", "ws")}/ws?token=${encodeURIComponent(key)}`;
      const message = (text: string, requestId: string, idempotencyKey: unknown): string =>
        JSON.stringify({
          type: "message",
          agent_slug: "helper",
          text,
          request_id: requestId,
          idempotency_key: idempotencyKey,
        });
      const idem = "msg-01HZX.retry:1";

      // The first socket sends, sees the claim, and drops before any reply.
      const first = await openWsClient<Frame>(url, { sockets });
      first.ws.send(message("what are your opening hours?", "r1", idem));
      const claimed = await frameOf(first, "r1", ["claimed", "error"]);
      expect(claimed.type).toBe("claimed");
      first.ws.terminate();
      expect(first.frames.filter((f) => f.type === "message" || f.type === "token")).toEqual([]);

      // It reconnects and sends the same message with the same key: the first job's reply.
      const second = await openWsClient<Frame>(url, { sockets });
      second.ws.send(message("what are your opening hours?", "r2", idem));
      const reply = await frameOf(second, "r2", ["message", "error"]);
      expect(reply.type).toBe("message");
      expect(reply.job_id).toBe(claimed.job_id);
      expect(reply.conversation_id).toBe(claimed.conversation_id);
      expect(reply.text).toMatch(/\S/);
      const tokens = second.frames.filter((f) => f.type === "token" && f.job_id === claimed.job_id);
      expect(tokens.map((f) => f.delta).join("")).toBe(reply.text);

      // The tenant has one user turn and one agent turn; the provider was asked once.
      const conversationId = claimed.conversation_id as string;
      const rows = await waitFor("the recorded turn", async () => {
        const r = await store.listTranscripts(conversationId);
        return r.length >= 2 ? r : undefined;
      });
      expect(rows.map((r) => [r.role, r.content])).toEqual([
        ["user", "what are your opening hours?"],
        ["assistant", reply.text],
      ]);
      expect(rows[0]?.turnId).toBe(claimed.job_id);
      expect(rows[0]?.agentId).toBe(agent.id);
      expect(fixture.callsTo("groq", "chat")).toHaveLength(1);

      // Once recorded, a repeat is answered from the record, on any socket.
      second.ws.send(message("what are your opening hours?", "r3", idem));
      const recorded = await frameOf(second, "r3", ["message", "error"]);
      expect(recorded).toMatchObject({ type: "message", job_id: claimed.job_id, text: reply.text });

      // The key with another text is refused; a key of the wrong shape too.
      second.ws.send(message("and on sundays?", "r4", idem));
      expect((await frameOf(second, "r4", ["message", "error"])).code).toBe("SF_ERR_IDEMPOTENCY_KEY_REUSED");
      for (const [i, bad] of ["", "has space", "x".repeat(201), "é", 42].entries()) {
        second.ws.send(message("hello", `bad${i}`, bad));
        expect((await frameOf(second, `bad${i}`, ["message", "error"])).code).toBe(
          "SF_ERR_VALIDATION_FAILED",
        );
      }

      expect(await store.listTranscripts(conversationId)).toHaveLength(2);
      expect(await store.listConversations({})).toHaveLength(1);
      expect(fixture.callsTo("groq", "chat")).toHaveLength(1);
    } finally {
      for (const ws of sockets) ws.terminate();
      await store.close();
      await platform.close();
    }
  }, 180_000);
});
