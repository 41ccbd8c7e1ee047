import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GatewayErrorCodes, json, startUwsServer } from "../../gateway/index.ts";
import type { GatewayApp, GatewayRequest, RouteDefinition, UwsServer } from "../../gateway/index.ts";
import { waitFor } from "../helpers/deadline.ts";
import { silentLog, testApp } from "./app_fixture.ts";
import type { Envelope } from "./app_fixture.ts";
import { openSocket, RawConnection, rawRequest, sendAndVanish } from "./raw_http.ts";

/** A route that waits until the test opens its gate, so a request can be held in flight. */
function gatedRoute() {
  let open: () => void = () => undefined;
  const gate = new Promise<void>((resolve) => {
    open = resolve;
  });
  const seen: GatewayRequest[] = [];
  const finished: GatewayRequest[] = [];
  const route: RouteDefinition = {
    method: "GET",
    path: "/slow",
    operationId: "slow",
    summary: "waits for the test",
    responses: { 200: { description: "ok" } },
    handler: async (req) => {
      seen.push(req);
      await gate;
      finished.push(req);
      return json(200, { waited: true, aborted: req.signal.aborted });
    },
  };
  return { route, open: () => open(), seen, finished };
}

/** An instant route (like GET /health) that counts which way each answer was built. */
function instantRoute() {
  const calls = { instant: 0, handler: 0 };
  const answer = () => json(200, { live: true });
  const route: RouteDefinition = {
    method: "GET",
    path: "/live",
    operationId: "live",
    summary: "answers at once",
    responses: { 200: { description: "ok" } },
    handler: () => {
      calls.handler += 1;
      return Promise.resolve(answer());
    },
    instant: () => {
      calls.instant += 1;
      return answer();
    },
  };
  return { route, calls };
}

const LIMIT = 256;

describe("uWS shell - real sockets, in-process app", () => {
  let app: GatewayApp;
  let server: UwsServer;
  let base: string;
  const slow = gatedRoute();
  const live = instantRoute();

  beforeAll(async () => {
    app = testApp({ maxBodyBytes: LIMIT, extra: [slow.route, live.route] }).app;
    server = await startUwsServer({ app, log: silentLog, port: 0 });
    base = `http://127.0.0.1:${server.port}`;
  });

  afterAll(async () => {
    slow.open();
    await server?.stop(1000);
  });

  it("shell - headers, query and a JSON body reach the handler", async () => {
    const res = await fetch(`${base}/items?limit=7`, { headers: { "x-request-id": "req-1" } });
    expect(res.status).toBe(200);
    expect(res.headers.get("x-request-id")).toBe("req-1");
    expect(await res.json()).toMatchObject({ route: "/items", query: { limit: "7" } });
    const post = await fetch(`${base}/items`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ name: "widget", size: 2 }),
    });
    expect(post.status).toBe(200);
    expect(await post.json()).toMatchObject({ body: { name: "widget", size: 2 } });
  });

  it("shell - a chunked body sent in pieces is reassembled", async () => {
    const res = await rawRequest(server.port, [
      "POST /items HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
      '7\r\n{"name"\r\n',
      '8\r\n:"chunk"\r\n',
      "1\r\n}\r\n0\r\n\r\n",
    ]);
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body)).toMatchObject({ body: { name: "chunk" } });
  });

  it("shell - bad JSON answers 400 SF_ERR_BAD_JSON", async () => {
    const res = await fetch(`${base}/items`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: '{"name":',
    });
    expect(res.status).toBe(400);
    expect(((await res.json()) as Envelope).error.code).toBe(GatewayErrorCodes.BAD_JSON);
  });

  it("shell - a declared Content-Length over the limit answers 413 at once and closes the connection", async () => {
    const res = await rawRequest(server.port, [
      `POST /items HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: ${LIMIT * 100}\r\n\r\n{"na`,
    ]);
    expect(res.status).toBe(413);
    expect((JSON.parse(res.body) as Envelope).error.code).toBe(GatewayErrorCodes.PAYLOAD_TOO_LARGE);
    expect(res.closed).toBe(true);
  });

  it("shell - a chunked body that grows past the limit answers 413", async () => {
    const big = "x".repeat(LIMIT + 10);
    const res = await rawRequest(server.port, [
      "POST /items HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
      `${big.length.toString(16)}\r\n${big}\r\n`,
    ]);
    expect(res.status).toBe(413);
    expect((JSON.parse(res.body) as Envelope).error.code).toBe(GatewayErrorCodes.PAYLOAD_TOO_LARGE);
  });

  it("shell - a client that sends half a body and leaves is counted as aborted; the server keeps serving", async () => {
    const before = (await app.metrics.aborted.get()).values[0]?.value ?? 0;
    await sendAndVanish(
      server.port,
      'POST /items HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"name":"ha',
    );
    await waitFor(
      "the abort to be counted",
      async () => ((await app.metrics.aborted.get()).values[0]?.value ?? 0) > before,
    );
    const res = await fetch(`${base}/items/after-abort`);
    expect(res.status).toBe(200);
  });

  it("shell - a client that leaves while its handler runs: the handler sees the abort and its late reply is dropped", async () => {
    const before = (await app.metrics.aborted.get()).values[0]?.value ?? 0;
    await sendAndVanish(server.port, "GET /slow HTTP/1.1\r\nHost: t\r\n\r\n");
    const req = await waitFor("the slow handler to start", () => slow.seen[0]);
    await waitFor("the handler's signal to abort", () => req.signal.aborted);
    expect(((await app.metrics.aborted.get()).values[0]?.value ?? 0) - before).toBe(1);
    slow.open();
    await waitFor("the slow handler to finish", () => slow.finished.length === 1);
    // Writing to the aborted response would have thrown inside uWS; the server still answers.
    const res = await fetch(`${base}/items/still-alive`);
    expect(res.status).toBe(200);
  });

  it("shell - a plain GET of an instant route is answered without the pipeline, with its body, headers and metrics", async () => {
    const counted = async (): Promise<number> =>
      (await app.metrics.http.requests.get()).values.find(
        (v) => v.labels["route"] === "/live" && v.labels["method"] === "GET" && v.labels["status"] === "200",
      )?.value ?? 0;
    const before = await counted();
    const fast = await rawRequest(server.port, [
      "GET /live HTTP/1.1\r\nHost: t\r\nX-Request-Id: live-1\r\n\r\n",
    ]);
    expect(live.calls).toEqual({ instant: 1, handler: 0 });
    // A query string goes through the pipeline, which answers the same.
    const piped = await rawRequest(server.port, [
      "GET /live?x=1 HTTP/1.1\r\nHost: t\r\nX-Request-Id: live-2\r\n\r\n",
    ]);
    expect(live.calls).toEqual({ instant: 1, handler: 1 });
    for (const [res, id] of [
      [fast, "live-1"],
      [piped, "live-2"],
    ] as const) {
      expect(res.status).toBe(200);
      expect(JSON.parse(res.body)).toEqual({ live: true });
      expect(res.headers["x-request-id"]).toBe(id);
      expect(res.headers["content-type"]).toBe("application/json; charset=utf-8");
    }
    const names = (h: Record<string, string>) => Object.keys(h).sort();
    expect(names(fast.headers)).toEqual(names(piped.headers));
    expect((await counted()) - before).toBe(2);
    // Without a sane x-request-id the instant answer makes one up, as the pipeline does.
    const noId = await fetch(`${base}/live`);
    expect(noId.headers.get("x-request-id")).toMatch(/^[0-9a-f-]{36}$/);
    expect(live.calls.instant).toBe(2);
  });

  it("shell - an instant route's GET with an Origin or a body, or its HEAD, goes through the pipeline", async () => {
    const start = { ...live.calls };
    const cors = await fetch(`${base}/live`, { headers: { origin: "https://allowed.example" } });
    expect(cors.status).toBe(200);
    expect(cors.headers.get("access-control-allow-origin")).toBe("https://allowed.example");
    const withBody = await rawRequest(server.port, [
      "GET /live HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\n{}",
    ]);
    expect(withBody.status).toBe(200);
    const head = await rawRequest(server.port, ["HEAD /live HTTP/1.1\r\nHost: t\r\n\r\n"], { head: true });
    expect(head.status).toBe(200);
    expect(head.body).toBe("");
    expect(live.calls).toEqual({ instant: start.instant, handler: start.handler + 3 });
  });

  it("shell - HEAD answers the GET's headers without a body", async () => {
    const get = await rawRequest(server.port, ["GET /items/x HTTP/1.1\r\nHost: t\r\n\r\n"]);
    const head = await rawRequest(server.port, ["HEAD /items/x HTTP/1.1\r\nHost: t\r\n\r\n"], { head: true });
    expect(head.status).toBe(200);
    expect(head.body).toBe("");
    expect(Number(get.headers["content-length"])).toBe(Buffer.byteLength(get.body));
    expect(head.headers["content-length"]).toBe(get.headers["content-length"]);
  });
});

describe("uWS shell - graceful stop", () => {
  it("stop - an in-flight request completes, new connections are refused", async () => {
    const slow = gatedRoute();
    const { app } = testApp({ extra: [slow.route] });
    const server = await startUwsServer({ app, log: silentLog, port: 0 });
    const pending = fetch(`http://127.0.0.1:${server.port}/slow`);
    await waitFor("the slow handler to start", () => slow.seen.length === 1);
    const stopped = server.stop(5000);
    await expect(openSocket(server.port)).rejects.toMatchObject({ code: "ECONNREFUSED" });
    expect(server.inFlight).toBe(1);
    slow.open();
    const res = await pending;
    expect(res.status).toBe(200);
    expect(res.headers.get("connection")).toBe("close");
    expect(await res.json()).toEqual({ waited: true, aborted: false });
    expect(await stopped).toEqual({ abandoned: 0 });
  });

  it("stop - a new request on a kept-alive connection answers 503 SF_ERR_SHUTTING_DOWN and the connection closes", async () => {
    const slow = gatedRoute();
    const { app } = testApp({ extra: [slow.route] });
    const server = await startUwsServer({ app, log: silentLog, port: 0 });
    const conn = await RawConnection.open(server.port);
    try {
      const first = await conn.request("GET /items/1 HTTP/1.1\r\nHost: t\r\n\r\n");
      expect(first.status).toBe(200);
      const pending = fetch(`http://127.0.0.1:${server.port}/slow`);
      await waitFor("the slow handler to start", () => slow.seen.length === 1);
      const stopped = server.stop(5000);
      const late = await conn.request("GET /items/2 HTTP/1.1\r\nHost: t\r\n\r\n");
      expect(late.status).toBe(503);
      expect(late.headers["retry-after"]).toBe("1");
      expect((JSON.parse(late.body) as Envelope).error.code).toBe(GatewayErrorCodes.SHUTTING_DOWN);
      await conn.waitClosed();
      slow.open();
      expect((await pending).status).toBe(200);
      expect(await stopped).toEqual({ abandoned: 0 });
    } finally {
      conn.destroy();
    }
  });

  it("stop - a request still running at the deadline is abandoned and its connection closed", async () => {
    const slow = gatedRoute();
    const { app } = testApp({ extra: [slow.route] });
    const server = await startUwsServer({ app, log: silentLog, port: 0 });
    const pending = rawRequest(server.port, ["GET /slow HTTP/1.1\r\nHost: t\r\n\r\n"]).catch(
      (err: unknown) => err,
    );
    await waitFor("the slow handler to start", () => slow.seen.length === 1);
    expect(await server.stop(50)).toEqual({ abandoned: 1 });
    const outcome = await pending;
    expect(outcome).toBeInstanceOf(Error);
    expect(slow.seen[0]?.signal.aborted).toBe(true);
    slow.open();
  });
});
