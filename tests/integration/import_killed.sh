#!/usr/bin/env bash
# raced killed with SIGKILL in the middle of an import and started again
# several seconds later: the run is marked 'interrupted' with finished_at
# its last heartbeat -- within a second or two of the kill, not the time of
# the restart -- and counts equal to the rows its committed batches wrote,
# and the start-up log says so.  The next import completes the data.
. "$TESTS_DIR/lib/harness.sh"

pg_start
sql "alter system set synchronous_commit = on" >/dev/null
sql "select pg_reload_conf()" >/dev/null
check_eq "PostgreSQL runs with synchronous_commit" "$(sql 'show synchronous_commit')" on
# latency and rate_limit stretch the import over several seconds, with
# batches committing all along.
fixture_start --seed 11 --races 60 --entries-per-race 20 --athletes 200 --page-size 5 --latency-ms 20
write_config
sed -i 's/^max_retries = 5$/max_retries = 5\nrate_limit = 100/' "$T/raced.conf"
raced_start
check "start-import" ctl start-import

entries_stored_over() { [ "$(sql 'select count(*) from entries' 2>/dev/null || echo 0)" -gt "$1" ]; }
wait_for "some entries to be stored" 60 entries_stored_over 150
kill -KILL "$RACED_PID"
wait "$RACED_PID" 2>/dev/null || true
RACED_PID=
killed_at=$(sql "select clock_timestamp()")
mv "$T/raced.log" "$T/raced-killed.log"
check_eq "the killed run is left running" "$(sql 'select status from import_runs where id = 1')" running
served_entries=$(json_get "$(fixture_get /_dataset)" entries)
check "the kill landed mid-import" test "$(sql 'select count(*) from entries')" -lt "$served_entries"

sleep 4 # the gap between the kill and the restart: the point of the test is that it lasts
restarted_at=$(sql "select clock_timestamp()")
raced_start
is_interrupted() { [ "$(sql 'select status from import_runs where id = 1')" = interrupted ]; }
wait_for "the killed run to be marked interrupted" 20 is_interrupted

since_kill=$(sql "select round(extract(epoch from '$killed_at'::timestamptz - finished_at), 2) from import_runs where id = 1")
echo "     finished_at is ${since_kill}s before the kill"
check "finished_at is its last heartbeat: at most 2 s before the kill" \
	test "$(sql "select finished_at between '$killed_at'::timestamptz - interval '2 s' and '$killed_at' from import_runs where id = 1")" = t
check "finished_at is not the restart time" \
	test "$(sql "select finished_at < '$restarted_at'::timestamptz - interval '3 s' from import_runs where id = 1")" = t
check "the heartbeat is kept" \
	test "$(sql 'select heartbeat_at = finished_at from import_runs where id = 1')" = t

total=0
stage_list=
for st in races entries athletes; do
	rows=$(sql "select count(*) from $st where last_import = 1")
	check_eq "counts.$st.stored equals the rows committed" \
		"$(sql "select counts->'$st'->>'stored' from import_runs where id = 1")" "$rows"
	check_eq "every $st row is the killed import's" "$(sql "select count(*) from $st")" "$rows"
	total=$((total + rows))
	stage_list="$stage_list${stage_list:+, }$st $rows"
done
check "rows were stored before the kill" test "$total" -gt 150
line="import 1 was running when raced stopped (last alive [0-9T:.+ -]*): marked interrupted, $total rows stored ($stage_list)"
check "the start-up log says so" grep -q "^<4>$line\$" <(log_lines "$T/raced.log")
grep "was running when" "$T/raced.log" | sed 's/^/     /'

# The next import completes the data.
check "the next import succeeds" ctl start-import --wait --interval 0.2
check_eq "the next run succeeded" "$(sql 'select status from import_runs where id = 2')" succeeded
check_eq "entries stored" "$(sql 'select count(*) from entries')" "$served_entries"
check_eq "only one run marked interrupted" "$(sql "select count(*) from import_runs where status = 'interrupted'")" 1
raced_stop
