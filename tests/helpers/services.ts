// Where the shared development services run and where their binaries are, for vitest suites.
// `bash deploy/services.sh up` (the first step of `npm test`) starts the services and writes their
// addresses to <state dir>/services.env; deploy/versions.env pins the binaries. A suite that needs
// them fails with an Error saying how to start them: it never skips.
import { accessSync, constants, existsSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { registerEnvironmentSecrets, registerSecret } from "./secret_registry.ts";

export interface SharedServices {
  /** NATS with JetStream, e.g. nats://127.0.0.1:4222 (env NATS_URL). */
  natsUrl: string;
  /** PostgreSQL, e.g. postgres://sidekick:sidekick@127.0.0.1:54329/sidekick (env SF_DATABASE_URL). */
  databaseUrl: string;
  /** LiveKit, e.g. ws://127.0.0.1:7880 (env LIVEKIT_URL). */
  livekitUrl: string;
  /** env LIVEKIT_API_KEY */
  livekitApiKey: string;
  /** env LIVEKIT_API_SECRET */
  livekitApiSecret: string;
}

export interface BinaryPaths {
  /** The pinned nats-server (env SF_NATS_SERVER_BIN overrides). */
  natsServer: string;
  /** The pinned livekit-server (env SF_LIVEKIT_SERVER_BIN overrides). */
  livekitServer: string;
}

const SERVICE_ENV_NAMES = {
  natsUrl: "NATS_URL",
  databaseUrl: "SF_DATABASE_URL",
  livekitUrl: "LIVEKIT_URL",
  livekitApiKey: "LIVEKIT_API_KEY",
  livekitApiSecret: "LIVEKIT_API_SECRET",
} as const satisfies Record<keyof SharedServices, string>;

const START_HINT = "run `bash deploy/services.sh up` (npm test does this)";

/** The repository's root directory (this file is tests/helpers/services.ts). */
export function repoRoot(): string {
  return path.resolve(fileURLToPath(new URL("../..", import.meta.url)));
}

/**
 * The shared services' addresses and LiveKit credentials. Each value comes from the environment
 * variable of the same name when it is set, otherwise from <state dir>/services.env, where the
 * state dir is $SF_STATE_DIR or <repo>/.sidekick/services (as in deploy/services.sh).
 */
export function sharedServices(): SharedServices {
  const fromEnv = (name: string): string | undefined => nonEmpty(process.env[name]);
  const names = Object.values(SERVICE_ENV_NAMES);
  let file: ReadonlyMap<string, string> = new Map();
  const envFile = path.join(stateDir(), "services.env");
  if (!names.every((name) => fromEnv(name) !== undefined)) {
    if (!existsSync(envFile)) {
      throw new Error(`the shared services are not running: ${envFile} is missing; ${START_HINT}`);
    }
    file = parseEnvFile(readFileSync(envFile, "utf8"));
  }
  const value = (name: string): string => {
    const found = fromEnv(name) ?? nonEmpty(file.get(name));
    if (found === undefined) {
      throw new Error(`${envFile} does not set ${name}; ${START_HINT}`);
    }
    return found;
  };
  const services = {
    natsUrl: value(SERVICE_ENV_NAMES.natsUrl),
    databaseUrl: value(SERVICE_ENV_NAMES.databaseUrl),
    livekitUrl: value(SERVICE_ENV_NAMES.livekitUrl),
    livekitApiKey: value(SERVICE_ENV_NAMES.livekitApiKey),
    livekitApiSecret: value(SERVICE_ENV_NAMES.livekitApiSecret),
  };
  // The run's log scan looks for them (secret_registry.ts).
  registerSecret("livekit_secret", services.livekitApiSecret);
  registerEnvironmentSecrets({ SF_DATABASE_URL: services.databaseUrl });
  return services;
}

/**
 * The pinned nats-server and livekit-server binaries, for suites that start their own servers:
 * <cache root>/nats-server-<version>/nats-server and <cache root>/livekit-server-<version>/server,
 * with the versions and cache root from deploy/versions.env. Throws when a binary is absent.
 */
export function binaryPaths(): BinaryPaths {
  const versions = readVersions();
  const cacheRoot = nonEmpty(process.env.SF_CACHE_ROOT) ?? versions.get("SF_CACHE_ROOT");
  const natsVersion = versions.get("NATS_SERVER_VERSION");
  const livekitVersion = versions.get("LIVEKIT_SERVER_VERSION");
  if (cacheRoot === undefined || natsVersion === undefined || livekitVersion === undefined) {
    throw new Error(
      `${versionsFile()} must set SF_CACHE_ROOT, NATS_SERVER_VERSION and LIVEKIT_SERVER_VERSION`,
    );
  }
  return {
    natsServer: executable(
      `nats-server ${natsVersion}`,
      nonEmpty(process.env.SF_NATS_SERVER_BIN) ??
        path.join(cacheRoot, `nats-server-${natsVersion}`, "nats-server"),
    ),
    livekitServer: executable(
      `livekit-server ${livekitVersion}`,
      nonEmpty(process.env.SF_LIVEKIT_SERVER_BIN) ??
        path.join(cacheRoot, `livekit-server-${livekitVersion}`, "server"),
    ),
  };
}

function stateDir(): string {
  const fromEnv = nonEmpty(process.env.SF_STATE_DIR);
  return fromEnv === undefined ? path.join(repoRoot(), ".sidekick", "services") : path.resolve(fromEnv);
}

function versionsFile(): string {
  return path.join(repoRoot(), "deploy", "versions.env");
}

/** deploy/versions.env: KEY=VALUE lines, `#` comments, `${HOME}` the only expansion. */
function readVersions(): Map<string, string> {
  const versions = parseEnvFile(readFileSync(versionsFile(), "utf8"));
  for (const [key, value] of versions) {
    versions.set(key, value.replaceAll("${HOME}", homedir()));
  }
  return versions;
}

/** KEY=VALUE lines, optionally `export `-prefixed and single- or double-quoted; `#` comments. */
function parseEnvFile(text: string): Map<string, string> {
  const vars = new Map<string, string>();
  for (const line of text.split(/\r?\n/)) {
    const match = /^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line);
    const key = match?.[1];
    const raw = match?.[2];
    if (key === undefined || raw === undefined) continue;
    const quoted = /^(['"])(.*)\1$/.exec(raw.trim());
    vars.set(key, quoted?.[2] ?? raw.trim());
  }
  return vars;
}

function executable(what: string, file: string): string {
  try {
    accessSync(file, constants.X_OK);
  } catch (cause) {
    throw new Error(`${what} is not available at ${file}; ${START_HINT}`, { cause });
  }
  return file;
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === "" ? undefined : value;
}
