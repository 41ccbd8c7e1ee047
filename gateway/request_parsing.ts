/** Reading a request's parts: request id, path and query, path parameters, JSON body. */
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

/** Parses a JSON body (undefined when empty); a non-JSON content type is a 415, bad JSON a 400. */
export function parseJsonBody(raw: RawRequest): unknown {
  if (raw.body.length === 0) return undefined;
  const type = raw.headers["content-type"] ?? "";
  if (!JSON_TYPE_RE.test(type)) {
    throw new UnsupportedMediaTypeError("the body must be application/json", {
      details: { content_type: type },
    });
  }
  try {
    return JSON.parse(raw.body.toString("utf8")) as unknown;
  } catch (err) {
    throw new BadJsonError("the body is not valid JSON", { cause: err });
  }
}
