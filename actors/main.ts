/**
 * The actor host process: `node --import tsx actors/main.ts`. Configured by environment
 * (actors/config.ts); SIGTERM/SIGINT hand every partition over before exiting.
 */
import {
  connectBus,
  createSubjects,
  provisionBus,
  retryWhileUnavailable,
  toWireError,
  watchBusStatus,
} from "../bus/index.ts";
import { parseActorHostConfig } from "./config.ts";
import { ActorHost } from "./runtime/actor_host.ts";
import { createLogger } from "./runtime/logger.ts";
import { createHostMetrics, serveMetrics } from "./runtime/metrics.ts";
import { onShutdown } from "./runtime/process_env.ts";
import { PlatformService } from "./platform/platform_service.ts";
import { openPlatformStore, PgliteInstances, TenantStoreCache } from "./store/index.ts";
import { watchCredentialEvents } from "./tenant/credential_events.ts";
import { tenantActorFactory } from "./tenant/tenant_actor.ts";
import { Dispatcher } from "./dispatch/dispatcher.ts";
import { DispatchStats, serveDispatchStats } from "./dispatch/dispatch_stats.ts";
import { LivekitCredentialsCache } from "./voice/livekit_credentials.ts";
import { ClientSettingsCache } from "./tenant/client_settings.ts";
import { ingestPublisher } from "./dispatch/ingest_publisher.ts";

const config = parseActorHostConfig();
const log = createLogger({ name: "actor-host", level: config.logLevel });

function startupRetryLog(what: string, attempt: number, err: unknown): void {
  log.warn({ attempt, err: toWireError(err) }, `${what}: NATS did not answer; trying again`);
}

async function main(): Promise<void> {
  const nc = await connectBus({ servers: config.natsUrl, name: `sf-actor-host-${config.hostId}` });
  void watchBusStatus(nc, (event) => log.info({ event }, "nats status"));
  const subjects = createSubjects({ prefix: config.subjectPrefix, partitions: config.partitions });
  // Streams and buckets are made while the cluster may still be electing their leaders.
  const buckets = await retryWhileUnavailable(
    "provisioning streams and buckets",
    () => provisionBus(nc, subjects, { leaseTtlMs: config.leaseTtlMs, replicas: config.streamReplicas }),
    { onRetry: startupRetryLog },
  );
  const pglite = new PgliteInstances();
  const platform = await openPlatformStore({
    database: config.platformDatabase,
    keyring: config.keyring,
    pglite,
  });
  const stores = new TenantStoreCache({
    keyring: config.keyring,
    loadConfig: (tenant) => platform.getTenantDatabase(tenant),
    connection: {
      connectTimeoutMs: config.tenantDbConnectTimeoutMs,
      requestTimeoutMs: config.tenantDbRequestTimeoutMs,
    },
    pglite,
    onCloseError: (tenant, err) =>
      log.warn({ tenant, err: toWireError(err) }, "closing a tenant store failed"),
  });
  const livekit = new LivekitCredentialsCache((tenant) => platform.getLivekitCredentials(tenant));
  const settings = new ClientSettingsCache(platform);
  const credentialEvents = watchCredentialEvents({
    nc,
    subjects,
    log,
    onChange: (tenant) => {
      livekit.drop(tenant);
      settings.drop(tenant);
      return stores.drop(tenant);
    },
  });
  const platformService = new PlatformService({ nc, subjects, store: platform, hostId: config.hostId, log });
  platformService.start();
  const dispatchStats = new DispatchStats();
  const dispatcher = new Dispatcher({
    nc,
    subjects,
    log,
    claimTimeoutMs: config.claimTimeoutMs,
    stats: dispatchStats,
  });
  dispatcher.start();
  // The last minute of this host's dispatch, for the console's dashboard (dispatch_stats.ts).
  const dispatchService = await serveDispatchStats({
    nc,
    subjects,
    hostId: config.hostId,
    stats: dispatchStats,
    log,
  });
  const metrics = createHostMetrics();
  const metricsServer = await serveMetrics(metrics.registry, config.metricsPort, config.metricsHost);
  const host = await ActorHost.create({
    nc,
    subjects,
    hostId: config.hostId,
    buckets,
    factory: tenantActorFactory({
      maxConcurrentJobs: config.tenantMaxJobs,
      stores,
      audit: (entry) => platform.appendAudit(entry),
      dispatcher,
      livekitCredentials: (tenant) => livekit.get(tenant),
      settings,
      publishIngest: ingestPublisher(nc, subjects),
    }),
    log,
    metrics,
    mailboxCapacity: config.mailboxCapacity,
    idlePassivateMs: config.idlePassivateMs,
    balanceIntervalMs: config.balanceIntervalMs,
  });
  await host.start();
  log.info(
    { host: config.hostId, metricsPort: metricsServer.port, nats: config.natsUrl },
    "actor host ready",
  );

  onShutdown(log, [
    () => host.stop(),
    () => dispatchService.stop(),
    () => platformService.stop(),
    () => dispatcher.stop(),
    () => credentialEvents.drain(),
    () => nc.drain(),
    () => stores.close(),
    () => platform.close(),
    () => metricsServer.close(),
  ]);
}

main().catch((err: unknown) => {
  log.fatal({ err: toWireError(err) }, "actor host failed to start");
  process.exit(1);
});
