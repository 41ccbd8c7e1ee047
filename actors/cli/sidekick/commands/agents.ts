/** `agents list|show|create|set`: a client's agents, served by the tenant actor from its database. */
import type { AgentRecord } from "../../../store/index.ts";
import { agentPatch, AGENT_FIELD_HELP, needsCurrent, parseAssignments } from "../agent_fields.ts";
import type { Command } from "../command.ts";
import { UsageError } from "../errors.ts";
import { TenantOpNames } from "../ops.ts";
import { CLI_ACTOR } from "../platform_client.ts";
import { formatPairs, formatTable } from "../table.ts";
import type { Cell } from "../table.ts";
import { agentView } from "../../../tenant/agent_view.ts";

function providerText(agent: AgentRecord): string {
  const v = agent.voiceSettings ?? {};
  return [v.llm_provider, v.llm_model ?? agent.model]
    .filter((x) => typeof x === "string" && x !== "")
    .join(" ");
}

function agentPairs(agent: AgentRecord): Array<[string, Cell]> {
  const view = agentView(agent);
  return Object.entries(view).map(([k, v]): [string, Cell] => [
    k,
    typeof v === "object" && v !== null ? JSON.stringify(v) : (v as Cell),
  ]);
}

const AGENT_COLUMNS = [
  { header: "slug" },
  { header: "name", maxWidth: 30 },
  { header: "enabled" },
  { header: "llm", maxWidth: 40 },
  { header: "stt" },
  { header: "tts" },
  { header: "text" },
  { header: "voice" },
];

export const agentCommands: Command[] = [
  {
    path: ["agents", "list"],
    usage: "<client id|slug>",
    summary: "the client's agents",
    spec: { positionals: ["client"] },
    async run({ args, out, platform }) {
      const p = await platform();
      const client = await p.client(args.positionals[0] as string);
      const agents = await p.tenant<AgentRecord[]>(client.id, TenantOpNames.listAgents, {});
      if (out.json) out.data({ client_id: client.id, agents: agents.map(agentView) });
      else if (agents.length === 0) out.text(`no agents for ${client.slug}\n`);
      else {
        out.text(
          formatTable(
            AGENT_COLUMNS,
            agents.map((a) => [
              a.slug,
              a.name,
              a.enabled,
              providerText(a),
              a.voiceSettings?.stt_provider,
              a.voiceSettings?.tts_provider ?? a.voiceSettings?.provider,
              a.textChatEnabled,
              a.voiceChatEnabled,
            ]),
          ),
        );
      }
      return 0;
    },
  },
  {
    path: ["agents", "show"],
    usage: "<client id|slug> <agent slug>",
    summary: "one agent (secret-named settings redacted)",
    spec: { positionals: ["client", "agent"] },
    async run({ args, out, platform }) {
      const p = await platform();
      const client = await p.client(args.positionals[0] as string);
      const agent = await p.tenant<AgentRecord>(client.id, TenantOpNames.getAgent, {
        slug: args.positionals[1],
      });
      if (out.json) out.data(agentView(agent));
      else out.text(formatPairs(agentPairs(agent)));
      return 0;
    },
  },
  {
    path: ["agents", "create"],
    usage:
      "<client id|slug> --slug <slug> --name <name> [--description <text>] [--system-prompt <text>]\n" +
      "      [--llm-provider <name> --llm-model <model>] [--stt-provider <name>] [--tts-provider <name>]\n" +
      "      [--voice-id <id>] [--disabled] [--no-text] [--no-voice]",
    summary: "creates an agent in the client's database",
    spec: {
      positionals: ["client"],
      values: [
        "slug",
        "name",
        "description",
        "system-prompt",
        "llm-provider",
        "llm-model",
        "stt-provider",
        "tts-provider",
        "voice-id",
      ],
      flags: ["disabled", "no-text", "no-voice"],
    },
    async run({ args, out, platform }) {
      const v = (name: string): string | undefined => args.values.get(name);
      const slug = v("slug");
      const name = v("name");
      if (slug === undefined) throw new UsageError("--slug is required");
      if (name === undefined) throw new UsageError("--name is required");
      const voiceSettings: Record<string, string> = {};
      for (const [option, key] of [
        ["llm-provider", "llm_provider"],
        ["llm-model", "llm_model"],
        ["stt-provider", "stt_provider"],
        ["tts-provider", "tts_provider"],
        ["voice-id", "voice_id"],
      ] as const) {
        const value = v(option);
        if (value !== undefined) voiceSettings[key] = value;
      }
      const agent: Record<string, unknown> = {
        slug,
        name,
        ...(v("description") === undefined ? {} : { description: v("description") }),
        ...(v("system-prompt") === undefined ? {} : { systemPrompt: v("system-prompt") }),
        ...(Object.keys(voiceSettings).length === 0 ? {} : { voiceSettings }),
        ...(args.flags.has("disabled") ? { enabled: false } : {}),
        ...(args.flags.has("no-text") ? { textChatEnabled: false } : {}),
        ...(args.flags.has("no-voice") ? { voiceChatEnabled: false } : {}),
      };
      const p = await platform();
      const client = await p.client(args.positionals[0] as string);
      const created = await p.tenant<AgentRecord>(client.id, TenantOpNames.createAgent, {
        actor: CLI_ACTOR,
        agent,
      });
      if (out.json) out.data(agentView(created));
      else out.text(`agent created\n${formatPairs(agentPairs(created))}`);
      return 0;
    },
  },
  {
    path: ["agents", "set"],
    usage: "<client id|slug> <agent slug> <key=value>...",
    summary: `changes agent fields (${AGENT_FIELD_HELP}; JSON columns also take <column>.<key>=<value>)`,
    spec: { positionals: ["client", "agent", "key=value..."], required: 3 },
    async run({ args, out, platform }) {
      const [ref = "", slug = "", ...items] = args.positionals;
      const assignments = parseAssignments(items);
      const p = await platform();
      const client = await p.client(ref);
      const current = needsCurrent(assignments)
        ? await p.tenant<AgentRecord>(client.id, TenantOpNames.getAgent, { slug })
        : undefined;
      const updated = await p.tenant<AgentRecord>(client.id, TenantOpNames.updateAgent, {
        actor: CLI_ACTOR,
        slug,
        patch: agentPatch(assignments, current),
      });
      if (out.json) out.data(agentView(updated));
      else out.text(`agent updated\n${formatPairs(agentPairs(updated))}`);
      return 0;
    },
  },
];
