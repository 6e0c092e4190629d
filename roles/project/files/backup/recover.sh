# Recovers a database into the scratch volume at /var/lib/postgresql/data, in a one-shot container
# from the project's Postgres image with no network: unpacks the base backup in /backup, replays the
# WAL chain in /wal (when mounted) up to the target, promotes, then sets the restored project's
# passwords and JWT settings with its own rendered scripts in /scripts (roles.sql, jwt.sql, as a
# fresh database gets them). Environment: RECOVERY_TARGET (immediate | latest | time),
# RECOVERY_TARGET_TIME (UTC, YYYY-MM-DD HH:MM:SS+00), PGPASSWORD (the restored project's), JWT_EXP,
# RECOVERY_TIMEOUT (seconds), START_WAL (the base backup's first WAL segment). Prints "step:" lines and "recovered:" with the last replayed commit.
set -euo pipefail
umask 077
data=/var/lib/postgresql/data
log=/tmp/postgres.log

echo "step: unpack the base backup"
find "$data" -mindepth 1 -delete
tar -xzf /backup/base/base.tar.gz -C "$data"
mkdir -p "$data/pg_wal"
tar -xzf /backup/base/pg_wal.tar.gz -C "$data/pg_wal"
if [ -f "$data/postgresql.auto.conf" ]; then cp "$data/postgresql.auto.conf" /tmp/auto.conf; else : > /tmp/auto.conf; fi
touch "$data/recovery.signal"
# The server replays as postgres; the repository's files are root's (0600). Copy what the replay can
# need (the base backup's first segment on, and timeline histories) where postgres can read it.
if [ -d /wal ]; then
    echo "step: stage the WAL from $START_WAL on"
    mkdir -p /tmp/wal
    for file in /wal/*; do
        [ -f "$file" ] || continue
        name=${file##*/}
        case "$name" in
            *.history) ;;
            *) if [[ "$name" < "$START_WAL" ]]; then continue; fi ;;
        esac
        cp "$file" /tmp/wal/
    done
    chown -R postgres:postgres /tmp/wal
fi
{
    if [ -d /wal ]; then
        echo "restore_command = 'cp /tmp/wal/%f %p 2>/dev/null || cp /tmp/wal/%f.partial %p 2>/dev/null'"
    else
        # A backup's own point: its WAL is in pg_wal. Archive recovery still wants a restore_command
        # (PostgreSQL 15: "must specify restore_command"); one that finds nothing sends it to pg_wal.
        echo "restore_command = 'false'"
    fi
    case "$RECOVERY_TARGET" in
        immediate) echo "recovery_target = 'immediate'" ;;
        time) echo "recovery_target_time = '$RECOVERY_TARGET_TIME'" ;;
        latest) ;;
        *) echo "unknown RECOVERY_TARGET" >&2; exit 2 ;;
    esac
    echo "recovery_target_action = 'promote'"
} >> "$data/postgresql.auto.conf"
chown -R postgres:postgres "$data"
chmod 0700 "$data"

echo "step: replay the WAL (target: $RECOVERY_TARGET ${RECOVERY_TARGET_TIME:-})"
docker-entrypoint.sh postgres -c config_file=/etc/postgresql/postgresql.conf -c listen_addresses= \
    -c unix_socket_directories=/tmp > "$log" 2>&1 &
server=$!
local_psql() { psql -XtA --no-password -h /tmp -U supabase_admin -d postgres "$@"; }
state=
for _ in $(seq 1 "${RECOVERY_TIMEOUT:-1800}"); do
    if ! kill -0 "$server" 2>/dev/null; then
        echo "recovery failed: the server stopped:"
        tail -n 12 "$log"
        exit 1
    fi
    state=$(local_psql -c "select pg_is_in_recovery()" 2>/dev/null || true)
    [ "$state" = f ] && break
    sleep 1
done
if [ "$state" != f ]; then
    echo "recovery did not finish within ${RECOVERY_TIMEOUT:-1800}s:"
    tail -n 12 "$log"
    exit 1
fi
echo "recovered: $(local_psql -c "select coalesce(to_char(pg_last_xact_replay_timestamp() at time zone 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), 'none')")"

echo "step: set the project's passwords and JWT settings"
local_psql -v ON_ERROR_STOP=1 -f /scripts/roles.sql > /dev/null
local_psql -v ON_ERROR_STOP=1 -f /scripts/jwt.sql > /dev/null
printf '%s\n' '\set pgpass `echo "$PGPASSWORD"`' \
    "select format('ALTER USER postgres WITH PASSWORD %L', :'pgpass') where exists (select 1 from pg_roles where rolname = 'postgres') \\gexec" \
    | local_psql -v ON_ERROR_STOP=1 > /dev/null

echo "step: shut the recovered server down cleanly"
kill -INT "$(head -n 1 "$data/postmaster.pid")"
wait "$server" || true
cp /tmp/auto.conf "$data/postgresql.auto.conf"
chown postgres:postgres "$data/postgresql.auto.conf"
rm -f "$data/recovery.signal"
echo "done"
