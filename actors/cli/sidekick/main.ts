/**
 * `sidekick`, the operator CLI (`npm run sidekick -- <command>`, or the `sidekick` bin): a NATS
 * client of the running platform, like the gateway. Tables for people, `--json` for scripts;
 * errors go to stderr with their code. Exit codes: 0 done, 1 failed (a remote error, a failed
 * check), 2 usage error.
 *
 * Environment: NATS_URL, SF_SUBJECT_PREFIX, SF_PARTITIONS (as the actor host), SF_CLI_TIMEOUT_MS
 * (request deadline), SF_CLI_CONNECT_TIMEOUT_MS; `secrets rotate-key` also reads the actor host's
 * SF_MASTER_KEYS, SF_MASTER_KEY_ACTIVE and platform database settings.
 */
import { parseArgs } from "./args.ts";
import type { Command, CommandContext } from "./command.ts";
import { agentCommands } from "./commands/agents.ts";
import { clientCommands } from "./commands/clients.ts";
import { credentialCommands } from "./commands/credentials.ts";
import { dispatchCommands } from "./commands/dispatch.ts";
import { doctorCommands } from "./commands/doctor.ts";
import { keyCommands } from "./commands/keys.ts";
import { secretCommands } from "./commands/secrets.ts";
import { parseCliConfig } from "./config.ts";
import { exitCodeOf, UsageError } from "./errors.ts";
import { createOutput } from "./output.ts";
import type { Output } from "./output.ts";
import { PlatformClient } from "./platform_client.ts";

const COMMANDS: readonly Command[] = [
  ...clientCommands,
  ...agentCommands,
  ...keyCommands,
  ...credentialCommands,
  ...secretCommands,
  ...dispatchCommands,
  ...doctorCommands,
];

function usageLine(c: Command): string {
  return `sidekick ${c.path.join(" ")}${c.usage === "" ? "" : ` ${c.usage}`}`;
}

function helpText(commands: readonly Command[]): string {
  const lines = commands.map((c) => `  ${usageLine(c)}\n      ${c.summary}`);
  return [
    "usage: sidekick <command> [options] [--json]",
    "",
    ...lines,
    "",
    "Every command takes --json (machine-readable output on stdout) and --help.",
    "Environment: NATS_URL, SF_SUBJECT_PREFIX, SF_PARTITIONS, SF_CLI_TIMEOUT_MS.",
    "Exit codes: 0 done, 1 failed, 2 usage error.",
    "",
  ].join("\n");
}

/** The command named by the leading words of `argv`, and the rest of `argv`. */
function findCommand(argv: readonly string[]): { command: Command; rest: string[] } | undefined {
  const matches = COMMANDS.filter((c) => c.path.every((word, i) => argv[i] === word));
  const command = matches.sort((a, b) => b.path.length - a.path.length)[0];
  return command === undefined ? undefined : { command, rest: argv.slice(command.path.length) };
}

export async function run(argv: readonly string[]): Promise<number> {
  const wantsJson = argv.includes("--json");
  let out: Output = createOutput({ json: wantsJson, color: false, progress: false });
  let client: PlatformClient | undefined;
  try {
    const config = parseCliConfig();
    out = createOutput({ json: wantsJson, color: config.color && !wantsJson, progress: config.progress });
    if (argv.length === 0 || argv[0] === "help" || argv[0] === "--help" || argv[0] === "-h") {
      out.text(helpText(COMMANDS));
      return argv.length === 0 ? 2 : 0;
    }
    const found = findCommand(argv);
    if (found === undefined) {
      const group = COMMANDS.filter((c) => c.path[0] === argv[0]);
      if (group.length > 0) {
        if (!wantsJson) process.stderr.write(helpText(group));
        throw new UsageError(`unknown ${argv[0]} command ${JSON.stringify(argv[1] ?? "")}`);
      }
      throw new UsageError(`unknown command ${JSON.stringify(argv[0])} (see sidekick --help)`);
    }
    const { command, rest } = found;
    try {
      const args = parseArgs(rest, command.spec);
      if (args.flags.has("help")) {
        out.text(`usage: ${usageLine(command)}\n  ${command.summary}\n`);
        return 0;
      }
      const ctx: CommandContext = {
        config,
        out,
        args,
        platform: async () => {
          client ??= await PlatformClient.connect(config);
          return client;
        },
      };
      return await command.run(ctx);
    } catch (err) {
      if (err instanceof UsageError && !out.json) process.stderr.write(`usage: ${usageLine(command)}\n`);
      throw err;
    }
  } catch (err) {
    out.error(err);
    return exitCodeOf(err);
  } finally {
    out.done();
    if (client !== undefined) await client[Symbol.asyncDispose]();
  }
}

run(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`error SF_ERR_INTERNAL: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
