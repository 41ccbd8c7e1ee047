/**
 * What an API key may do, decided by its `scopes` in one place for every route:
 *
 * - `*` grants every scope; `<area>:*` every scope of that area (`agents:*`, `documents:*`);
 * - `documents:write` also grants `documents:read`;
 * - a key with no scopes at all — the keys issued for the WordPress plugin before scopes existed —
 *   may trigger agents (`agents:trigger`: trigger-agent v1/v2, the embed stream, `/ws`) and
 *   nothing else; a key that lists any scope is held to its list.
 *
 * Admins pass every scope check.
 */
import { ForbiddenError } from "../../actors/index.ts";
import type { Principal } from "./authenticator.ts";

export const Scopes = {
  agentsTrigger: "agents:trigger",
  documentsRead: "documents:read",
  documentsWrite: "documents:write",
} as const;

export type Scope = (typeof Scopes)[keyof typeof Scopes];

/** Whether a key holding `granted` has `scope`. */
export function hasScope(granted: readonly string[], scope: Scope): boolean {
  if (granted.length === 0) return scope === Scopes.agentsTrigger;
  const area = scope.slice(0, scope.indexOf(":"));
  return (
    granted.includes("*") ||
    granted.includes(`${area}:*`) ||
    granted.includes(scope) ||
    (scope === Scopes.documentsRead && granted.includes(Scopes.documentsWrite))
  );
}

/** Throws 403 SF_ERR_FORBIDDEN (details.scope) for an API key without `scope`; admins pass. */
export function requireScope(principal: Principal, scope: Scope): void {
  if (principal.type !== "api_key") return;
  if (!hasScope(principal.scopes, scope)) {
    throw new ForbiddenError(`this API key lacks the scope ${scope}`, { details: { scope } });
  }
}
