/** pino JSON logs with secret redaction configured once for every process. */
import { pino } from "pino";
import type { Logger } from "pino";

/** Paths whose values are never printed (credentials, keys, tokens), wherever they appear. */
export const REDACT_PATHS: readonly string[] = [
  "secret",
  "*.secret",
  "password",
  "*.password",
  "apiKey",
  "*.apiKey",
  "api_key",
  "*.api_key",
  "token",
  "*.token",
  "authorization",
  "*.authorization",
  "headers.authorization",
  "serviceRoleKey",
  "*.serviceRoleKey",
  "masterKey",
  "*.masterKey",
];

export interface LoggerOptions {
  name: string;
  level?: string;
  /** Extra redaction paths (added to REDACT_PATHS). */
  redact?: readonly string[];
  /** Where to write; default stdout. */
  destination?: NodeJS.WritableStream;
}

export function createLogger(options: LoggerOptions): Logger {
  const config = {
    name: options.name,
    level: options.level ?? "info",
    redact: { paths: [...REDACT_PATHS, ...(options.redact ?? [])], censor: "[redacted]" },
    base: { pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  return options.destination === undefined
    ? pino(config)
    : pino(config, options.destination as unknown as pino.DestinationStream);
}
