import { connect, headers } from "@nats-io/transport-node";
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
