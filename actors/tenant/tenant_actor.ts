/**
 * The tenant actor. For now it holds a small, real piece of state: a durable per-tenant
 * counter whose increments are exactly-once per request id (the ids applied recently are
 * stored with the count, in the same fenced write), plus where and when it was activated.
 * The tenant logic of later issues (credentials, dispatch, conversations) grows here.
 */
import { BusErrorCodes, SfError } from "../../bus/index.ts";
import type { Actor, ActorContext, ActorMessage } from "../runtime/actor.ts";
import type { FencedState } from "../runtime/fenced_state.ts";
import { InvalidArgumentError } from "../errors.ts";
import type { LivekitCredentials, TenantStoreCache } from "../store/index.ts";
import type { Dispatcher } from "../dispatch/dispatcher.ts";
import { DispatchOps, TenantDispatch } from "./dispatch_ops.ts";
import { DOCUMENT_READ_ONLY_OPS, DocumentOps, TenantDocuments } from "./document_ops.ts";
import type { IngestPublisher, TenantSettingsAccess } from "./document_ops.ts";
import { handleProviderKeyOp, ProviderKeyOps } from "./provider_key_ops.ts";
import { AgentOps, handleAgentOp } from "./agent_ops.ts";
import type { AuditWriter } from "./agent_ops.ts";

export const TenantOps = {
  increment: "incr",
  get: "get",
  echo: "echo",
  listAgents: "agents-list",
  getAgent: "agent-get",
  ...AgentOps,
  ...DispatchOps,
  ...DocumentOps,
  ...ProviderKeyOps,
} as const;

/** What every tenant actor of a host shares. */
export interface TenantActorDeps {
  /** The tenant's database handles, opened from its decrypted credentials, dropped when they change. */
  stores: TenantStoreCache;
  /** Jobs one tenant may have in flight (its concurrent-session quota). Default 100. */
  maxConcurrentJobs?: number;
  /** Confirmed dispatch of agent jobs; absent, the dispatch ops are not served. */
  dispatcher?: Dispatcher;
  /** Writes agent changes to the platform audit log; absent, they are not audited. */
  audit?: AuditWriter;
  /** The tenant's decrypted LiveKit credentials (cached, dropped on change); absent, voice is refused. */
  livekitCredentials?: (tenant: string) => Promise<LivekitCredentials | null>;
  /** The tenants' client settings (embedding configuration); absent, no tenant has embeddings. */
  settings?: TenantSettingsAccess;
  /** Queues document ingestion jobs on SF_INGEST; absent, uploads are refused. */
  publishIngest?: IngestPublisher;
}

export interface CounterReply {
  tenant: string;
  count: number;
  host: string;
  epoch: number;
  activatedAt: number;
}

interface CounterState {
  count: number;
  /** Request ids applied most recently, oldest first. */
  applied: string[];
}

// Retries arrive within a caller's deadline, so the window only needs to cover the requests in flight.
const APPLIED_WINDOW = 512;

/** Tenant operations that change nothing (their replies need no deduplication). */
const READ_ONLY_OPS: ReadonlySet<string> = new Set([
  "get",
  "echo",
  "agents-list",
  "agent-get",
  "conversations-list",
  "conversation-get",
  "job-context",
  ...DOCUMENT_READ_ONLY_OPS,
  "provider-keys-list",
]);

export class TenantActor implements Actor {
  readonly readOnlyOps = READ_ONLY_OPS;
  readonly #ctx: ActorContext;
  readonly #deps: TenantActorDeps;
  readonly #dispatch: TenantDispatch | undefined;
  readonly #documents: TenantDocuments;
  readonly #state: FencedState<CounterState>;
  #counter: CounterState = { count: 0, applied: [] };
  #applied = new Set<string>();
  #activatedAt = 0;

  constructor(ctx: ActorContext, deps: TenantActorDeps) {
    this.#ctx = ctx;
    this.#deps = deps;
    const tenant = ctx.tenant;
    const loadLivekit = deps.livekitCredentials;
    this.#documents = new TenantDocuments({
      tenant,
      store: () => deps.stores.get(tenant),
      log: ctx.log,
      ...(deps.settings === undefined ? {} : { settings: deps.settings }),
      ...(deps.publishIngest === undefined ? {} : { publish: deps.publishIngest }),
      ...(deps.audit === undefined ? {} : { audit: deps.audit }),
    });
    const documents = this.#documents;
    this.#dispatch =
      deps.dispatcher === undefined
        ? undefined
        : new TenantDispatch({
            tenant,
            store: () => deps.stores.get(tenant),
            dispatcher: deps.dispatcher,
            log: ctx.log,
            stillOwner: () => ctx.stillOwner(),
            ...(deps.maxConcurrentJobs === undefined ? {} : { maxConcurrentJobs: deps.maxConcurrentJobs }),
            ...(loadLivekit === undefined ? {} : { livekitCredentials: () => loadLivekit(tenant) }),
            ragInfo: (store, agent) => documents.ragInfo(store, agent),
          });
    this.#state = ctx.state<CounterState>("counter");
  }

  async activate(): Promise<void> {
    const stored = await this.#state.activate();
    this.#counter =
      stored === undefined
        ? { count: 0, applied: [] }
        : { count: stored.count, applied: [...stored.applied] };
    this.#applied = new Set(this.#counter.applied);
    this.#activatedAt = Date.now();
    this.#ctx.log.debug({ count: this.#counter.count }, "tenant actor activated");
  }

  async handle(message: ActorMessage): Promise<unknown> {
    switch (message.op) {
      case TenantOps.increment:
        return this.#increment(message);
      case TenantOps.get:
        return this.#reply();
      case TenantOps.echo:
        return message.body;
      case TenantOps.listAgents:
        return (await this.#deps.stores.get(this.#ctx.tenant)).listAgents();
      case TenantOps.getAgent: {
        const slug = (message.body as { slug?: unknown } | undefined)?.slug;
        if (typeof slug !== "string" || slug === "") {
          throw new InvalidArgumentError("agent-get needs a slug", { details: { field: "slug" } });
        }
        return (await this.#deps.stores.get(this.#ctx.tenant)).getAgent(slug);
      }
      default: {
        const dispatched = this.#dispatch?.handle(message.op, message.body, message.meta);
        if (dispatched !== undefined) return dispatched;
        const documentReply = this.#documents.handle(message.op, message.body);
        if (documentReply !== undefined) return documentReply;
        const keyReply = handleProviderKeyOp(message.op, message.body, {
          tenant: this.#ctx.tenant,
          store: () => this.#deps.stores.get(this.#ctx.tenant),
          audit: this.#deps.audit,
        });
        if (keyReply !== undefined) return keyReply;
        // An agent changes here: cached agent configs and document counts must not outlive it.
        if ((Object.values(AgentOps) as string[]).includes(message.op)) {
          this.#dispatch?.invalidate();
          this.#documents.invalidate();
        }
        const tenant = this.#ctx.tenant;
        const handled = await handleAgentOp(
          message.op,
          message.body,
          tenant,
          () => this.#deps.stores.get(tenant),
          this.#deps.audit,
        );
        if (handled !== undefined) return handled.reply;
        throw new SfError(
          BusErrorCodes.UNKNOWN_OP,
          `unknown tenant operation ${JSON.stringify(message.op)}`,
          {
            details: { op: message.op },
          },
        );
      }
    }
  }

  async #increment(message: ActorMessage): Promise<CounterReply> {
    const body = (message.body ?? {}) as { by?: unknown };
    if (typeof body !== "object" || body === null)
      throw new InvalidArgumentError("incr takes an object body");
    const by = body.by ?? 1;
    if (typeof by !== "number" || !Number.isInteger(by) || by < 1 || by > 1_000_000) {
      throw new InvalidArgumentError("incr.by must be an integer from 1 to 1000000", {
        details: { field: "by" },
      });
    }
    const id = message.meta.requestId;
    if (this.#applied.has(id)) return this.#reply();
    const applied = [...this.#counter.applied, id];
    if (applied.length > APPLIED_WINDOW) applied.splice(0, applied.length - APPLIED_WINDOW);
    const next: CounterState = { count: this.#counter.count + by, applied };
    await this.#state.save(next);
    this.#counter = next;
    this.#applied.add(id);
    if (this.#applied.size > APPLIED_WINDOW) this.#applied = new Set(applied);
    return this.#reply();
  }

  #reply(): CounterReply {
    return {
      tenant: this.#ctx.tenant,
      count: this.#counter.count,
      host: this.#ctx.hostId,
      epoch: this.#ctx.epoch,
      activatedAt: this.#activatedAt,
    };
  }
}

export function tenantActorFactory(deps: TenantActorDeps): (ctx: ActorContext) => Actor {
  return (ctx) => new TenantActor(ctx, deps);
}
