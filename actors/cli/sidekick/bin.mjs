#!/usr/bin/env node
// The `sidekick` executable (package.json "bin"): runs the TypeScript CLI with tsx, resolved
// from this package, so it works from any directory.
import { register } from "tsx/esm/api";

register();
await import("./main.ts");
