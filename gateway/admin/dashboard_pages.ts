/**
 * The console's home: the dashboard at `/admin`, and its live part at `/admin/dashboard/live`
 * that HTMX fetches every 5 s. Both read the platform anew (dashboard_data.ts); a part that
 * cannot be read shows its error in place, so the live part never fails whole and its polling
 * goes on.
 */
import type { RouteDefinition } from "../http_types.ts";
import { consoleRoute } from "./console.ts";
import type { ConsoleDeps } from "./console.ts";
import { readDashboard } from "./dashboard_data.ts";
import { html } from "./html.ts";
import { DASHBOARD_LIVE_PATH, DashboardLive, DashboardPage } from "./views/dashboard.tsx";

export function dashboardPages(deps: ConsoleDeps): RouteDefinition[] {
  const dashboardDeps = { health: deps.health, actors: deps.actors };
  return [
    consoleRoute(deps, {
      method: "GET",
      path: "/admin",
      operationId: "adminHome",
      summary: "The dashboard: tenants, actor hosts, workers, dispatch and provider errors",
      handler: async ({ req, viewer }) =>
        html(200, DashboardPage({ viewer, data: await readDashboard(dashboardDeps, req) })),
    }),
    consoleRoute(deps, {
      method: "GET",
      path: DASHBOARD_LIVE_PATH,
      operationId: "adminDashboardLive",
      summary: "The dashboard's live part (an HTML fragment, polled by the page)",
      handler: async ({ req }) =>
        html(200, DashboardLive({ data: await readDashboard(dashboardDeps, req) }), { fragment: true }),
    }),
  ];
}
