// Closing a voice session in bounded time, and without leaving anything behind. First the close's
// deadlines with an agent runtime that never finishes closing; then real sessions, in this
// process, in rooms of the shared livekit-server (speech agent on the provider fixture): users who
// leave at once and a room deleted under the agent, after which no session object survives a full
// garbage collection.
import { randomUUID } from "node:crypto";
import { Writable } from "node:stream";
import { queryObjects } from "node:v8";
import { voice } from "@livekit/agents";
import { ParticipantKind, Room, RoomEvent } from "@livekit/rtc-node";
import type { RemoteParticipant } from "@livekit/rtc-node";
import { RoomServiceClient } from "livekit-server-sdk";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mintAgentToken, mintUserToken } from "../../actors/index.ts";
import {
  closeAgentRuntime,
  listRoomUsers,
  releaseClosedRoom,
  resolveProviders,
  settleWithin,
  VoiceSession,
} from "../../agent-worker/index.ts";
import type { AgentRuntime, SessionEndReason } from "../../agent-worker/index.ts";
import { waitFor } from "../helpers/deadline.ts";
import { sharedServices } from "../helpers/services.ts";
import { fixtureVoiceSettings } from "../helpers/stack.ts";
import { startProviderFixture } from "../fixtures/providers/provider_fixture.ts";
import type { ProviderFixture } from "../fixtures/providers/provider_fixture.ts";

const lk = sharedServices();
const credentials = { url: lk.livekitUrl, apiKey: lk.livekitApiKey, apiSecret: lk.livekitApiSecret };
const CLOSE_TIMEOUT_MS = 3000;
const DRAIN_TIMEOUT_MS = 3000;

/** A logger whose lines the test reads. */
function capturedLog(): { log: pino.Logger; lines: string[] } {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(...chunk.toString("utf8").split("\n").filter(Boolean));
      done();
    },
  });
  return { log: pino({ level: "debug" }, sink), lines };
}

function messages(lines: string[]): string[] {
  return lines.map((l) => (JSON.parse(l) as { msg: string }).msg);
}

/** Rejects after `ms`: what a test waits on must end by itself well before. */
function within<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} took more than ${ms} ms`)), ms);
  });
  return Promise.race([work, late]).finally(() => clearTimeout(timer));
}

describe("voice - closing an agent session has deadlines", () => {
  const never = new Promise<void>(() => undefined);

  it("a close that never finishes is left behind after the drain and close deadlines", async () => {
    const { log, lines } = capturedLog();
    const calls: boolean[] = [];
    const runtime: AgentRuntime = {
      close: ({ drain }) => {
        calls.push(drain);
        return never;
      },
    };
    const started = performance.now();
    const outcome = await closeAgentRuntime(runtime, {
      drain: true,
      drainTimeoutMs: 50,
      closeTimeoutMs: 50,
      log,
    });
    expect(outcome).toBe("abandoned");
    expect(performance.now() - started).toBeLessThan(1000);
    expect(calls).toEqual([true, false]);
    expect(messages(lines)).toEqual([
      "the agent session did not finish in time; closing it",
      "the agent session did not close in time; leaving it behind",
    ]);
  });

  it("a drain that hangs is cut short by the close without drain", async () => {
    const { log } = capturedLog();
    const runtime: AgentRuntime = {
      close: ({ drain }) => (drain ? never : Promise.resolve()),
    };
    expect(
      await closeAgentRuntime(runtime, { drain: true, drainTimeoutMs: 50, closeTimeoutMs: 50, log }),
    ).toBe("cut_short");
    expect(
      await closeAgentRuntime(runtime, { drain: false, drainTimeoutMs: 50, closeTimeoutMs: 50, log }),
    ).toBe("closed");
  });

  it("a close that fails, before or after its deadline, is logged and never thrown", async () => {
    const { log, lines } = capturedLog();
    const runtime: AgentRuntime = { close: () => Promise.reject(new Error("the library broke")) };
    expect(
      await closeAgentRuntime(runtime, { drain: false, drainTimeoutMs: 50, closeTimeoutMs: 50, log }),
    ).toBe("closed");
    expect(messages(lines)).toContain("closing the agent session failed");

    let fail: (err: Error) => void = () => undefined;
    const failedLater: unknown[] = [];
    const work = new Promise<void>((_resolve, reject) => {
      fail = reject;
    });
    expect(await settleWithin(work, 20, (err) => failedLater.push(err))).toBe("late");
    fail(new Error("too late"));
    await expect(work).rejects.toThrow("too late");
    expect(failedLater).toHaveLength(1);
  });
});

describe("voice - real sessions end and leave nothing behind", () => {
  let fixture: ProviderFixture;

  beforeAll(async () => {
    fixture = await startProviderFixture();
  });
  afterAll(async () => {
    await fixture[Symbol.asyncDispose]();
  });

  function rooms(): RoomServiceClient {
    return new RoomServiceClient(lk.livekitUrl.replace(/^ws/, "http"), lk.livekitApiKey, lk.livekitApiSecret);
  }

  /**
   * A user joins a new room, the agent joins it (`VoiceSession`, as the voice job runs it), then
   * `end` ends the session one way or another; resolves with how it ended and the session's log.
   */
  async function session(
    end: (ctx: { user: Room; roomName: string }) => Promise<void>,
  ): Promise<{ reason: SessionEndReason; lines: string[] }> {
    const roomName = `sf-test-close-${randomUUID().slice(0, 8)}`;
    const user = new Room();
    const agentSeen = new Promise<void>((resolve) => {
      user.on(RoomEvent.ParticipantConnected, (p: RemoteParticipant) => {
        if (p.kind === ParticipantKind.AGENT) resolve();
      });
    });
    const userToken = await mintUserToken(credentials, roomName, "close-user");
    await user.connect(lk.livekitUrl, userToken.token, { autoSubscribe: true, dynacast: false });
    const agent = await mintAgentToken(credentials, roomName, "closer", randomUUID());
    const livekit = { url: lk.livekitUrl, room_name: roomName, agent_name: "sidekick-agent", ...agent };
    const clients = resolveProviders(
      {
        kinds: ["llm", "stt", "tts"],
        voiceSettings: fixtureVoiceSettings(),
      },
      { ...fixture.keys },
      fixture.endpoints(),
    );
    const { log, lines } = capturedLog();
    const s = new VoiceSession({
      livekit,
      ...clients,
      systemPrompt: null,
      history: [],
      windowTurns: 10,
      record: () => Promise.resolve(),
      onFirstAnswer: () => Promise.resolve(),
      log,
      emptyRoomTimeoutMs: 5000,
      signal: new AbortController().signal,
      presence: () =>
        listRoomUsers({ url: livekit.url, roomName, token: livekit.token, selfIdentity: livekit.identity }),
      presencePollMs: 2000,
      drainTimeoutMs: DRAIN_TIMEOUT_MS,
      closeTimeoutMs: CLOSE_TIMEOUT_MS,
    });
    try {
      await within(s.join(), 20_000, "joining");
    } catch (err) {
      await s.close();
      await user.disconnect();
      throw err;
    }
    const running = s.run();
    try {
      await within(agentSeen, 10_000, "the agent appearing to the user");
      await end({ user, roomName });
    } finally {
      if (user.isConnected) await user.disconnect();
      // The user's Room has the SDK's leak too when the server closed it.
      else releaseClosedRoom(user);
    }
    // The session's own bounds are drain + close + leaving the room; it must end well within.
    const reason = await within(running, DRAIN_TIMEOUT_MS + 2 * CLOSE_TIMEOUT_MS + 3000, "the session's end");
    return { reason, lines };
  }

  function closedCleanly(lines: string[]): void {
    const said = messages(lines);
    expect(said).toContain("agent session closed");
    expect(said.filter((m) => /did not (finish|close) in time/.test(m))).toEqual([]);
    // The room's FFI handle is disposed by the session, once, not left to the garbage collector.
    expect(said.filter((m) => m === "room handle released")).toHaveLength(1);
  }

  it("users who leave at once, and a room deleted under the agent: each session ends by itself; no session, agent session or room survives", async () => {
    for (let i = 0; i < 6; i++) {
      const { reason, lines } = await session(({ user }) => user.disconnect());
      expect(reason).toBe("last_user_left");
      closedCleanly(lines);
    }
    const deleted = await session(({ roomName }) => rooms().deleteRoom(roomName));
    expect(deleted.reason).toBe("room_closed");
    closedCleanly(deleted.lines);

    // Nothing of the 7 sessions is left once the work they scheduled ran: counted after a full
    // garbage collection (queryObjects runs one).
    const left = (): Record<string, number> => ({
      VoiceSession: queryObjects(VoiceSession, { format: "count" }),
      AgentSession: queryObjects(voice.AgentSession, { format: "count" }),
      Room: queryObjects(Room, { format: "count" }),
    });
    let last = left();
    await waitFor(
      "every session to be collected",
      () => {
        last = left();
        return Object.values(last).every((n) => n === 0);
      },
      { timeoutMs: 5000, intervalMs: 250 },
    ).catch((err: unknown) => {
      throw new Error(`${String(err)}: ${JSON.stringify(last)}`);
    });
  }, 120_000);
});
