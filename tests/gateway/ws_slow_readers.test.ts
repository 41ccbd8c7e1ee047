/**
 * WebSocket clients that never read: their long streamed replies must not grow the gateway's
 * memory without bound. Raw TCP clients open /ws, keep asking for long replies and never read a
 * byte; the gateway closes each one once more than SF_WS_MAX_BACKPRESSURE_BYTES waits for it,
 * while a normal client is still served in full.
 *
 * The memory bound. The same traffic is first sent to readers that keep up; the highest resident
 * size the gateway reaches then is what that traffic needs (long replies are large strings, and
 * V8 keeps the pages it grew into). With slow readers, the gateway may only go above that by what
 * the limit lets each of them hold: up to the limit when a frame is sent, plus that frame (at most
 * a whole reply), which uWS keeps under twice the limit — 2 × limit + one reply per slow socket —
 * plus a fixed allowance for heap and allocator noise. A gateway that kept what a slow reader does
 * not take would instead grow by all that is sent to it beyond the kernel's socket buffers: each
 * slow socket here asks for a long reply every 100 ms, several MiB a second. Measured on a 2-core
 * machine: 5–45 MiB above the warm-up mark with the limit (bound ≈ 84 MiB); with the limit lifted
 * to 256 MiB, 170 MiB after 10 s and still climbing. (A closed slow socket keeps its unsent bytes
 * in the kernel, about 4 MiB here, until uWS drops the connection some seconds later.)
 */
import { randomBytes } from "node:crypto";
import { readFile } from "node:fs/promises";
import { connect as tcpConnect } from "node:net";
import type { Socket } from "node:net";
import { describe, expect, it } from "vitest";
import type WebSocket from "ws";
import type { TenantStore } from "../../actors/index.ts";
import { waitFor } from "../helpers/deadline.ts";
import { NatsTestServer } from "../helpers/nats_server.ts";
import { addHelperAgent, createPostgresTenant, openTestPlatform, startChatStack } from "../helpers/stack.ts";
import { openWsClient } from "../helpers/ws_client.ts";
import type { WsClient } from "../helpers/ws_client.ts";
import { startProviderFixture } from "../fixtures/providers/provider_fixture.ts";

const P = 16;
/** Slow clients (and, in the warm-up, readers that keep up). */
const CLIENTS = 6;
/** Replies one connection may wait on at once (SF_WS_MAX_IN_FLIGHT). */
const IN_FLIGHT = 8;
/** The gateway's per-connection limit (SF_WS_MAX_BACKPRESSURE_BYTES). */
const LIMIT = 256 * 1024;
/** A reply: TOKENS words of WORD characters (a turn records at most 200k characters). */
const TOKENS = 95;
const WORD = 2000;
const REPLY_BYTES = TOKENS * (WORD + 1);
/** Every client asks for a long reply this often (past IN_FLIGHT it gets SF_ERR_OVERLOADED). */
const ASK_EVERY_MS = 100;
/** Asks of each warm-up reader: about as many as a slow socket makes before it is closed. */
const WARM_UP_ASKS = 30;
/** Allocator and heap slack on top of what the limit lets slow sockets hold. */
const SLACK_BYTES = 80 * 1024 * 1024;

function longReply(seed: string): string {
  return Array.from({ length: TOKENS }, (_, i) => `${seed}${i}`.padEnd(WORD, "x")).join(" ");
}

/** A masked client text frame (RFC 6455 5.2) of less than 64 KiB. */
function textFrame(text: string): Buffer {
  const payload = Buffer.from(text, "utf8");
  const mask = randomBytes(4);
  const len = payload.length;
  const head =
    len < 126
      ? Buffer.from([0x81, 0x80 | len])
      : Buffer.from([0x81, 0x80 | 126, (len >> 8) & 0xff, len & 0xff]);
  const body = Buffer.alloc(len);
  for (let i = 0; i < len; i += 1) body[i] = (payload[i] as number) ^ (mask[i % 4] as number);
  return Buffer.concat([head, mask, body]);
}

/** Opens /ws over raw TCP, reads only the 101 answer, then never reads again. */
function slowReader(port: number, key: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = tcpConnect(port, "127.0.0.1");
    let head = Buffer.alloc(0);
    const onData = (chunk: Buffer): void => {
      head = Buffer.concat([head, chunk]);
      if (!head.includes("\r\n\r\n")) return;
      socket.off("data", onData);
      socket.pause();
      if (!head.toString("latin1").startsWith("HTTP/1.1 101")) reject(new Error(head.toString("latin1")));
      else resolve(socket);
    };
    socket.on("data", onData);
    socket.once("error", reject);
    socket.write(
      `GET /ws?token=${encodeURIComponent(key)} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n` +
        `Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n` +
        `Sec-WebSocket-Key: ${randomBytes(16).toString("base64")}\r\n\r\n`,
    );
  });
}

async function residentBytes(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, "utf8");
  return Number(/^VmRSS:\s+(\d+)\s+kB/m.exec(status)?.[1]) * 1024;
}

async function metric(base: string, name: string): Promise<number> {
  const text = await (await fetch(`${base}/metrics`)).text();
  return Number(new RegExp(`^${name} (\\d+(?:\\.\\d+)?)`, "m").exec(text)?.[1] ?? "NaN");
}

interface Frame {
  type: string;
  text?: string;
  code?: string;
}

/** A WebSocket client that reads everything. */
const reader = (url: string): Promise<WsClient<Frame>> => openWsClient<Frame>(url);

const ask = (text: string): string => JSON.stringify({ type: "message", agent_slug: "helper", text });
const finals = (frames: Frame[]): Frame[] => frames.filter((f) => f.type === "message" || f.type === "error");

describe("websocket slow readers", () => {
  it("ws - clients that never read are closed at the backpressure limit, the gateway's memory stays within the bound, and a normal client is served throughout", async () => {
    await using server = await NatsTestServer.start();
    await using fixture = await startProviderFixture({ tokenDelayMs: 2 });
    await using stack = await startChatStack({
      natsUrl: server.url,
      partitions: P,
      fixture,
      name: "slow",
      host: { tenantMaxJobs: 1000, claimTimeoutMs: 60_000 },
      workerSlots: 64,
      maxBodyBytes: 64 * 1024,
      gatewayEnv: {
        SF_GATEWAY_TRIGGER_TIMEOUT_MS: "60000",
        SF_GATEWAY_REPLY_TIMEOUT_MS: "60000",
        SF_WS_MAX_BACKPRESSURE_BYTES: String(LIMIT),
        SF_WS_MAX_IN_FLIGHT: String(IN_FLIGHT),
      },
    });
    const { gw } = stack;
    const platform = await openTestPlatform(server.url);
    const stores: TenantStore[] = [];
    /** A tenant with the long-replying agent; its API key. */
    const tenant = async (slug: string): Promise<string> => {
      const t = await createPostgresTenant(platform, {
        slug: `${slug}-${server.port}`,
        name: slug,
        schema: `${slug}_${server.port}`,
      });
      stores.push(t.store);
      await addHelperAgent(t.store, fixture);
      return (await platform.createApiKey({ clientId: t.id, name: "ws" })).secret;
    };
    const sockets: Socket[] = [];
    const readers: WebSocket[] = [];
    const sampler = { max: 0, stop: false };
    let asking: ReturnType<typeof setInterval> | undefined;
    try {
      fixture.setChatResponder((turn) => longReply(turn.messages.at(-1)?.content ?? "r"));
      // The slow readers' tenant, and another for the normal client: the slow tenant's own actor
      // and quota are busy with its jobs by design; what is under test is the shared gateway.
      const key = await tenant("slow");
      const wsBase = `${gw.base.replace("http", "ws")}/ws?token=`;
      const normal = await reader(`${wsBase}${encodeURIComponent(await tenant("normal"))}`);
      readers.push(normal.ws);
      /** One message from the normal client: "whole reply" when its reply came in full. */
      const exchange = async (text: string): Promise<string> => {
        normal.frames.length = 0;
        normal.ws.send(ask(text));
        const [final] = await waitFor(
          `the normal client's reply to ${text}`,
          () => {
            const done = finals(normal.frames);
            return done.length > 0 ? done : undefined;
          },
          { timeoutMs: 60_000 },
        );
        if (final?.type === "error") return `error ${final.code ?? ""}`;
        return final?.text === longReply(text)
          ? "whole reply"
          : `a reply of ${final?.text?.length ?? 0} chars`;
      };
      expect(await exchange("first")).toBe("whole reply");

      // Warm-up: the same traffic to readers that keep up.
      const sampling = (async () => {
        while (!sampler.stop) {
          sampler.max = Math.max(sampler.max, await residentBytes(gw.proc.pid));
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
      })();
      const fast = await Promise.all(
        Array.from({ length: CLIENTS }, () => reader(`${wsBase}${encodeURIComponent(key)}`)),
      );
      readers.push(...fast.map((f) => f.ws));
      for (let n = 0; n < WARM_UP_ASKS; n += 1) {
        fast.forEach((f, i) => f.ws.send(ask(`w${n}c${i}`)));
        await new Promise((resolve) => setTimeout(resolve, ASK_EVERY_MS));
      }
      await waitFor(
        "the warm-up replies",
        () => fast.every((f) => finals(f.frames).length === WARM_UP_ASKS),
        {
          timeoutMs: 90_000,
          intervalMs: 100,
        },
      );
      const warmFinals = fast.flatMap((f) => finals(f.frames));
      const warmReplies = warmFinals.filter((f) => f.type === "message").length;
      // Past IN_FLIGHT a reader is told SF_ERR_OVERLOADED; nothing else may go wrong.
      expect(warmFinals.filter((f) => f.type === "error" && f.code !== "SF_ERR_OVERLOADED")).toEqual([]);
      expect(warmReplies).toBeGreaterThanOrEqual(CLIENTS * IN_FLIGHT);
      for (const f of fast) f.ws.close(1000);
      await waitFor(
        "the warm-up readers gone",
        async () => (await metric(gw.base, "sf_gateway_ws_connections")) === 1,
      );
      // The high-water mark of the traffic with readers that keep up.
      const baseline = Math.max(sampler.max, await residentBytes(gw.proc.pid));
      sampler.max = 0;

      // Slow readers keep asking the same way until the gateway has closed every one of them.
      for (let i = 0; i < CLIENTS; i += 1) sockets.push(await slowReader(gw.port, key));
      await waitFor(
        "every slow socket open",
        async () => (await metric(gw.base, "sf_gateway_ws_connections")) === CLIENTS + 1,
      );
      const cutLines = (): string[] =>
        gw.proc.lines.filter((l) => l.includes("slow websocket reader closed"));
      let asked = 0;
      asking = setInterval(() => {
        asked += 1;
        sockets.forEach((s, i) => {
          if (!s.destroyed) s.write(textFrame(ask(`s${i}n${asked}`)));
        });
      }, ASK_EVERY_MS);
      for (const s of sockets) s.on("error", () => s.destroy());
      // While the slow readers hold their replies, the normal client is served in full.
      expect(await exchange("while-slow")).toBe("whole reply");
      await waitFor("every slow reader closed", () => cutLines().length >= CLIENTS, {
        timeoutMs: 90_000,
        intervalMs: 100,
      });
      clearInterval(asking);
      await waitFor(
        "only the normal client left",
        async () => (await metric(gw.base, "sf_gateway_ws_connections")) === 1,
      );
      expect(await exchange("after-slow")).toBe("whole reply");
      sampler.stop = true;
      await sampling;

      // Each was closed with no more than the limit and one frame waiting for it.
      const buffered = cutLines().map((l) => (JSON.parse(l) as { buffered: number }).buffered);
      expect(buffered).toHaveLength(CLIENTS);
      for (const b of buffered) expect(b).toBeLessThanOrEqual(LIMIT + REPLY_BYTES + 1024);
      const bound = CLIENTS * (2 * LIMIT + REPLY_BYTES) + SLACK_BYTES;
      const growth = sampler.max - baseline;
      console.log(
        JSON.stringify({
          baselineMiB: +(baseline / 2 ** 20).toFixed(1),
          maxMiB: +(sampler.max / 2 ** 20).toFixed(1),
          growthMiB: +(growth / 2 ** 20).toFixed(1),
          boundMiB: +(bound / 2 ** 20).toFixed(1),
          askedPerSocket: asked,
          warmReplies,
        }),
      );
      expect(growth).toBeLessThan(bound);
    } finally {
      if (asking !== undefined) clearInterval(asking);
      sampler.stop = true;
      for (const s of sockets) s.destroy();
      for (const ws of readers) ws.terminate();
      for (const store of stores) await store.close();
      await platform.close();
    }
  }, 300_000);
});
