/**
 * The instant backend of the `gateway` bench, in its own process: it stands in for the actor
 * host and the worker so that a trigger measures the gateway path alone.
 *
 * - `<prefix>.platform.api-keys-verify`: the bench's API key verifies (any other key answers
 *   SF_ERR_UNAUTHENTICATED); `<prefix>.platform.clients-get`: the client's name. The gateway
 *   caches both, as it does with a real actor host.
 * - `<prefix>.t.<partition>.<tenant>.trigger`: answers a TriggerReply at once (our envelope),
 *   then publishes the job's final `{type:"message"}` frame on the session's chat subject (the
 *   gateway's chat inbox when the trigger names one), the order a real claim and a real worker produce.
 * - `bench.rr` / `bench.turn`: the bare NATS baselines with the payload sizes of those hops
 *   (measured on the first trigger): a plain request/reply, and a request/reply plus one frame
 *   published to the subject named on the request's first line.
 * - `bench.backend.stats`: the sizes seen, as JSON.
 */
import { randomUUID } from "node:crypto";
import type { Msg } from "@nats-io/transport-node";
import { chatSubject, PlatformErrorCodes, PlatformOps } from "../actors/index.ts";
import type { ChatFrame, TriggerReply, VerifiedApiKey } from "../actors/index.ts";
import {
  connectBus,
  createSubjects,
  encodeBody,
  encodeErrorReply,
  encodeOkReply,
  readRequest,
} from "../bus/index.ts";

const env = process.env;
const tenant = env["BENCH_TENANT"] ?? "";
const apiKey = env["BENCH_API_KEY"] ?? "";
if (tenant === "" || apiKey === "") throw new Error("BENCH_TENANT and BENCH_API_KEY are required");
const subjects = createSubjects({
  prefix: env["SF_SUBJECT_PREFIX"] ?? "sf",
  partitions: Number(env["SF_PARTITIONS"] ?? "256"),
});
const nc = await connectBus({
  servers: env["NATS_URL"] ?? "nats://127.0.0.1:4222",
  name: "bench-gateway-backend",
});
const meta = { host: "bench-backend", epoch: 1 };
const keyId = randomUUID();
/** What the instant agent answers. */
const REPLY_TEXT = "Hello! I am the bench's instant responder; the worker was not involved.";

const sizes = { trigger_request_bytes: 0, trigger_reply_bytes: 0, frame_bytes: 0, triggers: 0 };
let bareReply = new Uint8Array(0);
let bareFrame = new Uint8Array(0);

const respondOk = (msg: Msg, body: unknown): number => {
  const out = encodeOkReply(body, meta);
  msg.respond(out.data, { headers: out.headers });
  return out.data.byteLength;
};

nc.subscribe(subjects.platformOp(PlatformOps.apiKeysVerify), {
  callback: (_err, msg) => {
    const { body } = readRequest(msg);
    if ((body as { key?: unknown }).key !== apiKey) {
      const out = encodeErrorReply(
        {
          code: PlatformErrorCodes.UNAUTHENTICATED,
          message: "the API key is not valid",
          retryable: false,
          details: {},
        },
        meta,
      );
      msg.respond(out.data, { headers: out.headers });
      return;
    }
    const verified: VerifiedApiKey = { keyId, clientId: tenant, scopes: [] };
    respondOk(msg, verified);
  },
});

// The gateway reads only `name` from clients-get (the trigger routes' client name cache).
nc.subscribe(subjects.platformOp(PlatformOps.clientsGet), {
  callback: (_err, msg) => {
    respondOk(msg, { id: tenant, slug: "bench", name: "Bench client" });
  },
});

nc.subscribe(subjects.tenantOp(tenant, "trigger"), {
  callback: (_err, msg) => {
    const { body } = readRequest(msg);
    const b = body as {
      job_id: string;
      session_id: string;
      chat_inbox?: string;
      conversation_id?: string;
      agent_slug: string;
    };
    const conversationId = b.conversation_id ?? randomUUID();
    const reply: TriggerReply = {
      job_id: b.job_id,
      conversation_id: conversationId,
      session_id: b.session_id,
      worker_id: "bench-instant",
      claimed_at: Date.now(),
      claim_ms: 0,
      duplicate: false,
      agent: { slug: b.agent_slug, name: "Bench agent", voice_provider: null, voice_id: null },
    };
    const replyBytes = respondOk(msg, reply);
    const frame: ChatFrame = {
      type: "message",
      job_id: b.job_id,
      conversation_id: conversationId,
      text: REPLY_TEXT,
      citations: [],
      seq: 0,
    };
    const data = encodeBody(frame);
    // Where a real worker sends it (actors' chatSubject): the gateway's inbox when the trigger names one.
    nc.publish(chatSubject(subjects, { sessionId: b.session_id, chatInbox: b.chat_inbox }), data);
    if (sizes.triggers === 0) {
      sizes.trigger_request_bytes = msg.data.byteLength;
      sizes.trigger_reply_bytes = replyBytes;
      sizes.frame_bytes = data.byteLength;
      bareReply = new Uint8Array(replyBytes).fill(0x61);
      bareFrame = new Uint8Array(data.byteLength).fill(0x62);
    }
    sizes.triggers += 1;
  },
});

// Bare request/reply: the reply has the size of a trigger reply.
nc.subscribe("bench.rr", {
  callback: (_err, msg) => {
    msg.respond(bareReply);
  },
});

// Bare turn: one frame of a final message's size to the subject on the first line, then the reply.
const NEWLINE = 0x0a;
nc.subscribe("bench.turn", {
  callback: (_err, msg) => {
    const end = msg.data.indexOf(NEWLINE);
    const subject = Buffer.from(msg.data.subarray(0, end)).toString("latin1");
    msg.respond(bareReply);
    nc.publish(subject, bareFrame);
  },
});

nc.subscribe("bench.backend.stats", {
  callback: (_err, msg) => {
    msg.respond(encodeBody(sizes));
  },
});

await nc.flush();
console.log("gateway backend ready");
process.on("SIGTERM", () => {
  void nc.drain().then(() => process.exit(0));
});
