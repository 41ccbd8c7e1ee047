/**
 * Raw-protocol abuse against a real gateway process over TCP (issue 9): oversized heads and
 * bodies, invalid UTF-8 in bodies, paths and headers, JSON nested 100k levels, clients that
 * trickle their bytes or never read, and a flood of 2,000 connections. After (and during) each,
 * a normal client is still answered; an abusive request that the gateway can read is answered
 * with its 4xx and the error envelope. The counts and the gateway's memory go to
 * `.sidekick/fuzz/raw_protocol.json`.
 */
import type { Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MAX_JSON_DEPTH } from "../../gateway/index.ts";
import { spawnGateway } from "../helpers/gateway_process.ts";
import type { GatewayProcess } from "../helpers/gateway_process.ts";
import { NatsTestServer } from "../helpers/nats_server.ts";
import { openSocket, rawRequest } from "../../tests/gateway/raw_http.ts";
import type { RawResponse } from "../../tests/gateway/raw_http.ts";
import { MiB, recordFuzzReport, residentBytes } from "./fuzz_kit.ts";

const MAX_BODY = 256 * 1024;
/** Long enough for any answer on loopback; reaching it means "never answered". */
const NO_ANSWER_MS = 3000;

let server: NatsTestServer;
let gw: GatewayProcess;
const report: Record<string, unknown> = {};

beforeAll(async () => {
  server = await NatsTestServer.start();
  gw = await spawnGateway({ natsUrl: server.url, maxBodyBytes: MAX_BODY });
});

afterAll(async () => {
  if (Object.keys(report).length > 0) recordFuzzReport("raw_protocol", "summary", report);
  await gw?.proc.kill();
  await server?.[Symbol.asyncDispose]();
});

/** The normal client: `GET /health` over a fresh connection, answered 200. */
async function normalClientServed(): Promise<boolean> {
  const res = await fetch(`${gw.base}/health`);
  const body = (await res.json()) as { status?: string };
  return res.status === 200 && body.status === "healthy";
}

function rssMiB(): number {
  return Math.round((residentBytes(gw.proc.pid) / MiB) * 10) / 10;
}

/** One request's outcome: its response, or how the connection ended without one. */
async function attempt(pieces: readonly (string | Buffer)[]): Promise<RawResponse | "closed" | "no answer"> {
  try {
    return await rawRequest(gw.port, pieces, { signal: AbortSignal.timeout(NO_ANSWER_MS) });
  } catch (err) {
    return /aborted/.test((err as Error).message) ? "no answer" : "closed";
  }
}

function envelopeCode(res: RawResponse): unknown {
  try {
    return (JSON.parse(res.body) as { error?: { code?: unknown } }).error?.code;
  } catch {
    return undefined;
  }
}

function request(
  method: string,
  target: string,
  headers: Record<string, string>,
  body?: string | Buffer,
): Buffer {
  const bytes = body === undefined ? Buffer.alloc(0) : Buffer.isBuffer(body) ? body : Buffer.from(body);
  const head = [`${method} ${target} HTTP/1.1`, "host: abuse.local"];
  for (const [k, v] of Object.entries(headers)) head.push(`${k}: ${v}`);
  if (body !== undefined) head.push(`content-length: ${bytes.length}`);
  return Buffer.concat([Buffer.from(`${head.join("\r\n")}\r\n\r\n`, "latin1"), bytes]);
}

const JSON_TYPE = { "content-type": "application/json" };

/** Sends `bytes` one slice at a time, `gapMs` apart, and reads the first response (or the close). */
function trickle(bytes: Buffer, sliceBytes: number, gapMs: number): Promise<number | "closed"> {
  return openSocket(gw.port).then(
    (socket) =>
      new Promise<number | "closed">((resolve) => {
        let data = "";
        let at = 0;
        let timer: NodeJS.Timeout | undefined;
        const finish = (outcome: number | "closed"): void => {
          clearTimeout(timer);
          socket.destroy();
          resolve(outcome);
        };
        socket.on("data", (chunk: Buffer) => {
          data += chunk.toString("latin1");
          const status = /^HTTP\/1\.1 (\d{3})/.exec(data)?.[1];
          if (status !== undefined) finish(Number(status));
        });
        socket.on("close", () => finish("closed"));
        socket.on("error", () => finish("closed"));
        const next = (): void => {
          if (socket.destroyed || at >= bytes.length) return;
          socket.write(bytes.subarray(at, at + sliceBytes));
          at += sliceBytes;
          timer = setTimeout(next, gapMs);
        };
        next();
      }),
    () => "closed" as const,
  );
}

describe("raw protocol - oversized requests", () => {
  it("abuse - an oversized head is dropped or refused, never answered 2xx/5xx; the gateway keeps serving", async () => {
    const rssBefore = rssMiB();
    const cases: Record<string, Buffer> = {
      "one 256 KiB header": request("GET", "/health", { "x-big": "a".repeat(256 * 1024) }),
      "a 300 KiB URL": request("GET", `/health?q=${"a".repeat(300 * 1024)}`, {}),
      "60 headers": request(
        "GET",
        "/health",
        Object.fromEntries(Array.from({ length: 60 }, (_, i) => [`x-h${i}`, "v"])),
      ),
      "1 MiB of header lines": request(
        "GET",
        "/health",
        Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`x-h${i}`, "b".repeat(26 * 1024)])),
      ),
    };
    const outcomes: Record<string, string> = {};
    for (const [name, bytes] of Object.entries(cases)) {
      const [outcome, served] = await Promise.all([attempt([bytes]), normalClientServed()]);
      outcomes[name] = typeof outcome === "string" ? outcome : String(outcome.status);
      expect(served, name).toBe(true);
      if (typeof outcome !== "string") {
        // uWS drops what it cannot parse; anything it hands on must be a 4xx.
        expect(outcome.status, name).toBeGreaterThanOrEqual(400);
        expect(outcome.status, name).toBeLessThan(500);
      }
    }
    expect(await normalClientServed()).toBe(true);
    report["oversized heads"] = { outcomes, rssMiB: { before: rssBefore, after: rssMiB() } };
  });

  it("abuse - a body over the limit is answered 413 with the error envelope, declared or streamed", async () => {
    const declared = await attempt([
      `POST /api/v2/clients HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: ${64 * MAX_BODY}\r\n\r\n{`,
    ]);
    // A length past what uWS parses (10 GB) is dropped by uWS itself: no answer to check, only the close.
    const absurd = await attempt([
      `POST /api/v2/clients HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 10000000000\r\n\r\n{`,
    ]);
    expect(typeof absurd === "string" || absurd.status === 413).toBe(true);
    const sent = await attempt([request("POST", "/api/v2/clients", JSON_TYPE, `"${"a".repeat(MAX_BODY)}"`)]);
    // Chunked: no length up front, the limit is found while reading.
    const chunk = `${(64 * 1024).toString(16)}\r\n${"b".repeat(64 * 1024)}\r\n`;
    const chunked = await attempt([
      "POST /api/v2/clients HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n",
      chunk.repeat(Math.ceil((2 * MAX_BODY) / (64 * 1024))),
    ]);
    const outcomes: Record<string, unknown> = {};
    for (const [name, outcome] of Object.entries({ declared, sent, chunked })) {
      expect(typeof outcome, name).toBe("object");
      const res = outcome as RawResponse;
      outcomes[name] = res.status;
      expect(res.status, name).toBe(413);
      expect(envelopeCode(res), name).toBe("SF_ERR_PAYLOAD_TOO_LARGE");
    }
    expect(await normalClientServed()).toBe(true);
    report["oversized bodies"] = { ...outcomes, absurd: typeof absurd === "string" ? absurd : absurd.status };
  });
});

describe("raw protocol - malformed content", () => {
  it("abuse - invalid UTF-8 in a JSON body is a 400 SF_ERR_BAD_JSON, never replaced and accepted", async () => {
    const bodies = [
      Buffer.concat([Buffer.from('{"slug":"a","name":"'), Buffer.from([0xff, 0xfe]), Buffer.from('"}')]),
      Buffer.concat([Buffer.from('{"slug":"a","name":"'), Buffer.from([0xc0, 0xaf]), Buffer.from('"}')]),
      Buffer.concat([
        Buffer.from('{"slug":"a","name":"'),
        Buffer.from([0xed, 0xa0, 0x80]),
        Buffer.from('"}'),
      ]),
      Buffer.concat([
        Buffer.from('{"agent_slug":"a","user_id":"'),
        Buffer.from([0xe2, 0x82]),
        Buffer.from('"}'),
      ]),
    ];
    for (const [i, body] of bodies.entries()) {
      const target = i === 3 ? "/api/v2/trigger-agent" : "/api/v2/clients";
      const res = await attempt([request("POST", target, JSON_TYPE, body)]);
      expect(typeof res, `body ${i}`).toBe("object");
      expect((res as RawResponse).status, `body ${i}`).toBe(400);
      expect(envelopeCode(res as RawResponse), `body ${i}`).toBe("SF_ERR_BAD_JSON");
    }
    expect(await normalClientServed()).toBe(true);
  });

  it("abuse - invalid UTF-8 in the path, a path parameter, the query or a header gets a 4xx with the envelope", async () => {
    const cases: Record<string, Buffer> = {
      "raw bytes in the path": Buffer.concat([
        Buffer.from("GET /api/v2/clients/"),
        Buffer.from([0xff, 0xfe, 0xc0]),
        Buffer.from(" HTTP/1.1\r\nhost: x\r\n\r\n"),
      ]),
      "percent-encoded in a parameter": request("GET", "/api/v2/clients/%FF%FE", {}),
      "overlong in a parameter": request("GET", "/api/v2/clients/%C0%AF", {}),
      "bad escape in a parameter": request("GET", "/api/v2/clients/%zz", {}),
      "in the query": request("GET", "/api/v1/agents?client_id=%FF", {}),
      "in a header": Buffer.concat([
        Buffer.from("GET /api/v1/me HTTP/1.1\r\nhost: x\r\nauthorization: Bearer "),
        Buffer.from([0xff, 0xc3, 0x28]),
        Buffer.from("\r\n\r\n"),
      ]),
    };
    const outcomes: Record<string, unknown> = {};
    for (const [name, bytes] of Object.entries(cases)) {
      const res = await attempt([bytes]);
      expect(typeof res, name).toBe("object");
      const r = res as RawResponse;
      outcomes[name] = r.status;
      expect(r.status, name).toBeGreaterThanOrEqual(400);
      expect(r.status, name).toBeLessThan(500);
      expect(envelopeCode(r), name).toMatch(/^SF_ERR_[A-Z_]+$/);
    }
    expect(await normalClientServed()).toBe(true);
    report["invalid utf-8"] = outcomes;
  });

  it(`abuse - JSON nested 100k levels (or anything past ${MAX_JSON_DEPTH}) is a 400 SF_ERR_BAD_JSON, at the limit it is read`, async () => {
    const depth = 100_000;
    const arrays = `${"[".repeat(depth)}${"]".repeat(depth)}`;
    // 100k levels of objects would pass the body limit (413): 40k fit in it.
    const objects = `${'{"a":'.repeat(40_000)}1${"}".repeat(40_000)}`;
    /** `levels` objects, one inside the other. */
    const nested = (levels: number): string => `${'{"a":'.repeat(levels)}1${"}".repeat(levels)}`;
    // The body is one level, its context the rest.
    const trigger = (context: string): string =>
      `{"agent_slug":"a","user_id":"u","message":"m","context":${context}}`;
    const cases: Array<[string, string, string]> = [
      ["100k arrays", "/api/v2/clients", arrays],
      ["40k objects", "/api/v2/clients", objects],
      ["40k in a field", "/api/v2/trigger-agent", trigger(nested(40_000))],
      ["one past the limit", "/api/v2/trigger-agent", trigger(nested(MAX_JSON_DEPTH))],
    ];
    for (const [name, target, body] of cases) {
      const res = await attempt([request("POST", target, JSON_TYPE, body)]);
      expect(typeof res, name).toBe("object");
      expect((res as RawResponse).status, name).toBe(400);
      expect(envelopeCode(res as RawResponse), name).toBe("SF_ERR_BAD_JSON");
    }
    // At the limit the body is read and validated: without credentials the answer is 401.
    const atLimit = await attempt([
      request("POST", "/api/v2/trigger-agent", JSON_TYPE, trigger(nested(MAX_JSON_DEPTH - 1))),
    ]);
    expect((atLimit as RawResponse).status).toBe(401);
    expect(await normalClientServed()).toBe(true);
  });
});

describe("raw protocol - slow and many clients", () => {
  it("abuse - 200 clients trickling their requests byte by byte: the normal client is served meanwhile, and each trickler is answered", async () => {
    const rssBefore = rssMiB();
    const get = request("GET", "/health", {});
    const post = request(
      "POST",
      "/api/v2/clients",
      JSON_TYPE,
      JSON.stringify({ slug: "s", name: "n".repeat(200) }),
    );
    const trickling = [
      ...Array.from({ length: 150 }, () => trickle(get, 1, 20)),
      ...Array.from({ length: 50 }, () => trickle(post, 4, 10)),
    ];
    let served = 0;
    let done = false;
    const all = Promise.all(trickling).finally(() => {
      done = true;
    });
    // The normal client, over and over while the tricklers are still sending.
    while (!done) {
      expect(await normalClientServed()).toBe(true);
      served += 1;
    }
    const outcomes = await all;
    const gets = outcomes.slice(0, 150);
    const posts = outcomes.slice(150);
    expect(gets.every((s) => s === 200)).toBe(true);
    // A complete POST without credentials: 401 once its last byte arrives.
    expect(posts.every((s) => s === 401)).toBe(true);
    expect(served).toBeGreaterThan(0);
    report["slow clients"] = {
      tricklers: trickling.length,
      normalServedMeanwhile: served,
      rssMiB: { before: rssBefore, after: rssMiB() },
    };
  });

  it("abuse - a client that pipelines requests and never reads does not grow the gateway without bound", async () => {
    const rssBefore = rssMiB();
    const socket: Socket = await openSocket(gw.port);
    socket.pause();
    const one = request("GET", "/openapi.json", {});
    // 8,000 pipelined requests (250 KiB) whose answers (500 MiB) are never read.
    const written = await new Promise<number>((resolve) => {
      let n = 0;
      const writeMore = (): void => {
        while (n < 8000) {
          n += 1;
          if (!socket.write(one)) {
            socket.once("drain", writeMore);
            return;
          }
        }
        resolve(n);
      };
      socket.once("close", () => resolve(n));
      // The gateway may cut a client that never reads (EPIPE/ECONNRESET on our side): that is an outcome, not a failure.
      socket.on("error", () => resolve(n));
      writeMore();
    });
    expect(await normalClientServed()).toBe(true);
    const rssDuring = rssMiB();
    socket.destroy();
    expect(await normalClientServed()).toBe(true);
    report["never reads"] = {
      pipelined: written,
      rssMiB: { before: rssBefore, during: rssDuring, after: rssMiB() },
    };
    // What the gateway holds for this client is bounded by the socket, not by what it asked for.
    expect(rssDuring - rssBefore).toBeLessThan(64);
  });

  it("abuse - a flood of 2,000 connections: the normal client is served while they are open, and all of them are answered", async () => {
    const rssBefore = rssMiB();
    const sockets: Socket[] = [];
    for (let i = 0; i < 2000; i += 200) {
      sockets.push(...(await Promise.all(Array.from({ length: 200 }, () => openSocket(gw.port)))));
    }
    expect(sockets).toHaveLength(2000);
    expect(await normalClientServed()).toBe(true);
    const rssOpen = rssMiB();
    // Every flooding connection now sends one request at once.
    const answers = await Promise.all(
      sockets.map(
        (socket) =>
          new Promise<number | "closed">((resolve) => {
            let data = "";
            socket.on("data", (chunk: Buffer) => {
              data += chunk.toString("latin1");
              const status = /^HTTP\/1\.1 (\d{3})/.exec(data)?.[1];
              if (status !== undefined) resolve(Number(status));
            });
            socket.on("close", () => resolve("closed"));
            socket.on("error", () => resolve("closed"));
            socket.write("GET /health HTTP/1.1\r\nhost: x\r\n\r\n");
          }),
      ),
    );
    const answered = answers.filter((a) => a === 200).length;
    for (const s of sockets) s.destroy();
    expect(answered).toBe(2000);
    expect(await normalClientServed()).toBe(true);
    report["connection flood"] = {
      connections: sockets.length,
      answered,
      rssMiB: { before: rssBefore, open: rssOpen, after: rssMiB() },
    };
    expect(gw.proc.running).toBe(true);
  });
});
