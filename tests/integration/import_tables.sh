#!/usr/bin/env bash
# A stage table dropped under a running raced fails the import once, with
# one error naming the fix, not one error a row.
. "$TESTS_DIR/lib/harness.sh"

pg_start
fixture_start --seed 5 --races 12 --entries-per-race 9 --athletes 30 --page-size 4
expect() { json_get "$(fixture_get /_dataset)" "$@"; }

# The entries table dropped after raced created it: the next batch fails
# the import once.
write_config
raced_start
tables_exist() { test "$(sql "select to_regclass('entries') is not null")" = t; }
wait_for "raced to create the stage tables" 20 tables_exist
sql 'drop table entries cascade' # with raced's views of it
ctl start-import >/dev/null
run_ended() { test "$(sql 'select status from import_runs where id = 1')" != running; }
wait_for "the import to end" 30 run_ended
check_eq "the import failed" "$(sql 'select status from import_runs where id = 1')" failed
check_eq "one error, naming the table and the fix" \
	"$(sql "select count(*) from import_errors where import_id = 1 and stage = 'entries' and message = 'table entries does not exist: was it dropped during the import? raced creates its tables when it connects: restart raced to create it again'")" 1
check_eq "no error a row" "$(sql 'select count(*) from import_errors where import_id = 1')" 1
raced_stop
check "after a restart raced creates the table again" "$RACED" --config "$T/raced.conf" --once 2>>"$T/raced.log"
check_eq "and stores every entry" "$(sql 'select count(*) from entries')" "$(expect entries)"
