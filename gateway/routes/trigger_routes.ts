/**
 * Triggering an agent: `POST /api/v1/trigger-agent` (the legacy envelope of SEED_CONTRACT.md,
 * kept exactly), `POST /api/v2/trigger-agent` (v2 style) and the Server-Sent Events stream
 * `POST /api/embed/text/stream`. Text replies stream from the worker over NATS (no polling);
 * voice is forwarded to the tenant actor, which answers with the room and the user's token.
 */
import { randomUUID } from "node:crypto";
import type { SchemaObject } from "ajv/dist/2020.js";
import { errorResponse } from "../error_status.ts";
import { MissingFieldError, ModeNotSupportedError, ValidationError } from "../errors.ts";
import { json } from "../http_types.ts";
import type { GatewayRequest, GatewayResponse, Handler, RouteDefinition } from "../http_types.ts";
import { idempotencyKey, pickJobId, pickSession } from "../chat/trigger_service.ts";
import type { TenantCaller, TriggerService } from "../chat/trigger_service.ts";
import type { TextTurnResult } from "../chat/text_turn.ts";
import { AGENT_SLUG_PATTERN_TEXT, UUID_PATTERN } from "./schemas.ts";
import { textTurnStream } from "./text_stream.ts";

interface TriggerBody {
  agent_slug: string;
  mode?: "text" | "voice" | "video";
  user_id: string;
  client_id?: string;
  message?: string;
  room_name?: string;
  platform?: string;
  session_id?: string;
  conversation_id?: string;
  context?: Record<string, unknown>;
}

const TRIGGER_FIELDS: Record<string, SchemaObject> = {
  agent_slug: { type: "string", pattern: AGENT_SLUG_PATTERN_TEXT },
  mode: { enum: ["text", "voice", "video"] },
  user_id: { type: "string", minLength: 1, maxLength: 200 },
  client_id: { type: "string", pattern: UUID_PATTERN },
  message: { type: "string", maxLength: 32_000 },
  room_name: { type: "string", maxLength: 128 },
  platform: { type: "string", maxLength: 64 },
  session_id: { type: "string", maxLength: 200 },
  conversation_id: { type: "string", maxLength: 200 },
  context: { type: "object" },
};

/** Legacy clients may send fields we do not know: they are ignored, not refused. */
export const V1_TRIGGER_BODY: SchemaObject = {
  type: "object",
  required: ["agent_slug", "user_id"],
  properties: TRIGGER_FIELDS,
};

export const V2_TRIGGER_BODY: SchemaObject = {
  type: "object",
  required: ["agent_slug", "user_id"],
  additionalProperties: false,
  properties: TRIGGER_FIELDS,
};

export const EMBED_STREAM_BODY: SchemaObject = {
  type: "object",
  required: ["agent_slug", "user_id", "message"],
  properties: { ...TRIGGER_FIELDS, message: { type: "string", minLength: 1, maxLength: 32_000 } },
};

const CITATIONS = { type: "array", items: { type: "object" } };

const AGENT_INFO_SCHEMA: SchemaObject = {
  type: "object",
  required: ["slug", "name", "client_id", "client_name", "voice_provider", "voice_id"],
  properties: {
    slug: { type: "string" },
    name: { type: "string" },
    client_id: { type: "string" },
    client_name: { type: "string" },
    voice_provider: { type: ["string", "null"] },
    voice_id: { type: ["string", "null"] },
  },
};

const V1_REPLY_SCHEMA: SchemaObject = {
  type: "object",
  required: ["success", "message", "data", "agent_info"],
  properties: {
    success: { const: true },
    message: { type: "string" },
    data: {
      type: "object",
      description:
        "Text: mode, user_id, conversation_id, response, agent_response, ai_response, citations. " +
        "Voice: mode, room_name, platform, conversation_id, livekit_config, room_info, dispatch_info.",
      properties: {
        mode: { enum: ["text", "voice"] },
        user_id: { type: "string" },
        conversation_id: { type: "string" },
        response: { type: "string" },
        agent_response: { type: "string" },
        ai_response: { type: "string" },
        citations: CITATIONS,
        room_name: { type: "string" },
        platform: { type: "string" },
        livekit_config: {
          type: "object",
          required: ["server_url", "user_token", "configured"],
          properties: {
            server_url: { type: "string" },
            user_token: { type: "string" },
            configured: { const: true },
          },
        },
        room_info: {
          type: "object",
          properties: { room_name: { type: "string" }, status: { type: "string" } },
        },
        dispatch_info: { type: "object", properties: { status: { type: "string" } } },
      },
    },
    agent_info: AGENT_INFO_SCHEMA,
  },
};

const V2_REPLY_SCHEMA: SchemaObject = {
  type: "object",
  required: ["job_id", "conversation_id", "mode", "agent", "timings"],
  properties: {
    job_id: { type: "string" },
    conversation_id: { type: "string" },
    session_id: { type: "string" },
    mode: { enum: ["text", "voice"] },
    response: { type: "string" },
    citations: CITATIONS,
    room_name: { type: "string" },
    room_status: { type: "string" },
    server_url: { type: "string" },
    user_token: { type: "string" },
    worker_id: { type: "string" },
    agent: { type: "object" },
    timings: {
      type: "object",
      properties: {
        claim_ms: { type: "number" },
        first_token_ms: { type: ["number", "null"] },
        total_ms: { type: "number" },
      },
    },
  },
};

/** Legacy answers 422 for anything that fails validation, the handler's own checks included. */
function legacyValidation(handler: Handler): Handler {
  return async (req) => {
    try {
      return await handler(req);
    } catch (err) {
      if (err instanceof ValidationError) return errorResponse(err, 422);
      throw err;
    }
  };
}

/** The fields the mode needs, checked after authentication (400 as the contract says). */
function checkMode(body: TriggerBody, defaultMode: "text" | "voice"): "text" | "voice" {
  const mode = body.mode ?? defaultMode;
  if (mode === "video") throw new ModeNotSupportedError(mode);
  if (mode === "text" && (body.message === undefined || body.message.trim() === "")) {
    throw new MissingFieldError("message", mode);
  }
  if (mode === "voice" && (body.room_name === undefined || body.room_name === "")) {
    throw new MissingFieldError("room_name", mode);
  }
  return mode;
}

/** The trigger body the tenant actor takes (mode, session and job ids are added by the call). */
function actorBody(body: TriggerBody): Record<string, unknown> & { agent_slug: string; user_id: string } {
  return {
    agent_slug: body.agent_slug,
    user_id: body.user_id,
    ...(body.message === undefined ? {} : { message: body.message }),
    ...(body.room_name === undefined ? {} : { room_name: body.room_name }),
    ...(body.conversation_id === undefined ? {} : { conversation_id: body.conversation_id }),
    ...(body.context === undefined ? {} : { context: body.context }),
  };
}

export function triggerRoutes(svc: TriggerService): RouteDefinition[] {
  /** Authenticate, resolve the tenant, check the mode, take a rate-limit token. */
  const admit = async (
    req: GatewayRequest,
    body: TriggerBody,
    defaultMode: "text" | "voice",
  ): Promise<{ caller: TenantCaller; mode: "text" | "voice"; clientName: string }> => {
    const caller = await svc.tenantOf(req, body.client_id);
    const mode = checkMode(body, defaultMode);
    await svc.limit(caller);
    const clientName = await svc.clientName(caller.tenant, req);
    return { caller, mode, clientName };
  };

  const runText = (req: GatewayRequest, tenant: string, body: TriggerBody): Promise<TextTurnResult> => {
    const key = idempotencyKey(req);
    return svc.text({
      tenant,
      ...pickSession(body.session_id),
      jobId: key ?? randomUUID(),
      idempotent: key !== undefined,
      body: { ...actorBody(body), message: body.message ?? "" },
      traceId: req.id,
      signal: req.signal,
    });
  };

  const v1: Handler = async (req) => {
    const body = req.body as TriggerBody;
    // The legacy service answered voice when no mode was given.
    const { caller, mode, clientName } = await admit(req, body, "voice");
    const agentInfo = (agent: {
      slug: string;
      name: string;
      voice_provider: string | null;
      voice_id: string | null;
    }) => ({
      slug: agent.slug,
      name: agent.name,
      client_id: caller.tenant,
      client_name: clientName,
      voice_provider: agent.voice_provider,
      voice_id: agent.voice_id,
    });
    if (mode === "text") {
      const turn = await runText(req, caller.tenant, body);
      return json(200, {
        success: true,
        message: "Agent replied",
        data: {
          mode: "text",
          user_id: body.user_id,
          conversation_id: turn.conversationId,
          response: turn.text,
          agent_response: turn.text,
          ai_response: turn.text,
          citations: turn.citations,
        },
        agent_info: agentInfo(turn.reply.agent),
      });
    }
    const { reply, voice } = await svc.voice(caller.tenant, actorBody(body), pickJobId(req), req);
    return json(200, {
      success: true,
      message: "Agent dispatched to the room",
      data: {
        mode: "voice",
        room_name: voice.room_name,
        platform: body.platform ?? "livekit",
        conversation_id: reply.conversation_id,
        livekit_config: { server_url: voice.server_url, user_token: voice.user_token, configured: true },
        room_info: { room_name: voice.room_name, status: voice.room_status },
        dispatch_info: {
          status: "claimed",
          job_id: reply.job_id,
          worker_id: reply.worker_id,
          claim_ms: reply.claim_ms,
        },
      },
      agent_info: agentInfo(reply.agent),
    });
  };

  const v2: Handler = async (req) => {
    const body = req.body as TriggerBody;
    const { caller, mode } = await admit(req, body, "text");
    if (mode === "text") {
      const turn = await runText(req, caller.tenant, body);
      return json(200, {
        job_id: turn.reply.job_id,
        conversation_id: turn.conversationId,
        session_id: turn.reply.session_id,
        mode: "text",
        response: turn.text,
        citations: turn.citations,
        worker_id: turn.reply.worker_id,
        agent: { slug: turn.reply.agent.slug, name: turn.reply.agent.name },
        timings: turn.timings,
      });
    }
    const started = performance.now();
    const { reply, voice } = await svc.voice(caller.tenant, actorBody(body), pickJobId(req), req);
    return json(200, {
      job_id: reply.job_id,
      conversation_id: reply.conversation_id,
      mode: "voice",
      room_name: voice.room_name,
      room_status: voice.room_status,
      server_url: voice.server_url,
      user_token: voice.user_token,
      worker_id: reply.worker_id,
      agent: { slug: reply.agent.slug, name: reply.agent.name },
      timings: {
        claim_ms: reply.claim_ms,
        first_token_ms: null,
        total_ms: Math.round((performance.now() - started) * 100) / 100,
      },
    });
  };

  const embedStream: Handler = async (req): Promise<GatewayResponse> => {
    const body = req.body as TriggerBody;
    const { caller } = await admit(req, { ...body, mode: "text" }, "text");
    return textTurnStream(svc, {
      tenant: caller.tenant,
      ...pickSession(body.session_id),
      jobId: pickJobId(req),
      idempotent: idempotencyKey(req) !== undefined,
      body: { ...actorBody(body), message: body.message ?? "" },
      traceId: req.id,
    });
  };

  return [
    {
      method: "POST",
      path: "/api/v1/trigger-agent",
      operationId: "v1TriggerAgent",
      summary:
        "Triggers an agent (legacy): text answers the reply, voice the room and the user's token. " +
        "A retry with the same Idempotency-Key answers the same job",
      tags: ["v1"],
      validationStatus: 422,
      cors: "tenant",
      schema: { body: V1_TRIGGER_BODY },
      responses: { 200: { description: "The legacy success envelope", schema: V1_REPLY_SCHEMA } },
      handler: legacyValidation(v1),
    },
    {
      method: "POST",
      path: "/api/v2/trigger-agent",
      operationId: "v2TriggerAgent",
      summary:
        "Triggers an agent of the API key's client: text answers the reply with timings. " +
        "A retry with the same Idempotency-Key answers the same job",
      tags: ["v2"],
      cors: "tenant",
      schema: { body: V2_TRIGGER_BODY },
      responses: { 200: { description: "The job and its reply", schema: V2_REPLY_SCHEMA } },
      handler: v2,
    },
    {
      method: "POST",
      path: "/api/embed/text/stream",
      operationId: "embedTextStream",
      summary:
        'Streams a text reply as Server-Sent Events: `:stream-open`, `data: {"delta"}`…, then `done` or `error`',
      tags: ["v1", "embed"],
      validationStatus: 422,
      cors: "tenant",
      schema: { body: EMBED_STREAM_BODY },
      responses: { 200: { description: "An event stream", contentType: "text/event-stream" } },
      handler: legacyValidation(embedStream),
    },
  ];
}
