#!/usr/bin/env bash
# Signals (SPEC §6): SIGHUP with a valid configuration adopts it and says
# what changed; with an invalid one it is refused with its error and the old
# configuration stays.  SIGTERM during an import drains: the run ends
# 'interrupted', raced exits 0 within stop_timeout, and the rows it had
# fetched are committed.
. "$TESTS_DIR/lib/harness.sh"

pg_start
fixture_start --seed 9 --races 80 --entries-per-race 20 --athletes 200 --page-size 10 --latency-ms 20
write_config
raced_start

# SIGHUP, valid: a changed batch_size is adopted and named in the log.
sed -i 's/^batch_size = 200$/batch_size = 150/' "$T/raced.conf"
kill -HUP "$RACED_PID"
wait_for "the reload to be logged" 10 grep -q 'batch_size 200 -> 150' "$T/raced.log"
check "the reload was adopted" grep -q 'reload: configuration .* in force' "$T/raced.log"

# SIGHUP, invalid: refused with the file:line error, the daemon goes on.
cp "$T/raced.conf" "$T/good.conf"
echo "concurency = 3" >>"$T/raced.conf"
kill -HUP "$RACED_PID"
wait_for "the refusal to be logged" 10 grep -q 'reload refused' "$T/raced.log"
check "the refusal names the file, line and key" grep -q "raced.conf:[0-9]*: \[stage athletes\] unknown key 'concurency'" "$T/raced.log"
check "raced still answers" ctl version
check "raced still runs" kill -0 "$RACED_PID"
cp "$T/good.conf" "$T/raced.conf"

# SIGTERM mid-import: drain, 'interrupted', exit 0 in time, rows committed.
check "start-import" ctl start-import
entries_stored_over() { [ "$(sql 'select count(*) from entries' 2>/dev/null || echo 0)" -gt "$1" ]; }
wait_for "some entries to be stored" 60 entries_stored_over 50
start=$SECONDS
rc=0
raced_stop || rc=$?
took=$((SECONDS - start))
check_eq "raced exits 0 after SIGTERM" "$rc" 0
check "raced stopped within stop_timeout (${took}s <= 20s)" test "$took" -le 20
check_eq "the run ended interrupted" "$(sql 'select status from import_runs where id = 1')" interrupted
check "the run has a finish time" test -n "$(sql 'select finished_at from import_runs where id = 1')"
stored=$(sql 'select count(*) from entries')
counted=$(sql "select (counts->'entries'->>'stored')::int from import_runs where id = 1")
check_eq "the stored count recorded equals the rows committed" "$counted" "$stored"
check "the import was really cut short" test "$stored" -lt "$(json_get "$(fixture_get /_dataset)" entries)"
check "the log says it drained" grep -q 'SIGTERM: draining' "$T/raced.log"

# SIGTERM twice: the second does not wait out stop_timeout for a fetch that
# hangs (the provider never answers race 2's entries; timeout 30s).
fixture_stop
fixture_start --seed 9 --races 10 --entries-per-race 5 --athletes 20 --page-size 10 --broken "/races/2/entries=slow"
write_config
sed -i 's/^timeout = 5s$/timeout = 30s/' "$T/raced.conf"
raced_start
check "start-import (second run)" ctl start-import
slow_seen() { [ "$(json_get "$(fixture_get /_stats)" in_flight)" -ge 1 ]; }
wait_for "the slow request to be in flight" 30 slow_seen
# A reload while the import runs: batch_size (live) applies now, a stage's
# max_demand waits for the import's end, and the log says so.
sed -i 's/^batch_size = 200$/batch_size = 120/; s/^max_demand = 100$/max_demand = 50/' "$T/raced.conf"
kill -HUP "$RACED_PID"
wait_for "the reload to be logged" 10 grep -q 'reload: .*: applied now: \[database\] batch_size 200 -> 120' "$T/raced.log"
check "the stage's max_demand waits for import 2" \
	grep -q '; when import 2 ends: \[stage races\] max_demand 100 -> 50' "$T/raced.log"
kill -TERM "$RACED_PID"
wait_for "the first SIGTERM to be logged" 10 grep -q 'SIGTERM: draining' "$T/raced.log"
start=$SECONDS
kill -TERM "$RACED_PID"
rc=0
wait "$RACED_PID" || rc=$?
RACED_PID=
took=$((SECONDS - start))
check_eq "raced exits 0 after two SIGTERMs" "$rc" 0
check "the second SIGTERM did not wait for stop_timeout (${took}s < 10s)" test "$took" -lt 10
check_eq "the second run ended interrupted" "$(sql 'select status from import_runs where id = 2')" interrupted
