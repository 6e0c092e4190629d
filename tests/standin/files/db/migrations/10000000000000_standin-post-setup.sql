-- Stand-in for the supabase/postgres image's migrations: postgres keeps broad rights but stops being
-- a superuser (supabase_admin stays the only superuser), as upstream's post-setup does.
\set ON_ERROR_STOP on
alter role postgres nosuperuser createdb createrole login replication bypassrls;
grant all on schema public to postgres;
grant all on schema extensions to postgres;
grant anon, authenticated, service_role to postgres;
grant all on database postgres to postgres;
