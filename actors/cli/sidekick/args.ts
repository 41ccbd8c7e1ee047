/**
 * A small argv parser: positionals, `--name value` / `--name=value` options and boolean flags.
 * Each command declares what it takes; anything else is a usage error (exit code 2), so a typo
 * never passes silently.
 */
import { UsageError } from "./errors.ts";

export interface ArgSpec {
  /** Options that take a value. */
  values?: readonly string[];
  /** Boolean flags. */
  flags?: readonly string[];
  /** Positional names, for messages; `name...` takes the rest. */
  positionals?: readonly string[];
  /** How many positionals are required. Default: all of `positionals` (without a `...` one). */
  required?: number;
}

export interface ParsedArgs {
  positionals: string[];
  values: Map<string, string>;
  flags: Set<string>;
}

/** Flags every command takes. */
export const GLOBAL_FLAGS = ["json", "help"] as const;

export function parseArgs(argv: readonly string[], spec: ArgSpec): ParsedArgs {
  const values = new Map<string, string>();
  const flags = new Set<string>();
  const positionals: string[] = [];
  const valueNames = new Set(spec.values ?? []);
  const flagNames = new Set<string>([...(spec.flags ?? []), ...GLOBAL_FLAGS]);
  let onlyPositionals = false;
  for (let i = 0; i < argv.length; i += 1) {
    const arg = argv[i] as string;
    if (onlyPositionals || !arg.startsWith("-") || arg === "-") {
      positionals.push(arg);
      continue;
    }
    if (arg === "--") {
      onlyPositionals = true;
      continue;
    }
    if (arg === "-h") {
      flags.add("help");
      continue;
    }
    if (!arg.startsWith("--")) throw new UsageError(`unknown option ${arg}`);
    const eq = arg.indexOf("=");
    const name = arg.slice(2, eq < 0 ? undefined : eq);
    if (flagNames.has(name)) {
      if (eq >= 0) throw new UsageError(`--${name} takes no value`);
      flags.add(name);
      continue;
    }
    if (!valueNames.has(name)) throw new UsageError(`unknown option --${name}`);
    let value: string | undefined;
    if (eq >= 0) value = arg.slice(eq + 1);
    else {
      value = argv[i + 1];
      i += 1;
    }
    if (value === undefined) throw new UsageError(`--${name} needs a value`);
    if (values.has(name)) throw new UsageError(`--${name} is given twice`);
    values.set(name, value);
  }
  if (!flags.has("help")) {
    const names = spec.positionals ?? [];
    const rest = names.some((n) => n.endsWith("..."));
    const required = spec.required ?? names.filter((n) => !n.endsWith("...")).length;
    if (positionals.length < required) {
      throw new UsageError(`missing <${names[positionals.length] ?? "argument"}>`);
    }
    if (!rest && positionals.length > names.length) {
      throw new UsageError(`unexpected argument ${JSON.stringify(positionals[names.length])}`);
    }
  }
  return { positionals, values, flags };
}

/** An integer option within bounds, or `fallback` when absent. */
export function intOption(
  args: ParsedArgs,
  name: string,
  fallback: number,
  min: number,
  max: number,
): number {
  const raw = args.values.get(name);
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new UsageError(`--${name} must be an integer from ${min} to ${max}`);
  }
  return value;
}
