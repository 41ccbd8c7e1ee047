/**
 * The tenant's provider API keys (LLM, STT, TTS, embeddings), stored sealed in its own database
 * (`provider_keys`): set and delete them, list which are configured. Keys are write-only: no
 * reply ever carries one; workers read them decrypted through `job-context` only. Every change
 * is written to the platform audit log (the provider's name, never the key).
 */
import { InvalidArgumentError } from "../errors.ts";
import { actorField, objectBody, onlyFields, stringField } from "../platform/op_input.ts";
import type { TenantStore } from "../store/index.ts";
import type { AuditWriter } from "./agent_ops.ts";

export const ProviderKeyOps = {
  listProviderKeys: "provider-keys-list",
  setProviderKey: "provider-keys-set",
  deleteProviderKey: "provider-keys-delete",
} as const;

export const PROVIDER_NAME_PATTERN = /^[a-z][a-z0-9_-]{0,63}$/;

/** What the API shows of a key: that it is there, and when it changed. */
export interface ProviderKeyView {
  provider: string;
  configured: true;
  updated_at: string;
}

export interface ProviderKeyOpContext {
  tenant: string;
  store: () => Promise<TenantStore>;
  audit?: AuditWriter | undefined;
}

/** Runs one provider-key operation, or returns undefined when `op` is not one. */
export function handleProviderKeyOp(
  op: string,
  body: unknown,
  ctx: ProviderKeyOpContext,
): Promise<unknown> | undefined {
  switch (op) {
    case ProviderKeyOps.listProviderKeys:
      return list(ctx);
    case ProviderKeyOps.setProviderKey:
      return set(objectBody(op, body), ctx);
    case ProviderKeyOps.deleteProviderKey:
      return remove(objectBody(op, body), ctx);
    default:
      return undefined;
  }
}

async function list(ctx: ProviderKeyOpContext): Promise<{ provider_keys: ProviderKeyView[] }> {
  const infos = await (await ctx.store()).listProviderKeys();
  return {
    provider_keys: infos
      .map((i) => ({
        provider: i.provider,
        configured: true as const,
        updated_at: i.updatedAt.toISOString(),
      }))
      .sort((a, b) => a.provider.localeCompare(b.provider)),
  };
}

async function set(
  body: Readonly<Record<string, unknown>>,
  ctx: ProviderKeyOpContext,
): Promise<ProviderKeyView> {
  const op = ProviderKeyOps.setProviderKey;
  onlyFields(op, body, ["actor", "provider", "api_key"]);
  const actor = actorField(op, body);
  const provider = stringField(op, body, "provider", { max: 64, pattern: PROVIDER_NAME_PATTERN });
  const key = body["api_key"];
  if (typeof key !== "string" || key.length < 8 || key.length > 4096 || /\s/.test(key)) {
    // The message never repeats the value.
    throw new InvalidArgumentError(`${op}: "api_key" must be 8 to 4096 characters without whitespace`, {
      details: { field: "api_key" },
    });
  }
  const store = await ctx.store();
  await store.setProviderKey(provider, key);
  await ctx.audit?.({
    clientId: ctx.tenant,
    actor,
    action: "provider_key.set",
    target: provider,
    details: { provider },
  });
  const info = (await store.listProviderKeys()).find((i) => i.provider === provider);
  return { provider, configured: true, updated_at: (info?.updatedAt ?? new Date()).toISOString() };
}

async function remove(
  body: Readonly<Record<string, unknown>>,
  ctx: ProviderKeyOpContext,
): Promise<{ provider: string; deleted: boolean }> {
  const op = ProviderKeyOps.deleteProviderKey;
  onlyFields(op, body, ["actor", "provider"]);
  const actor = actorField(op, body);
  const provider = stringField(op, body, "provider", { max: 64, pattern: PROVIDER_NAME_PATTERN });
  const deleted = await (await ctx.store()).deleteProviderKey(provider);
  if (deleted) {
    await ctx.audit?.({
      clientId: ctx.tenant,
      actor,
      action: "provider_key.delete",
      target: provider,
      details: { provider },
    });
  }
  return { provider, deleted };
}
