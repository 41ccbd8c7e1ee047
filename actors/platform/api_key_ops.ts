/**
 * API key operations: create (the secret is in that reply only), list, revoke, verify. Verify
 * answers every invalid key (unknown, revoked, expired, of a client that is not active) with the
 * same SF_ERR_UNAUTHENTICATED error after the same store lookup, comparing hashes in constant time.
 */
import { InvalidArgumentError } from "../errors.ts";
import { NotFoundError } from "../store/index.ts";
import { UnauthenticatedError } from "./errors.ts";
import { corsOriginProblem, corsOriginsOf } from "./cors_origins.ts";
import { ClientEvents, PlatformOps } from "./messages.ts";
import type {
  ApiKeysCreateReply,
  ApiKeysListReply,
  ApiKeyView,
  CorsOriginListedReply,
  VerifiedApiKey,
} from "./messages.ts";
import {
  actorField,
  objectBody,
  onlyFields,
  optionalString,
  optionalStringArray,
  uuidField,
} from "./op_input.ts";
import type { PlatformOp, PlatformOpDeps } from "./op_types.ts";
import { apiKeyView } from "./views.ts";

/** A scope: `area:action`, `area:*`, or `*` for all (the rule is in gateway/auth/scopes.ts). */
const SCOPE_RE = /^(?:\*|[a-z][a-z0-9_.:*-]{0,63})$/;
/** Longest string accepted as a presented key (real keys are 46 characters). */
const MAX_PRESENTED_KEY = 256;

function siteUrl(op: string, value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  let url: URL;
  try {
    url = new URL(value);
  } catch (cause) {
    throw new InvalidArgumentError(`${op}: "site_url" is not a URL`, {
      cause,
      details: { field: "site_url" },
    });
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") {
    throw new InvalidArgumentError(`${op}: "site_url" must be http or https`, {
      details: { field: "site_url" },
    });
  }
  return value;
}

function expiresAt(op: string, value: string | undefined): Date | undefined {
  if (value === undefined) return undefined;
  const at = new Date(value);
  if (Number.isNaN(at.getTime()) || at.getTime() <= Date.now()) {
    throw new InvalidArgumentError(`${op}: "expires_at" must be a future ISO time`, {
      details: { field: "expires_at" },
    });
  }
  return at;
}

export function apiKeyOps(deps: PlatformOpDeps): Array<[string, PlatformOp]> {
  const { store, publish, log } = deps;

  const create: PlatformOp = async (raw): Promise<ApiKeysCreateReply> => {
    const op = PlatformOps.apiKeysCreate;
    const body = objectBody(op, raw);
    onlyFields(op, body, ["actor", "client_id", "label", "scopes", "site_url", "expires_at"]);
    const actor = actorField(op, body);
    const clientId = uuidField(op, body, "client_id");
    const label = optionalString(op, body, "label", { max: 200 });
    const scopes = optionalStringArray(op, body, "scopes", { maxItems: 32, pattern: SCOPE_RE });
    const site = siteUrl(op, optionalString(op, body, "site_url", { max: 2000 }));
    const expires = expiresAt(op, optionalString(op, body, "expires_at", { max: 64 }));
    const created = await store.createApiKey({
      clientId,
      ...(label === undefined ? {} : { name: label }),
      ...(scopes === undefined ? {} : { scopes }),
      ...(site === undefined ? {} : { siteUrl: site }),
      ...(expires === undefined ? {} : { expiresAt: expires }),
    });
    const view = apiKeyView(created.record);
    await store.appendAudit({
      clientId,
      actor,
      action: "api_key.create",
      target: view.id,
      details: { prefix: view.prefix, label: view.label, scopes: view.scopes, site_url: view.site_url },
    });
    log.info({ clientId, keyId: view.id, actor }, "api key created");
    return { api_key: view, key: created.secret };
  };

  const list: PlatformOp = async (raw): Promise<ApiKeysListReply> => {
    const op = PlatformOps.apiKeysList;
    const body = objectBody(op, raw);
    onlyFields(op, body, ["client_id"]);
    const clientId = uuidField(op, body, "client_id");
    await store.getClient(clientId);
    return { api_keys: (await store.listApiKeys(clientId)).map(apiKeyView) };
  };

  const revoke: PlatformOp = async (raw): Promise<ApiKeyView> => {
    const op = PlatformOps.apiKeysRevoke;
    const body = objectBody(op, raw);
    onlyFields(op, body, ["actor", "client_id", "key_id"]);
    const actor = actorField(op, body);
    const clientId = uuidField(op, body, "client_id");
    const keyId = uuidField(op, body, "key_id");
    await store.getClient(clientId);
    // A key is revoked only through its own client: another client's key id is "not found".
    const owned = (await store.listApiKeys(clientId)).some((k) => k.id === keyId);
    if (!owned) throw new NotFoundError(`api key ${keyId} not found`, { details: { keyId } });
    const view = apiKeyView(await store.revokeApiKey(keyId));
    await store.appendAudit({
      clientId,
      actor,
      action: "api_key.revoke",
      target: keyId,
      details: { prefix: view.prefix },
    });
    await publish(clientId, ClientEvents.apiKeys, { clientId, keyId, reason: "revoked" });
    log.info({ clientId, keyId, actor }, "api key revoked");
    return view;
  };

  const verify: PlatformOp = async (raw): Promise<VerifiedApiKey> => {
    const body = typeof raw === "object" && raw !== null ? (raw as Record<string, unknown>) : {};
    const key = body["key"];
    const refused = new UnauthenticatedError("the API key is not valid");
    if (typeof key !== "string" || key.length > MAX_PRESENTED_KEY) throw refused;
    const record = await store.verifyApiKey(key);
    if (record === null) throw refused;
    const client = await store.getClient(record.clientId);
    if (client.status !== "active") throw refused;
    const corsOrigins = corsOriginsOf(client.settings);
    return {
      keyId: record.id,
      clientId: record.clientId,
      scopes: [...record.scopes],
      ...(corsOrigins.length === 0 ? {} : { corsOrigins }),
    };
  };

  const corsOriginListed: PlatformOp = async (raw): Promise<CorsOriginListedReply> => {
    const op = PlatformOps.corsOriginListed;
    const body = objectBody(op, raw);
    onlyFields(op, body, ["origin"]);
    const origin = body["origin"];
    // Anything that is not an exact origin is listed by nobody (and never reaches the store).
    if (typeof origin !== "string" || origin === "*" || corsOriginProblem(origin) !== undefined) {
      return { listed: false };
    }
    return { listed: await store.isCorsOriginListed(origin) };
  };

  return [
    [PlatformOps.apiKeysCreate, create],
    [PlatformOps.apiKeysList, list],
    [PlatformOps.apiKeysRevoke, revoke],
    [PlatformOps.apiKeysVerify, verify],
    [PlatformOps.corsOriginListed, corsOriginListed],
  ];
}
