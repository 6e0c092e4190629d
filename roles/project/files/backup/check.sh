# Checks that the backup in /backup (read-only) restores: the base backup's archives are whole, every
# database dump reads back with pg_restore --list, the storage archive matches its SHA-256 and reads
# back. Prints "check: <name>: ok|FAILED <why>" per check; exit 0 even when a check fails (the
# manifest records the verdict), 1 only when the checks themselves cannot run.
set -uo pipefail
cd /backup || exit 1
report() { if [ "$2" = 0 ]; then echo "check: $1: ok"; else echo "check: $1: FAILED $3"; fi; }

for archive in base/base.tar.gz base/pg_wal.tar.gz; do
    gzip -t "$archive" 2>/dev/null && tar -tzf "$archive" > /dev/null 2>&1
    report "$archive" $? "is not a readable tar.gz archive"
done
while IFS="$(printf '\t')" read -r oid name; do
    pg_restore --list "db/$oid.dump" > /dev/null 2>&1
    report "db/$oid.dump" $? "(database $name) does not read back with pg_restore --list"
done < db/databases.tsv
sha256sum --check --status storage.tar.sha256 2>/dev/null && tar -tf storage.tar > /dev/null 2>&1
report storage.tar $? "does not match its SHA-256 or does not read back"
tar -tf functions.tar > /dev/null 2>&1
report functions.tar $? "does not read back"
exit 0
