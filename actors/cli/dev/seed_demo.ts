/**
 * `node --import tsx actors/cli/dev/seed_demo.ts [--json]`: makes the demo tenant once (see
 * seed.ts) through the running platform, waits for the gateway, and prints the banner of
 * `npm run dev` (banner.ts), or with `--json` the same facts as one JSON object. `npm run dev` runs
 * it after starting the processes; running it again changes nothing and prints the same.
 *
 * Environment: as the `sidekick` CLI (NATS_URL, SF_SUBJECT_PREFIX, SF_PARTITIONS), plus
 * SF_DATA_DIR, SF_DEMO_TENANT_DIR, SF_DEMO_API_KEY_FILE, SF_GATEWAY_URL or SF_GATEWAY_PORT,
 * SF_ADMIN_TOKEN, LIVEKIT_URL/LIVEKIT_API_KEY/LIVEKIT_API_SECRET (see config.ts).
 * Progress goes to stderr; exit 0 done, 1 failed (`error SF_ERR_…: message` on stderr).
 */
import { toWireError } from "../../../bus/index.ts";
import { PlatformClient } from "../sidekick/platform_client.ts";
import { formatBanner, providerKeyCurl, triggerCurl } from "./banner.ts";
import { parseSeedDemoConfig } from "./config.ts";
import { seedDemo } from "./seed.ts";

const PROBE_TIMEOUT_MS = 2000;

/** Polls `<gateway>/health` until it answers 200 or `waitMs` passes. */
async function waitForGateway(gatewayUrl: string, waitMs: number): Promise<boolean> {
  const deadline = performance.now() + waitMs;
  for (;;) {
    if ((await probe(`${gatewayUrl}/health`)) === 200) return true;
    if (performance.now() >= deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

/** The HTTP status of a GET, or 0 when nothing answers. */
async function probe(url: string): Promise<number> {
  try {
    const res = await fetch(url, { redirect: "manual", signal: AbortSignal.timeout(PROBE_TIMEOUT_MS) });
    await res.body?.cancel();
    return res.status;
  } catch (err) {
    // Refused or timed out: the gateway is not (yet) there.
    if (err instanceof Error) return 0;
    throw err;
  }
}

async function main(argv: readonly string[]): Promise<number> {
  const unknown = argv.filter((a) => a !== "--json");
  if (unknown.length > 0) {
    process.stderr.write(`usage: seed_demo.ts [--json] (unknown ${unknown.join(" ")})\n`);
    return 2;
  }
  const json = argv.includes("--json");
  const config = parseSeedDemoConfig();
  const platform = await PlatformClient.connect(config.cli);
  try {
    const seed = await seedDemo({
      platform,
      tenantDataDir: config.tenantDataDir,
      apiKeyFile: config.apiKeyFile,
      livekit: config.livekit,
      platformWaitMs: config.platformWaitMs,
      progress: (message) => process.stderr.write(`seed: ${message}\n`),
    });
    const changed = [seed.client, seed.tenantDatabase, seed.livekit, seed.agent, seed.apiKey].some(
      (x) => x.created,
    );
    if (!changed) process.stderr.write("seed: the demo client, agent and API key are there already\n");
    const gatewayUp = await waitForGateway(config.gatewayUrl, config.gatewayWaitMs);
    const adminStatus = gatewayUp ? await probe(`${config.gatewayUrl}/admin`) : 0;
    const adminUrl = adminStatus >= 200 && adminStatus < 400 ? `${config.gatewayUrl}/admin` : null;
    if (json) {
      const out = {
        client: seed.client,
        tenant_database: { kind: seed.tenantDatabase.kind, created: seed.tenantDatabase.created },
        livekit: seed.livekit,
        agent: {
          id: seed.agent.id,
          slug: seed.agent.slug,
          llm_provider: seed.agent.llmProvider,
          llm_model: seed.agent.llmModel,
          text_chat_enabled: seed.agent.textChatEnabled,
          voice_chat_enabled: seed.agent.voiceChatEnabled,
          created: seed.agent.created,
        },
        api_key: seed.apiKey,
        gateway_url: config.gatewayUrl,
        gateway_up: gatewayUp,
        admin_url: adminUrl,
        admin_api: `${config.gatewayUrl}/api/v2`,
        curl: {
          trigger: triggerCurl(config.gatewayUrl, seed.apiKey.key, seed.client.id, seed.agent.slug),
          provider_key: providerKeyCurl(config.gatewayUrl, "<admin token>", seed.client.id),
        },
      };
      process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
    } else {
      process.stdout.write(
        formatBanner({
          seed,
          gatewayUrl: config.gatewayUrl,
          gatewayUp,
          adminUrl,
          adminToken: config.adminToken,
        }),
      );
    }
    return 0;
  } finally {
    await platform[Symbol.asyncDispose]();
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    const wire = toWireError(err);
    const details =
      wire.details === undefined || Object.keys(wire.details).length === 0
        ? ""
        : ` ${JSON.stringify(wire.details)}`;
    process.stderr.write(`error ${wire.code}: ${wire.message}${details}\n`);
    process.exit(1);
  },
);
