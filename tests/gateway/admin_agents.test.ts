/**
 * The console's agent, provider-key and API-key pages over HTTP against a real gateway process,
 * actor host, NATS and a tenant database: agents created, edited and deleted through the forms
 * and read back through the v2 API; refused input re-rendered with the field's error and nothing
 * changed; CSRF-less posts refused; provider keys stored sealed and never shown; an API key
 * issued through the form passes trigger-agent's authentication and is refused once revoked; no
 * secret in any page but the one that shows the new key.
 */
import { randomBytes, randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ClientDetailView } from "../../actors/index.ts";
import { ApiFixture } from "./api_fixture.ts";
import { consoleRequest, csrfOf } from "./console_client.ts";
import type { ConsolePage, ConsoleRequestOptions } from "./console_client.ts";

let f: ApiFixture;
/** Every console page received, except the one answer that shows a new API key. */
const pages: string[] = [];
/** Keys typed into or issued by the console: none may appear in any other page or log line. */
const secrets: string[] = [];

type Form = Record<string, string | string[]>;

/** A console request; its body joins the secret scan unless it is the one that shows a new key. */
function send(
  method: string,
  path: string,
  options: ConsoleRequestOptions & { showsKey?: boolean } = {},
): Promise<ConsolePage> {
  return consoleRequest(f.gw.base, method, path, options, (body) => {
    if (options.showsKey !== true) pages.push(body);
  });
}

async function login(): Promise<{ cookie: string; csrf: string }> {
  const res = await send("POST", "/admin/login", { form: { token: f.adminToken } });
  expect(res.status).toBe(303);
  const cookie = (res.headers.get("set-cookie") ?? "").split(";")[0] ?? "";
  const page = await send("GET", "/admin/clients", { cookie });
  expect(page.status).toBe(200);
  return { cookie, csrf: csrfOf(page.text) };
}

let seq = 0;
/** A client with a migrated tenant database on the shared PostgreSQL. */
async function clientWithDatabase(label: string): Promise<ClientDetailView> {
  seq += 1;
  const created = await f.call<ClientDetailView>("POST", "/api/v2/clients", {
    auth: f.admin,
    body: { slug: `${label}-${f.server.port}-${seq}`, name: `${label} ${seq}` },
  });
  expect(created.status, created.text).toBe(201);
  const db = await f.tenantDatabase(created.body.id, `adm_${label.replace(/-/g, "_")}_${seq}`);
  const res = await f.call<ClientDetailView>("PATCH", `/api/v2/clients/${created.body.id}`, {
    auth: f.admin,
    body: { tenant_database: { kind: "postgres", url: db.url, schema: db.schema } },
  });
  expect(res.status, res.text).toBe(200);
  return res.body;
}

type AgentJson = {
  slug: string;
  name: string;
  description: string | null;
  system_prompt: string | null;
  enabled: boolean;
  show_citations: boolean;
  text_chat_enabled: boolean;
  voice_chat_enabled: boolean;
  rag_results_limit: number;
  voice_settings: Record<string, unknown>;
  tools_config: Record<string, unknown>;
};

async function v2Agent(clientId: string, slug: string) {
  return f.call<AgentJson>("GET", `/api/v2/clients/${clientId}/agents/${slug}`, { auth: f.admin });
}

async function v2Agents(clientId: string): Promise<AgentJson[]> {
  const res = await f.call<{ agents: AgentJson[] }>("GET", `/api/v2/clients/${clientId}/agents`, {
    auth: f.admin,
  });
  expect(res.status, res.text).toBe(200);
  return res.body.agents;
}

const AGENT_FORM: Form = {
  name: "Support Bot",
  slug: "support-bot",
  description: "Answers questions about orders",
  system_prompt: "You are a helpful support agent.\r\nBe brief.",
  enabled: "1",
  text_chat_enabled: "1",
  voice_chat_enabled: "1",
  llm_provider: "groq",
  llm_model: "llama-3.3-70b-versatile",
  stt_provider: "deepgram",
  stt_model: "nova-3",
  tts_provider: "cartesia",
  tts_model: "sonic-3",
  voice_id: "voice-abc-123",
  rag_enabled: "1",
  rag_results_limit: "7",
  rag_match_threshold: "0.45",
  rag_transcript_results: "2",
};

beforeAll(async () => {
  f = await ApiFixture.start();
});

afterAll(async () => {
  await f?.close();
});

describe("console agents", () => {
  it("agents - created, edited and deleted through the forms, read back through the v2 API, audited as the admin", async () => {
    const client = await clientWithDatabase("agents");
    const { cookie, csrf } = await login();
    const base = `/admin/clients/${client.id}/agents`;

    const empty = await send("GET", base, { cookie });
    expect(empty.status).toBe(200);
    expect(empty.text).toContain("No agents yet");

    const form = await send("GET", `${base}/new`, { cookie });
    expect(form.status).toBe(200);
    // The contract's providers and models are offered.
    for (const option of ['<option value="groq"', '<option value="cerebras"', '<option value="deepgram"']) {
      expect(form.text).toContain(option);
    }
    for (const model of ["llama-3.3-70b-versatile", "nova-3", "eleven_turbo_v2_5", "sonic-3"]) {
      expect(form.text).toContain(`value="${model}"`);
    }

    const created = await send("POST", base, { cookie, form: { _csrf: csrf, ...AGENT_FORM } });
    expect(created.status, created.text).toBe(303);
    expect(created.headers.get("location")).toBe(`${base}?created=1`);
    const read = await v2Agent(client.id, "support-bot");
    expect(read.status, read.text).toBe(200);
    expect(read.body).toMatchObject({
      name: "Support Bot",
      description: "Answers questions about orders",
      system_prompt: "You are a helpful support agent.\nBe brief.",
      enabled: true,
      show_citations: false,
      text_chat_enabled: true,
      voice_chat_enabled: true,
      rag_results_limit: 7,
    });
    expect(read.body.voice_settings).toEqual({
      llm_provider: "groq",
      llm_model: "llama-3.3-70b-versatile",
      stt_provider: "deepgram",
      stt_model: "nova-3",
      tts_provider: "cartesia",
      model: "sonic-3",
      voice_id: "voice-abc-123",
    });
    expect(read.body.tools_config).toEqual({
      rag: { enabled: true, match_threshold: 0.45, transcript_results: 2 },
    });

    const list = await send("GET", `${base}?created=1`, { cookie });
    expect(list.text).toContain("Agent created.");
    expect(list.text).toContain("Support Bot");
    expect(list.text).toContain("LLM groq / llama-3.3-70b-versatile · STT deepgram · TTS cartesia");

    // Keys the form does not show survive an edit (JSON columns are merged, not replaced).
    const patched = await f.call("PATCH", `/api/v2/clients/${client.id}/agents/support-bot`, {
      auth: f.admin,
      body: {
        voice_settings: { ...read.body.voice_settings, provider_config: { speed: 1.1 } },
        tools_config: { ...read.body.tools_config, webhook_tools: ["x"] },
      },
    });
    expect(patched.status, patched.text).toBe(200);

    const edit = await send("GET", `${base}/support-bot/edit`, { cookie });
    expect(edit.status).toBe(200);
    expect(edit.text).toContain('value="voice-abc-123"');
    expect(edit.text).toContain('<option value="cartesia" selected=""');
    expect(edit.text).toContain('value="0.45"');

    const saved = await send("POST", `${base}/support-bot`, {
      cookie,
      form: {
        _csrf: csrf,
        ...AGENT_FORM,
        name: "Sales Bot",
        slug: "sales-bot",
        enabled: [],
        text_chat_enabled: [],
        show_citations: "1",
        tts_provider: "elevenlabs",
        tts_model: "eleven_turbo_v2_5",
        voice_id: "el-voice-9",
        rag_enabled: [],
        rag_match_threshold: "",
        rag_context_tokens: "1500",
      },
    });
    expect(saved.status, saved.text).toBe(303);
    expect(saved.headers.get("location")).toBe(`${base}/sales-bot/edit?saved=1`);
    expect((await v2Agent(client.id, "support-bot")).status).toBe(404);
    const after = await v2Agent(client.id, "sales-bot");
    expect(after.body).toMatchObject({
      name: "Sales Bot",
      enabled: false,
      text_chat_enabled: false,
      voice_chat_enabled: true,
      show_citations: true,
    });
    expect(after.body.voice_settings).toEqual({
      llm_provider: "groq",
      llm_model: "llama-3.3-70b-versatile",
      stt_provider: "deepgram",
      stt_model: "nova-3",
      tts_provider: "elevenlabs",
      model: "eleven_turbo_v2_5",
      voice_id: "el-voice-9",
      provider_config: { speed: 1.1 },
    });
    expect(after.body.tools_config).toEqual({
      webhook_tools: ["x"],
      rag: { enabled: false, transcript_results: 2, context_tokens: 1500 },
    });
    const savedPage = await send("GET", `${base}/sales-bot/edit?saved=1`, { cookie });
    expect(savedPage.text).toContain("Changes saved.");

    // Delete: only with the slug typed.
    const wrong = await send("POST", `${base}/sales-bot/delete`, {
      cookie,
      form: { _csrf: csrf, confirm_slug: "sales" },
    });
    expect(wrong.status).toBe(422);
    expect(wrong.text).toContain('id="confirm_slug-error"');
    expect((await v2Agent(client.id, "sales-bot")).status).toBe(200);
    const deleted = await send("POST", `${base}/sales-bot/delete`, {
      cookie,
      form: { _csrf: csrf, confirm_slug: "sales-bot" },
    });
    expect(deleted.status).toBe(303);
    expect(deleted.headers.get("location")).toBe(`${base}?deleted=1`);
    expect((await v2Agent(client.id, "sales-bot")).status).toBe(404);
    expect(await v2Agents(client.id)).toEqual([]);

    const audit = await f.platform.listAudit({ clientId: client.id });
    const byConsole = audit.filter((a) => a.actor === "admin:token").map((a) => a.action);
    expect(byConsole).toEqual(expect.arrayContaining(["agent.create", "agent.update", "agent.delete"]));
  });

  it("agents - refused input is shown again with the field's error, and nothing changes", async () => {
    const client = await clientWithDatabase("agents-bad");
    const { cookie, csrf } = await login();
    const base = `/admin/clients/${client.id}/agents`;

    const badSlug = await send("POST", base, {
      cookie,
      form: { _csrf: csrf, ...AGENT_FORM, slug: "not a slug!" },
    });
    expect(badSlug.status).toBe(422);
    expect(badSlug.text).toContain("Some fields need attention.");
    expect(badSlug.text).toContain('id="slug-error"');
    expect(badSlug.text).toContain('value="Support Bot"');
    expect(badSlug.text).toContain('value="not a slug!"');

    for (const [field, value] of [
      ["llm_provider", "nope"],
      ["rag_match_threshold", "2"],
      ["rag_transcript_results", "1.5"],
      ["rag_results_limit", "0"],
      ["voice_id", ""],
    ] as const) {
      const res = await send("POST", base, { cookie, form: { _csrf: csrf, ...AGENT_FORM, [field]: value } });
      expect(res.status, field).toBe(422);
      expect(res.text, field).toContain(`id="${field}-error"`);
    }
    // openai names no default model: the form asks for one.
    const noModel = await send("POST", base, {
      cookie,
      form: { _csrf: csrf, ...AGENT_FORM, llm_provider: "openai", llm_model: "" },
    });
    expect(noModel.status).toBe(422);
    expect(noModel.text).toContain('id="llm_model-error"');
    expect(await v2Agents(client.id)).toEqual([]);

    // An edit that is refused leaves the agent as it was.
    expect((await send("POST", base, { cookie, form: { _csrf: csrf, ...AGENT_FORM } })).status).toBe(303);
    const before = (await v2Agent(client.id, "support-bot")).body;
    const badEdit = await send("POST", `${base}/support-bot`, {
      cookie,
      form: { _csrf: csrf, ...AGENT_FORM, name: "Renamed", tts_provider: "elevenlabs", voice_id: "" },
    });
    expect(badEdit.status).toBe(422);
    expect(badEdit.text).toContain('id="voice_id-error"');
    expect(badEdit.text).toContain('value="Renamed"');
    expect((await v2Agent(client.id, "support-bot")).body).toEqual(before);

    // A slug another agent has: 409, said on the slug field.
    const dup = await send("POST", base, { cookie, form: { _csrf: csrf, ...AGENT_FORM, name: "Twin" } });
    expect(dup.status).toBe(409);
    expect(dup.text).toContain('id="slug-error"');
    expect((await v2Agents(client.id)).map((a) => a.name)).toEqual(["Support Bot"]);

    // A client without a tenant database says so instead of failing.
    const bare = await f.call<ClientDetailView>("POST", "/api/v2/clients", {
      auth: f.admin,
      body: { slug: `bare-${f.server.port}`, name: "Bare" },
    });
    const noDb = await send("GET", `/admin/clients/${bare.body.id}/agents`, { cookie });
    expect(noDb.status).toBe(409);
    expect(noDb.text).toContain("no tenant database");
    expect((await send("GET", `/admin/clients/${randomUUID()}/agents`, { cookie })).status).toBe(404);
  });

  it("csrf - a post without the token is refused on every form, and changes nothing", async () => {
    const client = await clientWithDatabase("agents-csrf");
    const { cookie } = await login();
    const base = `/admin/clients/${client.id}`;
    const key = `gsk_${randomBytes(20).toString("hex")}`;
    secrets.push(key);
    for (const [path, form] of [
      [`${base}/agents`, AGENT_FORM],
      [`${base}/provider-keys`, { provider: "groq", api_key: key }],
      [`${base}/api-keys`, { label: "no token", scopes: "agents:trigger" }],
    ] as const) {
      const res = await send("POST", path, { cookie, form });
      expect(res.status, path).toBe(403);
      expect(res.text).toContain("SF_ERR_CSRF_FAILED");
    }
    expect(await v2Agents(client.id)).toEqual([]);
    const pk = await f.call<{ provider_keys: unknown[] }>(
      "GET",
      `/api/v2/clients/${client.id}/provider-keys`,
      {
        auth: f.admin,
      },
    );
    expect(pk.body.provider_keys).toEqual([]);
    expect(await f.platform.listApiKeys(client.id)).toEqual([]);
  });
});

describe("console provider keys", () => {
  it("provider keys - set, replaced and removed through the form: stored sealed, shown only as set", async () => {
    const client = await clientWithDatabase("pkeys");
    const { cookie, csrf } = await login();
    const base = `/admin/clients/${client.id}/provider-keys`;
    const first = `gsk_${randomBytes(24).toString("hex")}`;
    const second = `gsk_${randomBytes(24).toString("hex")}`;
    const other = `oth_${randomBytes(16).toString("hex")}`;
    secrets.push(first, second, other);

    const page = await send("GET", base, { cookie });
    expect(page.status).toBe(200);
    for (const p of [
      "groq",
      "openai",
      "cerebras",
      "deepinfra",
      "deepgram",
      "cartesia",
      "elevenlabs",
      "siliconflow",
    ]) {
      expect(page.text).toContain(`<p class="font-mono text-sm font-medium">${p}</p>`);
    }
    expect(page.text).not.toContain(">set</span>");

    const set = await send("POST", base, { cookie, form: { _csrf: csrf, provider: "groq", api_key: first } });
    expect(set.status, set.text).toBe(303);
    const database = await f.platform.getTenantDatabase(client.id);
    if (database === null) throw new Error("no tenant database");
    const store = await f.openTenant(client.id, database);
    try {
      // What a worker's job context reads: the key, decrypted from the tenant database.
      expect(await store.getProviderKey("groq")).toBe(first);
      const shown = await send("GET", `${base}?saved=groq`, { cookie });
      expect(shown.text).toContain("Key saved.");
      expect(shown.text).toContain(">set</span>");
      expect(shown.text).toContain("Replace key");
      const listed = await f.call<{ provider_keys: Array<{ provider: string; configured: boolean }> }>(
        "GET",
        `/api/v2/clients/${client.id}/provider-keys`,
        { auth: f.admin },
      );
      expect(listed.body.provider_keys).toMatchObject([{ provider: "groq", configured: true }]);

      // A bad key is refused on its row; the stored one stays.
      const bad = await send("POST", base, {
        cookie,
        form: { _csrf: csrf, provider: "groq", api_key: "has spaces in it" },
      });
      expect(bad.status).toBe(422);
      expect(bad.text).toContain('id="api_key-error"');
      expect(bad.text).not.toContain("has spaces in it");
      const badName = await send("POST", base, {
        cookie,
        form: { _csrf: csrf, provider: "Bad.Name", api_key: second },
      });
      expect(badName.status).toBe(422);
      expect(badName.text).toContain('id="provider-error"');
      expect(await store.getProviderKey("groq")).toBe(first);

      const replaced = await send("POST", base, {
        cookie,
        form: { _csrf: csrf, provider: "groq", api_key: second },
      });
      expect(replaced.status).toBe(303);
      expect(await store.getProviderKey("groq")).toBe(second);
      // A provider outside the contract's list, through the "another provider" form.
      const custom = await send("POST", base, {
        cookie,
        form: { _csrf: csrf, provider: "my-gateway", api_key: other },
      });
      expect(custom.status).toBe(303);
      expect((await send("GET", base, { cookie })).text).toContain(
        '<p class="font-mono text-sm font-medium">my-gateway</p>',
      );

      const removed = await send("POST", `${base}/groq/delete`, { cookie, form: { _csrf: csrf } });
      expect(removed.status).toBe(303);
      expect(await store.getProviderKey("groq")).toBeNull();
      // HTMX (the Remove button's hx-post) gets HX-Redirect.
      const viaHtmx = await send("POST", `${base}/my-gateway/delete`, {
        cookie,
        headers: { "hx-request": "true", "x-csrf-token": csrf },
      });
      expect(viaHtmx.status).toBe(200);
      expect(viaHtmx.headers.get("hx-redirect")).toBe(`${base}?removed=my-gateway`);
      expect(await store.getProviderKey("my-gateway")).toBeNull();
    } finally {
      await store.close();
    }
    const actions = (await f.platform.listAudit({ clientId: client.id }))
      .filter((a) => a.actor === "admin:token")
      .map((a) => a.action);
    expect(actions).toEqual(expect.arrayContaining(["provider_key.set", "provider_key.delete"]));
  });
});

describe("console API keys", () => {
  it("api keys - issued through the form (shown once, no-store) pass trigger-agent's auth; revoked through the form they get 401", async () => {
    const client = await clientWithDatabase("apikeys");
    const { cookie, csrf } = await login();
    const base = `/admin/clients/${client.id}/api-keys`;
    // A disabled agent: a trigger that passes authentication answers 400, with no worker needed.
    const agent = await send("POST", `/admin/clients/${client.id}/agents`, {
      cookie,
      form: { _csrf: csrf, ...AGENT_FORM, enabled: [] },
    });
    expect(agent.status).toBe(303);

    const page = await send("GET", base, { cookie });
    expect(page.status).toBe(200);
    expect(page.text).toContain("No API keys yet");
    for (const scope of ["agents:trigger", "documents:read", "documents:write"]) {
      expect(page.text).toContain(`name="scopes" value="${scope}"`);
    }

    // Refused input: nothing is issued.
    const bad = await send("POST", base, {
      cookie,
      form: { _csrf: csrf, label: "Shop", site_url: "ftp://shop.example", scopes: "agents:trigger" },
    });
    expect(bad.status).toBe(422);
    expect(bad.text).toContain('id="site_url-error"');
    const badScope = await send("POST", base, {
      cookie,
      form: { _csrf: csrf, label: "Shop", scopes: ["agents:trigger", "admin:everything"] },
    });
    expect(badScope.status).toBe(422);
    expect(badScope.text).toContain('id="scopes-error"');
    expect(await f.platform.listApiKeys(client.id)).toEqual([]);

    const issued = await send("POST", base, {
      cookie,
      form: {
        _csrf: csrf,
        label: "WordPress shop",
        site_url: "https://shop.example",
        scopes: ["agents:trigger", "documents:read"],
      },
      showsKey: true,
    });
    expect(issued.status).toBe(200);
    expect(issued.headers.get("cache-control")).toBe("no-store");
    const key = /<code id="new-api-key"[^>]*>([^<]+)<\/code>/.exec(issued.text)?.[1] ?? "";
    expect(key).toMatch(/^sk_[A-Za-z0-9_-]{20,}$/);
    secrets.push(key);
    expect(issued.text).toContain('data-copy="#new-api-key"');
    // Shown once: the key is in that page a single time.
    expect(issued.text.split(key).length).toBe(2);

    const stored = await f.platform.listApiKeys(client.id);
    expect(stored).toHaveLength(1);
    expect(stored[0]).toMatchObject({
      scopes: ["agents:trigger", "documents:read"],
      siteUrl: "https://shop.example",
    });
    const list = await send("GET", base, { cookie });
    expect(list.text).toContain("WordPress shop");
    expect(list.text).toContain(key.slice(0, 11));
    expect(list.text).not.toContain(key);

    const trigger = () =>
      f.call("POST", "/api/v1/trigger-agent", {
        auth: `Bearer ${key}`,
        body: { agent_slug: "support-bot", mode: "text", user_id: randomUUID(), message: "hello" },
      });
    const passed = await trigger();
    expect(passed.status, passed.text).toBe(400);
    expect(passed.text).toContain("SF_ERR_AGENT_DISABLED");

    const keyId = /\/api-keys\/([0-9a-f-]{36})\/revoke"/.exec(list.text)?.[1] ?? "";
    expect(keyId).toMatch(/^[0-9a-f-]{36}$/);
    const confirm = await send("GET", `${base}/${keyId}/revoke`, { cookie });
    expect(confirm.status).toBe(200);
    expect(confirm.text).toContain("Revoke key");
    // Posted without the confirmation: nothing is revoked.
    const unconfirmed = await send("POST", `${base}/${keyId}/revoke`, { cookie, form: { _csrf: csrf } });
    expect(unconfirmed.status).toBe(422);
    expect((await trigger()).status).toBe(400);
    const noCsrf = await send("POST", `${base}/${keyId}/revoke`, { cookie, form: { confirm: "revoke" } });
    expect(noCsrf.status).toBe(403);
    expect((await trigger()).status).toBe(400);

    const revoked = await send("POST", `${base}/${keyId}/revoke`, {
      cookie,
      form: { _csrf: csrf, confirm: "revoke" },
    });
    expect(revoked.status).toBe(303);
    expect(revoked.headers.get("location")).toBe(`${base}?revoked=1`);
    const refused = await trigger();
    expect(refused.status).toBe(401);
    expect(refused.text).toContain("SF_ERR_UNAUTHENTICATED");
    const after = await send("GET", `${base}?revoked=1`, { cookie });
    expect(after.text).toContain("Key revoked.");
    expect(after.text).toContain(">revoked</span>");
    expect(after.text).not.toContain(`/api-keys/${keyId}/revoke"`);

    const actions = (await f.platform.listAudit({ clientId: client.id }))
      .filter((a) => a.actor === "admin:token")
      .map((a) => a.action);
    expect(actions).toEqual(expect.arrayContaining(["api_key.create", "api_key.revoke"]));
  });

  it("assets - the console script carries the copy button's behaviour", async () => {
    const page = await send("GET", "/admin/login");
    const js = /src="(\/admin\/static\/admin\.js\?v=[0-9a-f]+)"/.exec(page.text)?.[1] ?? "";
    const res = await send("GET", js);
    expect(res.status).toBe(200);
    expect(res.text).toContain("[data-copy]");
    expect(res.text).toContain("navigator.clipboard.writeText");
  });
});

describe("console secrets", () => {
  it("never served a key or credential in any page, nor logged one", () => {
    expect(secrets.length).toBeGreaterThanOrEqual(5);
    expect(pages.length).toBeGreaterThan(40);
    const all = f.secrets(secrets);
    for (const secret of all) {
      for (const page of [...pages, ...f.bodies]) {
        expect(page.includes(secret), `a page holds ${secret.slice(0, 6)}…`).toBe(false);
      }
      for (const proc of [f.gw.proc, f.host]) {
        const leaked = proc.lines.find((l) => l.includes(secret));
        expect(leaked, `${proc.name} logged ${secret.slice(0, 6)}…`).toBeUndefined();
      }
    }
  });
});
