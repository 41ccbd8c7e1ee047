-- Per-client settings that are not secret (the tenant's embedding settings, what its stored
-- vectors were embedded with, ...). Secrets stay sealed in client_secrets and provider_keys.
alter table clients add column if not exists settings jsonb not null default '{}'::jsonb;
