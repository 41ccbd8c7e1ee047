/**
 * Triggers sent in short attempts (gateway/chat/text_turn.ts `triggerRequestOptions`): an attempt
 * that ends before a worker has claimed the job re-attaches to the same job, the overall deadline
 * still ends in SF_ERR_NO_AGENT_CAPACITY with the job withdrawn, and a frozen owner's triggers are
 * answered by the host that takes its partitions over: one job, one conversation and one turn per
 * trigger. Waits are logged, never asserted (bench/ measures speed).
 */
import { randomUUID } from "node:crypto";
import { jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { connect } from "@nats-io/transport-node";
import type { NatsConnection } from "@nats-io/transport-node";
import { describe, expect, it } from "vitest";
import { leaseKey } from "../../actors/index.ts";
import type { TriggerReply } from "../../actors/index.ts";
import { createSubjects, requestReply } from "../../bus/index.ts";
import type { Subjects } from "../../bus/index.ts";
import { ChatInbox, parseGatewayConfig, pickSession, runTextTurn } from "../../gateway/index.ts";
import type { ChatBus, TextTurnResult } from "../../gateway/index.ts";
import { defaultChatReply, startProviderFixture } from "../fixtures/providers/provider_fixture.ts";
import type { ProviderFixture } from "../fixtures/providers/provider_fixture.ts";
import { waitFor } from "../helpers/deadline.ts";
import { describeHost, waitBalanced } from "../helpers/hosts.ts";
import { NatsTestServer } from "../helpers/nats_server.ts";
import { spawnActorHost } from "../helpers/processes.ts";
import type { ActorHostEnv, TestProcess } from "../helpers/processes.ts";
import { createPostgresTenant, helperAgent, openTestPlatform, spawnWorker } from "../helpers/stack.ts";
import type { PostgresTenant } from "../helpers/stack.ts";

const P = 16;
const subjects = createSubjects({ partitions: P });
const USER = "failover-user";

type Turned = TextTurnResult & { message: string };

type Tenant = PostgresTenant;

/** Actor host `hostId` of this suite's partitions on `server`. */
function host(
  server: NatsTestServer,
  hostId: string,
  options: Omit<ActorHostEnv, "natsUrl" | "hostId"> = {},
): Promise<TestProcess> {
  return spawnActorHost({ natsUrl: server.url, hostId, partitions: P, ...options });
}

/** Agent worker `w1` with the fixture's endpoints. */
function worker(server: NatsTestServer, fixture: ProviderFixture): Promise<TestProcess> {
  return spawnWorker({ natsUrl: server.url, partitions: P, workerId: "w1", endpoints: fixture.endpoints() });
}

/** The caller's side: the platform store, a connection, and tenant `name` with the helper agent; disposing closes them. */
interface Caller extends AsyncDisposable {
  nc: NatsConnection;
  t: Tenant;
}

async function openCaller(server: NatsTestServer, name: string): Promise<Caller> {
  const platform = await openTestPlatform(server.url);
  const nc = await connect({ servers: server.url });
  const t = await createPostgresTenant(platform, {
    slug: `${name}-${server.port}`,
    schema: `${name}_${server.port}`,
  });
  await t.store.createAgent(helperAgent());
  return {
    nc,
    t,
    async [Symbol.asyncDispose]() {
      await nc.close();
      await t.store.close();
      await platform.close();
    },
  };
}

/** Counts every copy of a tenant's `trigger` requests on the bus (a plain subscriber, beside the owners' queue group). */
function countTriggers(nc: NatsConnection, s: Subjects, tenantId: string): { seen: number } {
  const counter = { seen: 0 };
  nc.subscribe(s.tenantOp(tenantId, "trigger"), {
    callback: () => {
      counter.seen += 1;
    },
  });
  return counter;
}

/** The fixture's LLM calls for `message` (one per job that ran it). */
function llmCallsFor(fixture: ProviderFixture, message: string): number {
  return fixture.chatTurns.filter((t) => t.messages.at(-1)?.content === message).length;
}

const expectedReply = (message: string): string =>
  defaultChatReply({
    provider: "groq",
    model: "llama-3.3-70b-versatile",
    messages: [{ role: "user", content: message }],
  });

/** The conversation holds exactly one user and one agent turn for this trigger, both of job `jobId`. */
async function expectOneTurn(
  t: Tenant,
  message: string,
  conversationId: string,
  jobId: string,
): Promise<void> {
  const rows = await waitFor(`the turn of ${message} recorded`, async () => {
    const r = await t.store.listTranscripts(conversationId);
    return r.length >= 2 ? r : undefined;
  });
  expect(
    rows.map((r) => [r.role, r.content, r.turnId]),
    message,
  ).toEqual([
    ["user", message, jobId],
    ["assistant", expectedReply(message), jobId],
  ]);
}

async function dispatchBacklog(nc: NatsConnection): Promise<number> {
  const jsm = await jetstreamManager(nc);
  return (await jsm.streams.info(subjects.streams.dispatch)).state.messages;
}

describe("trigger attempts - re-attach, no capacity, failover", () => {
  it("config - SF_GATEWAY_TRIGGER_ATTEMPT_MS bounds one trigger attempt (default 1.5 s, 100 ms to 10 min)", () => {
    expect(parseGatewayConfig({}).triggerAttemptMs).toBe(1500);
    expect(parseGatewayConfig({ SF_GATEWAY_TRIGGER_ATTEMPT_MS: "800" }).triggerAttemptMs).toBe(800);
    for (const bad of ["50", "abc", "700000"]) {
      expect(() => parseGatewayConfig({ SF_GATEWAY_TRIGGER_ATTEMPT_MS: bad }), bad).toThrow(
        /SF_GATEWAY_TRIGGER_ATTEMPT_MS/,
      );
    }
  });

  it("trigger - attempts that end before a worker claims re-attach to the one job", async () => {
    await using server = await NatsTestServer.start();
    await using fixture = await startProviderFixture();
    await using h1 = await host(server, "h1", { claimTimeoutMs: 60_000 });
    await using caller = await openCaller(server, "reattach");
    const { nc, t } = caller;
    const workers: TestProcess[] = [];
    try {
      await t.store.setProviderKey("groq", fixture.keys.groq);
      const copies = countTriggers(nc, subjects, t.id);
      await nc.flush();
      const message = `Which river runs through Paris? ${randomUUID()}`;
      const started = performance.now();
      // No worker yet: the owner publishes the job and waits for a claim; each 300 ms attempt ends.
      const pending = requestReply<TriggerReply>(
        nc,
        subjects.tenantOp(t.id, "trigger"),
        { agent_slug: "helper", mode: "text", user_id: USER, message, job_id: "reattach-1" },
        { tenant: t.id, timeoutMs: 60_000, attemptTimeoutMs: 300 },
      );
      await waitFor("three attempts of the trigger", () => copies.seen >= 3, { timeoutMs: 20_000 });
      expect(await dispatchBacklog(nc)).toBe(1);
      workers.push(await worker(server, fixture));
      const reply = await pending;
      console.log(
        JSON.stringify({
          test: "reattach",
          attempts: reply.attempts,
          wait_ms: Math.round(performance.now() - started),
        }),
      );
      expect(reply.attempts).toBeGreaterThanOrEqual(3);
      expect(reply.body).toMatchObject({ worker_id: "w1", duplicate: false });
      expect(reply.body.result).toBeUndefined();
      await expectOneTurn(t, message, reply.body.conversation_id, reply.body.job_id);
      expect(llmCallsFor(fixture, message)).toBe(1);
      expect(await t.store.listConversations({ limit: 100 })).toHaveLength(1);
    } finally {
      for (const w of workers) await w.kill();
    }
    void h1;
  });

  it("trigger - with no worker, short attempts still end in SF_ERR_NO_AGENT_CAPACITY, the job withdrawn", async () => {
    await using server = await NatsTestServer.start();
    await using h1 = await host(server, "h1", { claimTimeoutMs: 2500 });
    await using caller = await openCaller(server, "nocap");
    const { nc, t } = caller;
    const copies = countTriggers(nc, subjects, t.id);
    await nc.flush();
    const err: unknown = await requestReply<TriggerReply>(
      nc,
      subjects.tenantOp(t.id, "trigger"),
      { agent_slug: "helper", mode: "text", user_id: USER, message: "anyone there?", job_id: "nocap-1" },
      { tenant: t.id, timeoutMs: 30_000, attemptTimeoutMs: 300 },
    ).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toMatchObject({ code: "SF_ERR_NO_AGENT_CAPACITY" });
    expect(copies.seen).toBeGreaterThan(1);
    expect(await dispatchBacklog(nc)).toBe(0);
    // Every attempt was the one trigger: one conversation, no turn.
    const conversations = await t.store.listConversations({ limit: 100 });
    expect(conversations).toHaveLength(1);
    expect(await t.store.listTranscripts(conversations[0]!.id)).toEqual([]);
    void h1;
  });

  it("failover - a job whose claim deadline falls while its owner is frozen is not withdrawn by the woken host: the successor's worker claim answers it once", async () => {
    // Slow server PINGs (as nats-server's defaults are): the frozen host's connection survives the
    // freeze, so on waking it could still reach SF_DISPATCH at once.
    await using server = await NatsTestServer.start({ extraConfig: `ping_interval: "60s"` });
    await using fixture = await startProviderFixture();
    // Host a alone owns every partition; its claim deadline (4 s) falls while it is frozen.
    await using a = await host(server, "a", { leaseTtlMs: 3000, claimTimeoutMs: 4000 });
    await using caller = await openCaller(server, "deadline");
    const { nc, t } = caller;
    const processes: TestProcess[] = [];
    try {
      await t.store.setProviderKey("groq", fixture.keys.groq);
      await waitFor(
        "host a to own every partition",
        async () => (await describeHost(nc, subjects, "a")).partitions.length === P || undefined,
        { timeoutMs: 20_000, intervalMs: 100 },
      );
      const message = `Who wrote Les Misérables? ${randomUUID()}`;
      // No worker yet: a publishes the job and waits for a claim; the caller's attempts go on.
      const pending = requestReply<TriggerReply>(
        nc,
        subjects.tenantOp(t.id, "trigger"),
        { agent_slug: "helper", mode: "text", user_id: USER, message, job_id: "deadline-1" },
        { tenant: t.id, timeoutMs: 120_000, attemptTimeoutMs: 1000 },
      ).then(
        (value) => ({ ok: true as const, value }),
        (reason: unknown) => ({ ok: false as const, reason }),
      );
      await waitFor("the job in SF_DISPATCH", async () => (await dispatchBacklog(nc)) === 1 || undefined, {
        timeoutMs: 20_000,
      });
      // The lease's revision before the freeze: every later owner's epoch (a create revision) is above it.
      const leases = await new Kvm(nc).open(subjects.buckets.leases);
      const frozenEpoch = (await leases.get(leaseKey(subjects.partitionOf(t.id))))?.revision;
      expect(frozenEpoch).toBeGreaterThan(0);
      a.signal("SIGSTOP");
      const frozenAt = performance.now();
      // The successor's own claim deadline is far away: only a's may fall during the test.
      const b = await host(server, "b", { leaseTtlMs: 3000, claimTimeoutMs: 120_000 });
      processes.push(b);
      await waitFor(
        "host b to own the tenant's partition",
        async () =>
          (await describeHost(nc, subjects, "b")).partitions.includes(subjects.partitionOf(t.id)) ||
          undefined,
        { timeoutMs: 20_000, intervalMs: 100 },
      );
      // a's claim timer (set when its publish was acknowledged, before the freeze) is due.
      await waitFor("host a's claim deadline to pass", () => performance.now() - frozenAt > 4000, {
        timeoutMs: 10_000,
        intervalMs: 50,
      });
      const decided = (l: string): boolean => /"job (not )?withdrawn/.test(l);
      const fromLine = a.lines.length;
      a.signal("SIGCONT");
      const decision = await waitFor(
        "the woken host to act on its claim deadline",
        () => a.lines.slice(fromLine).find(decided),
        { timeoutMs: 20_000, intervalMs: 50 },
      );
      expect(decision).toMatch(/job not withdrawn: this host no longer owns its tenant/);
      expect(a.lines.filter(decided)).toHaveLength(1);
      expect(await dispatchBacklog(nc), "the job still in SF_DISPATCH").toBe(1);

      // A worker arrives: it claims the job, and the caller is answered once, by an owner of a later
      // epoch (b, or a again once the partitions are balanced back to it: a new ownership either way).
      processes.push(await worker(server, fixture));
      const settled = await pending;
      if (!settled.ok) throw settled.reason;
      const reply = settled.value;
      expect(reply.epoch).toBeGreaterThan(frozenEpoch as number);
      expect(reply.body).toMatchObject({ worker_id: "w1", duplicate: true });
      expect(reply.body.result?.text).toBe(expectedReply(message));
      await expectOneTurn(t, message, reply.body.conversation_id, reply.body.job_id);
      expect(llmCallsFor(fixture, message)).toBe(1);
      expect(await t.store.listConversations({ limit: 100 })).toHaveLength(1);
      await waitFor("the job acknowledged", async () => (await dispatchBacklog(nc)) === 0 || undefined);
    } finally {
      a.signal("SIGCONT");
      for (const p of processes) await p.kill();
    }
  });

  it("failover - triggers in flight at a SIGSTOPped owner and after it are each answered once, by one job", async () => {
    await using server = await NatsTestServer.start();
    // Jobs take a while (first token after 200 ms, then 20 ms per token): some are running at the freeze.
    await using fixture = await startProviderFixture({ firstTokenDelayMs: 200, tokenDelayMs: 20 });
    await using a = await host(server, "a", { leaseTtlMs: 3000 });
    await using b = await host(server, "b", { leaseTtlMs: 3000 });
    await using w1 = await worker(server, fixture);
    await using caller = await openCaller(server, "failover");
    const { nc, t } = caller;
    let frozen: TestProcess | undefined;
    try {
      await t.store.setProviderKey("groq", fixture.keys.groq);
      const bus: ChatBus = {
        nc,
        subjects,
        triggerTimeoutMs: 30_000,
        replyTimeoutMs: 60_000,
        triggerAttemptMs: 1000,
        inbox: new ChatInbox({ nc, subjects }),
      };
      const owned = await waitBalanced(nc, subjects, ["a", "b"]);
      const partition = subjects.partitionOf(t.id);
      const ownerId = owned.get("a")?.includes(partition) === true ? "a" : "b";
      const successorId = ownerId === "a" ? "b" : "a";
      const owner = ownerId === "a" ? a : b;
      const messages: string[] = [];
      const waits: Array<{
        wave: string;
        ms: number;
        claim_ms: number;
        duplicate: boolean;
        recorded: boolean;
      }> = [];
      // Each turn settles into an outcome at once: none is left rejected while the test waits on others.
      const turn = (wave: string): Promise<PromiseSettledResult<Turned>> => {
        const message = `Question ${messages.length} of wave ${wave}: what is ${randomUUID()}?`;
        messages.push(message);
        const started = performance.now();
        return runTextTurn(bus, {
          tenant: t.id,
          ...pickSession(undefined),
          jobId: randomUUID(),
          body: { agent_slug: "helper", user_id: USER, message },
          traceId: randomUUID(),
          signal: new AbortController().signal,
        })
          .then((result) => {
            waits.push({
              wave,
              ms: Math.round(performance.now() - started),
              claim_ms: result.reply.claim_ms,
              duplicate: result.reply.duplicate,
              recorded: result.reply.result !== undefined,
            });
            return { ...result, message };
          })
          .then(
            (value): PromiseSettledResult<Turned> => ({ status: "fulfilled", value }),
            (reason: unknown): PromiseSettledResult<Turned> => ({ status: "rejected", reason }),
          );
      };

      // The owner has the tenant's actor active.
      expect((await turn("warm-up")).status).toBe("fulfilled");
      await waitFor(
        "the warm-up job acknowledged",
        async () => (await dispatchBacklog(nc)) === 0 || undefined,
      );
      // Wave 1: jobs the owner has published (the worker is paused, so none is claimed yet) when it
      // freezes; the worker then claims them, and the successor finds them by their ids.
      w1.signal("SIGSTOP");
      const wave1 = Array.from({ length: 4 }, () => turn("in-flight"));
      await waitFor(
        "the first wave's jobs in SF_DISPATCH",
        async () => (await dispatchBacklog(nc)) === 4 || undefined,
        {
          timeoutMs: 20_000,
        },
      );
      owner.signal("SIGSTOP");
      frozen = owner;
      w1.signal("SIGCONT");
      const frozenAt = performance.now();
      // Wave 2: sent to a frozen owner, before anyone took its partition over.
      const wave2 = Array.from({ length: 4 }, () => turn("frozen"));
      const takenOver = await waitFor(
        "the successor to own the tenant's partition",
        async () =>
          (await describeHost(nc, subjects, successorId)).partitions.includes(partition) || undefined,
        { timeoutMs: 20_000, intervalMs: 50 },
      );
      expect(takenOver).toBe(true);
      const takeoverMs = Math.round(performance.now() - frozenAt);
      // Wave 3: after the takeover, while the frozen host still holds its queue subscriptions.
      const wave3 = Array.from({ length: 4 }, () => turn("after-takeover"));
      const settled = await Promise.all([...wave1, ...wave2, ...wave3]);
      console.log(JSON.stringify({ test: "failover", owner: ownerId, takeover_ms: takeoverMs, waits }));
      const failures = settled.filter((s) => s.status === "rejected");
      expect(failures, "triggers that were not answered").toEqual([]);
      const results = settled.flatMap((s) => (s.status === "fulfilled" ? [s.value] : []));
      expect(new Set(results.map((r) => r.reply.job_id)).size).toBe(results.length);

      // The frozen host wakes up: it has lost its lease and must neither write nor answer.
      owner.signal("SIGCONT");
      frozen = undefined;
      await waitFor(
        "the woken host to know it lost the partition",
        async () => !(await describeHost(nc, subjects, ownerId)).partitions.includes(partition) || undefined,
        { timeoutMs: 20_000, intervalMs: 100 },
      );
      // Its worker-side leftovers settle: the stream holds no job still waiting.
      await waitFor(
        "no job left in SF_DISPATCH",
        async () => (await dispatchBacklog(nc)) === 0 || undefined,
        {
          timeoutMs: 20_000,
        },
      );

      for (const r of results) {
        expect(r.text, r.message).toBe(expectedReply(r.message));
        await expectOneTurn(t, r.message, r.conversationId, r.reply.job_id);
        expect(llmCallsFor(fixture, r.message), r.message).toBe(1);
      }
      // One conversation per trigger (and the warm-up's): no attempt started a second one.
      expect(await t.store.listConversations({ limit: 1000 })).toHaveLength(messages.length);
    } finally {
      frozen?.signal("SIGCONT");
      w1.signal("SIGCONT");
    }
  });
});
