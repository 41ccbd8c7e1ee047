/**
 * Operations any agent worker answers (`<prefix>.workers.<op>`, one queue group, so one worker
 * answers each request): diagnostics that need what only workers have, the provider clients and
 * their configured endpoints. The operator CLI (`sidekick doctor`) is the caller.
 */
import type { WireError } from "../../bus/index.ts";

export const WorkerOps = {
  /** Cheap real calls to each provider a tenant's agents and embedding settings name. */
  providerCheck: "provider-check",
} as const;

export type WorkerOpName = (typeof WorkerOps)[keyof typeof WorkerOps];

export interface ProviderCheckRequest {
  /** The tenant (client id) whose providers are checked. */
  tenant: string;
  /** Deadline of each provider call. Default 10000 ms. */
  call_timeout_ms?: number;
}

export type ProviderCheckKind = "llm" | "embeddings" | "stt" | "tts";

/**
 * One provider as a tenant uses it. `ok`: the call answered; `fail`: the call failed, or a
 * provider is named without a key or a required setting (`error.code`
 * SF_ERR_PROVIDER_MISCONFIGURED); `skipped`: a stored key no agent or setting uses, with no
 * default model to call it with.
 */
export interface ProviderCheckResult {
  kind: ProviderCheckKind | null;
  provider: string;
  model: string | null;
  /** Agent slugs (and `embedding` for the tenant's embedding settings) that use it. */
  used_by: string[];
  status: "ok" | "fail" | "skipped";
  latency_ms: number | null;
  error?: WireError;
  note?: string;
}

export interface ProviderCheckReply {
  worker: string;
  tenant: string;
  agents: number;
  checks: ProviderCheckResult[];
}
