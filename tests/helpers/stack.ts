/** Pieces of the running platform that many integration suites start the same way. */
import { openPlatformStore } from "../../actors/index.ts";
import type { PlatformStore } from "../../actors/index.ts";
import { defaultPlatformSchema, spawnTs, testKeyring } from "./processes.ts";
import type { TestProcess } from "./processes.ts";
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
