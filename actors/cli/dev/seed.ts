/**
 * The demo tenant `npm run dev` makes once, through the running platform as an operator would
 * (platform and tenant operations over NATS, recorded in the audit log as `system:dev-seed`): a
 * client `demo` with an embedded (PGlite) tenant database, an agent `assistant` (groq), and one
 * API key kept in a file so later runs can show it again. Every step first looks for what it would
 * make, so a second run changes nothing and reports the same client, agent and key.
 *
 * PGlite is single-process: the tenant database is provisioned here only while the platform does
 * not know it yet (no credentials set, so no actor host opens it), then handed to the platform.
 */
import { chmod, mkdir, readFile, rename, stat, unlink, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import { BusErrorCodes, RemoteError, SfError } from "../../../bus/index.ts";
import { PlatformErrorCodes } from "../../platform/errors.ts";
import { PlatformOps } from "../../platform/messages.ts";
import type {
  ApiKeysCreateReply,
  ApiKeysListReply,
  ClientDetailView,
  VerifiedApiKey,
} from "../../platform/messages.ts";
import { provisionTenantDatabase, StoreErrorCodes } from "../../store/index.ts";
import type { AgentRecord, LivekitCredentials, TenantDatabaseConfig } from "../../store/index.ts";
import { TenantOpNames } from "../sidekick/ops.ts";
import type { PlatformClient } from "../sidekick/platform_client.ts";
import { PlatformUnreachableError } from "./errors.ts";

/** Who the audit log names for what the seeding creates. */
export const DEV_SEED_ACTOR = "system:dev-seed";

/** What the seeding creates (when it is missing). */
export const DEMO = Object.freeze({
  clientSlug: "demo",
  clientName: "Demo",
  agent: Object.freeze({
    slug: "assistant",
    name: "Assistant",
    description: "The demo agent that `npm run dev` creates.",
    systemPrompt:
      "You are the Sidekick Forge demo assistant. Answer briefly and helpfully; if you do not know " +
      "something, say so.",
    voiceSettings: Object.freeze({ llm_provider: "groq", llm_model: "llama-3.3-70b-versatile" }),
    enabled: true,
    textChatEnabled: true,
    voiceChatEnabled: true,
  }),
  apiKey: Object.freeze({ label: "demo (npm run dev)", scopes: Object.freeze(["agents:trigger"]) }),
});

export interface SeedDemoOptions {
  platform: PlatformClient;
  /** The demo tenant's PGlite directory (as the actor host will open it: relative to its cwd). */
  tenantDataDir: string;
  /** Where the API key is kept (mode 0600). */
  apiKeyFile: string;
  /** Given to the demo tenant when it has no LiveKit credentials yet. */
  livekit?: LivekitCredentials | undefined;
  /** How long to wait for an actor host to answer the first request. */
  platformWaitMs: number;
  /** Progress lines for people ("created …"). */
  progress?: (message: string) => void;
}

export interface SeedDemoResult {
  client: { id: string; slug: string; name: string; created: boolean };
  tenantDatabase: {
    kind: string;
    /** Set when the seeding provisioned it (this run). */
    dataDir: string | null;
    created: boolean;
  };
  livekit: { configured: boolean; created: boolean };
  agent: {
    id: string;
    slug: string;
    llmProvider: string | null;
    llmModel: string | null;
    textChatEnabled: boolean;
    voiceChatEnabled: boolean;
    created: boolean;
  };
  apiKey: { id: string; prefix: string; key: string; scopes: string[]; file: string; created: boolean };
}

export async function seedDemo(options: SeedDemoOptions): Promise<SeedDemoResult> {
  const { platform } = options;
  const progress = options.progress ?? (() => undefined);
  await waitForPlatform(platform, options.platformWaitMs);

  let client = await findClient(platform, DEMO.clientSlug);
  const clientCreated = client === undefined;
  if (client === undefined) {
    client = await platform.platform<ClientDetailView>(PlatformOps.clientsCreate, {
      actor: DEV_SEED_ACTOR,
      slug: DEMO.clientSlug,
      name: DEMO.clientName,
    });
    progress(`created client ${client.slug} (${client.id})`);
  }

  const credentials: Record<string, unknown> = {};
  let dataDir: string | null = null;
  if (!client.credentials.tenant_database.configured) {
    // Nobody opens this directory until the credentials below name it.
    const database: TenantDatabaseConfig = { kind: "pglite", dataDir: options.tenantDataDir };
    const report = await provisionTenantDatabase({ tenantId: client.id, database });
    if (report.kind !== "supabase" && report.applied.length > 0) {
      progress(
        `provisioned the tenant database at ${options.tenantDataDir} (${report.applied.length} migrations)`,
      );
    }
    credentials["tenant_database"] = database;
    dataDir = options.tenantDataDir;
  }
  const livekitCreated = options.livekit !== undefined && !client.credentials.livekit.configured;
  if (livekitCreated) credentials["livekit"] = options.livekit;
  if (Object.keys(credentials).length > 0) {
    client = await platform.platform<ClientDetailView>(PlatformOps.clientsSetCredentials, {
      actor: DEV_SEED_ACTOR,
      id: client.id,
      ...credentials,
    });
    progress(`set the credentials of ${client.slug}: ${Object.keys(credentials).join(", ")}`);
  }
  const databaseView = client.credentials.tenant_database;

  // The first tenant request also waits for the owner of the tenant's partition to be placed.
  const agents = await platform.tenant<AgentRecord[]>(
    client.id,
    TenantOpNames.listAgents,
    {},
    options.platformWaitMs,
  );
  let agent = agents.find((a) => a.slug === DEMO.agent.slug);
  const agentCreated = agent === undefined;
  if (agent === undefined) {
    agent = await platform.tenant<AgentRecord>(client.id, TenantOpNames.createAgent, {
      actor: DEV_SEED_ACTOR,
      agent: { ...DEMO.agent, voiceSettings: { ...DEMO.agent.voiceSettings } },
    });
    progress(`created agent ${agent.slug}`);
  }

  const apiKey = await ensureApiKey(platform, client.id, options.apiKeyFile, progress);
  return {
    client: { id: client.id, slug: client.slug, name: client.name, created: clientCreated },
    tenantDatabase: {
      kind: databaseView.configured ? databaseView.kind : "none",
      dataDir,
      created: dataDir !== null,
    },
    livekit: { configured: client.credentials.livekit.configured, created: livekitCreated },
    agent: {
      id: agent.id,
      slug: agent.slug,
      llmProvider: stringOrNull(agent.voiceSettings["llm_provider"]),
      llmModel: stringOrNull(agent.voiceSettings["llm_model"]) ?? agent.model,
      textChatEnabled: agent.textChatEnabled,
      voiceChatEnabled: agent.voiceChatEnabled,
      created: agentCreated,
    },
    apiKey,
  };
}

function stringOrNull(value: unknown): string | null {
  return typeof value === "string" && value !== "" ? value : null;
}

/** The first platform request, retried until an actor host answers or `waitMs` passes. */
async function waitForPlatform(platform: PlatformClient, waitMs: number): Promise<void> {
  try {
    await platform.platform(PlatformOps.health, {}, waitMs);
  } catch (err) {
    if (
      err instanceof SfError &&
      (err.code === BusErrorCodes.NO_RESPONDERS || err.code === BusErrorCodes.TIMEOUT)
    ) {
      throw new PlatformUnreachableError(
        `no actor host answered on ${platform.subjects.platformOp(PlatformOps.health)} within ${waitMs} ms; is the actor host running?`,
        { cause: err },
      );
    }
    throw err;
  }
}

async function findClient(platform: PlatformClient, slug: string): Promise<ClientDetailView | undefined> {
  try {
    return await platform.client(slug);
  } catch (err) {
    if (err instanceof SfError && err.code === StoreErrorCodes.TENANT_NOT_FOUND) return undefined;
    throw err;
  }
}

/**
 * The key in `file` when the platform still accepts it for `clientId`; otherwise a new key
 * (scope `agents:trigger`), written to `file` with mode 0600 before it is returned.
 */
async function ensureApiKey(
  platform: PlatformClient,
  clientId: string,
  file: string,
  progress: (message: string) => void,
): Promise<SeedDemoResult["apiKey"]> {
  const kept = await readKeyFile(file);
  if (kept !== undefined) {
    const verified = await verifyKey(platform, kept);
    if (verified !== undefined && verified.clientId === clientId) {
      const { api_keys: keys } = await platform.platform<ApiKeysListReply>(PlatformOps.apiKeysList, {
        client_id: clientId,
      });
      const view = keys.find((k) => k.id === verified.keyId);
      if (view !== undefined) {
        await restrictMode(file);
        return {
          id: view.id,
          prefix: view.prefix,
          key: kept,
          scopes: view.scopes,
          file,
          created: false,
        };
      }
    }
    progress(`the API key in ${file} is no longer valid for the demo client: issuing a new one`);
  }
  const created = await platform.platform<ApiKeysCreateReply>(PlatformOps.apiKeysCreate, {
    actor: DEV_SEED_ACTOR,
    client_id: clientId,
    label: DEMO.apiKey.label,
    scopes: [...DEMO.apiKey.scopes],
  });
  await writeKeyFile(file, created.key);
  progress(`issued API key ${created.api_key.prefix}… (kept in ${file})`);
  return {
    id: created.api_key.id,
    prefix: created.api_key.prefix,
    key: created.key,
    scopes: created.api_key.scopes,
    file,
    created: true,
  };
}

async function verifyKey(platform: PlatformClient, key: string): Promise<VerifiedApiKey | undefined> {
  try {
    return await platform.platform<VerifiedApiKey>(PlatformOps.apiKeysVerify, { key });
  } catch (err) {
    if (err instanceof RemoteError && err.code === PlatformErrorCodes.UNAUTHENTICATED) return undefined;
    throw err;
  }
}

async function readKeyFile(file: string): Promise<string | undefined> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
  const key = text.trim();
  return key === "" ? undefined : key;
}

/** Writes the key readable by its owner only, replacing the file in one rename. */
async function writeKeyFile(file: string, key: string): Promise<void> {
  await mkdir(dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.${process.pid}.tmp`;
  try {
    await writeFile(tmp, `${key}\n`, { mode: 0o600, flag: "w" });
    await chmod(tmp, 0o600); // whatever the umask
    await rename(tmp, file);
  } catch (err) {
    await unlink(tmp).catch((cleanup: unknown) => {
      if ((cleanup as NodeJS.ErrnoException).code !== "ENOENT") throw cleanup;
    });
    throw err;
  }
}

async function restrictMode(file: string): Promise<void> {
  if (((await stat(file)).mode & 0o077) !== 0) await chmod(file, 0o600);
}
