/**
 * The operator's console in a real browser: Debian's Chromium driven by playwright-core against a
 * real gateway, actor host, agent worker and NATS (the provider fixture stands in for the LLM and
 * embedding providers). The operator's whole path through the pages, by their visible labels and
 * roles: log in with the admin token, create a tenant, set its provider keys, add an agent, issue
 * an API key (read from its one-time display) and use it against POST /api/v1/trigger-agent,
 * upload a document and watch it reach `ready`, chat in the preview and watch the reply stream in,
 * read the conversation, look at the dashboard, revoke the key and see it refused. Also: the
 * session cookie's attributes, a form without its CSRF token refused, and logout ending the
 * session for the old cookie. Every HTML page, HTMX fragment, event stream and JSON answer the
 * browser received is scanned for secrets at the end, and each page is saved at desktop and phone
 * width under .sidekick/test-output/screenshots/admin_browser/.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { BrowserContext, Cookie, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { provisionTenantDatabase } from "../../actors/index.ts";
import { BrowserHarness, secretsIn } from "../helpers/browser.ts";
import { waitFor } from "../helpers/deadline.ts";
import { spawnWorker } from "../helpers/stack.ts";
import type { TestProcess } from "../helpers/processes.ts";
import { corpusFile, generateCorpus } from "../fixtures/documents/corpus.ts";
import type { CorpusFile } from "../fixtures/documents/corpus.ts";
import { defaultChatReply, startProviderFixture } from "../fixtures/providers/provider_fixture.ts";
import type { ProviderFixture } from "../fixtures/providers/provider_fixture.ts";
import { ApiFixture, PARTITIONS } from "./api_fixture.ts";

const SUITE = "admin_browser";
const CLIENT = { name: "Browser Bakery", slug: "browser-bakery" } as const;
const AGENT = { name: "Bakery Helper", slug: "bakery-helper" } as const;
const KEY_LABEL = "Storefront";
/** The tenant's embeddings (the console's client form has no field for them yet). */
const EMBEDDING = { provider: "siliconflow", document_model: "Qwen/Qwen3-Embedding-0.6B", dimension: 1024 };

let f: ApiFixture;
let providers: ProviderFixture;
let worker: TestProcess;
let browser: BrowserHarness;
let context: BrowserContext;
let page: Page;
let doc: CorpusFile;
const dirs: string[] = [];
/** The tenant created through the form. */
let clientId = "";
/** The API key read from its one-time display. */
let apiKey = "";
/** The reply the preview streamed. */
let previewReply = "";
/** Session cookies seen in this run: their values are secrets too. */
const sessionIds = new Set<string>();

beforeAll(async () => {
  f = await ApiFixture.start();
  // Deltas 20 ms apart, so the preview's reply visibly arrives in pieces.
  providers = await startProviderFixture({ tokenDelayMs: 20 });
  worker = await spawnWorker({
    natsUrl: f.server.url,
    partitions: PARTITIONS,
    workerId: "browser-w1",
    endpoints: providers.endpoints(),
  });
  doc = corpusFile(await generateCorpus(), "quokka-bakery-sourdough.md");
  browser = await BrowserHarness.launch({ suite: SUITE, baseURL: f.gw.base });
  context = await browser.newContext();
  page = await browser.newPage(context);
}, 90_000);

afterAll(async () => {
  await browser?.close();
  await worker?.stop();
  await providers?.close();
  await f?.close();
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

async function sessionCookie(ctx: BrowserContext): Promise<Cookie | undefined> {
  const cookie = (await ctx.cookies()).find((c) => c.name === "sf_admin_session");
  if (cookie !== undefined) sessionIds.add(cookie.value);
  return cookie;
}

/** Logs `p` in through the login form with the admin token; ends on the clients page. */
async function logIn(p: Page): Promise<void> {
  await browser.visit(p, "/admin/clients");
  expect(new URL(p.url()).pathname).toBe("/admin/login");
  await p.getByLabel("Admin token").fill(f.adminToken);
  await browser.follow(
    p,
    () => p.getByRole("button", { name: "Log in with token" }).click(),
    "/admin/clients",
  );
}

async function clientCount(): Promise<number> {
  return (await f.platform.listClients({ limit: 1000 })).length;
}

/** From anywhere in the console to one of the client's sections, through the client's page. */
async function openSection(name: string | RegExp, path: string): Promise<void> {
  await browser.visit(page, `/admin/clients/${clientId}`);
  const sections = page.getByRole("navigation", { name: "Client sections" });
  await browser.follow(
    page,
    () => sections.getByRole("link", { name }).click(),
    `/admin/clients/${clientId}/${path}`,
  );
}

/** POST /api/v1/trigger-agent (text) with an API key, from outside the browser as a site would. */
function trigger(key: string, message: string) {
  return f.call<{
    success?: boolean;
    data?: { response?: string; conversation_id?: string };
    agent_info?: { slug?: string; client_id?: string };
    error?: { code?: string };
  }>("POST", "/api/v1/trigger-agent", {
    auth: `Bearer ${key}`,
    body: { agent_slug: AGENT.slug, mode: "text", user_id: "shop-visitor-1", message },
  });
}

describe("console in Chromium - login and tenants", () => {
  it("login - a wrong token is refused on the page; the admin token opens the console", async () => {
    await browser.visit(page, "/admin/clients");
    expect(new URL(page.url()).pathname).toBe("/admin/login");
    expect(new URL(page.url()).searchParams.get("next")).toBe("/admin/clients");
    expect(await page.getByRole("heading", { name: "Log in to the console" }).count()).toBe(1);
    await browser.shoot(page, "01-login");

    await page.getByLabel("Admin token").fill("adm_not-the-token-at-all");
    const answer = page.waitForResponse(
      (r) => r.url().endsWith("/admin/login") && r.request().method() === "POST",
    );
    await browser.follow(
      page,
      () => page.getByRole("button", { name: "Log in with token" }).click(),
      "/admin/login",
    );
    expect((await answer).status()).toBe(401);
    expect(await page.getByRole("alert").textContent()).toContain("Login failed");
    expect(await sessionCookie(context)).toBeUndefined();
    await browser.shoot(page, "02-login-refused");

    await logIn(page);
    expect(await page.getByRole("heading", { name: "Clients", level: 1 }).count()).toBe(1);
    expect(await page.getByText("No clients yet").count()).toBe(1);
    await browser.shoot(page, "03-clients-empty");
  });

  it("session - the cookie is HttpOnly, SameSite=Strict, Secure and scoped to /admin", async () => {
    const cookie = await sessionCookie(context);
    expect(cookie).toMatchObject({
      httpOnly: true,
      sameSite: "Strict",
      secure: true,
      path: "/admin",
      domain: "127.0.0.1",
    });
    expect(cookie?.value).toMatch(/^[A-Za-z0-9_-]{43}$/);
    // HttpOnly: the page's own script cannot read it.
    expect(await page.evaluate("document.cookie")).toBe("");
  });

  it("clients - a tenant created through the form, shown on its page and in the list", async () => {
    await browser.follow(
      page,
      () => page.getByRole("link", { name: "New client" }).click(),
      "/admin/clients/new",
    );
    await page.getByLabel("Name").fill(CLIENT.name);
    await page.getByLabel("Slug").fill(CLIENT.slug);
    await browser.shoot(page, "04-client-new");
    await browser.follow(
      page,
      () => page.getByRole("button", { name: "Create client" }).click(),
      /^\/admin\/clients\/[0-9a-f-]{36}\?created=1$/,
    );
    clientId = new URL(page.url()).pathname.split("/")[3] ?? "";
    expect(await page.getByRole("status").textContent()).toContain("Client created.");
    expect(await page.getByRole("heading", { name: CLIENT.name, level: 1 }).count()).toBe(1);
    await browser.shoot(page, "05-client-detail");
    const stored = await f.platform.getClient(clientId);
    expect(stored).toMatchObject({ slug: CLIENT.slug, name: CLIENT.name, status: "active" });
    const audit = await f.platform.listAudit({ clientId });
    expect(audit.map((a) => a.actor)).toContain("admin:token");

    const nav = page.getByRole("navigation", { name: "Main" });
    await browser.follow(page, () => nav.getByRole("link", { name: "Clients" }).click(), "/admin/clients");
    expect(await page.getByRole("link", { name: CLIENT.name }).count()).toBe(1);
    await browser.shoot(page, "06-clients");
  });
});

describe("console in Chromium - the operator's flow", () => {
  it("provider keys - the tenant's groq and siliconflow keys saved through the write-only forms", async () => {
    // Not through the console: its client form offers no PGlite data dir and no embedding
    // settings, so the tenant's database (PGlite with pgvector, provisioned here) and its
    // embedding settings are set through the v2 API with the admin token, as the CLI would.
    const dataDir = await mkdtemp(join(tmpdir(), "sf-browser-"));
    dirs.push(dataDir);
    await provisionTenantDatabase({
      tenantId: clientId,
      database: { kind: "pglite", dataDir },
      vector: "required",
    });
    const patched = await f.call("PATCH", `/api/v2/clients/${clientId}`, {
      auth: f.admin,
      body: { tenant_database: { kind: "pglite", data_dir: dataDir }, settings: { embedding: EMBEDDING } },
    });
    expect(patched.status).toBe(200);

    await openSection("Provider keys", "provider-keys");
    for (const provider of ["groq", "siliconflow"] as const) {
      const input = page.getByLabel(`Key for ${provider}`);
      await input.fill(providers.keys[provider]);
      const form = page.locator("form").filter({ has: input });
      await browser.follow(
        page,
        () => form.getByRole("button", { name: "Save key" }).click(),
        `/admin/clients/${clientId}/provider-keys?saved=${provider}`,
      );
      // The row now says the key is set, and offers to replace it (never shows it).
      expect(await page.getByLabel(`New key for ${provider}`).count()).toBe(1);
    }
    await browser.shoot(page, "10-provider-keys");
  });

  it("agents - an agent added through the form, with the groq LLM and retrieval on", async () => {
    await openSection("Agents", "agents");
    expect(await page.getByText("No agents yet").count()).toBe(1);
    await browser.shoot(page, "11-agents-empty");
    await browser.follow(
      page,
      () => page.getByRole("link", { name: "New agent" }).click(),
      `/admin/clients/${clientId}/agents/new`,
    );
    await page.getByLabel("Name", { exact: true }).fill(AGENT.name);
    await page.getByLabel("Slug").fill(AGENT.slug);
    await page.getByLabel("System prompt").fill("You are the Browser Bakery's helper.");
    await page.getByLabel("Enabled").check();
    await page.getByLabel("Text chat").check();
    await page.getByLabel("LLM provider").selectOption("groq");
    await page.getByLabel("LLM model").fill("llama-3.3-70b-versatile");
    await page.getByLabel("Retrieval on").check();
    await page.getByLabel("Minimum similarity").fill("0.2");
    await browser.shoot(page, "12-agent-new");
    await browser.follow(
      page,
      () => page.getByRole("button", { name: "Create agent" }).click(),
      `/admin/clients/${clientId}/agents?created=1`,
    );
    const row = page.getByRole("row").filter({ has: page.getByRole("link", { name: AGENT.name }) });
    expect(await row.count()).toBe(1);
    expect(await row.textContent()).toContain(AGENT.slug);
    await browser.shoot(page, "13-agents");
  });

  it("api keys - a key issued, read from its one-time display, triggers the agent on /api/v1/trigger-agent", async () => {
    await openSection(/^API keys/, "api-keys");
    expect(await page.getByText("No API keys yet").count()).toBe(1);
    await page.getByLabel("Label").fill(KEY_LABEL);
    await browser.shoot(page, "14-api-keys-empty");
    const answer = page.waitForResponse(
      (r) =>
        new URL(r.url()).pathname === `/admin/clients/${clientId}/api-keys` &&
        r.request().method() === "POST",
    );
    await browser.follow(
      page,
      () => page.getByRole("button", { name: "Issue key" }).click(),
      `/admin/clients/${clientId}/api-keys`,
    );
    const issued = await answer;
    expect(issued.status()).toBe(200);
    expect(issued.headers()["cache-control"]).toBe("no-store");
    expect(await page.getByRole("heading", { name: "New API key" }).count()).toBe(1);
    apiKey = ((await page.getByLabel(`The key “${KEY_LABEL}”`).textContent()) ?? "").trim();
    expect(apiKey).toMatch(/^sk_[A-Za-z0-9_-]{20,}$/);
    await browser.shoot(page, "15-api-key-issued");
    await browser.follow(
      page,
      () => page.getByRole("link", { name: "Done: back to the API keys" }).click(),
      `/admin/clients/${clientId}/api-keys`,
    );
    const row = page.getByRole("row").filter({ hasText: KEY_LABEL });
    expect(await row.textContent()).toContain("active");
    // Shown once: the list has the prefix only.
    expect(await page.content()).not.toContain(apiKey);

    const res = await trigger(apiKey, "Hello from the shop's chat widget");
    expect(res.status).toBe(200);
    expect(res.body.success).toBe(true);
    expect(res.body.agent_info).toMatchObject({ slug: AGENT.slug, client_id: clientId });
    const turn = providers.chatTurns.at(-1);
    expect(turn?.messages[0]?.role).toBe("system");
    expect(turn?.messages[0]?.content).toContain("Browser Bakery's helper");
    expect(res.body.data?.response).toBe(defaultChatReply(turn!));
  });

  it("knowledge base - a document uploaded through the form reaches ready", async () => {
    await openSection("Knowledge base", "documents");
    await page.getByLabel("File").setInputFiles({
      name: doc.fileName,
      mimeType: doc.contentType,
      buffer: Buffer.from(doc.data),
    });
    await page.getByLabel("Title").fill(doc.title);
    await page.getByRole("checkbox", { name: new RegExp(AGENT.name) }).check();
    await browser.shoot(page, "16-documents-upload");
    await browser.follow(
      page,
      () => page.getByRole("button", { name: "Upload" }).click(),
      `/admin/clients/${clientId}/documents?uploaded=1`,
    );
    const row = page.getByRole("row").filter({ has: page.getByRole("link", { name: doc.title }) });
    expect(await row.count()).toBe(1);
    // The row polls its status (HTMX) until ingestion ends; no reload here.
    await waitFor(
      "the document's row to say ready",
      async () => ((await row.textContent()) ?? "").includes("ready") || undefined,
      { timeoutMs: 45_000, intervalMs: 200 },
    );
    expect(await row.textContent()).toContain(AGENT.slug);
    await browser.shoot(page, "17-documents-ready");
    await browser.follow(
      page,
      () => row.getByRole("link", { name: doc.title }).click(),
      /\/documents\/[0-9a-f-]{36}$/,
    );
    await browser.shoot(page, "18-document");
  });

  it("preview - a message sent in the preview; the reply streams into the page and uses the document", async () => {
    await browser.visit(page, `/admin/clients/${clientId}/agents/${AGENT.slug}/preview`);
    await browser.shoot(page, "19-preview-empty");
    expect(await page.getByRole("heading", { name: `Preview: ${AGENT.name}` }).count()).toBe(1);
    // Every text the reply shows as it grows, recorded by the page itself.
    await page.evaluate(`(() => {
      const log = document.getElementById("preview-transcript");
      const seen = [];
      globalThis.__replyTexts = seen;
      new MutationObserver(() => {
        const all = log.querySelectorAll('[data-role="assistant"] [data-message-text]');
        const text = all.length === 0 ? "" : all[all.length - 1].textContent;
        if (text !== "" && seen[seen.length - 1] !== text) seen.push(text);
      }).observe(log, { childList: true, subtree: true, characterData: true });
    })()`);
    await page.getByLabel("Message").fill(doc.question);
    await page.getByRole("button", { name: "Send" }).click();
    const chat = page.locator("#preview-chat");
    await waitFor(
      "the preview's reply to finish",
      async () => {
        const state = await chat.getAttribute("data-state");
        if (state === "error")
          throw new Error(`preview failed: ${await page.getByRole("alert").first().textContent()}`);
        return state === "done" || undefined;
      },
      { timeoutMs: 30_000, intervalMs: 50 },
    );
    const log = page.getByRole("log", { name: "Conversation" });
    const reply = log.locator('[data-role="assistant"] [data-message-text]');
    const final = ((await reply.textContent()) ?? "").trim();
    previewReply = final;
    const turn = providers.chatTurns.at(-1);
    expect(final).toBe(defaultChatReply(turn!));
    const seen = await page.evaluate<string[]>("globalThis.__replyTexts");
    // Streamed: the reply grew in several steps, each a start of the final text.
    expect(seen.length).toBeGreaterThanOrEqual(3);
    for (const text of seen) expect(final.startsWith(text.trim())).toBe(true);
    expect(seen.at(-1)?.trim()).toBe(final);
    // What the browser received: the deltas, then the done event with the whole text.
    const stream = await waitFor("the preview's recorded event stream", async () =>
      (await browser.responses()).find(
        (r) => r.contentType === "text/event-stream" && r.url.endsWith("/preview/text"),
      ),
    );
    const events = stream.body
      .split("\n")
      .filter((line) => line.startsWith("data: "))
      .map(
        (line) =>
          JSON.parse(line.slice("data: ".length)) as { delta?: string; done?: boolean; full_text?: string },
      );
    expect(events.filter((e) => typeof e.delta === "string").length).toBeGreaterThanOrEqual(3);
    expect(events.at(-1)).toMatchObject({ done: true, full_text: final });
    // The uploaded document reached the LLM through retrieval.
    expect(JSON.stringify(turn?.messages)).toContain(doc.answer);
    expect(await log.locator('[data-role="user"]').textContent()).toContain(doc.question);
    await browser.shoot(page, "20-preview");
  });

  it("conversations - the preview's conversation listed, its transcript readable", async () => {
    await openSection("Conversations", "conversations");
    const rows = page.getByRole("row").filter({ has: page.getByRole("link", { name: "Transcript" }) });
    // The API trigger and the preview: two conversations of the agent.
    expect(await rows.count()).toBe(2);
    await browser.shoot(page, "21-conversations");
    const preview = rows.filter({ hasText: "admin:token" });
    await browser.follow(
      page,
      () => preview.getByRole("link", { name: "Transcript" }).click(),
      /\/conversations\/[0-9a-f-]{36}$/,
    );
    const transcript = page.getByRole("list", { name: "Transcript" });
    expect(await transcript.textContent()).toContain(doc.question);
    // The user's turn and the agent's reply, in order (the page names each message's role).
    expect(await transcript.locator(":scope > li [data-role]").allTextContents()).toEqual([
      "user",
      "assistant",
    ]);
    expect(await transcript.textContent()).toContain(previewReply);
    await browser.shoot(page, "22-conversation");
  });

  it("dashboard - the live platform view shows this stack's actor host and worker", async () => {
    const nav = page.getByRole("navigation", { name: "Main" });
    await browser.follow(page, () => nav.getByRole("link", { name: "Dashboard" }).click(), "/admin");
    expect(await page.getByRole("heading", { name: "Dashboard", level: 1 }).count()).toBe(1);
    await waitFor(
      "the worker on the dashboard",
      async () => ((await page.textContent("main")) ?? "").includes("browser-w1") || undefined,
    );
    expect(await page.textContent("main")).toContain("api-h1");
    await browser.shoot(page, "23-dashboard");
  });

  it("api keys - the key revoked after the confirmation; trigger-agent refuses it from then on", async () => {
    await openSection(/^API keys/, "api-keys");
    await browser.follow(
      page,
      () => page.getByRole("link", { name: `Revoke ${KEY_LABEL}` }).click(),
      /\/api-keys\/[0-9a-f-]{36}\/revoke$/,
    );
    await browser.shoot(page, "24-api-key-revoke");
    await browser.follow(
      page,
      () => page.getByRole("button", { name: "Revoke key" }).click(),
      `/admin/clients/${clientId}/api-keys?revoked=1`,
    );
    const row = page.getByRole("row").filter({ hasText: KEY_LABEL });
    expect(await row.textContent()).toContain("revoked");
    expect(await page.getByRole("link", { name: `Revoke ${KEY_LABEL}` }).count()).toBe(0);
    await browser.shoot(page, "25-api-keys-revoked");
    const refused = await trigger(apiKey, "Still there?");
    expect(refused.status).toBe(401);
  });
});

describe("console in Chromium - CSRF and logout", () => {
  it("csrf - a form whose token was removed, or a fetch without it, is refused with 403 and changes nothing", async () => {
    const before = await clientCount();
    await browser.visit(page, "/admin/clients/new");
    await page.getByLabel("Name").fill("No Token Co");
    await page.getByLabel("Slug").fill("no-token-co");
    // What a forged form looks like: the hidden field gone.
    const field = page.locator('form[action="/admin/clients"] input[name="_csrf"]');
    expect(await field.count()).toBe(1);
    await field.evaluate((el: { remove(): void }) => el.remove());
    const answer = page.waitForResponse(
      (r) => new URL(r.url()).pathname === "/admin/clients" && r.request().method() === "POST",
    );
    await browser.follow(
      page,
      () => page.getByRole("button", { name: "Create client" }).click(),
      "/admin/clients",
    );
    expect((await answer).status()).toBe(403);
    expect(await page.textContent("body")).toContain("SF_ERR_CSRF_FAILED");
    await browser.shoot(page, "80-csrf-refused");
    expect(await clientCount()).toBe(before);

    // A script on the page posting the same form without the header or field.
    await browser.visit(page, "/admin/clients");
    const post = (withToken: boolean): Promise<number> =>
      page.evaluate(
        async ([withToken]) => {
          const g = globalThis as unknown as {
            document: { querySelector(s: string): { getAttribute(n: string): string | null } | null };
          };
          const headers: Record<string, string> = { "content-type": "application/x-www-form-urlencoded" };
          const hx = g.document.querySelector("body")?.getAttribute("hx-headers") ?? "{}";
          if (withToken) Object.assign(headers, JSON.parse(hx) as Record<string, string>);
          const res = await fetch("/admin/clients", {
            method: "POST",
            headers,
            body: "name=Script+Co&slug=script-co",
            redirect: "manual",
          });
          await res.text(); // read to the end, so the browser (and the secret scan) has the body
          return res.status;
        },
        [withToken] as const,
      );
    expect(await post(false)).toBe(403);
    expect(await clientCount()).toBe(before);
    // The same request with the session's token (as HTMX sends it) goes through: the token was
    // what the refusal was about. A manual redirect reads as status 0 in the browser.
    expect(await post(true)).toBe(0);
    expect(await clientCount()).toBe(before + 1);
  });

  it("logout - ends the session: the old cookie, put in a fresh browser context, opens and posts nothing", async () => {
    const old = await sessionCookie(context);
    expect(old).toBeDefined();
    await browser.visit(page, "/admin/clients");
    await browser.follow(page, () => page.getByRole("button", { name: "Log out" }).click(), "/admin/login");
    expect(await sessionCookie(context)).toBeUndefined();
    await browser.shoot(page, "90-logged-out");

    const replay = await browser.newContext();
    try {
      await replay.addCookies([old!]);
      const p = await browser.newPage(replay);
      await browser.visit(p, `/admin/clients/${clientId}`);
      expect(new URL(p.url()).pathname).toBe("/admin/login");
      expect(await p.getByRole("heading", { name: "Log in to the console" }).count()).toBe(1);
      // A post with the old cookie (the fresh context has no token to offer) lands on login too.
      const before = await clientCount();
      const status = await p.evaluate(async () => {
        const res = await fetch("/admin/clients", {
          method: "POST",
          headers: { "content-type": "application/x-www-form-urlencoded" },
          body: "name=Ghost+Co&slug=ghost-co",
          redirect: "manual",
        });
        await res.text();
        return res.status;
      });
      expect(status).toBe(0); // the 303 to the login page
      expect(await clientCount()).toBe(before);
    } finally {
      await replay.close();
    }
  });
});

describe("console in Chromium - secrets", () => {
  it("never served a secret in any page, fragment, stream or JSON answer the browser received", async () => {
    const responses = await browser.responses();
    expect(await browser.unread()).toEqual([]);
    // The scan saw the pages of every step above, the HTMX polls and the preview's stream.
    expect(responses.filter((r) => r.contentType.startsWith("text/html")).length).toBeGreaterThan(20);
    expect(responses.some((r) => r.contentType.startsWith("text/event-stream"))).toBe(true);
    const secrets: Record<string, string> = {
      adminToken: f.adminToken,
      jwtSecret: f.jwtSecret,
      databaseUrl: f.databaseUrl,
      databasePassword: `:${new URL(f.databaseUrl).password}@`,
    };
    for (const [provider, key] of Object.entries(providers.keys)) secrets[`providerKey.${provider}`] = key;
    for (const [i, id] of [...sessionIds].entries()) secrets[`sessionCookie.${i}`] = id;
    expect(sessionIds.size).toBeGreaterThan(0);
    expect(secretsIn(responses, secrets)).toEqual([]);
    const apiBodies = f.bodies.map((body) => ({ url: "node", method: "", status: 0, contentType: "", body }));
    expect(secretsIn(apiBodies, { ...secrets, apiKey })).toEqual([]);
    // The API key: in the one answer that issued it, and nowhere else.
    expect(apiKey).not.toBe("");
    expect(secretsIn(responses, { apiKey })).toEqual([
      { url: `${f.gw.base}/admin/clients/${clientId}/api-keys`, secret: "apiKey" },
    ]);
    expect(browser.shots.length).toBeGreaterThanOrEqual(40);
  });
});
