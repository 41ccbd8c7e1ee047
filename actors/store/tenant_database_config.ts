/** Validation of the connection descriptions that are sealed into `client_secrets`. */
import { InvalidInputError } from "./errors.ts";
import { SCHEMA_NAME_PATTERN } from "./sql_database.ts";
import { validateEmbeddingDimension } from "./migrations.ts";
import type { LivekitCredentials, TenantDatabaseConfig } from "./types.ts";

function field(obj: Record<string, unknown>, name: string, what: string): string {
  const v = obj[name];
  if (typeof v !== "string" || v.trim() === "") {
    throw new InvalidInputError(`${what}: "${name}" must be a non-empty string`, {
      details: { field: name },
    });
  }
  return v;
}

function optionalSchema(obj: Record<string, unknown>, what: string): string | undefined {
  const v = obj["schema"];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "string" || !SCHEMA_NAME_PATTERN.test(v)) {
    throw new InvalidInputError(`${what}: "schema" must match ${String(SCHEMA_NAME_PATTERN)}`);
  }
  return v;
}

function httpUrl(value: string, name: string, what: string, protocols: readonly string[]): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch (cause) {
    throw new InvalidInputError(`${what}: "${name}" is not a URL`, { cause, details: { field: name } });
  }
  if (!protocols.includes(url.protocol)) {
    throw new InvalidInputError(`${what}: "${name}" must use ${protocols.join(" or ")}`, {
      details: { field: name },
    });
  }
  return value;
}

/** Checks a tenant database description (from input or from a decrypted secret). */
export function parseTenantDatabaseConfig(value: unknown): TenantDatabaseConfig {
  const what = "tenant database";
  if (typeof value !== "object" || value === null) throw new InvalidInputError(`${what} must be an object`);
  const obj = value as Record<string, unknown>;
  const schema = optionalSchema(obj, what);
  switch (obj["kind"]) {
    case "supabase": {
      const config: TenantDatabaseConfig = {
        kind: "supabase",
        url: httpUrl(field(obj, "url", what), "url", what, ["https:", "http:"]),
        serviceRoleKey: field(obj, "serviceRoleKey", what),
      };
      if (schema !== undefined) config.schema = schema;
      if (obj["embeddingDimension"] !== undefined) {
        config.embeddingDimension = validateEmbeddingDimension(Number(obj["embeddingDimension"]));
      }
      return config;
    }
    case "postgres": {
      const config: TenantDatabaseConfig = {
        kind: "postgres",
        url: httpUrl(field(obj, "url", what), "url", what, ["postgres:", "postgresql:"]),
      };
      if (schema !== undefined) config.schema = schema;
      return config;
    }
    case "pglite": {
      const config: TenantDatabaseConfig = { kind: "pglite", dataDir: field(obj, "dataDir", what) };
      if (schema !== undefined) config.schema = schema;
      return config;
    }
    default:
      throw new InvalidInputError(`${what}: "kind" must be supabase, postgres or pglite`);
  }
}

export function parseLivekitCredentials(value: unknown): LivekitCredentials {
  const what = "LiveKit credentials";
  if (typeof value !== "object" || value === null) throw new InvalidInputError(`${what} must be an object`);
  const obj = value as Record<string, unknown>;
  return {
    url: httpUrl(field(obj, "url", what), "url", what, ["wss:", "ws:", "https:", "http:"]),
    apiKey: field(obj, "apiKey", what),
    apiSecret: field(obj, "apiSecret", what),
  };
}
