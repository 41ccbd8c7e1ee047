import { connect } from "@nats-io/transport-node";
import type { NatsConnection } from "@nats-io/transport-node";
import { describe, expect, it } from "vitest";
import type { ChatFrame, PlatformStore, TriggerReply } from "../../actors/index.ts";
import { createSubjects, decodeBody, requestReply } from "../../bus/index.ts";
import { waitFor } from "../helpers/deadline.ts";
import { NatsTestServer } from "../helpers/nats_server.ts";
import { spawnActorHost } from "../helpers/processes.ts";
import { createPostgresTenant, openTestPlatform, spawnWorker } from "../helpers/stack.ts";
import type { PostgresTenant } from "../helpers/stack.ts";
import { defaultChatReply, startProviderFixture } from "../fixtures/providers/provider_fixture.ts";

const P = 16;
const subjects = createSubjects({ partitions: P });

function tenant(platform: PlatformStore, slug: string, schema: string): Promise<PostgresTenant> {
  return createPostgresTenant(platform, { slug, schema });
}

function chatFrames(nc: NatsConnection, session: string): ChatFrame[] {
  const frames: ChatFrame[] = [];
  nc.subscribe(subjects.chatOut(session), {
    callback: (_e, m) => {
      frames.push(decodeBody(m.data) as ChatFrame);
    },
  });
  return frames;
}

describe("text chat - trigger, worker, LLM, transcripts", () => {
  it("text - a worker claims the trigger, the LLM reply streams in order and both messages land in the tenant's transcripts only", async () => {
    await using server = await NatsTestServer.start();
    await using fixture = await startProviderFixture();
    await using host = await spawnActorHost({ natsUrl: server.url, hostId: "h1", partitions: P });
    await using worker = await spawnWorker({
      natsUrl: server.url,
      partitions: P,
      workerId: "w1",
      endpoints: fixture.endpoints(),
    });
    const platform = await openTestPlatform(server.url);
    const nc = await connect({ servers: server.url });
    const a = await tenant(platform, `chat-a-${server.port}`, `chat_a_${server.port}`);
    const b = await tenant(platform, `chat-b-${server.port}`, `chat_b_${server.port}`);
    try {
      for (const t of [a, b]) {
        await t.store.createAgent({
          slug: "helper",
          name: "Helper",
          systemPrompt: "You are the Acme helper.",
          voiceSettings: { llm_provider: "groq", llm_model: "llama-3.3-70b-versatile" },
        });
        await t.store.setProviderKey("groq", fixture.keys.groq);
      }
      const session = `s-${server.port}`;
      const frames = chatFrames(nc, session);
      await nc.flush();
      const trigger = (message: string, conversationId?: string) =>
        requestReply<TriggerReply>(
          nc,
          subjects.tenantOp(a.id, "trigger"),
          {
            agent_slug: "helper",
            mode: "text",
            user_id: "wp-user-7",
            message,
            session_id: session,
            ...(conversationId === undefined ? {} : { conversation_id: conversationId }),
          },
          { tenant: a.id, timeoutMs: 15_000 },
        );
      const first = await trigger("What is the capital of France?");
      expect(first.body).toMatchObject({ worker_id: "w1", session_id: session, agent: { slug: "helper" } });
      const done = await waitFor("the final message", () =>
        frames.find((f) => f.type === "message" && f.job_id === first.body.job_id),
      );
      const tokens = frames.filter((f) => f.type === "token" && f.job_id === first.body.job_id);
      expect(tokens.map((t) => t.seq)).toEqual(tokens.map((_, i) => i));
      const streamed = tokens.map((t) => (t.type === "token" ? t.delta : "")).join("");
      expect(done.type === "message" && done.text).toBe(streamed);
      expect(fixture.chatTurns).toHaveLength(1);
      expect(streamed).toBe(defaultChatReply(fixture.chatTurns[0]!));
      expect(fixture.chatTurns[0]?.messages).toEqual([
        { role: "system", content: "You are the Acme helper." },
        { role: "user", content: "What is the capital of France?" },
      ]);
      const rows = await a.store.listTranscripts(first.body.conversation_id);
      expect(rows.map((r) => [r.role, r.content, r.turnId])).toEqual([
        ["user", "What is the capital of France?", first.body.job_id],
        ["assistant", streamed, first.body.job_id],
      ]);
      // The worker recorded the turn's timings (ms) with it, for the console's transcript view.
      const timings = rows.find((r) => r.role === "assistant")?.metadata["timings"] as Record<
        string,
        unknown
      >;
      for (const name of ["queue", "retrieval", "llm_first_token", "llm", "worker_total"]) {
        expect(typeof timings[name], name).toBe("number");
        expect(timings[name] as number, name).toBeGreaterThanOrEqual(0);
      }
      expect(timings["worker_total"] as number).toBeGreaterThanOrEqual(timings["llm"] as number);

      // A second run of the same job (a redelivery that ran while the first was stuck) records
      // nothing and is told the reply that was recorded, which is the one it then sends.
      const again = await requestReply<{ turn_id: string; recorded: boolean; result?: unknown }>(
        nc,
        subjects.tenantOp(a.id, "turn-record"),
        {
          job_id: first.body.job_id,
          conversation_id: first.body.conversation_id,
          session_id: session,
          agent_slug: "helper",
          user_id: "wp-user-7",
          user_message: "What is the capital of France?",
          assistant_message: "a different answer from the second run",
        },
        { tenant: a.id, timeoutMs: 15_000 },
      );
      expect(again.body).toEqual({
        turn_id: first.body.job_id,
        recorded: false,
        result: { text: streamed, citations: [] },
      });
      expect(await a.store.listTranscripts(first.body.conversation_id)).toHaveLength(2);

      // The next turn of the same conversation carries the first one to the LLM.
      const second = await trigger("And of Italy?", first.body.conversation_id);
      await waitFor("the second reply", () =>
        frames.find((f) => f.type === "message" && f.job_id === second.body.job_id),
      );
      expect(fixture.chatTurns[1]?.messages.map((m) => m.content)).toEqual([
        "You are the Acme helper.",
        "What is the capital of France?",
        streamed,
        "And of Italy?",
      ]);
      expect(await a.store.listTranscripts(first.body.conversation_id)).toHaveLength(4);

      // A trigger that names a gateway's chat inbox gets its frames there, not on the session's subject.
      const inboxFrames: ChatFrame[] = [];
      nc.subscribe(subjects.chatVia("gw-test-inbox", session), {
        callback: (_e, m) => {
          inboxFrames.push(decodeBody(m.data) as ChatFrame);
        },
      });
      await nc.flush();
      const viaInbox = (chatInbox: string) =>
        requestReply<TriggerReply>(
          nc,
          subjects.tenantOp(a.id, "trigger"),
          {
            agent_slug: "helper",
            mode: "text",
            user_id: "wp-user-7",
            message: "And of Spain?",
            session_id: session,
            chat_inbox: chatInbox,
            conversation_id: first.body.conversation_id,
          },
          { tenant: a.id, timeoutMs: 15_000 },
        );
      const third = await viaInbox("gw-test-inbox");
      const thirdDone = await waitFor("the third reply in the inbox", () =>
        inboxFrames.find((f) => f.type === "message" && f.job_id === third.body.job_id),
      );
      expect(thirdDone.type === "message" && thirdDone.text).toBe(defaultChatReply(fixture.chatTurns[2]!));
      expect(frames.filter((f) => f.job_id === third.body.job_id)).toEqual([]);
      // An inbox is one subject token.
      await expect(viaInbox("gw.other")).rejects.toMatchObject({ code: "SF_ERR_INVALID_ARGUMENT" });
      // Tenant b's database holds none of it.
      expect(await b.store.listTranscripts(first.body.conversation_id)).toEqual([]);
      expect(await b.store.findConversation(first.body.conversation_id)).toBeNull();
    } finally {
      await nc.close();
      await a.store.close();
      await b.store.close();
      await platform.close();
    }
    void host;
    void worker;
  });

  it("no fallback - an agent whose provider has no key fails with an error naming it, and no provider is called", async () => {
    await using server = await NatsTestServer.start();
    await using fixture = await startProviderFixture();
    await using host = await spawnActorHost({ natsUrl: server.url, hostId: "h1", partitions: P });
    await using worker = await spawnWorker({
      natsUrl: server.url,
      partitions: P,
      workerId: "w1",
      endpoints: fixture.endpoints(),
    });
    const platform = await openTestPlatform(server.url);
    const nc = await connect({ servers: server.url });
    const a = await tenant(platform, `nokey-${server.port}`, `nokey_${server.port}`);
    try {
      await a.store.createAgent({
        slug: "keyless",
        name: "Keyless",
        voiceSettings: { llm_provider: "openai", llm_model: "gpt-4o-mini" },
      });
      await a.store.setProviderKey("groq", fixture.keys.groq);
      const frames = chatFrames(nc, "nokey");
      await nc.flush();
      const reply = await requestReply<TriggerReply>(
        nc,
        subjects.tenantOp(a.id, "trigger"),
        { agent_slug: "keyless", user_id: "u1", message: "hello", session_id: "nokey" },
        { tenant: a.id, timeoutMs: 15_000 },
      );
      const error = await waitFor("the error frame", () => frames.find((f) => f.type === "error"));
      expect(error.type === "error" && error.job_id).toBe(reply.body.job_id);
      expect(error.type === "error" && error.error).toMatchObject({
        code: "SF_ERR_PROVIDER_MISCONFIGURED",
        details: { kind: "llm", provider: "openai", missing: "api_key" },
      });
      expect(fixture.calls).toHaveLength(0);
      expect(await a.store.listTranscripts(reply.body.conversation_id)).toEqual([]);
    } finally {
      await nc.close();
      await a.store.close();
      await platform.close();
    }
    void host;
    void worker;
  });
});
