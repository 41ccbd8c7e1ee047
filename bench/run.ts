/**
 * `npm run bench -- <name>` runs one benchmark (`all` runs every one), prints a table and
 * writes bench/results/<name>.json with a `summary` of named figures and the machine it ran on.
 * `--quick` shortens every run (a smoke check; its figures are not for notes).
 */
import { mkdir, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Bench } from "./harness.ts";
import { machine } from "./harness.ts";

const benches: Record<string, () => Promise<Bench>> = {
  "actor-rr": async () => (await import("./actor_rr.ts")).run,
  "store-vector": async () => (await import("./store_vector.ts")).run,
  dispatch: async () => (await import("./dispatch.ts")).run,
  rag: async () => (await import("./rag.ts")).run,
  gateway: async () => (await import("./gateway.ts")).run,
  voice: async () => (await import("./voice.ts")).run,
  tts: async () => (await import("./tts.ts")).run,
};

async function runOne(name: string, quick: boolean): Promise<void> {
  const load = benches[name];
  if (load === undefined)
    throw new Error(`unknown benchmark ${name}; known: ${Object.keys(benches).join(", ")}, all`);
  const bench = await load();
  const startedAt = new Date().toISOString();
  const t0 = performance.now();
  const result = await bench({ quick });
  const seconds = Math.round(performance.now() - t0) / 1000;
  console.log(`\n${name}${quick ? " (quick)" : ""}: ${seconds} s`);
  console.table(result.table);
  console.log("summary", result.summary);
  const dir = join(dirname(fileURLToPath(import.meta.url)), "results");
  await mkdir(dir, { recursive: true });
  const file = join(dir, `${name}${quick ? ".quick" : ""}.json`);
  await writeFile(
    file,
    JSON.stringify({ name, quick, started_at: startedAt, seconds, machine: machine(), ...result }, null, 2) +
      "\n",
  );
  console.log(`wrote ${file}`);
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const quick = args.includes("--quick");
  const names = args.filter((a) => !a.startsWith("--"));
  if (names.length === 0)
    throw new Error(`usage: npm run bench -- <${Object.keys(benches).join("|")}|all> [--quick]`);
  const selected = names.includes("all") ? Object.keys(benches) : names;
  for (const name of selected) await runOne(name, quick);
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
