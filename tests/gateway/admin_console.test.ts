/**
 * The console over HTTP against a real gateway process, actor host and NATS: login (token and
 * refusals), the session cookie's attributes, CSRF on every form, cross-site posts refused,
 * clients created and edited with write-only credentials (masked, audited, the credentials event
 * published), logout ending the session, static assets, security headers, and no secret in any
 * served page.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ApiFixture } from "./api_fixture.ts";
import { consoleRequest, csrfOf } from "./console_client.ts";
import type { ConsolePage, ConsoleRequestOptions } from "./console_client.ts";

let f: ApiFixture;
const pages: string[] = [];

function send(method: string, path: string, options: ConsoleRequestOptions = {}): Promise<ConsolePage> {
  return consoleRequest(f.gw.base, method, path, options, (body) => pages.push(body));
}

/** Logs in with the admin token: the cookie header value and the page's CSRF token. */
async function login(): Promise<{ cookie: string; csrf: string }> {
  const res = await send("POST", "/admin/login", { form: { token: f.adminToken, next: "/admin/clients" } });
  expect(res.status).toBe(303);
  const setCookie = res.headers.get("set-cookie") ?? "";
  const cookie = setCookie.split(";")[0] ?? "";
  const page = await send("GET", "/admin/clients", { cookie });
  expect(page.status).toBe(200);
  return { cookie, csrf: csrfOf(page.text) };
}

beforeAll(async () => {
  f = await ApiFixture.start();
});

afterAll(async () => {
  await f?.close();
});

describe("console login and session", () => {
  it("sends a visitor without a session to the login page, which carries the security headers", async () => {
    const home = await send("GET", "/admin/clients");
    expect(home.status).toBe(303);
    expect(home.headers.get("location")).toBe("/admin/login?next=%2Fadmin%2Fclients");
    const page = await send("GET", "/admin/login?next=%2Fadmin%2Fclients");
    expect(page.status).toBe(200);
    expect(page.headers.get("content-type")).toBe("text/html; charset=utf-8");
    const csp = page.headers.get("content-security-policy") ?? "";
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).not.toContain("unsafe-inline");
    expect(page.headers.get("x-content-type-options")).toBe("nosniff");
    expect(page.headers.get("x-frame-options")).toBe("DENY");
    expect(page.text).toContain('name="token"');
    expect(page.text).toMatch(/<link rel="stylesheet" href="\/admin\/static\/admin\.css\?v=[0-9a-f]{16}"/);
  });

  it("refuses a wrong token with one message and no cookie", async () => {
    const res = await send("POST", "/admin/login", { form: { token: "not-the-token-at-all" } });
    expect(res.status).toBe(401);
    expect(res.headers.get("set-cookie")).toBeNull();
    expect(res.text).toContain("Login failed");
    // A JWT without an admin role is refused the same way.
    const user = await send("POST", "/admin/login", {
      form: { token: f.jwt({ role: "authenticated", sub: "u1" }) },
    });
    expect(user.status).toBe(401);
    expect(user.headers.get("set-cookie")).toBeNull();
  });

  it("refuses a login posted from another site", async () => {
    const res = await send("POST", "/admin/login", {
      form: { token: f.adminToken },
      headers: { "sec-fetch-site": "cross-site", origin: "https://evil.example" },
    });
    expect(res.status).toBe(403);
    expect(res.text).toContain("SF_ERR_CSRF_FAILED");
    expect(res.headers.get("set-cookie")).toBeNull();
  });

  it("logs in with the token: an HttpOnly, SameSite=Strict, Secure cookie, and never to another site", async () => {
    const res = await send("POST", "/admin/login", {
      form: { token: f.adminToken, next: "//evil.example/x" },
    });
    expect(res.status).toBe(303);
    expect(res.headers.get("location")).toBe("/admin");
    const cookie = res.headers.get("set-cookie") ?? "";
    expect(cookie).toMatch(
      /^sf_admin_session=[A-Za-z0-9_-]{43}; Path=\/admin; HttpOnly; SameSite=Strict; Secure$/,
    );
  });

  it("logs in with an admin's JWT, audited under its subject", async () => {
    const res = await send("POST", "/admin/login", {
      form: { token: f.jwt({ role: "sf_admin", sub: "ops-7" }) },
    });
    expect(res.status).toBe(303);
    const cookie = (res.headers.get("set-cookie") ?? "").split(";")[0] ?? "";
    const page = await send("GET", "/admin/clients", { cookie });
    expect(page.status).toBe(200);
    expect(page.text).toContain("admin:ops-7");
  });

  it("ends the session at logout: the old cookie opens nothing and posts nothing", async () => {
    const { cookie, csrf } = await login();
    const out = await send("POST", "/admin/logout", { cookie, form: { _csrf: csrf } });
    expect(out.status).toBe(303);
    expect(out.headers.get("location")).toBe("/admin/login");
    expect(out.headers.get("set-cookie")).toContain("Max-Age=0");
    const again = await send("GET", "/admin/clients", { cookie });
    expect(again.status).toBe(303);
    const before = (await f.platform.listClients({ limit: 1000 })).length;
    const post = await send("POST", "/admin/clients", {
      cookie,
      form: { _csrf: csrf, name: "After logout", slug: "after-logout" },
    });
    expect(post.status).toBe(303);
    expect(post.headers.get("location")).toBe("/admin/login");
    expect((await f.platform.listClients({ limit: 1000 })).length).toBe(before);
  });
});

describe("console clients", () => {
  it("refuses a form without the CSRF token, or posted cross-site, and changes nothing", async () => {
    const { cookie, csrf } = await login();
    const before = (await f.platform.listClients({ limit: 1000 })).length;
    const missing = await send("POST", "/admin/clients", {
      cookie,
      form: { name: "No token", slug: "no-token" },
    });
    expect(missing.status).toBe(403);
    expect(missing.text).toContain("SF_ERR_CSRF_FAILED");
    const wrong = await send("POST", "/admin/clients", {
      cookie,
      form: { _csrf: `${csrf.slice(0, -2)}xx`, name: "Bad token", slug: "bad-token" },
    });
    expect(wrong.status).toBe(403);
    const crossSite = await send("POST", "/admin/clients", {
      cookie,
      form: { _csrf: csrf, name: "Cross", slug: "cross-site" },
      headers: { "sec-fetch-site": "cross-site" },
    });
    expect(crossSite.status).toBe(403);
    // HTMX sends the token as a header: accepted like the form field.
    expect((await f.platform.listClients({ limit: 1000 })).length).toBe(before);
  });

  it("creates a client with LiveKit credentials: masked on every page, audited as the admin", async () => {
    const { cookie, csrf } = await login();
    const secret = `lk_secret_${Date.now()}_abcdefghijklmnop`;
    const res = await send("POST", "/admin/clients", {
      cookie,
      form: {
        _csrf: csrf,
        name: "Acme Console",
        slug: "acme-console",
        status: "active",
        cors_origins: "https://www.acme.example\nhttps://shop.acme.example",
        livekit_url: "wss://acme.livekit.example",
        livekit_api_key: "APIacmeKey1234",
        livekit_api_secret: secret,
      },
    });
    expect(res.status).toBe(303);
    const location = res.headers.get("location") ?? "";
    expect(location).toMatch(/^\/admin\/clients\/[0-9a-f-]{36}\?created=1$/);
    const id = location.split("/")[3]?.split("?")[0] ?? "";
    const detail = await send("GET", location, { cookie });
    expect(detail.status).toBe(200);
    expect(detail.text).toContain("Client created.");
    // Credentials are shown masked (the platform's masking), never whole.
    expect(detail.text).toContain("wss:…(26)");
    expect(detail.text).not.toContain("APIacmeKey1234");
    expect(detail.text).toContain("https://shop.acme.example");
    expect(detail.text).not.toContain(secret);
    const edit = await send("GET", `/admin/clients/${id}/edit`, { cookie });
    expect(edit.status).toBe(200);
    expect(edit.text).not.toContain(secret);
    const stored = await f.platform.getClient(id);
    expect(stored.settings.cors_origins).toEqual(["https://www.acme.example", "https://shop.acme.example"]);
    const audit = await f.platform.listAudit({ clientId: id });
    expect(audit.map((a) => a.actor)).toContain("admin:token");
  });

  it("shows the form again with the field's error for bad input, and creates nothing", async () => {
    const { cookie, csrf } = await login();
    const before = (await f.platform.listClients({ limit: 1000 })).length;
    const res = await send("POST", "/admin/clients", {
      cookie,
      form: { _csrf: csrf, name: "Bad Slug", slug: "Not A Slug!" },
    });
    expect(res.status).toBe(422);
    expect(res.text).toContain("Some fields need attention.");
    expect(res.text).toContain('id="slug-error"');
    expect(res.text).toContain('value="Bad Slug"');
    expect((await f.platform.listClients({ limit: 1000 })).length).toBe(before);
  });

  it("replaces credentials only when new ones are typed, and publishes the credentials event", async () => {
    const { cookie, csrf } = await login();
    const created = await send("POST", "/admin/clients", {
      cookie,
      form: {
        _csrf: csrf,
        name: "Rotate Co",
        slug: "rotate-co",
        livekit_url: "wss://rotate.livekit.example",
        livekit_api_key: "APIrotate1",
        livekit_api_secret: "first-secret-value-123456",
      },
    });
    const id = (created.headers.get("location") ?? "").split("/")[3]?.split("?")[0] ?? "";
    const events = f.nc.subscribe(`sf.evt.client.${id}.credentials`, { max: 1 });
    // Saving without typing a secret keeps the stored one and publishes nothing.
    const keep = await send("POST", `/admin/clients/${id}`, {
      cookie,
      form: {
        _csrf: csrf,
        name: "Rotate Co Renamed",
        slug: "rotate-co",
        livekit_url: "wss://rotate.livekit.example",
      },
    });
    expect(keep.status).toBe(303);
    const kept = await f.platform.getLivekitCredentials(id);
    expect(kept?.apiSecret).toBe("first-secret-value-123456");
    const rotate = await send("POST", `/admin/clients/${id}`, {
      cookie,
      form: {
        _csrf: csrf,
        name: "Rotate Co Renamed",
        slug: "rotate-co",
        livekit_url: "wss://rotate.livekit.example",
        livekit_api_key: "APIrotate2",
        livekit_api_secret: "second-secret-value-654321",
      },
    });
    expect(rotate.status).toBe(303);
    for await (const m of events) expect(m.subject).toBe(`sf.evt.client.${id}.credentials`);
    const rotated = await f.platform.getLivekitCredentials(id);
    expect(rotated?.apiKey).toBe("APIrotate2");
    expect((await f.platform.getClient(id)).name).toBe("Rotate Co Renamed");
  });

  it("sets the client's embedding settings, keeps them on an unchanged save, and removes them", async () => {
    const { cookie, csrf } = await login();
    const created = await send("POST", "/admin/clients", {
      cookie,
      form: {
        _csrf: csrf,
        name: "Embed Co",
        slug: "embed-co",
        emb_provider: "siliconflow",
        emb_document_model: "Qwen/Qwen3-Embedding-0.6B",
        emb_dimension: "1024",
      },
    });
    expect(created.status).toBe(303);
    const id = (created.headers.get("location") ?? "").split("/")[3]?.split("?")[0] ?? "";
    expect((await f.platform.getClient(id)).settings.embedding).toMatchObject({
      provider: "siliconflow",
      document_model: "Qwen/Qwen3-Embedding-0.6B",
      dimension: 1024,
    });
    const edit = await send("GET", `/admin/clients/${id}/edit`, { cookie });
    expect(edit.text).toMatch(/<option value="siliconflow" selected/);
    // The edit form shows what is stored: saving it as it is changes nothing.
    const form = Object.fromEntries(
      [...edit.text.matchAll(/<input[^>]*name="([^"]+)"[^>]*value="([^"]*)"/g)].map((m) => [m[1], m[2]]),
    ) as Record<string, string>;
    const same = await send("POST", `/admin/clients/${id}`, {
      cookie,
      form: { ...form, _csrf: csrf, emb_provider: "siliconflow", status: "active" },
    });
    expect(same.status).toBe(303);
    expect((await f.platform.getClient(id)).settings.embedding).toMatchObject({
      provider: "siliconflow",
      dimension: 1024,
    });
    const bad = await send("POST", `/admin/clients/${id}`, {
      cookie,
      form: { ...form, _csrf: csrf, emb_provider: "siliconflow", emb_dimension: "-3" },
    });
    expect(bad.status).toBe(422);
    expect((await f.platform.getClient(id)).settings.embedding).toMatchObject({ dimension: 1024 });
    const none = await send("POST", `/admin/clients/${id}`, {
      cookie,
      form: { ...form, _csrf: csrf, emb_provider: "" },
    });
    expect(none.status).toBe(303);
    expect((await f.platform.getClient(id)).settings.embedding ?? null).toBeNull();
  });

  it("searches clients, and answers HTMX with the rows only", async () => {
    const { cookie } = await login();
    const full = await send("GET", "/admin/clients?q=acme-con", { cookie });
    expect(full.text).toContain("Acme Console");
    expect(full.text).not.toContain("Rotate Co");
    const rows = await send("GET", "/admin/clients?q=rotate", {
      cookie,
      headers: { "hx-request": "true", "hx-target": "client-rows" },
    });
    expect(rows.status).toBe(200);
    expect(rows.text.startsWith('<div id="client-rows"')).toBe(true);
    expect(rows.text).toContain("Rotate Co Renamed");
    const none = await send("GET", "/admin/clients?q=zzzz-nothing", { cookie });
    expect(none.text).toContain("No client matches");
  });

  it("deletes a client only when its slug is typed", async () => {
    const { cookie, csrf } = await login();
    const created = await send("POST", "/admin/clients", {
      cookie,
      form: { _csrf: csrf, name: "Doomed", slug: "doomed-co" },
    });
    const id = (created.headers.get("location") ?? "").split("/")[3]?.split("?")[0] ?? "";
    const wrong = await send("POST", `/admin/clients/${id}/delete`, {
      cookie,
      form: { _csrf: csrf, confirm_slug: "doomed" },
    });
    expect(wrong.status).toBe(422);
    await expect(f.platform.getClient(id)).resolves.toMatchObject({ id });
    const right = await send("POST", `/admin/clients/${id}/delete`, {
      cookie,
      form: { _csrf: csrf, confirm_slug: "doomed-co" },
    });
    expect(right.status).toBe(303);
    await expect(f.platform.getClient(id)).rejects.toThrow();
  });
});

describe("console assets", () => {
  it("serves the built stylesheet and HTMX with content-hashed, immutable URLs", async () => {
    const page = await send("GET", "/admin/login");
    const css = /href="(\/admin\/static\/admin\.css\?v=[0-9a-f]+)"/.exec(page.text)?.[1] ?? "";
    const res = await send("GET", css);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/css; charset=utf-8");
    expect(res.headers.get("cache-control")).toContain("immutable");
    // Compiled by Tailwind from the templates: a class the layout uses is in it.
    expect(res.text).toContain(".btn-primary");
    const htmx = /src="(\/admin\/static\/htmx\.min\.js\?v=[0-9a-f]+)"/.exec(page.text)?.[1] ?? "";
    const js = await send("GET", htmx);
    expect(js.status).toBe(200);
    expect(js.text).toContain("htmx");
    const missing = await send("GET", "/admin/static/nope.js");
    expect(missing.status).toBe(404);
    // Even an error envelope is never sniffed into another type.
    expect(missing.headers.get("x-content-type-options")).toBe("nosniff");
    const unknown = await send("GET", "/admin/no/such/page");
    expect(unknown.status).toBe(404);
    expect(unknown.headers.get("x-content-type-options")).toBe("nosniff");
  });

  it("never served a secret in any page", () => {
    const secrets = [...f.secrets(), "first-secret-value-123456", "second-secret-value-654321"];
    for (const page of pages) for (const s of secrets) expect(page).not.toContain(s);
  });
});
