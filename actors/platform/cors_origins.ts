/**
 * A tenant's browser origins (`clients.settings.cors_origins`): the sites and apps whose pages may
 * use the tenant's API keys from a browser (see gateway/cors.ts for how the gateway applies them).
 * Each entry is an exact origin as a browser sends it in `Origin` — `scheme://host[:port]`, lower
 * case, no path, no trailing slash, default port omitted — or `*` for any origin. Non-web schemes
 * are allowed for mobile shells (`capacitor://localhost`, `ionic://localhost`).
 */
import { InvalidArgumentError } from "../errors.ts";

/** Entries a tenant may list. */
export const MAX_CORS_ORIGINS = 50;
/** Longest entry. */
export const MAX_CORS_ORIGIN_LENGTH = 300;

const LABEL = "[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?";
/** The shape of one entry (JSON-schema `pattern` text; the op also checks the port and web origins). */
export const CORS_ORIGIN_PATTERN = `^(?:\\*|[a-z][a-z0-9+.-]*://(?:\\[[0-9a-f:.]+\\]|${LABEL}(?:\\.${LABEL})*)(?::[1-9][0-9]{0,4})?)$`;
const CORS_ORIGIN_RE = new RegExp(CORS_ORIGIN_PATTERN);

/** Why `value` is not an exact origin, or undefined when it is one. */
export function corsOriginProblem(value: string): string | undefined {
  if (value.length > MAX_CORS_ORIGIN_LENGTH) return `is longer than ${MAX_CORS_ORIGIN_LENGTH} characters`;
  if (!CORS_ORIGIN_RE.test(value)) {
    return "must be an exact origin scheme://host[:port] in lower case (no path, no trailing slash), or *";
  }
  if (value === "*") return undefined;
  const port = /:([0-9]+)$/.exec(value)?.[1];
  if (port !== undefined && !value.endsWith("]") && Number(port) > 65_535) return "has a port above 65535";
  if (value.startsWith("http://") || value.startsWith("https://")) {
    let origin: string;
    try {
      origin = new URL(value).origin;
    } catch {
      return "is not a valid origin";
    }
    // What a browser would send: default ports dropped, hosts normalised.
    if (origin !== value) return `must be written as the browser sends it: ${origin}`;
  }
  return undefined;
}

/**
 * `settings.cors_origins` of a create or update: an array of distinct exact origins (at most
 * MAX_CORS_ORIGINS), or null to remove the list. Throws SF_ERR_INVALID_ARGUMENT naming the entry.
 */
export function parseCorsOrigins(op: string, value: unknown): string[] | null {
  if (value === null) return null;
  const field = "settings.cors_origins";
  if (!Array.isArray(value)) {
    throw new InvalidArgumentError(`${op}: "${field}" must be an array of origins or null`, {
      details: { field },
    });
  }
  if (value.length > MAX_CORS_ORIGINS) {
    throw new InvalidArgumentError(`${op}: "${field}" may list at most ${MAX_CORS_ORIGINS} origins`, {
      details: { field },
    });
  }
  const seen = new Set<string>();
  for (const [i, entry] of value.entries()) {
    const at = `${field}[${i}]`;
    const problem =
      typeof entry !== "string"
        ? "must be a string"
        : seen.has(entry)
          ? "repeats an origin"
          : corsOriginProblem(entry);
    if (problem !== undefined) {
      throw new InvalidArgumentError(`${op}: "${at}" ${problem}`, { details: { field: at } });
    }
    seen.add(entry as string);
  }
  return [...seen];
}

/** The origins a stored settings object lists (entries that are not strings are ignored). */
export function corsOriginsOf(settings: { cors_origins?: unknown }): string[] {
  const list = settings.cors_origins;
  return Array.isArray(list) ? list.filter((o): o is string => typeof o === "string") : [];
}
