/**
 * The console's page frame: head (one stylesheet, HTMX and the console's script, all served by
 * the gateway), a skip link, the navigation, and the main area. Every HTMX request carries the
 * session's CSRF token through `hx-headers` on <body>; plain forms carry it in a hidden field.
 */
import type { Child } from "hono/jsx";
import { ASSET_PATHS } from "../assets.ts";

/** HTMX settings: no inline styles or eval (the CSP forbids both), errors swapped like successes. */
const HTMX_CONFIG = JSON.stringify({
  includeIndicatorStyles: false,
  allowEval: false,
  allowScriptTags: false,
  selfRequestsOnly: true,
  historyCacheSize: 0,
  // Settling copies attributes onto swapped-in elements; never `style` (the CSP refuses inline styles).
  attributesToSettle: ["class", "width", "height"],
  responseHandling: [
    { code: "204", swap: false },
    { code: "[23]..", swap: true },
    { code: "[45]..", swap: true, error: true },
  ],
});

export interface Viewer {
  actor: string;
  csrf: string;
}

export type Section = "dashboard" | "clients" | "none";

export interface LayoutProps {
  title: string;
  viewer?: Viewer;
  section?: Section;
  children: Child;
}

const NAV: ReadonlyArray<{ section: Section; href: string; label: string }> = [
  { section: "dashboard", href: "/admin", label: "Dashboard" },
  { section: "clients", href: "/admin/clients", label: "Clients" },
];

export function Layout({ title, viewer, section = "none", children }: LayoutProps) {
  return (
    <html lang="en" class="h-full bg-slate-50">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <meta name="htmx-config" content={HTMX_CONFIG} />
        <title>{`${title} · Sidekick Forge`}</title>
        <link rel="stylesheet" href={ASSET_PATHS.css} />
        <script src={ASSET_PATHS.htmx} defer></script>
        <script src={ASSET_PATHS.js} defer></script>
      </head>
      <body
        class="min-h-full text-slate-900 antialiased"
        {...(viewer === undefined ? {} : { "hx-headers": JSON.stringify({ "X-CSRF-Token": viewer.csrf }) })}
      >
        <a
          href="#main"
          class="sr-only focus:not-sr-only focus:absolute focus:left-2 focus:top-2 focus:z-50 focus:rounded focus:bg-white focus:px-3 focus:py-2 focus:shadow"
        >
          Skip to content
        </a>
        <header class="border-b border-slate-200 bg-white">
          <div class="mx-auto flex max-w-6xl flex-wrap items-center gap-x-6 gap-y-2 px-4 py-3">
            <a href="/admin" class="font-semibold text-indigo-700 focus-visible:outline-2">
              Sidekick Forge
            </a>
            {viewer === undefined ? null : (
              <nav
                aria-label="Main"
                class="order-last flex w-full gap-1 overflow-x-auto sm:order-none sm:w-auto sm:flex-1"
              >
                {NAV.map((item) => (
                  <a
                    href={item.href}
                    class={
                      item.section === section
                        ? "rounded-md bg-indigo-50 px-3 py-1.5 text-sm font-medium text-indigo-700"
                        : "rounded-md px-3 py-1.5 text-sm text-slate-600 hover:bg-slate-100"
                    }
                    {...(item.section === section ? { "aria-current": "page" } : {})}
                  >
                    {item.label}
                  </a>
                ))}
              </nav>
            )}
            {viewer === undefined ? null : (
              <form method="post" action="/admin/logout" class="ml-auto flex items-center gap-3">
                <span class="hidden text-sm text-slate-500 sm:inline">{viewer.actor}</span>
                <input type="hidden" name="_csrf" value={viewer.csrf} />
                <button type="submit" class="btn-secondary">
                  Log out
                </button>
              </form>
            )}
          </div>
        </header>
        <main id="main" class="mx-auto max-w-6xl px-4 py-6">
          {children}
        </main>
      </body>
    </html>
  );
}

/** The CSRF field every console form carries. */
export function CsrfField({ viewer }: { viewer: Viewer }) {
  return <input type="hidden" name="_csrf" value={viewer.csrf} />;
}

/** An error or notice box (role=alert for errors, so screen readers announce it). */
export function Notice({ kind, children }: { kind: "error" | "info" | "success"; children: Child }) {
  const cls =
    kind === "error"
      ? "border-red-200 bg-red-50 text-red-800"
      : kind === "success"
        ? "border-emerald-200 bg-emerald-50 text-emerald-800"
        : "border-slate-200 bg-white text-slate-700";
  return (
    <div class={`rounded-md border px-4 py-3 text-sm ${cls}`} role={kind === "error" ? "alert" : "status"}>
      {children}
    </div>
  );
}

/** Why a client's tenant data cannot be shown, with the way to fix its database settings. */
export function TenantDatabaseProblem({ clientId, problem }: { clientId: string; problem: string }) {
  return (
    <Notice kind="error">
      <p>{problem}</p>
      <p class="mt-2">
        <a href={`/admin/clients/${clientId}/edit`} class="font-medium underline">
          Edit the client's tenant database
        </a>
      </p>
    </Notice>
  );
}

export function EmptyState({ title, children }: { title: string; children?: Child }) {
  return (
    <div class="rounded-lg border border-dashed border-slate-300 bg-white px-6 py-10 text-center">
      <p class="font-medium text-slate-700">{title}</p>
      {children === undefined ? null : <div class="mt-2 text-sm text-slate-500">{children}</div>}
    </div>
  );
}

export function PageHeader({ title, children }: { title: string; children?: Child }) {
  return (
    <div class="mb-6 flex flex-wrap items-center justify-between gap-3">
      <h1 class="text-2xl font-semibold tracking-tight">{title}</h1>
      {children === undefined ? null : <div class="flex flex-wrap gap-2">{children}</div>}
    </div>
  );
}

export interface Crumb {
  label: string;
  /** Absent for the page itself. */
  href?: string;
}

/** "Clients / … / here": where a page sits, each step but the last a link. */
export function Breadcrumb({ trail }: { trail: readonly Crumb[] }) {
  const all: Crumb[] = [{ label: "Clients", href: "/admin/clients" }, ...trail];
  return (
    <nav aria-label="Breadcrumb" class="mb-2 text-sm text-slate-500">
      {all.map((c, i) => (
        <>
          {i === 0 ? null : " / "}
          {c.href === undefined ? (
            <span aria-current="page">{c.label}</span>
          ) : (
            <a href={c.href} class="hover:underline">
              {c.label}
            </a>
          )}
        </>
      ))}
    </nav>
  );
}

/** The trail of a client's page: its slug (linked to the client), then `rest`. */
export function clientCrumbs(client: { id: string; slug: string }, ...rest: Crumb[]): Crumb[] {
  return [{ label: client.slug, href: `/admin/clients/${client.id}` }, ...rest];
}
