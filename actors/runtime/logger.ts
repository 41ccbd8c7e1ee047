/** pino JSON logs with secret redaction configured once for every process. */
import { pino } from "pino";
import type { Logger } from "pino";
import { LOG_REDACT_PATHS, REDACTED } from "../crypto/index.ts";

export interface LoggerOptions {
  name: string;
  level?: string;
  /** Extra redaction paths (added to the crypto module's LOG_REDACT_PATHS). */
  redact?: readonly string[];
  /** Where to write; default stdout. */
  destination?: NodeJS.WritableStream;
}

export function createLogger(options: LoggerOptions): Logger {
  const config = {
    name: options.name,
    level: options.level ?? "info",
    redact: { paths: [...LOG_REDACT_PATHS, ...(options.redact ?? [])], censor: REDACTED },
    base: { pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  return options.destination === undefined
    ? pino(config)
    : pino(config, options.destination as unknown as pino.DestinationStream);
}
