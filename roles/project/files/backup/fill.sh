# Replaces the content of the volume at /to, in a one-shot container with no network: with
# FILL_FROM=volume a copy of the volume at /from, with FILL_FROM=tar the archive /from/$FILL_TAR.
set -euo pipefail
find /to -mindepth 1 -delete
case "$FILL_FROM" in
    volume) cp -a /from/. /to/ ;;
    tar) tar -xpf "/from/$FILL_TAR" -C /to ;;
    *) echo "unknown FILL_FROM" >&2; exit 2 ;;
esac
echo "done"
