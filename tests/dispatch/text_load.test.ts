import { connect } from "@nats-io/transport-node";
import type { NatsConnection } from "@nats-io/transport-node";
import { randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import type { ChatFrame, PlatformStore, TriggerReply } from "../../actors/index.ts";
import { createSubjects, decodeBody, requestReply } from "../../bus/index.ts";
import { waitFor } from "../helpers/deadline.ts";
import { NatsTestServer } from "../helpers/nats_server.ts";
import { spawnActorHost } from "../helpers/processes.ts";
import { addHelperAgent, createPostgresTenant, openTestPlatform, spawnWorker } from "../helpers/stack.ts";
import type { PostgresTenant } from "../helpers/stack.ts";
import { startProviderFixture } from "../fixtures/providers/provider_fixture.ts";
import type { ProviderFixture } from "../fixtures/providers/provider_fixture.ts";

const P = 16;
const subjects = createSubjects({ partitions: P });

async function tenantWithAgent(
  platform: PlatformStore,
  fixture: ProviderFixture,
  slug: string,
): Promise<PostgresTenant> {
  const tenant = await createPostgresTenant(platform, { slug, schema: slug.replace(/-/g, "_") });
  await addHelperAgent(tenant.store, fixture);
  return tenant;
}

function worker(server: NatsTestServer, fixture: ProviderFixture, id: string, ackWaitMs = 30_000) {
  return spawnWorker({
    natsUrl: server.url,
    partitions: P,
    workerId: id,
    endpoints: fixture.endpoints(),
    ackWaitMs,
  });
}

function frames(nc: NatsConnection): ChatFrame[] {
  const all: ChatFrame[] = [];
  nc.subscribe(`${subjects.prefix}.chat.*.out`, {
    callback: (_e, m) => {
      all.push(decodeBody(m.data) as ChatFrame);
    },
  });
  return all;
}

describe("text chat under load and faults", () => {
  it("order - 20 tenants x 50 concurrent triggers in one conversation each: every trigger answered once, in order", async () => {
    await using server = await NatsTestServer.start();
    await using fixture = await startProviderFixture();
    await using host = await spawnActorHost({ natsUrl: server.url, hostId: "h1", partitions: P });
    await using w1 = await worker(server, fixture, "w1");
    await using w2 = await worker(server, fixture, "w2");
    const platform = await openTestPlatform(server.url);
    const nc = await connect({ servers: server.url });
    const all = frames(nc);
    await nc.flush();
    const tenants = await Promise.all(
      Array.from({ length: 20 }, (_, i) => tenantWithAgent(platform, fixture, `load-${server.port}-${i}`)),
    );
    try {
      const conversations = tenants.map(() => randomUUID());
      const replies = await Promise.all(
        tenants.flatMap((t, ti) =>
          Array.from({ length: 50 }, (_, k) =>
            requestReply<TriggerReply>(
              nc,
              subjects.tenantOp(t.id, "trigger"),
              {
                agent_slug: "helper",
                user_id: `user-${ti}`,
                message: `question ${k} of tenant ${ti}`,
                conversation_id: conversations[ti],
                session_id: `load-${ti}`,
              },
              { tenant: t.id, timeoutMs: 60_000 },
            ),
          ),
        ),
      );
      expect(replies).toHaveLength(1000);
      await waitFor("every final message", () => all.filter((f) => f.type === "message").length >= 1000, {
        timeoutMs: 60_000,
        intervalMs: 100,
      });
      const finals = all.filter((f) => f.type === "message");
      expect(new Set(finals.map((f) => f.job_id)).size).toBe(1000);
      expect(all.filter((f) => f.type === "error")).toEqual([]);
      for (const [ti, t] of tenants.entries()) {
        const rows = await t.store.listTranscripts(conversations[ti] as string, { limit: 200 });
        const questions = rows.filter((r) => r.role === "user").map((r) => r.content);
        // Sent one after another on one connection: recorded in the order they were sent.
        expect(questions).toEqual(Array.from({ length: 50 }, (_, k) => `question ${k} of tenant ${ti}`));
        expect(rows.filter((r) => r.role === "assistant")).toHaveLength(50);
      }
    } finally {
      await nc.close();
      for (const t of tenants) await t.store.close();
      await platform.close();
    }
    void host;
    void w1;
    void w2;
  });

  it("redelivery - SIGKILL a worker in the middle of a reply: another worker finishes it and the reply is recorded once", async () => {
    await using server = await NatsTestServer.start();
    await using fixture = await startProviderFixture({ tokenDelayMs: 150 });
    await using host = await spawnActorHost({ natsUrl: server.url, hostId: "h1", partitions: P });
    // Disposed with the test whatever fails; killed on purpose below.
    await using doomed = await worker(server, fixture, "doomed", 2000);
    const platform = await openTestPlatform(server.url);
    const nc = await connect({ servers: server.url });
    const all = frames(nc);
    await nc.flush();
    const t = await tenantWithAgent(platform, fixture, `kill-${server.port}`);
    try {
      const reply = await requestReply<TriggerReply>(
        nc,
        subjects.tenantOp(t.id, "trigger"),
        { agent_slug: "helper", user_id: "u1", message: "tell me a long story please", session_id: "kill" },
        { tenant: t.id, timeoutMs: 15_000 },
      );
      expect(reply.body.worker_id).toBe("doomed");
      await waitFor("the doomed worker to start streaming", () => all.some((f) => f.type === "token"));
      await doomed.kill();
      fixture.setLatency({ tokenDelayMs: 0 });
      await using survivor = await worker(server, fixture, "survivor", 2000);
      await waitFor("the final message", () => all.find((f) => f.type === "message"), { timeoutMs: 20_000 });
      expect(all.filter((f) => f.type === "message")).toHaveLength(1);
      const rows = await t.store.listTranscripts(reply.body.conversation_id);
      expect(rows.map((r) => r.role)).toEqual(["user", "assistant"]);
      expect(rows[0]?.turnId).toBe(reply.body.job_id);
      void survivor;
    } finally {
      await nc.close();
      await t.store.close();
      await platform.close();
    }
    void host;
  });

  it("drain - SIGTERM a worker in the middle of a reply: it finishes the job, exits 0, and takes no new one", async () => {
    await using server = await NatsTestServer.start();
    await using fixture = await startProviderFixture({ tokenDelayMs: 100 });
    await using host = await spawnActorHost({
      natsUrl: server.url,
      hostId: "h1",
      partitions: P,
      claimTimeoutMs: 1500,
    });
    await using leaving = await worker(server, fixture, "leaving");
    const platform = await openTestPlatform(server.url);
    const nc = await connect({ servers: server.url });
    const all = frames(nc);
    await nc.flush();
    const t = await tenantWithAgent(platform, fixture, `drain-${server.port}`);
    try {
      const reply = await requestReply<TriggerReply>(
        nc,
        subjects.tenantOp(t.id, "trigger"),
        {
          agent_slug: "helper",
          user_id: "u1",
          message: "a reply that takes a while to stream",
          session_id: "drain",
        },
        { tenant: t.id, timeoutMs: 15_000 },
      );
      await waitFor("the reply to start streaming", () => all.some((f) => f.type === "token"));
      leaving.signal("SIGTERM");
      expect(await leaving.exited).toBe(0);
      // The job it held was finished before it left, once.
      const finals = all.filter((f) => f.type === "message");
      expect(finals.map((f) => f.job_id)).toEqual([reply.body.job_id]);
      const rows = await t.store.listTranscripts(reply.body.conversation_id);
      expect(rows.map((r) => r.role)).toEqual(["user", "assistant"]);
      expect(leaving.lines.some((l) => l.includes('"job done"'))).toBe(true);
      // With no worker left, a new trigger finds no capacity instead of being taken by the leaver.
      await expect(
        requestReply(
          nc,
          subjects.tenantOp(t.id, "trigger"),
          { agent_slug: "helper", user_id: "u1", message: "anyone there?", session_id: "drain" },
          { tenant: t.id, timeoutMs: 15_000 },
        ),
      ).rejects.toMatchObject({ code: "SF_ERR_NO_AGENT_CAPACITY" });
    } finally {
      await nc.close();
      await t.store.close();
      await platform.close();
    }
    void host;
  });
});
