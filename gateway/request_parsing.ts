/** Reading a request's parts: request id, path and query, path parameters, JSON body. */
import { isUtf8 } from "node:buffer";
import { randomUUID } from "node:crypto";
import { BadJsonError, BadRequestError, UnsupportedMediaTypeError } from "./errors.ts";
import type { RawRequest } from "./http_types.ts";

const REQUEST_ID_RE = /^[A-Za-z0-9._:-]{1,128}$/;
const JSON_TYPE_RE = /^application\/(?:[a-z0-9.+-]+\+)?json\s*(?:;|$)/i;

/** The caller's `x-request-id` when it is a sane token, else a new UUID. */
export function pickRequestId(given: string | undefined): string {
  return given !== undefined && REQUEST_ID_RE.test(given) ? given : randomUUID();
}

/** Splits `/path?query`; for a repeated query name the first value wins. */
export function parseUrl(url: string): { path: string; query: Record<string, string> } {
  const q = url.indexOf("?");
  const path = q === -1 ? url : url.slice(0, q);
  const query: Record<string, string> = {};
  if (q !== -1) {
    for (const [k, v] of new URLSearchParams(url.slice(q + 1))) {
      if (!(k in query)) query[k] = v;
    }
  }
  if (!path.startsWith("/")) throw new BadRequestError("the request path must start with /");
  return { path, query };
}

/** Percent-decodes path parameters; a malformed escape is a 400. */
export function decodeParams(raw: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(raw)) {
    try {
      out[k] = decodeURIComponent(v);
    } catch (err) {
      throw new BadRequestError(`path parameter ${k} is not valid percent-encoding`, { cause: err });
    }
  }
  return out;
}

/**
 * Deepest nesting of arrays and objects a JSON text may have. Deeper values cannot cross the bus
 * (the msgpack encoder and JSON.stringify recurse, and overflow the stack past a few thousand
 * levels) and no API document needs more than a handful.
 */
export const MAX_JSON_DEPTH = 64;

const OPEN_BRACE = 0x7b;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACE = 0x7d;
const CLOSE_BRACKET = 0x5d;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/** The deepest nesting in a JSON text, stopping as soon as it passes `limit` (strings skipped). */
function nestingDepth(text: string, limit: number): number {
  let depth = 0;
  let deepest = 0;
  let inString = false;
  for (let i = 0; i < text.length; i += 1) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === BACKSLASH) i += 1;
      else if (c === QUOTE) inString = false;
    } else if (c === QUOTE) {
      inString = true;
    } else if (c === OPEN_BRACE || c === OPEN_BRACKET) {
      depth += 1;
      if (depth > deepest) {
        deepest = depth;
        if (deepest > limit) return deepest;
      }
    } else if (c === CLOSE_BRACE || c === CLOSE_BRACKET) {
      depth -= 1;
    }
  }
  return deepest;
}

/**
 * Parses JSON text from a client (a body, a form field): bad JSON, or JSON nested deeper than
 * MAX_JSON_DEPTH, is a BadJsonError (400). `what` names it in the message.
 */
export function parseClientJson(text: string, what = "the body"): unknown {
  if (nestingDepth(text, MAX_JSON_DEPTH) > MAX_JSON_DEPTH) {
    throw new BadJsonError(`${what} nests arrays and objects deeper than ${MAX_JSON_DEPTH} levels`, {
      details: { max_depth: MAX_JSON_DEPTH },
    });
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new BadJsonError(`${what} is not valid JSON`, { cause: err });
  }
}

/**
 * Parses a JSON body (undefined when empty); a non-JSON content type is a 415; bad JSON, JSON
 * that is not UTF-8 (RFC 8259: it is never replaced by U+FFFD here) or nested too deep a 400.
 */
export function parseJsonBody(raw: RawRequest): unknown {
  if (raw.body.length === 0) return undefined;
  const type = raw.headers["content-type"] ?? "";
  if (!JSON_TYPE_RE.test(type)) {
    throw new UnsupportedMediaTypeError("the body must be application/json", {
      details: { content_type: type },
    });
  }
  if (!isUtf8(raw.body)) throw new BadJsonError("the body is not valid UTF-8");
  return parseClientJson(raw.body.toString("utf8"));
}
