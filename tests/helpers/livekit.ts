/** The shared dev livekit-server as the voice suites see it from outside: its room service, and waits on its rooms. */
import {
  AudioFrame,
  AudioSource,
  AudioStream,
  LocalAudioTrack,
  RoomEvent,
  TrackKind,
  TrackPublishOptions,
  TrackSource,
} from "@livekit/rtc-node";
import type { RemoteParticipant, RemoteTrack, Room } from "@livekit/rtc-node";
import { RoomServiceClient } from "livekit-server-sdk";
import { sineTonePcm } from "../fixtures/providers/audio.ts";
import { waitFor } from "./deadline.ts";
import { sharedServices } from "./services.ts";

/** The test participants' audio: 16 kHz mono, in 20 ms frames. */
const RATE = 16_000;
const FRAME = 320;

/** The room service (HTTP API) of the shared dev livekit-server. */
export function sharedRoomService(): RoomServiceClient {
  const s = sharedServices();
  return new RoomServiceClient(s.livekitUrl.replace(/^ws/, "http"), s.livekitApiKey, s.livekitApiSecret);
}

/** Waits (polling the room service, with a deadline) until `identity` is no longer in `roomName`. */
export async function waitForParticipantToLeave(
  what: string,
  roomName: string,
  identity: string,
  options?: { timeoutMs?: number; intervalMs?: number },
): Promise<void> {
  const rooms = sharedRoomService();
  await waitFor(
    what,
    async () => !(await rooms.listParticipants(roomName)).some((p) => p.identity === identity),
    options,
  );
}

/**
 * Counts the loud frames (RMS above 1000) of every audio track `room` subscribes to from a
 * participant `from` accepts: how the tests hear an agent speak. A failed read goes to `onError`.
 */
export function countLoudFrames(
  room: Room,
  from: (identity: string) => boolean,
  onError: (message: string) => void,
): () => number {
  let loud = 0;
  room.on(RoomEvent.TrackSubscribed, (track: RemoteTrack, _pub, participant: RemoteParticipant) => {
    if (!from(participant.identity) || track.kind !== TrackKind.KIND_AUDIO) return;
    const reader = new AudioStream(track, { sampleRate: RATE, numChannels: 1 }).getReader();
    const read = async (): Promise<void> => {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) return;
        let sum = 0;
        for (const v of value.data) sum += v * v;
        if (Math.sqrt(sum / Math.max(1, value.data.length)) > 1000) loud += 1;
      }
    };
    void read().catch((err: unknown) => onError(`audio read failed: ${String(err)}`));
  });
  return () => loud;
}

/** Publishes a microphone track (16 kHz mono) in `room`; frames captured on the source go out on it. */
export async function publishMicrophone(room: Room): Promise<AudioSource> {
  const mic = new AudioSource(RATE, 1);
  await room.localParticipant?.publishTrack(
    LocalAudioTrack.createAudioTrack("mic", mic),
    new TrackPublishOptions({ source: TrackSource.SOURCE_MICROPHONE }),
  );
  return mic;
}

/** Real-time microphone audio: 300 ms of silence, 800 ms of tone, 1 s of silence. */
export async function speakTone(mic: AudioSource): Promise<void> {
  const tone = new Int16Array(new Uint8Array(sineTonePcm(800, RATE)).buffer);
  const audio = new Int16Array(RATE * 2.1);
  audio.set(tone, RATE * 0.3);
  for (let at = 0; at < audio.length; at += FRAME) {
    await mic.captureFrame(new AudioFrame(audio.slice(at, at + FRAME), RATE, 1, FRAME));
  }
}
