/**
 * The chaos run's clients, with the log the checker reads afterwards: per tenant a steady loop of
 * HTTP text triggers (v1 and v2 in turn, each with an `Idempotency-Key` that is also its job id, so
 * a retry after a dropped connection, a 503 or a 504 can never make a second job), WebSocket chat
 * connections sending one message at a time, and now and then a voice trigger.
 *
 * Every message carries a marker (`m<16 hex>`) that the provider fixture's echo repeats in the
 * reply, so the checker can find each message's rows in the tenant databases whether or not the
 * client learnt its job id. A client never resends a WebSocket message (the chat socket has no
 * idempotency key): one that was in flight when its socket died is `interrupted` (outcome unknown
 * to the client) and the checker only requires it to be recorded at most once.
 */
import { randomUUID } from "node:crypto";
import WebSocket from "ws";
import { AGENT_SLUG } from "./stack.ts";
import type { ChaosTenant } from "./stack.ts";

export type Channel = "http_v1" | "http_v2" | "ws" | "voice";

/**
 * `accepted`: the platform answered with success (HTTP 2xx; the WebSocket's final message).
 * `rejected`: it answered with an error (its code is kept). `interrupted`: no answer at all (the
 * connection died and the retries, if any, ran out).
 */
export type Outcome = "pending" | "accepted" | "rejected" | "interrupted";

export interface Attempt {
  /** ms since the run's start. */
  at: number;
  gateway: number;
  ms: number;
  status?: number;
  code?: string;
  /** A transport failure (connection refused, reset, attempt timeout). */
  error?: string;
}

export interface ClientRecord {
  /** The request's id: the HTTP Idempotency-Key, the WebSocket request_id. */
  id: string;
  marker: string;
  tenant: number;
  channel: Channel;
  /** ms since the run's start, first attempt. */
  sentAt: number;
  doneAt?: number;
  outcome: Outcome;
  status?: number;
  /** The error code of a rejection (the last answer). */
  code?: string;
  /** WebSocket: a `claimed` frame came (the job exists). */
  claimed: boolean;
  jobId?: string;
  conversationId?: string;
  reply?: string;
  room?: string;
  attempts: Attempt[];
}

export interface LoadOptions {
  tenants: readonly ChaosTenant[];
  /** The gateways' base URLs (fixed: a restarted gateway comes back on its port). */
  gatewayUrls: readonly string[];
  /** Pause between one tenant's HTTP triggers. */
  httpThinkMs: number;
  /** WebSocket connections per tenant. */
  wsPerTenant: number;
  /** Pause between a socket's messages. */
  wsThinkMs: number;
  /** WebSocket messages to send in all (then the chat clients stop). */
  wsMessages: number;
  /** How long one HTTP trigger may keep retrying. Default 90 s. */
  httpBudgetMs?: number;
  /** One HTTP attempt's deadline (a frozen gateway; above the gateway's reply deadline). Default 25 s. */
  attemptTimeoutMs?: number;
  /** How long a WebSocket message waits for its answer before the socket is given up. */
  wsReplyTimeoutMs?: number;
}

/** The pause of a chat client after an error frame. */
const WS_BACKOFF_MS = 1000;

/** Codes worth a retry with the same Idempotency-Key. */
const RETRY_STATUS = new Set([429, 503, 504]);

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

function markerOf(id: string): string {
  return `m${id.replace(/-/g, "").slice(0, 16)}`;
}

function transportError(err: unknown): string {
  if (err instanceof Error) {
    const cause = (err as { cause?: { code?: unknown } }).cause;
    if (typeof cause?.code === "string") return cause.code;
    return err.name;
  }
  return String(err);
}

export class ChaosLoad {
  readonly records: ClientRecord[] = [];
  readonly #o: Required<LoadOptions>;
  readonly #t0: number;
  #running = false;
  #wsLeft: number;
  #loops: Array<Promise<void>> = [];
  readonly #sockets = new Set<WebSocket>();

  constructor(options: LoadOptions, t0: number) {
    this.#o = { httpBudgetMs: 90_000, attemptTimeoutMs: 25_000, wsReplyTimeoutMs: 25_000, ...options };
    this.#t0 = t0;
    this.#wsLeft = options.wsMessages;
  }

  now(): number {
    return performance.now() - this.#t0;
  }

  get running(): boolean {
    return this.#running;
  }

  /** WebSocket messages still to send. */
  get wsLeft(): number {
    return this.#wsLeft;
  }

  start(): void {
    this.#running = true;
    for (const tenant of this.#o.tenants) {
      this.#loops.push(this.#httpLoop(tenant));
      for (let slot = 0; slot < this.#o.wsPerTenant; slot++) this.#loops.push(this.#wsLoop(tenant, slot));
    }
  }

  /** Stops sending; resolves once every request in flight has its outcome. */
  async stop(): Promise<void> {
    this.#running = false;
    await Promise.all(this.#loops);
  }

  #record(tenant: number, channel: Channel): ClientRecord {
    const id = randomUUID();
    const rec: ClientRecord = {
      id,
      marker: markerOf(id),
      tenant,
      channel,
      sentAt: this.now(),
      outcome: "pending",
      claimed: false,
      attempts: [],
    };
    this.records.push(rec);
    return rec;
  }

  #message(rec: ClientRecord, what: string): string {
    // The marker first: the fixture's echo repeats the first twelve words.
    return `${rec.marker} tenant ${rec.tenant} ${what} please answer`;
  }

  // ---- HTTP --------------------------------------------------------------------------------

  async #httpLoop(tenant: ChaosTenant): Promise<void> {
    const conversations = { http_v1: randomUUID(), http_v2: randomUUID() } as const;
    const user = `chaos-http-${tenant.index}`;
    let n = 0;
    while (this.#running) {
      const channel = n % 2 === 0 ? "http_v1" : "http_v2";
      n += 1;
      const rec = this.#record(tenant.index, channel);
      rec.conversationId = conversations[channel];
      await this.#httpTrigger(
        tenant,
        rec,
        channel === "http_v1" ? "/api/v1/trigger-agent" : "/api/v2/trigger-agent",
        {
          agent_slug: AGENT_SLUG,
          mode: "text",
          user_id: user,
          message: this.#message(rec, `http ${n}`),
          conversation_id: rec.conversationId,
        },
      );
      if (this.#running) await sleep(this.#o.httpThinkMs);
    }
  }

  /** One voice trigger (v1, a new room) for a tenant with LiveKit credentials. */
  async voice(tenant: ChaosTenant, roomPrefix: string): Promise<ClientRecord> {
    const rec = this.#record(tenant.index, "voice");
    rec.room = `${roomPrefix}-${rec.marker}`;
    await this.#httpTrigger(tenant, rec, "/api/v1/trigger-agent", {
      agent_slug: AGENT_SLUG,
      mode: "voice",
      user_id: `chaos-voice-${tenant.index}`,
      room_name: rec.room,
    });
    return rec;
  }

  async #httpTrigger(
    tenant: ChaosTenant,
    rec: ClientRecord,
    path: string,
    body: Record<string, unknown>,
  ): Promise<void> {
    const urls = this.#o.gatewayUrls;
    let gw = tenant.index % urls.length;
    const deadline = rec.sentAt + this.#o.httpBudgetMs;
    for (;;) {
      const at = this.now();
      const attempt: Attempt = { at, gateway: gw, ms: 0 };
      rec.attempts.push(attempt);
      let waitMs = 200;
      try {
        const res = await fetch(`${urls[gw] as string}${path}`, {
          method: "POST",
          headers: {
            "content-type": "application/json",
            "x-api-key": tenant.apiKey,
            "idempotency-key": rec.id,
          },
          body: JSON.stringify(body),
          signal: AbortSignal.timeout(this.#o.attemptTimeoutMs),
        });
        const text = await res.text();
        attempt.ms = this.now() - at;
        attempt.status = res.status;
        let parsed: Record<string, unknown> | undefined;
        try {
          parsed = JSON.parse(text) as Record<string, unknown>;
        } catch {
          parsed = undefined;
        }
        if (res.ok && parsed !== undefined) {
          this.#accepted(rec, res.status, parsed);
          return;
        }
        const error = parsed?.["error"] as { code?: unknown } | undefined;
        const code = typeof error?.code === "string" ? error.code : `HTTP_${res.status}_WITHOUT_CODE`;
        attempt.code = code;
        const retryAfter = Number(res.headers.get("retry-after"));
        if (Number.isFinite(retryAfter) && retryAfter > 0) waitMs = Math.min(retryAfter * 1000, 2000);
        if (!RETRY_STATUS.has(res.status) || this.now() + waitMs > deadline) {
          rec.outcome = "rejected";
          rec.status = res.status;
          rec.code = code;
          rec.doneAt = this.now();
          return;
        }
      } catch (err) {
        attempt.ms = this.now() - at;
        attempt.error = transportError(err);
        // Another gateway may be up: the same key makes the retry the same job.
        gw = (gw + 1) % urls.length;
        if (this.now() + waitMs > deadline) {
          rec.outcome = "interrupted";
          rec.doneAt = this.now();
          return;
        }
      }
      await sleep(waitMs);
    }
  }

  #accepted(rec: ClientRecord, status: number, body: Record<string, unknown>): void {
    rec.outcome = "accepted";
    rec.status = status;
    rec.doneAt = this.now();
    if (rec.channel === "http_v2") {
      rec.reply = typeof body["response"] === "string" ? body["response"] : undefined;
      rec.jobId = typeof body["job_id"] === "string" ? body["job_id"] : undefined;
      if (typeof body["conversation_id"] === "string") rec.conversationId = body["conversation_id"];
      return;
    }
    const data = (body["data"] ?? {}) as Record<string, unknown>;
    if (typeof data["conversation_id"] === "string") rec.conversationId = data["conversation_id"];
    if (rec.channel === "voice") {
      const dispatch = (data["dispatch_info"] ?? {}) as Record<string, unknown>;
      rec.jobId = typeof dispatch["job_id"] === "string" ? dispatch["job_id"] : undefined;
      return;
    }
    // v1 does not say the job id (the platform derives it from the tenant and the Idempotency-Key).
    rec.reply = typeof data["response"] === "string" ? data["response"] : undefined;
  }

  // ---- WebSocket ---------------------------------------------------------------------------

  async #wsLoop(tenant: ChaosTenant, slot: number): Promise<void> {
    const urls = this.#o.gatewayUrls;
    let gw = (tenant.index + slot) % urls.length;
    const conversation = randomUUID();
    const user = `chaos-ws-${tenant.index}-${slot}`;
    let n = 0;
    while (this.#running && this.#wsLeft > 0) {
      const url = `${(urls[gw] as string).replace(/^http/, "ws")}/ws?token=${encodeURIComponent(tenant.apiKey)}`;
      const ws = await this.#open(url);
      if (ws === undefined) {
        gw = (gw + 1) % urls.length;
        await sleep(200);
        continue;
      }
      const healthy = await this.#chat(ws, tenant, gw, conversation, user, () => (n += 1));
      ws.terminate();
      this.#sockets.delete(ws);
      if (!healthy) gw = (gw + 1) % urls.length;
    }
  }

  #open(url: string): Promise<WebSocket | undefined> {
    return new Promise((resolve) => {
      const ws = new WebSocket(url, { handshakeTimeout: 5000 });
      const fail = (): void => {
        ws.terminate();
        resolve(undefined);
      };
      ws.once("open", () => {
        ws.off("error", fail);
        ws.off("close", fail);
        this.#sockets.add(ws);
        resolve(ws);
      });
      ws.once("error", fail);
      ws.once("close", fail);
    });
  }

  /** Sends one message at a time until the load stops (true) or the socket fails (false). */
  async #chat(
    ws: WebSocket,
    tenant: ChaosTenant,
    gw: number,
    conversation: string,
    user: string,
    count: () => number,
  ): Promise<boolean> {
    let current: { rec: ClientRecord; settle: () => void } | undefined;
    let closed = false;
    const onClose = (): void => {
      closed = true;
      current?.settle();
    };
    ws.on("close", onClose);
    ws.on("error", onClose);
    ws.on("message", (data: Buffer) => {
      let frame: Record<string, unknown>;
      try {
        frame = JSON.parse(data.toString("utf8")) as Record<string, unknown>;
      } catch {
        return;
      }
      const cur = current;
      if (cur === undefined || frame["request_id"] !== cur.rec.id) return;
      const rec = cur.rec;
      switch (frame["type"]) {
        case "claimed":
          rec.claimed = true;
          if (typeof frame["job_id"] === "string") rec.jobId = frame["job_id"];
          if (typeof frame["conversation_id"] === "string") rec.conversationId = frame["conversation_id"];
          break;
        case "message":
          rec.outcome = "accepted";
          rec.reply = typeof frame["text"] === "string" ? frame["text"] : undefined;
          if (typeof frame["job_id"] === "string") rec.jobId = frame["job_id"];
          rec.doneAt = this.now();
          cur.settle();
          break;
        case "error":
          rec.outcome = "rejected";
          rec.code = typeof frame["code"] === "string" ? frame["code"] : "WS_ERROR_WITHOUT_CODE";
          rec.doneAt = this.now();
          cur.settle();
          break;
        default:
          break;
      }
    });
    try {
      while (this.#running && this.#wsLeft > 0 && !closed) {
        this.#wsLeft -= 1;
        const rec = this.#record(tenant.index, "ws");
        rec.conversationId = conversation;
        const attempt: Attempt = { at: rec.sentAt, gateway: gw, ms: 0 };
        rec.attempts.push(attempt);
        let timer: NodeJS.Timeout | undefined;
        const settled = new Promise<void>((resolve) => {
          current = { rec, settle: resolve };
          timer = setTimeout(resolve, this.#o.wsReplyTimeoutMs);
        });
        ws.send(
          JSON.stringify({
            type: "message",
            agent_slug: AGENT_SLUG,
            text: this.#message(rec, `ws ${count()}`),
            conversation_id: conversation,
            user_id: user,
            request_id: rec.id,
          }),
        );
        await settled;
        clearTimeout(timer);
        current = undefined;
        attempt.ms = this.now() - attempt.at;
        if (rec.outcome === "pending") {
          // The socket died, or its gateway stopped answering: the client cannot know the outcome.
          rec.outcome = "interrupted";
          rec.doneAt = this.now();
          attempt.error = closed ? "socket closed" : "no answer";
          return false;
        }
        attempt.code = rec.code;
        // A client told "no" waits a moment before its next message, as a person would.
        const pauseMs =
          rec.outcome === "rejected" ? Math.max(this.#o.wsThinkMs, WS_BACKOFF_MS) : this.#o.wsThinkMs;
        if (this.#running) await sleep(pauseMs);
      }
      return !closed;
    } finally {
      ws.off("close", onClose);
      ws.off("error", onClose);
      ws.removeAllListeners("message");
    }
  }
}
