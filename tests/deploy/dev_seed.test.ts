/**
 * The demo seeding of `npm run dev` (actors/cli/dev/seed_demo.ts) as dev.sh runs it: a child
 * process against a real nats-server, actor host (platform on the shared PostgreSQL), gateway and
 * agent worker, with the demo tenant's PGlite database and the key file in a temporary directory.
 * Run twice it reports the same client, agent and key; the key works at the gateway; the curl it
 * prints, pasted into a shell, gets the no-fallback error naming groq until the groq key is set
 * with the other curl it prints, and then the agent answers.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, statSync, writeFileSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { randomBytes } from "node:crypto";
import { connect } from "@nats-io/transport-node";
import type { NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PlatformOps } from "../../actors/index.ts";
import type { AgentRecord, ApiKeysListReply, PlatformStore } from "../../actors/index.ts";
import { createSubjects, requestReply } from "../../bus/index.ts";
import { startProviderFixture } from "../fixtures/providers/provider_fixture.ts";
import type { ProviderFixture } from "../fixtures/providers/provider_fixture.ts";
import { spawnGateway } from "../helpers/gateway_process.ts";
import type { GatewayProcess } from "../helpers/gateway_process.ts";
import { NatsTestServer } from "../helpers/nats_server.ts";
import { spawnActorHost } from "../helpers/processes.ts";
import type { TestProcess } from "../helpers/processes.ts";
import { repoRoot, sharedServices } from "../helpers/services.ts";
import { openTestPlatform, spawnWorker } from "../helpers/stack.ts";

const P = 16;
const subjects = createSubjects({ partitions: P });
const ADMIN = `adm_${randomBytes(24).toString("hex")}`;

interface SeedJson {
  client: { id: string; slug: string; name: string; created: boolean };
  tenant_database: { kind: string; created: boolean };
  livekit: { configured: boolean; created: boolean };
  agent: {
    id: string;
    slug: string;
    llm_provider: string | null;
    llm_model: string | null;
    text_chat_enabled: boolean;
    voice_chat_enabled: boolean;
    created: boolean;
  };
  api_key: { id: string; prefix: string; key: string; scopes: string[]; file: string; created: boolean };
  gateway_url: string;
  gateway_up: boolean;
  admin_url: string | null;
  curl: { trigger: string; provider_key: string };
}

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

let server: NatsTestServer;
let fixture: ProviderFixture;
let host: TestProcess;
let worker: TestProcess;
let gw: GatewayProcess;
let nc: NatsConnection;
let platform: PlatformStore;
let dir: string;
let keyFile: string;

function run(command: string, args: readonly string[], env: Record<string, string> = {}): Promise<Run> {
  const child = spawn(command, [...args], {
    cwd: repoRoot(),
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  return new Promise<Run>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`${command} ${args.join(" ")} did not exit within 90 s\n${stdout}\n${stderr}`));
    }, 90_000);
    child.once("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** The seeding script, as `npm run dev` runs it, pointed at this test's stack and directory. */
function seed(args: readonly string[] = []): Promise<Run> {
  const services = sharedServices();
  return run(process.execPath, ["--import", "tsx", "actors/cli/dev/seed_demo.ts", ...args], {
    NATS_URL: server.url,
    SF_SUBJECT_PREFIX: "sf",
    SF_PARTITIONS: String(P),
    SF_DEMO_TENANT_DIR: path.join(dir, "tenants", "demo"),
    SF_DEMO_API_KEY_FILE: keyFile,
    SF_GATEWAY_URL: gw.base,
    SF_ADMIN_TOKEN: ADMIN,
    LIVEKIT_URL: services.livekitUrl,
    LIVEKIT_API_KEY: services.livekitApiKey,
    LIVEKIT_API_SECRET: services.livekitApiSecret,
    SF_SEED_PLATFORM_WAIT_MS: "30000",
    SF_SEED_GATEWAY_WAIT_MS: "10000",
  });
}

async function seedJson(): Promise<SeedJson> {
  const result = await seed(["--json"]);
  expect(result.code, result.stderr).toBe(0);
  return JSON.parse(result.stdout) as SeedJson;
}

/** A curl command as the banner prints it, run by a shell; stdout parsed as JSON. */
async function paste(command: string): Promise<Record<string, unknown>> {
  const result = await run("bash", ["-c", command]);
  expect(result.code, result.stderr).toBe(0);
  return JSON.parse(result.stdout) as Record<string, unknown>;
}

async function tenantOp<T>(tenant: string, op: string, body: unknown): Promise<T> {
  return (await requestReply<T>(nc, subjects.tenantOp(tenant, op), body, { tenant, timeoutMs: 10_000 })).body;
}

let first: SeedJson;
let second: SeedJson;

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), "sf-dev-seed-"));
  keyFile = path.join(dir, "demo-api-key");
  server = await NatsTestServer.start();
  fixture = await startProviderFixture();
  nc = await connect({ servers: server.url });
  [host, gw, worker] = await Promise.all([
    spawnActorHost({ natsUrl: server.url, hostId: "seed-h1", partitions: P }),
    spawnGateway({ natsUrl: server.url, partitions: P, extraEnv: { SF_ADMIN_TOKEN: ADMIN } }),
    spawnWorker({ natsUrl: server.url, partitions: P, workerId: "seed-w1", endpoints: fixture.endpoints() }),
  ]);
  platform = await openTestPlatform(server.url);
  first = await seedJson();
  second = await seedJson();
}, 180_000);

afterAll(async () => {
  await platform?.close();
  await nc?.close();
  await worker?.stop();
  await gw?.proc.stop();
  await host?.stop();
  await fixture?.[Symbol.asyncDispose]();
  await server?.[Symbol.asyncDispose]();
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
});

describe("npm run dev - demo seeding", () => {
  it("first run - creates the client demo with a PGlite tenant database and LiveKit, the agent assistant (groq) and a trigger key kept 0600", async () => {
    expect(first.client).toMatchObject({ slug: "demo", created: true });
    expect(first.tenant_database).toEqual({ kind: "pglite", created: true });
    expect(first.livekit).toEqual({ configured: true, created: true });
    expect(first.agent).toMatchObject({
      slug: "assistant",
      llm_provider: "groq",
      llm_model: "llama-3.3-70b-versatile",
      text_chat_enabled: true,
      voice_chat_enabled: true,
      created: true,
    });
    expect(first.api_key).toMatchObject({ scopes: ["agents:trigger"], file: keyFile, created: true });
    expect(first.api_key.key).toMatch(/^sk_/);
    expect(readFileSync(keyFile, "utf8").trim()).toBe(first.api_key.key);
    expect(statSync(keyFile).mode & 0o777).toBe(0o600);
    // Made through the platform: the audit log names the seeding.
    const audit = await platform.listAudit({ clientId: first.client.id, limit: 50 });
    expect(new Set(audit.map((e) => e.actor))).toEqual(new Set(["system:dev-seed"]));
    expect(audit.map((e) => e.action)).toEqual(
      expect.arrayContaining(["client.create", "secret.update", "agent.create", "api_key.create"]),
    );
  });

  it("second run - changes nothing and reports the same client, agent and key", async () => {
    expect(second.client).toEqual({ ...first.client, created: false });
    expect(second.tenant_database).toEqual({ kind: "pglite", created: false });
    expect(second.livekit).toEqual({ configured: true, created: false });
    expect(second.agent).toEqual({ ...first.agent, created: false });
    expect(second.api_key).toEqual({ ...first.api_key, created: false });
    const keys = await requestReply<ApiKeysListReply>(
      nc,
      subjects.platformOp(PlatformOps.apiKeysList),
      { client_id: first.client.id },
      { timeoutMs: 10_000 },
    );
    expect(keys.body.api_keys.map((k) => k.id)).toEqual([first.api_key.id]);
    const agents = await tenantOp<AgentRecord[]>(first.client.id, "agents-list", {});
    expect(agents.map((a) => a.slug)).toEqual(["assistant"]);
  });

  it("the key - /api/v1/me at the gateway names the demo client", async () => {
    const res = await fetch(`${gw.base}/api/v1/me`, {
      headers: { authorization: `Bearer ${second.api_key.key}` },
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({
      type: "api_key",
      client_id: first.client.id,
      scopes: ["agents:trigger"],
      client: { slug: "demo" },
    });
  });

  it("the banner - the pasted trigger curl gets 409 SF_ERR_PROVIDER_MISCONFIGURED naming groq; after the pasted provider-key curl the agent answers", async () => {
    const result = await seed();
    expect(result.code, result.stderr).toBe(0);
    const banner = result.stdout;
    expect(banner).toContain(gw.base);
    expect(banner).toContain(ADMIN);
    expect(banner).toContain(first.api_key.key);
    // The console answers at /admin: the banner gives its address and the admin API's.
    expect(banner).toContain(
      `${gw.base}/admin  (console: log in with the admin token; admin API ${gw.base}/api/v2)`,
    );
    expect(result.stderr).toContain("already");

    const trigger = /^ {2}curl -sS -X POST .*\\\n.*\\\n.*$/m.exec(banner)?.[0];
    const setKey = /^ {2}curl -sS -X PUT .*\\\n.*\\\n.*$/m.exec(banner)?.[0];
    expect(trigger, banner).toBeDefined();
    expect(setKey, banner).toBeDefined();
    expect(setKey).toContain(`/api/v2/clients/${first.client.id}/provider-keys/groq`);

    const calls = fixture.calls.length;
    const refused = await paste(trigger ?? "");
    expect(refused["error"]).toMatchObject({
      code: "SF_ERR_PROVIDER_MISCONFIGURED",
      details: { provider: "groq" },
    });
    expect(fixture.calls.length).toBe(calls);

    const stored = await paste((setKey ?? "").replace(/<your groq API key[^>]*>/, fixture.keys.groq));
    expect(stored).toMatchObject({ provider: "groq", configured: true });
    const answered = await paste(trigger ?? "");
    expect(answered).toMatchObject({ success: true, data: { mode: "text" } });
    expect(String((answered["data"] as Record<string, unknown>)["response"])).not.toBe("");
  });

  it("a kept key the platform no longer accepts - is replaced by a new one, and the file with it", async () => {
    writeFileSync(keyFile, "sk_not_a_key_the_platform_knows\n", { mode: 0o644 });
    const third = await seedJson();
    expect(third.client).toEqual({ ...first.client, created: false });
    expect(third.api_key.created).toBe(true);
    expect(third.api_key.id).not.toBe(first.api_key.id);
    expect(readFileSync(keyFile, "utf8").trim()).toBe(third.api_key.key);
    expect(statSync(keyFile).mode & 0o777).toBe(0o600);
    const fourth = await seedJson();
    expect(fourth.api_key).toEqual({ ...third.api_key, created: false });
  });
});
