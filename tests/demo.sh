#!/usr/bin/env bash
# demo.sh — a real import, end to end, on this machine: installs what is
# missing (Debian 12, as root), builds raced, starts a throwaway PostgreSQL
# cluster and the bundled fixture provider on loopback, runs raced, starts an
# import with racectl, shows its stats (and its errors, if any) and a sample
# of the stored data, and cleans everything up.
#
#   tests/demo.sh [FIXTURE OPTIONS...]   e.g. tests/demo.sh --races 200 --latency-ms 20
#   tests/demo.sh --help
set -euo pipefail

# Bold headings on a terminal only: no escape codes in a log or a pipe.
if [ -t 1 ]; then bold=$'\033[1m' plain=$'\033[0m'; else bold='' plain=''; fi
say() { printf '\n%s== %s%s\n' "$bold" "$*" "$plain"; }

usage() {
	cat <<EOF
${bold}Usage: tests/demo.sh [FIXTURE OPTIONS...]${plain}
A real import end to end: installs what is missing (Debian 12, as root;
.ci/install-deps waits up to 120 s for the apt lock), builds raced into
build-demo/ (DEMO_BUILD to change), starts a throwaway PostgreSQL cluster,
the fixture provider on 127.0.0.1 and raced, runs racectl start-import
--wait, shows stats, status, the import's errors if any and a sample of
the stored rows, then removes everything it started.

Fixture options pass through to the fixture provider, e.g.
  --races N --entries-per-race N --athletes N --page-size N --latency-ms N
  --rate-503 P --broken PATH=KIND    (faults: the import ends partial)
Exit status: 0 when the import succeeded, 1 otherwise.
EOF
}
for a in "$@"; do
	case $a in -h | --help) usage; exit 0 ;; esac
done

src=$(cd "$(dirname "$0")/.." && pwd)
cd "$src"
.ci/install-deps
build=${DEMO_BUILD:-build-demo}
[ -f "$build/build.ninja" ] || meson setup "$build" >/dev/null
meson compile -C "$build" >/dev/null

export RACED=$src/$build/daemon/raced RACECTL=$src/$build/ctl/racectl
export FIXTURE=$src/$build/tests/fixture/fixture-provider TESTS_DIR=$src/tests
. "$TESTS_DIR/lib/harness.sh"
psql_demo() { "$PG_BIN/psql" -X -P pager=off -c "$1"; }

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
# A partial or failed import is part of the demo too: show what happened.
import_rc=0
ctl start-import --wait || import_rc=$?
say "racectl stats"
ctl stats
say "racectl status"
ctl status
if [ "$(sql 'select count(*) from import_errors')" != 0 ]; then
	say "the import's errors, by stage and cause (import_errors)"
	psql_demo "select stage, coalesce(http_status::text, '-') http, message, count(*) errors, min(url) first_url
		from import_errors group by 1, 2, 3 order by errors desc, 1 limit 20"
fi
say "what landed in PostgreSQL"
psql_demo "select (select count(*) from races) races, (select count(*) from entries) entries, (select count(*) from athletes) athletes"
psql_demo "select r.key race, r.payload->>'name' name, r.payload->>'city' city, count(e.key) entries
	from races r left join entries e on e.parent_key = r.key group by 1, 2, 3 order by entries desc, race limit 5"
psql_demo "select a.payload->>'name' athlete, a.payload->>'country' country, count(*) races_entered
	from entries e join athletes a on a.key = e.payload->>'athlete_id' group by 1, 2 order by 3 desc, 1 limit 5"
say "racectl health"
ctl health || true
raced_stop
say "done; the cluster, the provider and raced are stopped and $T is removed"
if [ "$import_rc" -ne 0 ]; then
	echo "the import did not succeed (see its status and errors above)" >&2
	exit 1
fi
