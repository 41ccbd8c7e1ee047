/** Pieces of the running platform that many integration suites start the same way. */
import { connect } from "@nats-io/transport-node";
import type { NatsConnection } from "@nats-io/transport-node";
import { openPlatformStore, openTenantStore, provisionTenantDatabase } from "../../actors/index.ts";
import type {
  AgentInput,
  AgentRecord,
  CreateClientInput,
  JobEvent,
  PlatformStore,
  TenantDatabaseConfig,
  TenantStore,
} from "../../actors/index.ts";
import { decodeBody } from "../../bus/index.ts";
import type { Subjects } from "../../bus/index.ts";
import { startProviderFixture } from "../fixtures/providers/provider_fixture.ts";
import type { ProviderFixture } from "../fixtures/providers/provider_fixture.ts";
import { spawnGateway } from "./gateway_process.ts";
import type { GatewayProcess } from "./gateway_process.ts";
import { NatsTestServer } from "./nats_server.ts";
import { defaultPlatformSchema, spawnActorHost, spawnTs, testKeyring } from "./processes.ts";
import type { ActorHostEnv, TestProcess } from "./processes.ts";
import { sharedServices } from "./services.ts";

/** An agent worker process pointed at `endpoints` (the provider fixture's base URLs). */
export function spawnWorker(options: {
  natsUrl: string;
  partitions: number;
  workerId: string;
  endpoints: Record<string, string>;
  ackWaitMs?: number;
  /** More environment (SF_WORKER_SLOTS, SF_STREAM_REPLICAS, …), applied last. */
  extraEnv?: Record<string, string>;
}): Promise<TestProcess> {
  return spawnTs(`worker ${options.workerId}`, "agent-worker/main.ts", {
    readyLine: "agent worker ready",
    env: {
      NATS_URL: options.natsUrl,
      SF_PARTITIONS: String(options.partitions),
      SF_WORKER_ID: options.workerId,
      SF_METRICS_PORT: "0",
      ...(options.ackWaitMs === undefined ? {} : { SF_JOB_ACK_WAIT_MS: String(options.ackWaitMs) }),
      SF_PROVIDER_ENDPOINTS: JSON.stringify(options.endpoints),
      ...options.extraEnv,
    },
  });
}

/** The platform store the actor hosts of this nats-server use (same schema, same keyring). */
export function openTestPlatform(natsUrl: string): Promise<PlatformStore> {
  return openPlatformStore({
    database: { kind: "postgres", url: sharedServices().databaseUrl, schema: defaultPlatformSchema(natsUrl) },
    keyring: testKeyring(),
  });
}

/** A tenant whose data lives in a schema of its own on the shared PostgreSQL, its store open. */
export interface PostgresTenant {
  id: string;
  name: string;
  database: TenantDatabaseConfig;
  store: TenantStore;
}

/**
 * Creates the client `slug` (named `name`, else `slug`; with `settings`), provisions its database in `schema` of the
 * shared PostgreSQL, points the platform at it and opens its store (the caller closes it).
 */
export async function createPostgresTenant(
  platform: PlatformStore,
  options: { slug: string; schema: string; name?: string; settings?: CreateClientInput["settings"] },
): Promise<PostgresTenant> {
  const client = await platform.createClient({
    slug: options.slug,
    name: options.name ?? options.slug,
    ...(options.settings === undefined ? {} : { settings: options.settings }),
  });
  const database: TenantDatabaseConfig = {
    kind: "postgres",
    url: sharedServices().databaseUrl,
    schema: options.schema,
  };
  await provisionTenantDatabase({ tenantId: client.id, database, vector: "optional" });
  await platform.setTenantDatabase(client.id, database);
  const store = await openTenantStore({ tenantId: client.id, database, keyring: testKeyring() });
  return { id: client.id, name: client.name, database, store };
}

/** Gives the tenant the shared dev livekit-server's credentials (the voice suites' rooms live there). */
export function setSharedLivekitCredentials(platform: PlatformStore, tenantId: string): Promise<void> {
  const services = sharedServices();
  return platform.setLivekitCredentials(tenantId, {
    url: services.livekitUrl,
    apiKey: services.livekitApiKey,
    apiSecret: services.livekitApiSecret,
  });
}

/** The text agent most suites talk to: `helper`, on the fixture's groq model. */
export function helperAgent(extra: Partial<AgentInput> = {}): AgentInput {
  return {
    slug: "helper",
    name: "Helper",
    voiceSettings: { llm_provider: "groq", llm_model: "llama-3.3-70b-versatile" },
    ...extra,
  };
}

/** Creates the helper agent (with `extra` fields) in `store` and gives the tenant the fixture's groq key. */
export async function addHelperAgent(
  store: TenantStore,
  fixture: ProviderFixture,
  extra: Partial<AgentInput> = {},
): Promise<AgentRecord> {
  const agent = await store.createAgent(helperAgent(extra));
  await store.setProviderKey("groq", fixture.keys.groq);
  return agent;
}

/** A tenant that chats with the helper agent through the gateway: its API key, and the agent. */
export interface ChatTenant extends PostgresTenant {
  key: string;
  agent: AgentRecord;
}

/** {@link createPostgresTenant}, then {@link addHelperAgent} (with `agent` fields) and an API key named `keyName`. */
export async function createChatTenant(
  platform: PlatformStore,
  fixture: ProviderFixture,
  options: Parameters<typeof createPostgresTenant>[1] & { keyName: string; agent?: Partial<AgentInput> },
): Promise<ChatTenant> {
  const tenant = await createPostgresTenant(platform, options);
  const agent = await addHelperAgent(tenant.store, fixture, options.agent);
  const key = await platform.createApiKey({ clientId: tenant.id, name: options.keyName });
  return { ...tenant, key: key.secret, agent };
}

/** Voice settings for the fixture's whole voice pipeline: groq for the LLM, deepgram STT, elevenlabs TTS. */
export function fixtureVoiceSettings(): AgentInput["voiceSettings"] {
  return {
    llm_provider: "groq",
    llm_model: "llama-3.3-70b-versatile",
    stt_provider: "deepgram",
    tts_provider: "elevenlabs",
    voice_id: "voice-1",
  };
}

/** Creates `agent` on the fixture's whole voice pipeline and gives the tenant the fixture's keys of its three providers. */
export async function addVoiceAgent(
  store: TenantStore,
  fixture: ProviderFixture,
  agent: Omit<AgentInput, "voiceSettings">,
): Promise<AgentRecord> {
  const created = await store.createAgent({ ...agent, voiceSettings: fixtureVoiceSettings() });
  for (const provider of ["groq", "deepgram", "elevenlabs"] as const) {
    await store.setProviderKey(provider, fixture.keys[provider]);
  }
  return created;
}

/** Every job event published under `subjects`, in arrival order (subscribed and flushed on return). */
export async function collectJobEvents(nc: NatsConnection, subjects: Subjects): Promise<JobEvent[]> {
  const events: JobEvent[] = [];
  nc.subscribe(`${subjects.prefix}.job.>`, {
    callback: (_err, msg) => {
      events.push(decodeBody(msg.data) as JobEvent);
    },
  });
  await nc.flush();
  return events;
}

/**
 * One of everything a job needs, on a fresh nats-server: the provider fixture, actor host `h1`,
 * agent worker `w1`, the platform store and a client connection. Disposing closes them in reverse.
 */
export interface WorkerStack extends AsyncDisposable {
  server: NatsTestServer;
  fixture: ProviderFixture;
  host: TestProcess;
  worker: TestProcess;
  platform: PlatformStore;
  nc: NatsConnection;
}

export async function startWorkerStack(options: { partitions: number }): Promise<WorkerStack> {
  const started: AsyncDisposable[] = [];
  const dispose = async (): Promise<void> => {
    // splice: a second dispose finds nothing left to close.
    for (const part of started.splice(0).reverse()) await part[Symbol.asyncDispose]();
  };
  try {
    const server = await NatsTestServer.start();
    started.push(server);
    const fixture = await startProviderFixture();
    started.push(fixture);
    const host = await spawnActorHost({ natsUrl: server.url, hostId: "h1", partitions: options.partitions });
    started.push(host);
    const worker = await spawnWorker({
      natsUrl: server.url,
      partitions: options.partitions,
      workerId: "w1",
      endpoints: fixture.endpoints(),
    });
    started.push(worker);
    const platform = await openTestPlatform(server.url);
    started.push({ [Symbol.asyncDispose]: () => platform.close() });
    const nc = await connect({ servers: server.url });
    started.push({ [Symbol.asyncDispose]: () => nc.close() });
    return { server, fixture, host, worker, platform, nc, [Symbol.asyncDispose]: dispose };
  } catch (err) {
    await dispose();
    throw err;
  }
}

/** A {@link WorkerStack} with one tenant on the shared PostgreSQL and LiveKit, and every job event. */
export interface VoiceStack extends WorkerStack {
  tenant: PostgresTenant;
  events: JobEvent[];
}

/**
 * {@link startWorkerStack}, then the tenant `<tenant>-<port>` (schema `<tenant>_<port>`, client
 * name `name` or the slug) with the shared livekit-server's credentials, and a collector of the
 * job events under `subjects`. Disposing closes the tenant's store, then the stack.
 */
export async function startVoiceStack(options: {
  subjects: Subjects;
  tenant: string;
  name?: string;
}): Promise<VoiceStack> {
  const stack = await startWorkerStack({ partitions: options.subjects.partitions });
  try {
    const { server, platform, nc } = stack;
    const tenant = await createPostgresTenant(platform, {
      slug: `${options.tenant}-${server.port}`,
      schema: `${options.tenant}_${server.port}`,
      ...(options.name === undefined ? {} : { name: options.name }),
    });
    await setSharedLivekitCredentials(platform, tenant.id);
    const events = await collectJobEvents(nc, options.subjects);
    return {
      ...stack,
      tenant,
      events,
      async [Symbol.asyncDispose]() {
        await tenant.store.close();
        await stack[Symbol.asyncDispose]();
      },
    };
  } catch (err) {
    await stack[Symbol.asyncDispose]();
    throw err;
  }
}

/** An actor host, an agent worker and a gateway on one nats-server: the chat suites' platform. */
export interface ChatStack extends AsyncDisposable {
  host: TestProcess;
  worker: TestProcess;
  gw: GatewayProcess;
}

/**
 * Host `<name>-h1`, worker `<name>-w1` with `workerSlots` slots on the fixture's endpoints, and a
 * gateway with its rate limits off (these suites send more than a client may) and `gatewayEnv`.
 * Disposing stops them in reverse.
 */
export async function startChatStack(options: {
  natsUrl: string;
  partitions: number;
  fixture: ProviderFixture;
  name: string;
  host?: Pick<ActorHostEnv, "tenantMaxJobs" | "claimTimeoutMs">;
  workerSlots: number;
  gatewayEnv?: Record<string, string>;
  maxBodyBytes?: number;
}): Promise<ChatStack> {
  const started: AsyncDisposable[] = [];
  const dispose = async (): Promise<void> => {
    for (const part of started.splice(0).reverse()) await part[Symbol.asyncDispose]();
  };
  try {
    const { natsUrl, partitions } = options;
    const host = await spawnActorHost({ natsUrl, hostId: `${options.name}-h1`, partitions, ...options.host });
    started.push(host);
    const worker = await spawnWorker({
      natsUrl,
      partitions,
      workerId: `${options.name}-w1`,
      endpoints: options.fixture.endpoints(),
      extraEnv: { SF_WORKER_SLOTS: String(options.workerSlots) },
    });
    started.push(worker);
    const gw = await spawnGateway({
      natsUrl,
      partitions,
      ...(options.maxBodyBytes === undefined ? {} : { maxBodyBytes: options.maxBodyBytes }),
      extraEnv: {
        SF_RATE_LIMIT_PER_MINUTE_KEY: "0",
        SF_RATE_LIMIT_PER_MINUTE_TENANT: "0",
        ...options.gatewayEnv,
      },
    });
    started.push(gw.proc);
    return { host, worker, gw, [Symbol.asyncDispose]: dispose };
  } catch (err) {
    await dispose();
    throw err;
  }
}
