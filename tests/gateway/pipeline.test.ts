import { describe, expect, it } from "vitest";
import { BusErrorCodes, fromWireError, SfError } from "../../bus/index.ts";
import { ConfigError } from "../../actors/index.ts";
import { GatewayErrorCodes, json, parseGatewayConfig, Router } from "../../gateway/index.ts";
import type { GatewayApp, InjectResponse, RouteDefinition } from "../../gateway/index.ts";
import { testApp } from "./app_fixture.ts";
import type { Envelope } from "./app_fixture.ts";

function expectEnvelope(body: unknown, code: string): Envelope {
  const env = body as Envelope;
  expect(Object.keys(env)).toEqual(["error"]);
  expect(env.error.code).toBe(code);
  expect(typeof env.error.message).toBe("string");
  expect(env.error.details).toBeTypeOf("object");
  return env;
}

describe("gateway pipeline - routing", () => {
  it("routing - a static segment wins over a parameter, params are percent-decoded", async () => {
    const { app } = testApp();
    const special = await app.inject({ method: "GET", url: "/items/special" });
    expect(special.json()).toMatchObject({ route: "/items/special", params: {} });
    const one = await app.inject({ method: "GET", url: "/items/a%20b%2Fc" });
    expect(one.status).toBe(200);
    expect(one.json()).toMatchObject({ route: "/items/{id}", params: { id: "a b/c" } });
  });

  it("routing - the query is parsed, the first of repeated names wins", async () => {
    const { app, seen } = testApp();
    const res = await app.inject({ method: "GET", url: "/items?limit=5&limit=9&q=hello%20world" });
    expect(res.status).toBe(200);
    expect(seen.last?.query).toEqual({ limit: "5", q: "hello world" });
    expect(seen.last?.path).toBe("/items");
  });

  it("routing - an unknown path answers 404 SF_ERR_NOT_FOUND in the error envelope", async () => {
    const { app } = testApp();
    const res = await app.inject({ method: "GET", url: "/nope" });
    expect(res.status).toBe(404);
    expect(res.headers["content-type"]).toMatch(/^application\/json/);
    expectEnvelope(res.json(), GatewayErrorCodes.NOT_FOUND);
    // An empty segment does not match a parameter.
    expect((await app.inject({ method: "GET", url: "/items/" })).status).toBe(404);
  });

  it("routing - a known path with the wrong method answers 405 with an Allow header", async () => {
    const { app } = testApp();
    const res = await app.inject({ method: "DELETE", url: "/items" });
    expect(res.status).toBe(405);
    const env = expectEnvelope(res.json(), GatewayErrorCodes.METHOD_NOT_ALLOWED);
    expect(env.error.details["allowed"]).toEqual(expect.arrayContaining(["GET", "POST", "HEAD"]));
    expect(res.headers["allow"]?.split(", ").sort()).toEqual(["GET", "HEAD", "POST"]);
  });

  it("routing - an unknown method answers 400 SF_ERR_BAD_REQUEST", async () => {
    const { app } = testApp();
    const res = await app.inject({ method: "BREW", url: "/items" });
    expect(res.status).toBe(400);
    expectEnvelope(res.json(), GatewayErrorCodes.BAD_REQUEST);
  });

  it("routing - a malformed percent-encoding in a path parameter answers 400", async () => {
    const { app } = testApp();
    const res = await app.inject({ method: "GET", url: "/items/%E0%A4%A" });
    expect(res.status).toBe(400);
    expectEnvelope(res.json(), GatewayErrorCodes.BAD_REQUEST);
  });

  it("routing - a request id is echoed when sane and minted when not", async () => {
    const { app } = testApp();
    const given = await app.inject({ method: "GET", url: "/items", headers: { "X-Request-Id": "abc-123" } });
    expect(given.headers["x-request-id"]).toBe("abc-123");
    const bad = await app.inject({
      method: "GET",
      url: "/items",
      headers: { "x-request-id": "no spaces\n" },
    });
    expect(bad.headers["x-request-id"]).toMatch(/^[0-9a-f-]{36}$/);
  });

  it("router - registering the same method and path twice throws", () => {
    const router = new Router();
    const route = {
      method: "GET" as const,
      path: "/x/{id}",
      operationId: "x",
      summary: "x",
      responses: {},
      handler: () => Promise.reject(new Error("unused")),
    };
    router.add(route);
    expect(() => router.add({ ...route, operationId: "y" })).toThrow(/twice/);
    expect(() => router.add({ ...route, path: "/x/{id}/{id}", operationId: "z" })).toThrow(/repeats/);
  });
});

describe("gateway pipeline - bodies and validation", () => {
  it("validation - a valid JSON body reaches the handler parsed", async () => {
    const { app, seen } = testApp();
    const res = await app.inject({ method: "POST", url: "/items", body: { name: "a", size: 3 } });
    expect(res.status).toBe(200);
    expect(seen.last?.body).toEqual({ name: "a", size: 3 });
  });

  it("validation - bad JSON answers 400 SF_ERR_BAD_JSON and never reaches the handler", async () => {
    const { app, seen } = testApp();
    const res = await app.inject({
      method: "POST",
      url: "/items",
      headers: { "content-type": "application/json" },
      body: '{"name": "a",',
    });
    expect(res.status).toBe(400);
    expectEnvelope(res.json(), GatewayErrorCodes.BAD_JSON);
    expect(seen.last).toBeUndefined();
  });

  it("validation - a body of the wrong type answers 400 SF_ERR_VALIDATION_FAILED listing each issue", async () => {
    const { app, seen } = testApp();
    const res = await app.inject({ method: "POST", url: "/items", body: { size: "big", extra: true } });
    expect(res.status).toBe(400);
    const env = expectEnvelope(res.json(), GatewayErrorCodes.VALIDATION_FAILED);
    const paths = (env.error.details["issues"] as { path: string }[]).map((i) => i.path).sort();
    expect(paths).toEqual(["/extra", "/name", "/size"]);
    expect(seen.last).toBeUndefined();
  });

  it("validation - a route may answer 422 for a body that fails its schema (the v1 contract)", async () => {
    const { app } = testApp();
    const res = await app.inject({ method: "POST", url: "/legacy/items", body: {} });
    expect(res.status).toBe(422);
    expectEnvelope(res.json(), GatewayErrorCodes.VALIDATION_FAILED);
    // Bad JSON stays 400 even there.
    const bad = await app.inject({
      method: "POST",
      url: "/legacy/items",
      headers: { "content-type": "application/json" },
      body: "nope",
    });
    expect(bad.status).toBe(400);
  });

  it("validation - an empty body for a route that needs one fails validation", async () => {
    const { app } = testApp();
    const res = await app.inject({ method: "POST", url: "/items" });
    expect(res.status).toBe(400);
    expectEnvelope(res.json(), GatewayErrorCodes.VALIDATION_FAILED);
  });

  it("validation - a query that fails its schema answers 400", async () => {
    const { app } = testApp();
    const res = await app.inject({ method: "GET", url: "/items?limit=ten" });
    expect(res.status).toBe(400);
    const env = expectEnvelope(res.json(), GatewayErrorCodes.VALIDATION_FAILED);
    expect(env.error.details["location"]).toBe("query");
  });

  it("validation - a non-JSON content type answers 415 SF_ERR_UNSUPPORTED_MEDIA_TYPE", async () => {
    const { app } = testApp();
    const res = await app.inject({
      method: "POST",
      url: "/items",
      headers: { "content-type": "text/plain" },
      body: '{"name":"a"}',
    });
    expect(res.status).toBe(415);
    expectEnvelope(res.json(), GatewayErrorCodes.UNSUPPORTED_MEDIA_TYPE);
  });

  it("limits - a body over the limit answers 413 SF_ERR_PAYLOAD_TOO_LARGE", async () => {
    const { app, seen } = testApp({ maxBodyBytes: 64 });
    const res = await app.inject({ method: "POST", url: "/items", body: { name: "x".repeat(100) } });
    expect(res.status).toBe(413);
    const env = expectEnvelope(res.json(), GatewayErrorCodes.PAYLOAD_TOO_LARGE);
    expect(env.error.details["limit_bytes"]).toBe(64);
    expect(seen.last).toBeUndefined();
  });
});

describe("gateway pipeline - errors from handlers and the bus", () => {
  const cases: Array<[string, () => unknown, number, string, string | undefined]> = [
    [
      "remote overloaded",
      () => fromWireError({ code: BusErrorCodes.OVERLOADED, message: "full", retryable: true }),
      503,
      BusErrorCodes.OVERLOADED,
      "1",
    ],
    [
      "no responders",
      () => new SfError(BusErrorCodes.NO_RESPONDERS, "nobody"),
      503,
      BusErrorCodes.NO_RESPONDERS,
      "1",
    ],
    ["timeout", () => new SfError(BusErrorCodes.TIMEOUT, "slow"), 504, BusErrorCodes.TIMEOUT, undefined],
    [
      "invalid argument",
      () =>
        fromWireError({
          code: "SF_ERR_INVALID_ARGUMENT",
          message: "by must be a number",
          retryable: false,
          details: { field: "by" },
        }),
      400,
      "SF_ERR_INVALID_ARGUMENT",
      undefined,
    ],
    [
      "unknown op",
      () => new SfError(BusErrorCodes.UNKNOWN_OP, "no such op"),
      501,
      BusErrorCodes.UNKNOWN_OP,
      undefined,
    ],
  ];
  for (const [what, thrower, status, code, retryAfter] of cases) {
    it(`errors - ${what} maps to ${status} ${code}`, async () => {
      const { app } = testApp({ thrower });
      const res = await app.inject({ method: "GET", url: "/throw" });
      expect(res.status).toBe(status);
      expectEnvelope(res.json(), code);
      expect(res.headers["retry-after"]).toBe(retryAfter);
    });
  }

  it("errors - remote details are passed on for client errors", async () => {
    const { app } = testApp({
      thrower: () =>
        fromWireError({
          code: "SF_ERR_INVALID_ARGUMENT",
          message: "m",
          retryable: false,
          details: { field: "by" },
        }),
    });
    const res = await app.inject({ method: "GET", url: "/throw" });
    expect(res.json<Envelope>().error.details).toEqual({ field: "by" });
  });

  it("errors - an uncoded error answers 500 SF_ERR_INTERNAL without leaking its message", async () => {
    const { app } = testApp({ thrower: () => new Error("password=hunter2 in a stack") });
    const res = await app.inject({ method: "GET", url: "/throw" });
    expect(res.status).toBe(500);
    const env = expectEnvelope(res.json(), BusErrorCodes.INTERNAL);
    expect(res.body).not.toContain("hunter2");
    expect(env.error.details).toEqual({});
  });

  it("errors - an unknown code answers 500 with that code", async () => {
    const { app } = testApp({
      thrower: () => new SfError("SF_ERR_SOMETHING_NEW", "secret detail", { details: { a: 1 } }),
    });
    const res = await app.inject({ method: "GET", url: "/throw" });
    expect(res.status).toBe(500);
    const env = expectEnvelope(res.json(), "SF_ERR_SOMETHING_NEW");
    expect(env.error.message).toBe("internal error");
  });
});

describe("gateway pipeline - CORS", () => {
  const origin = "https://allowed.example";

  it("cors - an allowed origin gets Access-Control-Allow-Origin and Vary", async () => {
    const { app } = testApp();
    const res = await app.inject({ method: "GET", url: "/items", headers: { origin } });
    expect(res.headers["access-control-allow-origin"]).toBe(origin);
    expect(res.headers["vary"]).toBe("Origin");
    // Errors carry CORS headers too, so a browser can read the envelope.
    const err = await app.inject({ method: "GET", url: "/nope", headers: { origin } });
    expect(err.headers["access-control-allow-origin"]).toBe(origin);
  });

  it("cors - another origin gets no allow header (the browser blocks the read)", async () => {
    const { app } = testApp();
    const res = await app.inject({
      method: "GET",
      url: "/items",
      headers: { origin: "https://evil.example" },
    });
    expect(res.status).toBe(200);
    expect(res.headers["access-control-allow-origin"]).toBeUndefined();
  });

  it("cors - a preflight from an allowed origin answers 204 with the path's methods", async () => {
    const { app } = testApp();
    const res = await app.inject({
      method: "OPTIONS",
      url: "/items",
      headers: {
        origin,
        "access-control-request-method": "POST",
        "access-control-request-headers": "content-type",
      },
    });
    expect(res.status).toBe(204);
    expect(res.body).toBe("");
    expect(res.headers["access-control-allow-origin"]).toBe(origin);
    expect(res.headers["access-control-allow-methods"]?.split(", ").sort()).toEqual(["GET", "HEAD", "POST"]);
    expect(res.headers["access-control-allow-headers"]).toContain("content-type");
    expect(res.headers["access-control-max-age"]).toBe("600");
  });

  it("cors - a preflight from another origin answers 403 SF_ERR_CORS_ORIGIN_DENIED", async () => {
    const { app } = testApp();
    const res = await app.inject({
      method: "OPTIONS",
      url: "/items",
      headers: { origin: "https://evil.example", "access-control-request-method": "POST" },
    });
    expect(res.status).toBe(403);
    expectEnvelope(res.json(), GatewayErrorCodes.CORS_ORIGIN_DENIED);
    expect(res.headers["access-control-allow-origin"]).toBeUndefined();
  });

  it("cors - a preflight for a method the path lacks answers 405, for an unknown path 404", async () => {
    const { app } = testApp();
    const wrong = await app.inject({
      method: "OPTIONS",
      url: "/items/special",
      headers: { origin, "access-control-request-method": "DELETE" },
    });
    expect(wrong.status).toBe(405);
    const unknown = await app.inject({
      method: "OPTIONS",
      url: "/nope",
      headers: { origin, "access-control-request-method": "GET" },
    });
    expect(unknown.status).toBe(404);
  });

  it("cors - '*' allows any origin; a plain OPTIONS answers 204 with Allow", async () => {
    const { app } = testApp({ cors: { origins: ["*"] } });
    const res = await app.inject({
      method: "OPTIONS",
      url: "/items/42",
      headers: { origin: "https://anyone.example", "access-control-request-method": "GET" },
    });
    expect(res.status).toBe(204);
    expect(res.headers["access-control-allow-origin"]).toBe("https://anyone.example");
    const plain = await app.inject({ method: "OPTIONS", url: "/items/42" });
    expect(plain.status).toBe(204);
    expect(plain.headers["allow"]).toBe("GET, HEAD, OPTIONS");
  });
});

describe("gateway pipeline - per-tenant CORS", () => {
  const listed = "https://shop-a.example";
  const unlisted = "https://stranger.example";
  /**
   * A thin-client route whose handler stands in for the authenticator: `x-test-caller` names the
   * key's tenant origins (comma list), `none` leaves the caller unknown and answers 401.
   */
  const thin: RouteDefinition = {
    method: "POST",
    path: "/thin",
    operationId: "thin",
    summary: "thin-client route",
    cors: "tenant",
    responses: { 200: { description: "ok" } },
    handler: (req) => {
      const caller = req.headers["x-test-caller"] ?? "none";
      if (caller === "none") return Promise.resolve(json(401, { error: { code: "SF_ERR_UNAUTHENTICATED" } }));
      req.context.caller =
        caller === "admin"
          ? { type: "admin" }
          : { type: "api_key", clientId: "t1", corsOrigins: caller.split(",") };
      return Promise.resolve(json(200, { ok: true }));
    },
  };
  const app = (): GatewayApp =>
    testApp({ extra: [thin], tenantOrigins: { listed: (origin) => Promise.resolve(origin === listed) } }).app;
  const preflight = (url: string, origin: string) =>
    app().inject({ method: "OPTIONS", url, headers: { origin, "access-control-request-method": "POST" } });

  it("cors - a thin-client route's preflight passes for an origin some tenant lists; other routes keep the global list", async () => {
    const ok = await preflight("/thin", listed);
    expect([ok.status, ok.headers["access-control-allow-origin"]]).toEqual([204, listed]);
    expect((await preflight("/thin", unlisted)).status).toBe(403);
    expect((await preflight("/items", listed)).status).toBe(403);
    expect((await preflight("/thin", "https://allowed.example")).status).toBe(204);
  });

  it("cors - the answer is readable by the key's tenant's origins only; admins get the global list; no caller, the listed origins", async () => {
    const call = (origin: string, caller: string) =>
      app().inject({ method: "POST", url: "/thin", headers: { origin, "x-test-caller": caller } });
    const allow = (res: InjectResponse) => res.headers["access-control-allow-origin"];
    expect(allow(await call(listed, `${listed},https://other.example`))).toBe(listed);
    expect(allow(await call(listed, "https://other.example"))).toBeUndefined();
    expect(allow(await call(unlisted, "*"))).toBe(unlisted);
    expect(allow(await call(listed, "admin"))).toBeUndefined();
    expect(allow(await call("https://allowed.example", "admin"))).toBe("https://allowed.example");
    expect(allow(await call(listed, "none"))).toBe(listed);
    expect(allow(await call(unlisted, "none"))).toBeUndefined();
    // The global routes never read the tenant lists.
    const global = await app().inject({ method: "GET", url: "/items", headers: { origin: listed } });
    expect(allow(global)).toBeUndefined();
  });
});

describe("gateway pipeline - metrics labels", () => {
  it("metrics - the route label is the pattern, never the raw path", async () => {
    const { app } = testApp();
    for (const id of ["a", "b", "c"]) await app.inject({ method: "GET", url: `/items/${id}` });
    await app.inject({ method: "GET", url: "/random/path/1" });
    await app.inject({ method: "BREW", url: "/items" });
    const text = await app.metrics.registry.metrics();
    expect(text).toContain('sf_gateway_http_requests_total{route="/items/{id}",method="GET",status="200"} 3');
    expect(text).toContain('sf_gateway_http_requests_total{route="unmatched",method="GET",status="404"} 1');
    expect(text).toContain('method="OTHER"');
    expect(text).not.toContain("/items/a");
    expect(text).not.toContain("/random/path");
  });
});

describe("gateway config", () => {
  it("config - defaults, and a frozen object", () => {
    const config = parseGatewayConfig({});
    expect(config).toMatchObject({
      natsUrl: "nats://127.0.0.1:4222",
      subjectPrefix: "sf",
      partitions: 256,
      port: 8080,
      host: "127.0.0.1",
      maxBodyBytes: 1024 * 1024,
      corsOrigins: [],
      logLevel: "info",
    });
    expect(Object.isFrozen(config)).toBe(true);
  });

  it("config - CORS origins are parsed from a comma list; a path in an origin is refused", () => {
    const config = parseGatewayConfig({
      SF_GATEWAY_CORS_ORIGINS: " https://a.example , http://localhost:3000/ ,*",
      SF_GATEWAY_PORT: "0",
    });
    expect(config.corsOrigins).toEqual(["https://a.example", "http://localhost:3000", "*"]);
    expect(config.port).toBe(0);
    expect(() => parseGatewayConfig({ SF_GATEWAY_CORS_ORIGINS: "https://a.example/path" })).toThrow(
      ConfigError,
    );
  });

  it("config - a bad number answers SF_ERR_CONFIG_INVALID", () => {
    for (const env of [
      { SF_GATEWAY_PORT: "70000" },
      { SF_GATEWAY_MAX_BODY_BYTES: "1.5" },
      { SF_LOG_LEVEL: "loud" },
    ]) {
      let caught: unknown;
      try {
        parseGatewayConfig(env);
      } catch (err) {
        caught = err;
      }
      expect((caught as SfError).code).toBe("SF_ERR_CONFIG_INVALID");
    }
  });
});
