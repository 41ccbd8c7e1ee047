/**
 * Console sessions and the email + password login: sessions in the NATS KV bucket expire when
 * idle and after their maximum age (clock under the test's control) and end on every gateway at
 * logout; the gateway logs an admin in through Supabase Auth's password grant (a GoTrue
 * stand-in, tests/fixtures/supabase) and refuses wrong passwords and non-admin users alike.
 */
import { randomBytes } from "node:crypto";
import { connect } from "@nats-io/transport-node";
import type { NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AdminSessions } from "../../gateway/index.ts";
import { SupabaseAuthFixture } from "../fixtures/supabase/auth_fixture.ts";
import { spawnGateway } from "../helpers/gateway_process.ts";
import type { GatewayProcess } from "../helpers/gateway_process.ts";
import { NatsTestServer } from "../helpers/nats_server.ts";

let server: NatsTestServer;
let nc: NatsConnection;

beforeAll(async () => {
  server = await NatsTestServer.start();
  nc = await connect({ servers: server.url });
});

afterAll(async () => {
  await nc?.close();
  await server?.[Symbol.asyncDispose]();
});

describe("console sessions (NATS KV)", () => {
  const MIN = 60_000;

  it("expires a session left idle, and one past its maximum age however busy", async () => {
    let now = Date.now();
    const sessions = new AdminSessions({
      nc,
      bucket: "sf_admin_sessions_t1",
      idleTimeoutMs: 30 * MIN,
      maxSessionMs: 120 * MIN,
      now: () => now,
    });
    const idle = await sessions.create("admin:a", "token");
    now += 29 * MIN;
    expect((await sessions.get(idle.id))?.actor).toBe("admin:a");
    // The read moved its last use forward: another 29 minutes is still within the idle time.
    now += 29 * MIN;
    expect(await sessions.get(idle.id)).toBeDefined();
    now += 31 * MIN;
    expect(await sessions.get(idle.id)).toBeUndefined();

    const busy = await sessions.create("admin:b", "token");
    for (let i = 0; i < 4; i += 1) {
      now += 25 * MIN;
      expect(await sessions.get(busy.id)).toBeDefined();
    }
    now += 25 * MIN; // 125 minutes after login
    expect(await sessions.get(busy.id)).toBeUndefined();
  });

  it("ends a session for every gateway at once, and ignores ids it never issued", async () => {
    const a = new AdminSessions({
      nc,
      bucket: "sf_admin_sessions_t2",
      idleTimeoutMs: 30 * MIN,
      maxSessionMs: 60 * MIN,
    });
    const b = new AdminSessions({
      nc,
      bucket: "sf_admin_sessions_t2",
      idleTimeoutMs: 30 * MIN,
      maxSessionMs: 60 * MIN,
    });
    const s = await a.create("admin:x", "jwt");
    expect((await b.get(s.id))?.csrf).toBe(s.csrf);
    await b.destroy(s.id);
    expect(await a.get(s.id)).toBeUndefined();
    expect(await a.get(randomBytes(32).toString("base64url"))).toBeUndefined();
    expect(await a.get("not a session id")).toBeUndefined();
    expect(await a.get(undefined)).toBeUndefined();
  });
});

describe("console login through Supabase Auth", () => {
  const jwtSecret = `jwt_${randomBytes(32).toString("hex")}`;
  let auth: SupabaseAuthFixture;
  let gw: GatewayProcess;

  beforeAll(async () => {
    auth = await new SupabaseAuthFixture(jwtSecret, [
      { email: "ops@forge.example", password: "correct horse battery", role: "sf_admin", id: "u-admin-1" },
      {
        email: "user@forge.example",
        password: "just a user password",
        role: "authenticated",
        id: "u-user-1",
      },
    ]).start();
    gw = await spawnGateway({
      natsUrl: server.url,
      extraEnv: {
        SF_JWT_SECRET: jwtSecret,
        SF_SUPABASE_URL: auth.url,
        SF_SUPABASE_ANON_KEY: auth.anonKey,
      },
    });
  });

  afterAll(async () => {
    await gw?.proc.stop();
    await auth?.close();
  });

  const post = (form: Record<string, string>) =>
    fetch(`${gw.base}/admin/login`, {
      method: "POST",
      redirect: "manual",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams(form).toString(),
    });

  it("offers the email and password form", async () => {
    const page = await (await fetch(`${gw.base}/admin/login`)).text();
    expect(page).toContain('name="email"');
    expect(page).toContain('name="password"');
  });

  it("logs an admin in with email and password, and the session names the user", async () => {
    const res = await post({ email: "ops@forge.example", password: "correct horse battery" });
    expect(res.status).toBe(303);
    const cookie = (res.headers.get("set-cookie") ?? "").split(";")[0] ?? "";
    expect(cookie).toMatch(/^sf_admin_session=/);
    expect(auth.calls.at(-1)).toEqual({ path: "/auth/v1/token", apikey: auth.anonKey });
    const sessions = new AdminSessions({
      nc,
      bucket: "sf_admin_sessions",
      idleTimeoutMs: 30 * 60_000,
      maxSessionMs: 12 * 3_600_000,
    });
    const session = await sessions.get(decodeURIComponent(cookie.split("=")[1] ?? ""));
    expect(session?.actor).toBe("admin:u-admin-1");
    expect(session?.via).toBe("supabase");
  });

  it("refuses a wrong password and a user who is not an admin with the same answer", async () => {
    const wrong = await post({ email: "ops@forge.example", password: "wrong password" });
    const user = await post({ email: "user@forge.example", password: "just a user password" });
    for (const res of [wrong, user]) {
      expect(res.status).toBe(401);
      expect(res.headers.get("set-cookie")).toBeNull();
      const text = await res.text();
      expect(text).toContain("Login failed: the credentials are wrong or not an administrator&#39;s.");
      expect(text).not.toContain("just a user password");
    }
  });
});
