-- Sample of a project's _supabase.sql: the internal database, owned by the image's superuser.
\set pguser `echo "$POSTGRES_USER"`

create database _supabase with owner :pguser;
