/**
 * Every subject, stream and bucket name the platform uses, built in one place.
 * The prefix (default `sf`) lets several deployments share one NATS account.
 */
import { BusErrorCodes, SfError } from "./errors.ts";
import { partitionOf } from "./partition.ts";

export interface SubjectsOptions {
  /** Subject prefix; lower-case letters, digits and `_`. Default `sf`. */
  prefix?: string;
  /** Number of actor partitions (P). Default 256. */
  partitions?: number;
}

export type DispatchMode = "text" | "voice";

export interface Subjects {
  readonly prefix: string;
  readonly partitions: number;
  /** Partition of a tenant: FNV-1a 32 of its id mod P. */
  partitionOf(tenant: string): number;
  /** Request/reply to the owner of `tenant`: `<prefix>.t.<partition>.<tenant>.<op>`. */
  tenantOp(tenant: string, op: string): string;
  /** What a host subscribes to for one partition: `<prefix>.t.<partition>.*.*`. */
  partitionWildcard(partition: number): string;
  /**
   * Queue group of one owner's subscription to a partition: `<prefix>-p<partition>-e<epoch>`, the
   * epoch being the owner's lease revision. Each ownership is a group of its own, so a new owner
   * gets every message even while a frozen former owner's connection (and its subscription) lives
   * on at the server; the former owner drops its copies, its lease having lapsed.
   */
  partitionQueue(partition: number, epoch: number): string;
  /** Platform-wide request/reply (any host answers): `<prefix>.platform.<op>`. */
  platformOp(op: string): string;
  /** Dispatch jobs: `<prefix>.dispatch.<tenant>.<mode>`. */
  dispatch(tenant: string, mode: DispatchMode): string;
  /** Document ingestion jobs (stream SF_INGEST): `<prefix>.ingest.<tenant>`. */
  ingest(tenant: string): string;
  /** Job lifecycle events: `<prefix>.job.<tenant>.<job>.<event>`. */
  jobEvent(tenant: string, jobId: string, event: string): string;
  /** Streamed reply tokens: `<prefix>.chat.<session>.out`. */
  chatOut(session: string): string;
  /**
   * Streamed reply tokens of a session that only one gateway follows, sent to that gateway's chat
   * inbox: `<prefix>.chat.<inbox>.<session>.out` (one token more than `chatOut`, so the two never meet).
   */
  chatVia(inbox: string, session: string): string;
  /** What a gateway subscribes to, once, for every session it routes to its inbox: `<prefix>.chat.<inbox>.*.out`. */
  chatInbox(inbox: string): string;
  /** Tenant credential/config change events: `<prefix>.evt.client.<tenant>.<what>`. */
  clientEvent(tenant: string, what: string): string;
  /** Per-host control subjects (diagnostics, test hooks). */
  hostControl(hostId: string, op: string): string;
  /** Request/reply to any agent worker (queue group `<prefix>-worker-ops`): `<prefix>.workers.<op>`. */
  workerOp(op: string): string;
  /** Request/reply to one agent worker (diagnostics, its stats): `<prefix>.worker.<id>.<op>`. */
  workerControl(workerId: string, op: string): string;
  readonly streams: { readonly dispatch: string; readonly events: string; readonly ingest: string };
  readonly buckets: {
    readonly leases: string;
    readonly members: string;
    readonly workers: string;
    readonly state: string;
  };
}

const PREFIX_RE = /^[a-z][a-z0-9_]{0,31}$/;
/** A subject token: no dots, wildcards or whitespace; bounded length. */
const TOKEN_RE = /^[A-Za-z0-9_-]{1,128}$/;

export function assertToken(kind: string, value: unknown): string {
  if (typeof value !== "string" || !TOKEN_RE.test(value)) {
    throw new SfError(
      kind === "tenant" ? BusErrorCodes.BAD_TENANT : BusErrorCodes.BAD_MESSAGE,
      `${kind} must be 1-128 characters of A-Z, a-z, 0-9, '_' or '-'`,
      { details: { field: kind } },
    );
  }
  return value;
}

export function isToken(value: unknown): value is string {
  return typeof value === "string" && TOKEN_RE.test(value);
}

export function createSubjects(options: SubjectsOptions = {}): Subjects {
  const prefix = options.prefix ?? "sf";
  if (!PREFIX_RE.test(prefix)) {
    throw new SfError(BusErrorCodes.BAD_MESSAGE, `subject prefix ${JSON.stringify(prefix)} is not valid`);
  }
  const partitions = options.partitions ?? 256;
  if (!Number.isInteger(partitions) || partitions < 1 || partitions > 65_536) {
    throw new SfError(BusErrorCodes.BAD_MESSAGE, `partitions must be an integer in 1..65536`);
  }
  const upper = prefix.toUpperCase();
  const part = (tenant: string): number => partitionOf(assertToken("tenant", tenant), partitions);
  return Object.freeze({
    prefix,
    partitions,
    partitionOf: part,
    tenantOp: (tenant: string, op: string) =>
      `${prefix}.t.${part(tenant)}.${tenant}.${assertToken("op", op)}`,
    partitionWildcard: (partition: number) => `${prefix}.t.${partition}.*.*`,
    partitionQueue: (partition: number, epoch: number) => `${prefix}-p${partition}-e${epoch}`,
    platformOp: (op: string) => `${prefix}.platform.${assertToken("op", op)}`,
    dispatch: (tenant: string, mode: DispatchMode) =>
      `${prefix}.dispatch.${assertToken("tenant", tenant)}.${mode}`,
    ingest: (tenant: string) => `${prefix}.ingest.${assertToken("tenant", tenant)}`,
    jobEvent: (tenant: string, jobId: string, event: string) =>
      `${prefix}.job.${assertToken("tenant", tenant)}.${assertToken("job", jobId)}.${assertToken("event", event)}`,
    chatOut: (session: string) => `${prefix}.chat.${assertToken("session", session)}.out`,
    chatVia: (inbox: string, session: string) =>
      `${prefix}.chat.${assertToken("inbox", inbox)}.${assertToken("session", session)}.out`,
    chatInbox: (inbox: string) => `${prefix}.chat.${assertToken("inbox", inbox)}.*.out`,
    clientEvent: (tenant: string, what: string) =>
      `${prefix}.evt.client.${assertToken("tenant", tenant)}.${assertToken("event", what)}`,
    hostControl: (hostId: string, op: string) => `${prefix}.host.${assertToken("host", hostId)}.${op}`,
    workerOp: (op: string) => `${prefix}.workers.${assertToken("op", op)}`,
    workerControl: (workerId: string, op: string) =>
      `${prefix}.worker.${assertToken("worker", workerId)}.${assertToken("op", op)}`,
    streams: Object.freeze({
      dispatch: `${upper}_DISPATCH`,
      events: `${upper}_EVENTS`,
      ingest: `${upper}_INGEST`,
    }),
    buckets: Object.freeze({
      leases: `${prefix}_leases`,
      members: `${prefix}_members`,
      workers: `${prefix}_workers`,
      state: `${prefix}_state`,
    }),
  });
}
