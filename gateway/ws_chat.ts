/**
 * Text chat over `GET /ws`, independent of uWS (the shell adapts its sockets to `ChatSocket`).
 * The caller authenticates with an API key during the upgrade (`Authorization`/`X-API-Key`, or
 * `?token=` for browsers); the key needs the scope `agents:trigger` (auth/scopes.ts), and a
 * browser's `Origin` must be in the global CORS list or the key's tenant's list (cors.ts), else
 * the socket is closed with 4403. Each `{type:"message", agent_slug, text, conversation_id?, user_id?,
 * request_id?, idempotency_key?}` runs one text turn; the socket gets `{type:"claimed"}`, the job's
 * `{type:"token"}` frames in order and a final `{type:"message"}`, or `{type:"error", code, message}`.
 * A reader that lets more than the bound queue up is closed with 1008, so a slow client cannot grow
 * the gateway's memory.
 *
 * `idempotency_key` is the WebSocket form of the HTTP `Idempotency-Key` (same shape: 1–200 of
 * `A-Za-z0-9._:-`, anything else is refused with SF_ERR_VALIDATION_FAILED): it names the job, so a
 * client that reconnects and sends the same message again with the same key never starts a second
 * turn. It gets the first job's reply instead — waiting for it while it runs, at once (the recorded
 * turn) once it has finished — as one `{type:"token"}` frame with the whole text and the final
 * `{type:"message"}`. The same key with another text, agent or user_id answers
 * `{type:"error", code:"SF_ERR_IDEMPOTENCY_KEY_REUSED"}`.
 */
import { randomUUID } from "node:crypto";
import { setMaxListeners } from "node:events";
import type { Logger } from "pino";
import { PlatformErrorCodes } from "../actors/index.ts";
import { SfError } from "../bus/index.ts";
import type { Authenticator, Principal } from "./auth/authenticator.ts";
import { hasScope, Scopes } from "./auth/scopes.ts";
import { isIdempotencyKey } from "./chat/trigger_service.ts";
import type { TriggerService } from "./chat/trigger_service.ts";
import type { GatewayWsConfig } from "./config.ts";
import { publicError, statusForCode } from "./error_status.ts";
import { GatewayErrorCodes } from "./errors.ts";
import type { GatewayRequest } from "./http_types.ts";
import type { GatewayMetrics } from "./metrics.ts";
import { pickRequestId } from "./request_parsing.ts";

export const WsCloseCodes = {
  UNAUTHENTICATED: 4401,
  /** The key may not chat (scope), or not from this page's origin. */
  FORBIDDEN: 4403,
  POLICY: 1008,
  TOO_BIG: 1009,
  INTERNAL: 1011,
} as const;

export type WsAdmission =
  | { ok: true; principal: Extract<Principal, { type: "api_key" }> }
  | { ok: false; code: number; reason: string };

/** One open socket as the chat handler sees it. */
export interface ChatSocket {
  /** Sends a text frame; false when it was dropped (closed, or over uWS's own limit). */
  send(text: string): boolean;
  end(code: number, reason: string): void;
  bufferedAmount(): number;
  readonly closed: boolean;
  markClosed(): void;
}

export interface WsChatHandler {
  readonly behavior: GatewayWsConfig;
  admit(headers: Readonly<Record<string, string>>, query: string): Promise<WsAdmission>;
  open(socket: ChatSocket, principal: Extract<Principal, { type: "api_key" }>): void;
  message(socket: ChatSocket, text: string): void;
  close(socket: ChatSocket): void;
}

interface Connection {
  principal: Extract<Principal, { type: "api_key" }>;
  sessionId: string;
  controller: AbortController;
  inFlight: number;
}

const SLUG_RE = /^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$/;

export interface WsChatOptions {
  auth: Authenticator;
  triggers: TriggerService;
  metrics: GatewayMetrics;
  config: GatewayWsConfig;
  log: Logger;
}

export class WsChat implements WsChatHandler {
  readonly behavior: GatewayWsConfig;
  readonly #o: WsChatOptions;
  readonly #connections = new Map<ChatSocket, Connection>();

  constructor(options: WsChatOptions) {
    this.#o = options;
    this.behavior = options.config;
  }

  get connections(): number {
    return this.#connections.size;
  }

  async admit(headers: Readonly<Record<string, string>>, query: string): Promise<WsAdmission> {
    const token = new URLSearchParams(query).get("token");
    const authHeaders: Record<string, string> = { ...headers };
    if (token !== null && token !== "" && authHeaders["authorization"] === undefined) {
      authHeaders["authorization"] = `Bearer ${token}`;
    }
    const req = {
      id: randomUUID(),
      headers: authHeaders,
      signal: new AbortController().signal,
      // A browser's WebSocket has no preflight: the upgrade is held to the key's tenant's origins.
      context: { cors: "tenant" },
    } as unknown as GatewayRequest;
    try {
      const principal = await this.#o.auth.authenticate(req);
      if (principal.type !== "api_key") {
        return { ok: false, code: WsCloseCodes.POLICY, reason: "an API key is required" };
      }
      if (!hasScope(principal.scopes, Scopes.agentsTrigger)) {
        return { ok: false, code: WsCloseCodes.FORBIDDEN, reason: `scope ${Scopes.agentsTrigger} required` };
      }
      return { ok: true, principal };
    } catch (err) {
      if (err instanceof SfError && err.code === GatewayErrorCodes.CORS_ORIGIN_DENIED) {
        return { ok: false, code: WsCloseCodes.FORBIDDEN, reason: "origin not allowed" };
      }
      // Any refusal of the credentials (401/403, a malformed key) closes as unauthenticated.
      const status = err instanceof SfError ? statusForCode(err.code).status : 500;
      if (err instanceof SfError && (err.code === PlatformErrorCodes.UNAUTHENTICATED || status < 500)) {
        return { ok: false, code: WsCloseCodes.UNAUTHENTICATED, reason: "unauthenticated" };
      }
      throw err;
    }
  }

  open(socket: ChatSocket, principal: Extract<Principal, { type: "api_key" }>): void {
    const controller = new AbortController();
    // Every turn in flight listens on the connection's signal (the turn and its trigger request).
    setMaxListeners(4 * this.#o.config.maxInFlight + 10, controller.signal);
    this.#connections.set(socket, {
      principal,
      sessionId: `ws-${randomUUID()}`,
      controller,
      inFlight: 0,
    });
    this.#o.metrics.wsConnections.set(this.#connections.size);
  }

  close(socket: ChatSocket): void {
    const conn = this.#connections.get(socket);
    if (conn === undefined) return;
    this.#connections.delete(socket);
    conn.controller.abort();
    this.#o.metrics.wsConnections.set(this.#connections.size);
  }

  message(socket: ChatSocket, text: string): void {
    const conn = this.#connections.get(socket);
    if (conn === undefined) return;
    let msg: unknown;
    try {
      msg = JSON.parse(text);
    } catch (err) {
      this.#error(socket, conn, undefined, "SF_ERR_BAD_JSON", "the message is not valid JSON", err);
      return;
    }
    const m = (typeof msg === "object" && msg !== null ? msg : {}) as Record<string, unknown>;
    const requestId = typeof m["request_id"] === "string" ? m["request_id"].slice(0, 128) : undefined;
    if (
      m["type"] !== "message" ||
      typeof m["agent_slug"] !== "string" ||
      !SLUG_RE.test(m["agent_slug"]) ||
      typeof m["text"] !== "string" ||
      m["text"] === "" ||
      m["text"].length > 32_000 ||
      (m["conversation_id"] !== undefined && typeof m["conversation_id"] !== "string") ||
      (m["user_id"] !== undefined && typeof m["user_id"] !== "string")
    ) {
      this.#error(
        socket,
        conn,
        requestId,
        "SF_ERR_VALIDATION_FAILED",
        "expected {type:'message', agent_slug, text, conversation_id?, user_id?, idempotency_key?}",
      );
      return;
    }
    const key = m["idempotency_key"];
    if (key !== undefined && !isIdempotencyKey(key)) {
      this.#error(
        socket,
        conn,
        requestId,
        "SF_ERR_VALIDATION_FAILED",
        "idempotency_key must be 1-200 characters of A-Z a-z 0-9 . _ : -",
      );
      return;
    }
    if (conn.inFlight >= this.#o.config.maxInFlight) {
      this.#error(socket, conn, requestId, "SF_ERR_OVERLOADED", "too many replies in flight on this socket");
      return;
    }
    conn.inFlight += 1;
    void this.#turn(socket, conn, {
      agentSlug: m["agent_slug"],
      text: m["text"],
      conversationId: m["conversation_id"],
      userId: m["user_id"] ?? `ws-key-${conn.principal.keyId}`,
      requestId,
      idempotencyKey: key,
    })
      .catch((err: unknown) => {
        if (conn.controller.signal.aborted) return;
        const e = publicError(err);
        this.#error(socket, conn, requestId, e.code, e.message);
      })
      .finally(() => {
        conn.inFlight -= 1;
      });
  }

  async #turn(
    socket: ChatSocket,
    conn: Connection,
    m: {
      agentSlug: string;
      text: string;
      conversationId?: string;
      userId: string;
      requestId?: string;
      idempotencyKey?: string;
    },
  ): Promise<void> {
    const { triggers } = this.#o;
    const tenant = conn.principal.clientId;
    let jobId = "";
    await triggers.limit({ tenant, principal: conn.principal });
    const turn = await triggers.text({
      tenant,
      sessionId: conn.sessionId,
      // `ws-<uuid>`, made up by this gateway: the connection's frames come through its chat inbox.
      madeUpSession: true,
      // The caller's key names the job (as the HTTP Idempotency-Key does): a repeat joins it.
      jobId: m.idempotencyKey ?? randomUUID(),
      idempotent: m.idempotencyKey !== undefined,
      body: {
        agent_slug: m.agentSlug,
        user_id: m.userId,
        message: m.text,
        ...(m.conversationId === undefined ? {} : { conversation_id: m.conversationId }),
      },
      // The caller's request_id is echoed in frames; it names the trace only when it is a sane
      // token (it travels in a NATS header, where control characters are refused).
      traceId: pickRequestId(m.requestId),
      signal: conn.controller.signal,
      onClaimed: (reply) => {
        jobId = reply.job_id;
        this.#send(socket, conn, {
          type: "claimed",
          job_id: reply.job_id,
          conversation_id: reply.conversation_id,
          ...(m.requestId === undefined ? {} : { request_id: m.requestId }),
        });
      },
      onToken: (delta, seq) => {
        this.#send(socket, conn, { type: "token", job_id: jobId, seq, delta });
      },
    });
    this.#send(socket, conn, {
      type: "message",
      job_id: turn.reply.job_id,
      conversation_id: turn.conversationId,
      text: turn.text,
      citations: turn.citations,
      ...(m.requestId === undefined ? {} : { request_id: m.requestId }),
    });
  }

  /** Sends, or closes a reader that has let more than the bound queue up. */
  #send(socket: ChatSocket, conn: Connection, frame: Record<string, unknown>): void {
    if (socket.closed) return;
    if (socket.bufferedAmount() > this.#o.config.maxBackpressureBytes) {
      this.#o.log.warn({ buffered: socket.bufferedAmount() }, "slow websocket reader closed");
      conn.controller.abort();
      socket.end(WsCloseCodes.POLICY, "slow reader");
      return;
    }
    if (!socket.send(JSON.stringify(frame))) {
      conn.controller.abort();
      socket.end(WsCloseCodes.POLICY, "slow reader");
    }
  }

  #error(
    socket: ChatSocket,
    conn: Connection,
    requestId: string | undefined,
    code: string,
    message: string,
    cause?: unknown,
  ): void {
    if (cause !== undefined) this.#o.log.debug({ code }, "websocket message refused");
    this.#send(socket, conn, {
      type: "error",
      code,
      message,
      ...(requestId === undefined ? {} : { request_id: requestId }),
    });
  }
}
