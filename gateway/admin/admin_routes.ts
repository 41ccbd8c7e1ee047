/**
 * The operator's console at /admin: every route of it, for the gateway's route table. Pages are
 * server-rendered (views/), enhanced by HTMX; see console.ts for sessions and CSRF.
 */
import type { RouteDefinition } from "../http_types.ts";
import { agentPages } from "./agent_pages.ts";
import { clientPages } from "./client_pages.ts";
import { dashboardPages } from "./dashboard_pages.ts";
import { conversationPages } from "./conversation_pages.ts";
import type { ConsoleDeps } from "./console.ts";
import { documentPages } from "./document_pages.ts";
import { keyPages } from "./key_pages.ts";
import { loginRoutes } from "./login_routes.ts";
import { previewPages } from "./preview_pages.ts";

export function adminRoutes(deps: ConsoleDeps): RouteDefinition[] {
  return [
    ...loginRoutes(deps),
    ...dashboardPages(deps),
    ...clientPages(deps),
    ...documentPages(deps),
    ...conversationPages(deps),
    ...agentPages(deps),
    ...keyPages(deps),
    ...previewPages(deps),
  ];
}
