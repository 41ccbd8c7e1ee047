-- The roles every Supabase project has. Plain PostgreSQL and PGlite lack them; the row-level
-- security policies of the next migration are written for them. Roles are cluster-wide, so
-- another database on the same server may create them concurrently. A connection without
-- CREATEROLE cannot create them: then RLS is still enabled on every table (only the owner, the
-- platform, reads the tables) and the policies for the missing roles are left out.
do $$
declare
  r text;
begin
  foreach r in array array['anon', 'authenticated', 'service_role'] loop
    if not exists (select 1 from pg_catalog.pg_roles where rolname = r) then
      begin
        execute format('create role %I nologin noinherit', r);
      exception
        when duplicate_object or unique_violation then
          raise notice 'role % was created concurrently', r;
        when insufficient_privilege then
          raise warning 'role % does not exist and % may not create it: its RLS policies are skipped', r, current_user;
      end;
    end if;
  end loop;
end
$$;
