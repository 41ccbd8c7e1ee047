import { connect } from "@nats-io/transport-node";
import { jetstream } from "@nats-io/jetstream";
import { describe, expect, it } from "vitest";
import { createSubjects, requestReply } from "../../bus/index.ts";
import { openPlatformStore, openTenantStore, provisionTenantDatabase } from "../../actors/index.ts";
import type { AgentRecord, PlatformHealth, TenantDatabaseConfig } from "../../actors/index.ts";
import { waitFor } from "../helpers/deadline.ts";
import { NatsTestServer } from "../helpers/nats_server.ts";
import { defaultPlatformSchema, spawnActorHost, testKeyring } from "../helpers/processes.ts";
import { sharedServices } from "../helpers/services.ts";

const subjects = createSubjects({ partitions: 16 });

describe("tenant actor and the data layer", () => {
  it("platform - any host answers platform health with the platform database's state", async () => {
    await using server = await NatsTestServer.start();
    await using host = await spawnActorHost({ natsUrl: server.url, hostId: "p1", partitions: 16 });
    const nc = await connect({ servers: server.url });
    const reply = await requestReply<PlatformHealth>(nc, subjects.platformOp("health"), {});
    expect(reply.body.platform_db.ok).toBe(true);
    expect(reply.body.platform_db.latency_ms).toBeGreaterThanOrEqual(0);
    await expect(requestReply(nc, subjects.platformOp("no-such-op"), {})).rejects.toMatchObject({
      code: "SF_ERR_UNKNOWN_OP",
    });
    await nc.close();
    void host;
  });

  it("credentials - the actor opens the tenant's database from its stored credentials and reopens it when they change", async () => {
    await using server = await NatsTestServer.start();
    await using host = await spawnActorHost({ natsUrl: server.url, hostId: "d1", partitions: 16 });
    const keyring = testKeyring();
    const url = sharedServices().databaseUrl;
    const platform = await openPlatformStore({
      database: { kind: "postgres", url, schema: defaultPlatformSchema(server.url) },
      keyring,
    });
    const nc = await connect({ servers: server.url });
    try {
      const client = await platform.createClient({ slug: `acme-${server.port}`, name: "Acme" });
      const suffix = `${server.port}`;
      const first: TenantDatabaseConfig = { kind: "postgres", url, schema: `tenant_a_${suffix}` };
      const second: TenantDatabaseConfig = { kind: "postgres", url, schema: `tenant_b_${suffix}` };
      for (const [database, slug] of [
        [first, "first-agent"],
        [second, "second-agent"],
      ] as const) {
        await provisionTenantDatabase({ tenantId: client.id, database, vector: "optional" });
        const store = await openTenantStore({ tenantId: client.id, database, keyring });
        await store.createAgent({ slug, name: slug, systemPrompt: "You help." });
        await store.close();
      }
      await platform.setTenantDatabase(client.id, first);

      const list = async () =>
        (await requestReply<AgentRecord[]>(nc, subjects.tenantOp(client.id, "agents-list"), {})).body.map(
          (a) => a.slug,
        );
      expect(await list()).toEqual(["first-agent"]);

      // The platform changes the tenant's database and announces it on SF_EVENTS.
      await platform.setTenantDatabase(client.id, second);
      await jetstream(nc).publish(subjects.clientEvent(client.id, "credentials"));
      await waitFor("the actor to read the tenant's new database", async () =>
        (await list())[0] === "second-agent" ? true : undefined,
      );
      const agent = await requestReply<AgentRecord>(nc, subjects.tenantOp(client.id, "agent-get"), {
        slug: "second-agent",
      });
      expect(agent.body.name).toBe("second-agent");
      await expect(
        requestReply(nc, subjects.tenantOp(client.id, "agent-get"), { slug: "first-agent" }),
      ).rejects.toMatchObject({ code: "SF_ERR_AGENT_NOT_FOUND" });
    } finally {
      await nc.close();
      await platform.close();
    }
    void host;
  });
});
