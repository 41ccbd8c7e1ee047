/**
 * Idempotent provisioning of the JetStream streams and KV buckets in ARCHITECTURE.md's table.
 * Safe to call from every process at start: missing ones are created, existing ones whose
 * settings we own are updated in place, nothing is deleted.
 */
import { jetstream, jetstreamManager, RetentionPolicy, StorageType, DiscardPolicy } from "@nats-io/jetstream";
import type { JetStreamManager, StreamConfig } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import type { KV } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import { nanos } from "@nats-io/transport-node";
import type { Subjects } from "./subjects.ts";

export interface ProvisionOptions {
  /** Partition lease TTL (bucket max age). Default 3000 ms. */
  leaseTtlMs?: number;
  /**
   * Host membership TTL. Default half the lease TTL: a dead host leaves the membership before
   * its leases expire, so survivors never hand partitions to it.
   */
  memberTtlMs?: number;
  /** Worker capacity record TTL. Default 5000 ms. */
  workerTtlMs?: number;
  /** Stream replicas (1 for a single server, 3 for a cluster). Default 1. */
  replicas?: number;
  /** How long dispatch jobs may wait in the queue. Default 10 minutes. */
  dispatchMaxAgeMs?: number;
  /** How long document ingestion jobs may wait in the queue. Default 24 hours. */
  ingestMaxAgeMs?: number;
  /** How long job and client events are kept. Default 24 hours. */
  eventsMaxAgeMs?: number;
  /**
   * Most bytes SF_EVENTS may hold; the oldest events go first. Default 1 GiB: without a bound a
   * busy platform fills the JetStream store, and a full store refuses every write, leases included.
   */
  eventsMaxBytes?: number;
  /** Window in which a repeated `Nats-Msg-Id` is dropped. Default 2 minutes. */
  duplicateWindowMs?: number;
}

export interface ResolvedProvisionOptions {
  readonly leaseTtlMs: number;
  readonly memberTtlMs: number;
  readonly workerTtlMs: number;
  readonly replicas: number;
  readonly dispatchMaxAgeMs: number;
  readonly ingestMaxAgeMs: number;
  readonly eventsMaxAgeMs: number;
  readonly eventsMaxBytes: number;
  readonly duplicateWindowMs: number;
}

export function parseProvisionOptions(options: ProvisionOptions = {}): ResolvedProvisionOptions {
  const leaseTtlMs = options.leaseTtlMs ?? 3000;
  return Object.freeze({
    leaseTtlMs,
    memberTtlMs: options.memberTtlMs ?? Math.ceil(leaseTtlMs / 2),
    workerTtlMs: options.workerTtlMs ?? 5000,
    replicas: options.replicas ?? 1,
    dispatchMaxAgeMs: options.dispatchMaxAgeMs ?? 10 * 60_000,
    ingestMaxAgeMs: options.ingestMaxAgeMs ?? 24 * 3_600_000,
    eventsMaxAgeMs: options.eventsMaxAgeMs ?? 24 * 3_600_000,
    eventsMaxBytes: options.eventsMaxBytes ?? 1024 * 1024 * 1024,
    duplicateWindowMs: options.duplicateWindowMs ?? 120_000,
  });
}

export interface Provisioned {
  leases: KV;
  members: KV;
  workers: KV;
  state: KV;
}

async function ensureStream(
  jsm: JetStreamManager,
  config: Partial<StreamConfig> & { name: string },
): Promise<void> {
  let existing;
  try {
    existing = await jsm.streams.info(config.name);
  } catch (err) {
    if (err instanceof Error && /stream not found/i.test(err.message)) {
      await jsm.streams.add(config);
      return;
    }
    throw err;
  }
  const current = existing.config as unknown as Record<string, unknown>;
  const wanted = config as unknown as Record<string, unknown>;
  const differs = Object.entries(wanted).some(
    ([key, value]) =>
      key !== "retention" && key !== "storage" && JSON.stringify(current[key]) !== JSON.stringify(value),
  );
  if (differs) await jsm.streams.update(config.name, { ...existing.config, ...config });
}

/**
 * A KV bucket with these settings: created when missing; an existing one brought up to date in
 * place (its TTL, and its replicas raised or lowered to `replicas`: `Kvm.create` alone binds to
 * an existing bucket without touching either). For every process that owns a bucket.
 */
export async function ensureKvBucket(
  nc: NatsConnection,
  name: string,
  options: {
    ttlMs: number;
    replicas: number;
    /** How long each operation of the returned handle waits for an answer; default JetStream's (5 s). */
    timeoutMs?: number;
  },
  jsm?: JetStreamManager,
): Promise<KV> {
  const { ttlMs, replicas } = options;
  const client = options.timeoutMs === undefined ? nc : jetstream(nc, { timeout: options.timeoutMs });
  const kv = await new Kvm(client).create(name, {
    history: 1,
    ttl: ttlMs,
    markerTTL: ttlMs > 0 ? 1000 : 0,
    replicas,
  });
  const manager = jsm ?? (await jetstreamManager(nc));
  const stream = `KV_${name}`;
  const info = await manager.streams.info(stream);
  const ageDiffers = info.config.max_age !== nanos(ttlMs);
  const replicasDiffer = info.config.num_replicas !== replicas;
  if (ageDiffers || replicasDiffer) {
    // The server refuses a duplicate window longer than the max age: shrink it along.
    const duplicateWindow =
      ttlMs > 0 ? Math.min(info.config.duplicate_window, nanos(ttlMs)) : info.config.duplicate_window;
    await manager.streams.update(stream, {
      ...info.config,
      max_age: nanos(ttlMs),
      duplicate_window: duplicateWindow,
      num_replicas: replicas,
    });
  }
  return kv;
}

export async function provisionBus(
  nc: NatsConnection,
  subjects: Subjects,
  options: ProvisionOptions = {},
): Promise<Provisioned> {
  const o = parseProvisionOptions(options);
  const jsm = await jetstreamManager(nc);
  await ensureStream(jsm, {
    name: subjects.streams.dispatch,
    subjects: [`${subjects.prefix}.dispatch.>`],
    retention: RetentionPolicy.Workqueue,
    storage: StorageType.File,
    discard: DiscardPolicy.Old,
    max_age: nanos(o.dispatchMaxAgeMs),
    duplicate_window: nanos(o.duplicateWindowMs),
    num_replicas: o.replicas,
  });
  // Ingestion jobs carry the uploaded file (up to the server's max_payload); one per document
  // version, deduplicated by Nats-Msg-Id, deleted once a worker has recorded the outcome.
  await ensureStream(jsm, {
    name: subjects.streams.ingest,
    subjects: [`${subjects.prefix}.ingest.>`],
    retention: RetentionPolicy.Workqueue,
    storage: StorageType.File,
    discard: DiscardPolicy.Old,
    max_age: nanos(o.ingestMaxAgeMs),
    duplicate_window: nanos(o.duplicateWindowMs),
    num_replicas: o.replicas,
  });
  await ensureStream(jsm, {
    name: subjects.streams.events,
    subjects: [`${subjects.prefix}.job.>`, `${subjects.prefix}.evt.>`],
    retention: RetentionPolicy.Limits,
    storage: StorageType.File,
    discard: DiscardPolicy.Old,
    max_age: nanos(o.eventsMaxAgeMs),
    max_bytes: o.eventsMaxBytes,
    duplicate_window: nanos(o.duplicateWindowMs),
    num_replicas: o.replicas,
  });
  const [leases, members, workers, state] = await Promise.all([
    ensureKvBucket(nc, subjects.buckets.leases, { ttlMs: o.leaseTtlMs, replicas: o.replicas }, jsm),
    ensureKvBucket(nc, subjects.buckets.members, { ttlMs: o.memberTtlMs, replicas: o.replicas }, jsm),
    ensureKvBucket(nc, subjects.buckets.workers, { ttlMs: o.workerTtlMs, replicas: o.replicas }, jsm),
    ensureKvBucket(nc, subjects.buckets.state, { ttlMs: 0, replicas: o.replicas }, jsm),
  ]);
  return { leases, members, workers, state };
}
