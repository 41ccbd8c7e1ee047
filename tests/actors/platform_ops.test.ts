import { randomUUID } from "node:crypto";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import type { NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openPlatformStore, PlatformOps } from "../../actors/index.ts";
import type {
  ApiKeysCreateReply,
  ClientDetailView,
  PlatformStore,
  VerifiedApiKey,
} from "../../actors/index.ts";
import { createSubjects, decodeBody, requestReply } from "../../bus/index.ts";
import { NatsTestServer } from "../helpers/nats_server.ts";
import { defaultPlatformSchema, spawnActorHost, testKeyring } from "../helpers/processes.ts";
import type { TestProcess } from "../helpers/processes.ts";
import { sharedServices } from "../helpers/services.ts";

const subjects = createSubjects({ partitions: 16 });
const ACTOR = "admin:ops-test";
const SERVICE_ROLE_KEY = `srk_${randomUUID()}`;

let server: NatsTestServer;
let host: TestProcess;
let nc: NatsConnection;
let platform: PlatformStore;

beforeAll(async () => {
  server = await NatsTestServer.start();
  host = await spawnActorHost({ natsUrl: server.url, hostId: "ops-h1", partitions: 16 });
  nc = await connect({ servers: server.url });
  platform = await openPlatformStore({
    database: {
      kind: "postgres",
      url: sharedServices().databaseUrl,
      schema: defaultPlatformSchema(server.url),
    },
    keyring: testKeyring(),
  });
});

afterAll(async () => {
  await platform?.close();
  await nc?.close();
  await host?.stop();
  await server?.[Symbol.asyncDispose]();
});

async function op<T>(name: string, body: unknown): Promise<T> {
  return (await requestReply<T>(nc, subjects.platformOp(name), body, { timeoutMs: 10_000 })).body;
}

let seq = 0;
async function newClient(): Promise<ClientDetailView> {
  seq += 1;
  return op<ClientDetailView>(PlatformOps.clientsCreate, {
    actor: ACTOR,
    slug: `ops-${server.port}-${seq}`,
    name: `Ops ${seq}`,
  });
}

describe("platform operations", () => {
  it("bodies - a missing actor, an unknown field or a bad value answers SF_ERR_INVALID_ARGUMENT and writes nothing", async () => {
    const slug = `ops-${server.port}-refused`;
    for (const body of [
      { slug, name: "No actor" },
      { actor: "root", slug, name: "Bad actor" },
      { actor: ACTOR, slug, name: "Extra", extra: 1 },
      { actor: ACTOR, slug: "Not A Slug", name: "Bad slug" },
      { actor: ACTOR, slug, name: "Bad status", status: "gone" },
      "not an object",
    ]) {
      await expect(op(PlatformOps.clientsCreate, body), JSON.stringify(body)).rejects.toMatchObject({
        code: "SF_ERR_INVALID_ARGUMENT",
      });
    }
    expect(await platform.findClientBySlug(slug)).toBeNull();
    const client = await newClient();
    await expect(
      op(PlatformOps.clientsSetCredentials, { actor: ACTOR, id: client.id }),
    ).rejects.toMatchObject({
      code: "SF_ERR_INVALID_ARGUMENT",
    });
    await expect(op(PlatformOps.clientsGet, { id: randomUUID() })).rejects.toMatchObject({
      code: "SF_ERR_TENANT_NOT_FOUND",
    });
  });

  it("credentials - stored sealed, shown masked, audited without values, and announced on the SF_EVENTS stream", async () => {
    const client = await newClient();
    const reply = await op<ClientDetailView>(PlatformOps.clientsSetCredentials, {
      actor: ACTOR,
      id: client.id,
      tenant_database: {
        kind: "supabase",
        url: "https://proj.supabase.example",
        serviceRoleKey: SERVICE_ROLE_KEY,
      },
    });
    expect(reply.credentials.tenant_database).toMatchObject({ configured: true, kind: "supabase" });
    expect(JSON.stringify(reply)).not.toContain(SERVICE_ROLE_KEY);
    expect(await platform.getTenantDatabase(client.id)).toMatchObject({ serviceRoleKey: SERVICE_ROLE_KEY });
    const audit = await platform.listAudit({ clientId: client.id });
    expect(audit.map((e) => [e.action, e.actor])).toEqual([
      ["secret.update", ACTOR],
      ["client.create", ACTOR],
    ]);
    expect(JSON.stringify(audit)).not.toContain(SERVICE_ROLE_KEY);
    const jsm = await jetstreamManager(nc);
    const stored = await jsm.streams.getMessage(subjects.streams.events, {
      last_by_subj: subjects.clientEvent(client.id, "credentials"),
    });
    expect(stored).not.toBeNull();
    expect(decodeBody(stored!.data)).toMatchObject({ clientId: client.id, fields: ["database"] });
  });

  it("api-keys-verify - valid keys answer id, client and scopes; unknown, revoked, malformed and suspended-client keys all SF_ERR_UNAUTHENTICATED", async () => {
    const client = await newClient();
    const created = await op<ApiKeysCreateReply>(PlatformOps.apiKeysCreate, {
      actor: ACTOR,
      client_id: client.id,
      scopes: ["agents:read"],
    });
    const verified = await op<VerifiedApiKey>(PlatformOps.apiKeysVerify, { key: created.key });
    expect(verified).toEqual({ keyId: created.api_key.id, clientId: client.id, scopes: ["agents:read"] });
    const other = await newClient();
    // Revoking through another client: not found, and the key stays valid.
    await expect(
      op(PlatformOps.apiKeysRevoke, { actor: ACTOR, client_id: other.id, key_id: created.api_key.id }),
    ).rejects.toMatchObject({ code: "SF_ERR_NOT_FOUND" });
    expect((await op<VerifiedApiKey>(PlatformOps.apiKeysVerify, { key: created.key })).keyId).toBe(
      created.api_key.id,
    );

    await op(PlatformOps.clientsUpdate, { actor: ACTOR, id: client.id, status: "suspended" });
    await expect(op(PlatformOps.apiKeysVerify, { key: created.key })).rejects.toMatchObject({
      code: "SF_ERR_UNAUTHENTICATED",
    });
    await op(PlatformOps.clientsUpdate, { actor: ACTOR, id: client.id, status: "active" });
    await op(PlatformOps.apiKeysRevoke, { actor: ACTOR, client_id: client.id, key_id: created.api_key.id });
    for (const key of [created.key, `${created.key.slice(0, -1)}A`, "sk_x", 42, undefined]) {
      await expect(op(PlatformOps.apiKeysVerify, { key }), String(key).slice(0, 8)).rejects.toMatchObject({
        code: "SF_ERR_UNAUTHENTICATED",
      });
    }
    const actions = (await platform.listAudit({ clientId: client.id })).map((e) => e.action);
    expect(actions).toEqual(expect.arrayContaining(["api_key.create", "api_key.revoke", "client.update"]));
  });

  it("clients-delete - removes the client and its keys, keeps an audit entry and announces it", async () => {
    const client = await newClient();
    const key = await op<ApiKeysCreateReply>(PlatformOps.apiKeysCreate, {
      actor: ACTOR,
      client_id: client.id,
    });
    expect(await op(PlatformOps.clientsDelete, { actor: ACTOR, id: client.id })).toEqual({
      id: client.id,
      deleted: true,
    });
    await expect(op(PlatformOps.clientsGet, { id: client.id })).rejects.toMatchObject({
      code: "SF_ERR_TENANT_NOT_FOUND",
    });
    await expect(op(PlatformOps.apiKeysVerify, { key: key.key })).rejects.toMatchObject({
      code: "SF_ERR_UNAUTHENTICATED",
    });
    const audit = await platform.listAudit({ limit: 100 });
    expect(audit.find((e) => e.action === "client.delete" && e.target === client.id)?.actor).toBe(ACTOR);
    const jsm = await jetstreamManager(nc);
    const stored = await jsm.streams.getMessage(subjects.streams.events, {
      last_by_subj: subjects.clientEvent(client.id, "credentials"),
    });
    expect(decodeBody(stored!.data)).toMatchObject({ clientId: client.id, reason: "deleted" });
  });

  it("tenant ops - agents-create refuses unknown fields and a missing actor with SF_ERR_INVALID_ARGUMENT", async () => {
    const client = await newClient();
    const call = (op: string, body: unknown) =>
      requestReply(nc, subjects.tenantOp(client.id, op), body, { tenant: client.id, timeoutMs: 10_000 });
    await expect(call("agents-create", { agent: { slug: "a", name: "A" } })).rejects.toMatchObject({
      code: "SF_ERR_INVALID_ARGUMENT",
    });
    await expect(
      call("agents-create", { actor: ACTOR, agent: { slug: "a", name: "A", secret: "x" } }),
    ).rejects.toMatchObject({
      code: "SF_ERR_INVALID_ARGUMENT",
    });
    await expect(call("agents-update", { actor: ACTOR, slug: "a", patch: {} })).rejects.toMatchObject({
      code: "SF_ERR_INVALID_ARGUMENT",
    });
    // A well-formed request for a client without a database says so.
    await expect(
      call("agents-create", { actor: ACTOR, agent: { slug: "a", name: "A" } }),
    ).rejects.toMatchObject({
      code: "SF_ERR_TENANT_DATABASE_NOT_CONFIGURED",
    });
  });
});
