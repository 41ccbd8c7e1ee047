/**
 * The gateway process: `node --import tsx gateway/main.ts`. Configured by environment
 * (gateway/config.ts); SIGTERM/SIGINT stop listening, let in-flight requests finish (up to
 * SF_GATEWAY_SHUTDOWN_GRACE_MS), drain NATS and exit.
 */
import { createLogger } from "../actors/index.ts";
import { connectBus, createSubjects, toWireError, watchBusStatus } from "../bus/index.ts";
import { ApiKeyVerifier } from "./auth/api_key_verifier.ts";
import { parseGatewayConfig } from "./config.ts";
import { createGatewayWithWs } from "./create_gateway.ts";
import { ListedOrigins } from "./cors_listed_origins.ts";
import { startUwsServer } from "./uws_server.ts";

const config = parseGatewayConfig();
const log = createLogger({ name: "gateway", level: config.logLevel });

async function main(): Promise<void> {
  const nc = await connectBus({ servers: config.natsUrl, name: `sf-gateway-${process.pid}` });
  void watchBusStatus(nc, (event) => log.info({ event }, "nats status"));
  const subjects = createSubjects({ prefix: config.subjectPrefix, partitions: config.partitions });
  const apiKeys = new ApiKeyVerifier({
    nc,
    subjects,
    cacheMs: config.auth.apiKeyCacheMs,
    timeoutMs: config.requestTimeoutMs,
  });
  const keyEvents = apiKeys.watch(log);
  const listedOrigins = new ListedOrigins({
    nc,
    subjects,
    cacheMs: config.corsCacheMs,
    timeoutMs: config.requestTimeoutMs,
  });
  const originEvents = listedOrigins.watch(log);
  const { app, ws } = createGatewayWithWs({ nc, config, log, apiKeys, listedOrigins });
  const server = await startUwsServer({ app, ws, log, host: config.host, port: config.port });
  log.info(
    {
      port: server.port,
      host: config.host,
      nats: config.natsUrl,
      routes: app.router.routes().length,
      adminToken: config.auth.adminToken !== undefined,
      jwt: config.auth.jwtSecret !== undefined,
    },
    "gateway ready",
  );

  let stopping = false;
  const shutdown = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    log.info({ signal, inFlight: server.inFlight, graceMs: config.shutdownGraceMs }, "gateway stopping");
    server
      .stop(config.shutdownGraceMs)
      .then(async (result) => {
        await keyEvents.drain();
        await originEvents.drain();
        await nc.drain();
        log.info({ abandoned: result.abandoned }, "gateway stopped");
        process.exit(0);
      })
      .catch((err: unknown) => {
        log.error({ err: toWireError(err) }, "shutdown failed");
        process.exit(1);
      });
  };
  process.on("SIGTERM", () => shutdown("SIGTERM"));
  process.on("SIGINT", () => shutdown("SIGINT"));
}

main().catch((err: unknown) => {
  log.fatal({ err: toWireError(err) }, "gateway failed to start");
  process.exit(1);
});
