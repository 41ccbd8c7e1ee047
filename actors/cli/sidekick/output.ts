/**
 * Where a command's results go: JSON on stdout with `--json`, tables otherwise; errors on stderr
 * (`error SF_ERR_…: message`, or `{"error": {…}}` with `--json`); a progress line on stderr while
 * long work runs, only when stderr is a terminal.
 */
import type { WireError } from "../../../bus/index.ts";
import { toWireError } from "../../../bus/index.ts";

export interface Output {
  readonly json: boolean;
  readonly color: boolean;
  /** Writes text to stdout as it is. */
  text(text: string): void;
  /** Writes a value as pretty JSON to stdout. */
  data(value: unknown): void;
  /** Replaces the progress line (a no-op unless stderr is a terminal). */
  progress(message: string): void;
  /** Clears the progress line. */
  done(): void;
  /** Writes an error to stderr. */
  error(err: unknown): void;
  /** Colors a status word: ok green, warn yellow, fail red. */
  status(status: string, text?: string): string;
}

const COLORS: Record<string, string> = { ok: "32", warn: "33", fail: "31", skipped: "33" };

export function createOutput(options: { json: boolean; color: boolean; progress: boolean }): Output {
  let shown = false;
  const clear = (): void => {
    if (shown) process.stderr.write("\r\x1b[K");
    shown = false;
  };
  return {
    json: options.json,
    color: options.color,
    text(text) {
      clear();
      process.stdout.write(text);
    },
    data(value) {
      clear();
      process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
    },
    progress(message) {
      if (!options.progress) return;
      const columns = process.stderr.columns ?? 80;
      process.stderr.write(`\r\x1b[K${[...message].slice(0, Math.max(10, columns - 1)).join("")}`);
      shown = true;
    },
    done: clear,
    error(err) {
      clear();
      const wire: WireError = toWireError(err);
      if (options.json) {
        process.stderr.write(`${JSON.stringify({ error: wire })}\n`);
        return;
      }
      const details =
        wire.details === undefined || Object.keys(wire.details).length === 0
          ? ""
          : ` ${JSON.stringify(wire.details)}`;
      process.stderr.write(`error ${wire.code}: ${wire.message}${details}\n`);
    },
    status(status, text = status) {
      const code = COLORS[status];
      return options.color && code !== undefined ? `\x1b[${code}m${text}\x1b[0m` : text;
    },
  };
}
