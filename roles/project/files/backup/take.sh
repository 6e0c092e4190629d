# Takes a backup into /backup (the staging directory), in a one-shot container from the project's
# own Postgres image on the project's network. Environment: PGHOST, PGPORT, PGUSER, PGPASSWORD
# (the project's superuser), BACKUP_LABEL. Mounts: /backup (rw), /storage, /functions, /dbconfig (ro).
# Prints one "step:" line per step, never a secret.
set -euo pipefail
umask 077
cd /backup
mkdir -p base db

echo "step: base backup (pg_basebackup, tar, WAL streamed alongside)"
pg_basebackup --pgdata=base --format=tar --gzip --wal-method=stream --checkpoint=fast \
    --no-password --label="$BACKUP_LABEL" --manifest-checksums=SHA256
date -u +%s > base/end_time

echo "step: roles and other globals (pg_dumpall --globals-only)"
pg_dumpall --globals-only --no-password --file=db/globals.sql

psql -XtA --no-password -F "$(printf '\t')" -d postgres \
    -c "select oid, datname from pg_database where datallowconn and not datistemplate order by oid" > db/databases.tsv
while IFS="$(printf '\t')" read -r oid name; do
    echo "step: database $name (pg_dump -Fc)"
    PGDATABASE="$name" pg_dump --format=custom --no-password --file="db/$oid.dump"
done < db/databases.tsv

echo "step: storage objects (tar of the storage volume, SHA-256)"
tar -C /storage -cf storage.tar .
sha256sum storage.tar > storage.tar.sha256

echo "step: edge functions (tar)"
tar -C /functions -cf functions.tar .

echo "step: database configuration (for the encrypted settings archive)"
tar -C /dbconfig -cf dbconfig.tar .
echo "done"
