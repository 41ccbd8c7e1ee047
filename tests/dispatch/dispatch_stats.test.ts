/**
 * The dispatch window each actor host serves for the dashboard: events older than the window are
 * dropped, counts are kept by outcome and mode, and the windows of several hosts merge into
 * percentiles within the bucket width of the exact ones.
 */
import { describe, expect, it } from "vitest";
import { DispatchStats, mergeDispatchWindows, parseDispatchWindow } from "../../actors/index.ts";

function exactQuantile(values: number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.max(0, Math.ceil(q * sorted.length) - 1)] as number;
}

describe("dispatch stats", () => {
  it("dispatch stats - a window keeps the last windowMs of claims, withdrawals and failures", () => {
    let now = 0;
    const stats = new DispatchStats({ windowMs: 1000, now: () => now });
    stats.claimed("text", 5);
    stats.record("no_capacity");
    now = 600;
    stats.claimed("voice", 40);
    stats.claimed("text", 7);
    stats.record("failed");
    expect(stats.window("h1")).toMatchObject({
      host: "h1",
      claimed: { text: 2, voice: 1 },
      no_capacity: 1,
      failed: 1,
      latency_max_ms: 40,
    });
    now = 1300;
    const later = stats.window("h1");
    expect(later).toMatchObject({ claimed: { text: 1, voice: 1 }, no_capacity: 0, failed: 1 });
    expect(later.latency_buckets.reduce((n, [, c]) => n + c, 0)).toBe(2);
  });

  it("dispatch stats - the oldest events go first once the ring is full", () => {
    const stats = new DispatchStats({ maxEvents: 3, now: () => 0 });
    for (const ms of [1, 2, 3, 4, 5]) stats.claimed("text", ms);
    const w = stats.window("h1");
    expect(w.claimed.text).toBe(3);
    expect(mergeDispatchWindows([w]).p50_ms).toBeGreaterThan(3.4);
  });

  it("dispatch stats - merged windows of several hosts give percentiles within the bucket width", () => {
    const hosts = ["h1", "h2", "h3"].map(() => new DispatchStats({ now: () => 0 }));
    const all: number[] = [];
    let seed = 7;
    const random = (): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    hosts.forEach((h, i) => {
      for (let n = 0; n < 500 * (i + 1); n++) {
        const ms = 0.5 + random() * 20 * (i + 1);
        h.claimed("text", ms);
        all.push(ms);
      }
    });
    // Through the wire: what a host serves is read back and merged.
    const windows = hosts.map((h, i) => parseDispatchWindow(JSON.parse(JSON.stringify(h.window(`h${i}`)))));
    expect(windows.every((w) => w !== undefined)).toBe(true);
    const summary = mergeDispatchWindows(windows.filter((w) => w !== undefined));
    expect(summary).toMatchObject({ hosts: 3, claimed: all.length, window_ms: 60_000 });
    expect(summary.rate_per_s).toBeCloseTo(all.length / 60, 2);
    for (const [q, got] of [
      [0.5, summary.p50_ms],
      [0.99, summary.p99_ms],
    ] as const) {
      const exact = exactQuantile(all, q);
      expect(Math.abs((got ?? 0) - exact) / exact).toBeLessThan(0.15);
    }
    expect(summary.max_ms).toBeCloseTo(Math.max(...all), 1);
  });

  it("dispatch stats - no claim gives no percentile, and a malformed window is refused", () => {
    expect(mergeDispatchWindows([])).toMatchObject({ claimed: 0, p50_ms: null, p99_ms: null });
    expect(parseDispatchWindow({ host: "h1" })).toBeUndefined();
    const w = new DispatchStats().window("h1");
    expect(parseDispatchWindow({ ...w, latency_buckets: [[-1, 2]] })).toBeUndefined();
    expect(parseDispatchWindow({ ...w, latency_buckets: [[1e9, 2]] })).toBeUndefined();
    expect(parseDispatchWindow(w)).toEqual(w);
  });
});
