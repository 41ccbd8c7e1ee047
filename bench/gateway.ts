/**
 * gateway: the HTTP front door under load, uWebSockets.js against node:http, in the same run.
 *
 * Load: wrk (installed with apt-get when missing and run as root), a separate C process, 64
 * keep-alive connections on 2 threads, a warm-up run and then a measured run per case.
 *
 * Servers: the real gateway process (gateway/main.ts, uWS) and bench/gateway_node_http.ts, which
 * builds the very same app (config, API key verifier, `createGatewayWithWs`) and serves it with
 * node:http. Both run side by side on the same NATS with the same environment, rate limits off.
 *
 * Cases:
 * 1. `GET /health` on each.
 * 2. The gateway path: an authenticated `POST /api/v2/trigger-agent` (text) whose tenant actor
 *    op `trigger` is answered at once by bench/gateway_backend.ts, which then publishes the
 *    final chat frame (it also answers the API key check and the client name, which the gateway
 *    caches). Compared with bare NATS in the bench process at the same concurrency and with the
 *    payload sizes of those hops: a request/reply, and a request/reply plus one published frame;
 *    and with the gateway's own `runTextTurn` called over NATS without HTTP.
 * 3. The dispatch path: the same request through a real actor host (tenant on the shared
 *    PostgreSQL, confirmed dispatch through JetStream SF_DISPATCH) and bench/instant_worker.ts,
 *    the worker's real `JobConsumer` with a handler that publishes the final frame at once.
 *
 * CPU per request of each server process is read from /proc, so the comparison holds on a busy
 * machine too.
 */
import { execFile, spawn } from "node:child_process";
import { randomBytes, randomUUID } from "node:crypto";
import { setMaxListeners } from "node:events";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { cpus, homedir, tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import type { NatsConnection } from "@nats-io/transport-node";
import {
  createLogger,
  createPostgresDatabase,
  openTenantStore,
  provisionTenantDatabase,
  quoteIdent,
} from "../actors/index.ts";
import type { PlatformStore, TenantDatabaseConfig } from "../actors/index.ts";
import { connectBus, createSubjects, decodeBody } from "../bus/index.ts";
import {
  ChatInbox,
  createGatewayWithWs,
  parseGatewayConfig,
  pickSession,
  runTextTurn,
} from "../gateway/index.ts";
import type { RawRequest } from "../gateway/index.ts";
import { spawnGateway } from "../tests/helpers/gateway_process.ts";
import { NatsTestServer } from "../tests/helpers/nats_server.ts";
import { defaultPlatformSchema, spawnActorHost, spawnTs, testKeyring } from "../tests/helpers/processes.ts";
import type { TestProcess } from "../tests/helpers/processes.ts";
import { sharedServices } from "../tests/helpers/services.ts";
import { openTestPlatform } from "../tests/helpers/stack.ts";
import { bareTurnCaller } from "./bare_turn.ts";
import { closedLoop, cpuPerOp, cpuProfileArgs } from "./harness.ts";
import type { BenchOptions, BenchResult, LoopStats } from "./harness.ts";

const run_ = promisify(execFile);

const P = 64;
const CONNECTIONS = 64;
/** One wrk thread per core the servers do not need (1 on a 2-core machine), at most 4. */
const WRK_THREADS = Math.max(1, Math.min(4, cpus().length - 1));
/** Conversations per wrk thread (4x its connections, so a connection rarely waits on another's). */
const CONVERSATIONS_PER_THREAD = 4 * Math.ceil(CONNECTIONS / WRK_THREADS);
const AGENT = "helper";
const USER = "bench-user";
const MESSAGE = "Hello there, what can you do for me today?";
const REPLY_TEXT = "Hello! I am the bench's instant responder; the worker was not involved.";
const TRIGGER_PATH = "/api/v2/trigger-agent";
const TARGET_HEALTH_RATIO = 2;
const TARGET_TRIGGER_OVER_BARE = 1.5;

const round = (n: number, digits = 3): number => Math.round(n * 10 ** digits) / 10 ** digits;

// ---- wrk -------------------------------------------------------------------------------------

/** wrk on PATH; installed from Debian (once, under the same lock as deploy/services.sh) when root. */
async function ensureWrk(): Promise<string> {
  const which = async (): Promise<string | undefined> => {
    try {
      const { stdout } = await run_("sh", ["-c", "command -v wrk"]);
      const path = stdout.trim();
      return path === "" ? undefined : path;
    } catch {
      return undefined;
    }
  };
  const found = await which();
  if (found !== undefined) return found;
  if (process.getuid?.() !== 0) {
    throw new Error("the gateway bench needs wrk: install it with `sudo apt-get install -y wrk`");
  }
  const cacheRoot = process.env["SF_CACHE_ROOT"] ?? join(homedir(), ".cache", "sidekick-forge");
  const install = "apt-get install -y -q --no-install-recommends wrk";
  console.log("gateway bench: installing wrk with apt-get");
  await run_("sh", ["-c", `mkdir -p '${cacheRoot}'`]);
  await run_(
    "flock",
    [
      join(cacheRoot, "apt.lock"),
      "sh",
      "-c",
      `command -v wrk >/dev/null || ${install} || { apt-get update -q && ${install}; }`,
    ],
    { env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" }, maxBuffer: 16 * 1024 * 1024 },
  );
  const installed = await which();
  if (installed === undefined) throw new Error("wrk is still missing after apt-get install wrk");
  return installed;
}

/** Prints the run's figures as one JSON line (wrk's latencies are in microseconds). */
const WRK_DONE = `
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests":%d,"duration_us":%d,"bytes":%d,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"mean_us":%.1f,"max_us":%d}\\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.mean, latency.max))
end
`;

/**
 * The trigger request: each thread cycles through its own conversations (`bench-<thread>-<i>`),
 * all requests prepared once in `init`.
 */
function triggerScript(apiKey: string): string {
  const lua = (s: string): string => JSON.stringify(s);
  return `
local next_thread = 0
function setup(thread)
  thread:set("tid", next_thread)
  next_thread = next_thread + 1
end
local reqs = {}
local n = 0
function init(args)
  local pool = tonumber(args[1]) or 1
  local headers = { ["Content-Type"] = "application/json", ["Authorization"] = ${lua(`Bearer ${apiKey}`)} }
  for i = 1, pool do
    local body = string.format('{"agent_slug":"${AGENT}","user_id":"${USER}","message":"${MESSAGE}","conversation_id":"bench-%d-%d"}', tid, i)
    reqs[i] = wrk.format("POST", ${lua(TRIGGER_PATH)}, headers, body)
  end
end
function request()
  n = n % #reqs + 1
  return reqs[n]
end
${WRK_DONE}`;
}

interface WrkStats {
  requests: number;
  duration_us: number;
  bytes: number;
  connect: number;
  read: number;
  write: number;
  status: number;
  timeout: number;
  p50_us: number;
  p90_us: number;
  p99_us: number;
  mean_us: number;
  max_us: number;
}

interface HttpStats {
  req_per_s: number;
  p50_ms: number;
  p90_ms: number;
  p99_ms: number;
  requests: number;
  /** Socket errors, timeouts and non-2xx answers. */
  errors: number;
  cpu_us_per_req: number;
  /** CPU of every process on the machine (wrk, servers, nats-server, kernel) per request. */
  machine_cpu_us_per_req: number;
}

async function wrk(
  bin: string,
  args: { url: string; script: string; durationS: number; scriptArgs?: string[] },
): Promise<WrkStats> {
  const argv = [
    "-t",
    String(WRK_THREADS),
    "-c",
    String(CONNECTIONS),
    "-d",
    `${args.durationS}s`,
    "--timeout",
    "10s",
    "-s",
    args.script,
    args.url,
    ...(args.scriptArgs === undefined ? [] : ["--", ...args.scriptArgs]),
  ];
  const child = spawn(bin, argv, { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  let err = "";
  child.stdout.on("data", (chunk: Buffer) => (out += chunk.toString()));
  child.stderr.on("data", (chunk: Buffer) => (err += chunk.toString()));
  // Bounded: wrk stops by itself after -d; kill it if it does not.
  const timer = setTimeout(() => child.kill("SIGKILL"), (args.durationS + 30) * 1000);
  const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
  clearTimeout(timer);
  const line = out.split("\n").find((l) => l.startsWith("WRK_JSON "));
  if (code !== 0 || line === undefined) throw new Error(`wrk failed (exit ${code}): ${out}\n${err}`);
  return JSON.parse(line.slice("WRK_JSON ".length)) as WrkStats;
}

/** A warm-up run, then the measured run with the CPU the server process and the machine spent. */
async function httpLoad(
  bin: string,
  serverPid: number,
  args: { url: string; script: string; durationS: number; warmupS: number; scriptArgs?: string[] },
): Promise<HttpStats> {
  await wrk(bin, { ...args, durationS: args.warmupS });
  const s = await cpuPerOp({ server: serverPid }, async () => {
    const stats = await wrk(bin, args);
    return { ...stats, ops: stats.requests };
  });
  const seconds = s.duration_us / 1e6;
  return {
    req_per_s: round(s.requests / seconds, 1),
    p50_ms: round(s.p50_us / 1000),
    p90_ms: round(s.p90_us / 1000),
    p99_ms: round(s.p99_us / 1000),
    requests: s.requests,
    errors: s.connect + s.read + s.write + s.status + s.timeout,
    cpu_us_per_req: s.cpu_us_per_op["server"] ?? Number.NaN,
    machine_cpu_us_per_req: s.cpu_us_per_op["machine"] ?? Number.NaN,
  };
}

// ---- servers ---------------------------------------------------------------------------------

interface Servers {
  uws: { proc: TestProcess; base: string };
  node: { proc: TestProcess; base: string };
}

/** The uWS gateway and the node:http one, with one environment. */
async function startServers(natsUrl: string, prefix: string): Promise<Servers> {
  const env: Record<string, string> = {
    SF_RATE_LIMIT_PER_MINUTE_KEY: "0",
    SF_RATE_LIMIT_PER_MINUTE_TENANT: "0",
    SF_GATEWAY_MAX_BODY_BYTES: "65536",
    SF_LOG_LEVEL: "info",
  };
  const uws = await spawnGateway({
    natsUrl,
    prefix,
    partitions: P,
    maxBodyBytes: 65_536,
    extraEnv: env,
    // SF_BENCH_GATEWAY_CPU_PROFILE=<dir>: a CPU profile of the uWS gateway, written as it stops.
    ...cpuProfileArgs("SF_BENCH_GATEWAY_CPU_PROFILE"),
  });
  try {
    const node = await spawnListening(
      "node:http gateway",
      "bench/gateway_node_http.ts",
      "node gateway ready",
      {
        NATS_URL: natsUrl,
        SF_SUBJECT_PREFIX: prefix,
        SF_PARTITIONS: String(P),
        SF_GATEWAY_PORT: "0",
        SF_GATEWAY_HOST: "127.0.0.1",
        SF_GATEWAY_CORS_ORIGINS: "",
        SF_GATEWAY_SHUTDOWN_GRACE_MS: "5000",
        ...env,
      },
    );
    return { uws: { proc: uws.proc, base: uws.base }, node };
  } catch (err) {
    await uws.proc.kill();
    throw err;
  }
}

/**
 * A bench server process that prints `readyLine` as JSON with the port it listens on (loopback),
 * and its base URL; killed again when that line has no port.
 */
async function spawnListening(
  name: string,
  script: string,
  readyLine: string,
  env: Record<string, string>,
): Promise<{ proc: TestProcess; base: string }> {
  const proc = await spawnTs(name, script, { readyLine, env });
  const line = await proc.waitForLine(readyLine);
  const port = (JSON.parse(line) as { port?: unknown }).port;
  if (typeof port !== "number") {
    await proc.kill();
    throw new Error(`${name}: no port in ${line}`);
  }
  return { proc, base: `http://127.0.0.1:${port}` };
}

async function stopServers(s: Servers | undefined): Promise<void> {
  if (s === undefined) return;
  // SIGTERM: a gateway run with --cpu-prof writes its profile as it exits.
  await s.uws.proc.stop(10_000);
  await s.node.proc.kill();
}

/** One trigger through a server, checked: 200 and the instant responder's text; the answer's bytes. */
async function checkTrigger(base: string, apiKey: string): Promise<number> {
  let last = "";
  for (let attempt = 0; attempt < 50; attempt++) {
    const res = await fetch(`${base}${TRIGGER_PATH}`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${apiKey}` },
      body: JSON.stringify({ agent_slug: AGENT, user_id: USER, message: MESSAGE }),
    });
    const body = await res.text();
    last = `${res.status} ${body}`;
    if (res.status === 200 && (JSON.parse(body) as { response?: unknown }).response === REPLY_TEXT)
      return Buffer.byteLength(body);
    // The actor host may still be taking its partitions.
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`${base}${TRIGGER_PATH} did not answer the instant reply: ${last}`);
}

async function checkHealth(base: string): Promise<string> {
  const res = await fetch(`${base}/health`);
  const body = await res.text();
  if (res.status !== 200) throw new Error(`${base}/health answered ${res.status}: ${body}`);
  return Object.keys(JSON.parse(body) as Record<string, unknown>)
    .sort()
    .join(",");
}

/**
 * The floor bridge (bench/gateway_floor.ts) with `hops` NATS hops, under the trigger's wrk load
 * (its Authorization header is ignored there); the bridge answers with the gateway's answer size.
 */
async function floorLoad(
  bin: string,
  natsUrl: string,
  hops: 1 | 2,
  sizes: Sizes,
  answerBytes: number,
  args: { url: string; script: string; durationS: number; warmupS: number; scriptArgs?: string[] },
): Promise<HttpStats> {
  const floor = await spawnListening(
    `gateway floor (${hops} hops)`,
    "bench/gateway_floor.ts",
    "gateway floor ready",
    {
      NATS_URL: natsUrl,
      FLOOR_HOPS: String(hops),
      FLOOR_REQUEST_BYTES: String(sizes.trigger_request_bytes),
      FLOOR_RESPONSE_BYTES: String(answerBytes),
    },
  );
  await using proc = floor.proc;
  try {
    return await httpLoad(bin, proc.pid, { ...args, url: floor.base });
  } catch (err) {
    throw new Error(`gateway floor (${hops} hops) failed: ${String(err)}\n${proc.tail()}`);
  }
}

// ---- NATS callers ------------------------------------------------------------------------------

interface Sizes {
  trigger_request_bytes: number;
  trigger_reply_bytes: number;
  frame_bytes: number;
}

function loopRow(path: string, s: LoopStats & { cpu_us_per_op: Record<string, number> }) {
  return {
    path,
    req_per_s: s.ops_per_s,
    p50_ms: s.p50_ms,
    p99_ms: s.p99_ms,
    requests: s.ops,
    errors: s.errors,
    cpu_us_caller: s.cpu_us_per_op["caller"] ?? Number.NaN,
    cpu_us_nats_server: s.cpu_us_per_op["nats_server"] ?? Number.NaN,
    cpu_us_responder: s.cpu_us_per_op["responder"] ?? Number.NaN,
    machine_cpu_us_per_req: s.cpu_us_per_op["machine"] ?? Number.NaN,
  };
}

/**
 * Counts the NATS messages `nc` sends and receives per call of the ops it wraps (nc.stats()
 * before the first call and when asked, right after its closed loop, whose calls have all ended).
 */
function messageCounter(nc: NatsConnection): {
  count: <T>(op: (caller: number) => Promise<T>) => (caller: number) => Promise<T>;
  perCall: () => { out: number; in: number };
} {
  let calls = 0;
  let before: { inMsgs: number; outMsgs: number } | undefined;
  return {
    count: (op) => (caller) => {
      before ??= nc.stats();
      calls += 1;
      return op(caller);
    },
    perCall: () => {
      const after = nc.stats();
      const start = before ?? after;
      return {
        out: calls > 0 ? round((after.outMsgs - start.outMsgs) / calls, 2) : Number.NaN,
        in: calls > 0 ? round((after.inMsgs - start.inMsgs) / calls, 2) : Number.NaN,
      };
    },
  };
}

/** The gateway's own text turn (`runTextTurn`) over NATS, no HTTP: one turn in a conversation. */
function textTurn(
  nc: NatsConnection,
  prefix: string,
  tenant: string,
): (conversation: string) => Promise<void> {
  const subjects = createSubjects({ prefix, partitions: P });
  // As the gateway runs it: its chat inbox, and a session it made up.
  const bus = {
    nc,
    subjects,
    triggerTimeoutMs: 30_000,
    replyTimeoutMs: 60_000,
    inbox: new ChatInbox({ nc, subjects }),
  };
  // One signal for every concurrent turn of the bench (64 listeners at a time, each removed when
  // its turn ends): no leak to warn about.
  const signal = new AbortController().signal;
  setMaxListeners(0, signal);
  return async (conversation) => {
    const turn = await runTextTurn(bus, {
      tenant,
      ...pickSession(undefined),
      jobId: randomUUID(),
      body: { agent_slug: AGENT, user_id: USER, message: MESSAGE, conversation_id: conversation },
      traceId: randomUUID(),
      signal,
    });
    if (turn.text !== REPLY_TEXT) throw new Error(`unexpected reply ${JSON.stringify(turn.text)}`);
  };
}

/** Closed-loop callers of `textTurn`, one conversation per caller. */
function natsTurn(nc: NatsConnection, prefix: string, tenant: string): (caller: number) => Promise<void> {
  const turn = textTurn(nc, prefix, tenant);
  return (caller) => turn(`nats-${caller}`);
}

/** One turn in each conversation the wrk threads cycle through, 64 at a time. */
async function primeConversations(nc: NatsConnection, prefix: string, tenant: string): Promise<void> {
  const ids: string[] = [];
  for (let t = 0; t < WRK_THREADS; t++) {
    for (let i = 1; i <= CONVERSATIONS_PER_THREAD; i++) ids.push(`bench-${t}-${i}`);
  }
  const turn = textTurn(nc, prefix, tenant);
  let next = 0;
  await Promise.all(
    Array.from({ length: CONNECTIONS }, async () => {
      while (next < ids.length) await turn(ids[next++] as string);
    }),
  );
}

/**
 * The CPU the shared request pipeline (`GatewayApp.handle`: URL, route, request id, handler,
 * JSON, CORS, metrics) takes for `GET /health` in this process, without any socket: what both
 * servers spend on top of their HTTP shell.
 */
async function healthPipelineUs(nc: NatsConnection, prefix: string, iterations: number): Promise<number> {
  const config = parseGatewayConfig({ SF_SUBJECT_PREFIX: prefix, SF_PARTITIONS: String(P) });
  const log = createLogger({ name: "bench-pipeline", level: "silent" });
  const { app } = createGatewayWithWs({ nc, config, log });
  const raw = (): RawRequest => ({
    method: "GET",
    url: "/health",
    headers: { host: "127.0.0.1", "user-agent": "bench" },
    body: Buffer.alloc(0),
    remoteAddress: "127.0.0.1",
  });
  for (let i = 0; i < iterations / 4; i++) await app.handle(raw());
  const cpu0 = process.cpuUsage();
  for (let i = 0; i < iterations; i++) {
    const out = await app.handle(raw());
    if (out.status !== 200) throw new Error(`/health answered ${out.status} in process`);
  }
  const cpu = process.cpuUsage(cpu0);
  return round((cpu.user + cpu.system) / iterations, 1);
}

// ---- the bench ---------------------------------------------------------------------------------

interface GatewayBenchResult extends BenchResult {
  setup: Record<string, unknown>;
}

export async function run(options: BenchOptions): Promise<GatewayBenchResult> {
  const quick = options.quick === true;
  const durationS = quick ? 3 : 10;
  const warmupS = quick ? 1 : 3;
  const wrkBin = await ensureWrk();
  const wrkVersion = (
    await run_(wrkBin, ["-v"]).catch((e: { stdout?: string }) => ({ stdout: e.stdout ?? "" }))
  ).stdout
    .split("\n")[0]
    ?.trim();
  const dir = await mkdtemp(join(tmpdir(), "sf-bench-gateway-"));
  const healthLua = join(dir, "health.lua");
  await writeFile(healthLua, WRK_DONE);
  const loadArgs = { durationS, warmupS };
  const table: BenchResult["table"] = [];
  const summary: BenchResult["summary"] = {
    connections: CONNECTIONS,
    duration_s: durationS,
  };
  const natsLoop = { concurrency: CONNECTIONS, durationMs: durationS * 1000, warmupMs: warmupS * 1000 };
  const httpRow = (path: string, server: string, s: HttpStats) => ({ path, server, ...s });
  const put = (prefix: string, s: { req_per_s: number; p50_ms: number; p99_ms: number; errors: number }) => {
    summary[`${prefix}_req_per_s`] = s.req_per_s;
    summary[`${prefix}_p50_ms`] = s.p50_ms;
    summary[`${prefix}_p99_ms`] = s.p99_ms;
    summary[`${prefix}_errors`] = s.errors;
  };
  const asHttp = (s: LoopStats) => ({
    req_per_s: s.ops_per_s,
    p50_ms: s.p50_ms,
    p99_ms: s.p99_ms,
    errors: s.errors,
  });

  await using server = await NatsTestServer.start();
  const nc = await connectBus({ servers: server.url, name: "bench-gateway-caller" });
  let servers: Servers | undefined;
  try {
    // ---- 1 and 2: /health and the gateway path, the actor op answered at once --------------------
    const prefixA = "gwb";
    const tenantA = randomUUID();
    const keyA = `sk_${randomBytes(32).toString("base64url")}`;
    await using backend = await spawnTs("gateway backend", "bench/gateway_backend.ts", {
      readyLine: "gateway backend ready",
      env: {
        NATS_URL: server.url,
        SF_SUBJECT_PREFIX: prefixA,
        SF_PARTITIONS: String(P),
        BENCH_TENANT: tenantA,
        BENCH_API_KEY: keyA,
      },
    });
    servers = await startServers(server.url, prefixA);
    const healthKeys = [await checkHealth(servers.uws.base), await checkHealth(servers.node.base)];
    if (healthKeys[0] !== healthKeys[1]) throw new Error(`/health bodies differ: ${healthKeys.join(" vs ")}`);
    const answerBytes = await checkTrigger(servers.uws.base, keyA);
    await checkTrigger(servers.node.base, keyA);
    const triggerLuaA = join(dir, "trigger_a.lua");
    await writeFile(triggerLuaA, triggerScript(keyA));
    const triggerArgs = { script: triggerLuaA, scriptArgs: [String(CONVERSATIONS_PER_THREAD)] };

    const healthUws = await httpLoad(wrkBin, servers.uws.proc.pid, {
      url: `${servers.uws.base}/health`,
      script: healthLua,
      ...loadArgs,
    });
    const healthNode = await httpLoad(wrkBin, servers.node.proc.pid, {
      url: `${servers.node.base}/health`,
      script: healthLua,
      ...loadArgs,
    });
    const triggerUws = await httpLoad(wrkBin, servers.uws.proc.pid, {
      url: servers.uws.base,
      ...triggerArgs,
      ...loadArgs,
    });
    const triggerNode = await httpLoad(wrkBin, servers.node.proc.pid, {
      url: servers.node.base,
      ...triggerArgs,
      ...loadArgs,
    });
    await stopServers(servers);
    servers = undefined;

    // Bare NATS with the sizes of the trigger's hops, and the gateway's turn without HTTP.
    const sizes = decodeBody((await nc.request("bench.backend.stats", new Uint8Array(0))).data) as Sizes;
    const request = new Uint8Array(sizes.trigger_request_bytes).fill(0x71);
    // The floor: the thinnest uWS bridge making the same hops (one, then two), same wrk load.
    const floor: Record<1 | 2, HttpStats> = {
      1: await floorLoad(wrkBin, server.url, 1, sizes, answerBytes, { url: "", ...triggerArgs, ...loadArgs }),
      2: await floorLoad(wrkBin, server.url, 2, sizes, answerBytes, { url: "", ...triggerArgs, ...loadArgs }),
    };
    const pids = { caller: process.pid, nats_server: server.pid, responder: backend.pid };
    const bareRrMsgs = messageCounter(nc);
    const bareRr = await cpuPerOp(pids, () =>
      closedLoop(
        bareRrMsgs.count(() => nc.request("bench.rr", request, { timeout: 10_000 })),
        natsLoop,
      ),
    );
    const bareRrPerCall = bareRrMsgs.perCall();
    const bareTurnCalls = bareTurnCaller(nc, `bench.chat.${randomUUID()}`, sizes.trigger_request_bytes);
    const bareTurnMsgs = messageCounter(nc);
    const bareTurn = await cpuPerOp(pids, () => closedLoop(bareTurnMsgs.count(bareTurnCalls.turn), natsLoop));
    const bareTurnPerCall = bareTurnMsgs.perCall();
    bareTurnCalls.close();
    const gatewayTurnMsgs = messageCounter(nc);
    const gatewayTurn = await cpuPerOp(pids, () =>
      closedLoop(gatewayTurnMsgs.count(natsTurn(nc, prefixA, tenantA)), natsLoop),
    );
    const gatewayTurnPerCall = gatewayTurnMsgs.perCall();
    const pipelineUs = await healthPipelineUs(nc, prefixA, quick ? 20_000 : 100_000);

    table.push(httpRow("GET /health", "uws (gateway/main.ts)", healthUws));
    table.push(httpRow("GET /health", "node:http (same app)", healthNode));
    table.push(httpRow(`POST ${TRIGGER_PATH}, instant actor op`, "uws (gateway/main.ts)", triggerUws));
    table.push(httpRow(`POST ${TRIGGER_PATH}, instant actor op`, "node:http (same app)", triggerNode));
    table.push(loopRow("bare NATS request/reply (trigger sizes)", bareRr));
    table.push(loopRow("bare NATS request/reply + one frame (trigger sizes)", bareTurn));
    table.push(loopRow("runTextTurn over NATS, no HTTP, instant actor op", gatewayTurn));
    table.push(
      httpRow(
        `POST ${TRIGGER_PATH}, floor: one NATS request/reply`,
        "uws (bench/gateway_floor.ts)",
        floor[1],
      ),
    );
    table.push(
      httpRow(
        `POST ${TRIGGER_PATH}, floor: request/reply + one frame`,
        "uws (bench/gateway_floor.ts)",
        floor[2],
      ),
    );

    put("health_uws", healthUws);
    put("health_node", healthNode);
    summary["health_uws_cpu_us_per_req"] = healthUws.cpu_us_per_req;
    summary["health_node_cpu_us_per_req"] = healthNode.cpu_us_per_req;
    const healthRatio = round(healthUws.req_per_s / healthNode.req_per_s);
    summary["health_pipeline_cpu_us_per_req"] = pipelineUs;
    // CPU is the steadier comparison on a shared machine: node:http's CPU per request over uWS's.
    summary["health_cpu_ratio_node_over_uws"] = round(healthNode.cpu_us_per_req / healthUws.cpu_us_per_req);
    summary["health_ratio_uws_over_node_req_per_s"] = healthRatio;
    summary["health_target_ratio"] = TARGET_HEALTH_RATIO;
    summary["health_meets_target"] = healthRatio >= TARGET_HEALTH_RATIO ? "yes" : "no";

    put("trigger_uws", triggerUws);
    put("trigger_node", triggerNode);
    summary["trigger_uws_cpu_us_per_req"] = triggerUws.cpu_us_per_req;
    summary["trigger_node_cpu_us_per_req"] = triggerNode.cpu_us_per_req;
    summary["trigger_ratio_uws_over_node_req_per_s"] = round(triggerUws.req_per_s / triggerNode.req_per_s);
    summary["trigger_cpu_ratio_node_over_uws"] = round(
      triggerNode.cpu_us_per_req / triggerUws.cpu_us_per_req,
    );
    put("bare_rr", asHttp(bareRr));
    put("bare_rr_frame", asHttp(bareTurn));
    put("nats_turn", asHttp(gatewayTurn));
    summary["nats_turn_caller_cpu_us_per_req"] = gatewayTurn.cpu_us_per_op["caller"] ?? Number.NaN;
    summary["bare_rr_caller_cpu_us_per_req"] = bareRr.cpu_us_per_op["caller"] ?? Number.NaN;
    // What each needs of NATS by design, counted on the caller's connection: a bare request/reply
    // is one message out and one in; the gateway's turn one out (trigger) and two in (its reply,
    // then the job's final frame). Its API key check and client name come from caches.
    for (const [name, perCall] of [
      ["bare_rr", bareRrPerCall],
      ["bare_rr_frame", bareTurnPerCall],
      ["nats_turn", gatewayTurnPerCall],
    ] as const) {
      summary[`${name}_msgs_out_per_req`] = perCall.out;
      summary[`${name}_msgs_in_per_req`] = perCall.in;
    }
    const p50Ratio = round(triggerUws.p50_ms / bareRr.p50_ms);
    const rpsRatio = round(bareRr.ops_per_s / triggerUws.req_per_s);
    summary["trigger_uws_p50_over_bare_rr_p50"] = p50Ratio;
    summary["bare_rr_req_per_s_over_trigger_uws"] = rpsRatio;
    summary["trigger_uws_p50_over_bare_rr_frame_p50"] = round(triggerUws.p50_ms / bareTurn.p50_ms);
    summary["bare_rr_frame_req_per_s_over_trigger_uws"] = round(bareTurn.ops_per_s / triggerUws.req_per_s);
    summary["trigger_uws_p50_over_nats_turn_p50"] = round(triggerUws.p50_ms / gatewayTurn.p50_ms);
    // The floor on this machine: how close to a bare request/reply an HTTP front can get at all.
    for (const hops of [1, 2] as const) {
      const f = floor[hops];
      put(`floor_${hops}hop`, f);
      summary[`floor_${hops}hop_cpu_us_per_req`] = f.cpu_us_per_req;
      summary[`floor_${hops}hop_p50_over_bare_rr_p50`] = round(f.p50_ms / bareRr.p50_ms);
      summary[`bare_rr_req_per_s_over_floor_${hops}hop`] = round(bareRr.ops_per_s / f.req_per_s);
    }
    summary["trigger_uws_p50_over_floor_2hop_p50"] = round(triggerUws.p50_ms / floor[2].p50_ms);
    summary["floor_2hop_req_per_s_over_trigger_uws"] = round(floor[2].req_per_s / triggerUws.req_per_s);
    // CPU of the whole machine per request: what each path costs when the cores are the limit.
    summary["machine_cpu_us_per_req_bare_rr"] = bareRr.cpu_us_per_op["machine"] ?? Number.NaN;
    summary["machine_cpu_us_per_req_bare_rr_frame"] = bareTurn.cpu_us_per_op["machine"] ?? Number.NaN;
    summary["machine_cpu_us_per_req_health_uws"] = healthUws.machine_cpu_us_per_req;
    summary["machine_cpu_us_per_req_floor_1hop"] = floor[1].machine_cpu_us_per_req;
    summary["machine_cpu_us_per_req_floor_2hop"] = floor[2].machine_cpu_us_per_req;
    summary["machine_cpu_us_per_req_trigger_uws"] = triggerUws.machine_cpu_us_per_req;
    summary["trigger_target_ratio"] = TARGET_TRIGGER_OVER_BARE;
    summary["trigger_meets_target"] =
      p50Ratio <= TARGET_TRIGGER_OVER_BARE && rpsRatio <= TARGET_TRIGGER_OVER_BARE ? "yes" : "no";
    Object.assign(summary, {
      trigger_request_bytes: sizes.trigger_request_bytes,
      trigger_reply_bytes: sizes.trigger_reply_bytes,
      frame_bytes: sizes.frame_bytes,
    });

    // ---- 3: the dispatch path, through a real tenant actor and an instant worker --------------
    const dispatch = await runDispatchPath(server, nc, wrkBin, dir, loadArgs, natsLoop);
    table.push(...dispatch.table);
    Object.assign(summary, dispatch.summary);
    summary["actor_trigger_uws_p50_over_bare_rr_p50"] = round(
      (summary["actor_trigger_uws_p50_ms"] as number) / bareRr.p50_ms,
    );
    summary["bare_rr_req_per_s_over_actor_trigger_uws"] = round(
      bareRr.ops_per_s / (summary["actor_trigger_uws_req_per_s"] as number),
    );

    return {
      summary,
      table,
      setup: {
        load: `${wrkVersion ?? "wrk"}: ${WRK_THREADS} threads, ${CONNECTIONS} keep-alive connections, ${warmupS} s warm-up run then ${durationS} s measured (a separate process)`,
        nats_callers: `${CONNECTIONS} closed-loop callers in the bench process (one NATS connection), ${warmupS} s warm-up then ${durationS} s`,
        uws: "gateway/main.ts (tests/helpers/gateway_process.ts spawnGateway), rate limits off",
        node_http:
          "bench/gateway_node_http.ts: the same parseGatewayConfig, ApiKeyVerifier and createGatewayWithWs app behind node:http, same environment; it copies the uWS shell (the instant answer of a plain GET /health, requests of one loop turn started together)",
        health: "GET /health",
        trigger: `POST ${TRIGGER_PATH} {agent_slug, user_id, message, conversation_id} with Authorization: Bearer sk_… (the gateway's API key cache, SF_API_KEY_CACHE_MS, at its default 3 s); each wrk thread cycles through ${CONVERSATIONS_PER_THREAD} conversations`,
        gateway_path:
          "the tenant actor op `trigger` answered at once by bench/gateway_backend.ts (TriggerReply, then the final {type:'message'} frame on the gateway's chat inbox <prefix>.chat.<inbox>.<session>.out, as a worker sends it); it also answers api-keys-verify and clients-get (cached by the gateway)",
        bare_rr:
          "nc.request to a bare responder (bench/gateway_backend.ts), request and reply of the trigger request/reply sizes",
        bare_rr_frame:
          "the same plus one frame of the final message's size published to a subject the caller subscribes to (the gateway's two hops)",
        floor:
          "bench/gateway_floor.ts: the thinnest uWS server that reads the trigger request and makes its NATS hops with bare payloads of the trigger sizes (1 hop: bench.rr; 2 hops: bench.turn and its frame), then answers 200 with a body of the gateway's answer size; no auth, validation, rate limit, metrics, logging, envelope or headers. What an HTTP front costs on this machine before any work of its own",
        machine_cpu:
          "machine_cpu_us_per_req_*: busy CPU of the whole machine (/proc/stat: wrk, servers, nats-server, responders, kernel) over the measured run, per request",
        nats_turn:
          "gateway runTextTurn called from the bench process over NATS, with a chat inbox and a made-up session as the gateway runs it: the gateway's NATS work without HTTP",
        nats_messages:
          "*_msgs_out/in_per_req: NATS messages the caller's connection sent and received per request (nc.stats()); the gateway's own connection does the same as nats_turn for a trigger",
        health_pipeline:
          "GatewayApp.handle for GET /health in the bench process, no socket: the CPU of the request pipeline both servers share",
        dispatch_path:
          "actor host (actors/main.ts) with the tenant on the shared PostgreSQL: trigger → conversation window → JetStream SF_DISPATCH → bench/instant_worker.ts (the worker's JobConsumer; claimed, final frame, done, ack) → claim → reply; every conversation the load uses is created before either server is measured",
      },
    };
  } finally {
    await stopServers(servers);
    await nc.close();
    await rm(dir, { recursive: true, force: true });
  }
}

async function runDispatchPath(
  server: NatsTestServer,
  nc: NatsConnection,
  wrkBin: string,
  dir: string,
  loadArgs: { durationS: number; warmupS: number },
  natsLoop: { concurrency: number; durationMs: number; warmupMs: number },
): Promise<{ summary: BenchResult["summary"]; table: BenchResult["table"] }> {
  const prefix = "sf";
  const schema = `bench_gw_${server.port}`;
  const database: TenantDatabaseConfig = { kind: "postgres", url: sharedServices().databaseUrl, schema };
  const procs: TestProcess[] = [];
  let platform: PlatformStore | undefined;
  let servers: Servers | undefined;
  try {
    const host = await spawnActorHost({
      natsUrl: server.url,
      hostId: "bench",
      partitions: P,
      tenantMaxJobs: 10_000,
    });
    procs.push(host);
    const worker = await spawnTs("instant worker", "bench/instant_worker.ts", {
      readyLine: "instant worker ready",
      env: { NATS_URL: server.url, SF_SUBJECT_PREFIX: prefix, SF_PARTITIONS: String(P) },
    });
    procs.push(worker);
    platform = await openTestPlatform(server.url);
    const client = await platform.createClient({ slug: `bench-gw-${server.port}`, name: "Bench gateway" });
    await provisionTenantDatabase({ tenantId: client.id, database, vector: "optional" });
    await platform.setTenantDatabase(client.id, database);
    const store = await openTenantStore({ tenantId: client.id, database, keyring: testKeyring() });
    try {
      await store.createAgent({
        slug: AGENT,
        name: "Helper",
        voiceSettings: { llm_provider: "groq", llm_model: "llama-3.3-70b-versatile" },
      });
    } finally {
      await store.close();
    }
    const key = (await platform.createApiKey({ clientId: client.id, name: "bench" })).secret;
    servers = await startServers(server.url, prefix);
    await checkTrigger(servers.uws.base, key);
    await checkTrigger(servers.node.base, key);
    // Every conversation the load uses exists before either server is measured (the first
    // trigger of a conversation creates it in the tenant database).
    await primeConversations(nc, prefix, client.id);
    const script = join(dir, "trigger_b.lua");
    await writeFile(script, triggerScript(key));
    const args = { script, scriptArgs: [String(CONVERSATIONS_PER_THREAD)], ...loadArgs };
    const uws = await httpLoad(wrkBin, servers.uws.proc.pid, { url: servers.uws.base, ...args });
    const node = await httpLoad(wrkBin, servers.node.proc.pid, { url: servers.node.base, ...args });
    await stopServers(servers);
    servers = undefined;
    const turn = await cpuPerOp(
      { caller: process.pid, nats_server: server.pid, responder: host.pid, worker: worker.pid },
      () => closedLoop(natsTurn(nc, prefix, client.id), natsLoop),
    );
    const summary: BenchResult["summary"] = {};
    for (const [name, s] of [
      ["actor_trigger_uws", uws],
      ["actor_trigger_node", node],
    ] as const) {
      summary[`${name}_req_per_s`] = s.req_per_s;
      summary[`${name}_p50_ms`] = s.p50_ms;
      summary[`${name}_p99_ms`] = s.p99_ms;
      summary[`${name}_errors`] = s.errors;
      summary[`${name}_cpu_us_per_req`] = s.cpu_us_per_req;
    }
    summary["actor_trigger_ratio_uws_over_node_req_per_s"] = round(uws.req_per_s / node.req_per_s);
    summary["actor_nats_turn_req_per_s"] = turn.ops_per_s;
    summary["actor_nats_turn_p50_ms"] = turn.p50_ms;
    summary["actor_nats_turn_p99_ms"] = turn.p99_ms;
    summary["actor_nats_turn_errors"] = turn.errors;
    summary["actor_trigger_uws_p50_over_nats_turn_p50"] = round(uws.p50_ms / turn.p50_ms);
    return {
      summary,
      table: [
        {
          path: `POST ${TRIGGER_PATH}, tenant actor + instant worker`,
          server: "uws (gateway/main.ts)",
          ...uws,
        },
        {
          path: `POST ${TRIGGER_PATH}, tenant actor + instant worker`,
          server: "node:http (same app)",
          ...node,
        },
        {
          ...loopRow("runTextTurn over NATS, no HTTP, tenant actor + instant worker", turn),
          cpu_us_worker: turn.cpu_us_per_op["worker"] ?? Number.NaN,
        },
      ],
    };
  } finally {
    await stopServers(servers);
    await platform?.close();
    for (const p of procs) await p.kill();
    // The tenant's schema and the platform schema the actor host made, on the shared PostgreSQL.
    const db = createPostgresDatabase({ connectionString: sharedServices().databaseUrl, maxConnections: 1 });
    try {
      await db.exec(`drop schema if exists ${quoteIdent(schema)} cascade`);
      await db.exec(`drop schema if exists ${quoteIdent(defaultPlatformSchema(server.url))} cascade`);
    } finally {
      await db.close();
    }
  }
}

export default run;
