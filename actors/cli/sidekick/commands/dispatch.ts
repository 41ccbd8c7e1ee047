/**
 * `dispatch test <client> <agent>`: sends a text trigger through the tenant actor as the gateway
 * does, with the reply stream (`<prefix>.chat.<session>.out`) subscribed first, and shows how
 * long the claim, the first token and the whole answer took, and the answer. The turn is real: it
 * is recorded in the tenant's conversations like any other.
 */
import { randomUUID } from "node:crypto";
import { decodeBody, fromWireError, SfError, BusErrorCodes } from "../../../../bus/index.ts";
import type { WireError } from "../../../../bus/index.ts";
import type { ChatFrame } from "../../../dispatch/job.ts";
import type { TriggerReply } from "../../../tenant/dispatch_ops.ts";
import { intOption } from "../args.ts";
import type { Command } from "../command.ts";
import { TenantOpNames } from "../ops.ts";
import { formatPairs } from "../table.ts";
import type { Cell } from "../table.ts";

const ms = (value: number): number => Math.round(value * 10) / 10;

interface TestResult {
  client_id: string;
  agent: string;
  session_id: string;
  job_id: string | null;
  conversation_id: string | null;
  worker_id: string | null;
  timings: {
    /** Until the trigger was answered (a worker claimed the job). */
    claim_ms: number | null;
    /** What the tenant actor measured from dispatch to claim. */
    claim_reported_ms: number | null;
    first_token_ms: number | null;
    done_ms: number | null;
  };
  tokens: number;
  reply: string | null;
  citations: unknown[];
  error?: WireError;
}

export const dispatchCommands: Command[] = [
  {
    path: ["dispatch", "test"],
    usage: "<client id|slug> <agent slug> [--message <text>] [--user <id>] [--timeout-ms <ms>]",
    summary: "sends a text message to an agent and shows claim, first-token and done times and the reply",
    spec: { positionals: ["client", "agent"], values: ["message", "user", "timeout-ms"] },
    async run({ args, out, platform }) {
      const [ref = "", agent = ""] = args.positionals;
      const message = args.values.get("message") ?? "Hello! This is a test from the sidekick CLI.";
      const user = args.values.get("user") ?? "sidekick-cli";
      const timeoutMs = intOption(args, "timeout-ms", 60_000, 1000, 600_000);
      const p = await platform();
      const client = await p.client(ref);
      const session = `cli-${randomUUID()}`;
      const frames: Array<{ frame: ChatFrame; at: number }> = [];
      let wake: () => void = () => undefined;
      let subscriptionError: Error | undefined;
      const sub = p.nc.subscribe(p.subjects.chatOut(session), {
        callback: (err, msg) => {
          if (err) {
            subscriptionError = err;
            wake();
            return;
          }
          frames.push({ frame: decodeBody(msg.data) as ChatFrame, at: performance.now() });
          wake();
        },
      });
      const result: TestResult = {
        client_id: client.id,
        agent,
        session_id: session,
        job_id: null,
        conversation_id: null,
        worker_id: null,
        timings: { claim_ms: null, claim_reported_ms: null, first_token_ms: null, done_ms: null },
        tokens: 0,
        reply: null,
        citations: [],
      };
      try {
        await p.nc.flush();
        out.progress(`dispatching to ${client.slug}/${agent}`);
        const started = performance.now();
        const trigger = await p.tenant<TriggerReply>(
          client.id,
          TenantOpNames.trigger,
          { agent_slug: agent, mode: "text", user_id: user, message, session_id: session },
          timeoutMs,
        );
        result.timings.claim_ms = ms(performance.now() - started);
        result.timings.claim_reported_ms = trigger.claim_ms;
        result.job_id = trigger.job_id;
        result.conversation_id = trigger.conversation_id;
        result.worker_id = trigger.worker_id;
        out.progress(`claimed by ${trigger.worker_id}, waiting for the answer`);
        const deadline = started + timeoutMs;
        let end: ChatFrame | undefined;
        while (end === undefined) {
          if (subscriptionError !== undefined) throw subscriptionError;
          const mine = frames.filter((f) => f.frame.job_id === trigger.job_id);
          const firstToken = mine.find((f) => f.frame.type === "token");
          if (firstToken !== undefined) result.timings.first_token_ms = ms(firstToken.at - started);
          result.tokens = mine.filter((f) => f.frame.type === "token").length;
          const last = mine.find((f) => f.frame.type === "message" || f.frame.type === "error");
          if (last !== undefined) {
            end = last.frame;
            result.timings.done_ms = ms(last.at - started);
            break;
          }
          out.progress(`claimed by ${trigger.worker_id}, ${result.tokens} token(s) so far`);
          const left = deadline - performance.now();
          if (left <= 0) {
            throw new SfError(BusErrorCodes.TIMEOUT, `no complete answer within ${timeoutMs} ms`, {
              details: { job_id: trigger.job_id, tokens: result.tokens },
            });
          }
          await new Promise<void>((resolve) => {
            const timer = setTimeout(resolve, Math.min(left, 250));
            wake = () => {
              clearTimeout(timer);
              resolve();
            };
          });
        }
        if (end.type === "message") {
          result.reply = end.text;
          result.citations = end.citations;
        } else if (end.type === "error") {
          result.error = end.error;
        }
      } finally {
        sub.unsubscribe();
        out.done();
      }
      if (out.json) out.data(result);
      else {
        const t = result.timings;
        const pairs: Array<[string, Cell]> = [
          ["client", `${client.slug} (${client.id})`],
          ["agent", agent],
          ["worker", result.worker_id],
          ["job", result.job_id],
          ["conversation", result.conversation_id],
          ["claim", `${t.claim_ms} ms (actor measured ${t.claim_reported_ms} ms)`],
          ["first token", t.first_token_ms === null ? null : `${t.first_token_ms} ms`],
          ["done", t.done_ms === null ? null : `${t.done_ms} ms (${result.tokens} tokens)`],
          ["citations", result.citations.length],
        ];
        out.text(formatPairs(pairs));
        if (result.reply !== null) out.text(`\n${result.reply}\n`);
      }
      if (result.error !== undefined) {
        out.error(fromWireError(result.error));
        return 1;
      }
      return 0;
    },
  },
];
