/**
 * `npm run rag:reembed -- --client <client id> [--status]`: re-embeds every document and
 * transcript of one tenant with its current embedding settings (after its embedding provider,
 * model or dimension changed), through the tenant's actor on the running platform: the stored
 * vectors are cleared (the columns' dimension changed where the database allows it), and every
 * document is queued again from its stored text; agent workers do the embedding. `--status` only
 * prints what the stored vectors were made with and whether they are stale.
 *
 * Environment: NATS_URL, SF_SUBJECT_PREFIX and SF_PARTITIONS as for the actor host. Prints JSON.
 */
import { connectBus, createSubjects, requestReply } from "../../bus/index.ts";
import { envInt } from "../runtime/process_env.ts";
import { DocumentOps } from "../tenant/document_ops.ts";

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function usage(message: string): never {
  process.stderr.write(`${message}\nusage: npm run rag:reembed -- --client <client id> [--status]\n`);
  process.exit(2);
}

async function main(): Promise<number> {
  const args = process.argv.slice(2);
  const at = args.indexOf("--client");
  const client = at >= 0 ? args[at + 1] : undefined;
  if (client === undefined || !UUID_RE.test(client)) usage("--client must name a client id (uuid)");
  const statusOnly = args.includes("--status");
  const env = process.env;
  const nc = await connectBus({
    servers: env["NATS_URL"] ?? "nats://127.0.0.1:4222",
    name: "sf-cli-reembed",
  });
  try {
    const subjects = createSubjects({
      prefix: env["SF_SUBJECT_PREFIX"] ?? "sf",
      partitions: envInt(env, "SF_PARTITIONS", 256, 1, 65_536),
    });
    const tenant = client.toLowerCase();
    const op = statusOnly ? DocumentOps.embeddingStatus : DocumentOps.reembed;
    const { body } = await requestReply(
      nc,
      subjects.tenantOp(tenant, op),
      statusOnly ? {} : { actor: "system:cli-reembed" },
      { tenant, timeoutMs: 120_000 },
    );
    process.stdout.write(`${JSON.stringify(body, null, 2)}\n`);
    return 0;
  } finally {
    await nc.drain();
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    const e = err as { code?: string; message?: string };
    process.stderr.write(
      `${JSON.stringify({ error: { code: e.code ?? "SF_ERR_INTERNAL", message: e.message } })}\n`,
    );
    process.exit(1);
  },
);
