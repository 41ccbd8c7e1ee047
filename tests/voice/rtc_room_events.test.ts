// Every connected `Room` of @livekit/rtc-node listens to every event of the process's one FFI
// client. 1.1.0 took the room's async event lock for each of them, its own or not: in a worker
// with n voice sessions, every audio frame of every session went through n locks, which is what
// kept one worker from holding 25 sessions on 2 cores. deploy/patch_dependencies.mjs makes a Room
// pass over other rooms' events and stream events without its lock; its own events keep their
// order under the lock. Real livekit-server, real rooms.
import { randomUUID } from "node:crypto";
import { AudioFrame, AudioStream, Room, RoomEvent, TrackKind } from "@livekit/rtc-node";
import type { RemoteParticipant, RemoteTrack } from "@livekit/rtc-node";
import { AccessToken } from "livekit-server-sdk";
import { afterEach, describe, expect, it } from "vitest";
import { waitFor } from "../helpers/deadline.ts";
import { publishMicrophone } from "../helpers/livekit.ts";
import { sharedServices } from "../helpers/services.ts";

const RATE = 16_000;
const FRAME = 320;

async function token(room: string, identity: string): Promise<string> {
  const lk = sharedServices();
  const at = new AccessToken(lk.livekitApiKey, lk.livekitApiSecret, { identity, ttl: "10m" });
  at.addGrant({ room, roomJoin: true, canPublish: true, canSubscribe: true });
  return await at.toJwt();
}

async function connect(room: string, identity: string): Promise<Room> {
  const r = new Room();
  await r.connect(sharedServices().livekitUrl, await token(room, identity), {
    autoSubscribe: true,
    dynacast: false,
  });
  return r;
}

/** Counts how often the room takes its FFI event lock (a private field of rtc-node's Room). */
function countLocks(room: Room): () => number {
  const lock = (room as unknown as { ffiEventLock: { lock(): Promise<() => void> } }).ffiEventLock;
  const original = lock.lock.bind(lock);
  let count = 0;
  lock.lock = () => {
    count += 1;
    return original();
  };
  return () => count;
}

const rooms: Room[] = [];
afterEach(async () => {
  for (const r of rooms.splice(0)) await r.disconnect();
});

describe("voice - rtc-node rooms and the FFI events of other rooms", () => {
  it("a room takes its event lock for its own events only, not for another room's audio frames", async () => {
    const suffix = randomUUID().slice(0, 8);
    const busy = `sf-test-ffi-busy-${suffix}`;
    const quiet = `sf-test-ffi-quiet-${suffix}`;
    const talker = await connect(busy, "talker");
    rooms.push(talker);
    const listener = await connect(busy, "listener");
    rooms.push(listener);
    const bystander = await connect(quiet, "bystander");
    rooms.push(bystander);
    const bystanderLocks = countLocks(bystander);

    // The listener reads the talker's microphone: an FFI audio stream event per frame.
    let framesRead = 0;
    let readError: string | undefined;
    listener.on(RoomEvent.TrackSubscribed, (track: RemoteTrack) => {
      if (track.kind !== TrackKind.KIND_AUDIO) return;
      const reader = new AudioStream(track, {
        sampleRate: RATE,
        numChannels: 1,
        frameSizeMs: 20,
      }).getReader();
      void (async () => {
        for (;;) {
          const { done } = await reader.read();
          if (done) return;
          framesRead += 1;
        }
      })().catch((err: unknown) => {
        readError = String(err);
      });
    });
    const mic = await publishMicrophone(talker);
    let talking = true;
    const pump = (async () => {
      const silence = new Int16Array(FRAME);
      while (talking) await mic.captureFrame(new AudioFrame(silence, RATE, 1, FRAME));
    })();
    try {
      await waitFor("the listener reading 100 frames", () => framesRead >= 100 || readError !== undefined, {
        timeoutMs: 20_000,
      });
    } finally {
      talking = false;
      await pump;
    }
    expect(readError).toBeUndefined();
    // The frames (and the capture callbacks) were all events of other rooms' handles.
    const locksDuringAudio = bystanderLocks();
    expect(locksDuringAudio).toBeLessThan(10);

    // Its own events still arrive, through the lock.
    const joined: string[] = [];
    bystander.on(RoomEvent.ParticipantConnected, (p: RemoteParticipant) => joined.push(p.identity));
    rooms.push(await connect(quiet, "visitor-1"));
    rooms.push(await connect(quiet, "visitor-2"));
    await waitFor("both visitors seen by the bystander", () => joined.length >= 2, { timeoutMs: 10_000 });
    expect([...joined].sort()).toEqual(["visitor-1", "visitor-2"]);
    expect(bystanderLocks()).toBeGreaterThan(locksDuringAudio);
  }, 60_000);
});
