/**
 * The agent session's audio input in a room with several users. The library's room I/O links ONE
 * participant (the first to join) and keeps listening to that identity after it left, so nobody
 * else was ever heard. This input subscribes every user's microphone and passes on the floor
 * holder's (speaker_floor.ts): whoever speaks is heard, one at a time, whoever joined first or left.
 *
 * Agents are never listened to: a participant of kind agent, an identity `agent-*`, or one that
 * publishes on this agent's behalf (an avatar). Each frame passed on carries the identity of the
 * user it came from (`userdata[SPEAKER_USERDATA_KEY]`): the VAD keeps it on the utterance it cuts
 * (vad_plugin.ts) and the STT names it as the transcript's speaker (provider_plugins.ts).
 */
import { voice } from "@livekit/agents";
import type { AudioBuffer } from "@livekit/agents";
import {
  AudioFrame,
  AudioStream,
  ParticipantKind,
  RoomEvent,
  TrackKind,
  TrackSource,
} from "@livekit/rtc-node";
import type { RemoteParticipant, RemoteTrack, RemoteTrackPublication, Room } from "@livekit/rtc-node";
import { ReadableStream } from "node:stream/web";
import type { ReadableStreamDefaultController } from "node:stream/web";
import type { Logger } from "pino";
import { toWireError } from "../../bus/index.ts";
import { SpeakerFloor } from "./speaker_floor.ts";
import type { FloorAudio, SpeakerFloorOptions } from "./speaker_floor.ts";

/** Where a frame names the user it came from. */
export const SPEAKER_USERDATA_KEY = "sf.speaker";

/**
 * How much audio each frame from a microphone holds. The FFI's default is 10 ms; every frame costs
 * the same JS work whatever its length (an FFI event, the speaker floor, the VAD, the library's
 * streams, a WebSocket message to a live STT), so 20 ms frames, the length of a WebRTC Opus packet,
 * halve a session's audio work without adding more than 10 ms to when speech is noticed.
 */
export const MICROPHONE_FRAME_MS = 20;

/** The attribute a participant publishing for an agent (an avatar) carries: that agent's identity. */
const PUBLISH_ON_BEHALF = "lk.publish_on_behalf";

/** The user an utterance came from, as its frames name it. */
export function speakerOf(buffer: AudioBuffer): string | undefined {
  const frames = Array.isArray(buffer) ? buffer : [buffer];
  for (const frame of frames) {
    const speaker = frame.userdata[SPEAKER_USERDATA_KEY];
    if (typeof speaker === "string") return speaker;
  }
  return undefined;
}

export interface UsersAudioInputOptions {
  room: Room;
  /** The rate the session reads (every microphone is resampled to it, mono). */
  sampleRate: number;
  log: Logger;
  floor?: Omit<SpeakerFloorOptions, "sampleRate">;
}

interface Source {
  publicationSid: string;
  reader: ReadableStreamDefaultReader<AudioFrame>;
}

export class UsersAudioInput extends voice.AudioInput {
  readonly #room: Room;
  readonly #rate: number;
  readonly #log: Logger;
  readonly #floor: SpeakerFloor;
  readonly #sources = new Map<string, Source>();
  #controller!: ReadableStreamDefaultController<AudioFrame>;
  #attached = true;
  #closed = false;
  /** The floor holder last logged. */
  #logged: string | undefined;

  constructor(options: UsersAudioInputOptions) {
    super();
    this.#room = options.room;
    this.#rate = options.sampleRate;
    this.#log = options.log;
    this.#floor = new SpeakerFloor({ ...options.floor, sampleRate: options.sampleRate });
    const frames = new ReadableStream<AudioFrame>({
      start: (controller) => {
        this.#controller = controller;
      },
    });
    this.multiStream.addInputStream(frames);
    const room = this.#room;
    room.on(RoomEvent.TrackSubscribed, this.#onTrackSubscribed);
    room.on(RoomEvent.TrackUnsubscribed, this.#onTrackUnsubscribed);
    room.on(RoomEvent.TrackUnpublished, this.#onTrackUnpublished);
    room.on(RoomEvent.ParticipantDisconnected, this.#onParticipantDisconnected);
    // Microphones subscribed before this input existed.
    for (const participant of room.remoteParticipants.values()) {
      for (const publication of participant.trackPublications.values()) {
        if (publication.track !== undefined)
          this.#onTrackSubscribed(publication.track, publication, participant);
      }
    }
  }

  /** Who the session hears now, if anyone. */
  get speaker(): string | undefined {
    return this.#floor.holder;
  }

  override setAttached(attached: boolean): void {
    this.#attached = attached;
  }

  override async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const room = this.#room;
    room.off(RoomEvent.TrackSubscribed, this.#onTrackSubscribed);
    room.off(RoomEvent.TrackUnsubscribed, this.#onTrackUnsubscribed);
    room.off(RoomEvent.TrackUnpublished, this.#onTrackUnpublished);
    room.off(RoomEvent.ParticipantDisconnected, this.#onParticipantDisconnected);
    for (const identity of [...this.#sources.keys()]) this.#stop(identity);
    this.#controller.close();
    if (this.#floor.droppedSamples > 0)
      this.#log.info(
        { droppedMs: Math.round((this.#floor.droppedSamples / this.#rate) * 1000) },
        "overlapping speech dropped while waiting for the floor",
      );
    await super.close();
  }

  #isUser(participant: RemoteParticipant): boolean {
    if (participant.kind === ParticipantKind.AGENT || participant.identity.startsWith("agent-")) return false;
    const self = this.#room.localParticipant?.identity;
    return self === undefined || participant.attributes[PUBLISH_ON_BEHALF] !== self;
  }

  readonly #onTrackSubscribed = (
    track: RemoteTrack,
    publication: RemoteTrackPublication,
    participant: RemoteParticipant,
  ): void => {
    if (this.#closed || track.kind !== TrackKind.KIND_AUDIO) return;
    if (publication.source !== TrackSource.SOURCE_MICROPHONE || !this.#isUser(participant)) return;
    const identity = participant.identity;
    const sid = publication.sid ?? "";
    if (this.#sources.get(identity)?.publicationSid === sid) return;
    this.#stop(identity);
    const reader = new AudioStream(track, {
      sampleRate: this.#rate,
      numChannels: 1,
      frameSizeMs: MICROPHONE_FRAME_MS,
    }).getReader();
    this.#sources.set(identity, { publicationSid: sid, reader });
    this.#log.debug({ identity }, "listening to a user's microphone");
    void this.#read(identity, reader).catch((err: unknown) => {
      if (!this.#closed) this.#log.warn({ err: toWireError(err), identity }, "a user's microphone failed");
      if (this.#sources.get(identity)?.reader === reader) this.#stop(identity);
    });
  };

  readonly #onTrackUnsubscribed = (
    _track: RemoteTrack,
    publication: RemoteTrackPublication,
    participant: RemoteParticipant,
  ): void => this.#stopPublication(participant.identity, publication.sid);

  readonly #onTrackUnpublished = (
    publication: RemoteTrackPublication,
    participant: RemoteParticipant,
  ): void => this.#stopPublication(participant.identity, publication.sid);

  readonly #onParticipantDisconnected = (participant: RemoteParticipant): void => {
    this.#stop(participant.identity);
  };

  #stopPublication(identity: string, sid: string | undefined): void {
    if (this.#sources.get(identity)?.publicationSid === (sid ?? "")) this.#stop(identity);
  }

  async #read(identity: string, reader: ReadableStreamDefaultReader<AudioFrame>): Promise<void> {
    for (;;) {
      const { done, value } = await reader.read();
      if (done || this.#sources.get(identity)?.reader !== reader) return;
      this.#pass(this.#floor.push(identity, value.data));
    }
  }

  /** Stops listening to a user's microphone; a waiting user may take the floor it held. */
  #stop(identity: string): void {
    const source = this.#sources.get(identity);
    if (source === undefined) return;
    this.#sources.delete(identity);
    source.reader
      .cancel()
      .catch((err: unknown) =>
        this.#log.debug({ err: toWireError(err), identity }, "closing a user's microphone stream failed"),
      );
    this.#pass(this.#floor.remove(identity));
  }

  #pass(audio: FloorAudio[]): void {
    if (this.#floor.holder !== this.#logged) {
      this.#logged = this.#floor.holder;
      this.#log.debug({ identity: this.#logged }, "the floor went to another user");
    }
    if (this.#closed || !this.#attached) return;
    for (const { identity, samples } of audio) {
      this.#controller.enqueue(
        new AudioFrame(samples, this.#rate, 1, samples.length, { [SPEAKER_USERDATA_KEY]: identity }),
      );
    }
  }
}
