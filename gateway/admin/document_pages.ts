/**
 * Console pages for a client's knowledge base: the documents with their ingestion status (rows
 * still in progress poll their own fragment), the multipart upload (sent by HTMX, so the CSRF
 * token travels in its header), one document's page with its agent assignment, and delete. Every
 * action calls the same functions as the v2 document routes (routes/v2_documents.ts), audited as
 * the logged-in admin.
 */
import uws from "@trufflesuite/uws-js-unofficial";
import { PlatformOps, StoreErrorCodes, TenantOps } from "../../actors/index.ts";
import type { AgentRecord, ClientDetailView } from "../../actors/index.ts";
import { SfError } from "../../bus/index.ts";
import { publicError } from "../error_status.ts";
import { NotFoundError } from "../errors.ts";
import type { GatewayRequest, GatewayResponse, RouteDefinition } from "../http_types.ts";
import { clientIdParam } from "../routes/route_helpers.ts";
import { UUID_RE } from "../routes/schemas.ts";
import {
  deleteDocument,
  DOCUMENT_AGENTS_BODY,
  getDocument,
  listDocuments,
  setDocumentAgents,
  uploadBodyLimit,
  uploadDocument,
} from "../routes/v2_documents.ts";
import { assertMatches } from "../validation.ts";
import { consoleRoute } from "./console.ts";
import type { ConsoleDeps, ConsoleRequest } from "./console.ts";
import { html, redirect } from "./html.ts";
import {
  DeletedRow,
  DeletedStatus,
  DocumentPage,
  DocumentRow,
  DocumentsPage,
  DocumentStatusPanel,
  documentPath,
  documentsPath,
  NoDatabasePage,
  RowError,
  UploadForm,
} from "./views/documents.tsx";
import type { AgentRef, ClientRef, UploadValues } from "./views/documents.tsx";
import type { Viewer } from "./views/layout.tsx";

const PAGE_SIZE = 50;

/** The client these pages are about (404 for an unknown id); only its name, never its credentials. */
export async function clientRef(deps: ConsoleDeps, req: GatewayRequest): Promise<ClientRef> {
  const client = await deps.actors.platform<ClientDetailView>(
    PlatformOps.clientsGet,
    { id: clientIdParam(req) },
    req,
  );
  return { id: client.id, name: client.name, slug: client.slug };
}

/** The tenant's agents, by slug and name. */
export async function tenantAgents(
  deps: ConsoleDeps,
  clientId: string,
  req: GatewayRequest,
): Promise<AgentRef[]> {
  const agents = await deps.actors.tenant<AgentRecord[]>(clientId, TenantOps.listAgents, {}, req);
  return agents.map((a) => ({ id: a.id, slug: a.slug, name: a.name }));
}

/** The client has no tenant database yet: its tenant pages say so instead of an error. */
export function isNoDatabase(err: unknown): boolean {
  return err instanceof SfError && err.code === StoreErrorCodes.TENANT_DATABASE_NOT_CONFIGURED;
}

export function noDatabasePage(viewer: Viewer, client: ClientRef, what: string): GatewayResponse {
  return html(200, NoDatabasePage({ viewer, client, what }));
}

/** The `{documentId}` of a path; anything that is not a uuid names no document. */
function documentIdParam(req: GatewayRequest): string {
  const id = req.params["documentId"] ?? "";
  if (!UUID_RE.test(id)) {
    throw new NotFoundError("document not found", { details: { document_id: id.slice(0, 64) } });
  }
  return id.toLowerCase();
}

/** A non-negative page offset from the query (anything else is the first page). */
function offsetQuery(req: GatewayRequest): number {
  const raw = req.query["offset"] ?? "";
  return /^\d{1,7}$/.test(raw) ? Number(raw) : 0;
}

/** What the refused upload form shows again (the file itself cannot be). */
function uploadValues(req: GatewayRequest): UploadValues {
  const contentType = req.headers["content-type"] ?? "";
  if (!/^multipart\/form-data\s*;/i.test(contentType) || !/boundary=/i.test(contentType)) return {};
  const parts = uws.getParts(req.rawBody, contentType) ?? [];
  const text = (data: ArrayBuffer) => new TextDecoder().decode(data).trim().slice(0, 2000);
  const values: { title?: string; description?: string; agents: string[] } = { agents: [] };
  for (const part of parts) {
    if (part.name === "title") values.title = text(part.data);
    else if (part.name === "description") values.description = text(part.data);
    else if (part.name === "agent_slugs") values.agents.push(text(part.data));
  }
  return values;
}

const NOTICES: Readonly<Record<string, string>> = {
  uploaded: "Uploaded: the document is queued for ingestion.",
  duplicate: "This file was uploaded before: its document is listed below.",
  deleted: "Document deleted.",
};

export function documentPages(deps: ConsoleDeps): RouteDefinition[] {
  const { actors, maxUploadBytes } = deps;

  const documentPage = async (
    c: ConsoleRequest,
    status: number,
    extra: { notice?: string; error?: string } = {},
  ): Promise<GatewayResponse> => {
    const { req, viewer } = c;
    const client = await clientRef(deps, req);
    const documentId = documentIdParam(req);
    const [agents, { document }] = await Promise.all([
      tenantAgents(deps, client.id, req),
      getDocument(actors, client.id, documentId, req),
    ]);
    return html(status, DocumentPage({ viewer, client, doc: document, agents, ...extra }));
  };

  /** A refused form on the document's page: the reason, with the error's status (400 → 422). */
  const refused = async (c: ConsoleRequest, err: unknown): Promise<GatewayResponse> => {
    const e = publicError(err);
    if (e.status >= 500) throw err;
    // A document or client that is gone answers 404 from here.
    return documentPage(c, e.status === 400 ? 422 : e.status, { error: e.message });
  };

  return [
    consoleRoute(deps, {
      method: "GET",
      path: "/admin/clients/{id}/documents",
      operationId: "adminDocuments",
      summary: "A client's knowledge base: documents with their ingestion status, and the upload form",
      handler: async ({ req, viewer }) => {
        const client = await clientRef(deps, req);
        const offset = offsetQuery(req);
        const wanted = (req.query["agent_slug"] ?? "").trim();
        let agents: AgentRef[];
        try {
          agents = await tenantAgents(deps, client.id, req);
        } catch (err) {
          if (isNoDatabase(err)) return noDatabasePage(viewer, client, "Knowledge base");
          throw err;
        }
        // Only an agent of the list filters; anything else is said, and the whole list shown.
        const known = wanted === "" || agents.some((a) => a.slug === wanted);
        const agentSlug = known ? wanted : "";
        const { documents } = await listDocuments(
          actors,
          client.id,
          { limit: PAGE_SIZE, offset, ...(agentSlug === "" ? {} : { agentSlug }) },
          req,
        );
        const notice = Object.keys(NOTICES).find((k) => req.query[k] === "1");
        return html(
          known ? 200 : 404,
          DocumentsPage({
            viewer,
            client,
            documents,
            agents,
            maxUploadBytes,
            offset,
            pageSize: PAGE_SIZE,
            ...(agentSlug === "" ? {} : { agentSlug }),
            ...(notice === undefined ? {} : { notice: NOTICES[notice] }),
            ...(known ? {} : { error: `This client has no agent “${wanted.slice(0, 128)}”.` }),
          }),
        );
      },
    }),
    consoleRoute(deps, {
      method: "POST",
      path: "/admin/clients/{id}/documents",
      operationId: "adminDocumentUpload",
      summary: "Uploads a document (multipart, sent by HTMX with the CSRF header) and queues its ingestion",
      rawBody: true,
      maxBodyBytes: uploadBodyLimit(maxUploadBytes),
      handler: async ({ req, session, htmx }) => {
        const clientId = clientIdParam(req);
        try {
          const reply = await uploadDocument(actors, clientId, session.actor, req);
          return redirect(`${documentsPath(clientId)}?${reply.duplicate ? "duplicate" : "uploaded"}=1`, htmx);
        } catch (err) {
          const e = publicError(err);
          if (e.status >= 500 || e.status === 404) throw err;
          const agents = await tenantAgents(deps, clientId, req);
          return html(
            e.status === 400 ? 422 : e.status,
            UploadForm({ clientId, agents, maxUploadBytes, values: uploadValues(req), error: e.message }),
            { fragment: htmx },
          );
        }
      },
    }),
    consoleRoute(deps, {
      method: "GET",
      path: "/admin/clients/{id}/documents/{documentId}",
      operationId: "adminDocument",
      summary: "One document: ingestion status, file, agent assignment, delete",
      handler: (c) =>
        documentPage(c, 200, c.req.query["saved"] === "1" ? { notice: "Agent assignment saved." } : {}),
    }),
    consoleRoute(deps, {
      method: "GET",
      path: "/admin/clients/{id}/documents/{documentId}/row",
      operationId: "adminDocumentRow",
      summary: "A document's row of the list (HTMX polls it while ingestion runs)",
      handler: async ({ req }) => {
        const clientId = clientIdParam(req);
        const documentId = documentIdParam(req);
        try {
          const { document } = await getDocument(actors, clientId, documentId, req);
          return html(200, DocumentRow({ clientId, doc: document }), { fragment: true });
        } catch (err) {
          const e = publicError(err);
          if (e.status === 404) return html(404, DeletedRow({ documentId }), { fragment: true });
          return html(e.status, RowError({ clientId, documentId, message: e.message }), { fragment: true });
        }
      },
    }),
    consoleRoute(deps, {
      method: "GET",
      path: "/admin/clients/{id}/documents/{documentId}/status",
      operationId: "adminDocumentStatus",
      summary: "A document's status block (HTMX polls it on the document's page while ingestion runs)",
      handler: async ({ req }) => {
        const clientId = clientIdParam(req);
        const documentId = documentIdParam(req);
        try {
          const { document } = await getDocument(actors, clientId, documentId, req);
          return html(200, DocumentStatusPanel({ clientId, doc: document }), { fragment: true });
        } catch (err) {
          if (publicError(err).status === 404) return html(404, DeletedStatus(), { fragment: true });
          throw err;
        }
      },
    }),
    consoleRoute(deps, {
      method: "POST",
      path: "/admin/clients/{id}/documents/{documentId}/agents",
      operationId: "adminDocumentAgents",
      summary: "Sets exactly which agents a document is assigned to (the checked boxes)",
      handler: async (c) => {
        const { req, form, session } = c;
        const clientId = clientIdParam(req);
        const documentId = documentIdParam(req);
        const body = { agent_slugs: form.all("agent_slugs") };
        try {
          assertMatches(DOCUMENT_AGENTS_BODY, body);
          await setDocumentAgents(actors, clientId, session.actor, documentId, body.agent_slugs, req);
        } catch (err) {
          return refused(c, err);
        }
        return redirect(`${documentPath(clientId, documentId)}?saved=1`, c.htmx);
      },
    }),
    consoleRoute(deps, {
      method: "POST",
      path: "/admin/clients/{id}/documents/{documentId}/delete",
      operationId: "adminDocumentDelete",
      summary: "Deletes a document and its chunks once the box is ticked to confirm",
      handler: async (c) => {
        const { req, form, session } = c;
        const clientId = clientIdParam(req);
        const documentId = documentIdParam(req);
        if (form.get("confirm") !== "yes") {
          return documentPage(c, 422, { error: "Not deleted: tick the box to confirm." });
        }
        await deleteDocument(actors, clientId, session.actor, documentId, req);
        return redirect(`${documentsPath(clientId)}?deleted=1`, c.htmx);
      },
    }),
  ];
}
