/**
 * The text job: read the agent and the tenant's provider keys through the tenant actor, retrieve
 * (the agent's documents and the user's relevant past turns, see rag/retrieval.ts), build the
 * prompt (system prompt, retrieved context, the conversation's recent turns, the user's message), stream the
 * configured LLM's answer token by token to `<prefix>.chat.<session>.out` (or the gateway inbox the
 * job names, see `chatSubject`), record the turn through
 * the tenant actor, then send the final message. No room, no cold start, no polling; and no
 * fallback: a misconfigured provider fails the job with an error naming it. Once the reply is out,
 * the user's message is embedded for later retrieval, off the chat path.
 */
import type { NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "pino";
import { encodeBody, requestReply, toWireError } from "../../bus/index.ts";
import type { Subjects } from "../../bus/index.ts";
import { chatSubject } from "../../actors/index.ts";
import type {
  ChatFrame,
  DispatchJob,
  HistoryTurn,
  JobContextReply,
  TextJobResult,
} from "../../actors/index.ts";
import { JobSupersededError } from "../errors.ts";
import { providerSettingsForAgent, resolveProviders } from "../providers/resolve_providers.ts";
import type { ProviderClientOptions } from "../providers/resolve_providers.ts";
import type { RagMetrics } from "../rag/rag_metrics.ts";
import type { ProviderEndpoints } from "../providers/registry.ts";
import type { ChatMessage } from "../providers/llm_client.ts";
import type { JobContext } from "../worker/job_consumer.ts";
import { embedTurn, retrievalDeps, retrieve, turnEmbedder } from "../rag/retrieval.ts";

export interface TextJobOptions {
  nc: NatsConnection;
  subjects: Subjects;
  log: Logger;
  /** Per-provider base URL overrides (platform configuration); default the real endpoints. */
  endpoints?: ProviderEndpoints;
  providerOptions?: ProviderClientOptions;
  /** Where retrieval's step durations are reported. Default: nowhere. */
  ragMetrics?: RagMetrics;
  /** Deadline of each call to the tenant actor. Default 10000 ms. */
  actorTimeoutMs?: number;
}

export function textJobHandler(
  options: TextJobOptions,
): (job: DispatchJob, ctx: JobContext) => Promise<void> {
  const { nc, subjects } = options;
  const actorTimeoutMs = options.actorTimeoutMs ?? 10_000;
  return async (job, ctx) => {
    const claimedAt = performance.now();
    // Waiting in SF_DISPATCH: wall clocks of two hosts, so never below zero.
    const queueMs = Math.max(0, Date.now() - job.createdAt);
    const out = chatSubject(subjects, job);
    let seq = 0;
    const send = (frame: ChatFrame): void => nc.publish(out, encodeBody(frame));
    try {
      const { body: context } = await requestReply<JobContextReply>(
        nc,
        subjects.tenantOp(job.tenant, "job-context"),
        { agent_slug: job.agentSlug },
        { tenant: job.tenant, timeoutMs: actorTimeoutMs },
      );
      const { llm } = resolveProviders(
        providerSettingsForAgent(context.agent, ["llm"] as const),
        context.provider_keys,
        options.endpoints ?? {},
        options.providerOptions ?? {},
      );
      const ragDeps = retrievalDeps(options, actorTimeoutMs);
      const retrievalStarted = performance.now();
      const retrieval = await retrieve(
        {
          tenant: job.tenant,
          agent: context.agent,
          rag: context.rag,
          providerKeys: context.provider_keys,
          query: job.message ?? "",
          userId: job.userId,
          signal: ctx.signal,
        },
        ragDeps,
      );
      const retrievalMs = performance.now() - retrievalStarted;
      const citations = retrieval?.context.citations ?? [];
      const history = (job as DispatchJob & { history?: HistoryTurn[] }).history ?? [];
      const messages: ChatMessage[] = [];
      if (context.agent.systemPrompt) messages.push({ role: "system", content: context.agent.systemPrompt });
      if (retrieval?.context.message) messages.push({ role: "system", content: retrieval.context.message });
      for (const turn of history) {
        messages.push({ role: "user", content: turn.user }, { role: "assistant", content: turn.assistant });
      }
      messages.push({ role: "user", content: job.message ?? "" });
      let text = "";
      const llmStarted = performance.now();
      let firstTokenMs: number | undefined;
      for await (const delta of llm.stream({ messages }, { signal: ctx.signal })) {
        firstTokenMs ??= performance.now() - llmStarted;
        text += delta;
        send({ type: "token", job_id: job.jobId, seq: seq++, delta });
      }
      const llmDoneMs = performance.now();
      await ctx.event("answered");
      const { body: recorded } = await requestReply<{
        turn_id: string;
        recorded: boolean;
        result?: TextJobResult;
      }>(
        nc,
        subjects.tenantOp(job.tenant, "turn-record"),
        {
          job_id: job.jobId,
          conversation_id: job.conversationId,
          session_id: job.sessionId,
          agent_slug: job.agentSlug,
          user_id: job.userId,
          user_message: job.message ?? "",
          assistant_message: text,
          citations,
          metadata: {
            // The turn's own timings (ms), shown per turn in the console's transcript view.
            timings: {
              queue: Math.round(queueMs),
              retrieval: Math.round(retrievalMs),
              ...(firstTokenMs === undefined ? {} : { llm_first_token: Math.round(firstTokenMs) }),
              llm: Math.round(llmDoneMs - llmStarted),
              worker_total: Math.round(llmDoneMs - claimedAt),
            },
            ...(retrieval === null
              ? {}
              : {
                  rag: {
                    document_ids: retrieval.context.documentIds,
                    transcripts: retrieval.context.transcripts,
                    context_tokens: retrieval.context.tokens,
                  },
                }),
          },
        },
        { tenant: job.tenant, timeoutMs: actorTimeoutMs },
      );
      // Another run of this job (a redelivery while this one was stuck) recorded the turn first:
      // its reply is the one that counts, so that is the final message, whatever this run wrote.
      const final = recorded.recorded ? undefined : recorded.result;
      if (final !== undefined) {
        options.log.warn(
          { tenant: job.tenant, jobId: job.jobId },
          "turn recorded by another run; sending its reply",
        );
      }
      send({
        type: "message",
        job_id: job.jobId,
        conversation_id: job.conversationId,
        text: final?.text ?? text,
        citations: final?.citations ?? citations,
        seq: seq++,
      });
      await nc.flush();
      // Off the chat path: the reply is out; the turn's embedding serves later retrieval.
      const embedder =
        retrieval !== null
          ? { client: retrieval.embeddings, fingerprint: retrieval.fingerprint }
          : turnEmbedder(
              { agent: context.agent, rag: context.rag, providerKeys: context.provider_keys },
              ragDeps,
            );
      if (embedder !== null && recorded.recorded) {
        await embedTurn(ragDeps, job.tenant, embedder, recorded.turn_id, job.message ?? "", ctx.signal).catch(
          (err: unknown) =>
            options.log.warn(
              { tenant: job.tenant, jobId: job.jobId, err: toWireError(err) },
              "the turn's embedding was not written",
            ),
        );
      }
    } catch (err) {
      const error = toWireError(err);
      // A later claim of this job on another worker answers the caller: this run says nothing.
      const superseded = ctx.signal.aborted && ctx.signal.reason instanceof JobSupersededError;
      // The caller learns at once; the job's failure is also recorded on SF_EVENTS by the consumer.
      if (!superseded && (!error.retryable || ctx.finalAttempt))
        send({ type: "error", job_id: job.jobId, error, seq: seq++ });
      throw err;
    }
  };
}
