-- Sample of the parts of a project's webhooks.sql that need the image: pg_net with its signatures,
-- an event trigger (superuser only), and the supabase_functions_admin role.
begin;
  create extension if not exists pg_net schema extensions;
  create schema supabase_functions authorization supabase_admin;
  grant usage on schema supabase_functions to postgres, anon, authenticated, service_role;
  do $$
  begin
    if not exists (select 1 from pg_roles where rolname = 'supabase_functions_admin') then
      create user supabase_functions_admin noinherit createrole login noreplication;
    end if;
  end $$;
  grant usage on schema net to supabase_functions_admin, postgres, anon, authenticated, service_role;
  alter function net.http_get(url text, params jsonb, headers jsonb, timeout_milliseconds integer) security definer;
  alter function net.http_post(url text, body jsonb, params jsonb, headers jsonb, timeout_milliseconds integer)
    set search_path = net;
  create function extensions.standin_sample_trigger() returns event_trigger language plpgsql as $$
  begin
    raise notice 'extension created';
  end $$;
  create event trigger standin_sample on ddl_command_end when tag in ('CREATE EXTENSION')
    execute procedure extensions.standin_sample_trigger();
commit;
