// The LiveKit FFI crash under overload ("trying to drop an invalid handle"): a connect answered
// after the FFI's deadline leaves the Room an FfiHandle the FFI already dropped, and the handle's GC
// finalizer then throws out of the process. In child processes: the library's behaviour with such a
// handle, then a real VoiceSession joining while its event loop is starved past that deadline,
// which must fail its join, dispose the handle itself and survive a full collection. In this
// process: disposing the handle of a room that never connected, and of one that connected and left.
import { randomUUID } from "node:crypto";
import { Room } from "@livekit/rtc-node";
import { describe, expect, it } from "vitest";
import { mintAgentToken } from "../../actors/index.ts";
import { disposeRoomHandle } from "../../agent-worker/index.ts";
import { spawnTs } from "../helpers/processes.ts";
import { sharedServices } from "../helpers/services.ts";

const SCRIPT = "tests/fixtures/voice/late_connect.ts";

function resultOf(lines: string[]): Record<string, unknown> | undefined {
  const line = lines.find((l) => l.startsWith("result "));
  return line === undefined
    ? undefined
    : (JSON.parse(line.slice("result ".length)) as Record<string, unknown>);
}

describe("voice - a room's FFI handle is disposed, never left to the GC", () => {
  it("library - an FfiHandle the FFI does not know, left to the garbage collector, kills the process", async () => {
    await using proc = await spawnTs("bare handle", SCRIPT, { env: { LATE_CONNECT_MODE: "bare-handle" } });
    const code = await proc.exited;
    // If this starts passing, rtc-node no longer throws from the finalizer: drop disposeRoomHandle.
    expect(code).not.toBe(0);
    expect(proc.lines.join("\n")).toContain("trying to drop an invalid handle");
    expect(resultOf(proc.lines)).toBeUndefined();
  });

  it("late connect - a session that joins while its worker's loop is starved past the FFI's deadline fails its join, disposes the dropped handle, and the process survives", async () => {
    await using proc = await spawnTs("late connect", SCRIPT, {
      env: { LATE_CONNECT_MODE: "voice-session", LATE_CONNECT_BLOCK_MS: "18000" },
    });
    const code = await proc.exited;
    expect(code, proc.tail()).toBe(0);
    const result = resultOf(proc.lines);
    expect(result, proc.tail()).toBeDefined();
    // The FFI closed the room and dropped its handle before the connect was answered.
    expect(String(result?.["joinError"])).toMatch(/handle not found/);
    expect(result?.["said"]).toContain(
      "the FFI had dropped the room's handle: its connect was answered too late",
    );
    // Nothing tried to leave a room whose handle is gone.
    expect(result?.["said"]).not.toContain("leaving the room failed");
    // The Room was collected: its handle's finalizer ran, and found nothing to do.
    expect(result?.["roomsLeft"]).toBe(0);
  }, 90_000);

  it("in process - a room that never connected has no handle; one that connected and left is released once", async () => {
    expect(disposeRoomHandle(new Room())).toBe("none");
    const lk = sharedServices();
    const credentials = { url: lk.livekitUrl, apiKey: lk.livekitApiKey, apiSecret: lk.livekitApiSecret };
    const roomName = `sf-test-handle-${randomUUID().slice(0, 8)}`;
    const agent = await mintAgentToken(credentials, roomName, "handle", randomUUID());
    const room = new Room();
    await room.connect(lk.livekitUrl, agent.token, { autoSubscribe: false, dynacast: false });
    await room.disconnect();
    expect(disposeRoomHandle(room)).toBe("released");
    // Again: the wrapper remembers it was disposed.
    expect(disposeRoomHandle(room)).toBe("released");
  });
});
