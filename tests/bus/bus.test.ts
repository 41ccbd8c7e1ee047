import { connect } from "@nats-io/transport-node";
import type { Msg, NatsConnection } from "@nats-io/transport-node";
import { jetstreamManager } from "@nats-io/jetstream";
import { isNativeAccelerationEnabled } from "msgpackr";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  BusErrorCodes,
  createSubjects,
  decodeBody,
  encodeBody,
  encodeErrorReply,
  encodeOkReply,
  fnv1a32,
  provisionBus,
  readRequest,
  RemoteError,
  requestReply,
  SfError,
} from "../../bus/index.ts";
import { NatsTestServer } from "../helpers/nats_server.ts";

describe("bus - codec and subjects", () => {
  it("msgpackr runs with its native extension (npm allowed its install script)", () => {
    expect(isNativeAccelerationEnabled).toBe(true);
  });

  it("codec - bodies round-trip and garbage is SF_ERR_BAD_MESSAGE", () => {
    const value = { a: 1, b: "two", c: [true, null, 3.5], d: { e: "é✓" } };
    expect(decodeBody(encodeBody(value))).toEqual(value);
    expect([...(decodeBody(encodeBody(new Uint8Array([1, 2, 255]))) as Uint8Array)]).toEqual([1, 2, 255]);
    expect(() => decodeBody(new Uint8Array([0xc1]))).toThrowError(
      expect.objectContaining({ code: BusErrorCodes.BAD_MESSAGE }),
    );
  });

  it("fnv1a32 matches the published FNV-1a test vectors", () => {
    expect(fnv1a32("")).toBe(0x811c9dc5);
    expect(fnv1a32("a")).toBe(0xe40c292c);
    expect(fnv1a32("foobar")).toBe(0xbf9cf968);
  });

  it("subjects - one module builds every name, and rejects tokens that would break routing", () => {
    const s = createSubjects({ prefix: "sf", partitions: 256 });
    expect(s.tenantOp("acme", "incr")).toBe(`sf.t.${fnv1a32("acme") % 256}.acme.incr`);
    expect(s.dispatch("acme", "text")).toBe("sf.dispatch.acme.text");
    // One queue group per ownership (partition and lease epoch): owners never share one.
    expect(s.partitionQueue(7, 42)).toBe("sf-p7-e42");
    expect(s.partitionQueue(7, 43)).not.toBe(s.partitionQueue(7, 42));
    expect(s.jobEvent("acme", "j1", "claimed")).toBe("sf.job.acme.j1.claimed");
    expect(s.chatOut("sess-1")).toBe("sf.chat.sess-1.out");
    expect(s.chatVia("gw-1", "sess-1")).toBe("sf.chat.gw-1.sess-1.out");
    expect(s.chatInbox("gw-1")).toBe("sf.chat.gw-1.*.out");
    expect(() => s.chatVia("gw.1", "sess-1")).toThrowError(/inbox must be/);
    expect(() => s.chatInbox(">")).toThrowError(/inbox must be/);
    expect(s.clientEvent("acme", "credentials")).toBe("sf.evt.client.acme.credentials");
    expect(s.ingest("acme")).toBe("sf.ingest.acme");
    expect(() => s.ingest("a.b")).toThrowError(/tenant must be/);
    expect(s.streams).toEqual({ dispatch: "SF_DISPATCH", events: "SF_EVENTS", ingest: "SF_INGEST" });
    for (const bad of ["a.b", "*", ">", "a b", "", "x".repeat(129)]) {
      expect(() => s.tenantOp(bad, "get"), bad).toThrowError(
        expect.objectContaining({ code: BusErrorCodes.BAD_TENANT }),
      );
    }
    expect(() => createSubjects({ prefix: "Bad.Prefix" })).toThrowError(SfError);
  });
});

describe("bus - request/reply and provisioning against nats-server", () => {
  let server: NatsTestServer;
  let nc: NatsConnection;

  beforeAll(async () => {
    server = await NatsTestServer.start();
    nc = await connect({ servers: server.url });
  });

  afterAll(async () => {
    await nc?.close();
    await server?.[Symbol.asyncDispose]();
  });

  it("request - a remote error comes back typed with its code at once, never as a timeout", async () => {
    const sub = nc.subscribe("svc.fail", {
      callback: (_err, msg) => {
        const reply = encodeErrorReply({
          code: "SF_ERR_TEST",
          message: "nope",
          retryable: false,
          details: { x: 1 },
        });
        msg.respond(reply.data, { headers: reply.headers });
      },
    });
    const t0 = performance.now();
    const err = await requestReply(nc, "svc.fail", {}, { timeoutMs: 5000 }).catch((e: unknown) => e);
    expect(performance.now() - t0).toBeLessThan(4000);
    expect(err).toBeInstanceOf(RemoteError);
    expect(err).toMatchObject({ code: "SF_ERR_TEST", retryable: false, details: { x: 1 } });
    sub.unsubscribe();
  });

  it("request - no responders are retried until someone subscribes, within the deadline", async () => {
    let attemptsSeen = 0;
    const pending = requestReply<{ ok: boolean }>(
      nc,
      "svc.late",
      { q: 1 },
      { timeoutMs: 10_000, tenant: "t1" },
    );
    // The first attempt reaches the server (and is refused) before anyone subscribes.
    await nc.flush();
    await nc.flush();
    const sub = nc.subscribe("svc.late", {
      callback: (_e, msg) => {
        attemptsSeen += 1;
        const { meta } = readRequest(msg);
        const reply = encodeOkReply({ ok: meta.tenant === "t1" });
        msg.respond(reply.data, { headers: reply.headers });
      },
    });
    const result = await pending;
    expect(result.body).toEqual({ ok: true });
    expect(result.attempts).toBeGreaterThan(1);
    expect(attemptsSeen).toBe(1);
    sub.unsubscribe();
  });

  it("request - an answer to an attempt the caller already sent again still counts", async () => {
    // A responder slower than one attempt: it answers the first message only once the caller has
    // given up on it and sent the next. Before, each attempt had its own reply subject and that
    // answer was dropped; a turn slower than an attempt never got through before the deadline.
    const seen: Array<{ reply: string; requestId: string }> = [];
    let first: Msg | undefined;
    const sub = nc.subscribe("svc.slow", {
      callback: (_e, msg) => {
        seen.push({ reply: msg.reply ?? "", requestId: readRequest(msg).meta.requestId });
        if (seen.length === 1) {
          first = msg;
          return;
        }
        if (seen.length === 2 && first !== undefined) {
          const reply = encodeOkReply({ answered: 1 });
          first.respond(reply.data, { headers: reply.headers });
        }
      },
    });
    const result = await requestReply<{ answered: number }>(
      nc,
      "svc.slow",
      {},
      { timeoutMs: 10_000, attemptTimeoutMs: 100 },
    );
    sub.unsubscribe();
    expect(result.body).toEqual({ answered: 1 });
    expect(result.attempts).toBeGreaterThanOrEqual(2);
    // One request: one id, and reply subjects that differ only by the attempt.
    expect(new Set(seen.map((s) => s.requestId)).size).toBe(1);
    expect(new Set(seen.map((s) => s.reply.replace(/_\d+$/, ""))).size).toBe(1);
    expect(seen.slice(0, 2).map((s) => s.reply.slice(s.reply.lastIndexOf("_") + 1))).toEqual(["1", "2"]);
  });

  it("request - nobody ever answering ends in SF_ERR_NO_RESPONDERS at the deadline", async () => {
    const t0 = performance.now();
    await expect(requestReply(nc, "svc.nobody", {}, { timeoutMs: 400 })).rejects.toMatchObject({
      code: BusErrorCodes.NO_RESPONDERS,
    });
    expect(performance.now() - t0).toBeGreaterThanOrEqual(390);
  });

  it("request - a silent responder ends in SF_ERR_TIMEOUT at the deadline", async () => {
    const sub = nc.subscribe("svc.silent", { callback: () => undefined });
    await expect(requestReply(nc, "svc.silent", {}, { timeoutMs: 300 })).rejects.toMatchObject({
      code: BusErrorCodes.TIMEOUT,
    });
    sub.unsubscribe();
  });

  it("provisioning - idempotent: a second run changes nothing and a changed TTL is applied", async () => {
    const subjects = createSubjects({ prefix: "prov" });
    await provisionBus(nc, subjects, { leaseTtlMs: 3000 });
    const jsm = await jetstreamManager(nc);
    const before = await jsm.streams.info("PROV_DISPATCH");
    await provisionBus(nc, subjects, { leaseTtlMs: 3000 });
    const after = await jsm.streams.info("PROV_DISPATCH");
    expect(after.created).toBe(before.created);
    expect(after.config.retention).toBe("workqueue");
    expect(after.config.duplicate_window).toBe(120_000_000_000);
    const { leases } = await provisionBus(nc, subjects, { leaseTtlMs: 4000 });
    expect((await leases.status()).ttl).toBe(4000);
    const members = await jsm.streams.info("KV_prov_members");
    expect(members.config.max_age).toBe(2000 * 1_000_000);
    // A shorter TTL than the bucket was created with (its duplicate window shrinks along).
    const shorter = await provisionBus(nc, subjects, { leaseTtlMs: 1000 });
    expect((await shorter.leases.status()).ttl).toBe(1000);
    expect((await jsm.streams.info("KV_prov_members")).config.max_age).toBe(500 * 1_000_000);
    // Events are bounded in bytes (a full store would refuse every write), and a new bound applies.
    expect((await jsm.streams.info("PROV_EVENTS")).config.max_bytes).toBe(1024 * 1024 * 1024);
    await provisionBus(nc, subjects, { leaseTtlMs: 1000, eventsMaxBytes: 64 * 1024 * 1024 });
    expect((await jsm.streams.info("PROV_EVENTS")).config.max_bytes).toBe(64 * 1024 * 1024);
  });
});
