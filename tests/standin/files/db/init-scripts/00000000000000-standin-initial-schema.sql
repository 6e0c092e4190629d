-- Stand-in for the roles and schemas that the supabase/postgres image creates before the project's
-- own init scripts run (they ALTER these roles and GRANT to them). Runs as postgres, a superuser here.
\set ON_ERROR_STOP on

create publication supabase_realtime;

-- API roles: PostgREST switches from authenticator to one of these per request.
create role anon nologin noinherit;
create role authenticated nologin noinherit;
create role service_role nologin noinherit bypassrls;
create role authenticator login noinherit;
grant anon, authenticated, service_role to authenticator;

-- Service roles; roles.sql sets their passwords.
create role pgbouncer login;
create role supabase_auth_admin noinherit createrole login noreplication;
create role supabase_storage_admin noinherit createrole login noreplication;
create role supabase_replication_admin login replication;
create role supabase_read_only_user bypassrls;
create role supabase_realtime_admin noinherit nologin noreplication;
create role dashboard_user nosuperuser createdb createrole replication;
grant supabase_auth_admin, supabase_storage_admin to postgres;

create schema if not exists extensions;
create extension if not exists "uuid-ossp" with schema extensions;
create extension if not exists pgcrypto with schema extensions;

grant usage on schema public, extensions to postgres, anon, authenticated, service_role;
alter default privileges in schema public grant all on tables to postgres, anon, authenticated, service_role;
alter default privileges in schema public grant all on functions to postgres, anon, authenticated, service_role;
alter default privileges in schema public grant all on sequences to postgres, anon, authenticated, service_role;
alter default privileges for role supabase_admin in schema public
    grant all on tables to postgres, anon, authenticated, service_role;

create schema if not exists auth authorization supabase_auth_admin;
grant usage on schema auth to postgres, anon, authenticated, service_role, dashboard_user;
create schema if not exists storage authorization supabase_storage_admin;
grant usage on schema storage to postgres, anon, authenticated, service_role, dashboard_user;
create schema if not exists graphql_public;
grant usage on schema graphql_public to postgres, anon, authenticated, service_role;
create schema if not exists realtime;
grant usage on schema realtime to postgres, anon, authenticated, service_role;

-- The pooler looks users up through this function (its auth_query).
create schema if not exists pgbouncer authorization pgbouncer;
create function pgbouncer.get_auth(p_usename text) returns table(username text, password text)
language sql security definer set search_path = '' as $$
    select usename::text, passwd::text from pg_catalog.pg_shadow where usename = p_usename;
$$;
revoke all on function pgbouncer.get_auth(text) from public;
grant execute on function pgbouncer.get_auth(text) to pgbouncer;
