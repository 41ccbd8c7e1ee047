/**
 * The agent in the room: `@livekit/agents`' `AgentSession` on the Room the worker connected, with
 * the tenant's STT, LLM and TTS (our clients, provider_plugins.ts; an STT with a streaming API,
 * Deepgram's, is streamed the users' audio as it is heard, live_stt_plugin.ts) and the energy VAD
 * (vad_plugin.ts) for VAD-based turn detection. There is no job context here (the worker runs many
 * sessions in one process, not the library's process per job), so: the library's logger is
 * initialised once per process, and turn detection is explicit (the default
 * `inference.TurnDetector` and Silero VAD are never built).
 *
 * What the session's room I/O does: it publishes the agent's voice as a microphone track, and the
 * agent's replies (and the users' transcripts) as text streams on `lk.transcription`. What we do
 * instead: listen to every user's microphone (users_audio_input.ts: the room I/O links only the
 * first participant, for good), one speaker at a time, and publish each transcript on behalf of
 * the user who said it (the room I/O's linked participant follows the speaker); each answered
 * turn names who spoke it. Read `lk.chat` ourselves, because the
 * room I/O drops a message whose sender its Room has not announced yet (seen in about one of
 * four fresh joins), and hand each message to `generateReply` in arrival order, as the room I/O's
 * own text callback would. Retrieval runs in the agent's `llmNode`, once per committed user turn,
 * for spoken and typed turns alike (`onUserTurnCompleted` sees only spoken ones).
 */
import { initializeLogger, llm, loggerOptions, voice } from "@livekit/agents";
import { ParticipantKind, RoomEvent } from "@livekit/rtc-node";
import type { LocalTrackPublication, RemoteParticipant, Room, TextStreamReader } from "@livekit/rtc-node";
import type { Logger } from "pino";
import { SfError, toWireError } from "../../bus/index.ts";
import type { HistoryTurn } from "../../actors/index.ts";
import type { LlmClient } from "../providers/llm_client.ts";
import type { SttClient } from "../providers/stt_client.ts";
import type { LiveSttClient } from "../providers/stt_live.ts";
import type { TtsClient } from "../providers/tts_client.ts";
import { ProviderCallError, ProviderLlm, ProviderStt, ProviderTts } from "./provider_plugins.ts";
import type { ProviderReports } from "./provider_plugins.ts";
import { CHAT_TOPIC, VoiceSessionError, VoiceSessionErrorCodes } from "./session_types.ts";
import type { AgentExchange, TurnContext } from "./session_types.ts";
import { TurnPrompts } from "./turn_prompt.ts";
import { LlmTimings, voiceTurnTimings } from "./turn_timings.ts";
import { UsersAudioInput } from "./users_audio_input.ts";
import { ProviderLiveStt } from "./live_stt_plugin.ts";
import { EnergyVadPlugin } from "./vad_plugin.ts";

export interface AgentRuntimeOptions {
  /** Connected. */
  room: Room;
  llm: LlmClient;
  /** Speech: with both, the agent listens to the user's microphone and answers aloud. */
  stt?: SttClient;
  /**
   * The STT provider's streaming API (with `stt`): the session streams the users' audio to it and
   * takes its interim and final transcripts as they come (`ProviderLiveStt`), instead of sending
   * each utterance the VAD cut once it ended (`ProviderStt`).
   */
  sttLive?: LiveSttClient;
  tts?: TtsClient;
  /** Sample rate of the TTS clients' PCM (the agent's track plays it as is). */
  ttsSampleRate: number;
  /** The rate users' microphones are read at. */
  inputSampleRate: number;
  instructions: string | null;
  history: readonly HistoryTurn[];
  /** Turns of the conversation kept in the prompt. */
  windowTurns: number;
  retrieve?: (text: string, signal: AbortSignal) => Promise<TurnContext | null>;
  /** Each answered turn, in order. */
  onExchange: (exchange: AgentExchange) => void;
  /** A provider refused a call, or the agent session ended on its own: the voice session ends. */
  onFailure: (err: Error) => void;
  /** A text message arrived (someone is in the room even if the SDK has not said so yet). */
  onUserActivity: () => void;
  log: Logger;
  /** Level of the library's own logger (it logs to stdout as JSON). */
  libraryLogLevel: string;
  /** How long a message waits for its sender to be announced before it is answered. Default 5000. */
  senderWaitMs?: number;
}

export interface AgentRuntime {
  /**
   * Ends the agent session: `drain` lets the reply in progress finish first; without it, a drain
   * already under way is cut short. The caller bounds the wait (voice_session.ts).
   */
  close(options: { drain: boolean }): Promise<void>;
}

/** The library's logger is process-wide; it must exist before any of its objects do. */
function ensureLibraryLogger(level: string): void {
  if (loggerOptions() === undefined) initializeLogger({ pretty: false, level });
}

/**
 * The session's room I/O starts the agent's audio output only once someone subscribed to the
 * agent's track (`LocalTrackPublication.waitForSubscription()`, which nothing can cancel), and its
 * `close()` awaits that start. A user who leaves, or a room that goes away, before anyone
 * subscribed leaves that wait pending for ever, and `AgentSession.close()` with it. Once the
 * session closes nobody will listen, so the wait is released the way the room itself releases it
 * on a first subscription (`resolveFirstSubscription()`): for the agent's tracks published now,
 * and for any whose publication completes while the session closes (the room announces a
 * publication after registering it). Returns what stops watching.
 */
function releaseSubscriptionWaits(room: Room): () => void {
  const release = (publication: LocalTrackPublication | undefined): void =>
    publication?.resolveFirstSubscription();
  for (const publication of room.localParticipant?.trackPublications.values() ?? []) release(publication);
  room.on(RoomEvent.LocalTrackPublished, release);
  return () => room.off(RoomEvent.LocalTrackPublished, release);
}

function isAgentParticipant(p: RemoteParticipant | undefined): boolean {
  return p?.kind === ParticipantKind.AGENT;
}

/** The coded error behind what the library reported, or one naming the session's failure. */
function failureOf(error: unknown, reason: string): Error {
  if (error instanceof ProviderCallError) return error.providerError;
  if (error instanceof SfError) return error;
  const message = error instanceof Error ? error.message : `the agent session closed (${reason})`;
  return new VoiceSessionError(VoiceSessionErrorCodes.AGENT_SESSION_FAILED, message.slice(0, 200), {
    details: { reason },
    ...(error === undefined || error === null ? {} : { cause: error }),
  });
}

/** Interrupts what the agent is saying, if it is still running; the close that follows waits for it. */
function interruptSpeech(session: voice.AgentSession, log: Logger): void {
  try {
    // The interruption's own future is not awaited: the session's close is (with its deadline).
    session.interrupt({ force: true });
  } catch (err) {
    // "AgentSession is not running": the close is already past its activity.
    log.debug({ err: toWireError(err) }, "nothing to interrupt");
  }
}

/** The agent: the session's default pipeline, with retrieval and the prompt window in `llmNode`. */
class SidekickAgent extends voice.Agent {
  readonly #prompt: (chatCtx: llm.ChatContext) => Promise<llm.ChatContext>;
  readonly #llmTimings: LlmTimings;

  constructor(
    options: voice.AgentOptions<unknown>,
    prompt: (chatCtx: llm.ChatContext) => Promise<llm.ChatContext>,
    llmTimings: LlmTimings,
  ) {
    super(options);
    this.#prompt = prompt;
    this.#llmTimings = llmTimings;
  }

  override async llmNode(
    chatCtx: llm.ChatContext,
    toolCtx: llm.ToolContext,
    modelSettings: voice.ModelSettings,
  ): ReturnType<voice.Agent["llmNode"]> {
    const built = await this.#prompt(chatCtx);
    const stream = await voice.Agent.default.llmNode(this, built, toolCtx, modelSettings);
    // Timed from the built prompt (after retrieval), for the turn's recorded timings.
    const lastUser = chatCtx.items.findLast(
      (i): i is llm.ChatMessage => i.type === "message" && i.role === "user",
    );
    return stream === null || lastUser === undefined ? stream : this.#llmTimings.measure(lastUser.id, stream);
  }
}

export async function startAgentRuntime(options: AgentRuntimeOptions): Promise<AgentRuntime> {
  ensureLibraryLogger(options.libraryLogLevel);
  const { room, log } = options;
  const abort = new AbortController();
  let closing = false;
  const refused = (err: SfError): void => {
    if (!closing) options.onFailure(err);
  };
  const reports: ProviderReports = {
    refused,
    transient: (err) =>
      log.warn({ err: toWireError(err) }, "a provider call failed; that part of the reply is lost"),
  };
  const speech = options.stt !== undefined && options.tts !== undefined;

  // Retrieval, once per committed user turn, and the prompt window.
  const prompts = new TurnPrompts({
    windowTurns: options.windowTurns,
    ...(options.retrieve === undefined ? {} : { retrieve: options.retrieve }),
    signal: abort.signal,
    refused,
  });
  const prompt = async (chatCtx: llm.ChatContext): Promise<llm.ChatContext> => {
    try {
      return await prompts.build(chatCtx);
    } catch (err) {
      log.warn({ err: toWireError(err) }, "retrieval for the voice turn failed");
      throw err;
    }
  };

  const history = llm.ChatContext.empty();
  for (const turn of options.history.slice(-options.windowTurns)) {
    history.addMessage({ role: "user", content: turn.user });
    history.addMessage({ role: "assistant", content: turn.assistant });
  }
  const llmTimings = new LlmTimings();
  const agent = new SidekickAgent(
    { instructions: options.instructions ?? "", chatCtx: history },
    prompt,
    llmTimings,
  );
  const models = {
    llm: new ProviderLlm(options.llm, reports),
    ...(speech && options.stt !== undefined && options.tts !== undefined
      ? {
          stt:
            options.sttLive === undefined
              ? new ProviderStt(options.stt, reports)
              : new ProviderLiveStt(options.stt, options.sttLive, reports, {
                  sampleRate: options.inputSampleRate,
                }),
          tts: new ProviderTts(options.tts, reports, options.ttsSampleRate),
        }
      : {}),
  };
  // The library reports model errors as `error` events; one emitted while no activity listens
  // (a session closing) would be an unhandled `error` event, fatal to the whole process.
  for (const model of [models.llm, models.stt, models.tts]) {
    model?.on("error", (ev: { error: Error; recoverable: boolean }) =>
      log.debug({ err: toWireError(ev.error), recoverable: ev.recoverable }, "model error reported"),
    );
  }
  const session = new voice.AgentSession({
    ...models,
    vad: speech ? new EnergyVadPlugin() : null,
    turnHandling: {
      turnDetection: speech ? "vad" : "manual",
      interruption: { mode: "vad" },
      // Retrieval runs for committed turns only, never for a speculative one.
      preemptiveGeneration: { enabled: false },
    },
    // Our clients keep their own deadlines; the library retries what they call transient.
    connOptions: {
      llmConnOptions: { maxRetry: 1, retryIntervalMs: 1000, timeoutMs: 120_000 },
      sttConnOptions: { maxRetry: 1, retryIntervalMs: 1000, timeoutMs: 30_000 },
      ttsConnOptions: { maxRetry: 1, retryIntervalMs: 1000, timeoutMs: 30_000 },
    },
    userAwayTimeout: null,
  });

  // Every user's microphone, one speaker at a time (the room I/O would hear the first user only).
  const audioInput = speech
    ? new UsersAudioInput({ room, sampleRate: options.inputSampleRate, log })
    : undefined;
  if (audioInput !== undefined) session.input.audio = audioInput;

  // Who said what. Spoken: the speakers of the final transcripts heard since the last user turn
  // (the STT names each utterance's speaker). Registered before the room I/O's own listener, so the
  // transcript it publishes goes out on behalf of the user who said it; a streaming STT's interim
  // transcripts too, which come before the final one (and may follow another user's turn). Only a
  // change of speaker relinks: relinking ends the transcript segment in progress, which would cut
  // an utterance's interim transcripts off from its final one.
  const heard: string[] = [];
  let linked: string | undefined;
  session.on(voice.AgentSessionEventTypes.UserInputTranscribed, (ev) => {
    if (ev.speakerId === null) return;
    if (ev.isFinal) heard.push(ev.speakerId);
    if (ev.speakerId === linked) return;
    linked = ev.speakerId;
    session._roomIO?.setParticipant(ev.speakerId);
  });
  // Typed: the sender of each message handed to the session, matched by its text.
  const typed: { text: string; identity: string }[] = [];
  const speakersOf = (message: llm.ChatMessage): string[] => {
    const text = message.textContent ?? "";
    const at = typed.findIndex((t) => t.text === text);
    if (at < 0) return heard.splice(0);
    // Messages before it that never became a turn are dropped with it.
    const sender = typed.splice(0, at + 1).pop();
    return sender === undefined ? [] : [sender.identity];
  };

  // Transcripts as the session commits them: each reply with the user turn(s) it answers.
  const pending: { message: llm.ChatMessage; speakers: string[] }[] = [];
  session.on(voice.AgentSessionEventTypes.ConversationItemAdded, (ev) => {
    const item = ev.item;
    if (item.type !== "message") return;
    if (item.role === "user") {
      pending.push({ message: item, speakers: speakersOf(item) });
      return;
    }
    if (item.role !== "assistant") return;
    const assistant = item.textContent?.trim() ?? "";
    if (assistant === "" || pending.length === 0) return;
    const users = pending.splice(0);
    const last = (users[users.length - 1] as (typeof users)[number]).message;
    const user = users
      .map((u) => u.message.textContent?.trim() ?? "")
      .filter((t) => t !== "")
      .join("\n");
    const speakers = [...new Set(users.flatMap((u) => u.speakers))];
    const llmCall = llmTimings.take(last.id);
    prompts
      .retrieved(last)
      .then((context) => {
        const timings = voiceTurnTimings(last, item, {
          retrievalMs: prompts.retrievalMs(last),
          llm: llmCall,
        });
        options.onExchange({ user, assistant, interrupted: item.interrupted, context, speakers, timings });
      })
      .catch((err: unknown) => log.warn({ err: toWireError(err) }, "a voice exchange was not passed on"));
  });
  // Released once the session closes, whoever closes it (the library emits Close before it closes
  // its room I/O).
  let stopReleasing: (() => void) | undefined;
  const closingNow = (): void => {
    stopReleasing ??= releaseSubscriptionWaits(room);
  };
  session.on(voice.AgentSessionEventTypes.Close, (ev) => {
    closingNow();
    if (closing) return;
    closing = true;
    abort.abort();
    const reported = ev.error ?? undefined;
    const error: unknown = reported !== undefined && "error" in reported ? reported.error : reported;
    log.warn({ reason: ev.reason, err: toWireError(error ?? new Error(ev.reason)) }, "agent session closed");
    options.onFailure(failureOf(error, ev.reason));
  });

  // Typed messages, in arrival order, once their sender is known to the room.
  let texts: Promise<void> = Promise.resolve();
  const senderWaitMs = options.senderWaitMs ?? 5000;
  const announced = (identity: string): Promise<void> =>
    new Promise((resolve) => {
      if (room.remoteParticipants.has(identity)) return resolve();
      const done = (): void => {
        clearTimeout(timer);
        room.off(RoomEvent.ParticipantConnected, onJoin);
        resolve();
      };
      const onJoin = (p: RemoteParticipant): void => {
        if (p.identity === identity) done();
      };
      const timer = setTimeout(() => {
        log.warn({ from: identity }, "a message's sender was not announced in time; answering anyway");
        done();
      }, senderWaitMs);
      room.on(RoomEvent.ParticipantConnected, onJoin);
    });
  const onText = (reader: TextStreamReader, from: { identity: string }): void => {
    if (isAgentParticipant(room.remoteParticipants.get(from.identity))) return;
    options.onUserActivity();
    const text = reader.readAll();
    texts = texts
      .then(async () => {
        const message = (await text).trim();
        if (message === "" || closing) return;
        await announced(from.identity);
        if (closing) return;
        typed.push({ text: message, identity: from.identity });
        session.generateReply({ userInput: message });
      })
      .catch((err: unknown) => {
        if (!closing)
          log.warn({ err: toWireError(err), from: from.identity }, "a text message was not answered");
      });
  };

  await session.start({
    agent,
    room,
    inputOptions: {
      textEnabled: false,
      // Our own input (above) when the agent listens: the room I/O's would hear one user only.
      audioEnabled: false,
      audioSampleRate: options.inputSampleRate,
      audioNumChannels: 1,
      // The voice session decides when the agent leaves (the last user, not the first, leaving).
      closeOnDisconnect: false,
    },
    outputOptions: {
      audioEnabled: speech,
      audioSampleRate: options.ttsSampleRate,
      audioNumChannels: 1,
      transcriptionEnabled: true,
    },
    record: false,
  });
  room.registerTextStreamHandler(CHAT_TOPIC, onText);
  let handlerRemoved = false;

  return {
    async close({ drain }): Promise<void> {
      if (!handlerRemoved) {
        handlerRemoved = true;
        room.unregisterTextStreamHandler(CHAT_TOPIC);
      }
      closingNow();
      const first = !closing;
      closing = true;
      if (first && drain) session.shutdown({ drain: true });
      if (!drain) {
        abort.abort();
        // A drain under way waits for the reply in progress: interrupt it (its playout, even).
        if (!first) interruptSpeech(session, log);
      }
      try {
        await session.close();
      } finally {
        abort.abort();
        stopReleasing?.();
        await audioInput?.close();
      }
    },
  };
}
