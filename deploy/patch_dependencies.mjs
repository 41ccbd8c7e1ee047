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
import { readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const MARKER = "/* sidekick-forge: readStream per-read abort (livekit/agents-js#2046) */";

function fixedLoop(race) {
  return `      ${MARKER}
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

const fixes = [
  {
    pkg: "@livekit/agents",
    version: "1.9.0",
    files: [
      { file: "dist/utils.js", race: "ThrowsPromise.race" },
      { file: "dist/utils.cjs", race: "import_throws.ThrowsPromise.race" },
    ],
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
  for (const { file, race } of fix.files) {
    const path = join(pkgDir, file);
    const text = readFileSync(path, "utf8");
    if (text.includes(MARKER)) continue;
    const broken = brokenLoop(race);
    if (text.split(broken).length !== 2) {
      console.error(`patch_dependencies: ${fix.pkg}/${file} does not hold the code the fix replaces`);
      failed = true;
      continue;
    }
    writeFileSync(path, text.replace(broken, fixedLoop(race)));
    console.log(`patch_dependencies: fixed readStream in ${fix.pkg}@${version}/${file}`);
  }
}
if (failed) process.exit(1);
