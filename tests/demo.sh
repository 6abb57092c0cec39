#!/usr/bin/env bash
# demo.sh — a real import, end to end, on this machine: installs what is
# missing (Debian 12, as root), builds raced, starts a throwaway PostgreSQL
# cluster and the bundled fixture provider on loopback, runs raced, starts an
# import with racectl, shows its stats and a sample of the stored data, and
# cleans everything up.
#
#   tests/demo.sh [FIXTURE OPTIONS...]   e.g. tests/demo.sh --races 200 --latency-ms 20
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
cd "$src"
.ci/install-deps
build=${DEMO_BUILD:-build-demo}
[ -f "$build/build.ninja" ] || meson setup "$build" >/dev/null
meson compile -C "$build" >/dev/null

export RACED=$src/$build/daemon/raced RACECTL=$src/$build/ctl/racectl
export FIXTURE=$src/$build/tests/fixture/fixture-provider TESTS_DIR=$src/tests
. "$TESTS_DIR/lib/harness.sh"

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "a throwaway PostgreSQL cluster in $T/pg"
pg_start
say "the fixture provider (a REST API of races, entries and athletes)"
fixture_start --seed 1 --races 60 --entries-per-race 40 --athletes 400 --page-size 25 --latency-ms 5 "$@"
echo "serving $FIXTURE_URL: $(fixture_get /_dataset)"
write_config
say "raced --config $T/raced.conf"
raced_start
ctl version
wait_for "raced to connect to the database" 20 ctl health
say "racectl start-import --wait"
ctl start-import --wait
say "racectl stats"
ctl stats
say "racectl status"
ctl status
say "what landed in PostgreSQL"
"$PG_BIN/psql" -X -P pager=off -c "select (select count(*) from races) races, (select count(*) from entries) entries, (select count(*) from athletes) athletes"
"$PG_BIN/psql" -X -P pager=off -c "select r.key race, r.payload->>'name' name, r.payload->>'city' city, count(e.key) entries
	from races r left join entries e on e.parent_key = r.key group by 1, 2, 3 order by entries desc, race limit 5"
"$PG_BIN/psql" -X -P pager=off -c "select a.payload->>'name' athlete, a.payload->>'country' country, count(*) races_entered
	from entries e join athletes a on a.key = e.payload->>'athlete_id' group by 1, 2 order by 3 desc, 1 limit 5"
say "racectl health"
ctl health || true
raced_stop
say "done; the cluster, the provider and raced are stopped and $T is removed"
