-- Tenant database: the schema existing tenant databases already have (SEED_CONTRACT.md: same
-- table, column and function names) plus our additions. Attaching an existing database runs
-- this too: `create ... if not exists` and `add column if not exists` only add what is
-- missing; nothing is renamed, retyped or dropped. Vector columns, their indexes and the two
-- RPC functions are in 0003 (they need the `vector` extension).

create table if not exists agents (
  id uuid primary key default gen_random_uuid(),
  slug text not null unique,
  name text not null,
  description text,
  system_prompt text,
  agent_image text,
  voice_settings jsonb not null default '{}'::jsonb,
  webhooks jsonb not null default '{}'::jsonb,
  tools_config jsonb not null default '{}'::jsonb,
  enabled boolean not null default true,
  show_citations boolean not null default true,
  rag_results_limit integer not null default 5,
  model text,
  context_retention_minutes integer not null default 30,
  max_context_messages integer not null default 50,
  text_chat_enabled boolean not null default true,
  voice_chat_enabled boolean not null default true,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
alter table agents
  add column if not exists description text,
  add column if not exists system_prompt text,
  add column if not exists agent_image text,
  add column if not exists voice_settings jsonb default '{}'::jsonb,
  add column if not exists webhooks jsonb default '{}'::jsonb,
  add column if not exists tools_config jsonb default '{}'::jsonb,
  add column if not exists enabled boolean default true,
  add column if not exists show_citations boolean default true,
  add column if not exists rag_results_limit integer default 5,
  add column if not exists model text,
  add column if not exists context_retention_minutes integer default 30,
  add column if not exists max_context_messages integer default 50,
  add column if not exists text_chat_enabled boolean default true,
  add column if not exists voice_chat_enabled boolean default true,
  add column if not exists created_at timestamptz default now(),
  add column if not exists updated_at timestamptz default now();

create table if not exists conversations (
  id uuid primary key default gen_random_uuid(),
  session_id text,
  agent_id uuid references agents (id) on delete set null,
  user_id uuid,
  channel text not null default 'text',
  metadata jsonb not null default '{}'::jsonb,
  created_at timestamptz not null default now()
);
alter table conversations
  add column if not exists session_id text,
  add column if not exists agent_id uuid,
  add column if not exists user_id uuid,
  add column if not exists channel text default 'text',
  add column if not exists metadata jsonb default '{}'::jsonb,
  add column if not exists created_at timestamptz default now();
create index if not exists conversations_agent_user_idx on conversations (agent_id, user_id, created_at desc);
create index if not exists conversations_session_idx on conversations (session_id);

-- One user row and one assistant row per turn, sharing `turn_id`.
create table if not exists conversation_transcripts (
  id uuid primary key default gen_random_uuid(),
  conversation_id uuid not null references conversations (id) on delete cascade,
  session_id text,
  agent_id uuid references agents (id) on delete set null,
  user_id uuid,
  role text not null,
  content text not null default '',
  turn_id uuid,
  citations jsonb not null default '[]'::jsonb,
  metadata jsonb not null default '{}'::jsonb,
  source text,
  sequence integer,
  user_message text,
  assistant_message text,
  created_at timestamptz not null default now()
);
alter table conversation_transcripts
  add column if not exists session_id text,
  add column if not exists agent_id uuid,
  add column if not exists user_id uuid,
  add column if not exists turn_id uuid,
  add column if not exists citations jsonb default '[]'::jsonb,
  add column if not exists metadata jsonb default '{}'::jsonb,
  add column if not exists source text,
  add column if not exists sequence integer,
  add column if not exists user_message text,
  add column if not exists assistant_message text,
  add column if not exists created_at timestamptz default now();
create index if not exists conversation_transcripts_conversation_idx
  on conversation_transcripts (conversation_id, sequence, created_at);
create index if not exists conversation_transcripts_agent_user_idx on conversation_transcripts (agent_id, user_id);
create index if not exists conversation_transcripts_turn_idx on conversation_transcripts (turn_id);

create table if not exists documents (
  id uuid primary key default gen_random_uuid(),
  title text not null default '',
  file_name text,
  file_type text,
  content text,
  status text not null default 'pending',
  chunk_count integer not null default 0,
  metadata jsonb not null default '{}'::jsonb,
  created_at timestamptz not null default now()
);
alter table documents
  add column if not exists file_name text,
  add column if not exists file_type text,
  add column if not exists content text,
  add column if not exists status text default 'pending',
  add column if not exists chunk_count integer default 0,
  add column if not exists metadata jsonb default '{}'::jsonb,
  add column if not exists created_at timestamptz default now();

create table if not exists document_chunks (
  id uuid primary key default gen_random_uuid(),
  document_id uuid not null references documents (id) on delete cascade,
  chunk_index integer not null,
  content text not null,
  chunk_metadata jsonb not null default '{}'::jsonb,
  document_title text,
  document_source_url text,
  constraint document_chunks_document_chunk_key unique (document_id, chunk_index)
);
alter table document_chunks
  add column if not exists chunk_metadata jsonb default '{}'::jsonb,
  add column if not exists document_title text,
  add column if not exists document_source_url text;
create index if not exists document_chunks_document_idx on document_chunks (document_id);

-- A document reaches an agent only through an enabled row here.
create table if not exists agent_documents (
  id uuid primary key default gen_random_uuid(),
  agent_id uuid not null references agents (id) on delete cascade,
  document_id uuid not null references documents (id) on delete cascade,
  access_type text not null default 'read',
  enabled boolean not null default true,
  created_at timestamptz not null default now(),
  constraint agent_documents_agent_document_key unique (agent_id, document_id)
);
alter table agent_documents
  add column if not exists access_type text default 'read',
  add column if not exists enabled boolean default true;
create index if not exists agent_documents_document_idx on agent_documents (document_id);

-- Our addition: the tenant's provider API keys, sealed with the platform's key envelope
-- (`sfenc:v1:` text, bound to the tenant id and `provider_keys:<provider>`).
create table if not exists provider_keys (
  provider text primary key,
  key_id text not null,
  ciphertext text not null,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
create index if not exists provider_keys_key_id_idx on provider_keys (key_id);

-- Row-level security as Supabase projects expect it: RLS on every table, the service role may
-- do everything (on Supabase it also bypasses RLS), anon and authenticated keep Supabase's
-- default table grants but match no policy, so they see nothing. Provider keys are not even
-- granted to them. Roles that do not exist (see 0001) get no grants or policies.
do $$
declare
  t text;
  r text;
  roles text[];
begin
  select coalesce(array_agg(rolname::text order by rolname), '{}') into roles
  from pg_catalog.pg_roles where rolname in ('anon', 'authenticated', 'service_role');
  foreach r in array roles loop
    execute format('grant usage on schema %I to %I', current_schema(), r);
  end loop;
  foreach t in array array[
    'agents', 'conversations', 'conversation_transcripts', 'documents',
    'document_chunks', 'agent_documents', 'provider_keys'
  ] loop
    execute format('alter table %I enable row level security', t);
    foreach r in array roles loop
      if r = 'service_role' then
        if not exists (
          select 1 from pg_catalog.pg_policies
          where schemaname = current_schema() and tablename = t and policyname = 'service_role_all'
        ) then
          execute format(
            'create policy service_role_all on %I as permissive for all to service_role using (true) with check (true)',
            t
          );
        end if;
        execute format('grant select, insert, update, delete on table %I to service_role', t);
      elsif t = 'provider_keys' then
        execute format('revoke all on table %I from %I', t, r);
      else
        execute format('grant select, insert, update, delete on table %I to %I', t, r);
      end if;
    end loop;
  end loop;
end
$$;
