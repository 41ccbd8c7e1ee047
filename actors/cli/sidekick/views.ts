/** Records as the CLI shows them: the API's snake_case shapes, secrets masked or redacted. */
import type { ApiKeyView, ClientDetailView, ClientView } from "../../platform/messages.ts";
import type { Cell } from "./table.ts";

export function dateText(value: string | null | undefined): string | null {
  if (value === null || value === undefined) return null;
  return value.replace("T", " ").replace(/\.\d+Z$/, "Z");
}

export function clientRow(c: ClientView): Cell[] {
  return [c.id, c.slug, c.name, c.status, dateText(c.created_at)];
}

export function apiKeyRow(k: ApiKeyView): Cell[] {
  return [
    k.id,
    k.prefix,
    k.label,
    k.scopes.join(","),
    k.site_url,
    dateText(k.created_at),
    k.revoked_at === null ? "active" : `revoked ${dateText(k.revoked_at) ?? ""}`,
  ];
}

export const API_KEY_COLUMNS = [
  { header: "id" },
  { header: "prefix" },
  { header: "label", maxWidth: 30 },
  { header: "scopes", maxWidth: 40 },
  { header: "site url", maxWidth: 40 },
  { header: "created" },
  { header: "state" },
] as const;

/** The client's fields and its masked credentials, as `key value` pairs. */
export function clientPairs(c: ClientDetailView): Array<[string, Cell]> {
  const db = c.credentials.tenant_database;
  const lk = c.credentials.livekit;
  const embedding = c.settings.embedding;
  return [
    ["id", c.id],
    ["slug", c.slug],
    ["name", c.name],
    ["status", c.status],
    ["created", dateText(c.created_at)],
    ["updated", dateText(c.updated_at)],
    [
      "embedding",
      embedding?.provider === undefined || embedding.provider === null
        ? "not configured"
        : `${embedding.provider} ${embedding.document_model ?? "(default model)"} dim ${embedding.dimension ?? "default"}`,
    ],
    [
      "tenant database",
      db.configured
        ? [db.kind, db.schema === null ? null : `schema ${db.schema}`, db.url ?? db.data_dir ?? null]
            .filter((p) => p !== null && p !== undefined)
            .join("  ")
        : "not configured",
    ],
    ["livekit", lk.configured ? `${lk.url}  key ${lk.api_key}  secret ${lk.api_secret}` : "not configured"],
  ];
}
