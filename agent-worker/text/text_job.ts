/**
 * The text job: read the agent and the tenant's provider keys through the tenant actor, build the
 * prompt (system prompt, the conversation's recent turns, the user's message), stream the
 * configured LLM's answer token by token to `<prefix>.chat.<session>.out`, record the turn through
 * the tenant actor, then send the final message. No room, no cold start, no polling; and no
 * fallback: a misconfigured provider fails the job with an error naming it.
 */
import type { NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "pino";
import { encodeBody, requestReply, toWireError } from "../../bus/index.ts";
import type { Subjects } from "../../bus/index.ts";
import type { ChatFrame, DispatchJob, HistoryTurn, JobContextReply } from "../../actors/index.ts";
import { providerSettingsForAgent, resolveProviders } from "../providers/resolve_providers.ts";
import type { ProviderClientOptions } from "../providers/resolve_providers.ts";
import type { ProviderEndpoints } from "../providers/registry.ts";
import type { ChatMessage } from "../providers/llm_client.ts";
import type { JobContext } from "../worker/job_consumer.ts";

export interface TextJobOptions {
  nc: NatsConnection;
  subjects: Subjects;
  log: Logger;
  /** Per-provider base URL overrides (platform configuration); default the real endpoints. */
  endpoints?: ProviderEndpoints;
  providerOptions?: ProviderClientOptions;
  /** Deadline of each call to the tenant actor. Default 10000 ms. */
  actorTimeoutMs?: number;
}

export function textJobHandler(
  options: TextJobOptions,
): (job: DispatchJob, ctx: JobContext) => Promise<void> {
  const { nc, subjects } = options;
  const actorTimeoutMs = options.actorTimeoutMs ?? 10_000;
  return async (job, ctx) => {
    const out = subjects.chatOut(job.sessionId);
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
      const history = (job as DispatchJob & { history?: HistoryTurn[] }).history ?? [];
      const messages: ChatMessage[] = [];
      if (context.agent.systemPrompt) messages.push({ role: "system", content: context.agent.systemPrompt });
      for (const turn of history) {
        messages.push({ role: "user", content: turn.user }, { role: "assistant", content: turn.assistant });
      }
      messages.push({ role: "user", content: job.message ?? "" });
      let text = "";
      for await (const delta of llm.stream({ messages }, { signal: ctx.signal })) {
        text += delta;
        send({ type: "token", job_id: job.jobId, seq: seq++, delta });
      }
      await ctx.event("answered");
      await requestReply(
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
          citations: [],
        },
        { tenant: job.tenant, timeoutMs: actorTimeoutMs },
      );
      send({
        type: "message",
        job_id: job.jobId,
        conversation_id: job.conversationId,
        text,
        citations: [],
        seq: seq++,
      });
      await nc.flush();
    } catch (err) {
      const error = toWireError(err);
      // The caller learns at once; the job's failure is also recorded on SF_EVENTS by the consumer.
      if (!error.retryable || ctx.finalAttempt) send({ type: "error", job_id: job.jobId, error, seq: seq++ });
      throw err;
    }
  };
}
