/**
 * NATS connections: one factory so every process connects the same way (named, reconnecting
 * forever, waiting for the first connect), and a typed status stream instead of log lines.
 */
import { connect } from "@nats-io/transport-node";
import type { NatsConnection } from "@nats-io/transport-node";

export interface BusConnectionOptions {
  /** `nats://host:port` URL(s). */
  servers: string | string[];
  /** Connection name shown in the server's monitoring (`connz`). */
  name: string;
  /** Wait between reconnect attempts. Default 250 ms. */
  reconnectTimeWaitMs?: number;
  /** Client ping interval; a dead server is noticed after 2 missed pings. Default 5000 ms. */
  pingIntervalMs?: number;
  /** Give up on the first connect after this long. Default 10000 ms. */
  connectTimeoutMs?: number;
  /**
   * Keep retrying the first connect until a server answers (services started before NATS).
   * Default true; one-shot tools (the CLI) pass false to fail at once when NATS is unreachable.
   */
  waitOnFirstConnect?: boolean;
}

export type BusStatusEvent =
  | { type: "disconnected"; server: string }
  | { type: "reconnecting" }
  | { type: "reconnected"; server: string }
  | { type: "error"; message: string }
  | { type: "closed" };

export async function connectBus(options: BusConnectionOptions): Promise<NatsConnection> {
  const servers = Array.isArray(options.servers) ? options.servers : options.servers.split(",");
  return connect({
    servers,
    name: options.name,
    maxReconnectAttempts: -1,
    reconnectTimeWait: options.reconnectTimeWaitMs ?? 250,
    reconnectJitter: 100,
    pingInterval: options.pingIntervalMs ?? 5000,
    maxPingOut: 2,
    waitOnFirstConnect: options.waitOnFirstConnect ?? true,
    timeout: options.connectTimeoutMs ?? 10_000,
    // nats.js otherwise builds two Error objects (stack captures) for every request up front,
    // the largest single CPU cost of a request/reply on the calling side; our request helper
    // reports failures with its own coded errors, so those traces add nothing.
    noAsyncTraces: true,
  });
}

/**
 * Calls `onEvent` with each connection status change until the connection closes.
 * Returns a promise that settles when the connection is closed.
 */
export async function watchBusStatus(
  nc: NatsConnection,
  onEvent: (event: BusStatusEvent) => void,
): Promise<void> {
  const closed = nc.closed().then((err) => {
    if (err) onEvent({ type: "error", message: err.message });
    onEvent({ type: "closed" });
  });
  for await (const s of nc.status()) {
    switch (s.type) {
      case "disconnect":
        onEvent({ type: "disconnected", server: s.server });
        break;
      case "reconnecting":
        onEvent({ type: "reconnecting" });
        break;
      case "reconnect":
        onEvent({ type: "reconnected", server: s.server });
        break;
      case "error":
        onEvent({ type: "error", message: s.error.message });
        break;
      default:
        break;
    }
  }
  await closed;
}
