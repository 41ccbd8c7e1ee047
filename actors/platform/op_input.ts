/**
 * Reading operation bodies that arrive over NATS: every field is checked here, so a body that
 * does not fit answers SF_ERR_INVALID_ARGUMENT (naming the field) before any store is touched.
 */
import { InvalidArgumentError } from "../errors.ts";

export type OpBody = Readonly<Record<string, unknown>>;

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** `admin:<id>`, `api_key:<id>` or `system:<id>`: who asked for a change (never a secret). */
const ACTOR_RE = /^(?:admin|api_key|system):[A-Za-z0-9_.@:+-]{1,200}$/;

function invalid(op: string, field: string, rule: string): InvalidArgumentError {
  return new InvalidArgumentError(`${op}: "${field}" ${rule}`, { details: { field } });
}

export function objectBody(op: string, body: unknown): OpBody {
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw new InvalidArgumentError(`${op} takes an object body`);
  }
  return body as OpBody;
}

/** Refuses fields the operation does not know, so a typo never passes silently. */
export function onlyFields(op: string, body: OpBody, allowed: readonly string[]): void {
  for (const key of Object.keys(body)) {
    if (!allowed.includes(key)) throw invalid(op, key, "is not a known field");
  }
}

export function isUuid(value: unknown): value is string {
  return typeof value === "string" && UUID_RE.test(value);
}

export function uuidField(op: string, body: OpBody, field: string): string {
  const v = body[field];
  if (!isUuid(v)) throw invalid(op, field, "must be a uuid");
  return v.toLowerCase();
}

export function stringField(
  op: string,
  body: OpBody,
  field: string,
  rule: { max?: number; pattern?: RegExp } = {},
): string {
  const v = body[field];
  const max = rule.max ?? 1000;
  if (typeof v !== "string" || v.trim() === "" || v.length > max) {
    throw invalid(op, field, `must be a non-empty string of at most ${max} characters`);
  }
  if (rule.pattern !== undefined && !rule.pattern.test(v)) {
    throw invalid(op, field, `must match ${String(rule.pattern)}`);
  }
  return v;
}

export function optionalString(
  op: string,
  body: OpBody,
  field: string,
  rule: { max?: number; pattern?: RegExp } = {},
): string | undefined {
  return body[field] === undefined ? undefined : stringField(op, body, field, rule);
}

export function optionalInt(
  op: string,
  body: OpBody,
  field: string,
  min: number,
  max: number,
): number | undefined {
  const v = body[field];
  if (v === undefined) return undefined;
  if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) {
    throw invalid(op, field, `must be an integer from ${min} to ${max}`);
  }
  return v;
}

export function optionalBoolean(op: string, body: OpBody, field: string): boolean | undefined {
  const v = body[field];
  if (v === undefined) return undefined;
  if (typeof v !== "boolean") throw invalid(op, field, "must be a boolean");
  return v;
}

export function optionalObject(op: string, body: OpBody, field: string): Record<string, unknown> | undefined {
  const v = body[field];
  if (v === undefined) return undefined;
  if (typeof v !== "object" || v === null || Array.isArray(v)) throw invalid(op, field, "must be an object");
  return v as Record<string, unknown>;
}

export function optionalStringArray(
  op: string,
  body: OpBody,
  field: string,
  rule: { maxItems: number; pattern: RegExp },
): string[] | undefined {
  const v = body[field];
  if (v === undefined) return undefined;
  if (!Array.isArray(v) || v.length > rule.maxItems) {
    throw invalid(op, field, `must be an array of at most ${rule.maxItems} strings`);
  }
  return v.map((item) => {
    if (typeof item !== "string" || !rule.pattern.test(item)) {
      throw invalid(op, field, `items must match ${String(rule.pattern)}`);
    }
    return item;
  });
}

/** The identity a change is recorded under (`audit_log.actor`). */
export function actorField(op: string, body: OpBody): string {
  const v = body["actor"];
  if (typeof v !== "string" || !ACTOR_RE.test(v)) {
    throw invalid(op, "actor", "must name who asks: admin:<id>, api_key:<id> or system:<id>");
  }
  return v;
}
