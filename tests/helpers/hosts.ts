/** Asking actor hosts what they own, through their NATS services endpoint. */
import type { NatsConnection } from "@nats-io/transport-node";
import { decodeBody } from "../../bus/index.ts";
import type { Subjects } from "../../bus/index.ts";
import { waitFor } from "./deadline.ts";

export interface HostDescription {
  host: string;
  partitions: number[];
  actors: number;
  stopping: boolean;
}

export async function describeHost(
  nc: NatsConnection,
  subjects: Subjects,
  hostId: string,
): Promise<HostDescription> {
  const msg = await nc.request(subjects.hostControl(hostId, "partitions"), undefined, { timeout: 2000 });
  return decodeBody(msg.data) as HostDescription;
}

/** Waits until the given hosts own every partition between them, each about P/N. */
export async function waitBalanced(
  nc: NatsConnection,
  subjects: Subjects,
  hostIds: string[],
  timeoutMs = 20_000,
): Promise<Map<string, number[]>> {
  const target = Math.ceil(subjects.partitions / hostIds.length);
  return waitFor(
    `hosts ${hostIds.join(", ")} to own ${subjects.partitions} partitions, about ${target} each`,
    async () => {
      const owned = new Map<string, number[]>();
      for (const id of hostIds) owned.set(id, (await describeHost(nc, subjects, id)).partitions);
      const all = [...owned.values()].flat();
      const distinct = new Set(all);
      const balanced = [...owned.values()].every(
        (p) => p.length <= target && p.length >= target - hostIds.length,
      );
      return all.length === subjects.partitions && distinct.size === subjects.partitions && balanced
        ? owned
        : undefined;
    },
    { timeoutMs, intervalMs: 100 },
  );
}
