/**
 * The route table: OpenAPI-style patterns (`/api/v2/clients/{id}`), static segments preferred
 * over parameters, and enough information for 404 versus 405 and for the OpenAPI document.
 */
import type { HttpMethod, RouteDefinition } from "./http_types.ts";

type Segment = { type: "static"; value: string } | { type: "param"; name: string };

interface CompiledRoute {
  definition: RouteDefinition;
  segments: readonly Segment[];
  staticCount: number;
}

export type RouteMatch =
  | { type: "found"; route: RouteDefinition; params: Record<string, string> }
  | { type: "method_not_allowed"; pattern: string; allowed: readonly HttpMethod[] }
  | { type: "not_found" };

const PARAM_RE = /^\{([A-Za-z_][A-Za-z0-9_]*)\}$/;
const STATIC_RE = /^[A-Za-z0-9._~-]+$/;

function compile(path: string): Segment[] {
  if (!path.startsWith("/")) throw new Error(`route path ${JSON.stringify(path)} must start with /`);
  if (path === "/") return [];
  return path
    .slice(1)
    .split("/")
    .map((part): Segment => {
      const param = PARAM_RE.exec(part);
      if (param?.[1] !== undefined) return { type: "param", name: param[1] };
      if (!STATIC_RE.test(part)) throw new Error(`route path ${JSON.stringify(path)} has a bad segment`);
      return { type: "static", value: part };
    });
}

function split(path: string): string[] {
  return path === "/" ? [] : path.slice(1).split("/");
}

export class Router {
  readonly #routes: CompiledRoute[] = [];
  /**
   * Routes without parameters by `METHOD path`: such a route, when it matches, is the first match
   * of the table anyway (no route of the same length has more static segments), so a lookup here
   * answers most requests without walking the table.
   */
  readonly #static = new Map<string, RouteDefinition>();

  add(definition: RouteDefinition): this {
    const segments = compile(definition.path);
    const names = segments.flatMap((s) => (s.type === "param" ? [s.name] : []));
    if (new Set(names).size !== names.length) {
      throw new Error(`route ${definition.path} repeats a parameter name`);
    }
    for (const r of this.#routes) {
      if (r.definition.method === definition.method && r.definition.path === definition.path) {
        throw new Error(`route ${definition.method} ${definition.path} is registered twice`);
      }
      if (r.definition.operationId === definition.operationId) {
        throw new Error(`operationId ${definition.operationId} is used twice`);
      }
    }
    const staticCount = segments.filter((s) => s.type === "static").length;
    this.#routes.push({ definition, segments, staticCount });
    if (staticCount === segments.length)
      this.#static.set(`${definition.method} ${definition.path}`, definition);
    // Most specific first, so the first match wins.
    this.#routes.sort((a, b) => b.staticCount - a.staticCount);
    return this;
  }

  /** Every registered route, in registration-independent order (most specific first). */
  routes(): readonly RouteDefinition[] {
    return this.#routes.map((r) => r.definition);
  }

  /** The path's methods and pattern, for preflight and 405 answers. */
  methodsFor(path: string): { pattern: string; methods: HttpMethod[] } | undefined {
    const parts = split(path);
    let pattern: string | undefined;
    const methods: HttpMethod[] = [];
    for (const r of this.#routes) {
      if (pattern !== undefined && r.definition.path !== pattern) continue;
      if (matchSegments(r.segments, parts) === undefined) continue;
      pattern = r.definition.path;
      methods.push(r.definition.method);
    }
    if (pattern === undefined) return undefined;
    if (methods.includes("GET")) methods.push("HEAD");
    return { pattern, methods };
  }

  /** HEAD is answered by the GET route. Params come back raw (still percent-encoded). */
  match(method: HttpMethod, path: string): RouteMatch {
    const found = this.find(method, path);
    if (found !== undefined) return found;
    const known = this.methodsFor(path);
    if (known === undefined) return { type: "not_found" };
    return { type: "method_not_allowed", pattern: known.pattern, allowed: known.methods };
  }

  /** The route `match` finds, without telling 404 from 405 when there is none. */
  find(method: HttpMethod, path: string): Extract<RouteMatch, { type: "found" }> | undefined {
    const wanted = method === "HEAD" ? "GET" : method;
    const fixed = this.#static.get(`${wanted} ${path}`);
    if (fixed !== undefined) return { type: "found", route: fixed, params: {} };
    const parts = split(path);
    for (const r of this.#routes) {
      if (r.definition.method !== wanted) continue;
      const params = matchSegments(r.segments, parts);
      if (params !== undefined) return { type: "found", route: r.definition, params };
    }
    return undefined;
  }
}

function matchSegments(
  segments: readonly Segment[],
  parts: readonly string[],
): Record<string, string> | undefined {
  if (segments.length !== parts.length) return undefined;
  const params: Record<string, string> = {};
  for (let i = 0; i < segments.length; i += 1) {
    const seg = segments[i];
    const part = parts[i];
    if (seg === undefined || part === undefined) return undefined;
    if (seg.type === "static") {
      if (seg.value !== part) return undefined;
    } else {
      if (part === "") return undefined;
      params[seg.name] = part;
    }
  }
  return params;
}
