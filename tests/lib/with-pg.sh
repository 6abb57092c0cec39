#!/usr/bin/env bash
# with-pg.sh CMD [ARGS...] — run CMD with a throwaway PostgreSQL cluster:
# PG_CONNINFO (and PGHOST etc.) point at it; it is stopped and removed after.
set -euo pipefail
. "$(dirname "$0")/pgcluster.sh"
dir=$(mktemp -d /tmp/raced-pg.XXXXXX)
trap 'pg_cluster_stop || true; rm -rf "$dir"' EXIT
pg_cluster_init "$dir"
pg_cluster_start
export PG_DIR PG_BIN
"$@"
