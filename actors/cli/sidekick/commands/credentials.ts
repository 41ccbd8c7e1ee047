/**
 * `provider-keys list|set|remove` (a tenant's LLM/STT/TTS/embedding keys) and
 * `clients credentials` (a client's tenant database and LiveKit credentials). Secrets are read
 * from a file or standard input (`--key-file -`), never from the command line, where `ps` and
 * shell history would keep them; they are written sealed and never printed back.
 */
import { readFile } from "node:fs/promises";
import { PlatformOps } from "../../../platform/messages.ts";
import type { ClientDetailView } from "../../../platform/messages.ts";
import { ProviderKeyOps } from "../../../tenant/provider_key_ops.ts";
import type { ProviderKeyView } from "../../../tenant/provider_key_ops.ts";
import type { Command } from "../command.ts";
import { UsageError } from "../errors.ts";
import { CLI_ACTOR } from "../platform_client.ts";
import { formatPairs, formatTable } from "../table.ts";
import { dateText } from "../views.ts";

/** The secret in `path` (`-`: standard input), without the trailing newline. */
export async function readSecret(
  path: string,
  what: string,
  stdin: NodeJS.ReadableStream = process.stdin,
): Promise<string> {
  let raw: string;
  if (path === "-") {
    const chunks: Buffer[] = [];
    for await (const chunk of stdin) chunks.push(typeof chunk === "string" ? Buffer.from(chunk) : chunk);
    raw = Buffer.concat(chunks).toString("utf8");
  } else {
    try {
      raw = await readFile(path, "utf8");
    } catch (err) {
      throw new UsageError(
        `cannot read ${what} from ${path}: ${(err as NodeJS.ErrnoException).code ?? "error"}`,
      );
    }
  }
  const value = raw.replace(/\r?\n$/, "");
  if (value === "") throw new UsageError(`${what} is empty`);
  return value;
}

function credentialPairs(c: ClientDetailView): Array<[string, string | null]> {
  const db = c.credentials.tenant_database;
  const lk = c.credentials.livekit;
  return [
    ["client", `${c.slug} (${c.id})`],
    [
      "tenant database",
      db.configured
        ? [
            db.kind,
            db.url,
            db.service_role_key === undefined ? undefined : `key ${db.service_role_key}`,
            db.schema,
          ]
            .filter((x) => x !== undefined && x !== null)
            .join("  ")
        : "not configured",
    ],
    ["livekit", lk.configured ? `${lk.url}  key ${lk.api_key}  secret ${lk.api_secret}` : "not configured"],
  ];
}

export const credentialCommands: Command[] = [
  {
    path: ["provider-keys", "list"],
    usage: "<client id|slug>",
    summary: "which providers the client has a key for (never the keys)",
    spec: { positionals: ["client"] },
    async run({ args, out, platform }) {
      const p = await platform();
      const client = await p.client(args.positionals[0] as string);
      const reply = await p.tenant<{ provider_keys: ProviderKeyView[] }>(
        client.id,
        ProviderKeyOps.listProviderKeys,
        {},
      );
      if (out.json) out.data(reply);
      else if (reply.provider_keys.length === 0) out.text(`no provider keys for ${client.slug}\n`);
      else
        out.text(
          formatTable(
            [{ header: "provider" }, { header: "key" }, { header: "updated" }],
            reply.provider_keys.map((k) => [
              k.provider,
              k.configured ? "set" : "not set",
              dateText(k.updated_at),
            ]),
          ),
        );
      return 0;
    },
  },
  {
    path: ["provider-keys", "set"],
    usage: "<client id|slug> <provider> --key-file <path|->",
    summary: "stores (or replaces) the client's key for a provider, read from a file or stdin",
    spec: { positionals: ["client", "provider"], values: ["key-file"] },
    async run({ args, out, platform }) {
      const file = args.values.get("key-file");
      if (file === undefined)
        throw new UsageError("--key-file <path|-> is required (keys are never taken from argv)");
      const key = await readSecret(file, "the provider key");
      const p = await platform();
      const client = await p.client(args.positionals[0] as string);
      const view = await p.tenant<ProviderKeyView>(client.id, ProviderKeyOps.setProviderKey, {
        actor: CLI_ACTOR,
        provider: args.positionals[1],
        api_key: key,
      });
      if (out.json) out.data(view);
      else out.text(`${view.provider} key set for ${client.slug} (${dateText(view.updated_at) ?? ""})\n`);
      return 0;
    },
  },
  {
    path: ["provider-keys", "remove"],
    usage: "<client id|slug> <provider>",
    summary: "removes the client's key for a provider",
    spec: { positionals: ["client", "provider"] },
    async run({ args, out, platform }) {
      const p = await platform();
      const client = await p.client(args.positionals[0] as string);
      const reply = await p.tenant<{ provider: string; deleted: boolean }>(
        client.id,
        ProviderKeyOps.deleteProviderKey,
        { actor: CLI_ACTOR, provider: args.positionals[1] },
      );
      if (out.json) out.data(reply);
      else
        out.text(
          reply.deleted
            ? `${reply.provider} key removed from ${client.slug}\n`
            : `${client.slug} had no ${reply.provider} key\n`,
        );
      return reply.deleted ? 0 : 1;
    },
  },
  {
    path: ["clients", "credentials"],
    usage:
      "<client id|slug> [--livekit-url <url> --livekit-api-key <key> --livekit-secret-file <path|->] " +
      "[--database-kind supabase|postgres|pglite --database-url-file <path|-> " +
      "--database-service-role-key-file <path> --database-schema <name> --database-data-dir <dir>] " +
      "[--remove-livekit] [--remove-database]",
    summary: "sets or removes a client's LiveKit and tenant database credentials (secrets from files)",
    spec: {
      positionals: ["client"],
      values: [
        "livekit-url",
        "livekit-api-key",
        "livekit-secret-file",
        "database-kind",
        "database-url-file",
        "database-service-role-key-file",
        "database-schema",
        "database-data-dir",
      ],
      flags: ["remove-livekit", "remove-database"],
    },
    async run({ args, out, platform }) {
      const v = (name: string) => args.values.get(name);
      const body: Record<string, unknown> = {};
      const livekitGiven = ["livekit-url", "livekit-api-key", "livekit-secret-file"].filter(
        (n) => v(n) !== undefined,
      );
      if (args.flags.has("remove-livekit")) {
        if (livekitGiven.length > 0)
          throw new UsageError("--remove-livekit cannot be combined with --livekit-* options");
        body["livekit"] = null;
      } else if (livekitGiven.length > 0) {
        if (livekitGiven.length < 3)
          throw new UsageError(
            "LiveKit needs all of --livekit-url, --livekit-api-key and --livekit-secret-file",
          );
        body["livekit"] = {
          url: v("livekit-url"),
          apiKey: v("livekit-api-key"),
          apiSecret: await readSecret(v("livekit-secret-file") as string, "the LiveKit API secret"),
        };
      }
      const dbGiven = [
        "database-kind",
        "database-url-file",
        "database-service-role-key-file",
        "database-schema",
        "database-data-dir",
      ].filter((n) => v(n) !== undefined);
      if (args.flags.has("remove-database")) {
        if (dbGiven.length > 0)
          throw new UsageError("--remove-database cannot be combined with --database-* options");
        body["tenant_database"] = null;
      } else if (dbGiven.length > 0) {
        const kind = v("database-kind");
        if (kind === undefined)
          throw new UsageError("--database-kind is required with the other --database-* options");
        if (v("database-url-file") === "-" && v("database-service-role-key-file") === "-")
          throw new UsageError("only one secret can come from stdin");
        const db: Record<string, unknown> = { kind };
        const urlFile = v("database-url-file");
        if (urlFile !== undefined) db["url"] = await readSecret(urlFile, "the database URL");
        const keyFile = v("database-service-role-key-file");
        if (keyFile !== undefined) db["serviceRoleKey"] = await readSecret(keyFile, "the service role key");
        const schema = v("database-schema");
        if (schema !== undefined) db["schema"] = schema;
        const dataDir = v("database-data-dir");
        if (dataDir !== undefined) db["dataDir"] = dataDir;
        body["tenant_database"] = db;
      }
      if (Object.keys(body).length === 0)
        throw new UsageError("nothing to change: give --livekit-*, --database-* or a --remove-* option");
      const p = await platform();
      const client = await p.client(args.positionals[0] as string);
      await p.platform(PlatformOps.clientsSetCredentials, { actor: CLI_ACTOR, id: client.id, ...body });
      const after = await p.platform<ClientDetailView>(PlatformOps.clientsGet, { id: client.id });
      if (out.json) out.data({ id: after.id, slug: after.slug, credentials: after.credentials });
      else out.text(formatPairs(credentialPairs(after)));
      return 0;
    },
  },
];
