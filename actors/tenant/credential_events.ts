/**
 * Tenant credential and configuration changes, published on `<prefix>.evt.client.<tenant>.<what>`
 * (stream SF_EVENTS): every host drops what it cached for that tenant, so the next turn opens
 * the tenant's database again from its current, decrypted configuration.
 */
import type { NatsConnection, Subscription } from "@nats-io/transport-node";
import type { Logger } from "pino";
import { isToken } from "../../bus/index.ts";
import type { Subjects } from "../../bus/index.ts";

export interface CredentialEventsOptions {
  nc: NatsConnection;
  subjects: Subjects;
  log: Logger;
  /** Called with the tenant whose credentials or configuration changed. */
  onChange: (tenant: string, what: string) => Promise<void> | void;
}

export function watchCredentialEvents(options: CredentialEventsOptions): Subscription {
  const { nc, subjects, log, onChange } = options;
  const prefixTokens = subjects.prefix.split(".").length;
  return nc.subscribe(`${subjects.prefix}.evt.client.*.*`, {
    callback: (err, msg) => {
      if (err) {
        log.warn({ err: err.message }, "credential event subscription error");
        return;
      }
      const tokens = msg.subject.split(".");
      const tenant = tokens[prefixTokens + 2];
      const what = tokens[prefixTokens + 3] ?? "";
      if (!isToken(tenant)) return;
      log.info({ tenant, what }, "tenant configuration changed; dropping cached handles");
      Promise.resolve(onChange(tenant, what)).catch((e: unknown) =>
        log.warn(
          { tenant, err: e instanceof Error ? e.message : String(e) },
          "dropping tenant handles failed",
        ),
      );
    },
  });
}
