/**
 * How a console route runs: the session cookie names a live session (else the browser goes to
 * the login page), every state-changing request proves it comes from the console (the session's
 * CSRF token in the form or the `X-CSRF-Token` header HTMX sends, and a same-origin
 * `Sec-Fetch-Site`/`Origin` when the browser says where it comes from), and any error becomes an
 * HTML answer (a page, or a fragment for HTMX) with the error's code and message.
 */
import { SfError } from "../../bus/index.ts";
import type { TriggerService } from "../chat/trigger_service.ts";
import type { GatewayAdminConfig } from "../config.ts";
import { publicError } from "../error_status.ts";
import { GatewayErrorCodes } from "../errors.ts";
import type { HealthDeps } from "../health_checks.ts";
import type { GatewayRequest, GatewayResponse, RouteDefinition } from "../http_types.ts";
import type { ApiRouteDeps } from "../routes/route_helpers.ts";
import { parseCookies } from "./cookies.ts";
import { emptyForm, readForm } from "./forms.ts";
import type { AdminForm } from "./forms.ts";
import { html, redirect } from "./html.ts";
import type { AdminSession, AdminSessions } from "./sessions.ts";
import { sameToken } from "./sessions.ts";
import { ErrorPage } from "./views/error_page.tsx";
import type { Viewer } from "./views/layout.tsx";

export const SESSION_COOKIE = "sf_admin_session";

export interface ConsoleDeps extends ApiRouteDeps {
  sessions: AdminSessions;
  config: GatewayAdminConfig;
  /** NATS, subjects and deadlines the dashboard reads the platform through (as /health/detailed does). */
  health: HealthDeps;
  /** The trigger path of the API (text turns, voice dispatch): the agent preview runs on it. */
  triggers: TriggerService;
  /** Largest document file the knowledge base accepts (the v2 upload route's limit). */
  maxUploadBytes: number;
}

/** One console request, its session checked. */
export interface ConsoleRequest {
  readonly req: GatewayRequest;
  readonly session: AdminSession;
  readonly viewer: Viewer;
  /** Sent by HTMX: answer with a fragment. */
  readonly htmx: boolean;
  /** The urlencoded form of a POST (empty for GET). */
  readonly form: AdminForm;
}

export type ConsoleHandler = (c: ConsoleRequest) => Promise<GatewayResponse>;

export interface ConsoleRouteSpec {
  method: "GET" | "POST";
  path: string;
  operationId: string;
  summary: string;
  handler: ConsoleHandler;
  /** Multipart uploads read their own body: no urlencoded form is parsed. */
  rawBody?: boolean;
  maxBodyBytes?: number;
}

export function isHtmx(req: Pick<GatewayRequest, "headers">): boolean {
  return req.headers["hx-request"] === "true";
}

export class CsrfError extends SfError {
  override name = "CsrfError";
  constructor(message: string) {
    super(GatewayErrorCodes.CSRF_FAILED, message);
  }
}

/** Refuses a state-changing request the console's own pages did not send. */
export function checkSameOrigin(req: GatewayRequest): void {
  const site = req.headers["sec-fetch-site"];
  if (site !== undefined && site !== "same-origin" && site !== "none") {
    throw new CsrfError("the request came from another site");
  }
  const origin = req.headers["origin"];
  const host = req.headers["host"];
  if (origin !== undefined && origin !== "null" && host !== undefined) {
    let originHost: string;
    try {
      originHost = new URL(origin).host;
    } catch {
      throw new CsrfError("the request's Origin is not a URL");
    }
    if (originHost !== host) throw new CsrfError("the request came from another origin");
  }
  if (origin === "null") throw new CsrfError("the request came from an opaque origin");
}

function checkCsrf(req: GatewayRequest, session: AdminSession, form: AdminForm): void {
  checkSameOrigin(req);
  const presented = req.headers["x-csrf-token"] ?? form.raw("_csrf");
  if (presented === undefined || !sameToken(presented, session.csrf)) {
    throw new CsrfError("the form's CSRF token is missing or wrong: reload the page and try again");
  }
}

/** The login page's URL that brings the browser back to `path` afterwards. */
export function loginUrl(path: string): string {
  return path === "/admin" || path === "/admin/"
    ? "/admin/login"
    : `/admin/login?next=${encodeURIComponent(path)}`;
}

/** An error as the console shows it: the page (or fragment) with the code and message. */
export function errorPage(
  err: unknown,
  req: Pick<GatewayRequest, "headers">,
  viewer: Viewer | undefined,
): GatewayResponse {
  const e = publicError(err);
  const node = ErrorPage({
    status: e.status,
    code: e.code,
    message: e.message,
    viewer,
    fragment: isHtmx(req),
  });
  return html(e.status, node, { fragment: isHtmx(req) });
}

export function consoleRoute(deps: ConsoleDeps, spec: ConsoleRouteSpec): RouteDefinition {
  const route: RouteDefinition = {
    method: spec.method,
    path: spec.path,
    operationId: spec.operationId,
    summary: spec.summary,
    tags: ["admin-console"],
    responses: {
      200: { description: "An HTML page, or an HTML fragment for HTMX", contentType: "text/html" },
      303: { description: "Redirect (to the login page without a session, or after a form post)" },
    },
    handler: async (req) => {
      const htmx = isHtmx(req);
      const cookies = parseCookies(req.headers["cookie"]);
      let session: AdminSession | undefined;
      try {
        session = await deps.sessions.get(cookies.get(SESSION_COOKIE));
      } catch (err) {
        return errorPage(err, req, undefined);
      }
      if (session === undefined) {
        const back = req.method === "GET" && !htmx ? req.path : "/admin";
        return redirect(loginUrl(back), htmx);
      }
      req.context.caller = { type: "admin" };
      const viewer: Viewer = { actor: session.actor, csrf: session.csrf };
      try {
        const form = spec.method === "POST" && spec.rawBody !== true ? readForm(req) : emptyForm();
        if (spec.method === "POST") checkCsrf(req, session, form);
        return await spec.handler({ req, session, viewer, htmx, form });
      } catch (err) {
        return errorPage(err, req, viewer);
      }
    },
  };
  if (spec.maxBodyBytes !== undefined) route.maxBodyBytes = spec.maxBodyBytes;
  // A body over the limit or a path parameter that does not decode is refused before the
  // handler runs: as a page too.
  route.renderError = (err, req) => errorPage(err, req, undefined);
  return route;
}
