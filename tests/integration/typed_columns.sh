#!/usr/bin/env bash
# Typed columns (issue 16, item 2): values and types as served; a value
# that does not fit is one import_errors row naming key, column and value
# (the row stored with that column NULL); a configuration change adds,
# retypes and drops columns and raced's indexes (the catalog checked after
# each); a retype the rows cannot take is refused and nothing changes.
. "$TESTS_DIR/lib/harness.sh"

pg_start
fixture_start --seed 5 --races 12 --entries-per-race 9 --athletes 30 --page-size 4 \
	--bad-bib e2-3
expect() { json_get "$(fixture_get /_dataset)" "$@"; }

# The stage sections' typed columns: $1 for races, $2 for entries (each a
# block of lines put right after the section's header).
configure() {
	write_config
	local races=$1 entries=$2
	RACES="$races" ENTRIES="$entries" python3 - "$T/raced.conf" <<'PY'
import os, sys
p = sys.argv[1]
s = open(p).read()
s = s.replace("[stage races]\n", "[stage races]\n" + os.environ["RACES"] + "\n")
s = s.replace("[stage entries]\n", "[stage entries]\n" + os.environ["ENTRIES"] + "\n")
open(p, "w").write(s)
PY
}
import_once() {
	"$RACED" --config "$T/raced.conf" --once >>"$T/raced.log" 2>&1 || fail "raced --once failed: $(tail -5 "$T/raced.log")"
}
coltype() { # TABLE COLUMN: format_type, or empty when absent
	sql "select format_type(atttypid, atttypmod) from pg_attribute where attrelid = '$1'::regclass and attname = '$2' and not attisdropped"
}
indexes() { # TABLE: raced's indexes on typed columns, sorted
	sql "select coalesce(string_agg(indexname, ' ' order by indexname), '') from pg_indexes where tablename = '$1' and indexname like '%\\_idx'"
}
last_run() { sql 'select max(id) from import_runs'; }

# ---- 1. the columns as served ----
configure "columns = race_id int /id, race_date date /date, updated timestamptz /updated_at, city text /city" \
	"columns = bib int /bib, athlete_id text /athlete_id
index = athlete_id"
import_once
check_eq "the import succeeded" "$(sql "select status from import_runs where id = $(last_run)")" succeeded
check_eq "every race stored" "$(sql 'select count(*) from races')" "$(expect races)"
check_eq "every entry stored, the bad one too" "$(sql 'select count(*) from entries')" "$(expect entries)"
check_eq "races.race_id is integer" "$(coltype races race_id)" integer
check_eq "races.race_date is date" "$(coltype races race_date)" date
check_eq "races.updated is timestamptz" "$(coltype races updated)" "timestamp with time zone"
check_eq "races.city is text" "$(coltype races city)" text
check_eq "entries.bib is integer" "$(coltype entries bib)" integer
check_eq "every race's values are its payload's" "$(sql "select count(*) from races where
	race_id is distinct from (payload->>'id')::int or race_date is distinct from (payload->>'date')::date
	or updated is distinct from (payload->>'updated_at')::timestamptz or city is distinct from payload->>'city'
	or race_id is null or updated is null")" 0
check_eq "every entry's values are its payload's" "$(sql "select count(*) from entries where
	athlete_id is distinct from payload->>'athlete_id'
	or bib is distinct from (case when key = 'e2-3' then null else (payload->>'bib')::int end)")" 0
check_eq "the bad value's row has bib NULL" "$(sql "select count(*) from entries where bib is null")" 1
check_eq "and one import_errors row naming key, column and value" \
	"$(sql "select count(*) from import_errors where import_id = $(last_run) and stage = 'entries'
	        and message like 'key ''e2-3'': column bib (integer, /bib): value \"not-a-number\" does not fit%'")" 1
check_eq "no other error" "$(sql "select count(*) from import_errors where import_id = $(last_run)")" 1
check_eq "counted as a bad value" "$(sql "select counts->'entries'->>'bad_values' from import_runs where id = $(last_run)")" 1
check_eq "raced's index on athlete_id" "$(indexes entries)" entries_athlete_id_idx
check_eq "the join by athlete_id uses it" \
	"$(sql "set enable_seqscan = off; explain (costs off) select * from entries where athlete_id = 'a1'" | grep -c entries_athlete_id_idx)" 1
check_eq "raced_columns records them" "$(sql "select string_agg(stage || '.' || name || ' ' || type || ' ' || pointer, ', ' order by stage, name) from raced_columns")" \
	"entries.athlete_id text /athlete_id, entries.bib integer /bib, races.city text /city, races.race_date date /date, races.race_id integer /id, races.updated timestamp with time zone /updated_at"

# A second import over unchanged data writes no row.
before=$(sql "select sum(n_tup_upd + n_tup_ins) from pg_stat_user_tables where relname in ('races', 'entries')")
import_once
sql "select pg_stat_force_next_flush()" >/dev/null 2>&1 || true
after=$(sql "select sum(n_tup_upd + n_tup_ins) from pg_stat_user_tables where relname in ('races', 'entries')")
check_eq "an import over unchanged data writes no stage row" "$((after - before))" 0

# ---- 2. change: retype, add, drop, index moved ----
configure "columns = race_id bigint /id, race_date date /date, updated timestamptz /updated_at, name text /name" \
	"columns = bib int /bib, category text /category
index = category"
import_once
check_eq "race_id retyped to bigint" "$(coltype races race_id)" bigint
check_eq "city dropped" "$(coltype races city)" ""
check_eq "name added" "$(coltype races name)" text
check_eq "name filled from the payload for existing rows" \
	"$(sql "select count(*) from races where name is distinct from payload->>'name' or name is null")" 0
check_eq "race_id still its payload's" "$(sql "select count(*) from races where race_id is distinct from (payload->>'id')::bigint")" 0
check_eq "athlete_id dropped" "$(coltype entries athlete_id)" ""
check_eq "category added" "$(coltype entries category)" text
check_eq "category filled" "$(sql "select count(*) from entries where category is distinct from payload->>'category' or category is null")" 0
check_eq "the index moved with the config" "$(indexes entries)" entries_category_idx
check_eq "the change logged" "$(grep -c 'columns: dropped athlete_id; added category text /category; indexed category' "$T/raced.log")" 1

# ---- 3. a retype the rows cannot take ----
snapshot() { sql "select md5(string_agg(t::text, '|' order by key)) from $1 t"; }
races_before=$(snapshot races)
entries_before=$(snapshot entries)
configure "columns = race_id bigint /id, race_date date /date, updated timestamptz /updated_at, name int /name" \
	"columns = bib int /bib, category text /category
index = category"
n_runs=$(last_run)
import_once
check_eq "the import still ran and succeeded" "$(sql "select status from import_runs where id = $(last_run)")" succeeded
check "it is a new run" test "$(last_run)" -gt "$n_runs"
check_eq "name kept its type" "$(coltype races name)" text
check_eq "raced_columns unchanged" "$(sql "select type from raced_columns where stage = 'races' and name = 'name'")" text
check_eq "no row of races changed" "$(snapshot races)" "$races_before"
check_eq "no row of entries changed" "$(snapshot entries)" "$entries_before"
first=$(sql "select key from races order by key limit 1")
check "the refusal names the setting, the first key, the column and the value" \
	grep -q "\[stage races\] columns: changing the table refused: the row with key '$first' has name = '$(sql "select payload->>'name' from races where key = '$first'")', which is not integer" "$T/raced.log"

# Back to a configuration that fits: applied.
configure "columns = race_id bigint /id, race_date date /date, updated timestamptz /updated_at" \
	"columns = bib int /bib, category text /category
index = category"
import_once
check_eq "name dropped once the refused setting is gone" "$(coltype races name)" ""
