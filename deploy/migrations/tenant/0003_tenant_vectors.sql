-- sf:requires-extension vector
-- Embedding columns, their HNSW cosine indexes and the two RPC functions of SEED_CONTRACT.md.
-- {{embedding_dimension}} is filled in at provisioning (default 1024). On an attached database
-- that already has the columns or the functions, they are kept as they are.

create extension if not exists vector with schema public;

alter table document_chunks add column if not exists embeddings vector({{embedding_dimension}});
alter table conversation_transcripts add column if not exists embeddings vector({{embedding_dimension}});

-- HNSW (cosine) on each embeddings column, unless one already exists under any name, and only
-- when the column has a fixed dimension (HNSW requires one).
do $$
declare
  t text;
begin
  foreach t in array array['document_chunks', 'conversation_transcripts'] loop
    if exists (
      select 1 from pg_catalog.pg_attribute a
      where a.attrelid = format('%I.%I', current_schema(), t)::regclass
        and a.attname = 'embeddings' and a.atttypmod > 0 and not a.attisdropped
    ) and not exists (
      select 1
      from pg_catalog.pg_index i
      join pg_catalog.pg_class ic on ic.oid = i.indexrelid
      join pg_catalog.pg_am am on am.oid = ic.relam
      join pg_catalog.pg_attribute a on a.attrelid = i.indrelid and a.attnum = any (i.indkey)
      where i.indrelid = format('%I.%I', current_schema(), t)::regclass
        and am.amname = 'hnsw' and a.attname = 'embeddings'
    ) then
      execute format('create index %I on %I using hnsw (embeddings vector_cosine_ops)', t || '_embeddings_hnsw_idx', t);
    end if;
  end loop;
end
$$;

-- The RPC functions, created only when the schema has no function of that name (an attached
-- database keeps its own). With pgvector >= 0.8 they use iterative index scans, so that the
-- agent/user filters cannot starve a top-k query, and re-sort the candidates.
do $do$
declare
  iterative text := '';
begin
  if (select string_to_array(extversion, '.')::int[] from pg_catalog.pg_extension where extname = 'vector')
     >= array[0, 8] then
    iterative := 'set hnsw.iterative_scan to ''relaxed_order''';
  end if;

  if not exists (
    select 1 from pg_catalog.pg_proc p join pg_catalog.pg_namespace n on n.oid = p.pronamespace
    where n.nspname = current_schema() and p.proname = 'match_documents'
  ) then
    -- plpgsql: the agent's documents are looked up first, then the chunk scan is planned with
    -- the actual array and vector (force_custom_plan), so the planner picks the HNSW index when
    -- the agent's chunks are many and an exact scan when they are few.
    execute format($fn$
      create function match_documents(
        p_query_embedding vector,
        p_agent_slug text,
        p_match_threshold double precision default 0.0,
        p_match_count integer default 5
      )
      returns table (
        id uuid,
        document_id uuid,
        title text,
        content text,
        chunk_index integer,
        source_url text,
        source_type text,
        similarity double precision,
        document_title text
      )
      language plpgsql stable
      set search_path from current
      set plan_cache_mode to 'force_custom_plan'
      %s
      as $body$
      #variable_conflict use_column
      declare
        doc_ids uuid[];
      begin
        select array_agg(ad.document_id) into doc_ids
        from agent_documents ad
        join agents a on a.id = ad.agent_id
        where a.slug = p_agent_slug and ad.enabled;
        if doc_ids is null then
          return;
        end if;
        return query
          with candidates as materialized (
            select dc.id as chunk_id, dc.document_id as doc_id, dc.content as chunk_content,
                   dc.chunk_index as chunk_no, dc.document_title as chunk_title,
                   dc.document_source_url as url, dc.embeddings <=> p_query_embedding as distance
            from document_chunks dc
            where dc.document_id = any (doc_ids) and dc.embeddings is not null
            order by dc.embeddings <=> p_query_embedding
            limit greatest(coalesce(p_match_count, 5), 0)
          )
          -- The threshold applies to the top-k (the rows above it are a prefix of that order).
          select c.chunk_id, c.doc_id, coalesce(c.chunk_title, d.title), c.chunk_content, c.chunk_no, c.url,
                 coalesce(d.metadata ->> 'source_type', d.file_type),
                 (1 - c.distance)::double precision, d.title
          from candidates c
          join documents d on d.id = c.doc_id
          where p_match_threshold is null or 1 - c.distance >= p_match_threshold
          order by c.distance;
      end
      $body$
    $fn$, iterative);
  end if;

  if not exists (
    select 1 from pg_catalog.pg_proc p join pg_catalog.pg_namespace n on n.oid = p.pronamespace
    where n.nspname = current_schema() and p.proname = 'match_conversation_transcripts_secure'
  ) then
    execute format($fn$
      create function match_conversation_transcripts_secure(
        query_embeddings vector,
        agent_slug_param text,
        user_id_param uuid,
        match_count integer default 5
      )
      returns table (
        conversation_id uuid,
        user_message text,
        agent_response text,
        similarity double precision,
        created_at timestamptz
      )
      language sql stable
      set search_path from current
      %s
      as $body$
        with candidates as materialized (
          select t.conversation_id, t.turn_id, t.role, t.content, t.user_message, t.assistant_message,
                 t.created_at, t.embeddings <=> query_embeddings as distance
          from conversation_transcripts t
          where t.embeddings is not null
            and t.user_id = user_id_param
            and t.agent_id in (select a.id from agents a where a.slug = agent_slug_param)
          order by t.embeddings <=> query_embeddings
          limit greatest(coalesce(match_count, 5), 0)
        )
        select c.conversation_id,
               coalesce(
                 c.user_message,
                 case when c.role = 'user' then c.content end,
                 (select u.content from conversation_transcripts u
                  where u.conversation_id = c.conversation_id and u.turn_id = c.turn_id
                    and u.user_id = user_id_param and u.role = 'user'
                  order by u.created_at limit 1)
               ) as user_message,
               coalesce(
                 c.assistant_message,
                 case when c.role = 'assistant' then c.content end,
                 (select r.content from conversation_transcripts r
                  where r.conversation_id = c.conversation_id and r.turn_id = c.turn_id
                    and r.user_id = user_id_param and r.role = 'assistant'
                  order by r.created_at limit 1)
               ) as agent_response,
               (1 - c.distance)::double precision as similarity,
               c.created_at
        from candidates c
        order by c.distance
      $body$
    $fn$, iterative);
  end if;
end
$do$;
