/**
 * The `provider-check` worker operation (`<prefix>.workers.provider-check`, answered by any one
 * worker): for one tenant, a cheap real call to every provider its agents and embedding settings
 * name, through the same provider clients, keys and configured endpoints a job would use, so a
 * pass means a job would reach the provider from this worker. The calls: a 1-token chat
 * completion (LLM), one short embedding, a quarter second of silence transcribed (STT), two
 * characters synthesized (TTS). A stored key that nothing uses is called with its provider's
 * default model when it has one, else reported as skipped. Keys never leave the worker.
 */
import type { NatsConnection, Subscription } from "@nats-io/transport-node";
import type { Logger } from "pino";
import { InvalidArgumentError, WorkerOps } from "../../actors/index.ts";
import type {
  AgentRecord,
  EmbeddingSettings,
  JobContextReply,
  ProviderCheckKind,
  ProviderCheckReply,
  ProviderCheckResult,
} from "../../actors/index.ts";
import {
  encodeBody,
  isToken,
  readRequest,
  replyHeaders,
  requestReply,
  toWireError,
} from "../../bus/index.ts";
import type { Subjects } from "../../bus/index.ts";
import { providerSettingsForAgent, resolveProviders } from "../providers/resolve_providers.ts";
import type {
  ProviderClientOptions,
  ProviderKeys,
  ProviderSettings,
} from "../providers/resolve_providers.ts";
import { EMBEDDING_PROVIDERS, LLM_PROVIDERS, STT_PROVIDERS } from "../providers/registry.ts";
import type { ProviderEndpoints } from "../providers/registry.ts";
import type { ChatRequest } from "../providers/llm_client.ts";

export interface ProviderCheckServiceOptions {
  nc: NatsConnection;
  subjects: Subjects;
  workerId: string;
  log: Logger;
  endpoints: ProviderEndpoints;
  /** Deadline of each call to the tenant actor. Default 10000 ms. */
  actorTimeoutMs?: number;
}

const DEFAULT_CALL_TIMEOUT_MS = 10_000;
const MAX_CALL_TIMEOUT_MS = 60_000;
/** A 1-token chat completion. */
const PING: ChatRequest = { messages: [{ role: "user", content: "ping" }], maxTokens: 1, temperature: 0 };
/** 250 ms of 16 kHz mono silence. */
const SILENCE = { pcm: new Uint8Array(16_000 / 2), sampleRate: 16_000, channels: 1 };

interface Planned {
  kind: ProviderCheckKind;
  provider: string;
  model: string | null;
  usedBy: Set<string>;
  call: (signal: AbortSignal) => Promise<unknown>;
}

function text(value: unknown): string | undefined {
  return typeof value === "string" && value.trim() !== "" ? value.trim() : undefined;
}

function named(agent: AgentRecord, kind: "llm" | "stt" | "tts"): string | undefined {
  const v = agent.voiceSettings ?? {};
  switch (kind) {
    case "llm":
      return text(v.llm_provider)?.toLowerCase();
    case "stt":
      return text(v.stt_provider)?.toLowerCase();
    case "tts":
      return text(v.tts_provider ?? v.provider)?.toLowerCase();
  }
}

/** Stands for "no agent or setting" among the users of a stored key; never reported as a user. */
const UNUSED = "";

type CheckCall = Omit<Planned, "usedBy" | "kind" | "provider">;

/** The client for one kind and the cheap call that proves it works; throws when misconfigured. */
function checkCall(
  kind: ProviderCheckKind,
  settings: ProviderSettings,
  keys: ProviderKeys,
  endpoints: ProviderEndpoints,
  options: ProviderClientOptions,
): CheckCall {
  switch (kind) {
    case "llm": {
      const { llm } = resolveProviders({ ...settings, kinds: ["llm"] as const }, keys, endpoints, options);
      return { model: llm.model, call: (signal) => llm.complete(PING, { signal }) };
    }
    case "embeddings": {
      const { embeddings } = resolveProviders(
        { ...settings, kinds: ["embeddings"] as const },
        keys,
        endpoints,
        options,
      );
      return {
        model: embeddings.modelFor("documents"),
        call: (signal) => embeddings.embedOne("ping", { role: "query", signal }),
      };
    }
    case "stt": {
      const { stt } = resolveProviders({ ...settings, kinds: ["stt"] as const }, keys, endpoints, options);
      return { model: stt.model, call: (signal) => stt.transcribe(SILENCE, { signal }) };
    }
    case "tts": {
      const { tts } = resolveProviders({ ...settings, kinds: ["tts"] as const }, keys, endpoints, options);
      return {
        model: `${tts.model} (voice ${tts.voiceId})`,
        call: (signal) => tts.synthesize("ok", { signal }),
      };
    }
  }
}

export class ProviderCheckService {
  readonly #o: ProviderCheckServiceOptions;
  #sub: Subscription | undefined;

  constructor(options: ProviderCheckServiceOptions) {
    this.#o = options;
  }

  start(): void {
    const { nc, subjects, workerId, log } = this.#o;
    this.#sub = nc.subscribe(subjects.workerOp(WorkerOps.providerCheck), {
      queue: `${subjects.prefix}-worker-ops`,
      callback: (err, msg) => {
        if (err) {
          log.warn({ err: err.message }, "worker op subscription error");
          return;
        }
        const reply = (status: "ok" | "error", body: unknown): void => {
          if (msg.reply !== undefined && msg.reply !== "") {
            msg.respond(encodeBody(body), { headers: replyHeaders(status, { host: workerId }) });
          }
        };
        let body: unknown;
        try {
          body = readRequest(msg).body;
        } catch (e) {
          reply("error", toWireError(e));
          return;
        }
        this.check(body).then(
          (result) => reply("ok", result),
          (e: unknown) => reply("error", toWireError(e)),
        );
      },
    });
  }

  async stop(): Promise<void> {
    await this.#sub?.drain();
  }

  /** Runs the checks for the tenant named in `raw` (a `ProviderCheckRequest`). */
  async check(raw: unknown): Promise<ProviderCheckReply> {
    const body = (typeof raw === "object" && raw !== null ? raw : {}) as Record<string, unknown>;
    const tenant = body["tenant"];
    if (!isToken(tenant)) {
      throw new InvalidArgumentError("provider-check needs a tenant (client id)", {
        details: { field: "tenant" },
      });
    }
    const timeout = body["call_timeout_ms"];
    const callTimeoutMs =
      typeof timeout === "number" && Number.isInteger(timeout) && timeout > 0
        ? Math.min(timeout, MAX_CALL_TIMEOUT_MS)
        : DEFAULT_CALL_TIMEOUT_MS;
    const { nc, subjects, workerId } = this.#o;
    const actorTimeoutMs = this.#o.actorTimeoutMs ?? 10_000;
    const ask = async <T>(op: string, request: unknown): Promise<T> =>
      (
        await requestReply<T>(nc, subjects.tenantOp(tenant, op), request, {
          tenant,
          timeoutMs: actorTimeoutMs,
        })
      ).body;
    const agents = await ask<AgentRecord[]>("agents-list", {});
    const first = agents[0];
    if (first === undefined) {
      return { worker: workerId, tenant, agents: 0, checks: [] };
    }
    // The keys and embedding settings are the tenant's, whichever agent asks.
    const context = await ask<JobContextReply>("job-context", { agent_slug: first.slug });
    const { planned, failed } = this.#plan(agents, context.provider_keys, context.rag?.embedding ?? null, {
      callTimeoutMs,
    });
    const results = await Promise.all(planned.map((p) => this.#run(p, callTimeoutMs)));
    const checks = [...results, ...failed].sort(
      (a, b) => a.provider.localeCompare(b.provider) || (a.kind ?? "").localeCompare(b.kind ?? ""),
    );
    return { worker: workerId, tenant, agents: agents.length, checks };
  }

  #plan(
    agents: readonly AgentRecord[],
    keys: ProviderKeys,
    embedding: EmbeddingSettings | null,
    timing: { callTimeoutMs: number },
  ): { planned: Planned[]; failed: ProviderCheckResult[] } {
    const endpoints = this.#o.endpoints;
    const options = {
      requestTimeoutMs: timing.callTimeoutMs,
      llmFirstTokenTimeoutMs: timing.callTimeoutMs,
      llmOverallTimeoutMs: timing.callTimeoutMs,
    };
    const planned = new Map<string, Planned>();
    const failed = new Map<string, ProviderCheckResult>();
    const used = new Set<string>();

    const add = (kind: ProviderCheckKind, provider: string, user: string, build: () => CheckCall): void => {
      used.add(provider);
      let p: CheckCall;
      try {
        p = build();
      } catch (err) {
        const wire = toWireError(err);
        const missing = typeof wire.details?.["missing"] === "string" ? wire.details["missing"] : "";
        const id = `${kind}:${provider}:!${missing}`;
        const existing = failed.get(id);
        if (existing !== undefined) {
          if (user !== UNUSED) existing.used_by.push(user);
        } else {
          failed.set(id, {
            kind,
            provider,
            model: null,
            used_by: user === UNUSED ? [] : [user],
            status: "fail",
            latency_ms: null,
            error: wire,
          });
        }
        return;
      }
      const id = `${kind}:${provider}:${p.model ?? ""}`;
      const existing = planned.get(id);
      if (existing !== undefined) existing.usedBy.add(user);
      else planned.set(id, { kind, provider, usedBy: new Set([user]), ...p });
    };

    const check = (kind: ProviderCheckKind, settings: ProviderSettings): CheckCall =>
      checkCall(kind, settings, keys, endpoints, options);
    for (const agent of agents) {
      for (const kind of ["llm", "stt", "tts"] as const) {
        const provider = named(agent, kind);
        if (provider === undefined) continue;
        add(kind, provider, agent.slug, () => check(kind, providerSettingsForAgent(agent, [kind])));
      }
    }
    const embeddingProvider = text(embedding?.provider)?.toLowerCase();
    if (embeddingProvider !== undefined) {
      add("embeddings", embeddingProvider, "embedding", () =>
        check("embeddings", { kinds: ["embeddings"], embedding }),
      );
    }
    // Stored keys nothing uses: called with the provider's default model when it has one
    // (LLM, embeddings, STT); a TTS-only key needs a voice, so it is reported as skipped.
    for (const provider of Object.keys(keys).sort()) {
      if (used.has(provider)) continue;
      const llm = (LLM_PROVIDERS as Record<string, { defaultModel?: string }>)[provider];
      const emb = (EMBEDDING_PROVIDERS as Record<string, { defaultModel?: string }>)[provider];
      if (llm?.defaultModel !== undefined) {
        add("llm", provider, UNUSED, () =>
          check("llm", { kinds: ["llm"], voiceSettings: { llm_provider: provider } }),
        );
      } else if (emb?.defaultModel !== undefined) {
        add("embeddings", provider, UNUSED, () =>
          check("embeddings", { kinds: ["embeddings"], embedding: { provider } }),
        );
      } else if (Object.hasOwn(STT_PROVIDERS, provider)) {
        add("stt", provider, UNUSED, () =>
          check("stt", { kinds: ["stt"], voiceSettings: { stt_provider: provider } }),
        );
      } else {
        failed.set(`key:${provider}`, {
          kind: null,
          provider,
          model: null,
          used_by: [],
          status: "skipped",
          latency_ms: null,
          note: "stored key used by no agent or setting, and there is no default model or voice to call it with",
        });
      }
    }
    return { planned: [...planned.values()], failed: [...failed.values()] };
  }

  async #run(p: Planned, callTimeoutMs: number): Promise<ProviderCheckResult> {
    const started = performance.now();
    const usedBy = [...p.usedBy].filter((u) => u !== UNUSED).sort();
    const base = {
      kind: p.kind,
      provider: p.provider,
      model: p.model,
      used_by: usedBy,
      ...(usedBy.length === 0
        ? { note: "stored key used by no agent or setting: called with the default model" }
        : {}),
    };
    try {
      await p.call(AbortSignal.timeout(callTimeoutMs + 1000));
      return { ...base, status: "ok", latency_ms: elapsed(started) };
    } catch (err) {
      const wire = toWireError(err);
      this.#o.log.warn({ provider: p.provider, kind: p.kind, code: wire.code }, "provider check failed");
      return { ...base, status: "fail", latency_ms: elapsed(started), error: wire };
    }
  }
}

function elapsed(started: number): number {
  return Math.round((performance.now() - started) * 10) / 10;
}
