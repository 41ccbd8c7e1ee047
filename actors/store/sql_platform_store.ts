/**
 * `PlatformStore` over SQL (PostgreSQL or PGlite): clients, their sealed secrets, API keys and
 * the audit log. The platform schema is migrated when the store opens.
 */
import {
  apiKeyDisplayPrefix,
  decryptSecret,
  encryptSecret,
  generateApiKey,
  isSecretFieldName,
  redactSecrets,
  verifyApiKeyHash,
} from "../crypto/index.ts";
import type { Keyring, RotatableSecrets, StoredSecret } from "../crypto/index.ts";
import {
  InvalidInputError,
  NotFoundError,
  StoreClosedError,
  TenantNotFoundError,
  toStoreError,
} from "./errors.ts";
import { MAX_INDEXED_VECTOR_DIMENSION } from "./migrations.ts";
import { quoteIdent, SCHEMA_NAME_PATTERN } from "./sql_database.ts";
import type { SqlDatabase, SqlQueryable } from "./sql_database.ts";
import { clampLimit, isUuid, requireUuid, text, textOrNull, toDate } from "./tenant_rows.ts";
import type { Row } from "./tenant_rows.ts";
import { parseTenantDatabaseConfig, parseLivekitCredentials } from "./tenant_database_config.ts";
import {
  CLIENT_SECRET_FIELDS,
  CLIENT_STATUSES,
  type ApiKeyRecord,
  type AuditEntry,
  type AuditEntryInput,
  type ClientRecord,
  type ClientSecretField,
  type ClientSecretInfo,
  type ClientSettings,
  type ClientStatus,
  type CreateApiKeyInput,
  type CreateClientInput,
  type CreatedApiKey,
  type LivekitCredentials,
  type ListPage,
  type PlatformStore,
  type TenantDatabaseConfig,
  type UpdateClientInput,
} from "./types.ts";

/** Client slugs: lower-case letters, digits and dashes, 1–63 characters. */
export const CLIENT_SLUG_PATTERN = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
/** `last_used_at` is written at most this often per key. */
const LAST_USED_RESOLUTION_MS = 60_000;
const MAX_LIST = 1000;

export interface SqlPlatformStoreOptions {
  db: SqlDatabase;
  keyring: Keyring;
  /** Schema of the platform tables; default `public`. */
  schema?: string;
  /** Close `db` when the store closes; default true. */
  ownsDatabase?: boolean;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function clientFromRow(r: Row): ClientRecord {
  const settings = typeof r["settings"] === "string" ? (JSON.parse(r["settings"]) as unknown) : r["settings"];
  return {
    id: text(r["id"]),
    slug: text(r["slug"]),
    name: text(r["name"]),
    status: text(r["status"]) as ClientStatus,
    settings: isPlainObject(settings) ? settings : {},
    createdAt: toDate(r["created_at"]),
    updatedAt: toDate(r["updated_at"]),
  };
}

function apiKeyFromRow(r: Row): ApiKeyRecord {
  const d = (v: unknown): Date | null => (v === null || v === undefined ? null : toDate(v));
  return {
    id: text(r["id"]),
    clientId: text(r["client_id"]),
    name: text(r["name"]),
    displayPrefix: text(r["key_prefix"]),
    scopes: Array.isArray(r["scopes"]) ? (r["scopes"] as unknown[]).map(String) : [],
    siteUrl: textOrNull(r["site_url"]),
    createdAt: toDate(r["created_at"]),
    lastUsedAt: d(r["last_used_at"]),
    expiresAt: d(r["expires_at"]),
    revokedAt: d(r["revoked_at"]),
  };
}

function auditFromRow(r: Row): AuditEntry {
  const details = r["details"];
  return {
    id: Number(r["id"]),
    clientId: textOrNull(r["client_id"]),
    actor: text(r["actor"]),
    action: text(r["action"]),
    target: textOrNull(r["target"]),
    details: typeof details === "object" && details !== null ? (details as Record<string, unknown>) : {},
    createdAt: toDate(r["created_at"]),
  };
}

/** The first secret-named property path in `value`, if any. */
function secretPath(value: unknown, path: string): string | null {
  if (Array.isArray(value)) {
    for (const [i, v] of value.entries()) {
      const found = secretPath(v, `${path}[${i}]`);
      if (found !== null) return found;
    }
    return null;
  }
  if (!isPlainObject(value)) return null;
  for (const [k, v] of Object.entries(value)) {
    if (isSecretFieldName(k)) return `${path}.${k}`;
    const found = secretPath(v, `${path}.${k}`);
    if (found !== null) return found;
  }
  return null;
}

function optionalObject(settings: ClientSettings, key: string): Record<string, unknown> | null {
  const v = settings[key];
  if (v === undefined || v === null) return null;
  if (!isPlainObject(v)) throw new InvalidInputError(`client settings.${key} must be an object or null`);
  return v;
}

/**
 * Checks settings before they are stored: a JSON object, the known keys with their types, and no
 * secret-named property anywhere (settings are stored unsealed; secrets go to client_secrets or
 * the tenant's provider_keys).
 */
function checkClientSettings(settings: ClientSettings): ClientSettings {
  if (!isPlainObject(settings)) throw new InvalidInputError("client settings must be a JSON object");
  const secret = secretPath(settings, "settings");
  if (secret !== null) {
    throw new InvalidInputError(
      `client settings are stored unsealed and must not hold secrets (${secret}); store keys as credentials or provider keys`,
      { details: { field: secret } },
    );
  }
  const dimensionOk = (d: unknown): boolean =>
    typeof d === "number" && Number.isInteger(d) && d >= 1 && d <= MAX_INDEXED_VECTOR_DIMENSION;
  const embedding = optionalObject(settings, "embedding");
  if (embedding !== null) {
    for (const key of ["provider", "document_model", "conversation_model"]) {
      const v = embedding[key];
      if (v !== undefined && v !== null && typeof v !== "string") {
        throw new InvalidInputError(`client settings.embedding.${key} must be a string or null`);
      }
    }
    const d = embedding["dimension"];
    if (d !== undefined && d !== null && !dimensionOk(d)) {
      throw new InvalidInputError(
        `client settings.embedding.dimension must be an integer in 1..${MAX_INDEXED_VECTOR_DIMENSION}`,
      );
    }
  }
  const index = optionalObject(settings, "embedding_index");
  if (index !== null) {
    for (const key of ["provider", "document_model", "conversation_model", "updated_at"]) {
      if (typeof index[key] !== "string") {
        throw new InvalidInputError(`client settings.embedding_index.${key} must be a string`);
      }
    }
    if (!dimensionOk(index["dimension"])) {
      throw new InvalidInputError(
        `client settings.embedding_index.dimension must be an integer in 1..${MAX_INDEXED_VECTOR_DIMENSION}`,
      );
    }
  }
  return settings;
}

function secretField(field: ClientSecretField): string {
  return `client_secrets:${field}`;
}

const API_KEY_COLUMNS =
  "id, client_id, name, key_prefix, scopes, site_url, created_at, last_used_at, expires_at, revoked_at";

export class SqlPlatformStore implements PlatformStore {
  readonly schema: string;
  readonly #db: SqlDatabase;
  readonly #keyring: Keyring;
  readonly #ownsDb: boolean;
  #closed = false;

  constructor(options: SqlPlatformStoreOptions) {
    const schema = options.schema ?? "public";
    if (!SCHEMA_NAME_PATTERN.test(schema)) {
      throw new InvalidInputError(`schema name "${schema}" must match ${String(SCHEMA_NAME_PATTERN)}`);
    }
    this.schema = schema;
    this.#db = options.db;
    this.#keyring = options.keyring;
    this.#ownsDb = options.ownsDatabase ?? true;
  }

  #t(table: string): string {
    return `${quoteIdent(this.schema)}.${quoteIdent(table)}`;
  }

  async #run<T>(what: string, fn: (db: SqlQueryable) => Promise<T>): Promise<T> {
    if (this.#closed) throw new StoreClosedError("the platform store is closed");
    try {
      return await fn(this.#db);
    } catch (err) {
      throw toStoreError(err, what);
    }
  }

  // ---- clients -------------------------------------------------------------------------------

  createClient(input: CreateClientInput): Promise<ClientRecord> {
    return this.#run("create client", async (db) => {
      if (!CLIENT_SLUG_PATTERN.test(input.slug)) {
        throw new InvalidInputError(`client slug must match ${String(CLIENT_SLUG_PATTERN)}`, {
          details: { slug: input.slug },
        });
      }
      if (input.name.trim() === "") throw new InvalidInputError("client name must not be empty");
      const status = input.status ?? "active";
      if (!CLIENT_STATUSES.includes(status)) throw new InvalidInputError(`unknown client status ${status}`);
      const id = input.id === undefined ? null : requireUuid(input.id, "client id");
      const settings = checkClientSettings(input.settings ?? {});
      const rows = await db.query<Row>(
        `insert into ${this.#t("clients")} (id, slug, name, status, settings)
         values (coalesce($1::uuid, gen_random_uuid()), $2, $3, $4, $5::jsonb) returning *`,
        [id, input.slug, input.name, status, JSON.stringify(settings)],
      );
      return clientFromRow(rows[0] ?? {});
    });
  }

  getClient(id: string): Promise<ClientRecord> {
    return this.#run("get client", async (db) => {
      if (!isUuid(id)) throw new TenantNotFoundError(`client ${id} not found`, { details: { clientId: id } });
      const rows = await db.query<Row>(`select * from ${this.#t("clients")} where id = $1`, [id]);
      if (rows[0] === undefined)
        throw new TenantNotFoundError(`client ${id} not found`, { details: { clientId: id } });
      return clientFromRow(rows[0]);
    });
  }

  findClientBySlug(slug: string): Promise<ClientRecord | null> {
    return this.#run("find client", async (db) => {
      const rows = await db.query<Row>(`select * from ${this.#t("clients")} where slug = $1`, [slug]);
      return rows[0] === undefined ? null : clientFromRow(rows[0]);
    });
  }

  listClients(options: ListPage & { status?: ClientStatus; search?: string } = {}): Promise<ClientRecord[]> {
    return this.#run("list clients", async (db) => {
      const search = options.search === undefined || options.search === "" ? null : options.search;
      const rows = await db.query<Row>(
        `select * from ${this.#t("clients")} where ($1::text is null or status = $1)
           and ($4::text is null or strpos(lower(slug), lower($4)) > 0 or strpos(lower(name), lower($4)) > 0)
         order by slug limit $2 offset $3`,
        [
          options.status ?? null,
          clampLimit(options.limit, 100, MAX_LIST),
          clampLimit(options.offset, 0, Number.MAX_SAFE_INTEGER),
          search,
        ],
      );
      return rows.map(clientFromRow);
    });
  }

  countClientsByStatus(): Promise<Record<ClientStatus, number>> {
    return this.#run("count clients", async (db) => {
      const rows = await db.query<Row>(
        `select status, count(*)::int as n from ${this.#t("clients")} group by status`,
      );
      const counts = Object.fromEntries(CLIENT_STATUSES.map((s) => [s, 0])) as Record<ClientStatus, number>;
      for (const r of rows) {
        const st = r["status"] as ClientStatus;
        if (CLIENT_STATUSES.includes(st)) counts[st] = Number(r["n"]);
      }
      return counts;
    });
  }

  isCorsOriginListed(origin: string): Promise<boolean> {
    return this.#run("find cors origin", async (db) => {
      const rows = await db.query<Row>(
        `select exists (
           select 1 from ${this.#t("clients")}
           where status = 'active' and jsonb_typeof(settings -> 'cors_origins') = 'array'
             and (settings -> 'cors_origins') ?| array[$1::text, '*']
         ) as listed`,
        [origin],
      );
      return rows[0]?.["listed"] === true;
    });
  }

  updateClient(id: string, patch: UpdateClientInput): Promise<ClientRecord> {
    return this.#run("update client", async (db) => {
      if (patch.slug !== undefined && !CLIENT_SLUG_PATTERN.test(patch.slug)) {
        throw new InvalidInputError(`client slug must match ${String(CLIENT_SLUG_PATTERN)}`);
      }
      if (patch.status !== undefined && !CLIENT_STATUSES.includes(patch.status)) {
        throw new InvalidInputError(`unknown client status ${patch.status}`);
      }
      const settings = patch.settings === undefined ? null : checkClientSettings(patch.settings);
      if (!isUuid(id)) throw new TenantNotFoundError(`client ${id} not found`, { details: { clientId: id } });
      const rows = await db.query<Row>(
        `update ${this.#t("clients")} set slug = coalesce($2, slug), name = coalesce($3, name),
           status = coalesce($4, status), settings = coalesce($5::jsonb, settings), updated_at = now()
         where id = $1 returning *`,
        [
          id,
          patch.slug ?? null,
          patch.name ?? null,
          patch.status ?? null,
          settings === null ? null : JSON.stringify(settings),
        ],
      );
      if (rows[0] === undefined)
        throw new TenantNotFoundError(`client ${id} not found`, { details: { clientId: id } });
      return clientFromRow(rows[0]);
    });
  }

  deleteClient(id: string): Promise<void> {
    return this.#run("delete client", async (db) => {
      if (!isUuid(id)) throw new TenantNotFoundError(`client ${id} not found`, { details: { clientId: id } });
      const rows = await db.query(`delete from ${this.#t("clients")} where id = $1 returning id`, [id]);
      if (rows.length === 0)
        throw new TenantNotFoundError(`client ${id} not found`, { details: { clientId: id } });
    });
  }

  // ---- sealed secrets ------------------------------------------------------------------------

  async #putSecret(clientId: string, field: ClientSecretField, plaintext: string): Promise<void> {
    await this.getClient(clientId);
    const envelope = encryptSecret(this.#keyring, plaintext, {
      tenantId: clientId,
      field: secretField(field),
    });
    await this.#run("store client secret", async (db) => {
      await db.query(
        `insert into ${this.#t("client_secrets")} (client_id, field, key_id, ciphertext) values ($1, $2, $3, $4)
         on conflict (client_id, field) do update
           set key_id = excluded.key_id, ciphertext = excluded.ciphertext, updated_at = now()`,
        [clientId, field, this.#keyring.activeKeyId, envelope],
      );
    });
  }

  async #getSecret(clientId: string, field: ClientSecretField): Promise<string | null> {
    if (!isUuid(clientId))
      throw new TenantNotFoundError(`client ${clientId} not found`, { details: { clientId } });
    const rows = await this.#run("read client secret", (db) =>
      db.query<{ ciphertext: string }>(
        `select ciphertext from ${this.#t("client_secrets")} where client_id = $1 and field = $2`,
        [clientId, field],
      ),
    );
    const row = rows[0];
    if (row === undefined) return null;
    return decryptSecret(this.#keyring, row.ciphertext, { tenantId: clientId, field: secretField(field) });
  }

  async setTenantDatabase(clientId: string, config: TenantDatabaseConfig): Promise<void> {
    await this.#putSecret(clientId, "database", JSON.stringify(parseTenantDatabaseConfig(config)));
  }

  async getTenantDatabase(clientId: string): Promise<TenantDatabaseConfig | null> {
    const text = await this.#getSecret(clientId, "database");
    return text === null ? null : parseTenantDatabaseConfig(JSON.parse(text) as unknown);
  }

  async setLivekitCredentials(clientId: string, credentials: LivekitCredentials): Promise<void> {
    await this.#putSecret(clientId, "livekit", JSON.stringify(parseLivekitCredentials(credentials)));
  }

  async getLivekitCredentials(clientId: string): Promise<LivekitCredentials | null> {
    const text = await this.#getSecret(clientId, "livekit");
    return text === null ? null : parseLivekitCredentials(JSON.parse(text) as unknown);
  }

  listClientSecrets(clientId: string): Promise<ClientSecretInfo[]> {
    return this.#run("list client secrets", async (db) => {
      if (!isUuid(clientId)) return [];
      const rows = await db.query<Row>(
        `select field, key_id, updated_at from ${this.#t("client_secrets")} where client_id = $1 order by field`,
        [clientId],
      );
      return rows
        .filter((r) => (CLIENT_SECRET_FIELDS as readonly string[]).includes(text(r["field"])))
        .map((r) => ({
          field: text(r["field"]) as ClientSecretField,
          keyId: text(r["key_id"]),
          updatedAt: toDate(r["updated_at"]),
        }));
    });
  }

  deleteClientSecret(clientId: string, field: ClientSecretField): Promise<boolean> {
    return this.#run("delete client secret", async (db) => {
      if (!isUuid(clientId)) return false;
      const rows = await db.query(
        `delete from ${this.#t("client_secrets")} where client_id = $1 and field = $2 returning field`,
        [clientId, field],
      );
      return rows.length > 0;
    });
  }

  secretsForRotation(): RotatableSecrets {
    const table = this.#t("client_secrets");
    return {
      name: "platform:client_secrets",
      listNotOnKey: (activeKeyId, limit, afterRef) =>
        this.#run("list client secrets for rotation", async (db) => {
          const rows = await db.query<{
            client_id: string;
            field: string;
            key_id: string;
            ciphertext: string;
          }>(
            `select client_id, field, key_id, ciphertext from ${table}
             where key_id <> $1 and ($2::text is null or (client_id::text || '/' || field) > $2)
             order by (client_id::text || '/' || field) limit $3`,
            [activeKeyId, afterRef, limit],
          );
          return rows.map((r): StoredSecret => ({
            ref: `${r.client_id}/${r.field}`,
            keyId: r.key_id,
            envelope: r.ciphertext,
            context: { tenantId: r.client_id, field: secretField(r.field as ClientSecretField) },
          }));
        }),
      replaceEnvelope: (secret, envelope, keyId) =>
        this.#run("rotate client secret", async (db) => {
          const [clientId, field] = secret.ref.split("/");
          const rows = await db.query(
            `update ${table} set ciphertext = $1, key_id = $2, updated_at = now()
             where client_id = $3 and field = $4 and ciphertext = $5 returning field`,
            [envelope, keyId, clientId, field, secret.envelope],
          );
          return rows.length > 0;
        }),
    };
  }

  // ---- API keys ------------------------------------------------------------------------------

  async createApiKey(input: CreateApiKeyInput): Promise<CreatedApiKey> {
    await this.getClient(input.clientId);
    const scopes = input.scopes ?? [];
    for (const scope of scopes) {
      if (!/^(?:\*|[a-z][a-z0-9_.:*-]{0,63})$/.test(scope))
        throw new InvalidInputError(`invalid API key scope "${scope}"`);
    }
    const key = generateApiKey();
    return this.#run("create api key", async (db) => {
      const rows = await db.query<Row>(
        `insert into ${this.#t("api_keys")} (client_id, name, key_prefix, key_hash, scopes, site_url, expires_at)
         values ($1, $2, $3, $4, $5::text[], $6, $7) returning ${API_KEY_COLUMNS}`,
        [
          input.clientId,
          input.name ?? "",
          key.displayPrefix,
          key.hash,
          scopes,
          input.siteUrl ?? null,
          input.expiresAt ?? null,
        ],
      );
      return { record: apiKeyFromRow(rows[0] ?? {}), secret: key.secret };
    });
  }

  verifyApiKey(secret: string): Promise<ApiKeyRecord | null> {
    return this.#run("verify api key", async (db) => {
      const prefix = apiKeyDisplayPrefix(secret);
      if (prefix === null) return null;
      const rows = await db.query<Row>(
        `select ${API_KEY_COLUMNS}, key_hash from ${this.#t("api_keys")} where key_prefix = $1`,
        [prefix],
      );
      let match: Row | undefined;
      for (const row of rows) {
        // Compare against every candidate, so the time does not depend on which one matches.
        if (verifyApiKeyHash(secret, String(row["key_hash"]))) match = row;
      }
      if (match === undefined) return null;
      const record = apiKeyFromRow(match);
      const now = Date.now();
      if (record.revokedAt !== null) return null;
      if (record.expiresAt !== null && record.expiresAt.getTime() <= now) return null;
      if (record.lastUsedAt === null || now - record.lastUsedAt.getTime() > LAST_USED_RESOLUTION_MS) {
        await db.query(`update ${this.#t("api_keys")} set last_used_at = now() where id = $1`, [record.id]);
        record.lastUsedAt = new Date(now);
      }
      return record;
    });
  }

  listApiKeys(clientId: string): Promise<ApiKeyRecord[]> {
    return this.#run("list api keys", async (db) => {
      if (!isUuid(clientId)) return [];
      const rows = await db.query<Row>(
        `select ${API_KEY_COLUMNS} from ${this.#t("api_keys")} where client_id = $1 order by created_at, id`,
        [clientId],
      );
      return rows.map(apiKeyFromRow);
    });
  }

  revokeApiKey(id: string): Promise<ApiKeyRecord> {
    return this.#run("revoke api key", async (db) => {
      if (!isUuid(id)) throw new NotFoundError(`api key ${id} not found`, { details: { id } });
      const rows = await db.query<Row>(
        `update ${this.#t("api_keys")} set revoked_at = coalesce(revoked_at, now()) where id = $1 returning ${API_KEY_COLUMNS}`,
        [id],
      );
      if (rows[0] === undefined) throw new NotFoundError(`api key ${id} not found`, { details: { id } });
      return apiKeyFromRow(rows[0]);
    });
  }

  // ---- audit log -----------------------------------------------------------------------------

  appendAudit(entry: AuditEntryInput): Promise<AuditEntry> {
    return this.#run("append audit entry", async (db) => {
      const clientId = entry.clientId ?? null;
      if (clientId !== null) requireUuid(clientId, "clientId");
      const rows = await db.query<Row>(
        `insert into ${this.#t("audit_log")} (client_id, actor, action, target, details)
         values ($1, $2, $3, $4, $5::jsonb) returning *`,
        [
          clientId,
          entry.actor,
          entry.action,
          entry.target ?? null,
          JSON.stringify(redactSecrets(entry.details ?? {})),
        ],
      );
      return auditFromRow(rows[0] ?? {});
    });
  }

  listAudit(options: { clientId?: string; limit?: number; beforeId?: number } = {}): Promise<AuditEntry[]> {
    return this.#run("list audit entries", async (db) => {
      if (options.clientId !== undefined) requireUuid(options.clientId, "clientId");
      const rows = await db.query<Row>(
        `select * from ${this.#t("audit_log")}
         where ($1::uuid is null or client_id = $1) and ($2::bigint is null or id < $2)
         order by id desc limit $3`,
        [options.clientId ?? null, options.beforeId ?? null, clampLimit(options.limit, 100, MAX_LIST)],
      );
      return rows.map(auditFromRow);
    });
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#ownsDb) await this.#db.close();
  }
}
