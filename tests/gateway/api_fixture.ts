/**
 * One real deployment for the API suites: nats-server, an actor host on the shared PostgreSQL,
 * a gateway process with an admin token and a JWT secret, a NATS connection and the platform
 * store (to read the audit log). Every response body the suite sees is kept, so a test can
 * prove no secret ever came back.
 */
import { randomBytes } from "node:crypto";
import { connect } from "@nats-io/transport-node";
import type { NatsConnection } from "@nats-io/transport-node";
import { openPlatformStore, openTenantStore, provisionTenantDatabase } from "../../actors/index.ts";
import type { PlatformStore, TenantDatabaseConfig, TenantStore } from "../../actors/index.ts";
import { signHs256Jwt } from "../../gateway/index.ts";
import { NatsTestServer } from "../helpers/nats_server.ts";
import { defaultPlatformSchema, spawnActorHost, testKeyring } from "../helpers/processes.ts";
import type { TestProcess } from "../helpers/processes.ts";
import { sharedServices } from "../helpers/services.ts";
import { spawnGateway } from "../helpers/gateway_process.ts";
import type { GatewayProcess } from "../helpers/gateway_process.ts";

export const PARTITIONS = 16;

export type PostgresTenantDatabase = Extract<TenantDatabaseConfig, { kind: "postgres" }> & { schema: string };

export interface ApiResponse<T = Record<string, unknown>> {
  status: number;
  headers: Headers;
  text: string;
  body: T;
}

export interface CallOptions {
  /** `Authorization` header value; omitted when undefined. */
  auth?: string;
  headers?: Record<string, string>;
  body?: unknown;
  /** Keep this body out of the secret scan (the one answer that shows a new API key). */
  showsKey?: boolean;
}

export class ApiFixture {
  readonly adminToken = `adm_${randomBytes(24).toString("hex")}`;
  readonly jwtSecret = `jwt_${randomBytes(32).toString("hex")}`;
  /** Every response body seen, except the ones that show a new API key. */
  readonly bodies: string[] = [];
  server!: NatsTestServer;
  host!: TestProcess;
  gw!: GatewayProcess;
  nc!: NatsConnection;
  platform!: PlatformStore;
  readonly databaseUrl = sharedServices().databaseUrl;

  static async start(
    options: {
      apiKeyCacheMs?: number;
      /** The gateway's SF_GATEWAY_MAX_BODY_BYTES. Default 64 KiB. */
      maxBodyBytes?: number;
      /** How long a dispatched job waits for a worker's claim (the host's SF_CLAIM_TIMEOUT_MS). */
      claimTimeoutMs?: number;
    } = {},
  ): Promise<ApiFixture> {
    const f = new ApiFixture();
    f.server = await NatsTestServer.start();
    f.host = await spawnActorHost({
      natsUrl: f.server.url,
      hostId: "api-h1",
      partitions: PARTITIONS,
      ...(options.claimTimeoutMs === undefined ? {} : { claimTimeoutMs: options.claimTimeoutMs }),
    });
    f.gw = await spawnGateway({
      natsUrl: f.server.url,
      partitions: PARTITIONS,
      maxBodyBytes: options.maxBodyBytes ?? 64 * 1024,
      extraEnv: {
        SF_ADMIN_TOKEN: f.adminToken,
        SF_JWT_SECRET: f.jwtSecret,
        SF_JWT_ADMIN_ROLES: "sf_admin",
        SF_API_KEY_CACHE_MS: String(options.apiKeyCacheMs ?? 3000),
        SF_GATEWAY_REQUEST_TIMEOUT_MS: "10000",
        // Every refused request is logged at debug: the secret scan reads those lines too.
        SF_LOG_LEVEL: "debug",
      },
    });
    f.nc = await connect({ servers: f.server.url });
    f.platform = await openPlatformStore({
      database: { kind: "postgres", url: f.databaseUrl, schema: defaultPlatformSchema(f.server.url) },
      keyring: testKeyring(),
    });
    return f;
  }

  get admin(): string {
    return `Bearer ${this.adminToken}`;
  }

  jwt(claims: Record<string, unknown>, secret = this.jwtSecret): string {
    return signHs256Jwt({ exp: Math.floor(Date.now() / 1000) + 3600, ...claims }, secret);
  }

  async call<T = Record<string, unknown>>(
    method: string,
    path: string,
    options: CallOptions = {},
  ): Promise<ApiResponse<T>> {
    const headers: Record<string, string> = { ...options.headers };
    if (options.auth !== undefined) headers["authorization"] = options.auth;
    let body: string | undefined;
    if (options.body !== undefined) {
      body = typeof options.body === "string" ? options.body : JSON.stringify(options.body);
      headers["content-type"] ??= "application/json";
    }
    const res = await fetch(`${this.gw.base}${path}`, {
      method,
      headers,
      ...(body === undefined ? {} : { body }),
    });
    const text = await res.text();
    if (options.showsKey !== true) this.bodies.push(text);
    const json = (res.headers.get("content-type") ?? "").startsWith("application/json");
    const parsed: unknown = json && text !== "" ? JSON.parse(text) : {};
    return { status: res.status, headers: res.headers, text, body: parsed as T };
  }

  /** A tenant database schema on the shared PostgreSQL, migrated, optionally with agents. */
  async tenantDatabase(
    tenantId: string,
    name: string,
    agents: Array<{ slug: string; name: string }> = [],
  ): Promise<PostgresTenantDatabase> {
    const database: PostgresTenantDatabase = {
      kind: "postgres",
      url: this.databaseUrl,
      schema: `${name}_${this.server.port}`,
    };
    await provisionTenantDatabase({ tenantId, database, vector: "optional" });
    if (agents.length > 0) {
      const store = await this.openTenant(tenantId, database);
      try {
        for (const a of agents) {
          if ((await store.findAgent(a.slug)) === null)
            await store.createAgent({ ...a, systemPrompt: "You help." });
        }
      } finally {
        await store.close();
      }
    }
    return database;
  }

  openTenant(tenantId: string, database: TenantDatabaseConfig): Promise<TenantStore> {
    return openTenantStore({ tenantId, database, keyring: testKeyring() });
  }

  /** The strings no response body and no log line may contain. */
  secrets(extra: readonly string[] = []): string[] {
    const password = new URL(this.databaseUrl).password;
    return [
      this.adminToken,
      this.jwtSecret,
      this.databaseUrl,
      ...(password === "" ? [] : [`:${password}@`]),
      ...extra,
    ];
  }

  async close(): Promise<void> {
    await this.platform?.close();
    await this.nc?.close();
    await this.gw?.proc.stop();
    await this.host?.stop();
    await this.server?.[Symbol.asyncDispose]();
  }
}

/** The `{ error: { code } }` of an error answer. */
export function codeOf(res: ApiResponse<unknown>): unknown {
  return (res.body as { error?: { code?: unknown } } | undefined)?.error?.code;
}
