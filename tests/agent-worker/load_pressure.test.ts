// Voice admission's inputs: the worker's load (event loop delay, CPU) with its hysteresis, read from
// a scripted probe and from this very process; and the capacity record in `sf_workers`, which
// refuses voice past its slots, while saturated and over memory, and says so.
import { connect } from "@nats-io/transport-node";
import { describe, expect, it } from "vitest";
import { createSubjects, decodeBody, provisionBus } from "../../bus/index.ts";
import { Capacity, LoadPressure, processLoadProbe } from "../../agent-worker/index.ts";
import type { LoadProbe, LoadReading, WorkerCapacity } from "../../agent-worker/index.ts";
import { waitFor } from "../helpers/deadline.ts";
import { NatsTestServer } from "../helpers/nats_server.ts";

/** A probe that returns the given readings in turn. */
function scripted(readings: Array<Partial<LoadReading>>): LoadProbe {
  let i = 0;
  return {
    read: () => {
      const r = readings[Math.min(i++, readings.length - 1)] ?? {};
      return { eventLoopDelayMs: 0, eventLoopUtilization: 0, cpuRatio: 0, ...r };
    },
    close: () => undefined,
  };
}

describe("worker load - saturation with hysteresis", () => {
  it("pressure - a window over the delay or CPU limit saturates; only a window under both recovery marks recovers", () => {
    const pressure = new LoadPressure({
      maxEventLoopDelayMs: 100,
      maxCpuRatio: 0.8,
      recoverRatio: 0.5,
      probe: scripted([
        { eventLoopDelayMs: 20, cpuRatio: 0.3 }, // calm
        { eventLoopDelayMs: 150, cpuRatio: 0.3 }, // loop lags
        { eventLoopDelayMs: 80, cpuRatio: 0.3 }, // under the limit, not under the recovery mark
        { eventLoopDelayMs: 40, cpuRatio: 0.45 }, // delay calm, CPU not (0.45 > 0.4)
        { eventLoopDelayMs: 40, cpuRatio: 0.3 }, // both calm: recovered
        { eventLoopDelayMs: 10, cpuRatio: 0.95 }, // CPU over
      ]),
    });
    const states = Array.from({ length: 6 }, () => {
      const { saturated, causes } = pressure.sample();
      return { saturated, causes };
    });
    expect(states).toEqual([
      { saturated: false, causes: [] },
      { saturated: true, causes: ["event_loop"] },
      { saturated: true, causes: ["event_loop"] },
      { saturated: true, causes: ["event_loop"] },
      { saturated: false, causes: [] },
      { saturated: true, causes: ["cpu"] },
    ]);
    expect(pressure.state.reading.cpuRatio).toBe(0.95);
  });

  it("pressure - limits outside their range are refused", () => {
    const probe = scripted([{}]);
    expect(() => new LoadPressure({ maxEventLoopDelayMs: 100, maxCpuRatio: 0, probe })).toThrow(RangeError);
    expect(() => new LoadPressure({ maxEventLoopDelayMs: 100, maxCpuRatio: 1.5, probe })).toThrow(RangeError);
    expect(() => new LoadPressure({ maxEventLoopDelayMs: 0, maxCpuRatio: 0.5, probe })).toThrow(RangeError);
  });

  it("pressure - this process's event loop, blocked, is read as saturated; calm again, it recovers", async () => {
    const pressure = new LoadPressure({
      maxEventLoopDelayMs: 100,
      maxCpuRatio: 1,
      probe: processLoadProbe(10),
    });
    try {
      pressure.sample();
      // What an overloaded worker does to its loop: 400 ms without a turn.
      const until = performance.now() + 400;
      while (performance.now() < until) {
        // busy
      }
      // The delay is recorded when the monitor's timer next fires.
      const saturated = await waitFor("the blocked loop to be seen", () => {
        const state = pressure.sample();
        return state.saturated ? state : false;
      });
      expect(saturated.causes).toContain("event_loop");
      expect(saturated.reading.eventLoopDelayMs).toBeGreaterThan(100);
      expect(saturated.reading.eventLoopUtilization).toBeGreaterThan(0);
      await waitFor("the calm loop to recover", () => !pressure.sample().saturated, { intervalMs: 100 });
    } finally {
      pressure.stop();
    }
  });
});

describe("worker capacity - voice admission and the sf_workers record", () => {
  it("capacity - voice is refused past its slots and while saturated; memory refuses every queue; the record says so", async () => {
    await using server = await NatsTestServer.start();
    const nc = await connect({ servers: server.url });
    const subjects = createSubjects({ partitions: 4 });
    const { workers } = await provisionBus(nc, subjects);
    const load = { delay: 10 };
    const pressure = new LoadPressure({
      maxEventLoopDelayMs: 100,
      maxCpuRatio: 0.9,
      recoverRatio: 0.5,
      probe: {
        read: () => ({ eventLoopDelayMs: load.delay, eventLoopUtilization: 0.5, cpuRatio: 0.2 }),
        close: () => undefined,
      },
    });
    let voiceRunning = 0;
    const capacity = (maxRssMb: number): Capacity =>
      new Capacity({
        kv: workers,
        workerId: "w-admission",
        slots: 8,
        inFlight: () => 1,
        maxRssMb,
        minFreeMemoryMb: 0,
        voiceSlots: 2,
        voiceInFlight: () => voiceRunning,
        pressure,
      });
    const roomy = capacity(1_000_000);
    pressure.sample();
    expect(roomy.refusal("voice")).toBeUndefined();
    voiceRunning = 2;
    expect(roomy.refusal("voice")).toBe("voice_slots");
    expect(roomy.refusal("dispatch")).toBeUndefined();
    voiceRunning = 1;
    load.delay = 250;
    pressure.sample();
    expect(roomy.refusal("voice")).toBe("saturated");
    expect(roomy.admitVoice()).toBe(false);
    // Text is not held back by load.
    expect(roomy.admit()).toBe(true);

    await roomy.publish();
    const entry = await workers.get("w-admission");
    const record = decodeBody(entry?.value ?? new Uint8Array()) as WorkerCapacity;
    expect(record).toMatchObject({
      worker: "w-admission",
      slots: 8,
      in_flight: 1,
      free_slots: 7,
      admitting: true,
      voice_slots: 2,
      voice_in_flight: 1,
      free_voice_slots: 1,
      admitting_voice: false,
      saturated: true,
      saturated_by: ["event_loop"],
      event_loop_delay_ms: 250,
      event_loop_utilization: 0.5,
      cpu_ratio: 0.2,
    });

    load.delay = 20;
    pressure.sample();
    expect(roomy.refusal("voice")).toBeUndefined();

    // A worker over its memory limit (1 MB of RSS) refuses everything, voice included.
    const full = capacity(1);
    expect(full.refusal("dispatch")).toBe("memory");
    expect(full.refusal("ingest")).toBe("memory");
    expect(full.refusal("voice")).toBe("memory");
    expect(full.snapshot()).toMatchObject({ admitting: false, admitting_voice: false });

    // No voice slots: a worker that runs no voice.
    const textOnly = new Capacity({
      kv: workers,
      workerId: "w-text",
      slots: 8,
      inFlight: () => 0,
      maxRssMb: 1_000_000,
      minFreeMemoryMb: 0,
    });
    expect(textOnly.refusal("voice")).toBe("voice_slots");
    expect(textOnly.snapshot()).toMatchObject({ voice_slots: 0, admitting_voice: false, saturated: false });
    await nc.close();
  });
});
