/** Platform records as the replies show them: snake_case, ISO times, secrets masked. */
import { maskSecret } from "../crypto/index.ts";
import type {
  ApiKeyRecord,
  ClientRecord,
  ClientSecretInfo,
  LivekitCredentials,
  TenantDatabaseConfig,
} from "../store/index.ts";
import type { ApiKeyView, ClientView, CredentialsView, LivekitView, TenantDatabaseView } from "./messages.ts";

const iso = (d: Date | null): string | null => (d === null ? null : d.toISOString());

export function clientView(c: ClientRecord): ClientView {
  return {
    id: c.id,
    slug: c.slug,
    name: c.name,
    status: c.status,
    settings: c.settings,
    created_at: c.createdAt.toISOString(),
    updated_at: c.updatedAt.toISOString(),
  };
}

export function apiKeyView(k: ApiKeyRecord): ApiKeyView {
  return {
    id: k.id,
    client_id: k.clientId,
    label: k.name,
    prefix: k.displayPrefix,
    scopes: [...k.scopes],
    site_url: k.siteUrl,
    created_at: k.createdAt.toISOString(),
    last_used_at: iso(k.lastUsedAt),
    expires_at: iso(k.expiresAt),
    revoked_at: iso(k.revokedAt),
  };
}

function databaseView(
  config: TenantDatabaseConfig | null,
  info: ClientSecretInfo | undefined,
): TenantDatabaseView {
  if (config === null) return { configured: false };
  const updatedAt = iso(info?.updatedAt ?? null);
  switch (config.kind) {
    case "supabase":
      return {
        configured: true,
        kind: "supabase",
        schema: config.schema ?? null,
        url: maskSecret(config.url),
        service_role_key: maskSecret(config.serviceRoleKey),
        updated_at: updatedAt,
      };
    case "postgres":
      return {
        configured: true,
        kind: "postgres",
        schema: config.schema ?? null,
        url: maskSecret(config.url),
        updated_at: updatedAt,
      };
    case "pglite":
      return {
        configured: true,
        kind: "pglite",
        schema: config.schema ?? null,
        data_dir: maskSecret(config.dataDir),
        updated_at: updatedAt,
      };
  }
}

/** `wss://host:port` of a LiveKit URL (`https:` → `wss:`, `http:` → `ws:`); null when it is not one. */
export function serverOrigin(url: string): string | null {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return null;
  }
  const scheme = { "ws:": "ws:", "wss:": "wss:", "http:": "ws:", "https:": "wss:" }[parsed.protocol];
  return scheme === undefined ? null : `${scheme}//${parsed.host}`;
}

function livekitView(
  credentials: LivekitCredentials | null,
  info: ClientSecretInfo | undefined,
): LivekitView {
  if (credentials === null) return { configured: false };
  return {
    configured: true,
    url: maskSecret(credentials.url),
    origin: serverOrigin(credentials.url),
    api_key: maskSecret(credentials.apiKey),
    api_secret: maskSecret(credentials.apiSecret),
    updated_at: iso(info?.updatedAt ?? null),
  };
}

export function credentialsView(
  database: TenantDatabaseConfig | null,
  livekit: LivekitCredentials | null,
  infos: readonly ClientSecretInfo[],
): CredentialsView {
  return {
    tenant_database: databaseView(
      database,
      infos.find((i) => i.field === "database"),
    ),
    livekit: livekitView(
      livekit,
      infos.find((i) => i.field === "livekit"),
    ),
  };
}
