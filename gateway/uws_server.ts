/**
 * The thin uWebSockets.js shell around `GatewayApp`. uWS rules it follows: the request object
 * is only valid during the route callback (method, URL and headers are copied at once); every
 * response gets an `onAborted` handler before the callback returns, and an aborted response is
 * never touched again; writes are corked; body chunks are copied (uWS neuters them after the
 * callback). Shutdown closes the listen socket, lets in-flight requests finish until a
 * deadline, then closes the remaining connections.
 */
import { STATUS_CODES } from "node:http";
import uws from "@trufflesuite/uws-js-unofficial";
import type {
  HttpRequest,
  HttpResponse,
  TemplatedApp,
  us_listen_socket,
  us_socket_context_t,
  WebSocket,
} from "@trufflesuite/uws-js-unofficial";
import type { Logger } from "pino";
import { PayloadTooLargeError, ShuttingDownError } from "./errors.ts";
import type { GatewayApp } from "./gateway_app.ts";
import { LoopBatch } from "./loop_batch.ts";
import type { RawRequest, SerializedResponse, StreamSink } from "./http_types.ts";
import type { ChatSocket, WsAdmission, WsChatHandler } from "./ws_chat.ts";
import { RequestAbort } from "./request_abort.ts";

export interface UwsServerOptions {
  app: GatewayApp;
  log: Logger;
  /** Interface to bind. Default 127.0.0.1. */
  host?: string;
  /** Port; 0 picks a free one. */
  port: number;
  /** Serves `GET /ws` when given. */
  ws?: WsChatHandler;
  /** Bytes a streamed response may queue for a slow reader before its connection is cut. Default 1 MiB. */
  maxStreamQueueBytes?: number;
}

interface WsUserData {
  admission: WsAdmission;
  socket?: ChatSocket;
}

export interface StopResult {
  /** Requests still running when the deadline passed (their connections were closed). */
  abandoned: number;
}

export interface UwsServer {
  readonly port: number;
  /** Requests accepted and not yet answered or aborted. */
  readonly inFlight: number;
  /** Stops accepting, waits up to `deadlineMs` for in-flight requests, then closes every connection. */
  stop(deadlineMs: number): Promise<StopResult>;
}

/** `close()` exists on this build's App (it closes every socket) but is missing from its typings. */
type ClosableApp = TemplatedApp & { close?: () => void };

const statusLines = new Map<number, string>();

function statusLine(status: number): string {
  let line = statusLines.get(status);
  if (line === undefined) {
    line = `${status} ${STATUS_CODES[status] ?? "Unknown"}`;
    if (statusLines.size < 1000) statusLines.set(status, line);
  }
  return line;
}

/**
 * A whole (not streamed) response, corked into one write. The body goes out with `tryEnd`: what
 * the socket cannot take now is written from onWritable as it drains, never buffered by uWS. So a
 * client that pipelines requests without reading the answers cannot make the gateway hold them
 * all (with `end`, 8,000 pipelined GET /openapi.json held 500 MB): its next request arrives while
 * a response is still pending, and uWS closes the connection.
 */
function writeWhole(res: HttpResponse, out: SerializedResponse, head: boolean, close: boolean): void {
  let pending = false;
  let start = 0;
  res.cork(() => {
    res.writeStatus(statusLine(out.status));
    const headers = out.headers;
    for (const key in headers) res.writeHeader(key, headers[key] as string);
    if (head) res.endWithoutBody(out.body.length, close);
    else if (close) res.end(out.body, true);
    else {
      start = res.getWriteOffset();
      pending = !res.tryEnd(out.body, out.body.length)[1];
    }
  });
  if (!pending) return;
  let aborted = false;
  res.onAborted(() => {
    aborted = true;
  });
  res.onWritable((offset) => aborted || res.tryEnd(out.body.subarray(offset - start), out.body.length)[0]);
}

/** A copy of a body chunk (small ones from Node's buffer pool rather than a fresh allocation each). */
function copyChunk(chunk: ArrayBuffer): Buffer {
  const copy = Buffer.allocUnsafe(chunk.byteLength);
  copy.set(new Uint8Array(chunk));
  return copy;
}

export async function startUwsServer(options: UwsServerOptions): Promise<UwsServer> {
  const { app, log } = options;
  const uwsApp: ClosableApp = uws.App();
  const maxStreamQueueBytes = options.maxStreamQueueBytes ?? 1024 * 1024;
  if (options.ws !== undefined) serveWebSockets(uwsApp, options.ws, log);
  let inFlight = 0;
  let stopping = false;
  let idle: (() => void) | undefined;

  const settle = (): void => {
    inFlight -= 1;
    if (inFlight === 0 && idle !== undefined) idle();
  };
  // Requests whose bodies arrived in the same loop turn run together (see loop_batch.ts).
  const batch = new LoopBatch((err: unknown) => {
    log.error({ err: err instanceof Error ? err.message : String(err) }, "request start failed");
  });

  const serve = (res: HttpResponse, req: HttpRequest): void => {
    // The HttpRequest dies when this callback returns: copy everything now.
    const headers: Record<string, string> = {};
    req.forEach((key, value) => {
      headers[key] = key in headers ? `${headers[key]}, ${value}` : value;
    });
    // No `?` at all gives undefined here, whatever the typings say.
    const query = req.getQuery() as string | undefined;
    const controller = new RequestAbort();
    const raw: RawRequest = {
      method: req.getCaseSensitiveMethod().toUpperCase(),
      url: query === undefined || query === "" ? req.getUrl() : `${req.getUrl()}?${query}`,
      headers,
      body: Buffer.alloc(0),
      remoteAddress: Buffer.from(res.getRemoteAddressAsText()).toString(),
      signal: controller,
    };
    let done = false;
    inFlight += 1;

    const finish = (): void => {
      if (done) return;
      done = true;
      settle();
    };

    res.onAborted(() => {
      if (done) return;
      app.metrics.aborted.inc();
      controller.abort();
      finish();
    });

    const write = (out: SerializedResponse, closeConnection: boolean): void => {
      if (done) return;
      if (out.stream !== undefined) {
        streamOut(out, out.stream);
        return;
      }
      writeWhole(res, out, raw.method === "HEAD", closeConnection || stopping);
      finish();
    };

    /**
     * A streamed body: the head, then every chunk corked as it comes. A chunk the socket cannot
     * take at once (write returns false) waits in a bounded queue drained by onWritable; a reader
     * whose queue passes the bound is cut. The response ends once the producer is done and the
     * queue has drained.
     */
    const streamOut = (out: SerializedResponse, run: NonNullable<SerializedResponse["stream"]>): void => {
      const queue: string[] = [];
      let queuedBytes = 0;
      let waiting = false;
      let ending = false;
      const endNow = (): void => {
        if (done) return;
        res.cork(() => res.end());
        finish();
      };
      const cut = (): void => {
        if (done) return;
        log.warn({ queuedBytes, limit: maxStreamQueueBytes }, "slow stream reader cut");
        finish();
        controller.abort();
        res.close();
      };
      res.cork(() => {
        res.writeStatus(statusLine(out.status));
        for (const [key, value] of Object.entries(out.headers)) res.writeHeader(key, value);
      });
      res.onWritable(() => {
        if (done || !waiting) return true;
        waiting = false;
        let ok = true;
        res.cork(() => {
          while (ok && queue.length > 0) {
            const next = queue.shift() as string;
            queuedBytes -= Buffer.byteLength(next);
            ok = res.write(next);
          }
        });
        if (!ok) {
          waiting = true;
          return false;
        }
        if (ending) endNow();
        return true;
      });
      const sink: StreamSink = {
        signal: controller,
        write(chunk: string): boolean {
          if (done) return false;
          if (waiting) {
            queue.push(chunk);
            queuedBytes += Buffer.byteLength(chunk);
            if (queuedBytes > maxStreamQueueBytes) {
              cut();
              return false;
            }
            return true;
          }
          let ok = true;
          res.cork(() => {
            ok = res.write(chunk);
          });
          if (!ok) waiting = true;
          return true;
        },
      };
      run(sink).then(
        () => {
          ending = true;
          if (!waiting) endNow();
        },
        (err: unknown) => {
          log.error({ err: err instanceof Error ? err.message : String(err) }, "response stream failed");
          if (!done) {
            finish();
            res.close();
          }
        },
      );
    };

    if (stopping) {
      write(app.reject(raw, new ShuttingDownError()), true);
      return;
    }

    const maxBodyBytes = app.bodyLimit(raw.method, raw.url);
    const declared = Number(headers["content-length"] ?? "0");
    if (Number.isFinite(declared) && declared > maxBodyBytes) {
      // Refuse before reading: the connection closes, the unread body goes with it.
      write(app.reject(raw, new PayloadTooLargeError(maxBodyBytes)), true);
      return;
    }

    const chunks: Buffer[] = [];
    let size = 0;
    res.onData((chunk, isLast) => {
      if (done) return;
      size += chunk.byteLength;
      if (size > maxBodyBytes) {
        write(app.reject(raw, new PayloadTooLargeError(maxBodyBytes)), true);
        return;
      }
      if (chunk.byteLength > 0) chunks.push(copyChunk(chunk));
      if (!isLast) return;
      raw.body = chunks.length === 1 && chunks[0] !== undefined ? chunks[0] : Buffer.concat(chunks, size);
      batch.push(() => {
        if (done) return;
        app.handle(raw).then(
          (out) => write(out, false),
          (err: unknown) => {
            log.error({ err: err instanceof Error ? err.message : String(err) }, "request pipeline failed");
            write(app.reject(raw, err), true);
          },
        );
      });
    });
  };

  // Instant routes (GET /health): a plain GET is answered here and now, without copying the
  // request or entering the async pipeline; anything else about it goes the usual way.
  for (const path of app.instantPaths) {
    uwsApp.get(path, (res: HttpResponse, req: HttpRequest) => {
      const query = req.getQuery() as string | undefined;
      if (
        stopping ||
        (query !== undefined && query !== "") ||
        req.getHeader("origin") !== "" ||
        req.getHeader("content-length") !== "" ||
        req.getHeader("transfer-encoding") !== ""
      ) {
        serve(res, req);
        return;
      }
      const requestId = req.getHeader("x-request-id");
      const out = app.answerInstant(path, requestId === "" ? undefined : requestId);
      if (out === undefined) serve(res, req);
      else writeWhole(res, out, false, false);
    });
  }
  uwsApp.any("/*", serve);

  const host = options.host ?? "127.0.0.1";
  const listenSocket = await new Promise<us_listen_socket>((resolve, reject) => {
    uwsApp.listen(host, options.port, (socket) => {
      if (socket === false) reject(new Error(`cannot listen on ${host}:${options.port}`));
      else resolve(socket);
    });
  });
  const port = uws.us_socket_local_port(listenSocket);

  return {
    port,
    get inFlight() {
      return inFlight;
    },
    async stop(deadlineMs: number): Promise<StopResult> {
      if (!stopping) {
        stopping = true;
        uws.us_listen_socket_close(listenSocket);
      }
      if (inFlight > 0) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, deadlineMs);
          idle = () => {
            clearTimeout(timer);
            resolve();
          };
        });
      }
      const abandoned = inFlight;
      if (abandoned > 0)
        log.warn({ abandoned, deadlineMs }, "requests still running at the shutdown deadline");
      uwsApp.close?.();
      return { abandoned };
    },
  };
}

/**
 * `GET /ws`: the upgrade is authenticated first (async, so the response gets an abort handler
 * and the upgrade is corked); a refused caller is still upgraded and then closed with its close
 * code (4401), the one answer a browser's WebSocket can read. uWS sends pings, closes idle
 * sockets; oversized messages close with 1009; the chat handler watches backpressure.
 */
function serveWebSockets(uwsApp: TemplatedApp, handler: WsChatHandler, log: Logger): void {
  const behavior = handler.behavior;
  uwsApp.ws<WsUserData>("/ws", {
    // uWS drops a connection past its own limit without a close frame: keep that as the hard
    // bound (twice ours) and close with 1009 ourselves for anything over the configured size.
    maxPayloadLength: behavior.maxPayloadBytes * 2,
    idleTimeout: behavior.idleTimeoutSeconds,
    sendPingsAutomatically: true,
    // We close slow readers ourselves before uWS would drop a message.
    maxBackpressure: behavior.maxBackpressureBytes * 2,
    upgrade: (res: HttpResponse, req: HttpRequest, context: us_socket_context_t) => {
      const headers: Record<string, string> = {};
      req.forEach((key, value) => {
        headers[key] = value;
      });
      const query = req.getQuery();
      const key = req.getHeader("sec-websocket-key");
      const protocol = req.getHeader("sec-websocket-protocol");
      const extensions = req.getHeader("sec-websocket-extensions");
      let aborted = false;
      res.onAborted(() => {
        aborted = true;
      });
      handler.admit(headers, query).then(
        (admission) => {
          if (aborted) return;
          res.cork(() => res.upgrade<WsUserData>({ admission }, key, protocol, extensions, context));
        },
        (err: unknown) => {
          log.error({ err: err instanceof Error ? err.message : String(err) }, "websocket admission failed");
          if (aborted) return;
          res.cork(() =>
            res.upgrade<WsUserData>(
              { admission: { ok: false, code: 1011, reason: "internal error" } },
              key,
              protocol,
              extensions,
              context,
            ),
          );
        },
      );
    },
    open: (ws: WebSocket<WsUserData>) => {
      const data = ws.getUserData();
      if (!data.admission.ok) {
        ws.end(data.admission.code, data.admission.reason);
        return;
      }
      let closed = false;
      const socket: ChatSocket = {
        send(text: string): boolean {
          if (closed) return false;
          return ws.send(text, false) !== 2;
        },
        end(code: number, reason: string): void {
          if (closed) return;
          closed = true;
          ws.end(code, reason);
        },
        bufferedAmount: () => (closed ? 0 : ws.getBufferedAmount()),
        get closed() {
          return closed;
        },
        markClosed(): void {
          closed = true;
        },
      };
      data.socket = socket;
      handler.open(socket, data.admission.principal);
    },
    message: (ws: WebSocket<WsUserData>, message: ArrayBuffer) => {
      const socket = ws.getUserData().socket;
      if (socket === undefined) return;
      if (message.byteLength > behavior.maxPayloadBytes) {
        socket.end(1009, "message too big");
        return;
      }
      handler.message(socket, Buffer.from(message).toString("utf8"));
    },
    close: (ws: WebSocket<WsUserData>) => {
      const socket = ws.getUserData().socket;
      if (socket === undefined) return;
      socket.markClosed();
      handler.close(socket);
    },
  });
}
