// The provider fixture itself, over raw HTTP: each provider's auth check and 401 body, no secret
// in what it records, and the SSE wire format of a streamed chat completion. The client tests
// rely on these behaviours, so they are pinned here independently of the product code.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { FIXTURE_PROVIDERS, PROVIDER_WIRE } from "../fixtures/providers/wire_formats.ts";
import type { FixtureProvider } from "../fixtures/providers/wire_formats.ts";
import { startProviderFixture } from "../fixtures/providers/provider_fixture.ts";
import type { ProviderFixture } from "../fixtures/providers/provider_fixture.ts";

let fixture: ProviderFixture;

beforeAll(async () => {
  fixture = await startProviderFixture();
});
afterAll(async () => {
  await fixture.close();
});
beforeEach(() => {
  fixture.reset();
});

/** A request each provider serves, with its own way of carrying `key`. */
function probe(provider: FixtureProvider, key: string): { path: string; init: RequestInit } {
  const json = (body: unknown, headers: Record<string, string>): RequestInit => ({
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify(body),
  });
  switch (provider) {
    case "deepgram":
      return {
        path: "/listen?model=nova-3",
        init: {
          method: "POST",
          headers: { authorization: `Token ${key}`, "content-type": "audio/wav" },
          body: Buffer.alloc(3200),
        },
      };
    case "elevenlabs":
      return {
        path: "/text-to-speech/v1?output_format=pcm_16000",
        init: json({ text: "hi", model_id: "eleven_turbo_v2_5" }, { "xi-api-key": key }),
      };
    case "cartesia":
      return {
        path: "/tts/bytes",
        init: json(
          {
            model_id: "sonic-3",
            transcript: "hi",
            voice: { mode: "id", id: "v" },
            output_format: { container: "raw", encoding: "pcm_s16le", sample_rate: 16000 },
          },
          { "x-api-key": key, "cartesia-version": "2025-04-16" },
        ),
      };
    case "jina":
      return {
        path: "/embeddings",
        init: json({ model: "jina-embeddings-v3", input: ["hi"] }, { authorization: `Bearer ${key}` }),
      };
    default:
      return {
        path: PROVIDER_WIRE[provider].kinds.includes("chat") ? "/chat/completions" : "/embeddings",
        init: json(
          { model: "m", messages: [{ role: "user", content: "hi" }], input: ["hi"] },
          { authorization: `Bearer ${key}` },
        ),
      };
  }
}

describe("provider fixture", () => {
  it.each(FIXTURE_PROVIDERS)(
    "fixture - %s refuses a wrong key with a 401 and accepts its own",
    async (provider) => {
      const wrong = `wrong-${provider}-secret-0000`;
      const bad = probe(provider, wrong);
      const refused = await fetch(`${fixture.endpoints()[provider]}${bad.path}`, bad.init);
      expect(refused.status).toBe(401);
      const body = await refused.json();
      expect(JSON.stringify(body)).not.toContain(wrong);
      const good = probe(provider, fixture.keys[provider]);
      const served = await fetch(`${fixture.endpoints()[provider]}${good.path}`, good.init);
      expect(served.status).toBe(200);
      await served.arrayBuffer();
      expect(fixture.calls.map((c) => [c.provider, c.authorized])).toEqual([
        [provider, false],
        [provider, true],
      ]);
      const recorded = JSON.stringify(fixture.calls.map((c) => c.headers));
      expect(recorded).not.toContain(wrong);
      expect(recorded).not.toContain(fixture.keys[provider]);
    },
  );

  it("fixture - the 401 bodies are the providers' own shapes", async () => {
    const bodyOf = async (provider: FixtureProvider): Promise<unknown> => {
      const { path, init } = probe(provider, "nope-nope-nope");
      return (await fetch(`${fixture.endpoints()[provider]}${path}`, init)).json();
    };
    expect(await bodyOf("groq")).toEqual({
      error: { message: "Invalid API Key", type: "invalid_request_error", code: "invalid_api_key" },
    });
    expect(await bodyOf("deepgram")).toMatchObject({
      err_code: "INVALID_AUTH",
      err_msg: "Invalid credentials.",
    });
    expect(await bodyOf("elevenlabs")).toEqual({
      detail: { status: "invalid_api_key", message: "Invalid API key" },
    });
    expect(await bodyOf("siliconflow")).toBe("Invalid token");
  });

  it("fixture - a streamed chat completion is SSE chunks ending in data: [DONE]", async () => {
    fixture.queueChatReply("one two three");
    const response = await fetch(`${fixture.endpoints().openai}/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${fixture.keys.openai}`, "content-type": "application/json" },
      body: JSON.stringify({
        model: "gpt-4o-mini",
        stream: true,
        messages: [{ role: "user", content: "count" }],
      }),
    });
    expect(response.headers.get("content-type")).toBe("text/event-stream");
    const text = await response.text();
    const events = text.split("\n\n").filter((e) => e !== "");
    expect(events.every((e) => e.startsWith("data: "))).toBe(true);
    expect(events.at(-1)).toBe("data: [DONE]");
    const chunks = events.slice(0, -1).map(
      (e) =>
        JSON.parse(e.slice(6)) as {
          object: string;
          choices: Array<{ delta: { content?: string }; finish_reason: string | null }>;
        },
    );
    expect(chunks.every((c) => c.object === "chat.completion.chunk")).toBe(true);
    expect(chunks.map((c) => c.choices[0]?.delta.content ?? "").join("")).toBe("one two three");
    expect(chunks.at(-1)?.choices[0]?.finish_reason).toBe("stop");
  });

  it("fixture - faults apply the given number of times, in order", async () => {
    fixture.addFault({ provider: "jina", times: 2, fault: { type: "rate_limit", retryAfterSeconds: 7 } });
    const statuses: Array<[number, string | null]> = [];
    for (let i = 0; i < 3; i += 1) {
      const { path, init } = probe("jina", fixture.keys.jina);
      const response = await fetch(`${fixture.endpoints().jina}${path}`, init);
      statuses.push([response.status, response.headers.get("retry-after")]);
      await response.arrayBuffer();
    }
    expect(statuses).toEqual([
      [429, "7"],
      [429, "7"],
      [200, null],
    ]);
  });
});
