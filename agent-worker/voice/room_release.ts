/**
 * Two workarounds for `@livekit/rtc-node` 1.1.0 (FFI bindings 0.12.73), each to remove once the
 * SDK does it itself.
 *
 * `disposeRoomHandle`: the FFI gives a connecting client 15 s after its ConnectCallback to answer
 * with ReadyForRoomEvent. A client whose event loop is starved answers later; the FFI has then
 * closed the room and dropped its handle, yet rtc-node wraps that handle id in an `FfiHandle`,
 * marks the Room connected, and rejects `connect()` ("handle not found"). Nothing disposes that
 * wrapper; its GC finalizer drops the handle again, the bindings' `dispose()` fails ("trying to
 * drop an invalid handle") and napi throws it as an uncaught exception: the whole worker dies,
 * every session with it (seen on the voice bench at 25 sessions on 2 cores). The native dispose
 * marks itself done before it fails, so disposing the handle ourselves, once the room is left,
 * takes the failure where it can be handled and leaves the finalizer nothing to do.
 * (livekit/rust-sdks#1188, #1261 are the FFI's side of it.)
 *
 * `releaseClosedRoom`: a Room the server disconnected (the room deleted, the
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

/** How `disposeRoomHandle` ended. */
export type RoomHandleRelease =
  /** The handle was dropped now (or by an earlier call). */
  | "released"
  /** The FFI had dropped it already (a connect answered past its deadline). */
  | "already_dropped"
  /** The room never got a handle (its connect never completed), or the SDK keeps none there. */
  | "none";

interface Disposable {
  dispose(): void;
}

function isDisposable(value: unknown): value is Disposable {
  return typeof value === "object" && value !== null && typeof (value as Disposable).dispose === "function";
}

/**
 * Drops the room's FFI handle now instead of leaving it to the garbage collector, whose finalizer
 * crashes the process when the FFI dropped it first. Call it once the room is left for good (after
 * `disconnect()`, or after a failed connect); calling it again is harmless. Throws only what is
 * not the handle being unknown to the FFI.
 */
export function disposeRoomHandle(room: Room): RoomHandleRelease {
  const handle: unknown = Reflect.get(room, "ffiHandle");
  if (!isDisposable(handle)) return "none";
  try {
    handle.dispose();
    return "released";
  } catch (err) {
    if (err instanceof Error && /invalid handle/i.test(err.message)) return "already_dropped";
    throw err;
  }
}
