import { connect, headers } from "@nats-io/transport-node";
import { Svcm } from "@nats-io/services";
import type { NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  BusErrorCodes,
  createSubjects,
  encodeBody,
  ENVELOPE_VERSION,
  Headers,
  partitionOf,
  readReply,
  RemoteError,
  requestReply,
} from "../../bus/index.ts";
import type { CounterReply } from "../../actors/index.ts";
import { waitFor } from "../helpers/deadline.ts";
import { describeHost } from "../helpers/hosts.ts";
import { NatsTestServer } from "../helpers/nats_server.ts";
import { spawnActorHost } from "../helpers/processes.ts";
import type { TestProcess } from "../helpers/processes.ts";
import { tenantClient } from "../helpers/tenant_client.ts";

const PARTITIONS = 64;
const subjects = createSubjects({ partitions: PARTITIONS });

describe("actor runtime - one host", () => {
  let server: NatsTestServer;
  let host: TestProcess;
  let nc: NatsConnection;

  beforeAll(async () => {
    server = await NatsTestServer.start({
      // The server's own partition() mapping, to check our hash against it.
      extraConfig: `mappings = { "hashcheck.*": "hashed.{{partition(${PARTITIONS},1)}}.{{wildcard(1)}}" }`,
    });
    host = await spawnActorHost({ natsUrl: server.url, hostId: "h1", partitions: PARTITIONS });
    nc = await connect({ servers: server.url });
  });

  afterAll(async () => {
    await nc?.close();
    await host?.stop();
    await server?.[Symbol.asyncDispose]();
  });

  it("partition hash - FNV-1a 32 mod P equals nats-server's partition() mapping", async () => {
    const tenants = Array.from({ length: 200 }, (_, i) => `tenant-${i}-${(i * 7919).toString(36)}`);
    const seen = new Map<string, number>();
    const sub = nc.subscribe("hashed.>", {
      callback: (_err, msg) => {
        const [, p, tenant] = msg.subject.split(".");
        seen.set(String(tenant), Number(p));
      },
    });
    for (const t of tenants) nc.publish(`hashcheck.${t}`);
    await nc.flush();
    const until = Date.now() + 5000;
    while (seen.size < tenants.length && Date.now() < until) await nc.flush();
    sub.unsubscribe();
    expect(seen.size).toBe(tenants.length);
    for (const t of tenants) expect(seen.get(t), t).toBe(partitionOf(t, PARTITIONS));
  });

  it("turns - 1,000 concurrent increments to one tenant end at exactly 1,000", async () => {
    const client = tenantClient(nc, subjects);
    const replies = await Promise.all(Array.from({ length: 1000 }, () => client.increment("acme")));
    const counts = replies.map((r) => r.body.count).sort((a, b) => a - b);
    // Turn-based: every increment saw a distinct count, 1..1000.
    expect(counts).toEqual(Array.from({ length: 1000 }, (_, i) => i + 1));
    const final = await client.get("acme");
    expect(final.body.count).toBe(1000);
    expect(final.body.host).toBe("h1");
  });

  it("idempotency - a request id retried after its reply is applied once", async () => {
    const client = tenantClient(nc, subjects);
    const before = (await client.get("idem")).body.count;
    const first = await client.increment("idem", { requestId: "req-fixed-1" });
    const again = await client.increment("idem", { requestId: "req-fixed-1" });
    expect(first.body.count).toBe(before + 1);
    expect(again.body.count).toBe(before + 1);
  });

  describe("bad input on the bus gets a typed error and the actor keeps serving", () => {
    const rawRequest = async (subject: string, data: Uint8Array, hdrs?: ReturnType<typeof headers>) => {
      const msg = await nc.request(subject, data, { timeout: 5000, ...(hdrs ? { headers: hdrs } : {}) });
      return readReply(msg);
    };
    const envelope = (tenant: string) => {
      const h = headers();
      h.set(Headers.version, ENVELOPE_VERSION);
      h.set(Headers.tenant, tenant);
      h.set(Headers.trace, "t1");
      h.set(Headers.deadline, String(Date.now() + 5000));
      h.set(Headers.requestId, "r1");
      return h;
    };

    it("an undecodable payload answers SF_ERR_BAD_MESSAGE", async () => {
      const reply = await rawRequest(
        subjects.tenantOp("acme", "incr"),
        new Uint8Array([0xc1, 0xc1, 0xff]),
        envelope("acme"),
      );
      expect(reply.type).toBe("error");
      expect(reply.type === "error" && reply.error.code).toBe(BusErrorCodes.BAD_MESSAGE);
    });

    it("a message without our envelope answers SF_ERR_BAD_MESSAGE", async () => {
      const reply = await rawRequest(subjects.tenantOp("acme", "get"), encodeBody({}));
      expect(reply.type === "error" && reply.error.code).toBe(BusErrorCodes.BAD_MESSAGE);
    });

    it("an unknown op answers SF_ERR_UNKNOWN_OP", async () => {
      await expect(
        requestReply(nc, subjects.tenantOp("acme", "explode"), {}, { tenant: "acme" }),
      ).rejects.toMatchObject({
        code: BusErrorCodes.UNKNOWN_OP,
      });
    });

    it("an invalid body answers SF_ERR_INVALID_ARGUMENT as a RemoteError, not a timeout", async () => {
      const err = await requestReply(
        nc,
        subjects.tenantOp("acme", "incr"),
        { by: "lots" },
        { tenant: "acme" },
      ).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(RemoteError);
      expect((err as RemoteError).code).toBe("SF_ERR_INVALID_ARGUMENT");
    });

    it("a tenant header that differs from the subject, or a tenant in the wrong partition, answers SF_ERR_BAD_TENANT", async () => {
      const mismatch = await rawRequest(subjects.tenantOp("acme", "get"), encodeBody({}), envelope("other"));
      expect(mismatch.type === "error" && mismatch.error.code).toBe(BusErrorCodes.BAD_TENANT);
      const p = partitionOf("acme", PARTITIONS);
      const wrong = `sf.t.${(p + 1) % PARTITIONS}.acme.get`;
      const misrouted = await rawRequest(wrong, encodeBody({}), envelope("acme"));
      expect(misrouted.type === "error" && misrouted.error.code).toBe(BusErrorCodes.BAD_TENANT);
    });

    it("a missing or malformed tenant is refused before it is sent", () => {
      expect(() => subjects.tenantOp("", "get")).toThrowError(
        expect.objectContaining({ code: BusErrorCodes.BAD_TENANT }),
      );
      expect(() => subjects.tenantOp("a.b", "get")).toThrowError(
        expect.objectContaining({ code: BusErrorCodes.BAD_TENANT }),
      );
    });

    it("after all that the actor still counts", async () => {
      const client = tenantClient(nc, subjects);
      expect((await client.get("acme")).body.count).toBe(1000);
      expect((await client.increment("acme")).body.count).toBe(1001);
    });
  });

  it("services - $SRV.PING, INFO and STATS show the host and the partitions it owns", async () => {
    const client = new Svcm(nc).client({ strategy: "stall", stall: 300, maxWait: 3000 });
    const pings = [];
    for await (const p of await client.ping("sf-actor-host")) pings.push(p);
    expect(pings.map((p) => p.metadata?.["host"])).toContain("h1");
    const infos = [];
    for await (const i of await client.info("sf-actor-host")) infos.push(i);
    const info = infos.find((i) => i.metadata?.["host"] === "h1");
    expect(info?.endpoints.map((e) => e.subject)).toContain("sf.host.h1.partitions");
    const stats = [];
    for await (const s of await client.stats("sf-actor-host")) stats.push(s);
    const mine = stats.find((s) => s.metadata?.["host"] === "h1");
    const data = mine?.endpoints?.[0]?.data as { host: string; partitions: number[] } | undefined;
    expect(data?.host).toBe("h1");
    expect(data?.partitions).toEqual(Array.from({ length: PARTITIONS }, (_, i) => i));
  });

  it("metrics - the host exports actor, turn, mailbox and lease metrics on its own port", async () => {
    const ready = JSON.parse(await host.waitForLine("actor host ready")) as { metricsPort: number };
    const text = await (await fetch(`http://127.0.0.1:${ready.metricsPort}/metrics`)).text();
    const value = (series: string) => {
      const line = text.split("\n").find((l) => l.startsWith(`${series} `));
      return line === undefined ? undefined : Number(line.slice(series.length + 1));
    };
    expect(value('sf_actor_turns_total{outcome="ok"}')).toBeGreaterThanOrEqual(1000);
    expect(value("sf_actor_active")).toBeGreaterThanOrEqual(1);
    expect(value("sf_actor_mailbox_depth")).toBe(0);
    expect(value('sf_lease_changes_total{change="acquired"}')).toBe(PARTITIONS);
    expect(value("sf_lease_partitions_owned")).toBe(PARTITIONS);
    expect(value("sf_actor_turn_duration_seconds_count")).toBeGreaterThanOrEqual(1000);
  });

  it("passivation - an idle actor is passivated and its state survives reactivation", async () => {
    await using idle = await spawnActorHost({
      natsUrl: server.url,
      hostId: "idle",
      prefix: "pas",
      partitions: 4,
      idlePassivateMs: 1000,
    });
    const pas = createSubjects({ prefix: "pas", partitions: 4 });
    const client = tenantClient(nc, pas);
    for (let i = 0; i < 3; i++) await client.increment("sleepy");
    const first = await client.get("sleepy");
    expect((await describeHost(nc, pas, "idle")).actors).toBe(1);
    await waitFor(
      "the idle actor to passivate",
      async () => (await describeHost(nc, pas, "idle")).actors === 0,
      {
        timeoutMs: 10_000,
        intervalMs: 100,
      },
    );
    const again = await client.get("sleepy");
    expect(again.body.count).toBe(3);
    expect(again.body.activatedAt).toBeGreaterThan(first.body.activatedAt);
    void idle;
  });

  it("overload - repeats of one request (a caller's next attempts) wait for its answer without taking mailbox slots", async () => {
    await using small = await spawnActorHost({
      natsUrl: server.url,
      hostId: "small-repeats",
      // The overload test's prefix: each prefix reserves its streams' storage on the server.
      prefix: "ovl",
      partitions: 4,
      mailboxCapacity: 4,
    });
    const rpt = createSubjects({
      // The overload test's prefix: each prefix reserves its streams' storage on the server.
      prefix: "ovl",
      partitions: 4,
    });
    const before = await requestReply<CounterReply>(
      nc,
      rpt.tenantOp("repeats", "get"),
      {},
      { tenant: "repeats" },
    );
    // 50 copies of one request, as 50 attempts of a caller would send them: one turn runs, the rest
    // join it. Each copy that took a slot of its own would overflow the 4-slot mailbox.
    const results = await Promise.allSettled(
      Array.from({ length: 50 }, () =>
        requestReply<CounterReply>(
          nc,
          rpt.tenantOp("repeats", "incr"),
          { by: 1 },
          { tenant: "repeats", timeoutMs: 15_000, retryCodes: [], requestId: "one-request" },
        ),
      ),
    );
    const failures = results.filter((r) => r.status === "rejected").map((r) => (r.reason as Error).message);
    expect(failures).toEqual([]);
    const counts = results.map((r) => (r.status === "fulfilled" ? r.value.body.count : -1));
    expect(new Set(counts)).toEqual(new Set([before.body.count + 1]));
    const after = await requestReply<CounterReply>(
      nc,
      rpt.tenantOp("repeats", "get"),
      {},
      { tenant: "repeats" },
    );
    expect(after.body.count).toBe(before.body.count + 1);
    void small;
  });

  it("overload - a full mailbox answers SF_ERR_OVERLOADED at once", async () => {
    await using small = await spawnActorHost({
      natsUrl: server.url,
      hostId: "small",
      prefix: "ovl",
      partitions: 4,
      mailboxCapacity: 4,
    });
    const ovl = createSubjects({ prefix: "ovl", partitions: 4 });
    await requestReply(nc, ovl.tenantOp("busy", "get"), {}, { tenant: "busy", timeoutMs: 15_000 });
    const results = await Promise.allSettled(
      Array.from({ length: 200 }, () =>
        requestReply(
          nc,
          ovl.tenantOp("busy", "incr"),
          {},
          { tenant: "busy", timeoutMs: 15_000, retryCodes: [] },
        ),
      ),
    );
    const codes = results.map((r) => (r.status === "fulfilled" ? "ok" : (r.reason as RemoteError).code));
    expect(codes).toContain(BusErrorCodes.OVERLOADED);
    expect(codes).toContain("ok");
    expect(codes.every((c) => c === "ok" || c === BusErrorCodes.OVERLOADED)).toBe(true);
    void small;
  });
});
