/**
 * HTML answers of the console: server-rendered JSX (hono/jsx: text and attributes escaped), sent
 * with the security headers every console response carries — a strict CSP (no inline script or
 * style, nothing from another origin except, on the preview page, the tenant's LiveKit), no
 * framing, no sniffing, no caching of pages that show tenant data.
 */
import type { HtmlEscapedString } from "hono/utils/html";

/** What a console view returns (hono/jsx; views are synchronous). */
export type ViewNode = HtmlEscapedString | Promise<HtmlEscapedString>;
import type { GatewayResponse } from "../http_types.ts";

export interface PageOptions {
  /** Extra `connect-src` origins (the tenant's LiveKit server on the preview page). */
  connect?: readonly string[];
  headers?: Readonly<Record<string, string>>;
}

/** The CSP of console pages; `connect` adds origins the page's script may reach. */
export function contentSecurityPolicy(connect: readonly string[] = []): string {
  const connectSrc = ["'self'", ...connect].join(" ");
  return [
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "font-src 'self'",
    `connect-src ${connectSrc}`,
    "media-src 'self' blob:",
    "form-action 'self'",
    "frame-ancestors 'none'",
    "base-uri 'none'",
  ].join("; ");
}

/** Headers on every console response, static assets included. */
export function securityHeaders(connect: readonly string[] = []): Record<string, string> {
  return {
    "content-security-policy": contentSecurityPolicy(connect),
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "same-origin",
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-resource-policy": "same-origin",
    "permissions-policy": "microphone=(self), camera=(), geolocation=()",
  };
}

/** The markup of a view; views are synchronous (they get their data as props). */
export function renderHtml(node: ViewNode, fragment: boolean): string {
  if (node instanceof Promise) throw new Error("console views must not be async");
  const body = node.toString();
  return fragment ? body : `<!doctype html>${body}`;
}

/** A page (`<!doctype html>` + document) or, for an HTMX request, a fragment. */
export function html(
  status: number,
  node: ViewNode,
  options: PageOptions & { fragment?: boolean } = {},
): GatewayResponse {
  return {
    status,
    headers: {
      ...securityHeaders(options.connect),
      "cache-control": "no-store",
      ...options.headers,
    },
    body: {
      type: "text",
      value: renderHtml(node, options.fragment ?? false),
      contentType: "text/html; charset=utf-8",
    },
  };
}

/** A redirect after a form post (303), or `HX-Redirect` for an HTMX request. */
export function redirect(
  location: string,
  htmx: boolean,
  headers: Record<string, string> = {},
): GatewayResponse {
  if (htmx) {
    return {
      status: 200,
      headers: { ...securityHeaders(), "cache-control": "no-store", "hx-redirect": location, ...headers },
      body: { type: "empty" },
    };
  }
  return {
    status: 303,
    headers: { ...securityHeaders(), "cache-control": "no-store", location, ...headers },
    body: { type: "empty" },
  };
}
