/** A small caller for the tenant actor's ops, as the gateway will call them. */
import type { NatsConnection } from "@nats-io/transport-node";
import { BusErrorCodes, requestReply } from "../../bus/index.ts";
import type { RequestResult, Subjects } from "../../bus/index.ts";
import type { CounterReply } from "../../actors/index.ts";

export interface CallOptions {
  requestId?: string;
  timeoutMs?: number;
  attemptTimeoutMs?: number;
}

export function tenantClient(nc: NatsConnection, subjects: Subjects) {
  const call = <T>(
    tenant: string,
    op: string,
    body: unknown,
    options: CallOptions = {},
  ): Promise<RequestResult<T>> =>
    requestReply<T>(nc, subjects.tenantOp(tenant, op), body, {
      tenant,
      timeoutMs: options.timeoutMs ?? 15_000,
      attemptTimeoutMs: options.attemptTimeoutMs ?? 1000,
      retryCodes: [BusErrorCodes.NOT_OWNER, BusErrorCodes.OVERLOADED],
      ...(options.requestId === undefined ? {} : { requestId: options.requestId }),
    });
  return {
    call,
    increment: (tenant: string, options: CallOptions = {}) =>
      call<CounterReply>(tenant, "incr", { by: 1 }, options),
    get: (tenant: string, options: CallOptions = {}) => call<CounterReply>(tenant, "get", {}, options),
  };
}
