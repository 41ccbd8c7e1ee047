/**
 * JSON-schema validation of request bodies and queries (Ajv, draft 2020-12: the dialect of
 * OpenAPI 3.1), compiled once per route when the app is built.
 */
import { Ajv2020 } from "ajv/dist/2020.js";
import type { ErrorObject, ValidateFunction } from "ajv/dist/2020.js";
import { ValidationError } from "./errors.ts";
import type { RouteDefinition } from "./http_types.ts";

export interface RouteValidators {
  body?: ValidateFunction;
  query?: ValidateFunction;
}

export interface ValidationIssue {
  /** JSON pointer of the offending value (`/agent_slug`), `""` for the whole document. */
  path: string;
  message: string;
}

export function createValidatorCompiler(): (route: RouteDefinition) => RouteValidators {
  const ajv = new Ajv2020({ allErrors: true, strict: true, coerceTypes: false });
  return (route) => {
    const validators: RouteValidators = {};
    if (route.schema?.body !== undefined) validators.body = ajv.compile(route.schema.body);
    if (route.schema?.query !== undefined) validators.query = ajv.compile(route.schema.query);
    return validators;
  };
}

function issues(errors: readonly ErrorObject[] | null | undefined): ValidationIssue[] {
  return (errors ?? []).map((e) => {
    const missing =
      e.keyword === "required" ? (e.params as { missingProperty?: string }).missingProperty : undefined;
    const extra =
      e.keyword === "additionalProperties"
        ? (e.params as { additionalProperty?: string }).additionalProperty
        : undefined;
    const field = missing ?? extra;
    return {
      path: field === undefined ? e.instancePath : `${e.instancePath}/${field}`,
      message: e.message ?? e.keyword,
    };
  });
}

/** Throws a ValidationError listing every issue when `value` does not match. */
export function assertValid(
  validate: ValidateFunction | undefined,
  value: unknown,
  what: "body" | "query",
): void {
  if (validate === undefined || validate(value)) return;
  throw new ValidationError(`the request ${what} does not match the schema`, {
    details: { location: what, issues: issues(validate.errors) },
  });
}

const shared = new Ajv2020({ allErrors: true, strict: true, coerceTypes: false });
const compiled = new WeakMap<object, ValidateFunction>();

/** Validates `value` against `schema` (compiled once per schema object), as a request body. */
export function assertMatches(schema: object, value: unknown): void {
  let validate = compiled.get(schema);
  if (validate === undefined) {
    validate = shared.compile(schema);
    compiled.set(schema, validate);
  }
  assertValid(validate, value, "body");
}
