/**
 * The gateway's Prometheus metrics, on a registry of its own. Label sets stay bounded: the
 * route label is the route pattern (or `unmatched`), the method one of a fixed list.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";
import { isHttpMethod } from "./http_types.ts";
import { RequestMetrics } from "./request_metrics.ts";

export interface GatewayMetrics {
  readonly registry: Registry;
  /** `sf_gateway_http_requests_total` and `sf_gateway_http_request_duration_seconds`. */
  readonly http: RequestMetrics;
  readonly aborted: Counter;
  readonly wsConnections: Gauge;
  readonly natsRtt: Histogram;
}

/** The route label for requests no route matched. */
export const UNMATCHED_ROUTE = "unmatched";

export function methodLabel(method: string): string {
  return isHttpMethod(method) ? method : "OTHER";
}

export function createGatewayMetrics(registry = new Registry()): GatewayMetrics {
  collectDefaultMetrics({ register: registry, prefix: "sf_" });
  return {
    registry,
    http: new RequestMetrics(
      registry,
      {
        requests: "sf_gateway_http_requests_total",
        requestsHelp: "HTTP requests answered, by route pattern, method and status",
        duration: "sf_gateway_http_request_duration_seconds",
        durationHelp: "Time from a request's complete arrival to its response, by route pattern and method",
      },
      [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    ),
    aborted: new Counter({
      name: "sf_gateway_http_requests_aborted_total",
      help: "Requests whose client went away before the response was written",
      registers: [registry],
    }),
    wsConnections: new Gauge({
      name: "sf_gateway_ws_connections",
      help: "Open WebSocket connections",
      registers: [registry],
    }),
    natsRtt: new Histogram({
      name: "sf_gateway_nats_rtt_seconds",
      help: "Round-trip time to the NATS server, measured by health checks",
      buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers: [registry],
    }),
  };
}
