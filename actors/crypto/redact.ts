/**
 * Keeping decrypted values out of logs, errors and responses.
 *
 * - `LOG_REDACT_PATHS` / `logRedactOptions()` feed pino's `redact` option: every logger of the
 *   platform is built with them (a test proves a secret does not come out).
 * - `maskSecret` turns a secret into something safe to show (`sk_1…(43)`).
 * - `redactSecrets` deep-copies a value, replacing every property with a secret-like name.
 */

/** Property names whose values are secrets wherever they appear. */
export const SECRET_FIELD_NAMES: readonly string[] = Object.freeze([
  "apiKey",
  "api_key",
  "apiSecret",
  "api_secret",
  "secret",
  "password",
  "token",
  "accessToken",
  "access_token",
  "refreshToken",
  "refresh_token",
  "userToken",
  "user_token",
  "serviceRoleKey",
  "service_role_key",
  "supabaseServiceRoleKey",
  "supabase_service_role_key",
  "masterKey",
  "master_key",
  "masterKeys",
  "privateKey",
  "private_key",
  "authorization",
  "Authorization",
  "apikey",
  "cookie",
  "connectionString",
  "databaseUrl",
  "database_url",
  "plaintext",
]);

const SECRET_NAME_SET = new Set(SECRET_FIELD_NAMES.map((n) => n.toLowerCase()));

export const REDACTED = "[REDACTED]";

function pathKey(name: string): string {
  return /^[A-Za-z_$][A-Za-z0-9_$]*$/.test(name) ? `.${name}` : `["${name}"]`;
}

/**
 * pino redaction paths: every secret field name at the top level and up to two levels deep,
 * plus the request headers that carry credentials.
 */
export const LOG_REDACT_PATHS: readonly string[] = Object.freeze([
  ...SECRET_FIELD_NAMES.map((n) => pathKey(n).replace(/^\./, "")),
  ...SECRET_FIELD_NAMES.map((n) => `*${pathKey(n)}`),
  ...SECRET_FIELD_NAMES.map((n) => `*.*${pathKey(n)}`),
  'req.headers["x-api-key"]',
  "req.headers.authorization",
  "req.headers.apikey",
  "req.headers.cookie",
  'res.headers["set-cookie"]',
]);

/** The `redact` option for pino: `pino({ redact: logRedactOptions() })`. */
export function logRedactOptions(): { paths: string[]; censor: string } {
  return { paths: [...LOG_REDACT_PATHS], censor: REDACTED };
}

/**
 * A display form of a secret: at most the first 4 characters (none for short secrets) and its
 * length. `maskSecret("sk_abcdef…")` → `"sk_a…(46)"`.
 */
export function maskSecret(value: string | null | undefined): string {
  if (value === null || value === undefined || value === "") return "";
  if (value.length < 16) return `…(${value.length})`;
  return `${value.slice(0, 4)}…(${value.length})`;
}

export function isSecretFieldName(name: string): boolean {
  return SECRET_NAME_SET.has(name.toLowerCase());
}

/** Deep copy of `value` with every secret-named property replaced by `[REDACTED]`. */
export function redactSecrets<T>(value: T): T {
  return redactValue(value, new WeakSet()) as T;
}

function redactValue(value: unknown, seen: WeakSet<object>): unknown {
  if (typeof value !== "object" || value === null) return value;
  if (seen.has(value)) return "[Circular]";
  seen.add(value);
  if (Array.isArray(value)) return value.map((v) => redactValue(v, seen));
  if (value instanceof Date) return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    out[k] = isSecretFieldName(k) && v !== null && v !== undefined ? REDACTED : redactValue(v, seen);
  }
  return out;
}
