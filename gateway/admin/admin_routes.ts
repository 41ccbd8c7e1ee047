/**
 * The operator's console at /admin: every route of it, for the gateway's route table. Pages are
 * server-rendered (views/), enhanced by HTMX; see console.ts for sessions and CSRF.
 */
import type { RouteDefinition } from "../http_types.ts";
import { agentPages } from "./agent_pages.ts";
import { clientPages } from "./client_pages.ts";
import { consoleRoute } from "./console.ts";
import type { ConsoleDeps } from "./console.ts";
import { redirect } from "./html.ts";
import { keyPages } from "./key_pages.ts";
import { loginRoutes } from "./login_routes.ts";

export function adminRoutes(deps: ConsoleDeps): RouteDefinition[] {
  return [
    ...loginRoutes(deps),
    consoleRoute(deps, {
      method: "GET",
      path: "/admin",
      operationId: "adminHome",
      summary: "The console's home",
      handler: ({ htmx }) => Promise.resolve(redirect("/admin/clients", htmx)),
    }),
    ...clientPages(deps),
    ...agentPages(deps),
    ...keyPages(deps),
  ];
}
