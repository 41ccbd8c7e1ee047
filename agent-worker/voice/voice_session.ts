/**
 * One voice session in a LiveKit room, inside the worker process (many share it): joined with the
 * agent token the tenant actor minted, it answers the text messages users send on `lk.chat` with
 * the agent's LLM (system prompt + the conversation's window), replies on `lk.transcription`,
 * records each exchange through the tenant actor (`turn-record`, source "voice"), and ends when
 * the last non-agent participant leaves, when nobody comes within a bounded wait, when the room
 * goes away, or when the worker must stop.
 */
import { randomUUID } from "node:crypto";
import {
  AudioFrame,
  AudioSource,
  AudioStream,
  LocalAudioTrack,
  ParticipantKind,
  Room,
  RoomEvent,
  TrackKind,
  TrackPublishOptions,
  TrackSource,
} from "@livekit/rtc-node";
import type { RemoteParticipant, RemoteTrack, TextStreamReader } from "@livekit/rtc-node";
import type { Logger } from "pino";
import { SfError, toWireError } from "../../bus/index.ts";
import type { HistoryTurn, VoiceJobLivekit } from "../../actors/index.ts";
import type { ChatMessage, LlmClient } from "../providers/llm_client.ts";
import type { SttClient } from "../providers/stt_client.ts";
import type { TtsClient } from "../providers/tts_client.ts";
import { EnergyVad } from "./energy_vad.ts";

/** The sample rate the agent listens and speaks at (the TTS clients' PCM). */
export const AGENT_AUDIO_SAMPLE_RATE = 16_000;
const FRAME_MS = 20;

export const CHAT_TOPIC = "lk.chat";
export const TRANSCRIPTION_TOPIC = "lk.transcription";

export type SessionEndReason = "last_user_left" | "nobody_joined" | "room_closed" | "stopped" | "failed";

export interface RecordedExchange {
  turnId: string;
  user: string;
  assistant: string;
  /** What retrieval put in the prompt (empty without RAG). */
  citations: unknown[];
  documentIds: string[];
}

/** Retrieved context for one committed user turn. */
export interface TurnContext {
  message: string | null;
  citations: unknown[];
  documentIds: string[];
}

export interface VoiceSessionOptions {
  livekit: VoiceJobLivekit;
  llm: LlmClient;
  /** Speech: with both, the agent listens to users' microphones and answers aloud. */
  stt?: SttClient;
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
}

export class VoiceSessionError extends SfError {
  override name = "VoiceSessionError";
}

function isUser(p: RemoteParticipant): boolean {
  return p.kind !== ParticipantKind.AGENT;
}

export class VoiceSession {
  readonly #o: VoiceSessionOptions;
  readonly #room = new Room();
  readonly #abort = new AbortController();
  readonly #turns: HistoryTurn[];
  #queue: Promise<void> = Promise.resolve();
  #answered = false;
  #fatal: Error | undefined;
  #end!: (reason: SessionEndReason) => void;
  readonly #ended: Promise<SessionEndReason>;
  #emptyTimer: NodeJS.Timeout | undefined;
  #presenceTimer: NodeJS.Timeout | undefined;
  #seenUser = false;
  #checking = false;
  #presenceFailures = 0;
  #speaker: AudioSource | undefined;
  readonly #listeners = new Set<ReadableStreamDefaultReader<AudioFrame>>();

  constructor(options: VoiceSessionOptions) {
    this.#o = options;
    this.#turns = options.history.slice(-options.windowTurns);
    this.#ended = new Promise((resolve) => {
      this.#end = resolve;
    });
  }

  get room(): Room {
    return this.#room;
  }

  /** Joins the room; resolves once connected (the caller then says `joined`). */
  async join(): Promise<void> {
    const room = this.#room;
    room.on(RoomEvent.ParticipantConnected, (p: RemoteParticipant) => {
      this.#o.log.debug({ identity: p.identity, kind: p.kind }, "participant joined");
      if (isUser(p)) this.#userSeen();
    });
    room.on(RoomEvent.ParticipantDisconnected, (p: RemoteParticipant) => {
      this.#o.log.debug({ identity: p.identity }, "participant left");
      if (this.#hasUser()) return;
      if (this.#o.presence === undefined) this.#end("last_user_left");
      else void this.#checkPresence();
    });
    room.on(RoomEvent.Disconnected, () => this.#end("room_closed"));
    room.registerTextStreamHandler(CHAT_TOPIC, (reader, from) => this.#onText(reader, from.identity));
    if (this.#o.stt !== undefined && this.#o.tts !== undefined) {
      room.on(RoomEvent.TrackSubscribed, (track: RemoteTrack, _pub, participant: RemoteParticipant) => {
        if (track.kind === TrackKind.KIND_AUDIO && isUser(participant))
          this.#listen(track, participant.identity);
      });
    }
    await room.connect(this.#o.livekit.url, this.#o.livekit.token, { autoSubscribe: true, dynacast: false });
    this.#o.log.debug({ participants: [...room.remoteParticipants.keys()] }, "voice room connected");
    if (this.#o.stt !== undefined && this.#o.tts !== undefined && room.localParticipant !== undefined) {
      this.#speaker = new AudioSource(AGENT_AUDIO_SAMPLE_RATE, 1);
      const track = LocalAudioTrack.createAudioTrack("agent-voice", this.#speaker);
      await room.localParticipant.publishTrack(
        track,
        new TrackPublishOptions({ source: TrackSource.SOURCE_MICROPHONE }),
      );
    }
    if (this.#hasUser()) this.#userSeen();
    else {
      this.#emptyTimer = setTimeout(() => {
        this.#emptyTimer = undefined;
        if (!this.#seenUser) this.#end("nobody_joined");
      }, this.#o.emptyRoomTimeoutMs);
    }
    if (this.#o.presence !== undefined) {
      void this.#checkPresence();
      this.#presenceTimer = setInterval(() => void this.#checkPresence(), this.#o.presencePollMs ?? 2000);
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

  /** Runs until the session ends, then leaves the room. Throws the error that ended it, if any. */
  async run(): Promise<SessionEndReason> {
    const onAbort = (): void => this.#end("stopped");
    if (this.#o.signal.aborted) onAbort();
    else this.#o.signal.addEventListener("abort", onAbort, { once: true });
    try {
      const reason = await this.#ended;
      this.#o.log.info({ reason, turns: this.#turns.length }, "voice session ending");
      if (reason === "stopped") this.#abort.abort();
      await this.#queue;
      if (this.#fatal !== undefined) throw this.#fatal;
      if (reason === "stopped") {
        throw new VoiceSessionError("SF_ERR_WORKER_STOPPING", "the worker stopped during the session", {
          retryable: true,
        });
      }
      return reason;
    } finally {
      this.#o.signal.removeEventListener("abort", onAbort);
      await this.close();
    }
  }

  async close(): Promise<void> {
    if (this.#emptyTimer !== undefined) clearTimeout(this.#emptyTimer);
    this.#emptyTimer = undefined;
    if (this.#presenceTimer !== undefined) clearInterval(this.#presenceTimer);
    this.#presenceTimer = undefined;
    this.#abort.abort();
    this.#room.unregisterTextStreamHandler(CHAT_TOPIC);
    for (const reader of this.#listeners) await reader.cancel();
    this.#listeners.clear();
    if (this.#speaker !== undefined) await this.#speaker.close();
    this.#speaker = undefined;
    if (this.#room.isConnected) await this.#room.disconnect();
  }

  #hasUser(): boolean {
    for (const p of this.#room.remoteParticipants.values()) if (isUser(p)) return true;
    return false;
  }

  #onText(reader: TextStreamReader, identity: string): void {
    const sender = this.#room.remoteParticipants.get(identity);
    if (sender !== undefined && !isUser(sender)) return;
    this.#userSeen();
    const text = reader.readAll();
    // One exchange at a time, in arrival order, so each reply is built on the ones before it.
    this.#queue = this.#queue.then(() => this.#answer(text, identity, false));
  }

  /** Reads a user's microphone: utterances (energy VAD) → STT → the same exchange, spoken. */
  #listen(track: RemoteTrack, identity: string): void {
    const stt = this.#o.stt;
    if (stt === undefined) return;
    const reader = new AudioStream(track, {
      sampleRate: AGENT_AUDIO_SAMPLE_RATE,
      numChannels: 1,
    }).getReader();
    this.#listeners.add(reader);
    const vad = new EnergyVad({ sampleRate: AGENT_AUDIO_SAMPLE_RATE });
    const heard = (pcm: Int16Array): void => {
      const text = stt
        .transcribe(
          {
            pcm: new Uint8Array(pcm.buffer, pcm.byteOffset, pcm.byteLength),
            sampleRate: AGENT_AUDIO_SAMPLE_RATE,
            channels: 1,
          },
          { signal: this.#abort.signal },
        )
        .then((t) => t.text);
      this.#queue = this.#queue.then(() => this.#answer(text, identity, true));
    };
    const loop = async (): Promise<void> => {
      try {
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          const utterance = vad.push(value.data);
          if (utterance !== undefined) heard(utterance);
        }
        const last = vad.flush();
        if (last !== undefined && !this.#abort.signal.aborted) heard(last);
      } catch (err) {
        if (!this.#abort.signal.aborted)
          this.#o.log.warn({ err: toWireError(err), from: identity }, "audio stream failed");
      } finally {
        this.#listeners.delete(reader);
      }
    };
    void loop();
  }

  async #speak(text: string): Promise<void> {
    const { tts } = this.#o;
    const speaker = this.#speaker;
    if (tts === undefined || speaker === undefined) return;
    const audio = await tts.synthesize(text, { signal: this.#abort.signal });
    if (audio.sampleRate !== AGENT_AUDIO_SAMPLE_RATE || audio.channels !== 1) {
      throw new VoiceSessionError("SF_ERR_PROVIDER_BAD_RESPONSE", "the TTS audio is not 16 kHz mono", {
        details: {
          kind: "tts",
          provider: tts.provider,
          sampleRate: audio.sampleRate,
          channels: audio.channels,
        },
      });
    }
    const samples = new Int16Array(audio.pcm.slice().buffer);
    const step = (AGENT_AUDIO_SAMPLE_RATE * FRAME_MS) / 1000;
    for (let at = 0; at < samples.length && !this.#abort.signal.aborted; at += step) {
      const chunk = samples.slice(at, Math.min(at + step, samples.length));
      await speaker.captureFrame(new AudioFrame(chunk, AGENT_AUDIO_SAMPLE_RATE, 1, chunk.length));
    }
    await speaker.waitForPlayout();
  }

  async #answer(textPromise: Promise<string>, identity: string, spoken: boolean): Promise<void> {
    const log = this.#o.log;
    try {
      const text = (await textPromise).trim();
      if (text === "" || this.#abort.signal.aborted) return;
      const context = (await this.#o.retrieve?.(text, this.#abort.signal)) ?? null;
      const messages: ChatMessage[] = [];
      if (this.#o.systemPrompt) messages.push({ role: "system", content: this.#o.systemPrompt });
      if (context?.message) messages.push({ role: "system", content: context.message });
      for (const turn of this.#turns) {
        messages.push({ role: "user", content: turn.user }, { role: "assistant", content: turn.assistant });
      }
      messages.push({ role: "user", content: text });
      const reply = await this.#o.llm.complete({ messages }, { signal: this.#abort.signal });
      const turnId = randomUUID();
      const local = this.#room.localParticipant;
      if (local === undefined) return;
      await local.sendText(reply, {
        topic: TRANSCRIPTION_TOPIC,
        attributes: { "lk.segment_id": turnId, "lk.transcription_final": "true" },
      });
      if (spoken) await this.#speak(reply);
      this.#turns.push({ user: text, assistant: reply });
      if (this.#turns.length > this.#o.windowTurns)
        this.#turns.splice(0, this.#turns.length - this.#o.windowTurns);
      if (!this.#answered) {
        this.#answered = true;
        await this.#o.onFirstAnswer();
      }
      await this.#o.record({
        turnId,
        user: text,
        assistant: reply,
        citations: context?.citations ?? [],
        documentIds: context?.documentIds ?? [],
      });
      log.debug({ turnId, from: identity }, "voice text exchange recorded");
    } catch (err) {
      const error = toWireError(err);
      if (this.#abort.signal.aborted) return;
      log.warn({ err: error, from: identity }, "voice text exchange failed");
      if (!error.retryable) {
        // No fallback: a provider that refuses (key, model) ends the session with its error.
        this.#fatal = err instanceof Error ? err : new VoiceSessionError(error.code, error.message);
        this.#end("failed");
      }
    }
  }
}
