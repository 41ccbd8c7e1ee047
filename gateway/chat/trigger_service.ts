/**
 * What every trigger front door shares: who the tenant is (and whether the caller may use it:
 * an API key needs the scope `agents:trigger`, see auth/scopes.ts), the rate limits, the client's
 * display name, and the text and voice calls to the tenant actor.
 *
 * `Idempotency-Key` (1–200 of `A-Za-z0-9._:-`) is the job's id: a retry with the same key never
 * starts a second job. A text retry answers the first job's reply — waiting for it while it runs,
 * at once (the recorded reply) once it has finished — with its text delivered as one token; a
 * voice retry answers the same room and token while the owner remembers the first answer.
 */
import { randomUUID } from "node:crypto";
import { DispatchOpErrorCodes, PlatformOps } from "../../actors/index.ts";
import type { ClientDetailView, TriggerReply, VoiceTriggerInfo } from "../../actors/index.ts";
import { requestReply, SfError } from "../../bus/index.ts";
import type { ActorClient } from "../actor_client.ts";
import type { Authenticator, Principal } from "../auth/authenticator.ts";
import { requireScope, Scopes } from "../auth/scopes.ts";
import { ValidationError } from "../errors.ts";
import type { GatewayRequest } from "../http_types.ts";
import type { RateLimiter } from "../rate_limit.ts";
import { runTextTurn, triggerRequestOptions } from "./text_turn.ts";
import type { ChatBus, TextTurnRequest, TextTurnResult } from "./text_turn.ts";

export interface TriggerServiceDeps {
  auth: Authenticator;
  actors: ActorClient;
  bus: ChatBus;
  limiter: RateLimiter;
}

export interface TenantCaller {
  tenant: string;
  principal: Principal;
}

/** Session ids the chat subject can carry as one token. */
const SESSION_RE = /^[A-Za-z0-9_-]{1,128}$/;
/** Idempotency keys accepted from `Idempotency-Key`. */
const IDEMPOTENCY_RE = /^[A-Za-z0-9._:-]{1,200}$/;
const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const CLIENT_NAME_CACHE_MS = 60_000;

/** The caller's session id when it is a safe subject token, else a new one. */
export function pickSessionId(given: unknown): string {
  return pickSession(given).sessionId;
}

/**
 * The caller's session id when it is a safe subject token, else a new one that this gateway made
 * up (`madeUpSession`: its frames can come through the gateway's chat inbox, see text_turn.ts).
 */
export function pickSession(given: unknown): { sessionId: string; madeUpSession: boolean } {
  return typeof given === "string" && SESSION_RE.test(given)
    ? { sessionId: given, madeUpSession: false }
    : { sessionId: `gw-${randomUUID()}`, madeUpSession: true };
}

/**
 * Whether a value has the shape of an idempotency key (1–200 of `A-Za-z0-9._:-`): the
 * `Idempotency-Key` header, and the `idempotency_key` of a WebSocket message (ws_chat.ts).
 */
export function isIdempotencyKey(value: unknown): value is string {
  return typeof value === "string" && IDEMPOTENCY_RE.test(value);
}

/** The request's `Idempotency-Key` when it is a sane one. */
export function idempotencyKey(req: Pick<GatewayRequest, "headers">): string | undefined {
  const given = req.headers["idempotency-key"];
  return isIdempotencyKey(given) ? given : undefined;
}

/** The job's idempotency id: the request's `Idempotency-Key` when sane, else a new uuid. */
export function pickJobId(req: Pick<GatewayRequest, "headers">): string {
  return idempotencyKey(req) ?? randomUUID();
}

export class TriggerService {
  readonly #d: TriggerServiceDeps;
  readonly #names = new Map<string, { name: string; expiresAtMs: number }>();

  constructor(deps: TriggerServiceDeps) {
    this.#d = deps;
  }

  get bus(): ChatBus {
    return this.#d.bus;
  }

  /**
   * The tenant of a trigger: `client_id` when given (an API key of another tenant gets 403),
   * else the API key's tenant; admins must name the client (SF_ERR_VALIDATION_FAILED). An API key
   * without the scope `agents:trigger` gets 403.
   */
  async tenantOf(req: GatewayRequest, clientId: unknown): Promise<TenantCaller> {
    if (typeof clientId === "string" && clientId !== "") {
      if (!UUID_RE.test(clientId)) {
        throw new ValidationError("client_id must be a uuid", {
          details: { location: "body", issues: [{ path: "/client_id", message: "must be a uuid" }] },
        });
      }
      const tenant = clientId.toLowerCase();
      const principal = await this.#d.auth.tenant(req, tenant);
      requireScope(principal, Scopes.agentsTrigger);
      return { tenant, principal };
    }
    const principal = await this.#d.auth.authenticate(req);
    requireScope(principal, Scopes.agentsTrigger);
    if (principal.type === "api_key") return { tenant: principal.clientId, principal };
    throw new ValidationError("client_id is required with admin credentials", {
      details: { location: "body", issues: [{ path: "/client_id", message: "is required" }] },
    });
  }

  /** Takes a token from the caller's API key and tenant buckets (429 when empty). */
  async limit(caller: TenantCaller): Promise<void> {
    if (!this.#d.limiter.enabled) return;
    await this.#d.limiter.take(
      caller.tenant,
      caller.principal.type === "api_key" ? caller.principal.keyId : undefined,
    );
  }

  /** The client's name (cached for a minute); 404 SF_ERR_TENANT_NOT_FOUND for an unknown client. */
  async clientName(tenant: string, req: GatewayRequest): Promise<string> {
    const now = performance.now();
    const hit = this.#names.get(tenant);
    if (hit !== undefined && hit.expiresAtMs > now) return hit.name;
    const detail = await this.#d.actors.platform<ClientDetailView>(
      PlatformOps.clientsGet,
      { id: tenant },
      req,
    );
    if (this.#names.size >= 10_000) this.#names.clear();
    this.#names.set(tenant, { name: detail.name, expiresAtMs: now + CLIENT_NAME_CACHE_MS });
    return detail.name;
  }

  text(turn: TextTurnRequest): Promise<TextTurnResult> {
    return runTextTurn(this.#d.bus, turn);
  }

  /**
   * A voice trigger: the tenant actor creates the room, mints the user's token and answers once a
   * worker has claimed the job. A reply without voice details is refused, never made up.
   */
  async voice(
    tenant: string,
    body: Record<string, unknown>,
    jobId: string,
    req: GatewayRequest,
  ): Promise<{ reply: TriggerReply; voice: VoiceTriggerInfo }> {
    const bus = this.#d.bus;
    const { nc, subjects, triggerTimeoutMs } = bus;
    const reply = await requestReply<TriggerReply>(
      nc,
      subjects.tenantOp(tenant, "trigger"),
      { ...body, mode: "voice", job_id: jobId },
      {
        tenant,
        ...triggerRequestOptions(bus, triggerTimeoutMs),
        requestId: jobId,
        traceId: req.id,
        signal: req.signal,
      },
    );
    const voice = reply.body.voice;
    if (voice === undefined) {
      throw new SfError(DispatchOpErrorCodes.MODE_UNAVAILABLE, "voice dispatch did not return room details", {
        details: { mode: "voice" },
      });
    }
    return { reply: reply.body, voice };
  }
}
