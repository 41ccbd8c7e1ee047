import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { Room } from "@livekit/rtc-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { DocumentView, TriggerReply } from "../../actors/index.ts";
import { requestReply } from "../../bus/index.ts";
import { corpusFile, generateCorpus, IRRELEVANT_QUESTION } from "../fixtures/documents/corpus.ts";
import type { CorpusFile } from "../fixtures/documents/corpus.ts";
import type { ChatTurn } from "../fixtures/providers/provider_fixture.ts";
import { waitFor } from "../helpers/deadline.ts";
import { sharedServices } from "../helpers/services.ts";
import {
  api,
  askText,
  listDocuments,
  P,
  pgliteTenant,
  ragAgent,
  settledDocuments,
  startRagStack,
  stopRagStack,
  uploadForm,
} from "./rag_stack.ts";
import type { RagStack } from "./rag_stack.ts";

const execFileAsync = promisify(execFile);

let stack: RagStack | undefined;
let corpus: CorpusFile[] = [];

beforeAll(async () => {
  [stack, corpus] = await Promise.all([startRagStack(), generateCorpus()]);
}, 120_000);

afterAll(async () => {
  await stopRagStack(stack);
});

function s(): RagStack {
  if (stack === undefined) throw new Error("the stack did not start");
  return stack;
}

/** The chat turn the LLM received for `question` (the last one asking it). */
function promptFor(question: string): ChatTurn {
  const turns = s().fixture.chatTurns.filter((t) => t.messages[t.messages.length - 1]?.content === question);
  const turn = turns[turns.length - 1];
  if (turn === undefined) throw new Error(`the LLM never received ${JSON.stringify(question)}`);
  return turn;
}

function systemText(turn: ChatTurn): string {
  return turn.messages
    .filter((m) => m.role === "system")
    .map((m) => m.content)
    .join("\n");
}

async function uploadAll(tenant: string, files: readonly CorpusFile[], agents: string): Promise<void> {
  for (const file of files) {
    const res = await api(
      s(),
      "POST",
      `/api/v2/clients/${tenant}/documents`,
      uploadForm(file, { agent_slugs: agents }),
    );
    expect(res.status, JSON.stringify(res.body)).toBe(202);
  }
}

function byFile(docs: readonly DocumentView[], fileName: string): DocumentView {
  const doc = docs.find((d) => d.file_name === fileName);
  if (doc === undefined) throw new Error(`no document for ${fileName}`);
  return doc;
}

describe("RAG - ingestion jobs, remote embeddings, pgvector retrieval in the agent's prompt", () => {
  it("a corpus of Markdown, HTML and PDF files is ingested; each question pulls its document into the prompt and the citations, an irrelevant one pulls nothing", async () => {
    const t = await pgliteTenant(s(), `rag-corpus-${s().server.port}`, [ragAgent("guide")]);
    await uploadAll(t, corpus, "guide");
    const docs = await settledDocuments(s(), t, corpus.length);
    expect(docs.filter((d) => d.status !== "ready").map((d) => [d.file_name, d.status])).toEqual([]);
    expect(new Set(docs.map((d) => d.file_type))).toEqual(new Set(["markdown", "html", "pdf"]));
    for (const d of docs) {
      expect(d.chunk_count, d.file_name ?? "").toBeGreaterThan(0);
      expect(d.agents).toEqual(["guide"]);
    }
    expect(docs.some((d) => d.chunk_count > 1)).toBe(true);
    const embeddingCalls = s().fixture.callsTo("siliconflow", "embeddings").length;

    // Every third file, so each type is asked about.
    const asked = corpus.filter((_, i) => i % 3 === 0);
    for (const [i, file] of asked.entries()) {
      const { final, reply } = await askText(s(), t, "guide", "reader-1", file.question);
      expect(final.type, JSON.stringify(final)).toBe("message");
      const prompt = systemText(promptFor(file.question));
      expect(prompt, `${file.fileName}: the answer's passage reaches the LLM`).toContain(file.answer);
      const doc = byFile(docs, file.fileName);
      const cited = final.type === "message" ? (final.citations as Array<{ document_id: string }>) : [];
      expect(cited.map((c) => c.document_id)).toContain(doc.id);
      if (i === 0) {
        // The recorded turn keeps what it was built on.
        const conv = await api(s(), "GET", `/api/v2/clients/${t}/conversations/${reply.conversation_id}`);
        const rows = conv.body["transcripts"] as Array<{
          role: string;
          citations: unknown[];
          metadata: Record<string, unknown>;
        }>;
        const assistant = rows.find((r) => r.role === "assistant");
        expect(assistant?.citations).toEqual(cited);
        expect((assistant?.metadata["rag"] as { document_ids: string[] }).document_ids).toContain(doc.id);
      }
    }
    // One embedding call per question (documents and transcripts share the model), plus one per
    // recorded turn for later transcript search, off the chat path.
    await waitFor("the turns' transcript embeddings", () =>
      s().fixture.callsTo("siliconflow", "embeddings").length >= embeddingCalls + asked.length * 2
        ? true
        : undefined,
    );

    const { final } = await askText(s(), t, "guide", "reader-2", IRRELEVANT_QUESTION);
    expect(final.type).toBe("message");
    expect(final.type === "message" && final.citations).toEqual([]);
    const prompt = systemText(promptFor(IRRELEVANT_QUESTION));
    for (const file of corpus) expect(prompt).not.toContain(file.answer);

    // The legacy v1 route carries the citations to WordPress clients.
    const file = asked[0] as CorpusFile;
    const v1 = await api(s(), "POST", "/api/v1/trigger-agent", {
      agent_slug: "guide",
      mode: "text",
      user_id: "wp-9",
      client_id: t,
      message: file.question,
    });
    expect(v1.status, JSON.stringify(v1.body)).toBe(200);
    const data = v1.body["data"] as {
      citations: Array<{ document_id: string; title: string; chunk: string; similarity: number }>;
    };
    expect(data.citations.map((c) => c.document_id)).toContain(byFile(docs, file.fileName).id);
    expect(data.citations.every((c) => typeof c.similarity === "number" && c.chunk.length > 0)).toBe(true);
  }, 240_000);

  it("the same content twice is one document; deleting removes it from retrieval; assignments decide which agent sees it", async () => {
    const t = await pgliteTenant(s(), `rag-docs-${s().server.port}`, [ragAgent("alpha"), ragAgent("beta")]);
    const file = corpusFile(corpus, corpus[1]?.fileName ?? "");
    const first = await api(
      s(),
      "POST",
      `/api/v2/clients/${t}/documents`,
      uploadForm(file, { agent_slugs: "alpha", title: "Handbook" }),
    );
    expect(first.status).toBe(202);
    const [ready] = await settledDocuments(s(), t, 1);
    expect(ready?.status).toBe("ready");
    const again = await api(
      s(),
      "POST",
      `/api/v2/clients/${t}/documents`,
      uploadForm(file, { agent_slugs: "alpha" }),
    );
    expect(again.status).toBe(200);
    expect(again.body["duplicate"]).toBe(true);
    const docs = await listDocuments(s(), t);
    expect(docs).toHaveLength(1);
    expect(docs[0]?.chunk_count).toBe(ready?.chunk_count);
    expect(docs[0]?.title).toBe("Handbook");

    // beta has no assignment: its prompt holds none of the document.
    const beta = await askText(s(), t, "beta", "u1", file.question);
    expect(beta.final.type === "message" && beta.final.citations).toEqual([]);
    expect(systemText(promptFor(file.question))).not.toContain(file.answer);
    // Assigned later, it does.
    const id = docs[0]?.id ?? "";
    const assigned = await api(s(), "PUT", `/api/v2/clients/${t}/documents/${id}/agents`, {
      agent_slugs: ["beta"],
    });
    expect(assigned.status, JSON.stringify(assigned.body)).toBe(200);
    expect((assigned.body["document"] as DocumentView).agents).toEqual(["beta"]);
    await askText(s(), t, "beta", "u1", file.question);
    expect(systemText(promptFor(file.question))).toContain(file.answer);
    await askText(s(), t, "alpha", "u1", file.question);
    expect(systemText(promptFor(file.question))).not.toContain(file.answer);

    // Bad input changes nothing.
    const unknownAgent = await api(s(), "PUT", `/api/v2/clients/${t}/documents/${id}/agents`, {
      agent_slugs: ["ghost"],
    });
    expect(unknownAgent.status).toBe(404);
    expect((await listDocuments(s(), t))[0]?.agents).toEqual(["beta"]);
    const notMultipart = await api(s(), "POST", `/api/v2/clients/${t}/documents`, { title: "x" });
    expect(notMultipart.status).toBe(415);
    const unsupported = await api(
      s(),
      "POST",
      `/api/v2/clients/${t}/documents`,
      uploadForm({
        fileName: "sheet.xlsx",
        contentType: "application/vnd.ms-excel",
        data: new Uint8Array([0x50, 0x4b, 3, 4, 1]),
      }),
    );
    expect(unsupported.status).toBe(415);
    expect((unsupported.body["error"] as { code: string }).code).toBe("SF_ERR_UNSUPPORTED_MEDIA_TYPE");

    const deleted = await api(s(), "DELETE", `/api/v2/clients/${t}/documents/${id}`);
    expect(deleted.status).toBe(200);
    expect(await listDocuments(s(), t)).toEqual([]);
    const gone = await api(s(), "GET", `/api/v2/clients/${t}/documents/${id}`);
    expect(gone.status).toBe(404);
    const after = await askText(s(), t, "beta", "u1", file.question);
    expect(after.final.type === "message" && after.final.citations).toEqual([]);
  }, 120_000);

  it("provider errors: a 429 then success ends ready, a persistent 500 and a wrong dimension end failed with the reason", async () => {
    const t = await pgliteTenant(s(), `rag-faults-${s().server.port}`, [ragAgent("guide")]);
    const [a, b, c] = corpus.filter((f) => f.fileType === "markdown");
    if (a === undefined || b === undefined || c === undefined)
      throw new Error("the corpus needs 3 Markdown files");
    const fixture = s().fixture;

    fixture.addFault({
      provider: "siliconflow",
      kind: "embeddings",
      times: 1,
      fault: { type: "rate_limit", retryAfterSeconds: 1 },
    });
    await uploadAll(t, [a], "guide");
    const [okDoc] = await settledDocuments(s(), t, 1);
    expect(okDoc?.status).toBe("ready");

    fixture.addFault({
      provider: "siliconflow",
      kind: "embeddings",
      fault: { type: "server_error", status: 500 },
    });
    try {
      await uploadAll(t, [b], "guide");
      const docs = await settledDocuments(s(), t, 2);
      const failed = byFile(docs, b.fileName);
      expect(failed.status).toMatch(/^failed: .*siliconflow.*500/i);
    } finally {
      fixture.reset();
    }

    fixture.addFault({
      provider: "siliconflow",
      kind: "embeddings",
      fault: { type: "wrong_dimension", dimension: 768 },
    });
    try {
      await uploadAll(t, [c], "guide");
      const docs = await settledDocuments(s(), t, 3);
      expect(byFile(docs, c.fileName).status).toMatch(/^failed: .*768.*1024/);
    } finally {
      fixture.reset();
    }
    // A failed document is retried by uploading it again.
    const retry = await api(
      s(),
      "POST",
      `/api/v2/clients/${t}/documents`,
      uploadForm(b, { agent_slugs: "guide" }),
    );
    expect(retry.status).toBe(202);
    await waitFor(
      "the retried document",
      async () => byFile(await listDocuments(s(), t), b.fileName).status === "ready" || undefined,
      {
        timeoutMs: 60_000,
        intervalMs: 200,
      },
    );
  }, 180_000);

  it("isolation: one user's past turns never reach another user's prompt, one tenant's documents never reach another tenant", async () => {
    const a = await pgliteTenant(s(), `rag-iso-a-${s().server.port}`, [ragAgent("guide")]);
    const b = await pgliteTenant(s(), `rag-iso-b-${s().server.port}`, [ragAgent("guide")]);
    const file = corpus.find((f) => f.fileType === "pdf") as CorpusFile;
    await uploadAll(a, [file], "guide");
    await settledDocuments(s(), a, 1);

    // Tenant b, same agent slug, same question: nothing of tenant a's document.
    const other = await askText(s(), b, "guide", "reader", file.question);
    expect(other.final.type === "message" && other.final.citations).toEqual([]);
    expect(systemText(promptFor(file.question))).not.toContain(file.answer);

    const secret = "My storage locker combination is 4471 zebra marmalade";
    const calls = s().fixture.callsTo("siliconflow", "embeddings").length;
    await askText(s(), a, "guide", "alice", secret);
    // The turn's embedding is written after the reply: wait for that call.
    await waitFor("alice's turn embedding", () =>
      s().fixture.callsTo("siliconflow", "embeddings").length >= calls + 2 ? true : undefined,
    );
    const question = "What is my storage locker combination zebra marmalade?";
    // Alice, in a new conversation, gets her own earlier turn back…
    await waitFor(
      "alice's past turn in her prompt",
      async () => {
        await askText(s(), a, "guide", "alice", question);
        return systemText(promptFor(question)).includes("4471") || undefined;
      },
      { timeoutMs: 20_000, intervalMs: 100 },
    );
    // …Bob, same tenant and agent, never does.
    await askText(s(), a, "guide", "bob", question);
    expect(systemText(promptFor(question))).not.toContain("4471");
  }, 120_000);

  it("changing the embedding settings makes retrieval fail until the tenant re-embeds; then it works again", async () => {
    const t = await pgliteTenant(s(), `rag-reembed-${s().server.port}`, [ragAgent("guide")]);
    const file = corpus.find((f) => f.fileType === "html") as CorpusFile;
    await uploadAll(t, [file], "guide");
    await settledDocuments(s(), t, 1);
    // Only `embedding` is the caller's: the platform's record of the stored vectors is refused.
    const forged = await api(s(), "PATCH", `/api/v2/clients/${t}`, {
      settings: {
        embedding_index: { provider: "x", document_model: "y", conversation_model: "y", dimension: 1 },
      },
    });
    expect(forged.status).toBe(400);
    const patched = await api(s(), "PATCH", `/api/v2/clients/${t}`, {
      settings: { embedding: { provider: "siliconflow", document_model: "BAAI/bge-m3", dimension: 1024 } },
    });
    expect(patched.status, JSON.stringify(patched.body)).toBe(200);
    expect(patched.body["settings"]).toMatchObject({
      embedding: { provider: "siliconflow", document_model: "BAAI/bge-m3" },
      embedding_index: { document_model: "Qwen/Qwen3-Embedding-0.6B", dimension: 1024 },
    });
    const status = await waitFor("the stale state", async () => {
      const res = await api(s(), "GET", `/api/v2/clients/${t}/embeddings`);
      return res.body["stale"] === true ? res.body : undefined;
    });
    expect(status).toMatchObject({ stale: true, column_dimension: 1024 });

    // The command line says the same.
    const cli = await execFileAsync(
      process.execPath,
      ["--import", "tsx", "actors/cli/reembed.ts", "--client", t, "--status"],
      {
        env: { ...process.env, NATS_URL: s().server.url, SF_PARTITIONS: String(P) },
      },
    );
    expect(JSON.parse(cli.stdout)).toMatchObject({
      stale: true,
      indexed: { document_model: "Qwen/Qwen3-Embedding-0.6B" },
    });

    const stale = await askText(s(), t, "guide", "u", file.question);
    expect(stale.final.type).toBe("error");
    if (stale.final.type === "error") {
      expect(stale.final.error.code).toBe("SF_ERR_EMBEDDINGS_STALE");
      expect(stale.final.error.message).toMatch(/Qwen\/Qwen3-Embedding-0\.6B.*BAAI\/bge-m3.*re-embed/);
    }

    const reembed = await api(s(), "POST", `/api/v2/clients/${t}/embeddings/reembed`);
    expect(reembed.status, JSON.stringify(reembed.body)).toBe(202);
    expect(reembed.body).toMatchObject({ documents: 1, transcripts: true });
    await waitFor(
      "the document embedded again",
      async () => (await listDocuments(s(), t))[0]?.status === "ready" || undefined,
      {
        timeoutMs: 60_000,
        intervalMs: 200,
      },
    );
    const models = s()
      .fixture.callsTo("siliconflow", "embeddings")
      .map((c) => (c.body as { model?: string }).model);
    expect(models).toContain("BAAI/bge-m3");
    const fresh = await askText(s(), t, "guide", "u", file.question);
    expect(fresh.final.type, JSON.stringify(fresh.final)).toBe("message");
    expect(systemText(promptFor(file.question))).toContain(file.answer);
  }, 120_000);

  it("an embedding call that times out fails the turn with an error naming it; with RAG off the agent answers without it", async () => {
    const t = await pgliteTenant(s(), `rag-timeout-${s().server.port}`, [
      ragAgent("strict", { toolsConfig: { rag: { match_threshold: 0.2, embed_timeout_ms: 300 } } }),
      ragAgent("plain", { toolsConfig: { rag: { enabled: false } } }),
    ]);
    s().fixture.addFault({
      provider: "siliconflow",
      kind: "embeddings",
      fault: { type: "slow_response", delayMs: 2000 },
    });
    try {
      const strict = await askText(s(), t, "strict", "u", "What are the opening hours?");
      expect(strict.final.type).toBe("error");
      if (strict.final.type === "error") {
        expect(strict.final.error.code).toBe("SF_ERR_PROVIDER_TIMEOUT");
        expect(strict.final.error.message).toMatch(/retrieval .*siliconflow/i);
      }
      const before = s().fixture.callsTo("siliconflow", "embeddings").length;
      const plain = await askText(s(), t, "plain", "u", "What are the opening hours, plainly?");
      expect(plain.final.type).toBe("message");
      expect(s().fixture.callsTo("siliconflow", "embeddings").length).toBe(before);
    } finally {
      s().fixture.reset();
    }
  }, 60_000);

  it("API keys reach only their own tenant's documents, and only with the documents scopes", async () => {
    const a = await pgliteTenant(s(), `rag-keys-a-${s().server.port}`, [ragAgent("guide")]);
    const b = await pgliteTenant(s(), `rag-keys-b-${s().server.port}`, [ragAgent("guide")]);
    const key = async (tenant: string, scopes: string[]): Promise<string> => {
      const res = await api(s(), "POST", `/api/v2/clients/${tenant}/api-keys`, { label: "docs", scopes });
      expect(res.status, JSON.stringify(res.body)).toBe(201);
      return res.body["key"] as string;
    };
    const writer = await key(a, ["documents:write"]);
    const reader = await key(a, ["documents:read"]);
    const none = await key(a, []);
    const file = corpus[2] as CorpusFile;
    const as = (k: string) => ({ authorization: `Bearer ${k}` });

    const refused = await api(s(), "POST", "/api/v2/documents", uploadForm(file), as(reader));
    expect(refused.status).toBe(403);
    const noScope = await api(s(), "GET", "/api/v2/documents", undefined, as(none));
    expect(noScope.status, JSON.stringify(noScope.body)).toBe(403);
    const created = await api(
      s(),
      "POST",
      "/api/v2/documents",
      uploadForm(file, { agent_slugs: "guide" }),
      as(writer),
    );
    expect(created.status, JSON.stringify(created.body)).toBe(202);
    const id = (created.body["document"] as DocumentView).id;
    const listed = await api(s(), "GET", "/api/v2/documents", undefined, as(reader));
    expect((listed.body["documents"] as DocumentView[]).map((d) => d.id)).toEqual([id]);
    // Tenant a's key on tenant b's admin route, and tenant b's document id through a's key.
    expect((await api(s(), "GET", `/api/v2/clients/${b}/documents`, undefined, as(writer))).status).toBe(403);
    const bKey = await key(b, ["documents:write"]);
    expect((await api(s(), "GET", `/api/v2/documents/${id}`, undefined, as(bKey))).status).toBe(404);
    expect((await api(s(), "DELETE", `/api/v2/documents/${id}`, undefined, as(bKey))).status).toBe(404);
    expect(await listDocuments(s(), a)).toHaveLength(1);
  }, 60_000);
  it("voice: each committed transcript turn in the room is answered with the agent's documents in the prompt and its citations recorded", async () => {
    const t = await pgliteTenant(s(), `rag-voice-${s().server.port}`, [ragAgent("guide")]);
    const lk = sharedServices();
    await s().platform.setLivekitCredentials(t, {
      url: lk.livekitUrl,
      apiKey: lk.livekitApiKey,
      apiSecret: lk.livekitApiSecret,
    });
    const file = corpus.find((f) => f.fileType === "markdown" && f !== corpus[0]) as CorpusFile;
    await uploadAll(t, [file], "guide");
    const [doc] = await settledDocuments(s(), t, 1);
    expect(doc?.status).toBe("ready");
    const roomName = `rag-room-${s().server.port}`;
    // Subscribed before the trigger: the worker says `joined` once it listens in the room.
    const joined: string[] = [];
    const events = s().nc.subscribe(`${s().subjects.prefix}.job.${t}.*.joined`, {
      callback: (_e, m) => {
        joined.push(m.subject);
      },
    });
    await s().nc.flush();
    const { body: reply } = await requestReply<TriggerReply>(
      s().nc,
      s().subjects.tenantOp(t, "trigger"),
      { agent_slug: "guide", mode: "voice", user_id: "caller-1", room_name: roomName },
      { tenant: t, timeoutMs: 20_000 },
    );
    const voice = reply.voice;
    if (voice === undefined) throw new Error("no voice info in the trigger reply");
    const room = new Room();
    const replies: string[] = [];
    room.registerTextStreamHandler("lk.transcription", (reader) => {
      void reader.readAll().then((text) => replies.push(text));
    });
    await room.connect(voice.server_url, voice.user_token, { autoSubscribe: false, dynacast: false });
    try {
      await waitFor(
        "the agent's joined event",
        () => joined.find((subject) => subject.includes(reply.job_id)),
        {
          timeoutMs: 15_000,
        },
      );
      await room.localParticipant?.sendText(file.question, { topic: "lk.chat" });
      await waitFor("the agent's reply", () => replies[0], { timeoutMs: 15_000 });
      expect(systemText(promptFor(file.question))).toContain(file.answer);
      const conv = await waitFor("the recorded voice turn", async () => {
        const res = await api(s(), "GET", `/api/v2/clients/${t}/conversations/${reply.conversation_id}`);
        const rows = (res.body["transcripts"] ?? []) as Array<{
          role: string;
          source: string;
          citations: Array<{ document_id: string }>;
        }>;
        return rows.find((r) => r.role === "assistant");
      });
      expect(conv.source).toBe("voice");
      expect(conv.citations.map((c) => c.document_id)).toContain(doc?.id);
    } finally {
      events.unsubscribe();
      await room.disconnect();
    }
  }, 90_000);
});
