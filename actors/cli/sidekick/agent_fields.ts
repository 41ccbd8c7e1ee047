/**
 * `agents set` assignments (`key=value`, `voice_settings.llm_model=…`) and `agents create` options
 * turned into the tenant actor's agent fields. Values are typed by the field they set (text,
 * boolean, integer, JSON); the tenant actor validates them and its error is what the user sees.
 */
import type { AgentRecord } from "../../store/index.ts";
import { AGENT_COLUMN_FIELDS } from "../../tenant/agent_view.ts";
import { UsageError } from "./errors.ts";

const FIELD_NAMES: Readonly<Record<string, string>> = AGENT_COLUMN_FIELDS;

const NULLABLE_TEXT = new Set(["description", "system_prompt", "agent_image", "model"]);
const BOOLEANS = new Set(["enabled", "show_citations", "text_chat_enabled", "voice_chat_enabled"]);
const INTEGERS = new Set(["rag_results_limit", "context_retention_minutes", "max_context_messages"]);
const JSON_FIELDS = new Set(["voice_settings", "webhooks", "tools_config"]);

export const AGENT_FIELD_HELP = Object.keys(FIELD_NAMES).join(", ");

function fieldValue(field: string, raw: string): unknown {
  if (NULLABLE_TEXT.has(field)) return raw === "null" ? null : raw;
  if (BOOLEANS.has(field)) return raw === "true" ? true : raw === "false" ? false : raw;
  if (INTEGERS.has(field)) {
    if (raw === "null") return null;
    return /^-?\d+$/.test(raw) ? Number(raw) : raw;
  }
  if (JSON_FIELDS.has(field)) {
    try {
      return JSON.parse(raw) as unknown;
    } catch (cause) {
      throw new UsageError(`${field} takes a JSON object (or set one key: ${field}.<key>=<value>)`, {
        cause,
      });
    }
  }
  return raw;
}

/** A value inside a JSON column: JSON when it parses (numbers, booleans, objects), else text. */
function jsonLeaf(raw: string): unknown {
  try {
    return JSON.parse(raw) as unknown;
  } catch {
    // Not JSON: the text itself, e.g. voice_settings.llm_model=llama-3.3-70b-versatile.
    return raw;
  }
}

export interface Assignment {
  field: string;
  /** Keys inside a JSON column (`voice_settings.provider_config.x` → ["provider_config", "x"]). */
  path: string[];
  raw: string;
}

export function parseAssignments(items: readonly string[]): Assignment[] {
  if (items.length === 0) throw new UsageError("name at least one key=value to set");
  return items.map((item) => {
    const eq = item.indexOf("=");
    if (eq <= 0) throw new UsageError(`${JSON.stringify(item)} is not key=value`);
    const [field = "", ...path] = item.slice(0, eq).split(".");
    if (path.length > 0 && !JSON_FIELDS.has(field)) {
      throw new UsageError(`only ${[...JSON_FIELDS].join(", ")} take dotted keys`);
    }
    if (path.some((p) => p === "")) throw new UsageError(`${JSON.stringify(item)} has an empty key`);
    return { field, path, raw: item.slice(eq + 1) };
  });
}

/** Whether applying `assignments` needs the agent's current JSON columns (dotted keys). */
export function needsCurrent(assignments: readonly Assignment[]): boolean {
  return assignments.some((a) => a.path.length > 0);
}

function setPath(target: Record<string, unknown>, path: readonly string[], value: unknown): void {
  let node = target;
  path.slice(0, -1).forEach((key) => {
    const next = node[key];
    const copy: Record<string, unknown> =
      typeof next === "object" && next !== null && !Array.isArray(next)
        ? { ...(next as Record<string, unknown>) }
        : {};
    node[key] = copy;
    node = copy;
  });
  node[path[path.length - 1] as string] = value;
}

/** The `patch` of an `agents-update` request; `current` is needed for dotted keys. */
export function agentPatch(
  assignments: readonly Assignment[],
  current?: AgentRecord,
): Record<string, unknown> {
  const patch: Record<string, unknown> = {};
  for (const a of assignments) {
    // Unknown keys go through as typed, so the tenant actor names them in its error.
    const name = FIELD_NAMES[a.field] ?? a.field;
    if (a.path.length === 0) {
      patch[name] = fieldValue(a.field, a.raw);
      continue;
    }
    const columns = (current ?? {}) as Record<string, unknown>;
    const existing = patch[name] ?? columns[name];
    const base: Record<string, unknown> =
      typeof existing === "object" && existing !== null && !Array.isArray(existing)
        ? { ...(existing as Record<string, unknown>) }
        : {};
    setPath(base, a.path, a.raw === "null" ? null : jsonLeaf(a.raw));
    patch[name] = base;
  }
  return patch;
}
