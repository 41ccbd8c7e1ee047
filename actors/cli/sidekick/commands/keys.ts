/** `keys list|issue|revoke`: a client's API keys. An issued key is printed once, never again. */
import { PlatformOps } from "../../../platform/messages.ts";
import type { ApiKeysCreateReply, ApiKeysListReply, ApiKeyView } from "../../../platform/messages.ts";
import type { Command } from "../command.ts";
import { UsageError } from "../errors.ts";
import { CLI_ACTOR, isUuid } from "../platform_client.ts";
import { formatPairs, formatTable } from "../table.ts";
import { API_KEY_COLUMNS, apiKeyRow, dateText } from "../views.ts";

function keyPairs(k: ApiKeyView): Array<[string, string | null]> {
  return [
    ["id", k.id],
    ["client", k.client_id],
    ["prefix", k.prefix],
    ["label", k.label],
    ["scopes", k.scopes.join(",")],
    ["site url", k.site_url],
    ["created", dateText(k.created_at)],
    ["expires", dateText(k.expires_at)],
    ["revoked", dateText(k.revoked_at)],
  ];
}

export const keyCommands: Command[] = [
  {
    path: ["keys", "list"],
    usage: "<client id|slug>",
    summary: "the client's API keys (prefixes only)",
    spec: { positionals: ["client"] },
    async run({ args, out, platform }) {
      const p = await platform();
      const client = await p.client(args.positionals[0] as string);
      const reply = await p.platform<ApiKeysListReply>(PlatformOps.apiKeysList, { client_id: client.id });
      if (out.json) out.data(reply);
      else if (reply.api_keys.length === 0) out.text(`no API keys for ${client.slug}\n`);
      else out.text(formatTable(API_KEY_COLUMNS, reply.api_keys.map(apiKeyRow)));
      return 0;
    },
  },
  {
    path: ["keys", "issue"],
    usage: "<client id|slug> [--label <text>] [--scopes a,b] [--site-url <url>] [--expires-at <ISO time>]",
    summary: "issues an API key for the client and prints it once",
    spec: { positionals: ["client"], values: ["label", "scopes", "site-url", "expires-at"] },
    async run({ args, out, platform }) {
      const label = args.values.get("label");
      const scopes = args.values.get("scopes");
      const siteUrl = args.values.get("site-url");
      const expiresAt = args.values.get("expires-at");
      const p = await platform();
      const client = await p.client(args.positionals[0] as string);
      const created = await p.platform<ApiKeysCreateReply>(PlatformOps.apiKeysCreate, {
        actor: CLI_ACTOR,
        client_id: client.id,
        ...(label === undefined ? {} : { label }),
        ...(scopes === undefined
          ? {}
          : {
              scopes: scopes
                .split(",")
                .map((s) => s.trim())
                .filter((s) => s !== ""),
            }),
        ...(siteUrl === undefined ? {} : { site_url: siteUrl }),
        ...(expiresAt === undefined ? {} : { expires_at: expiresAt }),
      });
      if (out.json) out.data(created);
      else {
        out.text(
          `API key for ${client.slug}, shown this once (only its hash is stored):\n\n  ${created.key}\n\n` +
            formatPairs(keyPairs(created.api_key)),
        );
      }
      return 0;
    },
  },
  {
    path: ["keys", "revoke"],
    usage: "<client id|slug> <key id>",
    summary: "revokes one of the client's API keys; it is refused from then on",
    spec: { positionals: ["client", "key id"] },
    async run({ args, out, platform }) {
      const keyId = args.positionals[1] as string;
      if (!isUuid(keyId)) throw new UsageError("<key id> is the key's id (a uuid), as `keys list` shows it");
      const p = await platform();
      const client = await p.client(args.positionals[0] as string);
      const revoked = await p.platform<ApiKeyView>(PlatformOps.apiKeysRevoke, {
        actor: CLI_ACTOR,
        client_id: client.id,
        key_id: keyId.toLowerCase(),
      });
      if (out.json) out.data({ api_key: revoked });
      else out.text(`API key revoked\n${formatPairs(keyPairs(revoked))}`);
      return 0;
    },
  },
];
