/**
 * The voice job: read the agent, the tenant's provider keys and the room's LiveKit URL and agent
 * token through the tenant actor (the API secret never leaves the actor), resolve the agent's
 * providers (no fallback: a misconfigured one fails the job naming it), join the room, say
 * `joined`, and run the session until it ends; the consumer then records `done` and acks.
 */
import type { NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "pino";
import { requestReply, SfError, toWireError } from "../../bus/index.ts";
import { redactTokens } from "../../actors/index.ts";
import type { Subjects } from "../../bus/index.ts";
import type { DispatchJob, HistoryTurn, JobContextReply } from "../../actors/index.ts";
import { providerSettingsForAgent, resolveProviders } from "../providers/resolve_providers.ts";
import type { ProviderClientOptions } from "../providers/resolve_providers.ts";
import type { RagMetrics } from "../rag/rag_metrics.ts";
import type { ProviderEndpoints } from "../providers/registry.ts";
import type { JobContext } from "../worker/job_consumer.ts";
import { listRoomUsers } from "./room_presence.ts";
import { VoiceSession } from "./voice_session.ts";
import type { RecordedExchange } from "./voice_session.ts";
import { embedTurn, retrievalDeps, retrieve, turnEmbedder } from "../rag/retrieval.ts";

export const VoiceJobErrorCodes = {
  /** A voice job without a room, or a job context without LiveKit access. */
  INVALID_VOICE_JOB: "SF_ERR_INVALID_VOICE_JOB",
  /** Joining the LiveKit room failed. */
  ROOM_JOIN_FAILED: "SF_ERR_ROOM_JOIN_FAILED",
} as const;

export interface VoiceJobOptions {
  nc: NatsConnection;
  subjects: Subjects;
  log: Logger;
  endpoints?: ProviderEndpoints;
  providerOptions?: ProviderClientOptions;
  /** Where retrieval's step durations are reported. Default: nowhere. */
  ragMetrics?: RagMetrics;
  /** Deadline of each call to the tenant actor. Default 10000 ms. */
  actorTimeoutMs?: number;
  /** How long the agent stays in a room nobody joins. Default 30000 ms. */
  emptyRoomTimeoutMs?: number;
  /** Turns of the conversation kept in the prompt. Default 20. */
  windowTurns?: number;
  /** How often the session asks the server who is in the room. Default 2000 ms. */
  presencePollMs?: number;
  /** How long a reply in progress may finish after the last user left. Default 10000 ms. */
  drainTimeoutMs?: number;
  /** How long closing the agent session, then leaving the room, may each take. Default 5000 ms. */
  closeTimeoutMs?: number;
  /** How long joining the room and starting the agent in it may take. Default 30000 ms. */
  joinTimeoutMs?: number;
}

/**
 * The turn's metadata: the documents retrieval used, who spoke (`participant_identity`, the
 * LiveKit identity of the user whose turn was answered; `participant_identities` when the answer
 * covers turns of several users), and the turn's `timings` (ms, turn_timings.ts).
 */
function turnMetadata(exchange: RecordedExchange): { metadata?: Record<string, unknown> } {
  const metadata: Record<string, unknown> = {};
  if (exchange.documentIds.length > 0) metadata["rag"] = { document_ids: exchange.documentIds };
  const last = exchange.speakers[exchange.speakers.length - 1];
  if (last !== undefined) metadata["participant_identity"] = last;
  if (exchange.speakers.length > 1) metadata["participant_identities"] = exchange.speakers;
  // The turn's own timings (ms), shown per turn in the console's transcript view.
  if (Object.keys(exchange.timings).length > 0) metadata["timings"] = exchange.timings;
  return Object.keys(metadata).length === 0 ? {} : { metadata };
}

export function voiceJobHandler(
  options: VoiceJobOptions,
): (job: DispatchJob, ctx: JobContext) => Promise<void> {
  const { nc, subjects } = options;
  const actorTimeoutMs = options.actorTimeoutMs ?? 10_000;
  return async (job, ctx) => {
    const log = options.log.child({ tenant: job.tenant, jobId: job.jobId, room: job.roomName });
    if (job.roomName === undefined || job.roomName === "") {
      throw new SfError(VoiceJobErrorCodes.INVALID_VOICE_JOB, "a voice job needs a room name", {
        details: { missing: "roomName" },
      });
    }
    const { body: context } = await requestReply<JobContextReply>(
      nc,
      subjects.tenantOp(job.tenant, "job-context"),
      { agent_slug: job.agentSlug, room_name: job.roomName, job_id: job.jobId },
      { tenant: job.tenant, timeoutMs: actorTimeoutMs },
    );
    if (context.livekit === undefined) {
      throw new SfError(VoiceJobErrorCodes.INVALID_VOICE_JOB, "the job context has no LiveKit access", {
        details: { missing: "livekit" },
      });
    }
    // Speech when the agent names a speech provider; then both must be usable (no fallback).
    const vs = context.agent.voiceSettings;
    const speech = Boolean(vs?.stt_provider ?? vs?.tts_provider ?? vs?.provider);
    const settings = (kinds: readonly ("llm" | "stt" | "tts")[]) =>
      resolveProviders(
        providerSettingsForAgent(context.agent, kinds),
        context.provider_keys,
        options.endpoints ?? {},
        options.providerOptions ?? {},
      );
    const clients = speech ? settings(["llm", "stt", "tts"] as const) : settings(["llm"] as const);
    const { llm } = clients;
    const history = (job as DispatchJob & { history?: HistoryTurn[] }).history ?? [];
    const livekit = context.livekit;
    const ragDeps = retrievalDeps(options, actorTimeoutMs);
    const embedder = turnEmbedder(
      { agent: context.agent, rag: context.rag, providerKeys: context.provider_keys },
      ragDeps,
    );
    const session = new VoiceSession({
      livekit: context.livekit,
      llm,
      ...(speech && "stt" in clients && "tts" in clients
        ? {
            stt: clients.stt,
            tts: clients.tts,
            // Deepgram: transcribed live over its streaming API as the user speaks.
            sttLive: clients.sttLive,
          }
        : {}),
      systemPrompt: context.agent.systemPrompt,
      history,
      windowTurns: context.agent.maxContextMessages ?? options.windowTurns ?? 20,
      log,
      emptyRoomTimeoutMs: options.emptyRoomTimeoutMs ?? 30_000,
      signal: ctx.signal,
      presence: () =>
        listRoomUsers({
          url: livekit.url,
          roomName: livekit.room_name,
          token: livekit.token,
          selfIdentity: livekit.identity,
        }),
      presencePollMs: options.presencePollMs ?? 2000,
      ...(options.drainTimeoutMs === undefined ? {} : { drainTimeoutMs: options.drainTimeoutMs }),
      ...(options.closeTimeoutMs === undefined ? {} : { closeTimeoutMs: options.closeTimeoutMs }),
      ...(options.joinTimeoutMs === undefined ? {} : { joinTimeoutMs: options.joinTimeoutMs }),
      onFirstAnswer: () => ctx.event("answered"),
      record: async (exchange) => {
        await requestReply(
          nc,
          subjects.tenantOp(job.tenant, "turn-record"),
          {
            job_id: job.jobId,
            turn_id: exchange.turnId,
            source: "voice",
            conversation_id: job.conversationId,
            session_id: job.sessionId,
            agent_slug: job.agentSlug,
            user_id: job.userId,
            user_message: exchange.user,
            assistant_message: exchange.assistant,
            citations: exchange.citations,
            ...turnMetadata(exchange),
          },
          { tenant: job.tenant, timeoutMs: actorTimeoutMs },
        );
        // Off the conversation's path: the turn's embedding serves later retrieval.
        if (embedder !== null) {
          await embedTurn(ragDeps, job.tenant, embedder, exchange.turnId, exchange.user, ctx.signal).catch(
            (err: unknown) => log.warn({ err: toWireError(err) }, "the turn's embedding was not written"),
          );
        }
      },
      retrieve: async (text, signal) => {
        const found = await retrieve(
          {
            tenant: job.tenant,
            agent: context.agent,
            rag: context.rag,
            providerKeys: context.provider_keys,
            query: text,
            userId: job.userId,
            signal,
          },
          ragDeps,
        );
        return found === null
          ? null
          : {
              message: found.context.message,
              citations: found.context.citations,
              documentIds: found.context.documentIds,
            };
      },
    });
    try {
      await session.join();
    } catch (err) {
      await session.close();
      throw new SfError(VoiceJobErrorCodes.ROOM_JOIN_FAILED, "could not join the LiveKit room", {
        retryable: true,
        details: {
          room_name: job.roomName,
          reason: err instanceof Error ? redactTokens(err.message).slice(0, 200) : "unknown",
        },
      });
    }
    log.info({ identity: context.livekit.identity }, "voice agent joined");
    try {
      await ctx.event("joined");
    } catch (err) {
      await session.close();
      throw err;
    }
    const reason = await session.run();
    log.info({ reason }, "voice session ended");
  };
}
