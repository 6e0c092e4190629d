#!/bin/bash
# Stand-in for the kong image's /docker-entrypoint.sh: `kong docker-start` runs the gateway.
set -e
if [[ "$1" == "kong" ]]; then
    shift
    exec /usr/local/bin/kong "$@"
fi
exec "$@"
