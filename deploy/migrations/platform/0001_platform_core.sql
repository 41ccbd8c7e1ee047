-- Platform database: tenants (clients), their sealed credentials, API keys and the audit log.
-- Idempotent: every statement can run again on a database that already has it.

create table if not exists clients (
  id uuid primary key default gen_random_uuid(),
  slug text not null,
  name text not null,
  status text not null default 'active',
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint clients_slug_key unique (slug),
  constraint clients_status_check check (status in ('active', 'suspended', 'disabled'))
);

-- One row per (client, field); `ciphertext` is an `sfenc:v1:` envelope (AES-256-GCM, data key
-- wrapped by the master key `key_id`), bound to the client id and field as associated data.
create table if not exists client_secrets (
  client_id uuid not null references clients (id) on delete cascade,
  field text not null,
  key_id text not null,
  ciphertext text not null,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  primary key (client_id, field)
);
create index if not exists client_secrets_key_id_idx on client_secrets (key_id);

-- Only the SHA-256 of a key and its display prefix (`sk_` + 8 characters) are stored.
create table if not exists api_keys (
  id uuid primary key default gen_random_uuid(),
  client_id uuid not null references clients (id) on delete cascade,
  name text not null default '',
  key_prefix text not null,
  key_hash text not null,
  scopes text[] not null default '{}',
  site_url text,
  created_at timestamptz not null default now(),
  last_used_at timestamptz,
  expires_at timestamptz,
  revoked_at timestamptz,
  constraint api_keys_key_hash_key unique (key_hash)
);
create index if not exists api_keys_key_prefix_idx on api_keys (key_prefix);
create index if not exists api_keys_client_id_idx on api_keys (client_id);

create table if not exists audit_log (
  id bigint generated always as identity primary key,
  client_id uuid references clients (id) on delete set null,
  actor text not null,
  action text not null,
  target text,
  details jsonb not null default '{}'::jsonb,
  created_at timestamptz not null default now()
);
create index if not exists audit_log_client_id_idx on audit_log (client_id, id desc);
