#!/usr/bin/env bash
# PostgreSQL stopped in the middle of an import and started 5 s later: the
# store reconnects with backoff, the pipeline waits (R6), and the import
# completes with every item stored exactly once.
. "$TESTS_DIR/lib/harness.sh"

pg_start
# rate_limit stretches the import over several seconds so the stop lands mid-run.
fixture_start --seed 5 --races 40 --entries-per-race 10 --athletes 80 --page-size 5
write_config
sed -i 's/^max_retries = 5$/max_retries = 5\nrate_limit = 60/' "$T/raced.conf"
"$RACED" --config "$T/raced.conf" --once 2>"$T/raced.log" &
RACED_PID=$!
entries_stored_over() { [ "$(sql 'select count(*) from entries' 2>/dev/null || echo 0)" -gt "$1" ]; }
wait_for "some entries to be stored" 60 entries_stored_over 20
before=$(sql 'select count(*) from entries')
pg_cluster_stop
echo "     stopped PostgreSQL with $before entries stored"
sleep 5 # the outage itself: the point of the test is that it lasts
pg_cluster_start
rc=0
wait "$RACED_PID" || rc=$?
RACED_PID=
check_eq "raced --once exits 0 after the outage" "$rc" 0
fixture_get /_dataset >"$T/dataset.json"
expect() { json_get "$(cat "$T/dataset.json")" "$@"; }
check "the database outage happened mid-import" test "$before" -lt "$(expect entries)"
check "raced saw the connection drop" grep -q 'database: .*retrying' "$T/raced.log"
check_eq "races stored" "$(sql 'select count(*) from races')" "$(expect races)"
check_eq "entries stored" "$(sql 'select count(*) from entries')" "$(expect entries)"
check_eq "athletes stored" "$(sql 'select count(*) from athletes')" "$(expect athletes_referenced)"
check_eq "every row written by import 1 only" \
	"$(sql 'select count(*) from (select first_import, last_import from races union all select first_import, last_import from entries union all select first_import, last_import from athletes) x where first_import <> 1 or last_import <> 1')" 0
check_eq "the run succeeded" "$(sql 'select status from import_runs where id = 1')" succeeded
check_eq "no import_errors" "$(sql 'select count(*) from import_errors')" 0
