/** `clients list|create|show`: the platform's clients (tenants), credentials always masked. */
import { PlatformOps } from "../../../platform/messages.ts";
import type { ApiKeysListReply, ClientDetailView, ClientsListReply } from "../../../platform/messages.ts";
import { intOption } from "../args.ts";
import type { Command } from "../command.ts";
import { UsageError } from "../errors.ts";
import { CLI_ACTOR } from "../platform_client.ts";
import { formatPairs, formatTable } from "../table.ts";
import { API_KEY_COLUMNS, apiKeyRow, clientPairs, clientRow } from "../views.ts";

const CLIENT_COLUMNS = [
  { header: "id" },
  { header: "slug" },
  { header: "name", maxWidth: 40 },
  { header: "status" },
  { header: "created" },
];

function required(value: string | undefined, name: string): string {
  if (value === undefined || value === "") throw new UsageError(`--${name} is required`);
  return value;
}

export const clientCommands: Command[] = [
  {
    path: ["clients", "list"],
    usage: "[--search <text>] [--status active|suspended|disabled] [--limit <n>] [--offset <n>]",
    summary: "lists clients (searched by slug or name)",
    spec: { values: ["search", "status", "limit", "offset"] },
    async run({ args, out, platform }) {
      const p = await platform();
      const search = args.values.get("search");
      const status = args.values.get("status");
      const reply = await p.platform<ClientsListReply>(PlatformOps.clientsList, {
        ...(search === undefined ? {} : { search }),
        ...(status === undefined ? {} : { status }),
        limit: intOption(args, "limit", 100, 1, 1000),
        offset: intOption(args, "offset", 0, 0, 1_000_000_000),
      });
      if (out.json) out.data(reply);
      else if (reply.clients.length === 0) out.text("no clients\n");
      else out.text(formatTable(CLIENT_COLUMNS, reply.clients.map(clientRow)));
      return 0;
    },
  },
  {
    path: ["clients", "create"],
    usage: "--slug <slug> --name <name> [--status active|suspended|disabled]",
    summary: "creates a client (its database and LiveKit credentials are set through the admin API)",
    spec: { values: ["slug", "name", "status"] },
    async run({ args, out, platform }) {
      const slug = required(args.values.get("slug"), "slug");
      const name = required(args.values.get("name"), "name");
      const status = args.values.get("status");
      const p = await platform();
      const created = await p.platform<ClientDetailView>(PlatformOps.clientsCreate, {
        actor: CLI_ACTOR,
        slug,
        name,
        ...(status === undefined ? {} : { status }),
      });
      if (out.json) out.data(created);
      else out.text(`client created\n${formatPairs(clientPairs(created))}`);
      return 0;
    },
  },
  {
    path: ["clients", "show"],
    usage: "<client id|slug>",
    summary: "one client with its masked credentials and its API keys",
    spec: { positionals: ["client"] },
    async run({ args, out, platform }) {
      const p = await platform();
      const client = await p.client(args.positionals[0] as string);
      const keys = await p.platform<ApiKeysListReply>(PlatformOps.apiKeysList, { client_id: client.id });
      if (out.json) {
        out.data({ ...client, api_keys: keys.api_keys });
        return 0;
      }
      const keyTable =
        keys.api_keys.length === 0
          ? "api keys  none\n"
          : `\napi keys\n${formatTable(API_KEY_COLUMNS, keys.api_keys.map(apiKeyRow))}`;
      out.text(formatPairs(clientPairs(client)) + keyTable);
      return 0;
    },
  },
];
