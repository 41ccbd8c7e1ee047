/**
 * The CLI's way into the running platform, as the gateway's: a NATS client making platform
 * requests (`<prefix>.platform.<op>`, any actor host answers) and tenant requests (routed to the
 * owner of the tenant), each under the configured deadline. Changes are recorded in the audit
 * log as `system:cli`.
 */
import { randomUUID } from "node:crypto";
import type { NatsConnection } from "@nats-io/transport-node";
import {
  BusErrorCodes,
  connectBus,
  createSubjects,
  encodeBody,
  fromWireError,
  readReply,
  RemoteError,
  ReplyMux,
  requestHeaders,
  requestReply,
  SfError,
} from "../../../bus/index.ts";
import type { Subjects } from "../../../bus/index.ts";
import { PlatformOps } from "../../platform/messages.ts";
import type { ClientDetailView, ClientsListReply } from "../../platform/messages.ts";
import { StoreErrorCodes, TenantNotFoundError } from "../../store/errors.ts";
import type { CliConfig } from "./config.ts";

/** Who the audit log names for changes made with the CLI. */
export const CLI_ACTOR = "system:cli";

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function isUuid(value: string): boolean {
  return UUID_RE.test(value);
}

export class PlatformClient implements AsyncDisposable {
  readonly nc: NatsConnection;
  readonly subjects: Subjects;
  readonly timeoutMs: number;

  private constructor(nc: NatsConnection, subjects: Subjects, timeoutMs: number) {
    this.nc = nc;
    this.subjects = subjects;
    this.timeoutMs = timeoutMs;
  }

  static async connect(config: CliConfig): Promise<PlatformClient> {
    const subjects = createSubjects({ prefix: config.subjectPrefix, partitions: config.partitions });
    const nc = await connectBus({
      servers: config.natsUrl,
      name: "sf-cli",
      connectTimeoutMs: config.connectTimeoutMs,
      waitOnFirstConnect: false,
    });
    return new PlatformClient(nc, subjects, config.requestTimeoutMs);
  }

  async platform<T>(op: string, body: unknown, timeoutMs = this.timeoutMs): Promise<T> {
    return (await requestReply<T>(this.nc, this.subjects.platformOp(op), body, { timeoutMs })).body;
  }

  /**
   * An operation any agent worker answers (`<prefix>.workers.<op>`), asked once: with no worker
   * running it fails at once (SF_ERR_NO_RESPONDERS) instead of retrying until the deadline.
   */
  async worker<T>(op: string, body: unknown, timeoutMs = this.timeoutMs): Promise<T> {
    return this.once<T>(this.subjects.workerOp(op), body, timeoutMs);
  }

  /** A platform operation asked once (health probes): no responders fail at once. */
  async platformOnce<T>(op: string, body: unknown, timeoutMs = this.timeoutMs): Promise<T> {
    return this.once<T>(this.subjects.platformOp(op), body, timeoutMs);
  }

  async once<T>(subject: string, body: unknown, timeoutMs: number): Promise<T> {
    const requestId = randomUUID();
    const headers = requestHeaders({
      tenant: undefined,
      traceId: requestId,
      deadline: Date.now() + timeoutMs,
      requestId,
    });
    const outcome = await ReplyMux.of(this.nc).request(subject, encodeBody(body), headers, timeoutMs);
    if (outcome.type === "no-responders") {
      throw new SfError(BusErrorCodes.NO_RESPONDERS, `no responders on ${subject}`, { retryable: true });
    }
    if (outcome.type === "timeout") {
      throw new SfError(BusErrorCodes.TIMEOUT, `no reply on ${subject} within ${timeoutMs} ms`, {
        retryable: true,
      });
    }
    const reply = readReply(outcome.msg);
    if (reply.type === "ok") return reply.body as T;
    throw fromWireError(reply.error);
  }

  /**
   * A tenant operation on the owner of `clientId` (a checked uuid). A client that does not exist
   * answers SF_ERR_TENANT_NOT_FOUND.
   */
  async tenant<T>(clientId: string, op: string, body: unknown, timeoutMs = this.timeoutMs): Promise<T> {
    try {
      return (
        await requestReply<T>(this.nc, this.subjects.tenantOp(clientId, op), body, {
          tenant: clientId,
          timeoutMs,
        })
      ).body;
    } catch (err) {
      if (err instanceof RemoteError && err.code === StoreErrorCodes.TENANT_DATABASE_NOT_CONFIGURED) {
        // Says "not found" instead when the client itself does not exist.
        await this.platform(PlatformOps.clientsGet, { id: clientId });
      }
      throw err;
    }
  }

  /** A client by id or slug. */
  async client(ref: string): Promise<ClientDetailView> {
    if (isUuid(ref))
      return this.platform<ClientDetailView>(PlatformOps.clientsGet, { id: ref.toLowerCase() });
    for (let offset = 0; ; offset += 1000) {
      const page = await this.platform<ClientsListReply>(PlatformOps.clientsList, {
        search: ref,
        limit: 1000,
        offset,
      });
      const found = page.clients.find((c) => c.slug === ref);
      if (found !== undefined)
        return this.platform<ClientDetailView>(PlatformOps.clientsGet, { id: found.id });
      if (page.clients.length < 1000) break;
    }
    throw new TenantNotFoundError(`client ${JSON.stringify(ref)} not found`, { details: { client: ref } });
  }

  /** Every client, page by page. */
  async allClients(onPage?: (count: number) => void): Promise<ClientsListReply["clients"]> {
    const all: ClientsListReply["clients"] = [];
    for (let offset = 0; ; offset += 1000) {
      const page = await this.platform<ClientsListReply>(PlatformOps.clientsList, { limit: 1000, offset });
      all.push(...page.clients);
      onPage?.(all.length);
      if (page.clients.length < 1000) return all;
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.nc.close();
  }
}
