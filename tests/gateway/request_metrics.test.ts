/**
 * The gateway's request metrics (recorded without prom-client's per-call label hashing) expose
 * exactly what prom-client's own Counter and Histogram expose for the same requests.
 */
import { Counter, Histogram, Registry } from "prom-client";
import { describe, expect, it } from "vitest";
import { RequestMetrics } from "../../gateway/index.ts";

const BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const NAMES = {
  requests: "sf_gateway_http_requests_total",
  requestsHelp: "HTTP requests answered, by route pattern, method and status",
  duration: "sf_gateway_http_request_duration_seconds",
  durationHelp: "Time from a request's complete arrival to its response, by route pattern and method",
};

/** The exposition's lines, label pairs sorted inside each line, lines sorted. */
function normalised(text: string): string[] {
  return text
    .split("\n")
    .filter((line) => line !== "")
    .map((line) => {
      const m = /^([^{ ]+)\{([^}]*)\} (.+)$/.exec(line);
      if (m === null) return line;
      const labels = (m[2] as string).split(",").sort().join(",");
      return `${m[1]}{${labels}} ${m[3]}`;
    })
    .sort();
}

describe("RequestMetrics", () => {
  it("exposes the same series as prom-client's Counter and Histogram for the same requests", async () => {
    const ours = new Registry();
    const metrics = new RequestMetrics(ours, NAMES, BUCKETS);
    const theirs = new Registry();
    const counter = new Counter({
      name: NAMES.requests,
      help: NAMES.requestsHelp,
      labelNames: ["route", "method", "status"],
      registers: [theirs],
    });
    const histogram = new Histogram({
      name: NAMES.duration,
      help: NAMES.durationHelp,
      labelNames: ["route", "method"],
      buckets: BUCKETS,
      registers: [theirs],
    });
    const requests: Array<[string, string, number, number]> = [
      ["/health", "GET", 200, 0.0001],
      ["/health", "GET", 200, 0.0005], // exactly on a bound: counted in that bucket (le)
      ["/api/v2/trigger-agent", "POST", 200, 0.0042],
      ["/api/v2/trigger-agent", "POST", 503, 12],
      ["/api/v2/trigger-agent", "POST", 200, 0.3],
      ["unmatched", "OTHER", 404, 0.00002],
    ];
    for (const [route, method, status, seconds] of requests) {
      metrics.record(route, method, status, seconds);
      counter.inc({ route, method, status: String(status) });
      histogram.observe({ route, method }, seconds);
    }
    expect(normalised(await ours.metrics())).toEqual(normalised(await theirs.metrics()));
    const health = (await metrics.requests.get()).values.find(
      (v) => v.labels["route"] === "/health" && v.labels["status"] === "200",
    );
    expect(health?.value).toBe(2);
  });

  it("starts empty again when the registry resets its metrics", async () => {
    const registry = new Registry();
    const metrics = new RequestMetrics(registry, NAMES, BUCKETS);
    metrics.record("/health", "GET", 200, 0.001);
    registry.resetMetrics();
    expect((await metrics.requests.get()).values).toEqual([]);
    expect((await metrics.requestDuration.get()).values).toEqual([]);
  });
});
