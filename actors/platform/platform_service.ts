/**
 * Platform operations (`<prefix>.platform.<op>`): served by every actor host in one queue group,
 * so any host answers. They work on the platform database (tenants, credentials, API keys), not
 * on one tenant's state, so they need no owner.
 */
import type { NatsConnection, Subscription } from "@nats-io/transport-node";
import type { Logger } from "pino";
import {
  BusErrorCodes,
  encodeBody,
  readRequest,
  replyHeaders,
  SfError,
  toWireError,
} from "../../bus/index.ts";
import type { RequestMeta, Subjects } from "../../bus/index.ts";
import type { PlatformStore } from "../store/index.ts";
import { apiKeyOps } from "./api_key_ops.ts";
import { clientEventPublisher } from "./client_events.ts";
import { clientOps } from "./client_ops.ts";
import { PlatformOps } from "./messages.ts";
import type { PlatformOp, PlatformOpDeps } from "./op_types.ts";

export type { PlatformOp } from "./op_types.ts";

export interface PlatformHealth {
  platform_db: { ok: boolean; latency_ms: number; error?: string };
}

export interface PlatformServiceOptions {
  nc: NatsConnection;
  subjects: Subjects;
  store: PlatformStore;
  hostId: string;
  log: Logger;
}

export class PlatformService {
  readonly #options: PlatformServiceOptions;
  readonly #ops: Map<string, PlatformOp>;
  #sub: Subscription | undefined;

  constructor(options: PlatformServiceOptions) {
    this.#options = options;
    const deps: PlatformOpDeps = {
      store: options.store,
      publish: clientEventPublisher(options.nc, options.subjects),
      log: options.log,
    };
    this.#ops = new Map<string, PlatformOp>([
      [PlatformOps.health, () => this.#health()],
      ...clientOps(deps),
      ...apiKeyOps(deps),
    ]);
  }

  async #health(): Promise<PlatformHealth> {
    const started = performance.now();
    try {
      await this.#options.store.listClients({ limit: 1 });
      return { platform_db: { ok: true, latency_ms: Math.round((performance.now() - started) * 100) / 100 } };
    } catch (err) {
      const wire = toWireError(err);
      this.#options.log.warn({ err: wire }, "platform database health check failed");
      return {
        platform_db: {
          ok: false,
          latency_ms: Math.round((performance.now() - started) * 100) / 100,
          error: wire.code,
        },
      };
    }
  }

  start(): void {
    const { nc, subjects, hostId } = this.#options;
    const prefixTokens = subjects.prefix.split(".").length;
    this.#sub = nc.subscribe(`${subjects.prefix}.platform.*`, {
      queue: `${subjects.prefix}-platform`,
      callback: (err, msg) => {
        if (err) {
          this.#options.log.warn({ err: err.message }, "platform subscription error");
          return;
        }
        const op = msg.subject.split(".")[prefixTokens + 1] ?? "";
        const reply = (status: "ok" | "error", body: unknown): void => {
          if (msg.reply !== undefined && msg.reply !== "") {
            msg.respond(encodeBody(body), { headers: replyHeaders(status, { host: hostId }) });
          }
        };
        let request: { meta: RequestMeta; body: unknown };
        try {
          request = readRequest(msg);
        } catch (e) {
          reply("error", toWireError(e));
          return;
        }
        const handler = this.#ops.get(op);
        if (handler === undefined) {
          reply(
            "error",
            new SfError(
              BusErrorCodes.UNKNOWN_OP,
              `unknown platform operation ${JSON.stringify(op)}`,
            ).toWire(),
          );
          return;
        }
        handler(request.body, request.meta).then(
          (result) => reply("ok", result),
          (e: unknown) => reply("error", toWireError(e)),
        );
      },
    });
  }

  async stop(): Promise<void> {
    await this.#sub?.drain();
  }
}
