/**
 * What `npm run dev` prints once the demo tenant is there: where the gateway and the admin API
 * are, the admin token, the demo API key, a `curl` that triggers the demo agent, and the `curl`
 * that gives the demo client its groq key. The same on every run (the key comes from its file).
 */
import type { SeedDemoResult } from "./seed.ts";

export interface BannerInput {
  seed: SeedDemoResult;
  gatewayUrl: string;
  /** Whether the gateway answered /health before printing. */
  gatewayUp: boolean;
  /** `<gateway>/admin` when the console answers, else null. */
  adminUrl: string | null;
  /** SF_ADMIN_TOKEN; undefined when the gateway has no token login. */
  adminToken: string | undefined;
}

/** A shell word: single-quoted unless it is plainly safe. */
function sh(word: string): string {
  return /^[A-Za-z0-9_./:=@%+,-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

export function triggerCurl(gatewayUrl: string, apiKey: string, clientId: string, agentSlug: string): string {
  const body = JSON.stringify({
    agent_slug: agentSlug,
    mode: "text",
    client_id: clientId,
    user_id: "dev-user",
    message: "Hello, who are you?",
  });
  return [
    `curl -sS -X POST ${sh(`${gatewayUrl}/api/v1/trigger-agent`)} \\`,
    `    -H ${sh(`Authorization: Bearer ${apiKey}`)} -H 'Content-Type: application/json' \\`,
    `    -d ${sh(body)}`,
  ].join("\n");
}

export function providerKeyCurl(gatewayUrl: string, adminToken: string, clientId: string): string {
  return [
    `curl -sS -X PUT ${sh(`${gatewayUrl}/api/v2/clients/${clientId}/provider-keys/groq`)} \\`,
    `    -H ${sh(`Authorization: Bearer ${adminToken}`)} -H 'Content-Type: application/json' \\`,
    `    -d '{"api_key":"<your groq API key, gsk_…>"}'`,
  ].join("\n");
}

export function formatBanner(input: BannerInput): string {
  const { seed, gatewayUrl } = input;
  const token = input.adminToken;
  const rule = "─".repeat(78);
  const pairs: Array<[string, string]> = [
    [
      "gateway",
      input.gatewayUp
        ? `${gatewayUrl}  (health: ${gatewayUrl}/health/detailed)`
        : `${gatewayUrl}  (not answering yet: see the [gateway] lines)`,
    ],
    [
      "admin",
      input.adminUrl === null
        ? `console not answering (${gatewayUrl}/admin); admin API ${gatewayUrl}/api/v2 (routes: ${gatewayUrl}/openapi.json)`
        : `${input.adminUrl}  (console: log in with the admin token; admin API ${gatewayUrl}/api/v2)`,
    ],
    ["admin token", token ?? "not set (SF_ADMIN_TOKEN): the admin API accepts only Supabase Auth JWTs"],
    [
      "demo client",
      `${seed.client.slug}  id ${seed.client.id}  (tenant database: ${seed.tenantDatabase.kind}${
        seed.livekit.configured ? ", LiveKit configured" : ", no LiveKit credentials"
      })`,
    ],
    [
      "demo agent",
      `${seed.agent.slug}  (${[seed.agent.llmProvider, seed.agent.llmModel].filter((x) => x !== null).join(" ") || "no LLM set"}; ${
        [seed.agent.textChatEnabled ? "text" : "", seed.agent.voiceChatEnabled ? "voice" : ""]
          .filter((x) => x !== "")
          .join(" and ") || "no channel"
      } enabled)`,
    ],
    [
      "API key",
      `${seed.apiKey.key}  (scopes: ${seed.apiKey.scopes.join(",") || "none"}; kept in ${seed.apiKey.file})`,
    ],
  ];
  const width = Math.max(...pairs.map(([k]) => k.length));
  const lines = [
    rule,
    "Sidekick Forge is running. Ctrl-C stops everything.",
    "",
    ...pairs.map(([k, v]) => `  ${k.padEnd(width)}  ${v}`),
    "",
    `Ask the demo agent (text):`,
    "",
    indent(triggerCurl(gatewayUrl, seed.apiKey.key, seed.client.id, seed.agent.slug)),
    "",
    `Until the demo client has a groq key, the agent answers 409 SF_ERR_PROVIDER_MISCONFIGURED naming groq (no fallback).`,
    `Set it with the admin token (stored sealed in the tenant database; the next request uses it):`,
    "",
    indent(providerKeyCurl(gatewayUrl, token ?? "<admin token>", seed.client.id)),
    rule,
  ];
  return `${lines.join("\n")}\n`;
}

function indent(text: string): string {
  return text
    .split("\n")
    .map((line) => `  ${line}`)
    .join("\n");
}
