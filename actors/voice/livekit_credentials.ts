/**
 * The tenants' LiveKit credentials, decrypted from the platform store, cached per tenant and
 * dropped when the tenant's credentials change (`sf.evt.client.<tenant>.*`). A tenant without
 * credentials is not cached, so setting them takes effect on the next trigger. Never read from
 * the environment; never logged.
 */
import type { LivekitCredentials } from "../store/index.ts";
import { LivekitNotConfiguredError } from "./errors.ts";

export type LivekitCredentialsLoader = (tenant: string) => Promise<LivekitCredentials | null>;

export class LivekitCredentialsCache {
  readonly #load: LivekitCredentialsLoader;
  readonly #cached = new Map<string, Promise<LivekitCredentials | null>>();

  constructor(load: LivekitCredentialsLoader) {
    this.#load = load;
  }

  /** The tenant's credentials, or null when it has none. */
  get(tenant: string): Promise<LivekitCredentials | null> {
    let pending = this.#cached.get(tenant);
    if (pending === undefined) {
      pending = this.#load(tenant);
      this.#cached.set(tenant, pending);
      void pending.then(
        (creds) => {
          if (creds === null && this.#cached.get(tenant) === pending) this.#cached.delete(tenant);
        },
        () => {
          if (this.#cached.get(tenant) === pending) this.#cached.delete(tenant);
        },
      );
    }
    return pending;
  }

  drop(tenant: string): void {
    this.#cached.delete(tenant);
  }
}

/** The credentials, complete, or a LivekitNotConfiguredError naming what is missing. */
export function requireLivekitCredentials(
  tenant: string,
  credentials: LivekitCredentials | null,
): LivekitCredentials {
  if (credentials === null) {
    throw new LivekitNotConfiguredError("the tenant has no LiveKit credentials", {
      details: { tenant, missing: "livekit_credentials" },
    });
  }
  const fields: Array<[keyof LivekitCredentials, string]> = [
    ["url", "url"],
    ["apiKey", "api_key"],
    ["apiSecret", "api_secret"],
  ];
  for (const [field, name] of fields) {
    if (typeof credentials[field] !== "string" || credentials[field].trim() === "") {
      throw new LivekitNotConfiguredError(`the tenant's LiveKit ${name} is empty`, {
        details: { tenant, missing: `livekit.${name}` },
      });
    }
  }
  return credentials;
}
