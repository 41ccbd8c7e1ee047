import { connect } from "@nats-io/transport-node";
import type { Msg, NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createSubjects, encodeOkReply } from "../../bus/index.ts";
import { createGateway, GatewayErrorCodes, parseGatewayConfig } from "../../gateway/index.ts";
import type { DetailedHealth, OpenApiDocument } from "../../gateway/index.ts";
import { waitFor } from "../helpers/deadline.ts";
import { describeHost } from "../helpers/hosts.ts";
import { NatsTestServer } from "../helpers/nats_server.ts";
import { spawnActorHost } from "../helpers/processes.ts";
import type { TestProcess } from "../helpers/processes.ts";
import { silentLog } from "./app_fixture.ts";
import type { Envelope } from "./app_fixture.ts";
import { spawnGateway } from "../helpers/gateway_process.ts";
import type { GatewayProcess } from "../helpers/gateway_process.ts";
import { openSocket, rawRequest, sendAndVanish } from "./raw_http.ts";

const PARTITIONS = 64;
const ORIGIN = "https://app.example";

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

async function metricValue(base: string, series: string): Promise<number | undefined> {
  const text = await (await fetch(`${base}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe("gateway process - with a real actor host", () => {
  let host: TestProcess;
  let gw: GatewayProcess;

  beforeAll(async () => {
    host = await spawnActorHost({ natsUrl: server.url, hostId: "gw-h1", partitions: PARTITIONS });
    gw = await spawnGateway({
      natsUrl: server.url,
      partitions: PARTITIONS,
      maxBodyBytes: 4096,
      corsOrigins: ORIGIN,
    });
  });

  afterAll(async () => {
    await gw?.proc.stop();
    await host?.stop();
  });

  it("GET / - answers 200 naming the service and linking health and openapi", async () => {
    const res = await fetch(`${gw.base}/`);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({
      service: "sidekick-forge",
      links: { health: "/health", health_detailed: "/health/detailed", openapi: "/openapi.json" },
    });
  });

  it("GET /health - exactly status, service and an ISO timestamp", async () => {
    const before = Date.now();
    const res = await fetch(`${gw.base}/health`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^application\/json/);
    const body = (await res.json()) as Record<string, unknown>;
    expect(Object.keys(body).sort()).toEqual(["service", "status", "timestamp"]);
    expect(body).toMatchObject({ status: "healthy", service: "sidekick-forge" });
    const at = Date.parse(String(body["timestamp"]));
    expect(new Date(at).toISOString()).toBe(body["timestamp"]);
    expect(at).toBeGreaterThanOrEqual(before - 1000);
    expect(at).toBeLessThanOrEqual(Date.now() + 1000);
  });

  it("GET /health/detailed - lists the host and its partitions, the host's platform db check; degraded while no worker runs", async () => {
    const subjects = createSubjects({ partitions: PARTITIONS });
    await waitFor("the host to own every partition", async () =>
      (await describeHost(nc, subjects, "gw-h1")).partitions.length === PARTITIONS ? true : undefined,
    );
    const res = await fetch(`${gw.base}/health/detailed`);
    expect(res.status).toBe(200);
    const body = (await res.json()) as DetailedHealth;
    expect(body.status).toBe("degraded");
    const { nats, jetstream, actor_hosts, workers, platform_db } = body.checks;
    expect(nats.ok).toBe(true);
    expect(nats.latency_ms).toBeGreaterThanOrEqual(0);
    expect(jetstream).toMatchObject({ ok: true, streams: { SF_DISPATCH: true, SF_EVENTS: true } });
    expect(actor_hosts).toMatchObject({ ok: true, count: 1 });
    expect(actor_hosts.hosts).toEqual([
      { id: "gw-h1", partitions: Array.from({ length: PARTITIONS }, (_, i) => i) },
    ]);
    expect(workers).toMatchObject({ ok: false, count: 0 });
    // The actor host answers platform health from its platform database.
    expect(platform_db.ok).toBe(true);
    expect(platform_db.error).toBeUndefined();
  });

  it("GET /metrics - Prometheus text with the gateway's metric names after a few requests", async () => {
    for (let i = 0; i < 3; i += 1) await fetch(`${gw.base}/health`);
    await fetch(`${gw.base}/no/such/route`);
    const res = await fetch(`${gw.base}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^text\/plain/);
    const text = await res.text();
    for (const name of [
      "sf_gateway_http_requests_total",
      "sf_gateway_http_request_duration_seconds_bucket",
      "sf_gateway_ws_connections",
      "sf_gateway_nats_rtt_seconds_count",
      // prom-client keeps its own "process_" and "nodejs_" prefixes after ours, as on the actor hosts.
      "sf_process_cpu_user_seconds_total",
      "sf_nodejs_eventloop_lag_seconds",
    ]) {
      expect(text, name).toContain(name);
    }
    const health = /sf_gateway_http_requests_total\{route="\/health",method="GET",status="200"\} (\d+)/.exec(
      text,
    );
    expect(Number(health?.[1])).toBeGreaterThanOrEqual(3);
    expect(text).toContain('route="unmatched",method="GET",status="404"');
    expect(text).not.toContain("/no/such/route");
    // /health/detailed ran at least once in this suite, and it measures the NATS round trip.
    expect(Number(/sf_gateway_nats_rtt_seconds_count (\d+)/.exec(text)?.[1])).toBeGreaterThanOrEqual(1);
  });

  it("GET /openapi.json - every route of the router is a documented path, and nothing else is", async () => {
    const res = await fetch(`${gw.base}/openapi.json`);
    expect(res.status).toBe(200);
    const doc = (await res.json()) as OpenApiDocument;
    expect(doc.openapi).toBe("3.1.0");
    const documented = Object.entries(doc.paths).flatMap(([path, item]) =>
      Object.keys(item).map((method) => `${method.toUpperCase()} ${path}`),
    );
    // The same route table the process builds, built here in-process.
    const table = createGateway({ nc, config: parseGatewayConfig({}), log: silentLog })
      .router.routes()
      .map((r) => `${r.method} ${r.path}`);
    expect(table.length).toBeGreaterThanOrEqual(5);
    expect([...documented].sort()).toEqual([...table].sort());
    for (const path of ["/", "/health", "/health/detailed", "/metrics", "/openapi.json"]) {
      const op = doc.paths[path]?.["get"] as { summary?: unknown; responses?: unknown } | undefined;
      expect(typeof op?.summary, path).toBe("string");
      expect(op?.responses, path).toHaveProperty("200");
    }
  });

  it("errors - 404 and 405 answer the error envelope", async () => {
    const missing = await fetch(`${gw.base}/api/v9/nothing`);
    expect(missing.status).toBe(404);
    expect(((await missing.json()) as Envelope).error.code).toBe(GatewayErrorCodes.NOT_FOUND);
    const wrong = await fetch(`${gw.base}/health`, { method: "DELETE" });
    expect(wrong.status).toBe(405);
    expect(wrong.headers.get("allow")).toBe("GET, HEAD");
    expect(((await wrong.json()) as Envelope).error.code).toBe(GatewayErrorCodes.METHOD_NOT_ALLOWED);
  });

  it("limits - an oversized body answers 413 SF_ERR_PAYLOAD_TOO_LARGE", async () => {
    const res = await rawRequest(gw.port, [
      "POST /health HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{",
    ]);
    expect(res.status).toBe(413);
    const env = JSON.parse(res.body) as Envelope;
    expect(env.error.code).toBe(GatewayErrorCodes.PAYLOAD_TOO_LARGE);
    expect(env.error.details["limit_bytes"]).toBe(4096);
  });

  it("aborts - a client that sends half a body and closes is counted; the gateway keeps serving", async () => {
    const before = (await metricValue(gw.base, "sf_gateway_http_requests_aborted_total")) ?? 0;
    await sendAndVanish(gw.port, 'POST /health HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\n{"half":');
    await waitFor("the abort to be counted", async () =>
      ((await metricValue(gw.base, "sf_gateway_http_requests_aborted_total")) ?? 0) > before
        ? true
        : undefined,
    );
    expect(gw.proc.running).toBe(true);
    expect((await fetch(`${gw.base}/health`)).status).toBe(200);
  });

  it("cors - a preflight from the configured origin is answered on the real socket", async () => {
    const res = await fetch(`${gw.base}/health`, {
      method: "OPTIONS",
      headers: { origin: ORIGIN, "access-control-request-method": "GET" },
    });
    expect(res.status).toBe(204);
    expect(res.headers.get("access-control-allow-origin")).toBe(ORIGIN);
    const denied = await fetch(`${gw.base}/health`, {
      method: "OPTIONS",
      headers: { origin: "https://other.example", "access-control-request-method": "GET" },
    });
    expect(denied.status).toBe(403);
  });
});

describe("gateway process - graceful SIGTERM", () => {
  it("shutdown - stops accepting at once, finishes the in-flight request, drains NATS and exits 0", async () => {
    // A prefix of its own: the platform health request reaches only this test's responder.
    const prefix = "sfg";
    const subjects = createSubjects({ prefix, partitions: PARTITIONS });
    const held: Msg[] = [];
    const sub = nc.subscribe(subjects.platformOp("health"), {
      callback: (_err, msg) => {
        held.push(msg);
      },
    });
    await nc.flush();
    const gw = await spawnGateway({
      natsUrl: server.url,
      prefix,
      partitions: PARTITIONS,
      shutdownGraceMs: 10_000,
    });
    try {
      const inFlight = fetch(`${gw.base}/health/detailed`);
      const request = await waitFor("the gateway to ask for platform health", () => held[0]);
      gw.proc.signal("SIGTERM");
      await gw.proc.waitForLine("gateway stopping", 5000);
      await waitFor("the listen socket to close", async () => {
        const refused = await openSocket(gw.port).then(
          (socket) => {
            socket.destroy();
            return false;
          },
          (err: NodeJS.ErrnoException) => err.code === "ECONNREFUSED",
        );
        return refused ? true : undefined;
      });
      expect(gw.proc.running).toBe(true);
      const reply = encodeOkReply({ platform_db: { ok: true, latency_ms: 1.25 } });
      request.respond(reply.data, { headers: reply.headers });
      const res = await inFlight;
      expect(res.status).toBe(200);
      const body = (await res.json()) as DetailedHealth;
      expect(body.checks.platform_db).toEqual({ ok: true, latency_ms: 1.25 });
      expect(await gw.proc.exited).toBe(0);
      expect(gw.proc.lines.some((l) => l.includes('"gateway stopped"') && l.includes('"abandoned":0'))).toBe(
        true,
      );
    } finally {
      sub.unsubscribe();
      await gw.proc.kill();
    }
  });
});
