/**
 * Steady load for failover tests: one sequential caller per tenant, each increment with a
 * fresh request id (the idempotency key), every outcome recorded with its timing and the
 * host/epoch that answered. Bounded by stop(); callers never outlive the test.
 */
import { randomUUID } from "node:crypto";
import type { RemoteError } from "../../bus/index.ts";
import type { tenantClient } from "./tenant_client.ts";

export interface Outcome {
  tenant: string;
  requestId: string;
  sentAt: number;
  receivedAt: number;
  ok: boolean;
  host?: string;
  epoch?: number;
  attempts?: number;
  count?: number;
  code?: string;
}

export class TenantLoad {
  readonly outcomes: Outcome[] = [];
  #running = false;
  #loops: Promise<void>[] = [];
  readonly #client: ReturnType<typeof tenantClient>;
  readonly #tenants: string[];
  readonly #timeoutMs: number;

  constructor(client: ReturnType<typeof tenantClient>, tenants: string[], timeoutMs = 15_000) {
    this.#client = client;
    this.#tenants = tenants;
    this.#timeoutMs = timeoutMs;
  }

  start(): this {
    this.#running = true;
    this.#loops = this.#tenants.map((tenant) => this.#loop(tenant));
    return this;
  }

  async #loop(tenant: string): Promise<void> {
    while (this.#running) {
      const requestId = randomUUID();
      const sentAt = performance.now();
      try {
        const r = await this.#client.increment(tenant, { requestId, timeoutMs: this.#timeoutMs });
        this.outcomes.push({
          tenant,
          requestId,
          sentAt,
          receivedAt: performance.now(),
          ok: true,
          host: r.host ?? r.body.host,
          epoch: r.epoch ?? r.body.epoch,
          attempts: r.attempts,
          count: r.body.count,
        });
      } catch (err) {
        this.outcomes.push({
          tenant,
          requestId,
          sentAt,
          receivedAt: performance.now(),
          ok: false,
          code: (err as RemoteError).code ?? String(err),
        });
      }
    }
  }

  async stop(): Promise<void> {
    this.#running = false;
    await Promise.all(this.#loops);
  }

  failures(): Outcome[] {
    return this.outcomes.filter((o) => !o.ok);
  }

  successes(): Outcome[] {
    return this.outcomes.filter((o) => o.ok);
  }

  /** Successful increments per tenant. */
  successCount(tenant: string): number {
    return this.outcomes.filter((o) => o.ok && o.tenant === tenant).length;
  }
}
