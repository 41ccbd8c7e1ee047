// Voice with several users in one room, end to end: a real nats-server, the shared dev
// livekit-server, a real actor host and a real agent worker process with the provider fixture.
// Two users join (the first keeps an open, silent microphone); the SECOND one speaks and is
// answered aloud, the turn recorded under their identity; the first leaves and the second is still
// heard and answered; the agent leaves only when the last user has left.
import { randomUUID } from "node:crypto";
import { AudioFrame, Room } from "@livekit/rtc-node";
import type { AudioSource } from "@livekit/rtc-node";
import { AccessToken } from "livekit-server-sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { TranscriptRecord, TriggerReply } from "../../actors/index.ts";
import { createSubjects, requestReply } from "../../bus/index.ts";
import { waitFor } from "../helpers/deadline.ts";
import {
  countLoudFrames,
  publishMicrophone,
  speakTone,
  waitForParticipantToLeave,
} from "../helpers/livekit.ts";
import { sharedServices } from "../helpers/services.ts";
import { addVoiceAgent, startVoiceStack } from "../helpers/stack.ts";
import type { VoiceStack } from "../helpers/stack.ts";

const P = 16;
const RATE = 16_000;
const FRAME = 320; // 20 ms
const subjects = createSubjects({ partitions: P });
const lk = sharedServices();

let env: VoiceStack;

beforeAll(async () => {
  env = await startVoiceStack({ subjects, tenant: "multi", name: "multi" });
  await addVoiceAgent(env.tenant.store, env.fixture, {
    slug: "listener",
    name: "Listener",
    systemPrompt: "You speak.",
  });
}, 60_000);

afterAll(async () => {
  await env?.[Symbol.asyncDispose]();
}, 60_000);

/** The conversation's transcript rows, once it holds at least `rows` of them. */
function turnsRecorded(what: string, conversationId: string, rows: number): Promise<TranscriptRecord[]> {
  return waitFor(what, async () => {
    const found = await env.tenant.store.listTranscripts(conversationId);
    return found.length >= rows ? found : undefined;
  });
}

/** A user in the room, with a microphone, what the agent said (text and loud audio frames) and the transcripts published for each identity. */
interface User {
  identity: string;
  room: Room;
  mic: AudioSource;
  replies: string[];
  transcripts: { from: string; text: string }[];
  agentLoudFrames: () => number;
}

async function join(url: string, token: string, identity: string): Promise<User> {
  const room = new Room();
  const replies: string[] = [];
  const transcripts: { from: string; text: string }[] = [];
  room.registerTextStreamHandler("lk.transcription", (reader, from) => {
    void reader.readAll().then(
      (text) => {
        if (from.identity.startsWith("agent-")) replies.push(text);
        else transcripts.push({ from: from.identity, text });
      },
      (err: unknown) => replies.push(`read failed: ${String(err)}`),
    );
  });
  const agentLoudFrames = countLoudFrames(
    room,
    (from) => from.startsWith("agent-"),
    (error) => replies.push(error),
  );
  await room.connect(url, token, { autoSubscribe: true, dynacast: false });
  const mic = await publishMicrophone(room);
  return { identity, room, mic, replies, transcripts, agentLoudFrames };
}

/** A microphone that is open and silent until `stop()` (a participant who listens). */
function keepSilent(mic: AudioSource): { stop: () => Promise<void> } {
  let stopped = false;
  const running = (async () => {
    const silence = new Int16Array(FRAME);
    while (!stopped) await mic.captureFrame(new AudioFrame(silence, RATE, 1, FRAME));
  })();
  return {
    stop: async () => {
      stopped = true;
      await running;
    },
  };
}

describe("voice - several users in one room", () => {
  it("the second user is heard and answered, still after the first left; the turns name who spoke; the agent leaves after the last user", async () => {
    const name = `sf-test-multi-${randomUUID().slice(0, 8)}`;
    const reply = (
      await requestReply<TriggerReply>(
        env.nc,
        subjects.tenantOp(env.tenant.id, "trigger"),
        { agent_slug: "listener", mode: "voice", user_id: "caller-1", room_name: name },
        { tenant: env.tenant.id, timeoutMs: 20_000 },
      )
    ).body;
    const voice = reply.voice;
    if (voice === undefined) throw new Error("the trigger reply has no voice info");

    // The caller joins first, with an open (silent) microphone; then a colleague joins.
    const first = await join(voice.server_url, voice.user_token, voice.user_identity);
    const firstMic = keepSilent(first.mic);
    const colleague = new AccessToken(lk.livekitApiKey, lk.livekitApiSecret, {
      identity: "user_colleague",
      ttl: "10m",
    });
    colleague.addGrant({
      room: name,
      roomJoin: true,
      canPublish: true,
      canSubscribe: true,
      canPublishData: true,
    });
    const second = await join(voice.server_url, await colleague.toJwt(), "user_colleague");
    let firstLeft = false;
    try {
      for (const user of [first, second]) {
        await waitFor(
          "the agent in the room",
          () => [...user.room.remoteParticipants.values()].find((p) => p.identity === "agent-listener"),
          { timeoutMs: 15_000 },
        );
      }
      await waitFor("the joined event", () =>
        env.events.find((e) => e.type === "joined" && e.jobId === reply.job_id),
      );

      // The second user speaks: transcribed, answered in text and aloud, recorded as theirs.
      env.fixture.queueTranscript("This is the colleague speaking.", "deepgram");
      await speakTone(second.mic);
      const answer = await waitFor("the answer to the second user", () => second.replies[0], {
        timeoutMs: 20_000,
      });
      expect(
        await waitFor("the second user's transcript", () =>
          second.transcripts.find((t) => t.text === "This is the colleague speaking."),
        ),
      ).toEqual({ from: "user_colleague", text: "This is the colleague speaking." });
      await waitFor("the agent's voice", () => second.agentLoudFrames() > 5, { timeoutMs: 20_000 });
      const rows = await turnsRecorded("the second user's turn recorded", reply.conversation_id, 2);
      expect(rows.slice(0, 2).map((r) => [r.role, r.content, r.metadata["participant_identity"]])).toEqual([
        ["user", "This is the colleague speaking.", "user_colleague"],
        ["assistant", answer, "user_colleague"],
      ]);

      // The first user (the one the library's room I/O links) leaves; the second stays.
      await firstMic.stop();
      await first.room.disconnect();
      firstLeft = true;
      await waitForParticipantToLeave("the first user gone from the room", name, voice.user_identity);
      expect(env.events.some((e) => e.type === "done" && e.jobId === reply.job_id)).toBe(false);

      // The second user speaks again and is still heard and answered.
      env.fixture.queueTranscript("Are you still listening to me?", "deepgram");
      const loudBefore = second.agentLoudFrames();
      await speakTone(second.mic);
      const again = await waitFor("the second answer", () => second.replies[1], { timeoutMs: 20_000 });
      await waitFor("the agent's voice again", () => second.agentLoudFrames() > loudBefore + 5, {
        timeoutMs: 20_000,
      });
      const all = await turnsRecorded("the second turn recorded", reply.conversation_id, 4);
      expect(all.slice(2, 4).map((r) => [r.role, r.content, r.metadata["participant_identity"]])).toEqual([
        ["user", "Are you still listening to me?", "user_colleague"],
        ["assistant", again, "user_colleague"],
      ]);
      // Nothing was published as said by the first user, who never spoke.
      expect(first.transcripts.filter((t) => t.from === voice.user_identity)).toEqual([]);
      expect(second.transcripts.filter((t) => t.from !== "user_colleague")).toEqual([]);
    } finally {
      if (!firstLeft) {
        await firstMic.stop();
        await first.room.disconnect();
      }
      await second.room.disconnect();
    }

    // The last user left: the job is done and the agent leaves.
    await waitFor(
      "the job's done event",
      () => env.events.find((e) => e.type === "done" && e.jobId === reply.job_id),
      { timeoutMs: 15_000 },
    );
    await waitForParticipantToLeave("the agent to leave the room", name, "agent-listener");
  });
});
