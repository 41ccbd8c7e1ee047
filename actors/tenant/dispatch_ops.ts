/**
 * The tenant actor's side of agent dispatch (text and voice): `trigger` opens or resumes the
 * conversation, enforces the tenant's concurrent-job quota, and hands the job to a worker through
 * confirmed dispatch, answering (deferred) once a worker has claimed it. Jobs of one conversation
 * run one after another, so every reply is built on the turns before it. The worker reads what it
 * needs with `job-context` and records the finished turn with `turn-record` (idempotent by job id,
 * which is the turn id), which also feeds the conversation's in-memory window.
 *
 * A text trigger is idempotent by its job id (derived from the tenant and the caller's
 * `Idempotency-Key`, see `jobIdFor`): a repeat never starts a second job. While the first runs,
 * the repeat's answer waits for it; once it has finished, the answer carries the recorded reply
 * (`result`, read back from the transcripts by turn id). A job that no worker claimed is forgotten, so a retry after "no capacity" runs again.
 * A repeat that names another user, agent or message is refused (SF_ERR_IDEMPOTENCY_KEY_REUSED).
 *
 * Work that runs after the turn (a conversation's next job, a voice room, the claim deadline's
 * withdrawal in the Dispatcher) first checks that this actor still owns its tenant
 * (`stillOwner`, the lease on the monotonic clock): a host frozen past its lease wakes with those
 * steps due, and by then the tenant, its jobs and their callers are the new owner's.
 */
import { createHash } from "node:crypto";
import type { Logger } from "pino";
import { BusErrorCodes, SfError } from "../../bus/index.ts";
import type { RequestMeta } from "../../bus/index.ts";
import { deferReply } from "../runtime/actor.ts";
import type { Claim, Dispatcher } from "../dispatch/dispatcher.ts";
import type { DispatchJob } from "../dispatch/job.ts";
import { InvalidArgumentError } from "../errors.ts";
import type { AgentRecord, LivekitCredentials, TenantStore, TranscriptRecord } from "../store/index.ts";
import type { RagJobInfo } from "./document_ops.ts";
import { providerKeys as keysOf } from "./provider_keys.ts";
import { requireLivekitCredentials } from "../voice/livekit_credentials.ts";
import { ensureVoiceRoom, mintAgentToken, mintUserToken, SIDEKICK_AGENT_NAME } from "../voice/voice_room.ts";

export const DispatchOps = {
  trigger: "trigger",
  jobContext: "job-context",
  recordTurn: "turn-record",
} as const;

export const DispatchOpErrorCodes = {
  AGENT_DISABLED: "SF_ERR_AGENT_DISABLED",
  MODE_DISABLED: "SF_ERR_MODE_DISABLED",
  MODE_UNAVAILABLE: "SF_ERR_MODE_UNAVAILABLE",
  QUOTA_EXCEEDED: "SF_ERR_QUOTA_EXCEEDED",
  /** A job id (Idempotency-Key) used again for another user, agent or message. */
  IDEMPOTENCY_KEY_REUSED: "SF_ERR_IDEMPOTENCY_KEY_REUSED",
  /** A repeated job ended without a recorded reply (it failed after its claim). */
  JOB_RESULT_UNAVAILABLE: "SF_ERR_JOB_RESULT_UNAVAILABLE",
} as const;

export interface HistoryTurn {
  user: string;
  assistant: string;
}

/** A text job carries the agent's recent turns of the conversation, oldest first. */
export interface TextJobContext {
  history: HistoryTurn[];
}

/** What a voice trigger adds to its reply (the v1 contract's livekit_config and room_info). */
export interface VoiceTriggerInfo {
  room_name: string;
  room_status: "created" | "existing";
  /** The tenant's LiveKit URL, for the client. */
  server_url: string;
  /** Participant token for `user_<user_id>`: 1 hour, publish/subscribe/data in this room only. */
  user_token: string;
  user_identity: string;
}

export interface TriggerReply {
  job_id: string;
  conversation_id: string;
  session_id: string;
  worker_id: string;
  claimed_at: number;
  claim_ms: number;
  duplicate: boolean;
  agent: { slug: string; name: string; voice_provider: string | null; voice_id: string | null };
  /** Present for mode "voice". */
  voice?: VoiceTriggerInfo;
  /**
   * Present when this trigger repeated a text job that has finished (a retry with the same
   * Idempotency-Key): the reply that job recorded. No frames follow for it.
   */
  result?: TextJobResult;
}

/** A finished text job's reply, as recorded in its turn. */
export interface TextJobResult {
  text: string;
  citations: unknown[];
}

export interface JobContextReply {
  agent: AgentRecord;
  /** Decrypted provider API keys by provider name. Only for workers; never logged. */
  provider_keys: Record<string, string>;
  /** The tenant's embedding settings and the agent's documents; null where this host has no documents. */
  rag: RagJobInfo | null;
  /** Voice jobs (`room_name` asked for): where to join and the agent's token. Never the API secret. */
  livekit?: VoiceJobLivekit;
}

/** What a voice worker needs to join its room. */
export interface VoiceJobLivekit {
  url: string;
  room_name: string;
  /** Token for `agent-<slug>` (kind agent, agent name `sidekick-agent`) in this room only. */
  token: string;
  identity: string;
  agent_name: string;
}

export interface TenantDispatchOptions {
  tenant: string;
  store: () => Promise<TenantStore>;
  dispatcher: Dispatcher;
  log: Logger;
  /** True while this actor's host still owns the tenant (ActorContext.stillOwner). */
  stillOwner: () => boolean;
  /** Jobs of this tenant in flight at most. Default 100. */
  maxConcurrentJobs?: number;
  /** Turns kept per conversation for prompts. Default 20. */
  windowTurns?: number;
  /** The tenant's decrypted LiveKit credentials (platform store, cached); absent, voice is refused. */
  livekitCredentials?: () => Promise<LivekitCredentials | null>;
  /** What job-context says about retrieval for an agent. */
  ragInfo?: (store: TenantStore, agent: AgentRecord) => Promise<RagJobInfo>;
}

/** How long agent configs are reused without reading them again. */
const CONFIG_CACHE_MS = 5000;
/** Text jobs remembered by id for repeats (oldest forgotten first; the store answers after). */
const MAX_REMEMBERED_JOBS = 4096;

/** A text job this actor dispatched, kept so a repeat of its trigger joins it. */
interface TextJob {
  userId: string;
  agentSlug: string;
  message: string;
  /** The first trigger's reply, once the job has ended; rejects with the job's failure. */
  ended: Promise<TriggerReply>;
}

/** The recorded reply of a turn's rows, when its assistant row exists. */
function turnResult(rows: readonly TranscriptRecord[]): TextJobResult | undefined {
  const assistant = rows.find((r) => r.role === "assistant");
  if (assistant === undefined) return undefined;
  return { text: assistant.assistantMessage ?? assistant.content, citations: assistant.citations };
}

function keyReused(jobId: string): SfError {
  return new SfError(
    DispatchOpErrorCodes.IDEMPOTENCY_KEY_REUSED,
    "this idempotency key was used for another request (user, agent or message)",
    { details: { job_id: jobId } },
  );
}

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** A stable uuid for any id (name-based, SHA-1, version 5 layout); uuids pass through. */
export function asUuid(namespace: string, id: string): string {
  if (UUID_RE.test(id)) return id.toLowerCase();
  return nameUuid(namespace, id);
}

/**
 * A job's id: always derived from the tenant and the id its caller gave (the Idempotency-Key,
 * or a request id), uuids included. Job ids are global (SF_DISPATCH's dedupe window, the events
 * of SF_EVENTS, chat frames on a session subject any tenant may name), while the ids callers give
 * are only theirs: one tenant naming another's job id gets a job of its own, never the other's
 * dedupe, events or frames.
 */
export function jobIdFor(tenant: string, given: string): string {
  return nameUuid(`job:${tenant}`, given);
}

/** The id of the conversation a job starts when its trigger names none (a job id is tenant-scoped). */
function conversationIdOf(jobId: string): string {
  return nameUuid("conversation-of-job", jobId);
}

function nameUuid(namespace: string, id: string): string {
  const h = createHash("sha1").update(`sidekick-forge:${namespace}:${id}`).digest();
  h[6] = ((h[6] as number) & 0x0f) | 0x50;
  h[8] = ((h[8] as number) & 0x3f) | 0x80;
  const hex = h.subarray(0, 16).toString("hex");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
}

function str(
  body: Record<string, unknown>,
  field: string,
  required: boolean,
  max = 10_000,
): string | undefined {
  const v = body[field];
  if (v === undefined || v === null || v === "") {
    if (required) throw new InvalidArgumentError(`${field} is required`, { details: { field } });
    return undefined;
  }
  if (typeof v !== "string" || v.length > max) {
    throw new InvalidArgumentError(`${field} must be a string of at most ${max} characters`, {
      details: { field },
    });
  }
  return v;
}

function objectBody(body: unknown): Record<string, unknown> {
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw new InvalidArgumentError("the request body must be an object");
  }
  return body as Record<string, unknown>;
}

interface ConversationWindow {
  turns: HistoryTurn[];
  loaded: boolean;
  /** The conversation's user (known once it was created or read). */
  userId?: string;
  /** Turn ids recorded in this conversation (from the store when the window was loaded). */
  turnIds: Set<string>;
  /** The conversation's jobs run one after another: this settles when the last one has. */
  tail: Promise<void>;
}

export class TenantDispatch {
  readonly #o: Required<Omit<TenantDispatchOptions, "livekitCredentials" | "ragInfo">> &
    Pick<TenantDispatchOptions, "livekitCredentials" | "ragInfo">;
  readonly #windows = new Map<string, ConversationWindow>();
  readonly #recorded = new Set<string>();
  readonly #textJobs = new Map<string, TextJob>();
  /**
   * Agent configs read in the last few seconds. Provider keys are not cached: a key the tenant
   * just added (possibly straight into its own database) must work on the next job.
   */
  readonly #agents = new Map<string, { agent: AgentRecord; at: number }>();
  #inFlight = 0;

  /** Drops cached agent configs (an agent was changed through this actor). */
  invalidate(): void {
    this.#agents.clear();
  }

  async #agent(store: TenantStore, slug: string): Promise<AgentRecord> {
    const cached = this.#agents.get(slug);
    if (cached !== undefined && performance.now() - cached.at < CONFIG_CACHE_MS) return cached.agent;
    const agent = await store.getAgent(slug);
    this.#agents.set(slug, { agent, at: performance.now() });
    return agent;
  }

  constructor(options: TenantDispatchOptions) {
    this.#o = { maxConcurrentJobs: 100, windowTurns: 20, ...options };
  }

  get inFlight(): number {
    return this.#inFlight;
  }

  /** Before a step that runs after the turn: a host that lost the tenant does nothing more for it. */
  #assertOwner(jobId: string): void {
    if (this.#o.stillOwner()) return;
    throw new SfError(BusErrorCodes.NOT_OWNER, "this host no longer owns the tenant", {
      retryable: true,
      details: { job_id: jobId },
    });
  }

  /** Runs one of the dispatch ops, or returns undefined when `op` is not one of them. */
  handle(op: string, body: unknown, meta: RequestMeta): Promise<unknown> | undefined {
    switch (op) {
      case DispatchOps.trigger:
        return this.#trigger(objectBody(body), meta);
      case DispatchOps.jobContext:
        return this.#jobContext(objectBody(body));
      case DispatchOps.recordTurn:
        return this.#recordTurn(objectBody(body));
      default:
        return undefined;
    }
  }

  #window(conversationId: string): ConversationWindow {
    let w = this.#windows.get(conversationId);
    if (w === undefined) {
      w = { turns: [], loaded: false, tail: Promise.resolve(), turnIds: new Set() };
      this.#windows.set(conversationId, w);
      if (this.#windows.size > 1000) {
        const oldest = this.#windows.keys().next();
        if (oldest.done !== true && oldest.value !== conversationId) this.#windows.delete(oldest.value);
      }
    }
    return w;
  }

  async #trigger(body: Record<string, unknown>, meta: RequestMeta): Promise<unknown> {
    const { tenant } = this.#o;
    const slug = str(body, "agent_slug", true, 200) as string;
    const mode = str(body, "mode", false, 10) ?? "text";
    const externalUser = str(body, "user_id", true, 200) as string;
    if (mode !== "text" && mode !== "voice") {
      throw new SfError(
        DispatchOpErrorCodes.MODE_UNAVAILABLE,
        `mode ${JSON.stringify(mode)} is not dispatched yet`,
        {
          details: { mode },
        },
      );
    }
    const message = mode === "text" ? (str(body, "message", true, 32_000) as string) : undefined;
    const roomName = mode === "voice" ? (str(body, "room_name", true, 128) as string) : undefined;
    if (roomName !== undefined && !/^[A-Za-z0-9_.:-]{1,128}$/.test(roomName)) {
      throw new InvalidArgumentError("room_name may hold only A-Z a-z 0-9 _ . : -", {
        details: { field: "room_name" },
      });
    }
    const store = await this.#o.store();
    const agent = await this.#agent(store, slug);
    if (!agent.enabled) {
      throw new SfError(DispatchOpErrorCodes.AGENT_DISABLED, `agent ${slug} is disabled`, {
        details: { agent: slug },
      });
    }
    if (mode === "text" ? agent.textChatEnabled === false : agent.voiceChatEnabled === false) {
      throw new SfError(DispatchOpErrorCodes.MODE_DISABLED, `agent ${slug} does not take ${mode} chats`, {
        details: { agent: slug, mode },
      });
    }
    const agentInfo = {
      slug: agent.slug,
      name: agent.name,
      voice_provider: agent.voiceSettings?.tts_provider ?? agent.voiceSettings?.provider ?? null,
      voice_id: agent.voiceSettings?.voice_id ?? null,
    };
    const jobId = jobIdFor(tenant, str(body, "job_id", false, 200) ?? meta.requestId);
    const userId = asUuid(`user:${tenant}`, externalUser);
    if (message !== undefined) {
      const repeat = await this.#repeat(store, {
        jobId,
        userId,
        agent,
        message,
        idempotent: body["idempotent"] === true,
        agentInfo,
      });
      if (repeat !== undefined) return repeat;
    }
    const livekit = mode === "voice" ? await this.#livekitCredentials() : undefined;
    if (this.#inFlight >= this.#o.maxConcurrentJobs) {
      throw new SfError(
        DispatchOpErrorCodes.QUOTA_EXCEEDED,
        `tenant has ${this.#inFlight} jobs running, its limit is ${this.#o.maxConcurrentJobs}`,
        { retryable: true, details: { limit: this.#o.maxConcurrentJobs } },
      );
    }
    const requested = str(body, "conversation_id", false, 200);
    // A trigger that names no conversation starts one whose id follows from the job's: a repeat of
    // it (the gateway's next attempt, possibly at the owner that took this tenant over from a
    // frozen or dead host) finds the same conversation instead of starting a second one.
    const conversationId =
      requested === undefined ? conversationIdOf(jobId) : asUuid(`conversation:${tenant}`, requested);
    const sessionId = str(body, "session_id", false, 128) ?? conversationId;
    if (!/^[A-Za-z0-9_-]{1,128}$/.test(sessionId)) {
      throw new InvalidArgumentError("session_id may hold only A-Z a-z 0-9 _ -", {
        details: { field: "session_id" },
      });
    }
    // The gateway that alone follows this session names its chat inbox (see chatSubject).
    const chatInbox = str(body, "chat_inbox", false, 128);
    if (chatInbox !== undefined && !/^[A-Za-z0-9_-]{1,128}$/.test(chatInbox)) {
      throw new InvalidArgumentError("chat_inbox may hold only A-Z a-z 0-9 _ -", {
        details: { field: "chat_inbox" },
      });
    }
    const known = this.#windows.get(conversationId);
    const existing =
      known?.userId !== undefined ? { userId: known.userId } : await store.findConversation(conversationId);
    if (existing === null) {
      await store.createConversation({
        id: conversationId,
        sessionId,
        agentId: agent.id,
        userId,
        channel: mode,
        metadata: {
          external_user_id: externalUser,
          ...(roomName === undefined ? {} : { room_name: roomName }),
        },
      });
    } else if (existing.userId !== null && existing.userId !== userId) {
      // The conversation of this job id's first trigger, by another user: the key was reused.
      if (requested === undefined) throw keyReused(jobId);
      // Another user's conversation: say nothing about it.
      throw new SfError("SF_ERR_CONVERSATION_NOT_FOUND", "no such conversation", {
        details: { conversation_id: requested },
      });
    }
    const context = body["context"];
    const window = this.#window(conversationId);
    window.userId = userId;
    if (!window.loaded) {
      const rows = await store.listTranscripts(conversationId, { limit: this.#o.windowTurns * 2 });
      const byTurn = new Map<string, HistoryTurn>();
      for (const row of rows) {
        if (row.turnId === null) continue;
        window.turnIds.add(row.turnId);
        const t = byTurn.get(row.turnId) ?? { user: "", assistant: "" };
        if (row.role === "user") t.user = row.content;
        if (row.role === "assistant") t.assistant = row.content;
        byTurn.set(row.turnId, t);
      }
      window.turns = [...byTurn.values()].slice(-this.#o.windowTurns);
      window.loaded = true;
    }

    const history = (): HistoryTurn[] =>
      window.turns.slice(-(agent.maxContextMessages ?? this.#o.windowTurns));
    const baseJob = {
      jobId,
      tenant,
      agentSlug: slug,
      conversationId,
      sessionId,
      ...(chatInbox === undefined ? {} : { chatInbox }),
      userId: externalUser,
      ...(typeof context === "object" && context !== null
        ? { context: context as Record<string, unknown> }
        : {}),
    };
    const replyOf = (claim: Claim, voice?: VoiceTriggerInfo): TriggerReply => ({
      job_id: jobId,
      conversation_id: conversationId,
      session_id: sessionId,
      worker_id: claim.workerId,
      claimed_at: claim.claimedAt,
      claim_ms: claim.claimMs,
      duplicate: claim.duplicate,
      agent: agentInfo,
      ...(voice === undefined ? {} : { voice }),
    });

    if (livekit !== undefined && roomName !== undefined) {
      // Voice: the room and the user's token first, then the job; the session is the job, so it
      // does not wait behind the conversation's text jobs. The turn ends here; the caller is
      // answered once a worker has claimed the job.
      const credentials = livekit;
      const room = roomName;
      const jobHistory = history();
      this.#inFlight += 1;
      const voiceReply = async (): Promise<TriggerReply> => {
        let outcome: Promise<void> | undefined;
        try {
          this.#assertOwner(jobId);
          const roomStatus = await ensureVoiceRoom(credentials, {
            name: room,
            metadata: {
              tenant,
              agent_slug: slug,
              agent_name: SIDEKICK_AGENT_NAME,
              conversation_id: conversationId,
              job_id: jobId,
            },
          });
          const user = await mintUserToken(credentials, room, externalUser);
          const job: DispatchJob & { history: HistoryTurn[] } = {
            ...baseJob,
            mode: "voice",
            roomName: room,
            createdAt: Date.now(),
            history: jobHistory,
          };
          this.#assertOwner(jobId);
          const dispatched = await this.#o.dispatcher.dispatch(job, { stillOwner: this.#o.stillOwner });
          outcome = dispatched.outcome;
          this.#o.log.info(
            { jobId, room, roomStatus, worker: dispatched.claim.workerId },
            "voice job claimed",
          );
          return replyOf(dispatched.claim, {
            room_name: room,
            room_status: roomStatus,
            server_url: credentials.url,
            user_token: user.token,
            user_identity: user.identity,
          });
        } finally {
          if (outcome === undefined) this.#inFlight -= 1;
          else {
            void outcome.then(
              () => {
                this.#inFlight -= 1;
              },
              (err: unknown) => {
                this.#inFlight -= 1;
                this.#o.log.warn(
                  { jobId, room, code: (err as { code?: unknown }).code },
                  "voice job ended with an error",
                );
              },
            );
          }
        }
      };
      return deferReply(voiceReply());
    }

    this.#inFlight += 1;
    let resolveClaim!: (reply: TriggerReply) => void;
    let rejectClaim!: (err: unknown) => void;
    const claimed = new Promise<TriggerReply>((resolve, reject) => {
      resolveClaim = resolve;
      rejectClaim = reject;
    });
    let resolveEnded!: (reply: TriggerReply) => void;
    let rejectEnded!: (err: unknown) => void;
    const ended = new Promise<TriggerReply>((resolve, reject) => {
      resolveEnded = resolve;
      rejectEnded = reject;
    });
    // Only repeats wait on `ended`; the job's failure is on record with the dispatcher either way.
    void ended.then(
      () => undefined,
      (err: unknown) =>
        this.#o.log.debug({ jobId, code: (err as { code?: unknown }).code }, "text job ended with an error"),
    );
    this.#rememberJob(jobId, { userId, agentSlug: slug, message: message ?? "", ended });
    // One job of a conversation at a time: this one starts when the previous one has ended.
    window.tail = window.tail.then(async () => {
      // Runs when the conversation's previous job has ended, possibly long after this turn.
      const job: DispatchJob & { history: HistoryTurn[] } = {
        ...baseJob,
        mode: "text",
        ...(message === undefined ? {} : { message }),
        createdAt: Date.now(),
        history: history(),
      };
      let first: TriggerReply | undefined;
      try {
        this.#assertOwner(jobId);
        const { claim, outcome } = await this.#o.dispatcher.dispatch(job, {
          stillOwner: this.#o.stillOwner,
        });
        first = replyOf(claim);
        if (claim.duplicate) {
          // The stream had this job already: its first trigger was answered by an owner that is
          // gone, and its frames went to that trigger's session. Answer with its outcome instead.
          this.#o.log.info({ jobId }, "text job dispatched before: answering with its outcome");
          await outcome;
          const result = turnResult(await store.findTurn(jobId));
          resolveClaim(result === undefined ? first : { ...first, result });
        } else {
          resolveClaim(first);
          await outcome;
        }
        resolveEnded(first);
      } catch (err) {
        // Never claimed (no capacity): forgotten, so a retry with the same key runs it again.
        if (first === undefined) this.#textJobs.delete(jobId);
        rejectClaim(err);
        rejectEnded(err);
      } finally {
        this.#inFlight -= 1;
      }
    });
    return deferReply(claimed);
  }

  #rememberJob(jobId: string, job: TextJob): void {
    this.#textJobs.set(jobId, job);
    if (this.#textJobs.size > MAX_REMEMBERED_JOBS) {
      const oldest = this.#textJobs.keys().next();
      if (oldest.done !== true) this.#textJobs.delete(oldest.value);
    }
  }

  /**
   * A text trigger whose job exists already (see the module comment): a deferred answer that
   * waits for the running job, the recorded reply of a finished one (looked up in the store only
   * when the caller marks the job id as its idempotency key), or undefined for a new job.
   */
  async #repeat(
    store: TenantStore,
    want: {
      jobId: string;
      userId: string;
      agent: AgentRecord;
      message: string;
      idempotent: boolean;
      agentInfo: TriggerReply["agent"];
    },
  ): Promise<unknown> {
    const known = this.#textJobs.get(want.jobId);
    if (known !== undefined) {
      if (
        known.userId !== want.userId ||
        known.agentSlug !== want.agent.slug ||
        known.message !== want.message
      ) {
        throw keyReused(want.jobId);
      }
      return deferReply(
        known.ended.then(async (first): Promise<TriggerReply> => {
          const result = turnResult(await store.findTurn(want.jobId));
          if (result === undefined) {
            throw new SfError(
              DispatchOpErrorCodes.JOB_RESULT_UNAVAILABLE,
              "the job ended without a recorded reply",
              {
                details: { job_id: want.jobId },
              },
            );
          }
          return { ...first, duplicate: true, result };
        }),
      );
    }
    if (!want.idempotent) return undefined;
    const rows = await store.findTurn(want.jobId);
    const result = turnResult(rows);
    if (result === undefined) return undefined;
    const user = rows.find((r) => r.role === "user") ?? rows[0];
    if (
      user === undefined ||
      user.userId !== want.userId ||
      (user.agentId !== null && user.agentId !== want.agent.id) ||
      (user.role === "user" && (user.userMessage ?? user.content) !== want.message)
    ) {
      throw keyReused(want.jobId);
    }
    const reply: TriggerReply = {
      job_id: want.jobId,
      conversation_id: user.conversationId,
      session_id: user.sessionId ?? user.conversationId,
      worker_id: "",
      claimed_at: user.createdAt.getTime(),
      claim_ms: 0,
      duplicate: true,
      agent: want.agentInfo,
      result,
    };
    return reply;
  }

  async #livekitCredentials(): Promise<LivekitCredentials> {
    const load = this.#o.livekitCredentials;
    if (load === undefined) {
      throw new SfError(DispatchOpErrorCodes.MODE_UNAVAILABLE, "this host does not dispatch voice jobs", {
        details: { mode: "voice" },
      });
    }
    return requireLivekitCredentials(this.#o.tenant, await load());
  }

  async #jobContext(body: Record<string, unknown>): Promise<JobContextReply> {
    const slug = str(body, "agent_slug", true, 200) as string;
    const store = await this.#o.store();
    const agent = await this.#agent(store, slug);
    const providerKeys = await keysOf(store);
    const rag = this.#o.ragInfo === undefined ? null : await this.#o.ragInfo(store, agent);
    const roomName = str(body, "room_name", false, 128);
    if (roomName === undefined) return { agent, provider_keys: providerKeys, rag };
    const credentials = await this.#livekitCredentials();
    const jobId = str(body, "job_id", false, 64) ?? "";
    const agentToken = await mintAgentToken(credentials, roomName, agent.slug, jobId);
    return {
      agent,
      provider_keys: providerKeys,
      rag,
      livekit: {
        url: credentials.url,
        room_name: roomName,
        token: agentToken.token,
        identity: agentToken.identity,
        agent_name: SIDEKICK_AGENT_NAME,
      },
    };
  }

  /**
   * Records a turn once. A repeat (a second run of the same job, e.g. a redelivery that ran while
   * the first was stuck) records nothing and gets the turn as recorded in `result`: only the
   * first recorded reply counts, and the repeat sends that one, not its own.
   */
  async #recordTurn(
    body: Record<string, unknown>,
  ): Promise<{ turn_id: string; recorded: boolean; result?: TextJobResult }> {
    const jobId = str(body, "job_id", true, 64) as string;
    if (!UUID_RE.test(jobId))
      throw new InvalidArgumentError("job_id must be a uuid", { details: { field: "job_id" } });
    // A text job is one turn (its id is the job's); a voice session names each of its turns.
    const turnId = str(body, "turn_id", false, 64) ?? jobId;
    if (!UUID_RE.test(turnId))
      throw new InvalidArgumentError("turn_id must be a uuid", { details: { field: "turn_id" } });
    const source = str(body, "source", false, 10) ?? "text";
    if (source !== "text" && source !== "voice")
      throw new InvalidArgumentError("source must be text or voice", { details: { field: "source" } });
    const conversationId = str(body, "conversation_id", true, 64) as string;
    const userMessage = str(body, "user_message", true, 32_000) as string;
    const assistantMessage = str(body, "assistant_message", true, 200_000) as string;
    const slug = str(body, "agent_slug", true, 200) as string;
    const externalUser = str(body, "user_id", true, 200) as string;
    const store = await this.#o.store();
    const repeat = async (): Promise<{ turn_id: string; recorded: false; result?: TextJobResult }> => {
      const result = turnResult(await store.findTurn(turnId));
      return result === undefined
        ? { turn_id: turnId, recorded: false }
        : { turn_id: turnId, recorded: false, result };
    };
    if (this.#recorded.has(turnId)) return repeat();
    const window = this.#window(conversationId);
    // A loaded window knows every recent turn of the conversation (this actor is its only
    // writer); without one, the store is asked.
    const seen = window.loaded
      ? window.turnIds.has(turnId)
      : (await store.listTranscripts(conversationId, { limit: 40 })).some((row) => row.turnId === turnId);
    if (seen) {
      this.#recorded.add(turnId);
      return repeat();
    }
    const agent = await this.#agent(store, slug);
    const citations = Array.isArray(body["citations"]) ? (body["citations"] as unknown[]).slice(0, 100) : [];
    const rawMeta = body["metadata"];
    const metadata =
      typeof rawMeta === "object" && rawMeta !== null && !Array.isArray(rawMeta)
        ? (rawMeta as Record<string, unknown>)
        : {};
    await store.appendTurn({
      metadata,
      conversationId,
      agentId: agent.id,
      userId: asUuid(`user:${this.#o.tenant}`, externalUser),
      sessionId: str(body, "session_id", false, 128) ?? null,
      turnId,
      userMessage,
      assistantMessage,
      citations,
      source,
    });
    this.#recorded.add(turnId);
    if (this.#recorded.size > 4096) {
      const oldest = this.#recorded.values().next();
      if (oldest.done !== true) this.#recorded.delete(oldest.value);
    }
    window.turnIds.add(turnId);
    window.turns.push({ user: userMessage, assistant: assistantMessage });
    if (window.turns.length > this.#o.windowTurns)
      window.turns.splice(0, window.turns.length - this.#o.windowTurns);
    this.#o.log.debug({ conversationId, turnId }, "turn recorded");
    return { turn_id: turnId, recorded: true };
  }
}
