import { describe, expect, it } from "vitest";
import type { ChatFrame } from "../../actors/index.ts";
import { chatSubject } from "../../actors/index.ts";
import { connectBus, createSubjects, encodeBody } from "../../bus/index.ts";
import { ChatInbox, LoopBatch } from "../../gateway/index.ts";
import type { ChatListener } from "../../gateway/index.ts";
import { waitFor } from "../helpers/deadline.ts";
import { NatsTestServer } from "../helpers/nats_server.ts";

const subjects = createSubjects({ prefix: "inb", partitions: 4 });

function recorder(): ChatListener & { frames: ChatFrame[]; errors: Error[] } {
  const frames: ChatFrame[] = [];
  const errors: Error[] = [];
  return {
    frames,
    errors,
    frame: (f) => frames.push(f),
    error: (e) => errors.push(e),
  };
}

const token = (job: string, seq: number, delta: string): ChatFrame => ({
  type: "token",
  job_id: job,
  seq,
  delta,
});

describe("chat inbox - one subscription for every session a gateway makes up", () => {
  it("inbox - each session's frames reach the turns waiting on it, in order; a turn that stops listening gets no more", async () => {
    await using server = await NatsTestServer.start();
    const gateway = await connectBus({ servers: server.url, name: "inbox-gateway" });
    const worker = await connectBus({ servers: server.url, name: "inbox-worker" });
    try {
      const inbox = new ChatInbox({ nc: gateway, subjects });
      const a1 = recorder();
      const a2 = recorder();
      const b = recorder();
      const stopA1 = inbox.listen("sess-a", a1);
      inbox.listen("sess-a", a2);
      inbox.listen("sess-b", b);
      expect(inbox.sessions).toBe(2);
      // What a worker does with a job that names the inbox (actors' chatSubject).
      const send = (session: string, frame: ChatFrame) =>
        worker.publish(chatSubject(subjects, { sessionId: session, chatInbox: inbox.id }), encodeBody(frame));
      await gateway.flush();
      send("sess-a", token("j1", 0, "Hel"));
      send("sess-b", token("j2", 0, "Bon"));
      send("sess-a", token("j1", 1, "lo"));
      // A session nobody waits on, the same session's ordinary subject, and something not a frame.
      send("sess-c", token("j3", 0, "lost"));
      worker.publish(subjects.chatOut("sess-a"), encodeBody(token("j1", 9, "elsewhere")));
      worker.publish(
        chatSubject(subjects, { sessionId: "sess-a", chatInbox: inbox.id }),
        encodeBody({ hi: 1 }),
      );
      send("sess-a", token("j1", 2, "!"));
      await waitFor("sess-a's last frame", () => a2.frames.length === 3);
      for (const r of [a1, a2])
        expect(r.frames.map((f) => (f.type === "token" ? f.delta : ""))).toEqual(["Hel", "lo", "!"]);
      await waitFor("sess-b's frame", () => b.frames.length === 1);
      expect(b.frames[0]).toMatchObject({ job_id: "j2", delta: "Bon" });

      stopA1();
      send("sess-a", token("j1", 3, "?"));
      await waitFor("the next frame", () => a2.frames.length === 4);
      expect(a1.frames).toHaveLength(3);
      expect([a1.errors, a2.errors, b.errors]).toEqual([[], [], []]);
    } finally {
      await worker.close();
      await gateway.close();
    }
  });

  it("inbox - a turn that listens and then publishes its trigger without a flush still gets the first frame", async () => {
    await using server = await NatsTestServer.start();
    const gateway = await connectBus({ servers: server.url, name: "inbox-order" });
    try {
      const inbox = new ChatInbox({ nc: gateway, subjects });
      // A responder that answers the "trigger" by sending the frame at once, as an instant worker does.
      gateway.subscribe("inb.trigger", {
        callback: (_err, msg) => {
          const session = new TextDecoder().decode(msg.data);
          gateway.publish(
            chatSubject(subjects, { sessionId: session, chatInbox: inbox.id }),
            encodeBody(token("j", 0, "first")),
          );
        },
      });
      await gateway.flush();
      const r = recorder();
      inbox.listen("sess-first", r);
      gateway.publish("inb.trigger", new TextEncoder().encode("sess-first"));
      await waitFor("the first frame", () => r.frames.length === 1);
    } finally {
      await gateway.close();
    }
  });
});

describe("loop batch - the requests of one loop turn start together", () => {
  it("batch - jobs pushed in one turn run together after the current callback; a failing job does not stop the rest", async () => {
    const errors: unknown[] = [];
    const batch = new LoopBatch((err) => errors.push(err));
    const ran: string[] = [];
    batch.push(() => ran.push("a"));
    batch.push(() => {
      throw new Error("job b failed");
    });
    batch.push(() => ran.push("c"));
    expect(ran).toEqual([]);
    expect(batch.pending).toBe(3);
    await new Promise<void>((resolve) => setImmediate(resolve));
    expect(ran).toEqual(["a", "c"]);
    expect(errors.map((e) => (e as Error).message)).toEqual(["job b failed"]);
    expect(batch.pending).toBe(0);
    // A later turn gets a batch of its own.
    batch.push(() => ran.push("d"));
    await new Promise<void>((resolve) => setImmediate(resolve));
    expect(ran).toEqual(["a", "c", "d"]);
  });
});
