/**
 * The tenant operations the CLI calls. Written out (type-checked against the tenant actor's
 * `TenantOps`) rather than imported, so the CLI does not load the stores and their drivers.
 */
import type { TenantOps } from "../../tenant/tenant_actor.ts";

type TenantOpName = (typeof TenantOps)[keyof typeof TenantOps];

export const TenantOpNames = {
  listAgents: "agents-list",
  getAgent: "agent-get",
  createAgent: "agents-create",
  updateAgent: "agents-update",
  trigger: "trigger",
} as const satisfies Record<string, TenantOpName>;
