/**
 * What the attack tables share: sending a request as tenant A and checking the answer holds
 * nothing of tenant B (its markers, or ids of B that the request did not name) and no secret of
 * the deployment; expectations on refusals; the WebSocket chat as a client; counters for the
 * report.
 */
import { expect } from "vitest";
import WebSocket from "ws";
import { waitFor } from "../helpers/deadline.ts";
import type { AttackStack, CallOptions, Res, TenantWorld } from "./attack_stack.ts";

export interface AttackCounters {
  /** Requests (HTTP, WebSocket messages, bus requests) sent as an attack. */
  attacks: number;
  /** Answers checked for leaks. */
  checked: number;
}

export interface AttackContext {
  stack: AttackStack;
  a: TenantWorld;
  b: TenantWorld;
  counters: AttackCounters;
}

/** The strings of B that no answer to A may hold, unless A's own request named them. */
export function foreignStrings(ctx: AttackContext): string[] {
  const { a, b, stack } = ctx;
  return [
    ...Object.values(b.markers),
    b.id,
    b.slug,
    b.ownSlug,
    b.documentId,
    b.injectionDocumentId,
    // Not B's conversation id: A names it in its own requests, and the contract keeps a caller's
    // conversation id, so A's own database may hold a conversation of that id (A's, not B's).
    b.otherConversationId,
    b.jobId,
    b.keyId,
    b.revokedKeyId,
    b.key,
    b.revokedKey,
    // Secrets of the deployment and of A: never in an answer at all.
    a.key,
    a.revokedKey,
    a.markers.providerKey,
    stack.adminToken,
    stack.jwtSecret,
  ].filter((s) => s !== "");
}

/** Fails when `answer` holds a string of B (or a secret) that `request` did not carry. */
export function expectNoLeak(ctx: AttackContext, what: string, answer: string, request: string): void {
  ctx.counters.checked += 1;
  const found = foreignStrings(ctx).filter((s) => answer.includes(s) && !request.includes(s));
  expect(found, `${what}: the answer holds data of tenant B or a secret`).toEqual([]);
}

/** A's request: sent, counted, and its answer checked for leaks. */
export async function sendAs(
  ctx: AttackContext,
  method: string,
  path: string,
  options: CallOptions = {},
): Promise<Res> {
  ctx.counters.attacks += 1;
  const res = await ctx.stack.call(method, path, options);
  const request = `${path} ${JSON.stringify(options.headers ?? {})} ${
    options.body instanceof FormData ? formText(options.body) : JSON.stringify(options.body ?? "")
  }`;
  expectNoLeak(ctx, `${method} ${path}`, `${[...res.headers.entries()].join(" ")} ${res.text}`, request);
  expect(res.status, `${method} ${path}: ${res.text.slice(0, 300)}`).toBeLessThan(500);
  return res;
}

function formText(form: FormData): string {
  const parts: string[] = [];
  for (const [k, v] of form.entries()) parts.push(`${k}=${typeof v === "string" ? v : v.name}`);
  return parts.join("&");
}

export function codeOf(res: Res): unknown {
  return (res.body["error"] as { code?: unknown } | undefined)?.code;
}

/** The answer is a refusal: one of `statuses`, with an error envelope and (when given) one of `codes`. */
export function expectRefused(res: Res, what: string, statuses: number[], codes?: string[]): void {
  expect(statuses, `${what}: ${res.status} ${res.text.slice(0, 300)}`).toContain(res.status);
  const code = codeOf(res);
  expect(typeof code === "string" && code.startsWith("SF_ERR_"), `${what}: error envelope`).toBe(true);
  if (codes !== undefined) expect(codes, `${what}: ${String(code)}`).toContain(code);
}

/** A's key, as a bearer token. */
export function bearer(key: string): string {
  return `Bearer ${key}`;
}

export interface WsFrame {
  type: string;
  job_id?: string;
  text?: string;
  delta?: string;
  code?: string;
  conversation_id?: string;
  request_id?: string;
}

/** A chat socket: opens with `key`, sends messages, collects frames. */
export class WsClient {
  readonly frames: WsFrame[] = [];
  readonly closed: Promise<number>;
  readonly #ws: WebSocket;

  private constructor(ws: WebSocket) {
    this.#ws = ws;
    ws.on("message", (data: Buffer) => this.frames.push(JSON.parse(data.toString("utf8")) as WsFrame));
    this.closed = new Promise((resolve) => ws.on("close", (code: number) => resolve(code)));
  }

  /** Resolves once open, or with the close code when the server refuses the upgrade's credentials. */
  static async open(
    base: string,
    options: { token?: string; headers?: Record<string, string> },
  ): Promise<{ client: WsClient; opened: true } | { code: number; opened: false }> {
    const url = `${base.replace("http", "ws")}/ws${options.token === undefined ? "" : `?token=${encodeURIComponent(options.token)}`}`;
    const ws = new WebSocket(url, { headers: options.headers ?? {} });
    const client = new WsClient(ws);
    const outcome = await new Promise<"open" | number>((resolve, reject) => {
      ws.once("open", () => resolve("open"));
      ws.once("unexpected-response", (_req, res) => resolve(res.statusCode ?? 0));
      ws.once("error", reject);
      void client.closed.then((code) => resolve(code));
    });
    if (outcome !== "open") return { code: outcome, opened: false };
    // A refused key is closed right after the upgrade (4401/4403): `closed` says so.
    return { client, opened: true };
  }

  send(message: Record<string, unknown>): void {
    this.#ws.send(JSON.stringify(message));
  }

  /** The final frame (message or error) answering `requestId`. */
  final(requestId: string, timeoutMs = 20_000): Promise<WsFrame> {
    return waitFor(
      `the final frame of ${requestId}`,
      () =>
        this.frames.find((f) => f.request_id === requestId && (f.type === "message" || f.type === "error")),
      { timeoutMs },
    );
  }

  close(): void {
    this.#ws.close(1000);
  }
}
