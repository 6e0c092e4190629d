#!/bin/sh
# Stand-in for the supabase/postgres image's /docker-entrypoint-initdb.d/migrate.sh: the order and
# users upstream uses. init-scripts/*.sql run as postgres, migrations/*.sql as supabase_admin,
# each through psql with ON_ERROR_STOP, so the mounted scripts' \set and `backticks` work as upstream.
set -eu

psql -v ON_ERROR_STOP=1 --no-password --no-psqlrc -U supabase_admin -d postgres \
    -c "create role postgres superuser login password '$POSTGRES_PASSWORD'"

export PGDATABASE="${POSTGRES_DB:-postgres}"
export PGHOST="${POSTGRES_HOST:-localhost}"
export PGPORT="${POSTGRES_PORT:-5432}"
export PGPASSWORD="${POSTGRES_PASSWORD:-}"

dir=$(cd -- "$(dirname -- "$0")" >/dev/null 2>&1 && pwd)
for sql in "$dir"/init-scripts/*.sql; do
    [ -e "$sql" ] || continue
    echo "$0: running $sql"
    psql -v ON_ERROR_STOP=1 --no-password --no-psqlrc -U postgres -f "$sql"
done
psql -v ON_ERROR_STOP=1 --no-password --no-psqlrc -U postgres -c "alter user supabase_admin with password '$PGPASSWORD'"
for sql in "$dir"/migrations/*.sql; do
    [ -e "$sql" ] || continue
    echo "$0: running $sql"
    psql -v ON_ERROR_STOP=1 --no-password --no-psqlrc -U supabase_admin -f "$sql"
done
