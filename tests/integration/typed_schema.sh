#!/usr/bin/env bash
# [database] schema (issue 16, item 5): with an odd name (quoted) every
# table raced makes lands there and nothing in public; the import is exact;
# racectl status and errors work; a reload that changes the typed columns
# applies them once no import runs.
. "$TESTS_DIR/lib/harness.sh"

pg_start
fixture_start --seed 7 --races 10 --entries-per-race 8 --athletes 25 --page-size 5 \
	--bad-bib e4-2
expect() { json_get "$(fixture_get /_dataset)" "$@"; }

SCHEMA='My "odd" schema'
Q='"My ""odd"" schema"'
configure() { # ENTRIES-COLUMNS-LINES
	write_config
	ENTRIES="$1" SCHEMA="$SCHEMA" python3 - "$T/raced.conf" <<'PY'
import os, sys
p = sys.argv[1]
s = open(p).read()
s = s.replace("[database]\n", "[database]\nschema = " + os.environ["SCHEMA"] + "\n")
s = s.replace("[stage entries]\n", "[stage entries]\n" + os.environ["ENTRIES"] + "\n")
open(p, "w").write(s)
PY
}
in_public() {
	sql "select count(*) from pg_class c join pg_namespace n on n.oid = c.relnamespace where n.nspname = 'public'"
}
run_done() { test "$(sql "select status from $Q.import_runs where id = $1")" = succeeded; }

configure "columns = bib int /bib, athlete_id text /athlete_id
index = athlete_id"
raced_start
wait_for "the first import ready" 20 "$RACECTL" --timeout 1 start-import
wait_for "import 1 to succeed" 60 run_done 1

check_eq "the schema exists" "$(sql "select count(*) from pg_namespace where nspname = '$SCHEMA'")" 1
check_eq "nothing in public" "$(in_public)" 0
check_eq "raced's tables are all in the schema" \
	"$(sql "select string_agg(c.relname, ' ' order by c.relname) from pg_class c join pg_namespace n on n.oid = c.relnamespace where n.nspname = '$SCHEMA' and c.relkind = 'r'")" \
	"athletes athletes_parents entries import_errors import_runs raced_columns raced_pages raced_reached raced_schema_version raced_stage_deletes races"
# A delete by a session whose search_path does not name the schema is
# counted all the same (the trigger's function keeps its own path).
sql "delete from $Q.races where false" >/dev/null
check_eq "a delete from a stage table in the schema is counted" \
	"$(sql "select deletes from $Q.raced_stage_deletes where stage = 'races'")" 1
check_eq "raced's index is there too" "$(sql "select count(*) from pg_indexes where schemaname = '$SCHEMA' and indexname = 'entries_athlete_id_idx'")" 1
check_eq "every race" "$(sql "select count(*) from $Q.races")" "$(expect races)"
check_eq "every entry" "$(sql "select count(*) from $Q.entries")" "$(expect entries)"
check_eq "every athlete named" "$(sql "select count(*) from $Q.athletes")" "$(expect athletes_referenced)"
check_eq "bib typed" "$(sql "select count(*) from $Q.entries where bib is not null")" "$(( $(expect entries) - 1 ))"
check "racectl status shows the run" bash -c "'$RACECTL' status 1 | grep -q succeeded"
check "racectl errors shows the bad value" bash -c "'$RACECTL' errors 1 | grep -q 'column bib (integer, /bib)'"

# A reload that changes the columns: applied by the new connection.
configure "columns = bib bigint /bib, category text /category"
"$RACECTL" reload >/dev/null || fail "reload refused"
bib_bigint() { test "$(sql "select format_type(atttypid, atttypmod) from pg_attribute where attrelid = '$Q.entries'::regclass and attname = 'bib' and not attisdropped")" = bigint; }
# e4-2's "not-a-number" cannot be a bigint: the retype is refused; the
# category column is not added either (the table's change is one).
refused() { grep -q "\[stage entries\] columns: changing the table refused: the row with key 'e4-2' has bib = 'not-a-number'" "$T/raced.log"; }
wait_for "the reload's retype refused, naming the key" 20 refused
check_eq "bib kept integer" "$(sql "select format_type(atttypid, atttypmod) from pg_attribute where attrelid = '$Q.entries'::regclass and attname = 'bib' and not attisdropped")" integer
check_eq "athlete_id kept (the table's change is all or nothing)" "$(sql "select count(*) from pg_attribute where attrelid = '$Q.entries'::regclass and attname = 'athlete_id' and not attisdropped")" 1
check_eq "still nothing in public" "$(in_public)" 0

configure "columns = bib text /bib, category text /category"
"$RACECTL" reload >/dev/null || fail "reload refused"
bib_text() { test "$(sql "select format_type(atttypid, atttypmod) from pg_attribute where attrelid = '$Q.entries'::regclass and attname = 'bib' and not attisdropped")" = text; }
wait_for "the reload's retype to text applied" 20 bib_text
check_eq "the bad value is text now" "$(sql "select bib from $Q.entries where key = 'e4-2'")" not-a-number
check_eq "athlete_id dropped, with its index" "$(sql "select count(*) from pg_indexes where schemaname = '$SCHEMA' and indexname = 'entries_athlete_id_idx'")" 0
check_eq "category filled" "$(sql "select count(*) from $Q.entries where category is null")" 0
"$RACECTL" start-import >/dev/null || fail "start-import refused"
wait_for "import 2 to succeed" 60 run_done 2
check_eq "no error in import 2 (bib is text)" "$(sql "select count(*) from $Q.import_errors where import_id = 2")" 0
check_eq "nothing in public at the end" "$(in_public)" 0
raced_stop
