#!/usr/bin/env bash
# What the stage tables make of an import: items that share a key are one
# row, counted as duplicates (stored = distinct keys written) and reported
# once with the hint; a stage table dropped under a running raced fails the
# import once, with one error naming the fix, not one error a row.
. "$TESTS_DIR/lib/harness.sh"

pg_start
fixture_start --seed 5 --races 12 --entries-per-race 9 --athletes 30 --page-size 4
expect() { json_get "$(fixture_get /_dataset)" "$@"; }

# key = /race_id: every entry of a race has its race's key (a wrong `key =`).
write_config
sed -i '\|^url = /races/{id}/entries|,/^key = / s|^key = /id|key = /race_id|' "$T/raced.conf"
check "raced --once succeeds with shared keys" "$RACED" --config "$T/raced.conf" --once 2>"$T/raced.log"
rows=$(sql 'select count(*) from entries')
counts() { sql "select counts->'entries'->>'$1' from import_runs where id = 1"; }
check_eq "one row per race with entries" "$rows" "$(( $(expect races) - $(expect races_without_entries) ))"
check_eq "stored counts distinct keys written" "$(counts stored)" "$rows"
check_eq "duplicates count the items written over another" "$(counts duplicates)" "$(( $(expect entries) - rows ))"
check_eq "the run still succeeded" "$(sql 'select status from import_runs where id = 1')" succeeded
check_eq "one warning for the stage, with the hint" \
	"$(grep -c "\[stage entries\] items share the key '[0-9]*' .*check setting 'key' of \[stage entries\]" "$T/raced.log")" 1
check_eq "no warning for stages with unique keys" "$(grep -c "\[stage races\] items share" "$T/raced.log")" 0
check_eq "races: no duplicates" "$(sql "select counts->'races'->>'duplicates' from import_runs where id = 1")" 0

# The entries table dropped after raced created it: the next batch fails
# the import once.
write_config
raced_start
tables_exist() { test "$(sql "select to_regclass('entries') is not null")" = t; }
wait_for "raced to create the stage tables" 20 tables_exist
sql 'drop table entries'
ctl start-import >/dev/null
run_ended() { test "$(sql 'select status from import_runs where id = 2')" != running; }
wait_for "the import to end" 30 run_ended
check_eq "the import failed" "$(sql 'select status from import_runs where id = 2')" failed
check_eq "one error, naming the table and the fix" \
	"$(sql "select count(*) from import_errors where import_id = 2 and stage = 'entries' and message = 'table entries does not exist: was it dropped during the import? raced creates its tables when it connects: restart raced to create it again'")" 1
check_eq "no error a row" "$(sql 'select count(*) from import_errors where import_id = 2')" 1
raced_stop
check "after a restart raced creates the table again" "$RACED" --config "$T/raced.conf" --once 2>>"$T/raced.log"
check_eq "and stores every entry" "$(sql 'select count(*) from entries')" "$(expect entries)"
