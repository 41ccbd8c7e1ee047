// Run by `npm install` / `npm ci` (package.json "postinstall"), in development and in the image's
// deps stage: fixes, in node_modules, a dependency bug that upstream has not released a fix for.
// Each fix names the exact version and text it replaces, and fails the install when either is not
// found, so an upgrade cannot leave a fix silently unapplied or applied to code it does not fit:
// remove the fix once the upgrade contains it.
//
// @livekit/agents 1.9.0, `readStream()` (dist/utils.{js,cjs}): it races every `reader.read()`
// against one `waitForAbort(signal)` promise that stays pending until the signal aborts. Each
// race adds a reaction to that promise, and each reaction keeps the read's result reachable, so
// `AudioRecognition`, which pumps every audio frame a user sends to the STT through
// `readStream(sttInputStream, signal)`, kept every frame of a voice session until the session
// closed (heap snapshot of the voice bench's worker: AudioFrame <- {value} <- race promise <-
// reaction <- … 2,200 reactions … <- the waitForAbort promise; 24,469 live AudioFrames with 10
// sessions, 97 with this fix). Their buffers, freed all at once at the close, are most of what
// the worker's resident memory kept after its sessions closed (docs/capacity.md, "Memory after
// voice sessions"). Upstream: livekit/agents-js#2046 (fix proposed in #2047, which this mirrors:
// one abort promise per read, its listener removed after each race).
//
// @livekit/rtc-node 1.1.0, `Room.onFfiEvent` (dist/room.cjs): every connected Room listens to
// every event of the process's one FFI client, and since livekit/node-sdks#579 ("Hold lock on all
// ffi events") takes its async event lock for each one before finding that the event is not its
// own: the audio frames of every other room's streams (an `audioStreamEvent` per 10 ms per
// microphone), audio source callbacks, other rooms' events. A worker with n voice sessions did
// O(n²) lock round trips (several promises each) per second, and a Room still connecting queued
// all of them in `preConnectEvents` and replayed them once connected. CPU profile of the voice
// bench's worker with 10 quiet sessions: Room.onFfiEvent and its mutex 8.5% of the process; the
// worker used 0.105 cores per session and could not hold 25 on 2 cores. The fix returns at once,
// without the lock, for events that Room.processFfiEvent ignores anyway (neither a roomEvent nor
// an rpcMethodInvocation, or one for another room or local participant once those are known), so
// the room's own events keep their order under the lock as before.
import { readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");

const READ_STREAM_MARKER = "/* sidekick-forge: readStream per-read abort (livekit/agents-js#2046) */";

function fixedLoop(race) {
  return `      ${READ_STREAM_MARKER}
      while (true) {
        if (signal.aborted) break;
        let onAbort;
        const aborted = new Promise((resolve) => {
          onAbort = () => resolve(void 0);
        });
        signal.addEventListener("abort", onAbort, { once: true });
        let result;
        try {
          result = await ${race}([reader.read(), aborted]);
        } finally {
          signal.removeEventListener("abort", onAbort);
        }
        if (!result) {`;
}

function brokenLoop(race) {
  return `      const abortPromise = waitForAbort(signal);
      while (true) {
        const result = await ${race}([reader.read(), abortPromise]);
        if (!result) {`;
}

const ROOM_EVENT_MARKER = "/* sidekick-forge: Room skips other FFI events without its lock */";

const ROOM_EVENT_BROKEN = `    this.onFfiEvent = async (ffiEvent) => {
      const unlock = await this.ffiEventLock.lock();`;

const ROOM_EVENT_FIXED = `    ${ROOM_EVENT_MARKER}
    this.onFfiEvent = (ffiEvent) => {
      const message = ffiEvent.message;
      if (message.case == "roomEvent") {
        if (this.ffiHandle && message.value.roomHandle != this.ffiHandle.handle) return;
      } else if (message.case == "rpcMethodInvocation") {
        if (
          this.localParticipant &&
          message.value.localParticipantHandle != this.localParticipant.ffi_handle.handle
        )
          return;
      } else {
        return;
      }
      return this.onOwnFfiEvent(ffiEvent);
    };
    this.onOwnFfiEvent = async (ffiEvent) => {
      const unlock = await this.ffiEventLock.lock();`;

const fixes = [
  {
    pkg: "@livekit/agents",
    version: "1.9.0",
    what: "readStream",
    marker: READ_STREAM_MARKER,
    files: [
      {
        file: "dist/utils.js",
        broken: brokenLoop("ThrowsPromise.race"),
        fixed: fixedLoop("ThrowsPromise.race"),
      },
      {
        file: "dist/utils.cjs",
        broken: brokenLoop("import_throws.ThrowsPromise.race"),
        fixed: fixedLoop("import_throws.ThrowsPromise.race"),
      },
    ],
  },
  {
    pkg: "@livekit/rtc-node",
    version: "1.1.0",
    what: "Room.onFfiEvent",
    marker: ROOM_EVENT_MARKER,
    // The package's ESM entry re-exports its CommonJS build, so this is the only copy.
    files: [{ file: "dist/room.cjs", broken: ROOM_EVENT_BROKEN, fixed: ROOM_EVENT_FIXED }],
  },
];

const require = createRequire(join(root, "package.json"));

/** The folder of an installed package (its "exports" may not expose package.json). */
function packageDir(name) {
  let entry;
  try {
    entry = require.resolve(name);
  } catch {
    return undefined;
  }
  for (let dir = dirname(entry); dir !== dirname(dir); dir = dirname(dir)) {
    try {
      if (JSON.parse(readFileSync(join(dir, "package.json"), "utf8")).name === name) return dir;
    } catch {
      // No package.json here: look further up.
    }
  }
  return undefined;
}
let failed = false;
for (const fix of fixes) {
  const pkgDir = packageDir(fix.pkg);
  if (pkgDir === undefined) {
    console.error(`patch_dependencies: ${fix.pkg} is not installed`);
    failed = true;
    continue;
  }
  const version = JSON.parse(readFileSync(join(pkgDir, "package.json"), "utf8")).version;
  if (version !== fix.version) {
    console.error(
      `patch_dependencies: ${fix.pkg} is ${version}, the fix is for ${fix.version}: check whether ${version} still needs it (deploy/patch_dependencies.mjs) and update or remove it`,
    );
    failed = true;
    continue;
  }
  for (const { file, broken, fixed } of fix.files) {
    const path = join(pkgDir, file);
    const text = readFileSync(path, "utf8");
    if (text.includes(fix.marker)) continue;
    if (text.split(broken).length !== 2) {
      console.error(`patch_dependencies: ${fix.pkg}/${file} does not hold the code the fix replaces`);
      failed = true;
      continue;
    }
    writeFileSync(path, text.replace(broken, fixed));
    console.log(`patch_dependencies: fixed ${fix.what} in ${fix.pkg}@${version}/${file}`);
  }
}
if (failed) process.exit(1);
