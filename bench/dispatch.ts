/**
 * dispatch: the text dispatch path end to end — HTTP (SSE) trigger at the gateway → tenant actor
 * → JetStream SF_DISPATCH → one of 4 agent workers → the provider fixture's LLM at zero latency
 * → tokens back through NATS and the gateway — at 1, 64 and 256 concurrent callers, against a
 * bare JetStream publish → consume → core reply in the same run (also 4 consumer processes).
 */
import { AckPolicy, jetstream, jetstreamManager, RetentionPolicy } from "@nats-io/jetstream";
import { headers } from "@nats-io/transport-node";
import { randomUUID } from "node:crypto";
import { openPlatformStore, openTenantStore, provisionTenantDatabase } from "../actors/index.ts";
import type { TenantStore } from "../actors/index.ts";
import { connectBus } from "../bus/index.ts";
import { startProviderFixture } from "../tests/fixtures/providers/provider_fixture.ts";
import { spawnGateway } from "../tests/helpers/gateway_process.ts";
import { NatsTestServer } from "../tests/helpers/nats_server.ts";
import { defaultPlatformSchema, spawnActorHost, spawnTs, testKeyring } from "../tests/helpers/processes.ts";
import type { TestProcess } from "../tests/helpers/processes.ts";
import { sharedServices } from "../tests/helpers/services.ts";
import { percentile } from "./harness.ts";
import type { BenchOptions, BenchResult } from "./harness.ts";

const P = 64;
const TENANTS = 8;
const WORKERS = 4;

interface Sample {
  firstTokenMs: number;
  doneMs: number;
}

/** Closed-loop callers for `durationMs`; returns per-request first-token and done latencies. */
async function run(
  concurrency: number,
  durationMs: number,
  warmupMs: number,
  op: (caller: number) => Promise<Sample>,
): Promise<{ samples: Sample[]; errors: number; seconds: number }> {
  const samples: Sample[] = [];
  let errors = 0;
  let recording = false;
  let running = true;
  const loops = Array.from({ length: concurrency }, async (_, caller) => {
    while (running) {
      try {
        const s = await op(caller);
        if (recording) samples.push(s);
      } catch {
        if (recording) errors += 1;
      }
    }
  });
  await new Promise((resolve) => setTimeout(resolve, warmupMs));
  recording = true;
  const t0 = performance.now();
  await new Promise((resolve) => setTimeout(resolve, durationMs));
  recording = false;
  const seconds = (performance.now() - t0) / 1000;
  running = false;
  await Promise.all(loops);
  return { samples, errors, seconds };
}

function stats(r: { samples: Sample[]; errors: number; seconds: number }) {
  const first = r.samples.map((s) => s.firstTokenMs).sort((a, b) => a - b);
  const done = r.samples.map((s) => s.doneMs).sort((a, b) => a - b);
  const round = (n: number) => Math.round(n * 100) / 100;
  return {
    req_per_s: round(r.samples.length / r.seconds),
    first_token_p50_ms: round(percentile(first, 50)),
    first_token_p99_ms: round(percentile(first, 99)),
    done_p50_ms: round(percentile(done, 50)),
    done_p99_ms: round(percentile(done, 99)),
    requests: r.samples.length,
    errors: r.errors,
  };
}

export async function run_(options: BenchOptions): Promise<BenchResult> {
  const durationMs = options.quick === true ? 1500 : 5000;
  const warmupMs = options.quick === true ? 500 : 1000;
  await using server = await NatsTestServer.start();
  await using fixture = await startProviderFixture();
  await using host = await spawnActorHost({ natsUrl: server.url, hostId: "bench", partitions: P });
  const workers: TestProcess[] = [];
  // Every child is disposed with the bench, whatever fails on the way.
  await using _cleanup = {
    [Symbol.asyncDispose]: async () => {
      for (const w of workers) await w.kill();
    },
  };
  for (let i = 0; i < WORKERS; i++) {
    workers.push(
      await spawnTs(`worker ${i}`, "agent-worker/main.ts", {
        readyLine: "agent worker ready",
        env: {
          NATS_URL: server.url,
          SF_PARTITIONS: String(P),
          SF_WORKER_ID: `w${i}`,
          SF_METRICS_PORT: "0",
          SF_PROVIDER_ENDPOINTS: JSON.stringify(fixture.endpoints()),
        },
      }),
    );
  }
  const gw = await spawnGateway({
    natsUrl: server.url,
    partitions: P,
    maxBodyBytes: 65_536,
    extraEnv: {
      SF_RATE_LIMIT_PER_MINUTE_KEY: "0",
      SF_RATE_LIMIT_PER_MINUTE_TENANT: "0",
    },
  });
  workers.push(gw.proc);
  const platform = await openPlatformStore({
    database: {
      kind: "postgres",
      url: sharedServices().databaseUrl,
      schema: defaultPlatformSchema(server.url),
    },
    keyring: testKeyring(),
  });
  const stores: TenantStore[] = [];
  const keys: string[] = [];
  try {
    for (let i = 0; i < TENANTS; i++) {
      const client = await platform.createClient({ slug: `bench-${server.port}-${i}`, name: `Bench ${i}` });
      const database = {
        kind: "postgres" as const,
        url: sharedServices().databaseUrl,
        schema: `bench_${server.port}_${i}`,
      };
      await provisionTenantDatabase({ tenantId: client.id, database, vector: "optional" });
      await platform.setTenantDatabase(client.id, database);
      const store = await openTenantStore({ tenantId: client.id, database, keyring: testKeyring() });
      stores.push(store);
      await store.createAgent({
        slug: "helper",
        name: "Helper",
        voiceSettings: { llm_provider: "groq", llm_model: "llama-3.3-70b-versatile" },
      });
      await store.setProviderKey("groq", fixture.keys.groq);
      keys.push((await platform.createApiKey({ clientId: client.id, name: "bench" })).secret);
    }

    // The product path: SSE trigger, first delta and the final event timed at the client.
    const conversations = new Map<number, string>();
    const sse = async (caller: number): Promise<Sample> => {
      const t0 = performance.now();
      const conversation = conversations.get(caller);
      const res = await fetch(`${gw.base}/api/embed/text/stream`, {
        method: "POST",
        headers: { "content-type": "application/json", "x-api-key": keys[caller % TENANTS] as string },
        body: JSON.stringify({
          agent_slug: "helper",
          user_id: `bench-user-${caller}`,
          message: `question from caller ${caller}`,
          ...(conversation === undefined ? {} : { conversation_id: conversation }),
        }),
      });
      if (res.status !== 200 || res.body === null) throw new Error(`HTTP ${res.status}`);
      let firstTokenMs = Number.NaN;
      let text = "";
      const decoder = new TextDecoder();
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        text += decoder.decode(chunk, { stream: true });
        if (Number.isNaN(firstTokenMs) && text.includes('"delta"')) firstTokenMs = performance.now() - t0;
      }
      const doneMs = performance.now() - t0;
      const last = text.trim().split("\n\n").at(-1) ?? "";
      const event = JSON.parse(last.slice("data: ".length)) as { done?: boolean; conversation_id?: string };
      if (event.done !== true) throw new Error("stream ended without done");
      if (conversation === undefined && event.conversation_id !== undefined) {
        conversations.set(caller, event.conversation_id);
      }
      return { firstTokenMs, doneMs };
    };

    // The bare path: JetStream work queue, 4 consumer processes, core reply.
    const nc = await connectBus({ servers: server.url, name: "bench-caller" });
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({
      name: "BENCH_JS",
      subjects: ["bench.js.>"],
      retention: RetentionPolicy.Workqueue,
    });
    await jsm.consumers.add("BENCH_JS", { durable_name: "bench-js", ack_policy: AckPolicy.Explicit });
    for (let i = 0; i < WORKERS; i++) {
      workers.push(
        await spawnTs(`js worker ${i}`, "bench/js_echo_worker.ts", {
          readyLine: "js echo worker ready",
          env: { NATS_URL: server.url },
        }),
      );
    }
    const js = jetstream(nc);
    const inbox = `bench.jsreply.${randomUUID()}`;
    const waiting = new Map<string, () => void>();
    nc.subscribe(`${inbox}.*`, {
      callback: (_e, m) => {
        const id = m.subject.slice(inbox.length + 1);
        waiting.get(id)?.();
        waiting.delete(id);
      },
    });
    const payload = new TextEncoder().encode(JSON.stringify({ message: "question", user: "bench" }));
    const bare = async (): Promise<Sample> => {
      const t0 = performance.now();
      const id = randomUUID();
      const replied = new Promise<void>((resolve) => waiting.set(id, resolve));
      const h = headers();
      h.set("Bench-Reply", `${inbox}.${id}`);
      await js.publish(`bench.js.${id}`, payload, { headers: h, msgID: id });
      await replied;
      const ms = performance.now() - t0;
      return { firstTokenMs: ms, doneMs: ms };
    };

    const table: BenchResult["table"] = [];
    const summary: BenchResult["summary"] = { workers: WORKERS, tenants: TENANTS, llm_latency_ms: 0 };
    for (const concurrency of [1, 64, 256]) {
      const product = stats(await run(concurrency, durationMs, warmupMs, sse));
      const base = stats(await run(concurrency, durationMs, warmupMs, bare));
      const ratio = Math.round((product.req_per_s / base.req_per_s) * 1000) / 1000;
      table.push({
        path: "http trigger → worker → reply (SSE)",
        concurrency,
        ...product,
        ratio_vs_bare: ratio,
      });
      table.push({ path: "bare jetstream publish → consume → reply", concurrency, ...base });
      for (const [k, v] of Object.entries(product)) summary[`dispatch_c${concurrency}_${k}`] = v;
      summary[`bare_c${concurrency}_req_per_s`] = base.req_per_s;
      summary[`bare_c${concurrency}_done_p50_ms`] = base.done_p50_ms;
      summary[`bare_c${concurrency}_done_p99_ms`] = base.done_p99_ms;
      summary[`ratio_dispatch_over_bare_c${concurrency}`] = ratio;
    }
    await nc.close();
    return { summary, table };
  } finally {
    for (const s of stores) await s.close();
    await platform.close();
    void host;
  }
}

export { run_ as run };
