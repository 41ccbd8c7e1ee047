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
} from "@trufflesuite/uws-js-unofficial";
import type { Logger } from "pino";
import { PayloadTooLargeError, ShuttingDownError } from "./errors.ts";
import type { GatewayApp } from "./gateway_app.ts";
import type { RawRequest, SerializedResponse } from "./http_types.ts";

export interface UwsServerOptions {
  app: GatewayApp;
  log: Logger;
  /** Interface to bind. Default 127.0.0.1. */
  host?: string;
  /** Port; 0 picks a free one. */
  port: number;
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

function statusLine(status: number): string {
  return `${status} ${STATUS_CODES[status] ?? "Unknown"}`;
}

function copyChunk(chunk: ArrayBuffer): Buffer {
  return Buffer.from(new Uint8Array(chunk).slice());
}

export async function startUwsServer(options: UwsServerOptions): Promise<UwsServer> {
  const { app, log } = options;
  const uwsApp: ClosableApp = uws.App();
  const maxBodyBytes = app.maxBodyBytes;
  let inFlight = 0;
  let stopping = false;
  let idle: (() => void) | undefined;

  const settle = (): void => {
    inFlight -= 1;
    if (inFlight === 0 && idle !== undefined) idle();
  };

  uwsApp.any("/*", (res: HttpResponse, req: HttpRequest) => {
    // The HttpRequest dies when this callback returns: copy everything now.
    const headers: Record<string, string> = {};
    req.forEach((key, value) => {
      headers[key] = key in headers ? `${headers[key]}, ${value}` : value;
    });
    const query = req.getQuery();
    const raw: RawRequest = {
      method: req.getCaseSensitiveMethod().toUpperCase(),
      url: query === "" ? req.getUrl() : `${req.getUrl()}?${query}`,
      headers,
      body: Buffer.alloc(0),
      remoteAddress: Buffer.from(res.getRemoteAddressAsText()).toString(),
    };
    const controller = new AbortController();
    raw.signal = controller.signal;
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
      const close = closeConnection || stopping;
      res.cork(() => {
        res.writeStatus(statusLine(out.status));
        for (const [key, value] of Object.entries(out.headers)) res.writeHeader(key, value);
        if (raw.method === "HEAD") res.endWithoutBody(out.body.length, close);
        else res.end(out.body, close);
      });
      finish();
    };

    if (stopping) {
      write(app.reject(raw, new ShuttingDownError()), true);
      return;
    }

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
      app.handle(raw).then(
        (out) => write(out, false),
        (err: unknown) => {
          log.error({ err: err instanceof Error ? err.message : String(err) }, "request pipeline failed");
          write(app.reject(raw, err), true);
        },
      );
    });
  });

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
