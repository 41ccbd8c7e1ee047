/**
 * What each agent worker tells about itself as a NATS service (`sf-agent-worker`: `$SRV.STATS`
 * lists every live worker, `<prefix>.worker.<id>.stats` answers one): its slots per queue and the
 * provider errors its calls met since it started (the `sf_provider_errors_total` counter). The
 * worker's memory and load stay in its capacity record (KV `<prefix>_workers`); this adds what the
 * record does not carry. The console's dashboard is the reader.
 */

/** The NATS services name agent workers register under. */
export const WORKER_SERVICE = "sf-agent-worker";

export interface QueueSlots {
  slots: number;
  in_flight: number;
}

export interface ProviderErrorCount {
  provider: string;
  /** llm, embeddings, stt or tts. */
  kind: string;
  /** An `SF_ERR_PROVIDER_*` code (`SF_ERR_UNKNOWN` for anything else). */
  code: string;
  count: number;
}

export interface WorkerStatsReply {
  worker: string;
  queues: { text: QueueSlots; voice: QueueSlots; ingest: QueueSlots };
  /** Failed provider calls since the worker started, each retry attempt counted. */
  provider_errors: ProviderErrorCount[];
  /** Epoch ms the worker started. */
  started_at: number;
}

const nat = (x: unknown): x is number => Number.isInteger(x) && (x as number) >= 0;
const LABEL = /^[A-Za-z0-9_.-]{1,64}$/;

function slotsOf(value: unknown): QueueSlots | undefined {
  if (typeof value !== "object" || value === null) return undefined;
  const v = value as Record<string, unknown>;
  return nat(v["slots"]) && nat(v["in_flight"])
    ? { slots: v["slots"], in_flight: v["in_flight"] }
    : undefined;
}

/** Reads a worker's stats from the wire; undefined when they are not well formed. */
export function parseWorkerStats(value: unknown): WorkerStatsReply | undefined {
  if (typeof value !== "object" || value === null) return undefined;
  const v = value as Record<string, unknown>;
  const q = v["queues"] as Record<string, unknown> | undefined;
  if (typeof v["worker"] !== "string" || typeof q !== "object" || q === null || !nat(v["started_at"]))
    return undefined;
  const text = slotsOf(q["text"]);
  const voice = slotsOf(q["voice"]);
  const ingest = slotsOf(q["ingest"]);
  if (text === undefined || voice === undefined || ingest === undefined) return undefined;
  const errors = v["provider_errors"];
  if (!Array.isArray(errors)) return undefined;
  const provider_errors: ProviderErrorCount[] = [];
  for (const e of errors) {
    if (typeof e !== "object" || e === null) return undefined;
    const r = e as Record<string, unknown>;
    const { provider, kind, code, count } = r;
    if (typeof provider !== "string" || typeof kind !== "string" || typeof code !== "string")
      return undefined;
    if (!LABEL.test(provider) || !LABEL.test(kind) || !LABEL.test(code) || !nat(count)) return undefined;
    provider_errors.push({ provider, kind, code, count });
  }
  return {
    worker: v["worker"],
    queues: { text, voice, ingest },
    provider_errors,
    started_at: v["started_at"],
  };
}
