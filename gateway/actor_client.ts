/**
 * The gateway's calls into the actor runtime: platform operations (any host answers) and tenant
 * operations (routed to the owner of the tenant), each under the configured overall deadline and
 * traced with the HTTP request id.
 */
import type { NatsConnection } from "@nats-io/transport-node";
import { PlatformOps, StoreErrorCodes, TenantNotFoundError } from "../actors/index.ts";
import { RemoteError, requestReply } from "../bus/index.ts";
import type { Subjects } from "../bus/index.ts";
import type { GatewayRequest } from "./http_types.ts";

export interface ActorClientOptions {
  nc: NatsConnection;
  subjects: Subjects;
  timeoutMs: number;
}

export class ActorClient {
  readonly #options: ActorClientOptions;

  constructor(options: ActorClientOptions) {
    this.#options = options;
  }

  async platform<T>(op: string, body: unknown, req: GatewayRequest): Promise<T> {
    const { nc, subjects, timeoutMs } = this.#options;
    const reply = await requestReply<T>(nc, subjects.platformOp(op), body, {
      timeoutMs,
      traceId: req.id,
      signal: req.signal,
    });
    return reply.body;
  }

  /**
   * A tenant operation. `clientId` must already be a checked uuid. A client without a database
   * answers SF_ERR_TENANT_DATABASE_NOT_CONFIGURED; when the client does not exist at all, that
   * becomes SF_ERR_TENANT_NOT_FOUND.
   */
  async tenant<T>(clientId: string, op: string, body: unknown, req: GatewayRequest): Promise<T> {
    const { nc, subjects, timeoutMs } = this.#options;
    try {
      const reply = await requestReply<T>(nc, subjects.tenantOp(clientId, op), body, {
        tenant: clientId,
        timeoutMs,
        traceId: req.id,
        signal: req.signal,
      });
      return reply.body;
    } catch (err) {
      if (err instanceof RemoteError && err.code === StoreErrorCodes.TENANT_DATABASE_NOT_CONFIGURED) {
        await this.platform(PlatformOps.clientsGet, { id: clientId }, req);
        throw err;
      }
      if (err instanceof RemoteError && err.code === StoreErrorCodes.TENANT_NOT_FOUND) {
        throw new TenantNotFoundError(`client ${clientId} not found`, { details: { clientId } });
      }
      throw err;
    }
  }
}
