/**
 * Client (tenant) operations: create, list, get, update, delete, and the write-only credentials
 * (tenant database, LiveKit). Every change is written to `audit_log` under the identity the
 * caller names; a credential change is announced on `<prefix>.evt.client.<id>.credentials`.
 */
import { InvalidArgumentError } from "../errors.ts";
import {
  CLIENT_SLUG_PATTERN,
  CLIENT_STATUSES,
  parseLivekitCredentials,
  parseTenantDatabaseConfig,
} from "../store/index.ts";
import type { ClientSecretField, ClientSettings, ClientStatus, PlatformStore } from "../store/index.ts";
import { parseCorsOrigins } from "./cors_origins.ts";
import { ClientEvents, PlatformOps } from "./messages.ts";
import type {
  ClientDetailView,
  ClientsCountReply,
  ClientsDeleteReply,
  ClientsListReply,
} from "./messages.ts";
import {
  actorField,
  objectBody,
  onlyFields,
  optionalInt,
  optionalObject,
  optionalString,
  stringField,
  uuidField,
} from "./op_input.ts";
import type { OpBody } from "./op_input.ts";
import type { PlatformOp, PlatformOpDeps } from "./op_types.ts";
import { clientView, credentialsView } from "./views.ts";

const MAX_NAME = 200;
const STATUS_RE = new RegExp(`^(?:${CLIENT_STATUSES.join("|")})$`);

function status(op: string, body: OpBody): ClientStatus | undefined {
  return optionalString(op, body, "status", { pattern: STATUS_RE }) as ClientStatus | undefined;
}

export async function clientDetail(store: PlatformStore, id: string): Promise<ClientDetailView> {
  const client = await store.getClient(id);
  const [database, livekit, infos] = await Promise.all([
    store.getTenantDatabase(id),
    store.getLivekitCredentials(id),
    store.listClientSecrets(id),
  ]);
  return { ...clientView(client), credentials: credentialsView(database, livekit, infos) };
}

/**
 * `settings` of a create or update: callers may set `embedding` and `cors_origins` (`null`
 * removes either; a field left out keeps its value); the platform's own keys (`embedding_index`)
 * are kept from `current`. Everything is checked before anything is returned, so a bad field
 * changes nothing.
 */
function settingsField(op: string, body: OpBody, current: ClientSettings): ClientSettings | undefined {
  const raw = optionalObject(op, body, "settings");
  if (raw === undefined) return undefined;
  onlyFields(`${op} settings`, raw, ["embedding", "cors_origins"]);
  let next: ClientSettings = { ...current };
  if (raw["cors_origins"] !== undefined) {
    const origins = parseCorsOrigins(op, raw["cors_origins"]);
    if (origins === null) delete next.cors_origins;
    else next.cors_origins = origins;
  }
  const embedding = raw["embedding"];
  if (embedding === undefined) return next;
  if (embedding === null) {
    delete next.embedding;
    return next;
  }
  const e = objectBody(`${op} settings.embedding`, embedding);
  onlyFields(`${op} settings.embedding`, e, [
    "provider",
    "document_model",
    "conversation_model",
    "dimension",
  ]);
  const provider = stringField(op, e, "provider", { max: 64, pattern: /^[a-z][a-z0-9_-]{0,63}$/ });
  const text = (field: string): string | null =>
    e[field] === null ? null : (optionalString(op, e, field, { max: 200 }) ?? null);
  const dimension = e["dimension"] === null ? null : (optionalInt(op, e, "dimension", 1, 16_000) ?? null);
  next = {
    ...next,
    embedding: {
      provider,
      document_model: text("document_model"),
      conversation_model: text("conversation_model"),
      dimension,
    },
  };
  return next;
}

export function clientOps(deps: PlatformOpDeps): Array<[string, PlatformOp]> {
  const { store, publish, log } = deps;

  const create: PlatformOp = async (raw) => {
    const op = PlatformOps.clientsCreate;
    const body = objectBody(op, raw);
    onlyFields(op, body, ["actor", "slug", "name", "status", "id", "settings"]);
    const actor = actorField(op, body);
    const settings = settingsField(op, body, {});
    const slug = stringField(op, body, "slug", { max: 63, pattern: CLIENT_SLUG_PATTERN });
    const name = stringField(op, body, "name", { max: MAX_NAME });
    const st = status(op, body);
    const id = body["id"] === undefined ? undefined : uuidField(op, body, "id");
    const client = await store.createClient({
      slug,
      name,
      ...(st === undefined ? {} : { status: st }),
      ...(id === undefined ? {} : { id }),
      ...(settings === undefined ? {} : { settings }),
    });
    await store.appendAudit({
      clientId: client.id,
      actor,
      action: "client.create",
      target: client.id,
      details: { slug, name, status: client.status },
    });
    log.info({ clientId: client.id, actor }, "client created");
    return clientDetail(store, client.id);
  };

  const list: PlatformOp = async (raw): Promise<ClientsListReply> => {
    const op = PlatformOps.clientsList;
    const body = objectBody(op, raw ?? {});
    onlyFields(op, body, ["search", "status", "limit", "offset"]);
    const search = optionalString(op, body, "search", { max: 200 });
    const st = status(op, body);
    const limit = optionalInt(op, body, "limit", 1, 1000) ?? 100;
    const offset = optionalInt(op, body, "offset", 0, 1_000_000_000) ?? 0;
    const clients = await store.listClients({
      limit,
      offset,
      ...(search === undefined ? {} : { search }),
      ...(st === undefined ? {} : { status: st }),
    });
    return { clients: clients.map(clientView), limit, offset };
  };

  const count: PlatformOp = async (raw): Promise<ClientsCountReply> => {
    const op = PlatformOps.clientsCount;
    onlyFields(op, objectBody(op, raw ?? {}), []);
    const byStatus = await store.countClientsByStatus();
    return { total: Object.values(byStatus).reduce((a, b) => a + b, 0), by_status: byStatus };
  };

  const get: PlatformOp = async (raw) => {
    const op = PlatformOps.clientsGet;
    const body = objectBody(op, raw);
    onlyFields(op, body, ["id"]);
    return clientDetail(store, uuidField(op, body, "id"));
  };

  const update: PlatformOp = async (raw) => {
    const op = PlatformOps.clientsUpdate;
    const body = objectBody(op, raw);
    onlyFields(op, body, ["actor", "id", "slug", "name", "status", "settings"]);
    const actor = actorField(op, body);
    const id = uuidField(op, body, "id");
    const slug = optionalString(op, body, "slug", { max: 63, pattern: CLIENT_SLUG_PATTERN });
    const name = optionalString(op, body, "name", { max: MAX_NAME });
    const st = status(op, body);
    const current = body["settings"] === undefined ? undefined : await store.getClient(id);
    const settings = current === undefined ? undefined : settingsField(op, body, current.settings);
    if (slug === undefined && name === undefined && st === undefined && settings === undefined) {
      throw new InvalidArgumentError(`${op} needs at least one of slug, name, status, settings`);
    }
    const patch = {
      ...(slug === undefined ? {} : { slug }),
      ...(name === undefined ? {} : { name }),
      ...(st === undefined ? {} : { status: st }),
      ...(settings === undefined ? {} : { settings }),
    };
    await store.updateClient(id, patch);
    await store.appendAudit({ clientId: id, actor, action: "client.update", target: id, details: patch });
    // Hosts cache the settings (embedding configuration): they read them again now.
    if (settings !== undefined)
      await publish(id, ClientEvents.settings, { clientId: id, fields: ["settings"] });
    log.info({ clientId: id, actor, fields: Object.keys(patch) }, "client updated");
    return clientDetail(store, id);
  };

  const remove: PlatformOp = async (raw): Promise<ClientsDeleteReply> => {
    const op = PlatformOps.clientsDelete;
    const body = objectBody(op, raw);
    onlyFields(op, body, ["actor", "id"]);
    const actor = actorField(op, body);
    const id = uuidField(op, body, "id");
    const client = await store.getClient(id);
    await store.deleteClient(id);
    // The client row is gone: the entry keeps its id as the target (client_id would be nulled anyway).
    await store.appendAudit({ actor, action: "client.delete", target: id, details: { slug: client.slug } });
    await publish(id, ClientEvents.credentials, { clientId: id, reason: "deleted" });
    log.info({ clientId: id, actor }, "client deleted");
    return { id, deleted: true };
  };

  const setCredentials: PlatformOp = async (raw) => {
    const op = PlatformOps.clientsSetCredentials;
    const body = objectBody(op, raw);
    onlyFields(op, body, ["actor", "id", "tenant_database", "livekit"]);
    const actor = actorField(op, body);
    const id = uuidField(op, body, "id");
    const database = body["tenant_database"];
    const livekit = body["livekit"];
    if (database === undefined && livekit === undefined) {
      throw new InvalidArgumentError(`${op} needs tenant_database and/or livekit`);
    }
    // Parse both before writing either, so a bad half never leaves the other half written.
    const parsedDatabase =
      database === undefined || database === null ? database : parseTenantDatabaseConfig(database);
    const parsedLivekit =
      livekit === undefined || livekit === null ? livekit : parseLivekitCredentials(livekit);
    await store.getClient(id);
    const changed: Array<{ field: ClientSecretField; change: "set" | "removed" }> = [];
    if (parsedDatabase === null) {
      if (await store.deleteClientSecret(id, "database"))
        changed.push({ field: "database", change: "removed" });
    } else if (parsedDatabase !== undefined) {
      await store.setTenantDatabase(id, parsedDatabase);
      changed.push({ field: "database", change: "set" });
    }
    if (parsedLivekit === null) {
      if (await store.deleteClientSecret(id, "livekit"))
        changed.push({ field: "livekit", change: "removed" });
    } else if (parsedLivekit !== undefined) {
      await store.setLivekitCredentials(id, parsedLivekit);
      changed.push({ field: "livekit", change: "set" });
    }
    // Only field names and the database kind are recorded: never a value.
    await store.appendAudit({
      clientId: id,
      actor,
      action: "secret.update",
      target: id,
      details: {
        fields: changed.map((c) => `${c.field}:${c.change}`),
        ...(parsedDatabase ? { database_kind: parsedDatabase.kind } : {}),
      },
    });
    await publish(id, ClientEvents.credentials, { clientId: id, fields: changed.map((c) => c.field) });
    log.info({ clientId: id, actor, fields: changed.map((c) => c.field) }, "client credentials changed");
    return clientDetail(store, id);
  };

  return [
    [PlatformOps.clientsCreate, create],
    [PlatformOps.clientsList, list],
    [PlatformOps.clientsCount, count],
    [PlatformOps.clientsGet, get],
    [PlatformOps.clientsUpdate, update],
    [PlatformOps.clientsDelete, remove],
    [PlatformOps.clientsSetCredentials, setCredentials],
  ];
}
