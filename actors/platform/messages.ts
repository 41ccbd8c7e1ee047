/**
 * What crosses the bus between the gateway and the platform operations
 * (`<prefix>.platform.<op>`): operation names, request bodies and replies. Replies are
 * JSON-ready views (snake_case, ISO times) and never carry a secret: credentials come back
 * masked, and an API key's secret only once, in the `api-keys-create` reply.
 */
import type {
  ClientSettings,
  ClientStatus,
  LivekitCredentials,
  TenantDatabaseConfig,
  TenantDatabaseKind,
} from "../store/index.ts";

export const PlatformOps = {
  health: "health",
  clientsCreate: "clients-create",
  clientsList: "clients-list",
  /** How many clients there are of each status (the console's dashboard). */
  clientsCount: "clients-count",
  clientsGet: "clients-get",
  clientsUpdate: "clients-update",
  clientsDelete: "clients-delete",
  clientsSetCredentials: "clients-set-credentials",
  apiKeysCreate: "api-keys-create",
  apiKeysList: "api-keys-list",
  apiKeysRevoke: "api-keys-revoke",
  apiKeysVerify: "api-keys-verify",
  /** Whether any active client lists a browser origin (the gateway's CORS preflight). */
  corsOriginListed: "cors-origin-listed",
} as const;

export type PlatformOpName = (typeof PlatformOps)[keyof typeof PlatformOps];

/** The `<what>` of `<prefix>.evt.client.<clientId>.<what>` events the platform publishes. */
export const ClientEvents = {
  /** Database or LiveKit credentials changed, or the client was deleted: drop cached handles. */
  credentials: "credentials",
  /** An API key of the client was revoked: drop cached verifications. */
  apiKeys: "api-keys",
  /** The client's settings (embedding configuration, CORS origins) changed: drop cached settings. */
  settings: "settings",
} as const;

export interface ClientView {
  id: string;
  slug: string;
  name: string;
  status: ClientStatus;
  /** Not secret: the tenant's embedding settings and what its stored vectors were embedded with. */
  settings: ClientSettings;
  created_at: string;
  updated_at: string;
}

export type TenantDatabaseView =
  | { configured: false }
  | {
      configured: true;
      kind: TenantDatabaseKind;
      schema: string | null;
      /** Masked (`post…(58)`): a URL may carry a password. */
      url?: string;
      service_role_key?: string;
      data_dir?: string;
      updated_at: string | null;
    };

export type LivekitView =
  | { configured: false }
  | {
      configured: true;
      url: string;
      /**
       * The server's origin (`wss://host:port`, no path or user info): not secret, every end user
       * gets the full URL with a voice trigger's reply; the console's preview page allows it in its CSP.
       */
      origin: string | null;
      api_key: string;
      api_secret: string;
      updated_at: string | null;
    };

export interface CredentialsView {
  tenant_database: TenantDatabaseView;
  livekit: LivekitView;
}

export interface ClientDetailView extends ClientView {
  credentials: CredentialsView;
}

export interface ApiKeyView {
  id: string;
  client_id: string;
  label: string;
  /** `sk_` + 8 characters: safe to show. */
  prefix: string;
  scopes: string[];
  site_url: string | null;
  created_at: string;
  last_used_at: string | null;
  expires_at: string | null;
  revoked_at: string | null;
}

export interface ClientsCreateRequest {
  actor: string;
  slug: string;
  name: string;
  status?: ClientStatus;
  id?: string;
}

export interface ClientsListRequest {
  search?: string;
  status?: ClientStatus;
  limit?: number;
  offset?: number;
}

export interface ClientsCountReply {
  total: number;
  by_status: Record<ClientStatus, number>;
}

export interface ClientsListReply {
  clients: ClientView[];
  limit: number;
  offset: number;
}

export interface ClientsUpdateRequest {
  actor: string;
  id: string;
  slug?: string;
  name?: string;
  status?: ClientStatus;
}

export interface ClientsSetCredentialsRequest {
  actor: string;
  id: string;
  /** The new tenant database; `null` removes it. */
  tenant_database?: TenantDatabaseConfig | null;
  /** The new LiveKit credentials; `null` removes them. */
  livekit?: LivekitCredentials | null;
}

export interface ClientsDeleteReply {
  id: string;
  deleted: true;
}

export interface ApiKeysCreateRequest {
  actor: string;
  client_id: string;
  label?: string;
  scopes?: string[];
  /** The WordPress site the key is issued for. */
  site_url?: string;
  /** ISO time. */
  expires_at?: string;
}

export interface ApiKeysCreateReply {
  api_key: ApiKeyView;
  /** The full key: shown this once, stored nowhere. */
  key: string;
}

export interface ApiKeysListReply {
  api_keys: ApiKeyView[];
}

export interface ApiKeysRevokeRequest {
  actor: string;
  client_id: string;
  key_id: string;
}

export interface ApiKeysVerifyRequest {
  key: string;
}

export interface VerifiedApiKey {
  keyId: string;
  clientId: string;
  scopes: string[];
  /** The client's `settings.cors_origins`, when it lists any: browser origins that may use its keys. */
  corsOrigins?: string[];
}

export interface CorsOriginListedRequest {
  /** An origin as a browser sends it (`https://shop.example`). */
  origin: string;
}

export interface CorsOriginListedReply {
  /** True when an active client lists the origin (or `*`) in `settings.cors_origins`. */
  listed: boolean;
}
