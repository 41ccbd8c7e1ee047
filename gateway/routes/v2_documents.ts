/**
 * v2 documents and embeddings. Admins use `/api/v2/clients/{id}/documents…`; API-key holders use
 * `/api/v2/documents…` for their own tenant, with scope `documents:write` (uploads, deletes,
 * assignments) or `documents:read` (listing). An upload is `multipart/form-data` with one `file`
 * (text, Markdown, HTML or PDF) and optional `title`, `description`, `metadata` (JSON object),
 * `agent_slugs` (repeated, comma-separated or a JSON array), `source_url` and `file_type`; it is
 * answered 202 once the document is queued for ingestion (200 with `duplicate: true` when the
 * same content was uploaded before). Ingestion itself runs as a job; its progress is the
 * document's `status`.
 */
import uws from "@trufflesuite/uws-js-unofficial";
import type { ActorClient } from "../actor_client.ts";
import { detectFileType, DocumentOps, ForbiddenError } from "../../actors/index.ts";
import type { CreateDocumentReply, DocumentFileType, DocumentView } from "../../actors/index.ts";
import { BadRequestError, UnsupportedMediaTypeError } from "../errors.ts";
import { json } from "../http_types.ts";
import { parseClientJson } from "../request_parsing.ts";
import type { GatewayRequest, RouteDefinition } from "../http_types.ts";
import { requireScope } from "../auth/scopes.ts";
import type { Scope } from "../auth/scopes.ts";
import type { ApiRouteDeps } from "./route_helpers.ts";
import { clientIdParam, intQuery } from "./route_helpers.ts";
import { AGENT_SLUG_PATTERN_TEXT, UUID_PATTERN } from "./schemas.ts";

const TAGS = ["v2", "documents"] as const;
const ID = { type: "string", pattern: UUID_PATTERN };
const SLUGS = {
  type: "array",
  maxItems: 100,
  items: { type: "string", pattern: AGENT_SLUG_PATTERN_TEXT },
};

export const DOCUMENT_SCHEMA = {
  type: "object",
  required: ["id", "title", "status", "chunk_count", "agents", "created_at"],
  properties: {
    id: ID,
    title: { type: "string" },
    description: { type: ["string", "null"] },
    file_name: { type: ["string", "null"] },
    file_type: { type: ["string", "null"] },
    status: { type: "string", description: "queued, extracting, embedding 40/120, ready, failed: <reason>" },
    chunk_count: { type: "integer" },
    content_chars: { type: "integer" },
    size_bytes: { type: ["integer", "null"] },
    content_sha256: { type: ["string", "null"] },
    source_url: { type: ["string", "null"] },
    metadata: { type: "object" },
    agents: { type: "array", items: { type: "string" } },
    created_at: { type: "string" },
  },
};

const LIST_QUERY = {
  type: "object",
  properties: {
    limit: { type: "string", pattern: "^[0-9]{1,3}$" },
    offset: { type: "string", pattern: "^[0-9]{1,7}$" },
    agent_slug: { type: "string", pattern: AGENT_SLUG_PATTERN_TEXT },
  },
};

/** The body of PUT …/documents/{documentId}/agents (and of the console's assignment form). */
export const DOCUMENT_AGENTS_BODY = {
  type: "object",
  required: ["agent_slugs"],
  additionalProperties: false,
  properties: { agent_slugs: SLUGS },
};

const UPLOAD_FIELDS = new Set([
  "file",
  "title",
  "description",
  "metadata",
  "agent_slugs",
  "source_url",
  "file_type",
]);
const FILE_TYPES: readonly string[] = ["text", "markdown", "html", "pdf"];

const LIST_RESPONSE = {
  200: {
    description: "Documents, newest first",
    schema: {
      type: "object",
      required: ["documents"],
      properties: { documents: { type: "array", items: DOCUMENT_SCHEMA } },
    },
  },
};
const ONE_RESPONSE = {
  200: {
    description: "The document",
    schema: { type: "object", required: ["document"], properties: { document: DOCUMENT_SCHEMA } },
  },
};
const UPLOAD_RESPONSES = {
  202: {
    description: "Queued for ingestion",
    schema: {
      type: "object",
      required: ["document", "duplicate"],
      properties: { document: DOCUMENT_SCHEMA, duplicate: { type: "boolean" } },
    },
  },
  200: { description: "The same content was uploaded before: that document" },
};

function textPart(data: ArrayBuffer, field: string, max: number): string {
  const bytes = new Uint8Array(data);
  if (bytes.byteLength > max) {
    throw new BadRequestError(`form field ${field} is longer than ${max} bytes`, { details: { field } });
  }
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes).trim();
  } catch {
    throw new BadRequestError(`form field ${field} is not valid UTF-8`, { details: { field } });
  }
}

interface UploadBody extends Record<string, unknown> {
  file_name: string;
  file_type: DocumentFileType;
  data: Uint8Array;
}

/** Reads the multipart upload into the `documents-create` body (everything checked here or by the actor). */
export function parseUpload(req: GatewayRequest): UploadBody {
  const contentType = req.headers["content-type"] ?? "";
  if (!/^multipart\/form-data\s*;/i.test(contentType) || !/boundary=/i.test(contentType)) {
    throw new UnsupportedMediaTypeError("documents are uploaded as multipart/form-data with a boundary", {
      details: { content_type: contentType.slice(0, 100) },
    });
  }
  const parts = uws.getParts(req.rawBody, contentType);
  if (parts === undefined || parts.length === 0) {
    throw new BadRequestError("the multipart body could not be read", { details: { field: "file" } });
  }
  const body: Record<string, unknown> = {};
  const slugs: string[] = [];
  let file: { name: string; type: string | undefined; data: Uint8Array } | undefined;
  for (const part of parts) {
    if (!UPLOAD_FIELDS.has(part.name)) {
      throw new BadRequestError(`unknown form field ${JSON.stringify(part.name.slice(0, 64))}`, {
        details: { field: part.name.slice(0, 64) },
      });
    }
    if (part.name === "file") {
      if (file !== undefined)
        throw new BadRequestError("send one file per upload", { details: { field: "file" } });
      const name = (part.filename ?? "").trim();
      if (name === "")
        throw new BadRequestError("the file part needs a filename", { details: { field: "file" } });
      // Copied: uWS's parts are views into the request body.
      file = { name: name.slice(0, 255), type: part.type, data: new Uint8Array(part.data.slice(0)) };
      continue;
    }
    const value = textPart(part.data, part.name, 64 * 1024);
    switch (part.name) {
      case "agent_slugs":
        if (value.startsWith("[")) {
          let parsed: unknown;
          try {
            parsed = parseClientJson(value, "agent_slugs");
          } catch (err) {
            throw new BadRequestError((err as Error).message, {
              cause: err,
              details: { field: "agent_slugs" },
            });
          }
          if (!Array.isArray(parsed)) {
            throw new BadRequestError("agent_slugs must be a JSON array of slugs", {
              details: { field: "agent_slugs" },
            });
          }
          slugs.push(...parsed.map(String));
        } else {
          slugs.push(
            ...value
              .split(",")
              .map((s) => s.trim())
              .filter((s) => s !== ""),
          );
        }
        break;
      case "metadata": {
        let parsed: unknown;
        try {
          parsed = parseClientJson(value, "metadata");
        } catch (err) {
          throw new BadRequestError((err as Error).message, { cause: err, details: { field: "metadata" } });
        }
        if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
          throw new BadRequestError("metadata must be a JSON object", { details: { field: "metadata" } });
        }
        body["metadata"] = parsed;
        break;
      }
      default:
        if (value !== "") body[part.name] = value;
    }
  }
  if (file === undefined)
    throw new BadRequestError("the upload has no file part", { details: { field: "file" } });
  if (file.data.byteLength === 0)
    throw new BadRequestError("the file is empty", { details: { field: "file" } });
  const declared = body["file_type"];
  let fileType: DocumentFileType | null;
  if (declared !== undefined) {
    if (typeof declared !== "string" || !FILE_TYPES.includes(declared)) {
      throw new BadRequestError(`file_type must be one of ${FILE_TYPES.join(", ")}`, {
        details: { field: "file_type" },
      });
    }
    fileType = declared as DocumentFileType;
  } else {
    fileType = detectFileType(file.name, file.type ?? null, file.data.subarray(0, 1024));
  }
  if (fileType === null) {
    throw new UnsupportedMediaTypeError("unsupported document type: upload text, Markdown, HTML or PDF", {
      details: { field: "file", file_name: file.name },
    });
  }
  if (slugs.length > 0) body["agent_slugs"] = slugs;
  return { ...body, file_name: file.name, file_type: fileType, data: file.data };
}

/** The request body limit of an upload route: the file plus the form's other fields. */
export function uploadBodyLimit(maxUploadBytes: number): number {
  return maxUploadBytes + 64 * 1024;
}

/*
 * The tenant's document operations as the v2 routes and the console call them (one place for
 * each op's body).
 */

/** Reads the multipart upload and queues the document (the reply says whether it was a duplicate). */
export function uploadDocument(
  actors: ActorClient,
  clientId: string,
  actor: string,
  req: GatewayRequest,
): Promise<CreateDocumentReply> {
  const body = parseUpload(req);
  return actors.tenant<CreateDocumentReply>(clientId, DocumentOps.createDocument, { actor, ...body }, req);
}

export interface DocumentListPage {
  /** 1–500 (clamped). */
  limit?: number;
  offset?: number;
  agentSlug?: string;
}

/** The client's documents, newest first. */
export function listDocuments(
  actors: ActorClient,
  clientId: string,
  page: DocumentListPage,
  req: GatewayRequest,
): Promise<{ documents: DocumentView[] }> {
  return actors.tenant<{ documents: DocumentView[] }>(
    clientId,
    DocumentOps.listDocuments,
    {
      ...(page.limit === undefined ? {} : { limit: Math.max(1, Math.min(page.limit, 500)) }),
      ...(page.offset === undefined ? {} : { offset: page.offset }),
      ...(page.agentSlug === undefined ? {} : { agent_slug: page.agentSlug }),
    },
    req,
  );
}

export function getDocument(
  actors: ActorClient,
  clientId: string,
  documentId: string,
  req: GatewayRequest,
): Promise<{ document: DocumentView }> {
  return actors.tenant(clientId, DocumentOps.getDocument, { document_id: documentId }, req);
}

/** Deletes the document and its chunks (audited as `actor`). */
export function deleteDocument(
  actors: ActorClient,
  clientId: string,
  actor: string,
  documentId: string,
  req: GatewayRequest,
): Promise<{ deleted: true; document_id: string }> {
  return actors.tenant(clientId, DocumentOps.deleteDocument, { actor, document_id: documentId }, req);
}

/** Sets exactly which agents the document is assigned to (audited as `actor`). */
export function setDocumentAgents(
  actors: ActorClient,
  clientId: string,
  actor: string,
  documentId: string,
  agentSlugs: readonly string[],
  req: GatewayRequest,
): Promise<{ document: DocumentView }> {
  return actors.tenant(
    clientId,
    DocumentOps.setDocumentAgents,
    { actor, document_id: documentId, agent_slugs: agentSlugs },
    req,
  );
}

export interface DocumentRouteOptions {
  /** Largest upload body (the file plus the form's other fields). */
  maxUploadBytes: number;
}

export function v2DocumentRoutes(deps: ApiRouteDeps, options: DocumentRouteOptions): RouteDefinition[] {
  const { auth, actors } = deps;
  const uploadLimit = uploadBodyLimit(options.maxUploadBytes);

  const upload = async (req: GatewayRequest, clientId: string, actor: string) => {
    const reply = await uploadDocument(actors, clientId, actor, req);
    return json(reply.duplicate ? 200 : 202, reply);
  };
  const list = async (req: GatewayRequest, clientId: string) => {
    const limit = intQuery(req, "limit");
    const offset = intQuery(req, "offset");
    const agentSlug = req.query["agent_slug"];
    const page: DocumentListPage = {
      ...(limit === undefined ? {} : { limit }),
      ...(offset === undefined ? {} : { offset }),
      ...(agentSlug === undefined ? {} : { agentSlug }),
    };
    return json(200, await listDocuments(actors, clientId, page, req));
  };
  const documentId = (req: GatewayRequest): string => (req.params["documentId"] ?? "").toLowerCase();
  const get = async (req: GatewayRequest, clientId: string) =>
    json(200, await getDocument(actors, clientId, documentId(req), req));
  const remove = async (req: GatewayRequest, clientId: string, actor: string) =>
    json(200, await deleteDocument(actors, clientId, actor, documentId(req), req));
  const setAgents = async (req: GatewayRequest, clientId: string, actor: string) =>
    json(
      200,
      await setDocumentAgents(
        actors,
        clientId,
        actor,
        documentId(req),
        (req.body as { agent_slugs: string[] }).agent_slugs,
        req,
      ),
    );

  const adminParams = { type: "object", properties: { id: ID } };
  const adminDocParams = { type: "object", properties: { id: ID, documentId: ID } };
  const keyDocParams = { type: "object", properties: { documentId: ID } };
  /** The API key's own tenant, after its scope is checked. */
  const keyTenant = async (req: GatewayRequest, scope: Extract<Scope, `documents:${string}`>) => {
    const principal = await auth.authenticate(req);
    if (principal.type !== "api_key") {
      throw new ForbiddenError("this route is for API keys; admins use /api/v2/clients/{id}/documents");
    }
    requireScope(principal, scope);
    return principal;
  };

  return [
    {
      method: "POST",
      path: "/api/v2/clients/{id}/documents",
      operationId: "v2UploadDocument",
      summary: "Uploads a document (multipart) and queues its ingestion",
      tags: TAGS,
      schema: { params: adminParams },
      maxBodyBytes: uploadLimit,
      responses: UPLOAD_RESPONSES,
      handler: async (req) => {
        const admin = await auth.admin(req);
        return upload(req, clientIdParam(req), admin.actor);
      },
    },
    {
      method: "GET",
      path: "/api/v2/clients/{id}/documents",
      operationId: "v2ListDocuments",
      summary: "The client's documents with their ingestion status",
      tags: TAGS,
      schema: { params: adminParams, query: LIST_QUERY },
      responses: LIST_RESPONSE,
      handler: async (req) => {
        await auth.admin(req);
        return list(req, clientIdParam(req));
      },
    },
    {
      method: "GET",
      path: "/api/v2/clients/{id}/documents/{documentId}",
      operationId: "v2GetDocument",
      summary: "One document of the client",
      tags: TAGS,
      schema: { params: adminDocParams },
      responses: ONE_RESPONSE,
      handler: async (req) => {
        await auth.admin(req);
        return get(req, clientIdParam(req));
      },
    },
    {
      method: "DELETE",
      path: "/api/v2/clients/{id}/documents/{documentId}",
      operationId: "v2DeleteDocument",
      summary: "Deletes a document and its chunks",
      tags: TAGS,
      schema: { params: adminDocParams },
      responses: { 200: { description: "Deleted" } },
      handler: async (req) => {
        const admin = await auth.admin(req);
        return remove(req, clientIdParam(req), admin.actor);
      },
    },
    {
      method: "PUT",
      path: "/api/v2/clients/{id}/documents/{documentId}/agents",
      operationId: "v2SetDocumentAgents",
      summary: "Sets exactly which agents a document is assigned to",
      tags: TAGS,
      schema: { params: adminDocParams, body: DOCUMENT_AGENTS_BODY },
      responses: ONE_RESPONSE,
      handler: async (req) => {
        const admin = await auth.admin(req);
        return setAgents(req, clientIdParam(req), admin.actor);
      },
    },
    {
      method: "GET",
      path: "/api/v2/clients/{id}/embeddings",
      operationId: "v2EmbeddingStatus",
      summary:
        "The client's embedding settings, what its stored vectors were made with, and whether they are stale",
      tags: TAGS,
      schema: { params: adminParams },
      responses: { 200: { description: "Embedding status" } },
      handler: async (req) => {
        await auth.admin(req);
        return json(200, await actors.tenant(clientIdParam(req), DocumentOps.embeddingStatus, {}, req));
      },
    },
    {
      method: "POST",
      path: "/api/v2/clients/{id}/embeddings/reembed",
      operationId: "v2Reembed",
      summary: "Re-embeds every document and transcript of the client with its current embedding settings",
      tags: TAGS,
      schema: { params: adminParams },
      responses: { 202: { description: "Re-embedding queued" } },
      handler: async (req) => {
        const admin = await auth.admin(req);
        return json(
          202,
          await actors.tenant(clientIdParam(req), DocumentOps.reembed, { actor: admin.actor }, req),
        );
      },
    },
    {
      method: "POST",
      path: "/api/v2/documents",
      cors: "tenant",
      operationId: "v2UploadOwnDocument",
      summary: "Uploads a document to the API key's own tenant (scope documents:write)",
      tags: TAGS,
      maxBodyBytes: uploadLimit,
      responses: UPLOAD_RESPONSES,
      handler: async (req) => {
        const key = await keyTenant(req, "documents:write");
        return upload(req, key.clientId, key.actor);
      },
    },
    {
      method: "GET",
      path: "/api/v2/documents",
      cors: "tenant",
      operationId: "v2ListOwnDocuments",
      summary: "The API key's tenant's documents (scope documents:read)",
      tags: TAGS,
      schema: { query: LIST_QUERY },
      responses: LIST_RESPONSE,
      handler: async (req) => {
        const key = await keyTenant(req, "documents:read");
        return list(req, key.clientId);
      },
    },
    {
      method: "GET",
      path: "/api/v2/documents/{documentId}",
      cors: "tenant",
      operationId: "v2GetOwnDocument",
      summary: "One document of the API key's tenant (scope documents:read)",
      tags: TAGS,
      schema: { params: keyDocParams },
      responses: ONE_RESPONSE,
      handler: async (req) => {
        const key = await keyTenant(req, "documents:read");
        return get(req, key.clientId);
      },
    },
    {
      method: "DELETE",
      path: "/api/v2/documents/{documentId}",
      cors: "tenant",
      operationId: "v2DeleteOwnDocument",
      summary: "Deletes a document of the API key's tenant (scope documents:write)",
      tags: TAGS,
      schema: { params: keyDocParams },
      responses: { 200: { description: "Deleted" } },
      handler: async (req) => {
        const key = await keyTenant(req, "documents:write");
        return remove(req, key.clientId, key.actor);
      },
    },
    {
      method: "PUT",
      path: "/api/v2/documents/{documentId}/agents",
      cors: "tenant",
      operationId: "v2SetOwnDocumentAgents",
      summary: "Sets which agents a document of the API key's tenant is assigned to (scope documents:write)",
      tags: TAGS,
      schema: { params: keyDocParams, body: DOCUMENT_AGENTS_BODY },
      responses: ONE_RESPONSE,
      handler: async (req) => {
        const key = await keyTenant(req, "documents:write");
        return setAgents(req, key.clientId, key.actor);
      },
    },
  ];
}
