-- Sample of a project's roles.sql: service role passwords from the environment, as upstream's does.
\set pgpass `echo "$PGPASSWORD"`

alter user supabase_admin with password :'pgpass';
alter user authenticator with password :'pgpass';
alter user pgbouncer with password :'pgpass';
alter user supabase_auth_admin with password :'pgpass';
alter user supabase_storage_admin with password :'pgpass';
