/**
 * The environment variables each process's code reads, collected from the source: the config
 * parsers read them as `env["NAME"]`, `int(env, "NAME", …)` / `envInt(env, "NAME", …)` or
 * `secret(env, "NAME", …)`, and nothing else should read `process.env` (CONTRIBUTING.md), but
 * `process.env.NAME` and `process.env["NAME"]` are collected too so that no reader is missed.
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import { repoRoot } from "../helpers/services.ts";

/** The processes the image runs, by the command that starts them, and the folders they load. */
export const PROCESS_SOURCES = {
  gateway: ["gateway", "actors", "bus"],
  "actor-host": ["actors", "bus"],
  worker: ["agent-worker", "actors", "bus"],
} as const;
export type ProcessName = keyof typeof PROCESS_SOURCES;

/** Which folder's config parser a process's settings come from (its own `config.ts`). */
const OWN_CONFIG: Record<ProcessName, string> = {
  gateway: "gateway/config.ts",
  "actor-host": "actors/config.ts",
  worker: "agent-worker/config.ts",
};

const READERS = [
  /\benv\[\s*"([A-Z][A-Z0-9_]*)"\s*\]/g,
  /\b(?:int|envInt|secret)\(\s*env\s*,\s*"([A-Z][A-Z0-9_]*)"/g,
  /\bprocess\.env\.([A-Z][A-Z0-9_]*)\b/g,
  /\bprocess\.env\[\s*"([A-Z][A-Z0-9_]*)"\s*\]/g,
];

/** Names read in one source text. */
export function envNamesIn(source: string): Set<string> {
  const names = new Set<string>();
  for (const re of READERS) for (const m of source.matchAll(re)) if (m[1] !== undefined) names.add(m[1]);
  return names;
}

function sourceFiles(dir: string): string[] {
  const files: string[] = [];
  for (const entry of readdirSync(dir)) {
    const full = path.join(dir, entry);
    if (statSync(full).isDirectory()) files.push(...sourceFiles(full));
    else if (entry.endsWith(".ts")) files.push(full);
  }
  return files;
}

/**
 * The variables a process reads: its own config parser, plus any other reader under the folders
 * it loads, except the other processes' parsers (loaded as modules, never run) and the one-shot
 * CLIs under actors/cli.
 */
export function envReadBy(process: ProcessName): Set<string> {
  const root = repoRoot();
  const names = envNamesIn(readFileSync(path.join(root, OWN_CONFIG[process]), "utf8"));
  for (const folder of PROCESS_SOURCES[process]) {
    for (const file of sourceFiles(path.join(root, folder))) {
      if (file.includes(`${path.sep}cli${path.sep}`)) continue;
      // Another process's parser is loaded as a module but never run here.
      if (Object.values(OWN_CONFIG).some((config) => file === path.join(root, config))) continue;
      for (const name of envNamesIn(readFileSync(file, "utf8"))) names.add(name);
    }
  }
  return names;
}

export function isProcessName(value: unknown): value is ProcessName {
  return typeof value === "string" && Object.hasOwn(PROCESS_SOURCES, value);
}
