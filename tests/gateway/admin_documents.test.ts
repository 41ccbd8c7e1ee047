/**
 * The console's knowledge base and conversations over HTTP, against a real gateway process,
 * actor host, NATS and tenant databases on the shared PostgreSQL: uploads through the console
 * (multipart by HTMX, CSRF in the header) listed as queued, the row fragment that polls while
 * ingestion runs and stops once it is over, agent assignment and delete through the forms (read
 * back through the v2 API), conversation lists filtered by agent and user, transcripts with
 * citations and the timings the rows hold, one tenant's ids never opening under another's path,
 * and no secret in any page. The last suite runs the whole RAG stack (worker, provider fixture)
 * and watches a console upload reach `ready` through the fragment.
 */
import { randomUUID } from "node:crypto";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { DocumentView } from "../../actors/index.ts";
import { waitFor } from "../helpers/deadline.ts";
import { ADMIN, pgliteTenant, ragAgent, startRagStack, stopRagStack } from "../rag/rag_stack.ts";
import type { RagStack } from "../rag/rag_stack.ts";
import { ApiFixture } from "./api_fixture.ts";
import type { PostgresTenantDatabase } from "./api_fixture.ts";
import { consoleRequest, csrfOf } from "./console_client.ts";
import type { ConsolePage, ConsoleRequestOptions } from "./console_client.ts";

let f: ApiFixture;
/** Every page and fragment served in this file, for the secret scan. */
const pages: string[] = [];
/** Secrets of the RAG stack (its admin token and provider keys), scanned for too. */
const extraSecrets: string[] = [];

interface Session {
  base: string;
  cookie: string;
  csrf: string;
}

function send(
  base: string,
  method: string,
  path: string,
  options: ConsoleRequestOptions = {},
): Promise<ConsolePage> {
  return consoleRequest(base, method, path, options, (body) => pages.push(body));
}

async function login(base: string, token: string): Promise<Session> {
  const res = await send(base, "POST", "/admin/login", { form: { token, next: "/admin/clients" } });
  expect(res.status).toBe(303);
  const cookie = (res.headers.get("set-cookie") ?? "").split(";")[0] ?? "";
  const page = await send(base, "GET", "/admin/clients", { cookie });
  expect(page.status).toBe(200);
  return { base, cookie, csrf: csrfOf(page.text) };
}

function get(s: Session, path: string, htmx = false): Promise<ConsolePage> {
  return send(s.base, "GET", path, { cookie: s.cookie, headers: htmx ? { "hx-request": "true" } : {} });
}

function post(s: Session, path: string, form: Record<string, string | string[]>): Promise<ConsolePage> {
  return send(s.base, "POST", path, { cookie: s.cookie, form: { _csrf: s.csrf, ...form } });
}

/** A file upload the way the page's HTMX form sends it: multipart, the CSRF token in the header. */
function upload(
  s: Session,
  clientId: string,
  file: { name: string; type: string; data: string | Uint8Array },
  fields: Record<string, string | string[]> = {},
  /** The X-CSRF-Token header; null sends none. */
  csrf: string | null = s.csrf,
): Promise<ConsolePage> {
  const form = new FormData();
  form.append("file", new Blob([file.data], { type: file.type }), file.name);
  for (const [k, v] of Object.entries(fields))
    for (const one of Array.isArray(v) ? v : [v]) form.append(k, one);
  return send(s.base, "POST", `/admin/clients/${clientId}/documents`, {
    cookie: s.cookie,
    multipart: form,
    headers: { "hx-request": "true", ...(csrf === null ? {} : { "x-csrf-token": csrf }) },
  });
}

/** The `<tr>` of one document in a page (or the fragment itself). */
function rowOf(html: string, documentId: string): string {
  const start = html.indexOf(`<tr id="doc-${documentId}"`);
  if (start < 0) throw new Error(`no row for document ${documentId}`);
  return html.slice(start, html.indexOf("</tr>", start) + 5);
}

interface Tenant {
  id: string;
  db: PostgresTenantDatabase;
}

let seq = 0;
async function tenant(label: string, agents: Array<{ slug: string; name: string }>): Promise<Tenant> {
  seq += 1;
  const created = await f.call<{ id: string }>("POST", "/api/v2/clients", {
    auth: f.admin,
    body: { slug: `${label}-${seq}-${f.server.port}`, name: `${label} ${seq}` },
  });
  expect(created.status, created.text).toBe(201);
  const id = created.body.id;
  const db = await f.tenantDatabase(id, `adm_${label.replace(/-/g, "_")}_${seq}`, agents);
  const res = await f.call("PATCH", `/api/v2/clients/${id}`, {
    auth: f.admin,
    body: { tenant_database: { kind: "postgres", url: db.url, schema: db.schema } },
  });
  expect(res.status, res.text).toBe(200);
  return { id, db };
}

async function v2Document(clientId: string, documentId: string) {
  return f.call<{ document: DocumentView }>("GET", `/api/v2/clients/${clientId}/documents/${documentId}`, {
    auth: f.admin,
  });
}

/** Sets a document's status in the tenant database, as an ingestion worker's progress would. */
async function setStatus(t: Tenant, documentId: string, status: string): Promise<void> {
  const store = await f.openTenant(t.id, t.db);
  try {
    await store.updateDocumentStatus(documentId, status);
  } finally {
    await store.close();
  }
}

let admin: Session;
let a: Tenant;
let b: Tenant;

beforeAll(async () => {
  f = await ApiFixture.start();
  admin = await login(f.gw.base, f.adminToken);
  a = await tenant("kb-a", [
    { slug: "helper", name: "Helper" },
    { slug: "sales", name: "Sales" },
  ]);
  b = await tenant("kb-b", [{ slug: "other", name: "Other" }]);
});

afterAll(async () => {
  await f?.close();
});

describe("console knowledge base", () => {
  let documentId: string;

  it("uploads through the console: listed as queued with its agents, the row polling its fragment", async () => {
    const empty = await get(admin, `/admin/clients/${a.id}/documents`);
    expect(empty.status).toBe(200);
    expect(empty.text).toContain("No documents yet");
    expect(empty.text).toContain('hx-encoding="multipart/form-data"');

    const res = await upload(
      admin,
      a.id,
      { name: "pricing.md", type: "text/markdown", data: "# Pricing\n\nThe plan costs 12 euros a month.\n" },
      { title: "Pricing guide", description: "What things cost", agent_slugs: ["helper"] },
    );
    expect(res.status, res.text).toBe(200);
    expect(res.headers.get("hx-redirect")).toBe(`/admin/clients/${a.id}/documents?uploaded=1`);

    const listed = await f.call<{ documents: DocumentView[] }>("GET", `/api/v2/clients/${a.id}/documents`, {
      auth: f.admin,
    });
    expect(listed.body.documents).toHaveLength(1);
    const doc = listed.body.documents[0]!;
    documentId = doc.id;
    expect(doc).toMatchObject({ title: "Pricing guide", status: "queued", agents: ["helper"] });

    const page = await get(admin, `/admin/clients/${a.id}/documents?uploaded=1`);
    expect(page.status).toBe(200);
    expect(page.text).toContain("queued for ingestion");
    const row = rowOf(page.text, documentId);
    expect(row).toContain("Pricing guide");
    expect(row).toContain('data-status="queued"');
    expect(row).toContain(`hx-get="/admin/clients/${a.id}/documents/${documentId}/row"`);
    expect(row).toContain('hx-trigger="every 2s"');
    expect(row).toContain("helper");

    // The same file again is the same document.
    const again = await upload(admin, a.id, {
      name: "pricing-copy.md",
      type: "text/markdown",
      data: "# Pricing\n\nThe plan costs 12 euros a month.\n",
    });
    expect(again.headers.get("hx-redirect")).toBe(`/admin/clients/${a.id}/documents?duplicate=1`);
  });

  it("answers the row fragment with the status: polling while in progress, stopping once ready or failed", async () => {
    const path = `/admin/clients/${a.id}/documents/${documentId}/row`;
    const queued = await get(admin, path, true);
    expect(queued.status).toBe(200);
    expect(queued.text.startsWith(`<tr id="doc-${documentId}"`)).toBe(true);
    expect(queued.text).not.toContain("<html");
    expect(queued.text).toContain('hx-trigger="every 2s"');

    await setStatus(a, documentId, "embedding 40/120");
    const embedding = await get(admin, path, true);
    expect(embedding.text).toContain("embedding 40/120");
    expect(embedding.text).toMatch(/<progress[^>]*max="120"[^>]*value="40"/);
    expect(embedding.text).toContain('hx-trigger="every 2s"');

    await setStatus(a, documentId, "failed: the PDF has no text layer");
    const failed = await get(admin, path, true);
    expect(failed.text).toContain("the PDF has no text layer");
    expect(failed.text).not.toContain("hx-trigger");

    await setStatus(a, documentId, "ready");
    const ready = await get(admin, path, true);
    expect(ready.text).toContain('data-status="ready"');
    expect(ready.text).not.toContain("hx-trigger");
    const status = await get(admin, `/admin/clients/${a.id}/documents/${documentId}/status`, true);
    expect(status.status).toBe(200);
    expect(status.text).toContain('id="document-status"');
    expect(status.text).not.toContain("hx-trigger");
  });

  it("refuses an upload without the CSRF header, or with a wrong one, and stores nothing", async () => {
    const file = { name: "sneaky.txt", type: "text/plain", data: "posted from elsewhere" };
    const none = await upload(admin, a.id, file, {}, null);
    expect(none.status).toBe(403);
    expect(none.text).toContain("SF_ERR_CSRF_FAILED");
    const wrong = await upload(admin, a.id, file, {}, "not-the-token");
    expect(wrong.status).toBe(403);
    const listed = await f.call<{ documents: DocumentView[] }>("GET", `/api/v2/clients/${a.id}/documents`, {
      auth: f.admin,
    });
    expect(listed.body.documents.map((d) => d.title)).toEqual(["Pricing guide"]);
  });

  it("shows a refused upload's reason in the form, keeping what was typed", async () => {
    const png = new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13]);
    const res = await upload(
      admin,
      a.id,
      { name: "logo.png", type: "image/png", data: png },
      { title: "Logo", agent_slugs: "sales" },
    );
    expect(res.status).toBe(415);
    expect(res.text.startsWith('<form id="upload-form"')).toBe(true);
    expect(res.text).toContain("unsupported document type");
    expect(res.text).toContain('value="Logo"');
    expect(res.text).toMatch(/value="sales"[^>]*checked|checked[^>]*value="sales"/);
  });

  it("changes the agent assignment through the document's form (read back through the v2 API)", async () => {
    const page = await get(admin, `/admin/clients/${a.id}/documents/${documentId}`);
    expect(page.status).toBe(200);
    expect(page.text).toMatch(/value="helper"[^>]*checked|checked[^>]*value="helper"/);

    const saved = await post(admin, `/admin/clients/${a.id}/documents/${documentId}/agents`, {
      agent_slugs: ["sales", "helper"],
    });
    expect(saved.status, saved.text).toBe(303);
    expect(saved.headers.get("location")).toBe(`/admin/clients/${a.id}/documents/${documentId}?saved=1`);
    expect((await v2Document(a.id, documentId)).body.document.agents.sort()).toEqual(["helper", "sales"]);

    const none = await post(admin, `/admin/clients/${a.id}/documents/${documentId}/agents`, {});
    expect(none.status).toBe(303);
    expect((await v2Document(a.id, documentId)).body.document.agents).toEqual([]);

    const ghost = await post(admin, `/admin/clients/${a.id}/documents/${documentId}/agents`, {
      agent_slugs: "ghost",
    });
    expect(ghost.status).toBe(404);
    expect(ghost.text).toContain("ghost");
    const bad = await post(admin, `/admin/clients/${a.id}/documents/${documentId}/agents`, {
      agent_slugs: "not a slug",
    });
    expect(bad.status).toBe(422);
    expect((await v2Document(a.id, documentId)).body.document.agents).toEqual([]);

    const noToken = await send(admin.base, "POST", `/admin/clients/${a.id}/documents/${documentId}/agents`, {
      cookie: admin.cookie,
      form: { agent_slugs: "sales" },
    });
    expect(noToken.status).toBe(403);
    expect((await v2Document(a.id, documentId)).body.document.agents).toEqual([]);
  });

  it("never opens one tenant's document under another tenant's path", async () => {
    const res = await upload(admin, b.id, {
      name: "b.txt",
      type: "text/plain",
      data: "tenant B's secret plan",
    });
    expect(res.headers.get("hx-redirect")).toContain(`/admin/clients/${b.id}/documents`);
    const bDoc = (
      await f.call<{ documents: DocumentView[] }>("GET", `/api/v2/clients/${b.id}/documents`, {
        auth: f.admin,
      })
    ).body.documents[0]!;
    for (const suffix of ["", "/row", "/status"]) {
      const r = await get(admin, `/admin/clients/${a.id}/documents/${bDoc.id}${suffix}`, suffix !== "");
      expect(r.status, suffix).toBe(404);
      expect(r.text).not.toContain("b.txt");
    }
    const del = await post(admin, `/admin/clients/${a.id}/documents/${bDoc.id}/delete`, { confirm: "yes" });
    expect(del.status).toBe(404);
    expect((await v2Document(b.id, bDoc.id)).status).toBe(200);
    const list = await get(admin, `/admin/clients/${a.id}/documents`);
    expect(list.text).not.toContain(bDoc.id);
    expect((await get(admin, `/admin/clients/${a.id}/documents/not-a-uuid`)).status).toBe(404);
  });

  it("deletes through the form only once confirmed; the row fragment then says it is gone", async () => {
    const unconfirmed = await post(admin, `/admin/clients/${a.id}/documents/${documentId}/delete`, {});
    expect(unconfirmed.status).toBe(422);
    expect(unconfirmed.text).toContain("tick the box to confirm");
    expect((await v2Document(a.id, documentId)).status).toBe(200);

    const deleted = await post(admin, `/admin/clients/${a.id}/documents/${documentId}/delete`, {
      confirm: "yes",
    });
    expect(deleted.status).toBe(303);
    expect(deleted.headers.get("location")).toBe(`/admin/clients/${a.id}/documents?deleted=1`);
    expect((await v2Document(a.id, documentId)).status).toBe(404);
    const row = await get(admin, `/admin/clients/${a.id}/documents/${documentId}/row`, true);
    expect(row.status).toBe(404);
    expect(row.text).toContain("This document was deleted.");
    expect(row.text).not.toContain("hx-trigger");
    const page = await get(admin, `/admin/clients/${a.id}/documents?deleted=1`);
    expect(page.text).toContain("Document deleted.");
    expect(page.text).not.toContain(`doc-${documentId}`);
  });

  it("says so when the client has no tenant database", async () => {
    const created = await f.call<{ id: string }>("POST", "/api/v2/clients", {
      auth: f.admin,
      body: { slug: `kb-nodb-${f.server.port}`, name: "No database" },
    });
    for (const what of ["documents", "conversations"]) {
      const page = await get(admin, `/admin/clients/${created.body.id}/${what}`);
      expect(page.status, what).toBe(200);
      expect(page.text).toContain("This client has no tenant database yet");
    }
  });
});

describe("console conversations", () => {
  const u1 = randomUUID();
  const u2 = randomUUID();
  const docId = randomUUID();
  let c1: string;
  let c2: string;
  let cb: string;

  beforeAll(async () => {
    const store = await f.openTenant(a.id, a.db);
    let turn1: string;
    let turn2: string;
    try {
      const helper = await store.getAgent("helper");
      const sales = await store.getAgent("sales");
      c1 = (
        await store.createConversation({
          agentId: helper.id,
          userId: u1,
          channel: "text",
          metadata: { external_user_id: "visitor-17" },
        })
      ).id;
      turn1 = (
        await store.appendTurn({
          conversationId: c1,
          agentId: helper.id,
          userId: u1,
          userMessage: "How much is the plan?",
          assistantMessage: "It costs 12 euros a month [1].",
          source: "text",
          citations: [
            {
              document_id: docId,
              title: "Pricing guide",
              chunk_index: 2,
              chunk: "The plan costs 12 euros a month.",
              similarity: 0.8731,
              source_url: "https://docs.example/pricing",
            },
            { title: "Old handbook", url: "javascript:alert(1)" },
          ],
          metadata: {
            rag: { document_ids: [docId], transcripts: 1, context_tokens: 120 },
            timings: { llm_ms: 420 },
          },
        })
      ).turnId;
      turn2 = (
        await store.appendTurn({
          conversationId: c1,
          agentId: helper.id,
          userId: u1,
          userMessage: "And per year?",
          assistantMessage: "144 euros.",
          source: "text",
        })
      ).turnId;
      c2 = (await store.createConversation({ agentId: sales.id, userId: u2, channel: "voice" })).id;
      await store.appendTurn({
        conversationId: c2,
        agentId: sales.id,
        userId: u2,
        userMessage: "Do you ship abroad?",
        assistantMessage: "Yes, to the whole EU.",
        source: "voice",
      });
    } finally {
      await store.close();
    }
    // Times the rows hold: turn 1 ninety seconds before turn 2, whose reply came 2 s after its question.
    const sql = new pg.Client({ connectionString: a.db.url });
    await sql.connect();
    try {
      const table = `"${a.db.schema}".conversation_transcripts`;
      await sql.query(
        `update ${table} set created_at = created_at - interval '90 seconds' where turn_id = $1`,
        [turn1],
      );
      await sql.query(
        `update ${table} set created_at = created_at - interval '2 seconds' where turn_id = $1 and role = 'user'`,
        [turn2],
      );
    } finally {
      await sql.end();
    }
    const other = await f.openTenant(b.id, b.db);
    try {
      const agent = await other.getAgent("other");
      cb = (await other.createConversation({ agentId: agent.id, userId: u1, channel: "text" })).id;
      await other.appendTurn({
        conversationId: cb,
        agentId: agent.id,
        userId: u1,
        userMessage: "Tenant B private question",
        assistantMessage: "Tenant B private answer",
      });
    } finally {
      await other.close();
    }
  });

  const base = () => `/admin/clients/${a.id}/conversations`;

  it("lists the client's conversations, filtered by agent and by user", async () => {
    const all = await get(admin, base());
    expect(all.status).toBe(200);
    expect(all.text).toContain(`conversation-${c1}`);
    expect(all.text).toContain(`conversation-${c2}`);
    expect(all.text).not.toContain(`conversation-${cb}`);
    expect(all.text).toContain("visitor-17");
    expect(all.text).toContain(`${base()}/${c1}`);

    const helper = await get(admin, `${base()}?agent_slug=helper`);
    expect(helper.text).toContain(`conversation-${c1}`);
    expect(helper.text).not.toContain(`conversation-${c2}`);

    const user2 = await get(admin, `${base()}?user_id=${u2}`);
    expect(user2.text).toContain(`conversation-${c2}`);
    expect(user2.text).not.toContain(`conversation-${c1}`);

    const none = await get(admin, `${base()}?agent_slug=helper&user_id=${u2}`);
    expect(none.status).toBe(200);
    expect(none.text).toContain("No conversation matches these filters");

    const badUser = await get(admin, `${base()}?user_id=not-a-uuid`);
    expect(badUser.status).toBe(422);
    expect(badUser.text).not.toContain(`conversation-${c1}`);
    const ghost = await get(admin, `${base()}?agent_slug=ghost`);
    expect(ghost.status).toBe(404);
    expect(ghost.text).toContain("no agent “ghost”");
  });

  it("shows a transcript: roles, text, times, citations and the timings the rows hold", async () => {
    const page = await get(admin, `${base()}/${c1}`);
    expect(page.status).toBe(200);
    const text = page.text;
    const order = [
      "How much is the plan?",
      "It costs 12 euros a month [1].",
      "And per year?",
      "144 euros.",
    ].map((s) => text.indexOf(s));
    expect(order.every((i) => i > 0)).toBe(true);
    expect([...order].sort((x, y) => x - y)).toEqual(order);
    expect(text.match(/data-role="user"/g)).toHaveLength(2);
    expect(text.match(/data-role="assistant"/g)).toHaveLength(2);
    // Citations: the document's page, its chunk and similarity, its source; no script URL.
    expect(text).toContain(`href="/admin/clients/${a.id}/documents/${docId}"`);
    expect(text).toContain("Pricing guide");
    expect(text).toContain("chunk 2");
    expect(text).toContain("similarity 0.873");
    expect(text).toContain('href="https://docs.example/pricing"');
    expect(text).toContain("Old handbook");
    expect(text).not.toContain("javascript:");
    // Timings: recorded by the writer, and the gaps between the rows' created_at.
    expect(text).toContain("llm_ms 420 ms");
    expect(text).toContain("retrieval: 1 documents, 1 past turns, 120 context tokens");
    expect(text).toMatch(/1 min (2|3)\d s after the previous message/);
    expect(text).toContain("2.0 s after the user&#39;s message");
    expect(text).toContain("visitor-17");
  });

  it("never opens another tenant's conversation under this tenant's path", async () => {
    const res = await get(admin, `${base()}/${cb}`);
    expect(res.status).toBe(404);
    expect(res.text).not.toContain("Tenant B private");
    expect((await get(admin, `${base()}/${randomUUID()}`)).status).toBe(404);
    expect((await get(admin, `${base()}/nope`)).status).toBe(404);
    const own = await get(admin, `/admin/clients/${b.id}/conversations/${cb}`);
    expect(own.status).toBe(200);
    expect(own.text).toContain("Tenant B private answer");
  });

  it("sends a visitor without a session to the login page", async () => {
    const res = await send(f.gw.base, "GET", `${base()}/${c1}`);
    expect(res.status).toBe(303);
    expect(res.headers.get("location")).toContain("/admin/login");
  });
});

describe("console knowledge base with a real ingestion worker", () => {
  let stack: RagStack | undefined;

  beforeAll(async () => {
    stack = await startRagStack();
    extraSecrets.push(ADMIN, ...Object.values(stack.fixture.keys));
  }, 120_000);

  afterAll(async () => {
    await stopRagStack(stack);
  });

  it("uploads through the console and the row's fragment reaches ready", async () => {
    const s = stack!;
    const clientId = await pgliteTenant(s, `kb-rag-${s.server.port}`, [ragAgent("guide")]);
    const session = await login(s.gateway.base, ADMIN);
    const res = await upload(
      session,
      clientId,
      {
        name: "returns.md",
        type: "text/markdown",
        data: "# Returns\n\nItems may be returned within 30 days of delivery.\n\n## Refunds\n\nRefunds reach the card in 5 days.\n",
      },
      { agent_slugs: "guide" },
    );
    expect(res.status, res.text).toBe(200);
    const page = await get(session, `/admin/clients/${clientId}/documents`);
    const id = /<tr id="doc-([0-9a-f-]{36})"/.exec(page.text)?.[1] ?? "";
    expect(id).not.toBe("");
    const seen = new Set<string>();
    const final = await waitFor(
      "the document's row to stop polling",
      async () => {
        const row = await get(session, `/admin/clients/${clientId}/documents/${id}/row`, true);
        const status = /data-status="([^"]*)"/.exec(row.text)?.[1];
        if (status !== undefined) seen.add(status);
        return row.text.includes("hx-trigger") ? undefined : row.text;
      },
      { timeoutMs: 90_000, intervalMs: 250 },
    );
    expect(final, [...seen].join(", ")).toContain('data-status="ready"');
    const chunks = Number(/<td class="tabular-nums">(\d+)<\/td>/.exec(final)?.[1] ?? "0");
    expect(chunks).toBeGreaterThan(0);
  }, 120_000);
});

describe("console secrets", () => {
  it("never served a secret in any page or fragment", () => {
    expect(pages.length).toBeGreaterThan(30);
    const secrets = [...f.secrets(), ...extraSecrets];
    for (const page of pages) for (const s of secrets) expect(page).not.toContain(s);
  });
});
