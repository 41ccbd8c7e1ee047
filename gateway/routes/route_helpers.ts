/** What the API routes share: their dependencies and the reading of path and query values. */
import {
  AGENT_SLUG_PATTERN,
  AgentNotFoundError,
  PlatformOps,
  TenantNotFoundError,
} from "../../actors/index.ts";
import type { ActorClient } from "../actor_client.ts";
import type { ApiKeyVerifier } from "../auth/api_key_verifier.ts";
import type { Authenticator } from "../auth/authenticator.ts";
import type { ListedOrigins } from "../cors_listed_origins.ts";
import type { GatewayRequest } from "../http_types.ts";
import { UUID_RE } from "./schemas.ts";

export interface ApiRouteDeps {
  auth: Authenticator;
  actors: ActorClient;
  keys: ApiKeyVerifier;
  /** The preflight's cache of origins tenants list (dropped here when a client's settings change). */
  origins?: Pick<ListedOrigins, "clear">;
}

/** The `{id}` of a client route; anything that is not a uuid names no client (404). */
export function clientIdParam(req: GatewayRequest, name = "id"): string {
  const id = req.params[name] ?? "";
  if (!UUID_RE.test(id)) throw new TenantNotFoundError("client not found", { details: { clientId: id } });
  return id.toLowerCase();
}

export function agentSlugParam(req: GatewayRequest): string {
  const slug = req.params["slug"] ?? "";
  if (!AGENT_SLUG_PATTERN.test(slug)) throw new AgentNotFoundError("agent not found", { details: { slug } });
  return slug;
}

/** A query value already checked as digits by the route's schema. */
export function intQuery(req: GatewayRequest, name: string): number | undefined {
  const v = req.query[name];
  return v === undefined ? undefined : Number(v);
}

type Json = Readonly<Record<string, unknown>>;

function rename(from: Json, names: Readonly<Record<string, string>>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(from)) out[names[k] ?? k] = v;
  return out;
}

/** The credential fields of a client body, in the platform operation's shape (`null` removes). */
export function credentialFields(body: Json): { tenant_database?: unknown; livekit?: unknown } {
  const out: { tenant_database?: unknown; livekit?: unknown } = {};
  const db = body["tenant_database"];
  if (db !== undefined) {
    out.tenant_database =
      db === null
        ? null
        : rename(db as Json, {
            service_role_key: "serviceRoleKey",
            embedding_dimension: "embeddingDimension",
            data_dir: "dataDir",
          });
  }
  const lk = body["livekit"];
  if (lk !== undefined) {
    out.livekit = lk === null ? null : rename(lk as Json, { api_key: "apiKey", api_secret: "apiSecret" });
  }
  return out;
}

/** Stores the credentials a client body carries (`tenant_database`, `livekit`; `null` removes), audited as `actor`. */
export async function setClientCredentials(
  actors: ActorClient,
  id: string,
  actor: string,
  body: Json,
  req: GatewayRequest,
): Promise<void> {
  const creds = credentialFields(body);
  if (creds.tenant_database === undefined && creds.livekit === undefined) return;
  await actors.platform(PlatformOps.clientsSetCredentials, { actor, id, ...creds }, req);
}
