/**
 * The platform the chaos run loads and breaks: real processes only. A nats-server of its own (or a
 * loopback 3-node cluster from deploy/nats/nats-cluster.conf), a private PostgreSQL (platform and
 * tenant databases, so restarting it disturbs no other suite), the provider fixture as every LLM,
 * STT and TTS, and N gateways (fixed ports, so a restarted one is where clients left it), actor
 * hosts and agent workers spawned the way the integration suites spawn them. Every process can be
 * SIGKILLed (and restarted), SIGSTOPped and SIGCONTed by name.
 */
import { limiter } from "./limit.ts";
import { openPlatformStore, openTenantStore, provisionTenantDatabase } from "../../actors/index.ts";
import type { PlatformStore } from "../../actors/index.ts";
import { startProviderFixture } from "../../tests/fixtures/providers/provider_fixture.ts";
import type { ProviderFixture } from "../../tests/fixtures/providers/provider_fixture.ts";
import { spawnGateway } from "../../tests/helpers/gateway_process.ts";
import { NatsTestCluster } from "../../tests/helpers/nats_cluster.ts";
import { freePort } from "../../tests/helpers/ports.ts";
import { NatsTestServer } from "../../tests/helpers/nats_server.ts";
import { PostgresTestServer } from "../../tests/helpers/postgres_server.ts";
import { spawnActorHost, testKeyring } from "../../tests/helpers/processes.ts";
import type { TestProcess } from "../../tests/helpers/processes.ts";
import { addVoiceAgent, setSharedLivekitCredentials, spawnWorker } from "../../tests/helpers/stack.ts";

export const AGENT_SLUG = "helper";

export type RoleKind = "gateway" | "host" | "worker";

/** One platform process and how to start it again. */
export interface Role {
  kind: RoleKind;
  name: string;
  proc: TestProcess;
  /** The NATS node it is attached to (cluster stacks). */
  natsNode?: string;
  /** Gateways: the fixed port. */
  port?: number;
  spawn: () => Promise<TestProcess>;
}

export interface ChaosTenant {
  index: number;
  id: string;
  apiKey: string;
  schema: string;
  voice: boolean;
}

export interface ChaosStackOptions {
  nats: "single" | "cluster";
  tenants: number;
  /** How many tenants get LiveKit credentials (voice triggers). */
  voiceTenants: number;
  gateways: number;
  hosts: number;
  workers: number;
  partitions?: number;
  /** Delay between streamed LLM tokens (so faults hit jobs in flight). */
  tokenDelayMs?: number;
  /** Share one PostgreSQL between stacks (created here when absent, and then disposed here). */
  postgres?: PostgresTestServer;
  /** Prefix of the tenant schemas and client slugs. */
  name: string;
  log?: (line: string) => void;
}

/** Timeouts the chaos stack runs with (shorter than production, so one run fits in minutes). */
export const CHAOS_TIMEOUTS = {
  leaseTtlMs: 3000,
  /** The hosts' default: each balancing round lists the lease and member buckets. */
  balanceIntervalMs: 500,
  claimTimeoutMs: 6000,
  ackWaitMs: 3000,
  gatewayTriggerTimeoutMs: 9000,
  gatewayReplyTimeoutMs: 18_000,
  voiceEmptyRoomTimeoutMs: 2000,
} as const;

/** Stacks not disposed yet: what an interrupted run must still stop (`disposeLiveStacks`). */
const live = new Set<ChaosStack>();

/** Stops every process of every stack still running (a run interrupted by a signal). */
export async function disposeLiveStacks(): Promise<void> {
  for (const stack of [...live]) await stack[Symbol.asyncDispose]();
}

export class ChaosStack implements AsyncDisposable {
  readonly options: ChaosStackOptions;
  nats: NatsTestServer | undefined;
  cluster: NatsTestCluster | undefined;
  postgres!: PostgresTestServer;
  fixture!: ProviderFixture;
  platform: PlatformStore | undefined;
  readonly roles: Role[] = [];
  readonly tenants: ChaosTenant[] = [];
  readonly #ownsPostgres: boolean;

  private constructor(options: ChaosStackOptions) {
    this.options = options;
    this.#ownsPostgres = options.postgres === undefined;
  }

  get partitions(): number {
    return this.options.partitions ?? 32;
  }

  get natsUrl(): string {
    if (this.cluster !== undefined) return this.cluster.url;
    if (this.nats !== undefined) return this.nats.url;
    throw new Error("the chaos stack has no NATS");
  }

  get platformSchema(): string {
    return `${this.options.name}_platform`;
  }

  get replicas(): string {
    return this.options.nats === "cluster" ? "3" : "1";
  }

  #log(line: string): void {
    this.options.log?.(line);
  }

  static async start(options: ChaosStackOptions): Promise<ChaosStack> {
    const stack = new ChaosStack(options);
    live.add(stack);
    try {
      await stack.#start();
    } catch (err) {
      await stack[Symbol.asyncDispose]();
      throw err;
    }
    return stack;
  }

  async #start(): Promise<void> {
    const o = this.options;
    const t0 = performance.now();
    if (o.nats === "cluster") this.cluster = await NatsTestCluster.start();
    else this.nats = await NatsTestServer.start();
    this.postgres = o.postgres ?? (await PostgresTestServer.start());
    this.fixture = await startProviderFixture({ tokenDelayMs: o.tokenDelayMs ?? 0 });
    this.#log(`chaos: nats, postgres, provider fixture up in ${Math.round(performance.now() - t0)} ms`);

    const nodes = this.cluster?.nodes.map((n) => n.name) ?? [];
    const nodeFor = (i: number): string | undefined =>
      nodes.length === 0 ? undefined : nodes[i % nodes.length];
    const urlFor = (node: string | undefined): string =>
      node === undefined || this.cluster === undefined ? this.natsUrl : this.cluster.nodeUrl(node);

    // Hosts first (they own the platform schema's migrations), then workers and gateways.
    const starts: Array<Promise<void>> = [];
    for (let i = 0; i < o.hosts; i++) {
      const node = nodeFor(i);
      const name = `host-${i + 1}`;
      starts.push(
        this.#add({
          kind: "host",
          name,
          ...(node === undefined ? {} : { natsNode: node }),
          spawn: () =>
            spawnActorHost({
              natsUrl: urlFor(node),
              hostId: name,
              partitions: this.partitions,
              leaseTtlMs: CHAOS_TIMEOUTS.leaseTtlMs,
              balanceIntervalMs: CHAOS_TIMEOUTS.balanceIntervalMs,
              claimTimeoutMs: CHAOS_TIMEOUTS.claimTimeoutMs,
              tenantMaxJobs: 200,
              databaseUrl: this.postgres.url,
              platformSchema: this.platformSchema,
              extraEnv: { SF_STREAM_REPLICAS: this.replicas },
            }),
        }),
      );
      // The first host provisions the streams and the platform schema alone.
      if (i === 0) await starts.pop();
    }
    await Promise.all(starts.splice(0));
    for (let i = 0; i < o.workers; i++) {
      const node = nodeFor(i + 1);
      const name = `worker-${i + 1}`;
      starts.push(
        this.#add({
          kind: "worker",
          name,
          ...(node === undefined ? {} : { natsNode: node }),
          spawn: () =>
            spawnWorker({
              natsUrl: urlFor(node),
              partitions: this.partitions,
              workerId: name,
              endpoints: this.fixture.endpoints(),
              ackWaitMs: CHAOS_TIMEOUTS.ackWaitMs,
              extraEnv: {
                SF_WORKER_SLOTS: "64",
                SF_STREAM_REPLICAS: this.replicas,
                SF_VOICE_EMPTY_ROOM_TIMEOUT_MS: String(CHAOS_TIMEOUTS.voiceEmptyRoomTimeoutMs),
                SF_LOG_LEVEL: "info",
              },
            }),
        }),
      );
    }
    for (let i = 0; i < o.gateways; i++) {
      const node = nodeFor(i + 2);
      const name = `gateway-${i + 1}`;
      const port = await freePort();
      starts.push(
        this.#add({
          kind: "gateway",
          name,
          port,
          ...(node === undefined ? {} : { natsNode: node }),
          spawn: async () =>
            (
              await spawnGateway({
                natsUrl: urlFor(node),
                partitions: this.partitions,
                maxBodyBytes: 64 * 1024,
                shutdownGraceMs: 2000,
                extraEnv: {
                  SF_GATEWAY_PORT: String(port),
                  SF_GATEWAY_TRIGGER_TIMEOUT_MS: String(CHAOS_TIMEOUTS.gatewayTriggerTimeoutMs),
                  SF_GATEWAY_REPLY_TIMEOUT_MS: String(CHAOS_TIMEOUTS.gatewayReplyTimeoutMs),
                  SF_STREAM_REPLICAS: this.replicas,
                },
              })
            ).proc,
        }),
      );
    }
    await Promise.all(starts);
    this.#log(
      `chaos: ${this.roles.length} platform processes up at ${Math.round(performance.now() - t0)} ms`,
    );

    this.platform = await openPlatformStore({
      database: { kind: "postgres", url: this.postgres.url, schema: this.platformSchema },
      keyring: testKeyring(),
    });
    const limit = limiter(4);
    await Promise.all(
      Array.from({ length: o.tenants }, (_, i) => limit(() => this.#tenant(i, i < o.voiceTenants))),
    );
    this.tenants.sort((a, b) => a.index - b.index);
    this.#log(`chaos: ${o.tenants} tenants ready at ${Math.round(performance.now() - t0)} ms`);
  }

  async #add(role: Omit<Role, "proc">): Promise<void> {
    const proc = await role.spawn();
    this.roles.push({ ...role, proc });
  }

  async #tenant(index: number, voice: boolean): Promise<void> {
    const platform = this.platform as PlatformStore;
    const slug = `${this.options.name}-t${index}`.replace(/_/g, "-");
    const client = await platform.createClient({ slug, name: `Chaos tenant ${index}` });
    const schema = `${this.options.name}_t${index}`;
    const database = { kind: "postgres" as const, url: this.postgres.url, schema };
    await provisionTenantDatabase({ tenantId: client.id, database, vector: "optional" });
    await platform.setTenantDatabase(client.id, database);
    if (voice) await setSharedLivekitCredentials(platform, client.id);
    const store = await openTenantStore({ tenantId: client.id, database, keyring: testKeyring() });
    try {
      await addVoiceAgent(store, this.fixture, { slug: AGENT_SLUG, name: "Helper" });
    } finally {
      await store.close();
    }
    const apiKey = (await platform.createApiKey({ clientId: client.id, name: "chaos" })).secret;
    this.tenants.push({ index, id: client.id, apiKey, schema, voice });
  }

  role(name: string): Role {
    const role = this.roles.find((r) => r.name === name);
    if (role === undefined) throw new Error(`no process ${name} in the chaos stack`);
    return role;
  }

  rolesOf(kind: RoleKind): Role[] {
    return this.roles.filter((r) => r.kind === kind);
  }

  /** The gateways' base URLs, in role order (a killed one keeps its place and port). */
  gatewayUrls(): string[] {
    return this.rolesOf("gateway").map((r) => `http://127.0.0.1:${r.port as number}`);
  }

  async kill(name: string): Promise<void> {
    await this.role(name).proc.kill();
  }

  /** Starts a (killed) process again with the same identity, port and settings. */
  async restart(name: string): Promise<void> {
    const role = this.role(name);
    await role.proc.kill();
    role.proc = await role.spawn();
  }

  freeze(name: string): void {
    this.role(name).proc.signal("SIGSTOP");
  }

  thaw(name: string): void {
    this.role(name).proc.signal("SIGCONT");
  }

  /** Processes that exited without being told to (a crash the run did not cause). */
  crashed(): string[] {
    return this.roles.filter((r) => !r.proc.running).map((r) => r.name);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    live.delete(this);
    for (const role of [...this.roles].reverse()) {
      role.proc.signal("SIGCONT");
      await role.proc.kill();
    }
    await this.platform?.close();
    if (this.fixture !== undefined) await this.fixture.close();
    if (this.#ownsPostgres && this.postgres !== undefined) await this.postgres[Symbol.asyncDispose]();
    await this.nats?.[Symbol.asyncDispose]();
    await this.cluster?.[Symbol.asyncDispose]();
  }
}
