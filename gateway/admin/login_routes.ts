/**
 * Console login, logout and static files. Login accepts the embedded admin token (or an admin's
 * Supabase access token) or, when the platform's Supabase is configured, an email and password
 * through Supabase Auth; either way the credential must belong to an admin. A successful login
 * starts a session (HttpOnly, SameSite=Strict cookie; see sessions.ts); logout ends it on every
 * gateway.
 */
import { PlatformErrorCodes } from "../../actors/index.ts";
import { SfError } from "../../bus/index.ts";
import { GatewayErrorCodes, NotFoundError } from "../errors.ts";
import type { GatewayRequest, GatewayResponse, RouteDefinition } from "../http_types.ts";
import { adminAssets } from "./assets.ts";
import { checkSameOrigin, consoleRoute, errorPage, isHtmx, SESSION_COOKIE } from "./console.ts";
import type { ConsoleDeps } from "./console.ts";
import { parseCookies, setCookie } from "./cookies.ts";
import { readForm } from "./forms.ts";
import { html, redirect, securityHeaders } from "./html.ts";
import type { AdminSession } from "./sessions.ts";
import { SupabaseLogin } from "./supabase_login.ts";
import { LoginPage } from "./views/login.tsx";

const TAGS = ["admin-console"] as const;
/** The codes of a refused login (as opposed to a platform that cannot answer). */
const REFUSED = new Set<string>([
  PlatformErrorCodes.UNAUTHENTICATED,
  PlatformErrorCodes.FORBIDDEN,
  GatewayErrorCodes.LOGIN_FAILED,
]);
const HTML_200 = { description: "An HTML page", contentType: "text/html" } as const;

/** Where to go after login: a console path only (never another site, never `//host`). */
export function safeNext(next: string | undefined): string {
  if (next === undefined || !next.startsWith("/admin") || next.startsWith("//") || /[\\\s]/.test(next)) {
    return "/admin";
  }
  return next.startsWith("/admin/login") ? "/admin" : next;
}

export function loginRoutes(deps: ConsoleDeps): RouteDefinition[] {
  const { auth, sessions, config } = deps;
  const supabase =
    config.supabaseUrl !== undefined && config.supabaseAnonKey !== undefined
      ? new SupabaseLogin(config.supabaseUrl, config.supabaseAnonKey.reveal())
      : undefined;
  const page = (status: number, next: string, error?: string, email?: string): GatewayResponse =>
    html(
      status,
      LoginPage({
        tokenLogin: auth.adminTokenEnabled || auth.jwtEnabled,
        passwordLogin: supabase !== undefined,
        next,
        ...(error === undefined ? {} : { error }),
        ...(email === undefined ? {} : { email }),
      }),
    );
  const cookie = (value: string, maxAgeSeconds?: number) =>
    setCookie(SESSION_COOKIE, value, {
      secure: config.cookieSecure,
      ...(maxAgeSeconds === undefined ? {} : { maxAgeSeconds }),
    });

  const login = async (req: GatewayRequest): Promise<GatewayResponse> => {
    checkSameOrigin(req);
    const form = readForm(req);
    const next = safeNext(form.get("next"));
    const email = form.get("email");
    let session: AdminSession;
    try {
      const token = form.raw("token");
      let principal;
      let via: AdminSession["via"];
      if (token !== undefined && token !== "") {
        principal = auth.verifyAdminCredential(token);
        via = principal.via;
      } else if (supabase !== undefined && email !== undefined) {
        const accessToken = await supabase.accessToken(email, form.raw("password") ?? "");
        principal = auth.verifyAdminCredential(accessToken);
        via = "supabase";
      } else {
        throw new SfError(GatewayErrorCodes.LOGIN_FAILED, "enter the admin token, or an email and password");
      }
      session = await sessions.create(principal.actor, via);
    } catch (err) {
      if (err instanceof SfError && REFUSED.has(err.code)) {
        // One message for every refusal: which part was wrong is not the visitor's to learn.
        return page(401, next, "Login failed: the credentials are wrong or not an administrator's.", email);
      }
      throw err;
    }
    return redirect(next, false, { "set-cookie": cookie(session.id) });
  };

  return [
    {
      method: "GET",
      path: "/admin/login",
      operationId: "adminLoginPage",
      summary: "Console login page",
      tags: TAGS,
      responses: { 200: HTML_200, 303: { description: "Already logged in: to the console" } },
      handler: async (req) => {
        const existing = await sessions
          .get(parseCookies(req.headers["cookie"]).get(SESSION_COOKIE))
          .catch(() => undefined);
        const next = safeNext(req.query["next"]);
        if (existing !== undefined) return redirect(next, isHtmx(req));
        return page(200, next);
      },
    },
    {
      method: "POST",
      path: "/admin/login",
      operationId: "adminLogin",
      summary: "Console login (form: token, or email and password); starts a session cookie",
      tags: TAGS,
      responses: {
        303: { description: "Logged in: to `next` with the session cookie" },
        401: { description: "Refused: the login page again, with the error", contentType: "text/html" },
      },
      handler: async (req) => {
        try {
          return await login(req);
        } catch (err) {
          return errorPage(err, req, undefined);
        }
      },
    },
    consoleRoute(deps, {
      method: "POST",
      path: "/admin/logout",
      operationId: "adminLogout",
      summary: "Ends the console session on every gateway",
      handler: async ({ session, htmx }) => {
        await sessions.destroy(session.id);
        return redirect("/admin/login", htmx, { "set-cookie": cookie("", 0) });
      },
    }),
    {
      method: "GET",
      path: "/admin/static/{file}",
      operationId: "adminStatic",
      summary: "The console's stylesheet and scripts (content-hashed URLs, cached for good)",
      tags: TAGS,
      responses: { 200: { description: "A CSS or JavaScript file", contentType: "text/css" } },
      handler: (req) => {
        const asset = adminAssets().get(req.params["file"] ?? "");
        if (asset === undefined) return Promise.reject(new NotFoundError("no such console file"));
        const current = req.query["v"] === asset.hash;
        return Promise.resolve({
          status: 200,
          headers: {
            ...securityHeaders(),
            etag: `"${asset.hash}"`,
            "cache-control": current ? "public, max-age=31536000, immutable" : "no-cache",
          },
          body: { type: "text", value: asset.body, contentType: asset.contentType },
        });
      },
    },
  ];
}
