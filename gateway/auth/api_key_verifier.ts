/**
 * API key checks for the gateway: `api-keys-verify` over NATS (any actor host answers), with a
 * short cache of positive answers keyed by the key's SHA-256 (never the key itself). An answer
 * carries the tenant's CORS origins, so it is cached with them. Revocations, client deletions and
 * settings changes, announced on `<prefix>.evt.client.<id>.*`, evict at once; the cache lifetime
 * bounds what a missed event can keep alive.
 */
import { hash } from "node:crypto";
import type { NatsConnection, Subscription } from "@nats-io/transport-node";
import type { Logger } from "pino";
import { ClientEvents, PlatformErrorCodes, PlatformOps, UnauthenticatedError } from "../../actors/index.ts";
import type { VerifiedApiKey } from "../../actors/index.ts";
import { isToken, RemoteError, requestReply } from "../../bus/index.ts";
import type { Subjects } from "../../bus/index.ts";

export interface ApiKeyVerifierOptions {
  nc: NatsConnection;
  subjects: Subjects;
  /** How long a positive answer is reused; 0 disables the cache. */
  cacheMs: number;
  /** Deadline of one verification request. */
  timeoutMs: number;
  /** Entries kept at most (oldest evicted first). Default 10000. */
  maxEntries?: number;
}

interface Entry {
  value: VerifiedApiKey;
  expiresAtMs: number;
}

export class ApiKeyVerifier {
  readonly #options: ApiKeyVerifierOptions;
  readonly #cache = new Map<string, Entry>();
  readonly #maxEntries: number;

  constructor(options: ApiKeyVerifierOptions) {
    this.#options = options;
    this.#maxEntries = options.maxEntries ?? 10_000;
  }

  /** The key's id, client and scopes; throws SF_ERR_UNAUTHENTICATED for any key that is not valid. */
  async verify(key: string, traceId?: string): Promise<VerifiedApiKey> {
    const id = hash("sha256", key, "hex");
    const now = performance.now();
    const hit = this.#cache.get(id);
    if (hit !== undefined && hit.expiresAtMs > now) return hit.value;
    if (hit !== undefined) this.#cache.delete(id);
    let value: VerifiedApiKey;
    try {
      const reply = await requestReply<VerifiedApiKey>(
        this.#options.nc,
        this.#options.subjects.platformOp(PlatformOps.apiKeysVerify),
        { key },
        { timeoutMs: this.#options.timeoutMs, ...(traceId === undefined ? {} : { traceId }) },
      );
      value = reply.body;
    } catch (err) {
      if (err instanceof RemoteError && err.code === PlatformErrorCodes.UNAUTHENTICATED) {
        throw new UnauthenticatedError("the API key is not valid", { details: { reason: "api_key" } });
      }
      throw err;
    }
    if (this.#options.cacheMs > 0) {
      if (this.#cache.size >= this.#maxEntries) {
        const oldest = this.#cache.keys().next();
        if (oldest.done !== true) this.#cache.delete(oldest.value);
      }
      this.#cache.set(id, { value, expiresAtMs: now + this.#options.cacheMs });
    }
    return value;
  }

  /** Forgets every cached key of a client. */
  dropClient(clientId: string): void {
    for (const [id, entry] of this.#cache) {
      if (entry.value.clientId === clientId) this.#cache.delete(id);
    }
  }

  /** Evicts on the platform's client events (key revoked, client deleted, credentials or settings changed). */
  watch(log: Logger): Subscription {
    const { nc, subjects } = this.#options;
    const prefixTokens = subjects.prefix.split(".").length;
    return nc.subscribe(`${subjects.prefix}.evt.client.*.*`, {
      callback: (err, msg) => {
        if (err) {
          log.warn({ err: err.message }, "client event subscription error");
          return;
        }
        const tokens = msg.subject.split(".");
        const clientId = tokens[prefixTokens + 2];
        const what = tokens[prefixTokens + 3];
        if (!isToken(clientId)) return;
        if (
          what === ClientEvents.apiKeys ||
          what === ClientEvents.credentials ||
          what === ClientEvents.settings
        ) {
          this.dropClient(clientId);
        }
      },
    });
  }
}
