/** What every command is: its usage, the arguments it takes, and what it runs. */
import type { ArgSpec, ParsedArgs } from "./args.ts";
import type { CliConfig } from "./config.ts";
import type { Output } from "./output.ts";
import type { PlatformClient } from "./platform_client.ts";

export interface CommandContext {
  config: CliConfig;
  out: Output;
  args: ParsedArgs;
  /** Connects to NATS (once); closed when the command ends. */
  platform: () => Promise<PlatformClient>;
}

export interface Command {
  /** The words that name it: `["clients", "list"]`. */
  path: readonly string[];
  /** Arguments after the path, for the usage line. */
  usage: string;
  summary: string;
  spec: ArgSpec;
  /** Resolves with the exit code. */
  run(ctx: CommandContext): Promise<number>;
}
