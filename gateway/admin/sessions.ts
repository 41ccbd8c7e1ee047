/**
 * Console sessions, shared by every gateway through a NATS KV bucket: the browser holds a random
 * session id in an HttpOnly cookie; the bucket holds, under the id's SHA-256 (so reading the
 * bucket gives no usable cookie), who logged in, the session's CSRF token and when it was last
 * used. A session ends at logout (the key is deleted, on every gateway at once), after
 * `idleTimeoutMs` without a request, or `maxSessionMs` after login.
 */
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import type { KV } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import { ensureKvBucket, SfError } from "../../bus/index.ts";
import { GatewayErrorCodes } from "../errors.ts";

export interface AdminSession {
  /** The cookie value (never stored). */
  readonly id: string;
  /** `admin:<subject>`: the audit identity. */
  readonly actor: string;
  readonly via: "jwt" | "token" | "supabase";
  /** Sent back with every form and HTMX request. */
  readonly csrf: string;
  readonly createdAt: number;
  readonly seenAt: number;
}

interface StoredSession {
  actor: string;
  via: AdminSession["via"];
  csrf: string;
  createdAt: number;
  seenAt: number;
}

export interface AdminSessionsOptions {
  nc: NatsConnection;
  bucket: string;
  idleTimeoutMs: number;
  maxSessionMs: number;
  /** Replicas of the bucket (SF_STREAM_REPLICAS). Default 1. */
  replicas?: number;
  now?: () => number;
}

const ID_RE = /^[A-Za-z0-9_-]{43}$/;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

function keyOf(id: string): string {
  return createHash("sha256").update(id, "utf8").digest("hex");
}

export function newSecretToken(): string {
  return randomBytes(32).toString("base64url");
}

/** Equal strings, compared in time independent of where they differ. */
export function sameToken(a: string, b: string): boolean {
  const x = createHash("sha256").update(a, "utf8").digest();
  const y = createHash("sha256").update(b, "utf8").digest();
  return timingSafeEqual(x, y) && a.length === b.length;
}

export class AdminSessions {
  readonly #o: AdminSessionsOptions;
  readonly #now: () => number;
  #kv: Promise<KV> | undefined;

  constructor(options: AdminSessionsOptions) {
    this.#o = options;
    this.#now = options.now ?? Date.now;
  }

  get idleTimeoutMs(): number {
    return this.#o.idleTimeoutMs;
  }

  get maxSessionMs(): number {
    return this.#o.maxSessionMs;
  }

  async create(actor: string, via: AdminSession["via"]): Promise<AdminSession> {
    const id = newSecretToken();
    const now = this.#now();
    const stored: StoredSession = { actor, via, csrf: newSecretToken(), createdAt: now, seenAt: now };
    const kv = await this.#bucket();
    await kv.create(keyOf(id), encoder.encode(JSON.stringify(stored)));
    return { id, ...stored };
  }

  /**
   * The live session of a cookie value, its last use moved forward; undefined when the id is
   * malformed, unknown, logged out or expired.
   */
  async get(id: string | undefined): Promise<AdminSession | undefined> {
    if (id === undefined || !ID_RE.test(id)) return undefined;
    const kv = await this.#bucket();
    const key = keyOf(id);
    const entry = await kv.get(key);
    if (entry === null || entry.operation !== "PUT" || entry.value.length === 0) return undefined;
    let stored: StoredSession;
    try {
      stored = JSON.parse(decoder.decode(entry.value)) as StoredSession;
    } catch {
      await kv.delete(key);
      return undefined;
    }
    const now = this.#now();
    if (now - stored.seenAt > this.#o.idleTimeoutMs || now - stored.createdAt > this.#o.maxSessionMs) {
      await kv.delete(key);
      return undefined;
    }
    // Re-put at most every tenth of the idle time: the bucket's TTL (the idle timeout) restarts.
    if (now - stored.seenAt > Math.min(60_000, this.#o.idleTimeoutMs / 10)) {
      const next: StoredSession = { ...stored, seenAt: now };
      try {
        await kv.update(key, encoder.encode(JSON.stringify(next)), entry.revision);
        stored = next;
      } catch (err) {
        // A concurrent request moved it forward (or logout deleted it): read again.
        const again = await kv.get(key);
        if (again === null || again.operation !== "PUT" || again.value.length === 0) return undefined;
        if (!(err instanceof Error)) throw err;
      }
    }
    return { id, ...stored };
  }

  /** Ends the session everywhere. */
  async destroy(id: string): Promise<void> {
    if (!ID_RE.test(id)) return;
    const kv = await this.#bucket();
    await kv.delete(keyOf(id));
  }

  #bucket(): Promise<KV> {
    this.#kv ??= ensureKvBucket(this.#o.nc, this.#o.bucket, {
      ttlMs: this.#o.idleTimeoutMs,
      replicas: this.#o.replicas ?? 1,
    }).catch((err: unknown) => {
      this.#kv = undefined;
      throw new SfError(
        GatewayErrorCodes.ADMIN_SESSIONS_UNAVAILABLE,
        "the console's session store is unavailable",
        { cause: err, retryable: true },
      );
    });
    return this.#kv;
  }
}
