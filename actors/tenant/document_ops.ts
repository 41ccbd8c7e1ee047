/**
 * The tenant actor's documents and retrieval: uploads become documents (id = hash of the content,
 * so the same file twice is one document) assigned to agents, and one ingestion job each on
 * SF_INGEST; workers report progress, write chunks with their embeddings and read retrieval
 * results through here. Every write of a worker names the document's generation and the
 * embedding fingerprint it used: a write for an older generation, or with vectors of other
 * settings than the tenant's stored ones, is refused, so a slow or redelivered job never mixes
 * versions. Retrieval runs both RPCs of SEED_CONTRACT.md on the tenant's own database.
 */
import { createHash, randomUUID } from "node:crypto";
import type { Logger } from "pino";
import { SfError } from "../../bus/index.ts";
import { InvalidArgumentError } from "../errors.ts";
import { DOCUMENT_FILE_TYPES } from "../dispatch/ingest_job.ts";
import type { DocumentFileType, IngestJob } from "../dispatch/ingest_job.ts";
import {
  actorField,
  objectBody,
  onlyFields,
  optionalInt,
  optionalObject,
  optionalString,
  optionalStringArray,
  stringField,
  uuidField,
} from "../platform/op_input.ts";
import type { OpBody } from "../platform/op_input.ts";
import { StoreErrorCodes, VectorUnavailableError } from "../store/index.ts";
import type {
  AgentRecord,
  ChunkInput,
  ClientSettings,
  DocumentMatch,
  DocumentRecord,
  EmbeddingIndexInfo,
  EmbeddingSettings,
  TenantStore,
  TranscriptMatch,
} from "../store/index.ts";
import type { AuditWriter } from "./agent_ops.ts";
import { AGENT_SLUG_PATTERN } from "./agent_ops.ts";
import { asUuid } from "./dispatch_ops.ts";
import { providerKeys } from "./provider_keys.ts";
import {
  agentRagSettings,
  describeFingerprint,
  embeddingFingerprint,
  embeddingsNotConfiguredError,
  fingerprintKey,
  RagErrorCodes,
  staleEmbeddingsError,
} from "./rag_settings.ts";
import type { EmbeddingFingerprint } from "./rag_settings.ts";

export const DocumentOps = {
  createDocument: "documents-create",
  listDocuments: "documents-list",
  getDocument: "document-get",
  deleteDocument: "document-delete",
  setDocumentAgents: "document-agents",
  reembed: "embeddings-reembed",
  embeddingStatus: "embeddings-status",
  // Workers.
  ingestContext: "ingest-context",
  documentProgress: "document-progress",
  documentChunks: "document-chunks",
  transcriptsPage: "transcripts-page",
  transcriptEmbeddings: "transcript-embeddings",
  ragSearch: "rag-search",
} as const;

export const DOCUMENT_READ_ONLY_OPS = [
  DocumentOps.listDocuments,
  DocumentOps.getDocument,
  DocumentOps.embeddingStatus,
  DocumentOps.ingestContext,
  DocumentOps.transcriptsPage,
  DocumentOps.ragSearch,
] as const;

/** The tenant's client settings (platform database), cached by the host and dropped on change. */
export interface TenantSettingsAccess {
  get(tenant: string): Promise<ClientSettings>;
  /** Records what the tenant's stored vectors are made with. */
  setEmbeddingIndex(tenant: string, index: EmbeddingIndexInfo): Promise<void>;
}

/** Publishes an ingestion job to SF_INGEST (deduplicated by `msgId`). */
export type IngestPublisher = (job: IngestJob, msgId: string) => Promise<void>;

export interface TenantDocumentsOptions {
  tenant: string;
  store: () => Promise<TenantStore>;
  log: Logger;
  settings?: TenantSettingsAccess;
  publish?: IngestPublisher;
  audit?: AuditWriter;
  /** Largest upload accepted. Default 6 MiB (below NATS max_payload with room for headers). */
  maxUploadBytes?: number;
}

/** A document as the API shows it (no content, no embeddings). */
export interface DocumentView {
  id: string;
  title: string;
  description: string | null;
  file_name: string | null;
  file_type: string | null;
  status: string;
  chunk_count: number;
  content_chars: number;
  size_bytes: number | null;
  content_sha256: string | null;
  source_url: string | null;
  metadata: Record<string, unknown>;
  agents: string[];
  created_at: string;
}

export interface CreateDocumentReply {
  document: DocumentView;
  /** The same content was uploaded before: nothing new was queued. */
  duplicate: boolean;
}

/** What an ingestion worker needs (keys decrypted: only for workers, never logged). */
export interface IngestContextReply {
  current: boolean;
  embedding: EmbeddingSettings;
  fingerprint: EmbeddingFingerprint;
  provider_keys: Record<string, string>;
  /** The stored text, when the job re-embeds without the original file. */
  content?: string;
}

export interface RagSearchReply {
  documents: DocumentMatch[];
  transcripts: TranscriptMatch[];
  timings: { documents_ms: number; transcripts_ms: number };
}

/** What job-context tells a worker about retrieval for an agent. */
export interface RagJobInfo {
  embedding: EmbeddingSettings | null;
  /** Documents enabled for this agent. */
  documents: number;
}

/** Our bookkeeping inside `documents.metadata` (user metadata sits beside it). */
interface DocumentBookkeeping {
  generation: number;
  content_sha256?: string;
  size_bytes?: number;
  description?: string | null;
  source_url?: string | null;
  embedding?: string;
}

const SF_KEY = "sf";
const MAX_STATUS_CHARS = 500;

function bookkeeping(doc: DocumentRecord): DocumentBookkeeping {
  const raw = doc.metadata[SF_KEY];
  const sf = typeof raw === "object" && raw !== null ? (raw as Record<string, unknown>) : {};
  return {
    generation: typeof sf["generation"] === "number" ? sf["generation"] : 0,
    ...(typeof sf["content_sha256"] === "string" ? { content_sha256: sf["content_sha256"] } : {}),
    ...(typeof sf["size_bytes"] === "number" ? { size_bytes: sf["size_bytes"] } : {}),
    ...(typeof sf["description"] === "string" ? { description: sf["description"] } : {}),
    ...(typeof sf["source_url"] === "string" ? { source_url: sf["source_url"] } : {}),
    ...(typeof sf["embedding"] === "string" ? { embedding: sf["embedding"] } : {}),
  };
}

function withBookkeeping(doc: DocumentRecord, patch: Partial<DocumentBookkeeping>): Record<string, unknown> {
  return { ...doc.metadata, [SF_KEY]: { ...bookkeeping(doc), ...patch } };
}

function fileTypeField(op: string, body: OpBody): DocumentFileType {
  const v = body["file_type"];
  if (typeof v !== "string" || !(DOCUMENT_FILE_TYPES as readonly string[]).includes(v)) {
    throw new InvalidArgumentError(`${op}: "file_type" must be one of ${DOCUMENT_FILE_TYPES.join(", ")}`, {
      details: { field: "file_type" },
    });
  }
  return v as DocumentFileType;
}

function vectorField(op: string, value: unknown, field: string): number[] {
  if (!Array.isArray(value) || value.length === 0 || value.length > 16_000) {
    throw new InvalidArgumentError(`${op}: "${field}" must be an array of numbers`, { details: { field } });
  }
  for (const x of value) {
    if (typeof x !== "number" || !Number.isFinite(x)) {
      throw new InvalidArgumentError(`${op}: "${field}" must hold finite numbers`, { details: { field } });
    }
  }
  return value as number[];
}

function generationField(op: string, body: OpBody): number {
  const v = body["generation"];
  if (typeof v !== "number" || !Number.isInteger(v) || v < 1) {
    throw new InvalidArgumentError(`${op}: "generation" must be a positive integer`, {
      details: { field: "generation" },
    });
  }
  return v;
}

export class TenantDocuments {
  readonly #o: TenantDocumentsOptions & { maxUploadBytes: number };
  /** Agents' enabled document counts, dropped whenever assignments or agents change. */
  #agentDocCounts = new Map<string, number>();

  constructor(options: TenantDocumentsOptions) {
    this.#o = { maxUploadBytes: 6 * 1024 * 1024, ...options };
  }

  /** Agents changed: assignment counts must be read again. */
  invalidate(): void {
    this.#agentDocCounts.clear();
  }

  handle(op: string, body: unknown): Promise<unknown> | undefined {
    switch (op) {
      case DocumentOps.createDocument:
        return this.#create(objectBody(op, body));
      case DocumentOps.listDocuments:
        return this.#list(objectBody(op, body ?? {}));
      case DocumentOps.getDocument:
        return this.#get(objectBody(op, body));
      case DocumentOps.deleteDocument:
        return this.#delete(objectBody(op, body));
      case DocumentOps.setDocumentAgents:
        return this.#setAgents(objectBody(op, body));
      case DocumentOps.reembed:
        return this.#reembed(objectBody(op, body));
      case DocumentOps.embeddingStatus:
        return this.#embeddingStatus();
      case DocumentOps.ingestContext:
        return this.#ingestContext(objectBody(op, body));
      case DocumentOps.documentProgress:
        return this.#progress(objectBody(op, body));
      case DocumentOps.documentChunks:
        return this.#chunks(objectBody(op, body));
      case DocumentOps.transcriptsPage:
        return this.#transcriptsPage(objectBody(op, body));
      case DocumentOps.transcriptEmbeddings:
        return this.#transcriptEmbeddings(objectBody(op, body));
      case DocumentOps.ragSearch:
        return this.#ragSearch(objectBody(op, body));
      default:
        return undefined;
    }
  }

  // --- settings and the embedding index ------------------------------------------------------

  async #settings(): Promise<ClientSettings> {
    if (this.#o.settings === undefined) return {};
    return this.#o.settings.get(this.#o.tenant);
  }

  /** The tenant's embedding settings, or null when it has none. */
  async embeddingSettings(): Promise<EmbeddingSettings | null> {
    const embedding = (await this.#settings()).embedding;
    return embedding !== undefined &&
      embedding !== null &&
      typeof embedding.provider === "string" &&
      embedding.provider.trim() !== ""
      ? embedding
      : null;
  }

  /**
   * The fingerprint queries and stored vectors share. Throws when the tenant has no embedding
   * settings, when its database cannot hold vectors, or when its stored vectors were made with
   * other settings (until it re-embeds).
   */
  async #currentIndex(
    store: TenantStore,
    what: string,
  ): Promise<{ settings: EmbeddingSettings; fingerprint: EmbeddingFingerprint }> {
    const all = await this.#settings();
    const settings = all.embedding;
    if (
      settings === undefined ||
      settings === null ||
      typeof settings.provider !== "string" ||
      settings.provider.trim() === ""
    ) {
      throw embeddingsNotConfiguredError(what);
    }
    if (!store.capabilities.vector) {
      throw new VectorUnavailableError(`${what} needs the vector extension in the tenant's database`);
    }
    const wanted = embeddingFingerprint(settings);
    const stored = store.capabilities.embeddingDimension;
    if (stored !== null && stored !== wanted.dimension) {
      throw staleEmbeddingsError(
        this.#o.tenant,
        `vectors of ${stored} dimensions (the tenant database's columns)`,
        describeFingerprint(wanted),
      );
    }
    const index = all.embedding_index;
    if (index === undefined || index === null) {
      // First use: nothing was embedded under other settings.
      await this.#o.settings?.setEmbeddingIndex(this.#o.tenant, {
        ...wanted,
        updated_at: new Date().toISOString(),
      });
      return { settings, fingerprint: wanted };
    }
    const indexed = embeddingFingerprint(index);
    if (fingerprintKey(indexed) !== fingerprintKey(wanted)) {
      throw staleEmbeddingsError(this.#o.tenant, describeFingerprint(indexed), describeFingerprint(wanted));
    }
    return { settings, fingerprint: wanted };
  }

  #requireFingerprint(op: string, body: OpBody, current: EmbeddingFingerprint): void {
    const sent = optionalObject(op, body, "fingerprint");
    const key = sent === undefined ? "" : fingerprintKey(embeddingFingerprint(sent));
    if (key !== fingerprintKey(current)) {
      throw new SfError(
        RagErrorCodes.STALE_JOB,
        `${op}: the vectors were made with other embedding settings than the tenant's current ones`,
        { details: { current: describeFingerprint(current) } },
      );
    }
  }

  // --- agents and views -----------------------------------------------------------------------

  async #agentsBySlug(store: TenantStore, slugs: readonly string[]): Promise<AgentRecord[]> {
    const unique = [...new Set(slugs)];
    return Promise.all(unique.map((slug) => store.getAgent(slug)));
  }

  /** Document id → slugs of the agents it is enabled for. */
  async #assignments(store: TenantStore): Promise<Map<string, string[]>> {
    const out = new Map<string, string[]>();
    for (const agent of await store.listAgents()) {
      for (const row of await store.listAgentDocuments(agent.id)) {
        if (!row.enabled) continue;
        const list = out.get(row.documentId) ?? [];
        list.push(agent.slug);
        out.set(row.documentId, list);
      }
    }
    return out;
  }

  #view(doc: DocumentRecord, agents: string[]): DocumentView {
    const sf = bookkeeping(doc);
    const metadata = { ...doc.metadata };
    delete metadata[SF_KEY];
    return {
      id: doc.id,
      title: doc.title,
      description: sf.description ?? null,
      file_name: doc.fileName,
      file_type: doc.fileType,
      status: doc.status,
      chunk_count: doc.chunkCount,
      content_chars: doc.content?.length ?? 0,
      size_bytes: sf.size_bytes ?? null,
      content_sha256: sf.content_sha256 ?? null,
      source_url: sf.source_url ?? null,
      metadata,
      agents: [...agents].sort(),
      created_at: doc.createdAt.toISOString(),
    };
  }

  /** How many enabled documents an agent has (cached until documents or agents change). */
  async documentCount(store: TenantStore, agent: AgentRecord): Promise<number> {
    const cached = this.#agentDocCounts.get(agent.id);
    if (cached !== undefined) return cached;
    const count = (await store.listAgentDocuments(agent.id)).filter((row) => row.enabled).length;
    this.#agentDocCounts.set(agent.id, count);
    return count;
  }

  async ragInfo(store: TenantStore, agent: AgentRecord): Promise<RagJobInfo> {
    return { embedding: await this.embeddingSettings(), documents: await this.documentCount(store, agent) };
  }

  // --- API operations -------------------------------------------------------------------------

  async #create(body: OpBody): Promise<CreateDocumentReply> {
    const op = DocumentOps.createDocument;
    onlyFields(op, body, [
      "actor",
      "title",
      "description",
      "file_name",
      "file_type",
      "data",
      "metadata",
      "agent_slugs",
      "source_url",
    ]);
    const actor = actorField(op, body);
    const data = body["data"];
    if (!(data instanceof Uint8Array) || data.byteLength === 0) {
      throw new InvalidArgumentError(`${op}: "data" must hold the file's bytes`, {
        details: { field: "data" },
      });
    }
    if (data.byteLength > this.#o.maxUploadBytes) {
      throw new SfError(
        "SF_ERR_PAYLOAD_TOO_LARGE",
        `the file has ${data.byteLength} bytes, the limit is ${this.#o.maxUploadBytes}`,
        {
          details: { field: "data", limit: this.#o.maxUploadBytes },
        },
      );
    }
    const fileType = fileTypeField(op, body);
    const fileName = optionalString(op, body, "file_name", { max: 255 }) ?? null;
    const description = optionalString(op, body, "description", { max: 2000 }) ?? null;
    const sourceUrl = optionalString(op, body, "source_url", { max: 2000 }) ?? null;
    const userMetadata = optionalObject(op, body, "metadata") ?? {};
    if (SF_KEY in userMetadata) {
      throw new InvalidArgumentError(`${op}: metadata key "${SF_KEY}" is reserved`, {
        details: { field: "metadata" },
      });
    }
    const slugs =
      optionalStringArray(op, body, "agent_slugs", { maxItems: 100, pattern: AGENT_SLUG_PATTERN }) ?? [];
    const title = optionalString(op, body, "title", { max: 500 }) ?? fileName ?? "Untitled document";

    const store = await this.#o.store();
    const agents = await this.#agentsBySlug(store, slugs);
    const sha = createHash("sha256").update(data).digest("hex");
    const id = asUuid(`document:${this.#o.tenant}`, sha);
    const existing = await findDocument(store, id);
    if (existing !== null && !existing.status.startsWith("failed")) {
      for (const agent of agents) await store.assignDocument(agent.id, id);
      if (agents.length > 0) this.invalidate();
      const assignments = await this.#assignments(store);
      return { document: this.#view(existing, assignments.get(id) ?? []), duplicate: true };
    }
    const generation = existing === null ? 1 : bookkeeping(existing).generation + 1;
    const sf: DocumentBookkeeping = {
      generation,
      content_sha256: sha,
      size_bytes: data.byteLength,
      description,
      source_url: sourceUrl,
    };
    const doc =
      existing === null
        ? await store.createDocument({
            id,
            title,
            fileName,
            fileType,
            status: "queued",
            metadata: { ...userMetadata, [SF_KEY]: sf },
          })
        : await store.updateDocument(id, {
            title,
            fileName,
            fileType,
            status: "queued",
            metadata: { ...userMetadata, [SF_KEY]: sf },
          });
    for (const agent of agents) await store.assignDocument(agent.id, id);
    this.invalidate();
    await this.#queue({
      jobId: randomUUID(),
      tenant: this.#o.tenant,
      mode: "ingest",
      kind: "document",
      documentId: id,
      generation,
      fileType,
      data,
      title,
      sourceUrl,
      createdAt: Date.now(),
    });
    await this.#o.audit?.({
      clientId: this.#o.tenant,
      actor,
      action: "document.create",
      target: id,
      details: { title, file_type: fileType, size_bytes: data.byteLength, agents: slugs },
    });
    this.#o.log.info({ documentId: id, fileType, bytes: data.byteLength, generation }, "document queued");
    return {
      document: this.#view(
        doc,
        agents.map((a) => a.slug),
      ),
      duplicate: false,
    };
  }

  async #queue(job: IngestJob): Promise<void> {
    if (this.#o.publish === undefined) {
      throw new SfError("SF_ERR_MODE_UNAVAILABLE", "this host does not queue ingestion jobs", {
        details: { mode: "ingest" },
      });
    }
    const msgId =
      job.kind === "document" ? `${job.documentId}.${job.generation}` : `transcripts.${job.generation}`;
    await this.#o.publish(job, msgId);
  }

  async #list(body: OpBody): Promise<{ documents: DocumentView[] }> {
    const op = DocumentOps.listDocuments;
    onlyFields(op, body, ["limit", "offset", "agent_slug"]);
    const limit = optionalInt(op, body, "limit", 1, 500) ?? 100;
    const offset = optionalInt(op, body, "offset", 0, 1_000_000) ?? 0;
    const agentSlug = optionalString(op, body, "agent_slug", { max: 128, pattern: AGENT_SLUG_PATTERN });
    const store = await this.#o.store();
    const assignments = await this.#assignments(store);
    let docs = await store.listDocuments({ limit, offset });
    if (agentSlug !== undefined) {
      await store.getAgent(agentSlug);
      docs = docs.filter((d) => (assignments.get(d.id) ?? []).includes(agentSlug));
    }
    return { documents: docs.map((d) => this.#view(d, assignments.get(d.id) ?? [])) };
  }

  async #get(body: OpBody): Promise<{ document: DocumentView }> {
    const op = DocumentOps.getDocument;
    onlyFields(op, body, ["document_id"]);
    const id = uuidField(op, body, "document_id");
    const store = await this.#o.store();
    const doc = await store.getDocument(id);
    const assignments = await this.#assignments(store);
    return { document: this.#view(doc, assignments.get(id) ?? []) };
  }

  async #delete(body: OpBody): Promise<{ deleted: true; document_id: string }> {
    const op = DocumentOps.deleteDocument;
    onlyFields(op, body, ["actor", "document_id"]);
    const actor = actorField(op, body);
    const id = uuidField(op, body, "document_id");
    const store = await this.#o.store();
    const doc = await store.getDocument(id);
    await store.deleteDocument(id);
    this.invalidate();
    await this.#o.audit?.({
      clientId: this.#o.tenant,
      actor,
      action: "document.delete",
      target: id,
      details: { title: doc.title },
    });
    return { deleted: true, document_id: id };
  }

  async #setAgents(body: OpBody): Promise<{ document: DocumentView }> {
    const op = DocumentOps.setDocumentAgents;
    onlyFields(op, body, ["actor", "document_id", "agent_slugs"]);
    const actor = actorField(op, body);
    const id = uuidField(op, body, "document_id");
    const slugs = optionalStringArray(op, body, "agent_slugs", {
      maxItems: 100,
      pattern: AGENT_SLUG_PATTERN,
    });
    if (slugs === undefined) {
      throw new InvalidArgumentError(`${op}: "agent_slugs" is required`, {
        details: { field: "agent_slugs" },
      });
    }
    const store = await this.#o.store();
    const doc = await store.getDocument(id);
    const wanted = await this.#agentsBySlug(store, slugs);
    const wantedIds = new Set(wanted.map((a) => a.id));
    for (const agent of await store.listAgents()) {
      const assigned = (await store.listAgentDocuments(agent.id)).some((r) => r.documentId === id);
      if (wantedIds.has(agent.id)) await store.assignDocument(agent.id, id, { enabled: true });
      else if (assigned) await store.unassignDocument(agent.id, id);
    }
    this.invalidate();
    await this.#o.audit?.({
      clientId: this.#o.tenant,
      actor,
      action: "document.assign",
      target: id,
      details: { agents: slugs },
    });
    return {
      document: this.#view(
        doc,
        wanted.map((a) => a.slug),
      ),
    };
  }

  async #embeddingStatus(): Promise<Record<string, unknown>> {
    const settings = await this.#settings();
    const store = await this.#o.store();
    const configured = settings.embedding ? embeddingFingerprint(settings.embedding) : null;
    const indexed = settings.embedding_index ? embeddingFingerprint(settings.embedding_index) : null;
    const columns = store.capabilities.embeddingDimension;
    const stale =
      configured !== null &&
      ((indexed !== null && fingerprintKey(indexed) !== fingerprintKey(configured)) ||
        (columns !== null && columns !== configured.dimension));
    return {
      configured,
      indexed,
      column_dimension: columns,
      stale,
      indexed_at: settings.embedding_index?.updated_at ?? null,
    };
  }

  /**
   * Re-embeds everything under the tenant's current settings: clears every stored vector (and
   * changes the columns' dimension where the database allows it), records the new fingerprint,
   * then queues every document again from its stored text, and the transcripts.
   */
  async #reembed(
    body: OpBody,
  ): Promise<{ documents: number; transcripts: boolean; fingerprint: EmbeddingFingerprint }> {
    const op = DocumentOps.reembed;
    onlyFields(op, body, ["actor"]);
    const actor = actorField(op, body);
    const settings = await this.embeddingSettings();
    if (settings === null) throw embeddingsNotConfiguredError("re-embedding");
    const fingerprint = embeddingFingerprint(settings);
    const store = await this.#o.store();
    await store.resetEmbeddings(fingerprint.dimension);
    await this.#o.settings?.setEmbeddingIndex(this.#o.tenant, {
      ...fingerprint,
      updated_at: new Date().toISOString(),
    });
    let queued = 0;
    const run = Date.now();
    for (let offset = 0; ; offset += 500) {
      const page = await store.listDocuments({ limit: 500, offset });
      for (const summary of page) {
        const doc = await store.getDocument(summary.id);
        const sf = bookkeeping(doc);
        const generation = sf.generation + 1;
        if (doc.content === null || doc.content.trim() === "") {
          await store.updateDocument(doc.id, {
            status: "failed: the document's text was never extracted; upload the file again",
            metadata: withBookkeeping(doc, { generation }),
          });
          continue;
        }
        await store.updateDocument(doc.id, {
          status: "queued",
          metadata: withBookkeeping(doc, { generation }),
        });
        await this.#queue({
          jobId: randomUUID(),
          tenant: this.#o.tenant,
          mode: "ingest",
          kind: "document",
          documentId: doc.id,
          generation,
          fileType: "markdown",
          title: doc.title,
          sourceUrl: sf.source_url ?? null,
          createdAt: Date.now(),
        });
        queued += 1;
      }
      if (page.length < 500) break;
    }
    await this.#queue({
      jobId: randomUUID(),
      tenant: this.#o.tenant,
      mode: "ingest",
      kind: "transcripts",
      generation: run,
      createdAt: Date.now(),
    });
    await this.#o.audit?.({
      clientId: this.#o.tenant,
      actor,
      action: "embeddings.reembed",
      target: null,
      details: { documents: queued, embedding: describeFingerprint(fingerprint) },
    });
    this.#o.log.info(
      { documents: queued, embedding: describeFingerprint(fingerprint) },
      "re-embedding queued",
    );
    return { documents: queued, transcripts: true, fingerprint };
  }

  // --- worker operations ----------------------------------------------------------------------

  async #currentDocument(
    store: TenantStore,
    op: string,
    body: OpBody,
  ): Promise<{ doc: DocumentRecord; current: boolean }> {
    const id = uuidField(op, body, "document_id");
    const generation = generationField(op, body);
    const doc = await store.getDocument(id);
    return { doc, current: bookkeeping(doc).generation === generation };
  }

  #stale(op: string, doc: DocumentRecord): SfError {
    return new SfError(
      RagErrorCodes.STALE_JOB,
      `${op}: document ${doc.id} was queued again since this job started`,
      {
        details: { document_id: doc.id },
      },
    );
  }

  async #ingestContext(body: OpBody): Promise<IngestContextReply> {
    const op = DocumentOps.ingestContext;
    onlyFields(op, body, ["document_id", "generation", "with_content"]);
    const store = await this.#o.store();
    const { settings, fingerprint } = await this.#currentIndex(store, "ingestion");
    const keys = await providerKeys(store);
    if (body["document_id"] === undefined) {
      return { current: true, embedding: settings, fingerprint, provider_keys: keys };
    }
    const { doc, current } = await this.#currentDocument(store, op, body);
    const reply: IngestContextReply = { current, embedding: settings, fingerprint, provider_keys: keys };
    if (body["with_content"] === true && doc.content !== null) reply.content = doc.content;
    return reply;
  }

  async #progress(body: OpBody): Promise<{ status: string; current: boolean }> {
    const op = DocumentOps.documentProgress;
    onlyFields(op, body, [
      "document_id",
      "generation",
      "status",
      "content",
      "title",
      "chunk_count",
      "fingerprint",
    ]);
    const rawStatus = stringField(op, body, "status", { max: 10_000 });
    const status =
      rawStatus.length > MAX_STATUS_CHARS ? `${rawStatus.slice(0, MAX_STATUS_CHARS - 1)}…` : rawStatus;
    const content = body["content"];
    if (content !== undefined && (typeof content !== "string" || content.length > 50_000_000)) {
      throw new InvalidArgumentError(`${op}: "content" must be a string`, { details: { field: "content" } });
    }
    const title = optionalString(op, body, "title", { max: 500 });
    const chunkCount = optionalInt(op, body, "chunk_count", 0, 10_000_000);
    const store = await this.#o.store();
    const { doc, current } = await this.#currentDocument(store, op, body);
    if (!current) return { status: doc.status, current: false };
    if (status === "ready") {
      if (chunkCount === undefined) {
        throw new InvalidArgumentError(`${op}: "chunk_count" is required with status ready`, {
          details: { field: "chunk_count" },
        });
      }
      const { fingerprint } = await this.#currentIndex(store, "ingestion");
      this.#requireFingerprint(op, body, fingerprint);
      await store.deleteChunksFrom(doc.id, chunkCount);
      await store.updateDocument(doc.id, {
        status,
        metadata: withBookkeeping(doc, { embedding: fingerprintKey(fingerprint) }),
      });
      this.invalidate();
      return { status, current: true };
    }
    await store.updateDocument(doc.id, {
      status,
      ...(typeof content === "string" ? { content } : {}),
      ...(title !== undefined && doc.title === doc.fileName ? { title } : {}),
    });
    return { status, current: true };
  }

  async #chunks(body: OpBody): Promise<{ written: number }> {
    const op = DocumentOps.documentChunks;
    onlyFields(op, body, ["document_id", "generation", "fingerprint", "chunks"]);
    const raw = body["chunks"];
    if (!Array.isArray(raw) || raw.length === 0 || raw.length > 512) {
      throw new InvalidArgumentError(`${op}: "chunks" must be an array of 1 to 512 chunks`, {
        details: { field: "chunks" },
      });
    }
    const store = await this.#o.store();
    const { doc, current } = await this.#currentDocument(store, op, body);
    if (!current) throw this.#stale(op, doc);
    const { fingerprint } = await this.#currentIndex(store, "ingestion");
    this.#requireFingerprint(op, body, fingerprint);
    const sourceUrl = bookkeeping(doc).source_url ?? null;
    const chunks: ChunkInput[] = raw.map((item: unknown, i) => {
      const c = objectBody(`${op} chunks[${i}]`, item);
      const index = c["chunk_index"];
      if (typeof index !== "number" || !Number.isInteger(index) || index < 0) {
        throw new InvalidArgumentError(`${op}: chunks[${i}].chunk_index must be a non-negative integer`, {
          details: { field: "chunks" },
        });
      }
      const content = c["content"];
      if (typeof content !== "string" || content.trim() === "" || content.length > 100_000) {
        throw new InvalidArgumentError(`${op}: chunks[${i}].content must be non-empty text`, {
          details: { field: "chunks" },
        });
      }
      const meta = c["chunk_metadata"];
      return {
        chunkIndex: index,
        content,
        embedding: vectorField(op, c["embedding"], `chunks[${i}].embedding`),
        chunkMetadata:
          typeof meta === "object" && meta !== null && !Array.isArray(meta)
            ? (meta as Record<string, unknown>)
            : {},
        documentTitle: doc.title,
        documentSourceUrl: sourceUrl,
      };
    });
    return { written: await store.upsertChunks(doc.id, chunks) };
  }

  async #transcriptsPage(
    body: OpBody,
  ): Promise<{ rows: Array<{ id: string; turn_id: string | null; content: string }> }> {
    const op = DocumentOps.transcriptsPage;
    onlyFields(op, body, ["after_id", "limit"]);
    const after = body["after_id"] === undefined ? undefined : uuidField(op, body, "after_id");
    const limit = optionalInt(op, body, "limit", 1, 500) ?? 100;
    const store = await this.#o.store();
    const rows = await store.listTranscriptsForEmbedding({
      ...(after === undefined ? {} : { afterId: after }),
      limit,
    });
    return { rows: rows.map((r) => ({ id: r.id, turn_id: r.turnId, content: r.content })) };
  }

  async #transcriptEmbeddings(body: OpBody): Promise<{ written: number }> {
    const op = DocumentOps.transcriptEmbeddings;
    onlyFields(op, body, ["fingerprint", "items"]);
    const raw = body["items"];
    if (!Array.isArray(raw) || raw.length === 0 || raw.length > 512) {
      throw new InvalidArgumentError(`${op}: "items" must be an array of 1 to 512 items`, {
        details: { field: "items" },
      });
    }
    const store = await this.#o.store();
    const { fingerprint } = await this.#currentIndex(store, "transcript embeddings");
    this.#requireFingerprint(op, body, fingerprint);
    let written = 0;
    for (const [i, item] of raw.entries()) {
      const it = objectBody(`${op} items[${i}]`, item);
      const turnId = uuidField(op, it, "turn_id");
      if (
        await store.setTranscriptEmbedding(turnId, vectorField(op, it["embedding"], `items[${i}].embedding`))
      ) {
        written += 1;
      }
    }
    return { written };
  }

  async #ragSearch(body: OpBody): Promise<RagSearchReply> {
    const op = DocumentOps.ragSearch;
    onlyFields(op, body, ["agent_slug", "user_id", "embedding", "conversation_embedding", "fingerprint"]);
    const slug = stringField(op, body, "agent_slug", { max: 128, pattern: AGENT_SLUG_PATTERN });
    const externalUser = stringField(op, body, "user_id", { max: 200 });
    const embedding = vectorField(op, body["embedding"], "embedding");
    const conversationEmbedding =
      body["conversation_embedding"] === undefined
        ? embedding
        : vectorField(op, body["conversation_embedding"], "conversation_embedding");
    const store = await this.#o.store();
    const agent = await store.getAgent(slug);
    const { fingerprint } = await this.#currentIndex(store, "retrieval");
    this.#requireFingerprint(op, body, fingerprint);
    const rag = agentRagSettings(agent);
    const timed = async <T>(fn: () => Promise<T>): Promise<{ value: T; ms: number }> => {
      const started = performance.now();
      const value = await fn();
      return { value, ms: performance.now() - started };
    };
    const [documents, transcripts] = await Promise.all([
      rag.documentCount === 0 || (await this.documentCount(store, agent)) === 0
        ? { value: [] as DocumentMatch[], ms: 0 }
        : timed(() =>
            store.matchDocuments({
              embedding,
              agentSlug: slug,
              threshold: rag.matchThreshold,
              count: rag.documentCount,
            }),
          ),
      rag.transcriptCount === 0
        ? { value: [] as TranscriptMatch[], ms: 0 }
        : timed(() =>
            store.matchConversationTranscriptsSecure({
              embedding: conversationEmbedding,
              agentSlug: slug,
              userId: asUuid(`user:${this.#o.tenant}`, externalUser),
              count: rag.transcriptCount,
            }),
          ),
    ]);
    return {
      documents: documents.value,
      transcripts: transcripts.value.filter((t) => t.similarity >= rag.matchThreshold),
      timings: { documents_ms: documents.ms, transcripts_ms: transcripts.ms },
    };
  }
}

async function findDocument(store: TenantStore, id: string): Promise<DocumentRecord | null> {
  try {
    return await store.getDocument(id);
  } catch (err) {
    if (err instanceof SfError && err.code === StoreErrorCodes.NOT_FOUND) return null;
    throw err;
  }
}
