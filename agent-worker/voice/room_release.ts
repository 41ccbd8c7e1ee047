/**
 * Works around `@livekit/rtc-node` 1.1.0: a Room the server disconnected (the room deleted, the
 * participant removed) keeps its listener on the process-wide FFI client for ever, because only
 * `disconnect()` removes it and `disconnect()` returns at once when the room is already
 * disconnected. That listener keeps the Room alive, and with it what the Room still references:
 * the agent's track publications, whose pending promises hold the async context of the agent
 * session's tasks, hence the whole session (measured: one AgentSession and VoiceSession kept per
 * deleted room). The Python SDK fixed the same in livekit/python-sdks#699. Remove this once
 * rtc-node removes the listener on a server-side disconnect.
 */
import type { Room } from "@livekit/rtc-node";

/** The FFI client's event (`FfiClientEvent.FfiEvent`, not exported by the package). */
const FFI_EVENT = "ffi_event";

interface Emitter {
  off(event: string, listener: (...args: unknown[]) => void): unknown;
}

function isEmitter(value: unknown): value is Emitter {
  return typeof value === "object" && value !== null && typeof (value as Emitter).off === "function";
}

/**
 * Detaches a disconnected room from the FFI client, so it can be collected. A room still
 * connected is left alone (leave it with `disconnect()`, which detaches it); so is one whose SDK
 * no longer has the listener or the client where 1.1.0 keeps them. Returns whether it detached.
 */
export function releaseClosedRoom(room: Room): boolean {
  if (room.isConnected) return false;
  const client: unknown = (globalThis as { _ffiClientInstance?: unknown })._ffiClientInstance;
  const listener: unknown = Reflect.get(room, "onFfiEvent");
  if (!isEmitter(client) || typeof listener !== "function") return false;
  client.off(FFI_EVENT, listener as (...args: unknown[]) => void);
  return true;
}
