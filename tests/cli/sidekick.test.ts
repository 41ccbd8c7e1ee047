/**
 * The operator CLI as a user runs it: a child process per command against a real nats-server,
 * actor host and agent worker (with the provider fixture standing in for the LLM), checking
 * exit codes, `--json` output and what the tables and errors say.
 */
import { spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect } from "@nats-io/transport-node";
import type { NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generateMasterKey, PlatformOps, provisionTenantDatabase } from "../../actors/index.ts";
import type {
  ApiKeysCreateReply,
  ApiKeyView,
  ClientDetailView,
  ClientsListReply,
} from "../../actors/index.ts";
import { createSubjects, requestReply } from "../../bus/index.ts";
import { defaultChatReply, startProviderFixture } from "../fixtures/providers/provider_fixture.ts";
import type { ProviderFixture } from "../fixtures/providers/provider_fixture.ts";
import { NatsTestServer } from "../helpers/nats_server.ts";
import { defaultPlatformSchema, spawnActorHost, TEST_MASTER_KEY } from "../helpers/processes.ts";
import type { TestProcess } from "../helpers/processes.ts";
import { repoRoot, sharedServices } from "../helpers/services.ts";
import { spawnWorker } from "../helpers/stack.ts";

const P = 16;
const subjects = createSubjects({ partitions: P });
const ACTOR = "admin:cli-test";

let server: NatsTestServer;
let fixture: ProviderFixture;
let host: TestProcess;
let worker: TestProcess;
let nc: NatsConnection;
/** The tenant with a database, an agent and a groq key: created through the CLI. */
let acme: ClientDetailView;
let acmeSlug: string;

interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `sidekick <args>` (main.ts, or the bin script) and collects what it printed. */
function cli(args: readonly string[], options: { bin?: boolean; env?: Record<string, string> } = {}) {
  const entry =
    options.bin === true
      ? ["actors/cli/sidekick/bin.mjs"]
      : ["--import", "tsx", "actors/cli/sidekick/main.ts"];
  const child = spawn(process.execPath, [...entry, ...args], {
    cwd: repoRoot(),
    env: {
      ...process.env,
      NATS_URL: server.url,
      SF_SUBJECT_PREFIX: "sf",
      SF_PARTITIONS: String(P),
      NO_COLOR: "1",
      ...options.env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  return new Promise<CliRun>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`sidekick ${args.join(" ")} did not exit within 45 s\n${stdout}\n${stderr}`));
    }, 45_000);
    child.once("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Runs a `--json` command that must succeed and parses its stdout. */
async function cliJson<T>(args: readonly string[], options: { bin?: boolean } = {}): Promise<T> {
  const run = await cli([...args, "--json"], options);
  expect(run.code, `${args.join(" ")}\n${run.stderr}`).toBe(0);
  return JSON.parse(run.stdout) as T;
}

async function platformOp<T>(op: string, body: unknown): Promise<T> {
  return (await requestReply<T>(nc, subjects.platformOp(op), body, { timeoutMs: 10_000 })).body;
}

interface DoctorJson {
  ok: boolean;
  summary: Record<string, number>;
  checks: Array<{ check: string; target: string; status: string; latency_ms: number | null; detail: string }>;
}

beforeAll(async () => {
  server = await NatsTestServer.start();
  fixture = await startProviderFixture();
  nc = await connect({ servers: server.url });
  [host, worker] = await Promise.all([
    spawnActorHost({ natsUrl: server.url, hostId: "cli-h1", partitions: P }),
    spawnWorker({ natsUrl: server.url, partitions: P, workerId: "cli-w1", endpoints: fixture.endpoints() }),
  ]);
  // The tenant used by the agent, dispatch and doctor tests: created with the CLI, given a
  // database (a schema on the shared PostgreSQL) and a groq key as an admin would.
  acmeSlug = `acme-${server.port}`;
  acme = await cliJson<ClientDetailView>(["clients", "create", "--slug", acmeSlug, "--name", "Acme Corp"]);
  const database = {
    kind: "postgres" as const,
    url: sharedServices().databaseUrl,
    schema: `cli_acme_${server.port}`,
  };
  await provisionTenantDatabase({ tenantId: acme.id, database, vector: "optional" });
  await platformOp(PlatformOps.clientsSetCredentials, {
    actor: ACTOR,
    id: acme.id,
    tenant_database: database,
  });
  await requestReply(
    nc,
    subjects.tenantOp(acme.id, "provider-keys-set"),
    { actor: ACTOR, provider: "groq", api_key: fixture.keys.groq },
    { tenant: acme.id, timeoutMs: 10_000 },
  );
}, 60_000);

afterAll(async () => {
  await nc?.close();
  await worker?.stop();
  await host?.stop();
  await fixture?.[Symbol.asyncDispose]();
  await server?.[Symbol.asyncDispose]();
});

describe("sidekick CLI", () => {
  it("clients - create, list and show (credentials masked); unknown client exits 1 with its code, usage errors exit 2", async () => {
    expect(acme).toMatchObject({ slug: acmeSlug, name: "Acme Corp", status: "active" });
    const otherSlug = `other-${server.port}`;
    const [created, list, show, showJson, missing, usage] = await Promise.all([
      cli(["clients", "create", "--slug", otherSlug, "--name", "Other Inc", "--status", "suspended"]),
      cliJson<ClientsListReply>(["clients", "list", "--search", acmeSlug], { bin: true }),
      cli(["clients", "show", acmeSlug]),
      cliJson<ClientDetailView & { api_keys: unknown[] }>(["clients", "show", acme.id]),
      cli(["clients", "show", `nobody-${server.port}`]),
      cli(["clients", "create", "--name", "No slug"]),
    ]);
    expect(created.code, created.stderr).toBe(0);
    expect(created.stdout).toContain("client created");
    expect(created.stdout).toMatch(/status\s+suspended/);

    expect(list.clients.map((c) => c.slug)).toEqual([acmeSlug]);
    const table = await cli(["clients", "list"]);
    expect(table.code).toBe(0);
    expect(table.stdout.split("\n")[0]).toMatch(/^ID\s+SLUG\s+NAME\s+STATUS\s+CREATED$/);
    expect(table.stdout).toMatch(new RegExp(`${otherSlug}\\s+Other Inc\\s+suspended`));

    expect(show.code, show.stderr).toBe(0);
    expect(show.stdout).toMatch(/tenant database\s+postgres\s+schema cli_acme_/);
    expect(show.stdout).toMatch(/livekit\s+not configured/);
    // The database URL carries a password: masked, as the API shows it.
    expect(show.stdout).not.toContain(sharedServices().databaseUrl);
    expect(showJson.credentials.tenant_database).toMatchObject({ configured: true, kind: "postgres" });
    expect(JSON.stringify(showJson)).not.toContain(sharedServices().databaseUrl);
    expect(showJson.api_keys).toEqual([]);

    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/^error SF_ERR_TENANT_NOT_FOUND: /m);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toContain("SF_ERR_USAGE");
    expect(usage.stderr).toContain("usage: sidekick clients create");
    const unknown = await cli(["clients", "show", "--json", "--nope"]);
    expect(unknown.code).toBe(2);
    expect(JSON.parse(unknown.stderr.split("\n").find((l) => l.startsWith("{")) ?? "")).toMatchObject({
      error: { code: "SF_ERR_USAGE" },
    });
  });

  it("agents - create, set (dotted keys merge into JSON columns), list; a value the tenant actor refuses exits 1 with its error", async () => {
    const created = await cliJson<Record<string, unknown>>([
      "agents",
      "create",
      acmeSlug,
      "--slug",
      "helper",
      "--name",
      "Helper",
      "--system-prompt",
      "You are the Acme helper.",
      "--llm-provider",
      "groq",
      "--llm-model",
      "llama-3.3-70b-versatile",
    ]);
    expect(created).toMatchObject({
      slug: "helper",
      system_prompt: "You are the Acme helper.",
      voice_settings: { llm_provider: "groq", llm_model: "llama-3.3-70b-versatile" },
      enabled: true,
    });
    const updated = await cliJson<Record<string, unknown>>([
      "agents",
      "set",
      acme.id,
      "helper",
      "name=Acme Helper",
      "voice_settings.llm_model=llama-3.1-8b-instant",
      "rag_results_limit=7",
      "show_citations=false",
    ]);
    expect(updated).toMatchObject({
      name: "Acme Helper",
      voice_settings: { llm_provider: "groq", llm_model: "llama-3.1-8b-instant" },
      rag_results_limit: 7,
      show_citations: false,
    });

    const [refused, unknownField, notAssignment, list] = await Promise.all([
      cli(["agents", "set", acmeSlug, "helper", "rag_results_limit=500"]),
      cli(["agents", "set", acmeSlug, "helper", "colour=blue", "--json"]),
      cli(["agents", "set", acmeSlug, "helper", "enabled"]),
      cli(["agents", "list", acmeSlug]),
    ]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/^error SF_ERR_INVALID_ARGUMENT: .*ragResultsLimit/m);
    expect(unknownField.code).toBe(1);
    expect(JSON.parse(unknownField.stderr)).toMatchObject({
      error: { code: "SF_ERR_INVALID_ARGUMENT", details: { field: "colour" } },
    });
    expect(notAssignment.code).toBe(2);
    expect(list.code, list.stderr).toBe(0);
    expect(list.stdout).toMatch(/^SLUG\s+NAME\s+ENABLED\s+LLM/);
    expect(list.stdout).toMatch(/helper\s+Acme Helper\s+true\s+groq llama-3\.1-8b-instant/);
    // The refused change wrote nothing.
    const shown = await cliJson<Record<string, unknown>>(["agents", "show", acmeSlug, "helper"]);
    expect(shown["rag_results_limit"]).toBe(7);
  });

  it("keys - issue prints the key once and it verifies; revoke makes it refused", async () => {
    const issued = await cliJson<ApiKeysCreateReply>([
      "keys",
      "issue",
      acmeSlug,
      "--label",
      "WordPress",
      "--scopes",
      "trigger,documents:read",
      "--site-url",
      "https://acme.example",
    ]);
    expect(issued.key).toMatch(/^sk_/);
    expect(issued.api_key).toMatchObject({
      label: "WordPress",
      scopes: ["trigger", "documents:read"],
      site_url: "https://acme.example",
      revoked_at: null,
    });
    await expect(platformOp(PlatformOps.apiKeysVerify, { key: issued.key })).resolves.toMatchObject({
      clientId: acme.id,
    });
    const human = await cli(["keys", "issue", acmeSlug]);
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(/shown this once/);
    expect(human.stdout).toMatch(/^ {2}sk_\S+$/m);

    const revoked = await cliJson<{ api_key: ApiKeyView }>(["keys", "revoke", acmeSlug, issued.api_key.id]);
    expect(revoked.api_key.revoked_at).not.toBeNull();
    await expect(platformOp(PlatformOps.apiKeysVerify, { key: issued.key })).rejects.toMatchObject({
      code: "SF_ERR_UNAUTHENTICATED",
    });
    const listed = await cli(["keys", "list", acmeSlug]);
    expect(listed.stdout).toMatch(new RegExp(`${issued.api_key.prefix}\\s+WordPress.*revoked`));
    // The full key is never shown again.
    expect(listed.stdout).not.toContain(issued.key);
    const show = await cli(["clients", "show", acmeSlug, "--json"]);
    expect(show.stdout).not.toContain(issued.key);
    const wrongId = await cli(["keys", "revoke", acmeSlug, "not-a-uuid"]);
    expect(wrongId.code).toBe(2);
  });

  it("provider-keys and clients credentials - secrets come from files, are stored sealed and never printed", async () => {
    const dir = await mkdtemp(join(tmpdir(), "sf-cli-secrets-"));
    const keyFile = join(dir, "openai.key");
    const openaiKey = `sk-openai-cli-${server.port}-abcdefgh`;
    await writeFile(keyFile, `${openaiKey}\n`, { mode: 0o600 });
    const set = await cli(["provider-keys", "set", acmeSlug, "openai", "--key-file", keyFile, "--json"]);
    expect(set.code, set.stderr).toBe(0);
    expect(JSON.parse(set.stdout)).toMatchObject({ provider: "openai", configured: true });
    const listed = await cli(["provider-keys", "list", acmeSlug]);
    expect(listed.code).toBe(0);
    expect(listed.stdout).toMatch(/^openai\s+set\s+/m);
    expect(listed.stdout).toMatch(/^groq\s+set\s+/m);
    for (const run of [set, listed]) expect(run.stdout + run.stderr).not.toContain(openaiKey);
    // What a worker is given for a job (the agent `helper` comes from the agents test): the whole key.
    const context = await requestReply<{ provider_keys: Record<string, string> }>(
      nc,
      subjects.tenantOp(acme.id, "job-context"),
      { agent_slug: "helper" },
      { tenant: acme.id, timeoutMs: 10_000 },
    );
    expect(context.body.provider_keys["openai"]).toBe(openaiKey);
    // A key on the command line is refused (usage error), and so is an empty file.
    expect((await cli(["provider-keys", "set", acmeSlug, "openai"])).code).toBe(2);
    await writeFile(join(dir, "empty"), "\n");
    expect(
      (await cli(["provider-keys", "set", acmeSlug, "openai", "--key-file", join(dir, "empty")])).code,
    ).toBe(2);
    const removed = await cli(["provider-keys", "remove", acmeSlug, "openai", "--json"]);
    expect(JSON.parse(removed.stdout)).toEqual({ provider: "openai", deleted: true });
    expect((await cli(["provider-keys", "remove", acmeSlug, "openai"])).code).toBe(1);

    const secretFile = join(dir, "livekit.secret");
    const livekitSecret = `lk-secret-cli-${server.port}-0123456789`;
    await writeFile(secretFile, livekitSecret, { mode: 0o600 });
    const creds = await cli([
      "clients",
      "credentials",
      acmeSlug,
      "--livekit-url",
      "wss://acme-cli.livekit.example",
      "--livekit-api-key",
      "APIcliKey42",
      "--livekit-secret-file",
      secretFile,
    ]);
    expect(creds.code, creds.stderr).toBe(0);
    expect(creds.stdout).toMatch(/^livekit\s+wss:/m);
    expect(creds.stdout).not.toContain(livekitSecret);
    const detail = await platformOp<ClientDetailView>(PlatformOps.clientsGet, { id: acme.id });
    expect(detail.credentials.livekit.configured).toBe(true);
    expect(JSON.stringify(detail)).not.toContain(livekitSecret);
    // Part of the LiveKit credentials is a usage error and changes nothing.
    expect((await cli(["clients", "credentials", acmeSlug, "--livekit-url", "wss://x.example"])).code).toBe(
      2,
    );
    const removedLk = await cliJson<{ credentials: ClientDetailView["credentials"] }>([
      "clients",
      "credentials",
      acmeSlug,
      "--remove-livekit",
    ]);
    expect(removedLk.credentials.livekit).toEqual({ configured: false });
    // The database credentials were left as they were.
    expect(removedLk.credentials.tenant_database.configured).toBe(true);
    await rm(dir, { recursive: true, force: true });
  });

  it("dispatch test - a text trigger reaches the worker and the fixture LLM; claim, first token and done are timed", async () => {
    const message = "What is the capital of France?";
    const result = await cliJson<{
      worker_id: string;
      job_id: string;
      timings: { claim_ms: number; first_token_ms: number; done_ms: number; claim_reported_ms: number };
      tokens: number;
      reply: string;
    }>(["dispatch", "test", acmeSlug, "helper", "--message", message]);
    const turn = fixture.chatTurns.find((t) => t.messages.some((m) => m.content === message));
    expect(turn).toBeDefined();
    expect(result.reply).toBe(defaultChatReply(turn!));
    expect(result.worker_id).toBe("cli-w1");
    expect(result.tokens).toBeGreaterThan(0);
    const t = result.timings;
    expect(t.claim_ms).toBeGreaterThan(0);
    expect(t.first_token_ms).toBeGreaterThan(0);
    expect(t.done_ms).toBeGreaterThanOrEqual(t.first_token_ms);

    const human = await cli(["dispatch", "test", acmeSlug, "helper", "--message", "And of Italy?"]);
    expect(human.code, human.stderr).toBe(0);
    expect(human.stdout).toMatch(/^claim\s+[\d.]+ ms/m);
    expect(human.stdout).toMatch(/^first token\s+[\d.]+ ms/m);
    expect(human.stdout).toMatch(/^done\s+[\d.]+ ms \(\d+ tokens\)/m);
    expect(human.stdout).toContain("Echo: And of Italy?");

    const unknownAgent = await cli(["dispatch", "test", acmeSlug, "nobody"]);
    expect(unknownAgent.code).toBe(1);
    expect(unknownAgent.stderr).toContain("SF_ERR_AGENT_NOT_FOUND");
  });

  it("doctor - a healthy stack passes (exit 0) with a real 1-token call to the tenant's LLM made by a worker", async () => {
    const before = fixture.calls.length;
    const report = await cliJson<DoctorJson>(["doctor"]);
    expect(report.ok).toBe(true);
    const status = (check: string, target: string) =>
      report.checks.find((c) => c.check === check && c.target === target)?.status;
    expect(status("nats", server.url)).toBe("ok");
    for (const stream of ["SF_DISPATCH", "SF_EVENTS", "SF_INGEST"])
      expect(status("jetstream", stream)).toBe("ok");
    expect(status("actor hosts", "sf_members")).toMatch(/^(ok|warn)$/);
    expect(status("workers", "sf_workers")).toBe("ok");
    expect(status("platform", "platform.health")).toBe("ok");
    expect(status("database", acmeSlug)).toBe("ok");
    expect(status("livekit", acmeSlug)).toBe("warn");
    expect(status("provider", `${acmeSlug} groq/llm`)).toBe("ok");
    // The suspended client without a database: a warning, not a failure.
    expect(status("database", `other-${server.port}`)).toBe("warn");
    const checkCall = fixture.calls
      .slice(before)
      .find((c) => c.kind === "chat" && (c.body as { max_tokens?: number }).max_tokens === 1);
    expect(checkCall).toMatchObject({ provider: "groq", authorized: true, status: 200 });

    const human = await cli(["doctor", "--client", acmeSlug]);
    expect(human.code, human.stderr).toBe(0);
    expect(human.stdout.split("\n")[0]).toMatch(/^CHECK\s+TARGET\s+STATUS\s+LATENCY\s+DETAIL$/);
    expect(human.stdout).toMatch(/^provider\s+acme-\d+ groq\/llm\s+ok\s+[\d.]+ ms/m);
    expect(human.stdout).toMatch(/^healthy: \d+ ok/m);
  });

  it("doctor - a refused provider key fails its check, and with no worker running doctor exits 1", async () => {
    await requestReply(
      nc,
      subjects.tenantOp(acme.id, "provider-keys-set"),
      { actor: ACTOR, provider: "groq", api_key: "wrong-groq-key" },
      { tenant: acme.id, timeoutMs: 10_000 },
    );
    const badKey = await cli(["doctor", "--client", acmeSlug, "--json"]);
    expect(badKey.code).toBe(1);
    const bad = JSON.parse(badKey.stdout) as DoctorJson;
    expect(bad.checks.find((c) => c.target === `${acmeSlug} groq/llm`)).toMatchObject({
      status: "fail",
      detail: expect.stringMatching(/^SF_ERR_PROVIDER_AUTH: /) as unknown,
    });

    await worker.stop();
    const down = await cli(["doctor", "--json"]);
    expect(down.code).toBe(1);
    const report = JSON.parse(down.stdout) as DoctorJson;
    expect(report.ok).toBe(false);
    expect(report.checks.find((c) => c.check === "workers")?.status).toBe("fail");
    expect(report.checks.find((c) => c.check === "providers" && c.target === acmeSlug)?.status).toBe(
      "skipped",
    );
    const human = await cli(["doctor", "--no-providers"]);
    expect(human.code).toBe(1);
    expect(human.stdout).toMatch(/^workers\s+sf_workers\s+fail\s+.*no agent worker is running/m);
    expect(human.stdout).toMatch(/^FAILED: /m);
  });

  it("secrets rotate-key - re-encrypts the platform's and each tenant's secrets with the active key", async () => {
    // Last: the actor host of this file knows only the old key once this has run.
    const newKey = generateMasterKey();
    const env = {
      SF_PLATFORM_DATABASE_URL: sharedServices().databaseUrl,
      SF_PLATFORM_SCHEMA: defaultPlatformSchema(server.url),
      SF_MASTER_KEYS: `test:${TEST_MASTER_KEY},new:${newKey}`,
      SF_MASTER_KEY_ACTIVE: "new",
    };
    const run = await cli(["secrets", "rotate-key", "--json"], { env });
    expect(run.code, run.stderr).toBe(0);
    const report = JSON.parse(run.stdout) as { activeKeyId: string; rotated: number; sources: string[] };
    expect(report).toMatchObject({ activeKeyId: "new", failed: [], remaining: 0 });
    // acme's database credentials (platform) and its groq key (tenant database).
    expect(report.rotated).toBeGreaterThanOrEqual(2);
    expect(report.sources.length).toBeGreaterThanOrEqual(2);
    for (const secret of [newKey, TEST_MASTER_KEY, "wrong-groq-key"])
      expect(run.stdout + run.stderr).not.toContain(secret);
    const again = await cli(["secrets", "rotate-key"], { env });
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toMatch(/^rotated\s+0$/m);
    const noKeys = await cli(["secrets", "rotate-key"], { env: { SF_MASTER_KEYS: "" } });
    expect(noKeys.code).toBe(1);
    expect(noKeys.stderr).toContain("SF_ERR_CONFIG_INVALID");
  });
});
