/** Spawns the real gateway process (gateway/main.ts) and reads its bound port from the ready line. */
import { spawnTs } from "./processes.ts";
import type { TestProcess } from "./processes.ts";

export interface GatewayProcess {
  proc: TestProcess;
  port: number;
  base: string;
}

export async function spawnGateway(env: {
  natsUrl: string;
  prefix?: string;
  partitions?: number;
  maxBodyBytes?: number;
  corsOrigins?: string;
  shutdownGraceMs?: number;
  /** Extra environment (auth secrets, cache lifetimes). */
  extraEnv?: Record<string, string>;
  /** Node options NODE_OPTIONS may not carry (--cpu-prof). */
  nodeArgs?: string[];
}): Promise<GatewayProcess> {
  const proc = await spawnTs("gateway", "gateway/main.ts", {
    readyLine: "gateway ready",
    ...(env.nodeArgs === undefined ? {} : { nodeArgs: env.nodeArgs }),
    env: {
      NATS_URL: env.natsUrl,
      SF_SUBJECT_PREFIX: env.prefix ?? "sf",
      SF_PARTITIONS: String(env.partitions ?? 64),
      SF_GATEWAY_PORT: "0",
      SF_GATEWAY_HOST: "127.0.0.1",
      SF_GATEWAY_MAX_BODY_BYTES: String(env.maxBodyBytes ?? 4096),
      SF_GATEWAY_CORS_ORIGINS: env.corsOrigins ?? "",
      SF_GATEWAY_SHUTDOWN_GRACE_MS: String(env.shutdownGraceMs ?? 5000),
      SF_LOG_LEVEL: "info",
      ...env.extraEnv,
    },
  });
  const line = await proc.waitForLine("gateway ready");
  const port = (JSON.parse(line) as { port?: unknown }).port;
  if (typeof port !== "number" || !Number.isInteger(port) || port <= 0) {
    await proc.kill();
    throw new Error(`gateway: no port in its ready line ${line}`);
  }
  return { proc, port, base: `http://127.0.0.1:${port}` };
}
