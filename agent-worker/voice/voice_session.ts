/**
 * One voice session in a LiveKit room, inside the worker process (many share it): joined with the
 * agent token the tenant actor minted, it runs `@livekit/agents`' `AgentSession` in the room
 * (agent_runtime.ts: the tenant's STT, LLM and TTS, VAD turn detection, typed messages on `lk.chat`
 * answered on `lk.transcription`), records each answered turn through the tenant actor
 * (`turn-record`, source "voice"), and ends when the last non-agent participant leaves, when
 * nobody comes within a bounded wait, when the room goes away, when a provider refuses (no
 * fallback: the job fails naming it), or when the worker must stop.
 *
 * The agent runtime is loaded on the first voice job: `@livekit/agents` takes over a second to
 * import, which a worker that only runs text jobs should not pay.
 */
import { randomUUID } from "node:crypto";
import { ParticipantKind, Room, RoomEvent } from "@livekit/rtc-node";
import type { RemoteParticipant } from "@livekit/rtc-node";
import type { Logger } from "pino";
import { toWireError } from "../../bus/index.ts";
import type { HistoryTurn, VoiceJobLivekit } from "../../actors/index.ts";
import type { LlmClient } from "../providers/llm_client.ts";
import type { SttClient } from "../providers/stt_client.ts";
import type { LiveSttClient } from "../providers/stt_live.ts";
import { TTS_SAMPLE_RATE } from "../providers/tts_client.ts";
import type { TtsClient } from "../providers/tts_client.ts";
import type { AgentRuntime } from "./voice_runtime.ts";
import { closeAgentRuntime, settleWithin } from "./bounded_close.ts";
import { disposeRoomHandle, releaseClosedRoom } from "./room_release.ts";
import { VoiceSessionError, VoiceSessionErrorCodes } from "./session_types.ts";
import type { AgentExchange, TurnContext } from "./session_types.ts";

export {
  CHAT_TOPIC,
  TRANSCRIPTION_TOPIC,
  VoiceSessionError,
  VoiceSessionErrorCodes,
} from "./session_types.ts";
export type { AgentExchange, TurnContext } from "./session_types.ts";

/** The sample rate the agent reads users' microphones at (it speaks at its TTS client's rate). */
export const AGENT_AUDIO_SAMPLE_RATE = TTS_SAMPLE_RATE;

export type SessionEndReason = "last_user_left" | "nobody_joined" | "room_closed" | "stopped" | "failed";

export interface RecordedExchange {
  turnId: string;
  user: string;
  assistant: string;
  /** What retrieval put in the prompt (empty without RAG). */
  citations: unknown[];
  documentIds: string[];
  /** Who said the turn(s) answered (participant identities, in order); empty when unknown. */
  speakers: string[];
  /** The turn's timings in ms (turn_timings.ts); only the parts that happened in it. */
  timings: Readonly<Record<string, number>>;
}

export interface VoiceSessionOptions {
  livekit: VoiceJobLivekit;
  llm: LlmClient;
  /** Speech: with both, the agent listens to users' microphones and answers aloud. */
  stt?: SttClient;
  /**
   * The STT provider's streaming API (with `stt`): the users' speech is transcribed as it is heard.
   * Absent or null: each utterance is transcribed once it ended.
   */
  sttLive?: LiveSttClient | null;
  tts?: TtsClient;
  systemPrompt: string | null;
  history: HistoryTurn[];
  /** Turns kept in the prompt window. */
  windowTurns: number;
  /** Retrieval, run once per committed user turn; absent or null: no retrieved context. */
  retrieve?: (text: string, signal: AbortSignal) => Promise<TurnContext | null>;
  /** Records one exchange (through the tenant actor). */
  record: (exchange: RecordedExchange) => Promise<void>;
  /** Called once, after the first reply went out. */
  onFirstAnswer: () => Promise<void>;
  log: Logger;
  /** How long the room may stay without a user after the agent joined. */
  emptyRoomTimeoutMs: number;
  /** The worker is stopping: leave at once. */
  signal: AbortSignal;
  /**
   * The room's non-agent participants as the server sees them. LiveKit's participant events can
   * miss someone who joined while the agent was connecting, so presence is checked with the
   * server every `presencePollMs` and whenever the SDK thinks the last user left. Absent, the
   * SDK's events alone decide.
   */
  presence?: () => Promise<string[]>;
  /** Default 2000 ms. */
  presencePollMs?: number;
  /** Level of `@livekit/agents`' own logger (initialised once per process). Default "warn". */
  agentsLogLevel?: string;
  /** How long `run` lets a reply in progress finish after the last user left. Default 10000 ms. */
  drainTimeoutMs?: number;
  /**
   * How long closing the agent session, and then leaving the room, may each take. Past it the
   * session is left behind (logged) and the room left anyway: the job never waits longer.
   * Default 5000 ms.
   */
  closeTimeoutMs?: number;
  /** How long joining the room and starting the agent in it may take. Default 30000 ms. */
  joinTimeoutMs?: number;
}

function isUser(p: RemoteParticipant): boolean {
  return p.kind !== ParticipantKind.AGENT;
}

export class VoiceSession {
  readonly #o: VoiceSessionOptions;
  readonly #room = new Room();
  #runtime: AgentRuntime | undefined;
  /** Recording, one exchange at a time, in the order the session committed them. */
  #queue: Promise<void> = Promise.resolve();
  #answered = false;
  #turns = 0;
  #fatal: Error | undefined;
  #end!: (reason: SessionEndReason) => void;
  readonly #ended: Promise<SessionEndReason>;
  #emptyTimer: NodeJS.Timeout | undefined;
  #presenceTimer: NodeJS.Timeout | undefined;
  #seenUser = false;
  #checking = false;
  #presenceFailures = 0;
  /** `close` was called, or the join given up on. */
  #closing = false;
  /** Leaving the room, once started. */
  #leaving: Promise<void> | undefined;
  /** The room's connect resolved (it may have been disconnected since). */
  #connected = false;
  /** The room's FFI handle was disposed (room_release.ts). */
  #handleReleased = false;

  constructor(options: VoiceSessionOptions) {
    this.#o = options;
    this.#ended = new Promise((resolve) => {
      let done = false;
      this.#end = (reason) => {
        if (done) return;
        done = true;
        resolve(reason);
      };
    });
  }

  get room(): Room {
    return this.#room;
  }

  /**
   * Joins the room and starts the agent in it; resolves once both are up (then say `joined`).
   * Rejects after `joinTimeoutMs`; an agent that comes up after that is closed at once.
   */
  async join(): Promise<void> {
    const limitMs = this.#o.joinTimeoutMs ?? 30_000;
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new VoiceSessionError(VoiceSessionErrorCodes.JOIN_TIMEOUT, "joining the room took too long", {
              retryable: true,
              details: { limit_ms: limitMs },
            }),
          ),
        limitMs,
      );
    });
    const joining = this.#join();
    try {
      await Promise.race([joining, late]);
    } catch (err) {
      this.#closing = true;
      // A join given up on goes on in the background: what it brings up is closed once it settles.
      void joining
        .catch((failure: unknown) =>
          this.#o.log.debug({ err: toWireError(failure) }, "a join given up on failed"),
        )
        .then(() => this.close());
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  async #join(): Promise<void> {
    const room = this.#room;
    const o = this.#o;
    room.on(RoomEvent.ParticipantConnected, (p: RemoteParticipant) => {
      o.log.debug({ identity: p.identity, kind: p.kind }, "participant joined");
      if (isUser(p)) this.#userSeen();
    });
    room.on(RoomEvent.ParticipantDisconnected, (p: RemoteParticipant) => {
      o.log.debug({ identity: p.identity }, "participant left");
      if (this.#hasUser()) return;
      if (o.presence === undefined) this.#end("last_user_left");
      else void this.#checkPresence();
    });
    room.on(RoomEvent.Disconnected, () => this.#end("room_closed"));
    // Loaded while the room connects: the first voice job of a worker pays the import once.
    const runtimeModule = import("./voice_runtime.ts");
    await room.connect(o.livekit.url, o.livekit.token, { autoSubscribe: true, dynacast: false });
    this.#connected = true;
    o.log.debug({ participants: [...room.remoteParticipants.keys()] }, "voice room connected");
    const { startAgentRuntime } = await runtimeModule;
    if (this.#closing) return;
    const runtime = await startAgentRuntime({
      room,
      llm: o.llm,
      ...(o.stt !== undefined && o.tts !== undefined
        ? { stt: o.stt, tts: o.tts, ...(o.sttLive == null ? {} : { sttLive: o.sttLive }) }
        : {}),
      ttsSampleRate: o.tts?.sampleRate ?? AGENT_AUDIO_SAMPLE_RATE,
      inputSampleRate: AGENT_AUDIO_SAMPLE_RATE,
      instructions: o.systemPrompt,
      history: o.history,
      windowTurns: o.windowTurns,
      ...(o.retrieve === undefined ? {} : { retrieve: o.retrieve }),
      onExchange: (exchange) => this.#onExchange(exchange),
      onFailure: (err) => this.#fail(err),
      onUserActivity: () => this.#userSeen(),
      log: o.log,
      libraryLogLevel: o.agentsLogLevel ?? "warn",
    });
    this.#runtime = runtime;
    if (this.#closing) return;
    if (this.#hasUser()) this.#userSeen();
    else {
      this.#emptyTimer = setTimeout(() => {
        this.#emptyTimer = undefined;
        if (!this.#seenUser) this.#end("nobody_joined");
      }, o.emptyRoomTimeoutMs);
    }
    if (o.presence !== undefined) {
      void this.#checkPresence();
      this.#presenceTimer = setInterval(() => void this.#checkPresence(), o.presencePollMs ?? 2000);
    }
  }

  #userSeen(): void {
    this.#seenUser = true;
    if (this.#emptyTimer !== undefined) {
      clearTimeout(this.#emptyTimer);
      this.#emptyTimer = undefined;
    }
  }

  async #checkPresence(): Promise<void> {
    const presence = this.#o.presence;
    if (presence === undefined || this.#checking) return;
    this.#checking = true;
    try {
      const users = await presence();
      this.#presenceFailures = 0;
      if (users.length > 0) this.#userSeen();
      else if (this.#seenUser && !this.#hasUser()) this.#end("last_user_left");
    } catch (err) {
      this.#presenceFailures += 1;
      // Logged once per run of failures; the SDK's events still end the session meanwhile.
      if (this.#presenceFailures === 1)
        this.#o.log.warn({ err: toWireError(err) }, "room presence check failed");
      if (!this.#seenUser || this.#hasUser()) return;
      this.#end("last_user_left");
    } finally {
      this.#checking = false;
    }
  }

  /** The first failure ends the session; it is what `run` throws. */
  #fail(err: Error): void {
    if (this.#fatal !== undefined) return;
    this.#fatal = err;
    this.#o.log.warn({ err: toWireError(err) }, "voice session failed");
    this.#end("failed");
  }

  #onExchange(exchange: AgentExchange): void {
    const turnId = randomUUID();
    this.#turns += 1;
    this.#queue = this.#queue.then(async () => {
      try {
        if (!this.#answered) {
          this.#answered = true;
          await this.#o.onFirstAnswer();
        }
        await this.#o.record({
          turnId,
          user: exchange.user,
          assistant: exchange.assistant,
          citations: exchange.context?.citations ?? [],
          documentIds: exchange.context?.documentIds ?? [],
          speakers: exchange.speakers,
          timings: exchange.timings,
        });
        this.#o.log.debug({ turnId, interrupted: exchange.interrupted }, "voice exchange recorded");
      } catch (err) {
        this.#o.log.warn({ err: toWireError(err), turnId }, "a voice exchange was not recorded");
      }
    });
  }

  /** Runs until the session ends, then leaves the room. Throws the error that ended it, if any. */
  async run(): Promise<SessionEndReason> {
    const onAbort = (): void => this.#end("stopped");
    if (this.#o.signal.aborted) onAbort();
    else this.#o.signal.addEventListener("abort", onAbort, { once: true });
    try {
      const reason = await this.#ended;
      this.#o.log.info({ reason, turns: this.#turns }, "voice session ending");
      await this.#closeRuntime(reason === "last_user_left" || reason === "nobody_joined");
      await this.#queue;
      if (this.#fatal !== undefined) throw this.#fatal;
      if (reason === "stopped") {
        throw new VoiceSessionError(
          VoiceSessionErrorCodes.WORKER_STOPPING,
          "the worker stopped during the session",
          { retryable: true },
        );
      }
      return reason;
    } finally {
      this.#o.signal.removeEventListener("abort", onAbort);
      await this.close();
    }
  }

  /**
   * Ends the agent session, within bounds: a drain that outlasts `drainTimeoutMs` is cut short, and
   * a close that outlasts `closeTimeoutMs` is abandoned (the room is left all the same, which ends
   * what the session still holds of it).
   */
  async #closeRuntime(drain: boolean): Promise<void> {
    const runtime = this.#runtime;
    this.#runtime = undefined;
    if (runtime === undefined) return;
    await closeAgentRuntime(runtime, {
      drain,
      drainTimeoutMs: this.#o.drainTimeoutMs ?? 10_000,
      closeTimeoutMs: this.#o.closeTimeoutMs ?? 5000,
      log: this.#o.log,
    });
  }

  /**
   * Ends the agent session and leaves the room, each within its deadline; never throws. Safe to
   * call again (a join given up on calls it once its late start settled).
   */
  async close(): Promise<void> {
    this.#closing = true;
    if (this.#emptyTimer !== undefined) clearTimeout(this.#emptyTimer);
    this.#emptyTimer = undefined;
    if (this.#presenceTimer !== undefined) clearInterval(this.#presenceTimer);
    this.#presenceTimer = undefined;
    await this.#closeRuntime(false);
    const room = this.#room;
    // Only a room whose connect resolved is left: one whose connect failed after the FFI dropped
    // its handle says it is connected, but there is nothing left to disconnect.
    if (this.#connected && room.isConnected) {
      const limitMs = this.#o.closeTimeoutMs ?? 5000;
      this.#leaving ??= settleWithin(room.disconnect(), limitMs, (err) =>
        this.#o.log.warn({ err: toWireError(err) }, "leaving the room failed"),
      ).then((left) => {
        if (left === "late") this.#o.log.error({ limitMs }, "leaving the room did not finish in time");
      });
    }
    await this.#leaving;
    // A room the server closed is not released by `disconnect()` (it returns at once): detach it
    // from the SDK, and drop the listeners that would keep this session reachable from it.
    if (this.#connected && !room.isConnected) releaseClosedRoom(room);
    // Dispose the room's FFI handle ourselves once nothing uses it, never leave it to the GC: a
    // handle the FFI already dropped would crash the process from the finalizer. Not while leaving
    // is still under way (past its deadline).
    if (!this.#connected || !room.isConnected) this.#releaseHandle();
    room.removeAllListeners();
  }

  #releaseHandle(): void {
    if (this.#handleReleased) return;
    const log = this.#o.log;
    try {
      const released = disposeRoomHandle(this.#room);
      if (released === "none") return;
      this.#handleReleased = true;
      if (released === "released") log.debug("room handle released");
      else log.warn("the FFI had dropped the room's handle: its connect was answered too late");
    } catch (err) {
      this.#handleReleased = true;
      log.warn({ err: toWireError(err) }, "releasing the room's handle failed");
    }
  }

  #hasUser(): boolean {
    for (const p of this.#room.remoteParticipants.values()) if (isUser(p)) return true;
    return false;
  }
}
