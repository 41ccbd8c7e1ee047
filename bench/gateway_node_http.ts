/**
 * The gateway served by `node:http` instead of uWebSockets.js, for the `gateway` bench: the same
 * configuration (gateway/config.ts, from the environment), the same NATS connection setup, API
 * key verifier and `createGatewayWithWs` app as gateway/main.ts; only the HTTP shell differs. It
 * copies what the uWS shell does: the instant answer of a plain `GET /health`; otherwise headers
 * joined the same way, the body limit checked before and while reading, an abort signal when the
 * client goes away, `GatewayApp.handle` started in the loop turn's batch (gateway/loop_batch.ts),
 * then the serialized response (streamed bodies written chunk by chunk). No `/ws` (not measured).
 */
import { createServer } from "node:http";
import type { IncomingMessage, ServerResponse } from "node:http";
import { createLogger } from "../actors/index.ts";
import { connectBus, createSubjects, toWireError } from "../bus/index.ts";
import {
  ApiKeyVerifier,
  createGatewayWithWs,
  LoopBatch,
  parseGatewayConfig,
  PayloadTooLargeError,
  RequestAbort,
} from "../gateway/index.ts";
import type { RawRequest, SerializedResponse, StreamSink } from "../gateway/index.ts";

const config = parseGatewayConfig();
const log = createLogger({ name: "gateway-node-http", level: config.logLevel });
const nc = await connectBus({ servers: config.natsUrl, name: `sf-gateway-node-${process.pid}` });
const subjects = createSubjects({ prefix: config.subjectPrefix, partitions: config.partitions });
const apiKeys = new ApiKeyVerifier({
  nc,
  subjects,
  cacheMs: config.auth.apiKeyCacheMs,
  timeoutMs: config.requestTimeoutMs,
});
const keyEvents = apiKeys.watch(log);
const { app } = createGatewayWithWs({ nc, config, log, apiKeys });
const instantPaths = new Set(app.instantPaths);
const batch = new LoopBatch((err: unknown) => {
  log.error({ err: toWireError(err) }, "request start failed");
});

function serve(req: IncomingMessage, res: ServerResponse): void {
  // The uWS shell's instant path: a plain GET of an instant route is answered at once.
  if (
    req.method === "GET" &&
    req.url !== undefined &&
    instantPaths.has(req.url) &&
    req.headers["origin"] === undefined &&
    req.headers["content-length"] === undefined &&
    req.headers["transfer-encoding"] === undefined
  ) {
    const requestId = req.headers["x-request-id"];
    const out = app.answerInstant(req.url, typeof requestId === "string" ? requestId : undefined);
    if (out !== undefined) {
      res.writeHead(out.status, out.headers);
      res.end(out.body);
      return;
    }
  }
  const headers: Record<string, string> = {};
  const rawHeaders = req.rawHeaders;
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const key = (rawHeaders[i] as string).toLowerCase();
    const value = rawHeaders[i + 1] as string;
    headers[key] = key in headers ? `${headers[key]}, ${value}` : value;
  }
  // The request's abort, as the uWS shell makes it (gateway/request_abort.ts).
  const controller = new RequestAbort();
  const raw: RawRequest = {
    method: (req.method ?? "GET").toUpperCase(),
    url: req.url ?? "/",
    headers,
    body: Buffer.alloc(0),
    remoteAddress: req.socket.remoteAddress ?? "",
    signal: controller,
  };
  let done = false;
  res.on("close", () => {
    if (done) return;
    done = true;
    app.metrics.aborted.inc();
    controller.abort();
  });

  const write = (out: SerializedResponse, closeConnection: boolean): void => {
    if (done) return;
    if (closeConnection) out.headers["connection"] = "close";
    const run = out.stream;
    if (run !== undefined) {
      res.writeHead(out.status, out.headers);
      const sink: StreamSink = {
        signal: controller,
        write(chunk: string): boolean {
          if (done) return false;
          res.write(chunk);
          return true;
        },
      };
      run(sink).then(
        () => {
          if (done) return;
          done = true;
          res.end();
        },
        (err: unknown) => {
          log.error({ err: toWireError(err) }, "response stream failed");
          if (done) return;
          done = true;
          res.destroy();
        },
      );
      return;
    }
    done = true;
    res.writeHead(out.status, out.headers);
    if (raw.method === "HEAD") res.end();
    else res.end(out.body);
  };

  const maxBodyBytes = app.bodyLimit(raw.method, raw.url);
  const declared = Number(headers["content-length"] ?? "0");
  if (Number.isFinite(declared) && declared > maxBodyBytes) {
    write(app.reject(raw, new PayloadTooLargeError(maxBodyBytes)), true);
    req.resume();
    return;
  }
  const chunks: Buffer[] = [];
  let size = 0;
  let refused = false;
  req.on("data", (chunk: Buffer) => {
    if (refused) return;
    size += chunk.byteLength;
    if (size > maxBodyBytes) {
      refused = true;
      write(app.reject(raw, new PayloadTooLargeError(maxBodyBytes)), true);
      return;
    }
    chunks.push(chunk);
  });
  req.on("end", () => {
    if (refused) return;
    raw.body = chunks.length === 1 && chunks[0] !== undefined ? chunks[0] : Buffer.concat(chunks, size);
    batch.push(() => {
      if (done) return;
      app.handle(raw).then(
        (out) => write(out, false),
        (err: unknown) => {
          log.error({ err: toWireError(err) }, "request pipeline failed");
          write(app.reject(raw, err), true);
        },
      );
    });
  });
}

const server = createServer({ keepAliveTimeout: 65_000 }, serve);
await new Promise<void>((resolve, reject) => {
  server.once("error", reject);
  server.listen(config.port, config.host, () => resolve());
});
const address = server.address();
const port = typeof address === "object" && address !== null ? address.port : config.port;
log.info({ port, host: config.host, routes: app.router.routes().length }, "node gateway ready");

const shutdown = (): void => {
  server.close();
  server.closeAllConnections();
  void keyEvents
    .drain()
    .then(() => nc.drain())
    .then(() => process.exit(0));
};
process.on("SIGTERM", shutdown);
process.on("SIGINT", shutdown);
