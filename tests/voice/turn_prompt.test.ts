// The prompt of a voice reply, as the agent's llmNode builds it from the session's chat context:
// instructions, then the context retrieved for the latest user turn (once per turn), then the
// window of the conversation.
import { llm } from "@livekit/agents";
import { describe, expect, it } from "vitest";
import { loadVoiceRuntime, ProviderAuthError, ProviderUnavailableError } from "../../agent-worker/index.ts";
import type { TurnContext, TurnPrompts } from "../../agent-worker/index.ts";
import type { SfError } from "../../bus/index.ts";

const { TurnPrompts: Prompts, chatMessagesOf } = await loadVoiceRuntime();

function conversation(turns: number, latest: string): llm.ChatContext {
  const ctx = llm.ChatContext.empty();
  ctx.addMessage({ role: "system", content: "You are the Acme helper." });
  for (let i = 1; i <= turns; i += 1) {
    ctx.addMessage({ role: "user", content: `question ${i}` });
    ctx.addMessage({ role: "assistant", content: `answer ${i}` });
  }
  ctx.addMessage({ role: "user", content: latest });
  return ctx;
}

function prompts(
  retrieve?: (text: string) => Promise<TurnContext | null>,
  refused: SfError[] = [],
  windowTurns = 2,
): TurnPrompts {
  return new Prompts({
    windowTurns,
    ...(retrieve === undefined ? {} : { retrieve }),
    signal: new AbortController().signal,
    refused: (err) => refused.push(err),
  });
}

const found: TurnContext = {
  message: "Context: parcels ship daily.",
  citations: [{ id: "c1" }],
  documentIds: ["d1"],
};

describe("voice prompt", () => {
  it("prompt - instructions, the turn's retrieved context, then the last windowTurns exchanges and the new turn", async () => {
    const asked: string[] = [];
    const p = prompts((text) => {
      asked.push(text);
      return Promise.resolve(found);
    });
    const built = await p.build(conversation(3, "When does my parcel ship?"));
    expect(chatMessagesOf(built)).toEqual([
      { role: "system", content: "You are the Acme helper." },
      { role: "system", content: "Context: parcels ship daily." },
      { role: "user", content: "question 2" },
      { role: "assistant", content: "answer 2" },
      { role: "user", content: "question 3" },
      { role: "assistant", content: "answer 3" },
      { role: "user", content: "When does my parcel ship?" },
    ]);
    expect(asked).toEqual(["When does my parcel ship?"]);
  });

  it("prompt - retrieval runs once per committed user turn, however often a reply to it is built", async () => {
    let calls = 0;
    const p = prompts(() => {
      calls += 1;
      return Promise.resolve(found);
    });
    const ctx = conversation(1, "first");
    await p.build(ctx);
    await p.build(ctx);
    expect(calls).toBe(1);
    const latest = ctx.items.at(-1) as llm.ChatMessage;
    expect(await p.retrieved(latest)).toEqual(found);
    ctx.addMessage({ role: "assistant", content: "reply" });
    ctx.addMessage({ role: "user", content: "second" });
    await p.build(ctx);
    expect(calls).toBe(2);
  });

  it("prompt - without RAG there is no context message and nothing was retrieved", async () => {
    const p = prompts();
    const ctx = conversation(0, "hello");
    expect(chatMessagesOf(await p.build(ctx))).toEqual([
      { role: "system", content: "You are the Acme helper." },
      { role: "user", content: "hello" },
    ]);
    expect(await p.retrieved(ctx.items.at(-1) as llm.ChatMessage)).toBeNull();
  });

  it("prompt - a refusing retrieval is reported (the session ends with it); a transient one only fails the reply", async () => {
    const refused: SfError[] = [];
    const auth = new ProviderAuthError("jina embeddings: the provider refused the API key (HTTP 401)");
    await expect(prompts(() => Promise.reject(auth), refused).build(conversation(0, "a"))).rejects.toBe(auth);
    expect(refused).toEqual([auth]);
    const down = new ProviderUnavailableError("jina embeddings: provider unavailable (HTTP 503)");
    await expect(prompts(() => Promise.reject(down), refused).build(conversation(0, "b"))).rejects.toBe(down);
    expect(refused).toEqual([auth]);
  });

  it("prompt - developer messages count as system; empty instructions are left out", () => {
    const ctx = llm.ChatContext.empty();
    ctx.addMessage({ role: "system", content: "" });
    ctx.addMessage({ role: "developer", content: "Be brief." });
    ctx.addMessage({ role: "user", content: "hi" });
    expect(chatMessagesOf(ctx)).toEqual([
      { role: "system", content: "Be brief." },
      { role: "user", content: "hi" },
    ]);
  });
});
