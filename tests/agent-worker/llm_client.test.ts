// The LLM client against the provider fixture: OpenAI-compatible streaming for each LLM
// provider, and every fault mapped to its code and retryable flag.
import { describe, expect, it } from "vitest";
import { AgentWorkerErrorCodes, resolveProviders } from "../../agent-worker/index.ts";
import type { ChatRequest, LlmClient, ProviderClientOptions } from "../../agent-worker/index.ts";
import { replyTokens, startProviderFixture } from "../fixtures/providers/provider_fixture.ts";
import type { FixtureProvider, ProviderFixture } from "../fixtures/providers/provider_fixture.ts";
import { drain, expectNoSecret, rejection } from "./provider_test_kit.ts";
import { useProviderFixture } from "../helpers/provider_fixture_hooks.ts";

const codes = AgentWorkerErrorCodes;
let fixture: ProviderFixture;

useProviderFixture((f) => (fixture = f));

function llm(
  provider: FixtureProvider = "groq",
  options: ProviderClientOptions = {},
  overrides: { key?: string; model?: string } = {},
): LlmClient {
  const { llm } = resolveProviders(
    {
      kinds: ["llm"],
      voiceSettings: { llm_provider: provider, ...(overrides.model ? { llm_model: overrides.model } : {}) },
    },
    { [provider]: overrides.key ?? fixture.keys[provider] },
    fixture.endpoints(),
    options,
  );
  return llm;
}

const request: ChatRequest = {
  messages: [
    { role: "system", content: "You are a helpful agent." },
    { role: "user", content: "What is the refund policy for damaged parcels?" },
  ],
  temperature: 0.2,
};

describe("llm client", () => {
  it("llm - streams a scripted reply as ordered deltas and sends the prompt", async () => {
    const reply = "Damaged parcels are refunded within fourteen days of the claim.";
    fixture.queueChatReply(reply, "groq");
    const { deltas, error } = await drain(llm("groq").stream(request));
    expect(error).toBeUndefined();
    expect(deltas).toEqual(replyTokens(reply));
    expect(deltas.length).toBeGreaterThan(5);
    expect(deltas.join("")).toBe(reply);

    const [call] = fixture.callsTo("groq", "chat");
    expect(call?.path).toBe("/openai/v1/chat/completions");
    expect(call?.headers["authorization"]).toBeUndefined();
    expect(call?.body).toMatchObject({
      model: "llama-3.3-70b-versatile",
      stream: true,
      temperature: 0.2,
      messages: request.messages,
    });
    expect(fixture.violations).toEqual([]);
  });

  it.each<[FixtureProvider, string]>([
    ["openai", "/v1/chat/completions"],
    ["cerebras", "/v1/chat/completions"],
    ["deepinfra", "/v1/openai/chat/completions"],
  ])("llm - %s answers at its real path with the agent's model", async (provider, path) => {
    const client = llm(provider, {}, { model: "some-model-7b" });
    const text = await client.complete(request);
    expect(text).toMatch(/^Echo: What is the refund policy/);
    const calls = fixture.callsTo(provider, "chat");
    expect(calls.map((c) => c.path)).toEqual([path]);
    expect(calls[0]?.body).toMatchObject({ model: "some-model-7b", stream: true });
    expect(fixture.calls.every((c) => c.provider === provider)).toBe(true);
  });

  it("llm - the default reply is deterministic for the same prompt", async () => {
    const client = llm();
    const first = await client.complete(request);
    const second = await client.complete(request);
    expect(first).toBe(second);
    const other = await client.complete({ messages: [{ role: "user", content: "Something else entirely" }] });
    expect(other).not.toBe(first);
  });

  it("llm - 429 is RATE_LIMITED, retryable, with Retry-After in ms", async () => {
    fixture.addFault({
      provider: "groq",
      kind: "chat",
      times: 1,
      fault: { type: "rate_limit", retryAfterSeconds: 2 },
    });
    const { deltas, error } = await drain(llm().stream(request));
    expect(deltas).toEqual([]);
    expect(error?.code).toBe(codes.PROVIDER_RATE_LIMITED);
    expect(error?.retryable).toBe(true);
    expect(error?.details).toMatchObject({ provider: "groq", kind: "llm", status: 429, retryAfterMs: 2000 });
    // The fault was for one call only: the next one succeeds.
    expect((await drain(llm().stream(request))).error).toBeUndefined();
  });

  it("llm - persistent 5xx is UNAVAILABLE and retryable", async () => {
    fixture.addFault({ provider: "groq", fault: { type: "server_error", status: 503 } });
    for (let i = 0; i < 2; i += 1) {
      const err = await rejection(llm().complete(request), codes.PROVIDER_UNAVAILABLE);
      expect(err.retryable).toBe(true);
      expect(err.details).toMatchObject({ provider: "groq", status: 503 });
      expect(String(err.details?.["excerpt"]).length).toBeLessThanOrEqual(201);
    }
  });

  it("llm - a refused key is AUTH, not retryable, and the key is nowhere in the error", async () => {
    const wrongKey = "sk-wrong-key-4f9a1c2b7d";
    const err = await rejection(
      llm("openai", {}, { key: wrongKey, model: "gpt-4o-mini" }).complete(request),
      codes.PROVIDER_AUTH,
    );
    expect(err.retryable).toBe(false);
    expect(err.details).toMatchObject({ provider: "openai", kind: "llm", status: 401 });
    expect(String(err.details?.["excerpt"])).toContain("Incorrect API key provided");
    expectNoSecret(err, wrongKey);
    expect(fixture.callsTo("openai")[0]?.authorized).toBe(false);
  });

  it("llm - a 4xx other than auth/429 is REQUEST_REJECTED", async () => {
    const err = await rejection(llm().complete({ messages: [] }), codes.PROVIDER_REQUEST_REJECTED);
    expect(err.retryable).toBe(false);
    expect(err.details).toMatchObject({ status: 400 });
  });

  it("llm - a connection cut midway is STREAM_INTERRUPTED after the deltas already sent", async () => {
    fixture.queueChatReply("one two three four five six seven");
    fixture.addFault({ kind: "chat", times: 1, fault: { type: "cut_stream", afterTokens: 3 } });
    const { deltas, error } = await drain(llm().stream(request));
    expect(deltas).toEqual(["one", " two", " three"]);
    expect(error?.code).toBe(codes.PROVIDER_STREAM_INTERRUPTED);
    expect(error?.retryable).toBe(false);
    expect(error?.details).toMatchObject({ provider: "groq", delivered: 3 });
  });

  it("llm - a body that ends without [DONE] is STREAM_INTERRUPTED, retryable when nothing was delivered", async () => {
    fixture.addFault({ kind: "chat", times: 1, fault: { type: "truncate_stream", afterTokens: 2 } });
    const partial = await drain(llm().stream(request));
    expect(partial.deltas).toHaveLength(2);
    expect(partial.error?.code).toBe(codes.PROVIDER_STREAM_INTERRUPTED);
    expect(partial.error?.retryable).toBe(false);

    fixture.addFault({ kind: "chat", times: 1, fault: { type: "truncate_stream", afterTokens: 0 } });
    const empty = await drain(llm().stream(request));
    expect(empty.deltas).toEqual([]);
    expect(empty.error?.code).toBe(codes.PROVIDER_STREAM_INTERRUPTED);
    expect(empty.error?.retryable).toBe(true);
  });

  it("llm - a malformed event is BAD_RESPONSE", async () => {
    fixture.addFault({ kind: "chat", times: 1, fault: { type: "malformed_stream", afterTokens: 1 } });
    const { deltas, error } = await drain(llm().stream(request));
    expect(deltas).toHaveLength(1);
    expect(error?.code).toBe(codes.PROVIDER_BAD_RESPONSE);
    expect(error?.retryable).toBe(false);
  });

  it("llm - an error event in the stream is UNAVAILABLE", async () => {
    fixture.addFault({ kind: "chat", times: 1, fault: { type: "error_event", afterTokens: 0 } });
    const { error } = await drain(llm().stream(request));
    expect(error?.code).toBe(codes.PROVIDER_UNAVAILABLE);
    expect(error?.retryable).toBe(true);
    expect(String(error?.details?.["excerpt"])).toContain("upstream model failed");
  });

  it("llm - no first token within the deadline is TIMEOUT (first_token)", async () => {
    fixture.addFault({ kind: "chat", times: 1, fault: { type: "slow_first_token", delayMs: 2_000 } });
    const started = performance.now();
    const { deltas, error } = await drain(llm("groq", { llmFirstTokenTimeoutMs: 150 }).stream(request));
    expect(deltas).toEqual([]);
    expect(error?.code).toBe(codes.PROVIDER_TIMEOUT);
    expect(error?.retryable).toBe(true);
    expect(error?.details).toMatchObject({ phase: "first_token", timeoutMs: 150 });
    expect(performance.now() - started).toBeLessThan(1_500);
  });

  it("llm - a slow first token within the deadline still streams", async () => {
    fixture.addFault({ kind: "chat", times: 1, fault: { type: "slow_first_token", delayMs: 100 } });
    const { error } = await drain(llm("groq", { llmFirstTokenTimeoutMs: 2_000 }).stream(request));
    expect(error).toBeUndefined();
  });

  it("llm - an answer slower than the overall deadline is TIMEOUT (overall) after some deltas", async () => {
    fixture.setLatency({ tokenDelayMs: 40 });
    fixture.queueChatReply(Array.from({ length: 40 }, (_, i) => `w${i}`).join(" "));
    const { deltas, error } = await drain(llm("groq", { llmOverallTimeoutMs: 300 }).stream(request));
    expect(deltas.length).toBeGreaterThan(0);
    expect(deltas.length).toBeLessThan(40);
    expect(error?.code).toBe(codes.PROVIDER_TIMEOUT);
    expect(error?.details).toMatchObject({ phase: "overall", delivered: deltas.length });
  });

  it("llm - the caller's AbortSignal stops the stream with ABORTED", async () => {
    fixture.setLatency({ tokenDelayMs: 30 });
    fixture.queueChatReply("alpha beta gamma delta epsilon zeta eta theta");
    const controller = new AbortController();
    const deltas: string[] = [];
    const err = await rejection(
      (async () => {
        for await (const delta of llm().stream(request, { signal: controller.signal })) {
          deltas.push(delta);
          if (deltas.length === 2) controller.abort();
        }
      })(),
      codes.PROVIDER_ABORTED,
    );
    expect(deltas).toEqual(["alpha", " beta"]);
    expect(err.retryable).toBe(false);
  });

  it("llm - breaking out of the loop early releases the call", async () => {
    fixture.setLatency({ tokenDelayMs: 20 });
    fixture.queueChatReply("a b c d e f g h i j k l");
    const seen: string[] = [];
    for await (const delta of llm().stream(request)) {
      seen.push(delta);
      if (seen.length === 3) break;
    }
    expect(seen).toEqual(["a", " b", " c"]);
    // The next call on the same fixture is served normally.
    expect(await llm().complete({ messages: [{ role: "user", content: "hi" }] })).toMatch(/^Echo: hi/);
  });

  it("llm - an unreachable provider is UNAVAILABLE and retryable", async () => {
    const closed = await startProviderFixture();
    const endpoints = closed.endpoints();
    await closed.close();
    const { llm: client } = resolveProviders(
      { kinds: ["llm"], voiceSettings: { llm_provider: "groq" } },
      { groq: "gsk-something-secret-123" },
      endpoints,
    );
    const err = await rejection(client.complete(request), codes.PROVIDER_UNAVAILABLE);
    expect(err.retryable).toBe(true);
    expect(err.details).toMatchObject({ provider: "groq", kind: "llm" });
    expectNoSecret(err, "gsk-something-secret-123");
  });
});
