#!/usr/bin/env bash
# Incremental imports against the fixture sending both validators (issue
# 15): an unchanged second import is all 304s and writes no stage row; 1%
# of athletes changed, entries added to a race and one race's entries
# removed: the next import fetches only the changed pages' bodies and
# writes exactly the changed, added and removed rows; the documented
# queries (changed in N, removed, current set) answer it; a partial import
# removes nothing; refresh = 1h skips athletes, --full requests them all.
. "$TESTS_DIR/lib/harness.sh"
. "$TESTS_DIR/integration/incremental_lib.sh"

pg_start
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
ARGS=(--port "$PORT" --seed 7 --races 23 --entries-per-race 12 --athletes 400 --page-size 5 --validators both)
fixture_start "${ARGS[@]}"
write_config

check "first import succeeds" raced_once
check_eq "first import: no 304" "$(run_count 1 entries requests_304)" 0
check_tables_served "first import"
# A first import reads no input state (nothing kept yet: store_state_empty):
# reads go through raced_pages_input, one index scan an input; its backend
# reports its counts when it exits.
input_reads() { sql "select idx_scan from pg_stat_user_indexes where indexrelname = 'raced_pages_input'"; }
raced_gone() { [ "$(sql "select count(*) from pg_stat_activity where application_name = 'raced'")" = 0 ]; }
wait_for "raced's backend to exit" 20 raced_gone
check "first import: fewer input reads ($(input_reads)) than races (23)" test "$(input_reads)" -lt 23

# --- unchanged, both validators -----------------------------------------
w0=$(writes)
pw0=$(page_writes)
fixture_get /_reset >/dev/null
check "unchanged second import succeeds" raced_once
reqs_save
# A re-import reads each child stage's state in one pass, a few
# statements a stage (a range of raced_pages's blocks, or a keyset page,
# each), not an input at a time.
N2=$(last_run)
for st in entries athletes; do
	check_eq "$st: no input's state read on its own" "$(run_count "$N2" $st state_ahead)" 0
	check "$st: its pass in fewer statements ($(run_count "$N2" $st preload_reads)) than races (23)" \
		test "$(run_count "$N2" $st preload_reads)" -lt 23
done
check_eq "every race's entries state from the pass" "$(run_count 2 entries state_preloaded)" 23
check_eq "every athlete's state from the pass" "$(run_count 2 athletes state_preloaded)" \
	"$(sql "select count(distinct input) from raced_pages where stage = 'athletes' and seen_import >= 0")"
check_eq "every request was answered 304" "$(reqs_count 'n <> nm')" 0
check "it made requests" test "$(reqs_count 'nm > 0')" -gt 0
check_eq "each URL once" "$(reqs_count 'n <> 1')" 0
check_eq "zero stage-row writes" "$(writes)" "$w0"
check_eq "no raced_pages row written" "$(page_writes)" "$pw0"
check_eq "its reach (raced_reached) forgotten after it succeeded" \
	"$(sql 'select count(*) from raced_reached')" 0
check_tables_served "unchanged import"
pages=$(sql "select count(*) from raced_pages where stage = 'entries'")
check_eq "counts: every entries page 304" "$(run_count 2 entries requests_304)" "$pages"
check_eq "counts: no entries body" "$(run_count 2 entries requests_body)" 0
check_eq "counts: every entry unchanged" "$(run_count 2 entries unchanged)" "$(sql 'select count(*) from entries')"
check_eq "counts: no row written" "$(run_count 2 entries stored)" 0
check_eq "counts: bytes 0" "$(run_count 2 races bytes)" 0
check_eq "counts: athletes all 304" "$(run_count 2 athletes requests_304)" "$(sql 'select count(*) from athletes')"
check_eq "import 2 wrote no row" "$(sql 'select (select count(*) from races where last_import = 2) + (select count(*) from entries where last_import = 2) + (select count(*) from athletes where last_import = 2)')" 0

# racectl status ID shows the state counts (a daemon, no import started).
raced_start
# raced answers before its database is connected: poll until status can.
status_read() { ctl status 2 >"$T/status.txt" 2>/dev/null; }
wait_for "racectl status to read the import runs" 20 status_read
check "status shows the 304 column" grep -Eq '^STAGE +REQUESTS +304 +BYTES +WRITTEN +UNCHANGED' "$T/status.txt"
check "status: entries 0 bodies, $pages 304s, 0 written" \
	grep -Eq "^entries +0 +$pages +0 +0 +$(sql 'select count(*) from entries') " "$T/status.txt"
raced_stop

# --- changes: 1% of athletes, entries added to race 3, race 5's removed ---
w0=$(writes)
curl -sf -X POST "$FIXTURE_URL/_mutate?change_athletes=1&add_entries=3:2&remove_entries=5&at=2026-06-01T00:00:00Z" >"$T/mutate.json"
fixture_get /_reset >/dev/null
check "import after changes succeeds" raced_once
N=$(last_run)
m() { json_get "$(cat "$T/mutate.json")" "$@"; }
mlist() { sql "select string_agg(v, ' ' order by v) from jsonb_array_elements_text(pg_read_file('$T/mutate.json')::jsonb->'$1') v"; }
changed_ath=$(mlist changed_athletes)
check "some athletes changed" test -n "$changed_ath"
# The documented queries (docs/operations.md) answer what happened.
check_eq "changed or added entries in import $N: the added ones" \
	"$(sql "select string_agg(key, ' ' order by key) from (select * from entries where last_import = $N) c")" "$(mlist added_entries)"
check_eq "added entries have first_import = $N" \
	"$(sql "select count(*) from entries where last_import = $N and first_import = $N")" "$(sql "select jsonb_array_length(pg_read_file('$T/mutate.json')::jsonb->'added_entries')")"
check_eq "removed entries: race 5's, by import $N" \
	"$(sql "select string_agg(key || '@' || removed_import, ' ' order by key) from (select key, removed_import from entries where removed_import is not null) r")" \
	"$(sql "select string_agg(v || '@$N', ' ' order by v) from jsonb_array_elements_text(pg_read_file('$T/mutate.json')::jsonb->'removed_entries') v")"
check_eq "changed races in import $N" \
	"$(sql "select string_agg(key, ' ' order by key) from (select * from races where last_import = $N) c")" \
	"$(sql "select string_agg(v, ' ' order by v) from jsonb_array_elements_text(pg_read_file('$T/mutate.json')::jsonb->'changed_races') v")"
# Athletes written: the changed ones, and any new one the added entries name.
check_eq "changed athletes were written" \
	"$(sql "select count(*) from athletes where last_import = $N and key = any(string_to_array('$changed_ath', ' '))")" "$(wc -w <<<"$changed_ath")"
check_eq "other athletes written were added by import $N" \
	"$(sql "select count(*) from athletes where last_import = $N and first_import <> $N and not key = any(string_to_array('$changed_ath', ' '))")" 0
check_tables_served "after changes"
# updated_at moves only for written rows.
for k in $STAGES; do
	check_eq "$k: updated_at moved only for rows import $N wrote" \
		"$(sql "select count(*) from $k where updated_at >= (select started_at from import_runs where id = $N) and last_import <> $N")" 0
done
w1=$(writes)
expect_w=$(sql "select (select count(*) from races where last_import = $N) + (select count(*) from entries where last_import = $N or removed_import = $N) + (select count(*) from athletes where last_import = $N or removed_import = $N)")
check_eq "stage-row writes = rows written + rows marked removed" "$((w1 - w0))" "$expect_w"
# Only changed pages' bodies were transferred.
reqs_save
bodies=$(reqs_list 'n > nm')
new_ath=$(sql "select coalesce(string_agg(key, ' '), '') from athletes where first_import = $N")
ath_re=$(sed 's/ /|/g' <<<"$changed_ath $new_ath")
for u in $bodies; do
	check "a body only for a changed page: $u" grep -Eq "^/races(\?page=[0-9]+)?$|^/races/3/entries|^/races/5/entries$|^/athletes/($ath_re)$" <<<"$u"
done
for a in $changed_ath; do
	check_eq "changed athlete $a fetched with a body" "$(reqs_count "k = '/athletes/$a' and n > nm")" 1
done
check_eq "race 5's emptied page fetched with a body" "$(reqs_count "k = '/races/5/entries' and n > nm")" 1
check_eq "counts: bodies = URLs with a body" \
	"$(sql "select sum((value->>'requests_body')::int) from import_runs, jsonb_each(counts) where id = $N")" "$(wc -w <<<"$bodies")"

# --- a partial import removes nothing -----------------------------------
# The same data set with race 8's entries removed and one page that fails.
fixture_stop
fixture_start "${ARGS[@]}" --mutate 'change_athletes=1&add_entries=3:2&remove_entries=5&at=2026-06-01T00:00:00Z' \
	--mutate 'remove_entries=8&at=2026-06-02T00:00:00Z' --broken /races/2/entries=404
raced_once || true
N=$(last_run)
check_eq "import $N is partial" "$(sql "select status from import_runs where id = $N")" partial
check_eq "a partial import removes nothing" "$(sql "select count(*) from entries where removed_import = $N")" 0
check_eq "race 8's entries are still current" "$(sql "select count(*) from entries where key like 'e8-%' and removed_import is null")" \
	"$(sql "select count(*) from entries where key like 'e8-%'")"
check_eq "race 2's entries are still current" "$(sql "select count(*) from entries where parent_key = '2' and removed_import is not null")" 0
fixture_stop
fixture_start "${ARGS[@]}" --mutate 'change_athletes=1&add_entries=3:2&remove_entries=5&at=2026-06-01T00:00:00Z' \
	--mutate 'remove_entries=8&at=2026-06-02T00:00:00Z'
check "the next import succeeds" raced_once
N=$(last_run)
check "and removes race 8's entries" test "$(sql "select count(*) from entries where key like 'e8-%' and removed_import = $N")" -gt 0
check_tables_served "after the partial import and a complete one"

# --- refresh = 1h on athletes; --full ------------------------------------
write_config
sed -i "s|^base_url = .*|base_url = $FIXTURE_URL|; /^\[stage athletes\]/a refresh = 1h" "$T/raced.conf"
check "--check-config takes refresh" "$RACED" --config "$T/raced.conf" --check-config
fixture_get /_reset >/dev/null
check "an import with refresh = 1h succeeds" raced_once
reqs_save
check_eq "it requests no athlete" "$(reqs_count "k like '/athletes/%'")" 0
N=$(last_run)
check_eq "counts: athletes' inputs skipped as fresh" "$(run_count "$N" athletes skipped_fresh)" "$(sql 'select count(*) from athletes where removed_import is null')"
w0=$(writes)
fixture_get /_reset >/dev/null
check "raced --once --full succeeds" raced_once --full
reqs_save
check_eq "--full requests every athlete" "$(reqs_count "k like '/athletes/%'")" "$(sql 'select count(*) from athletes where removed_import is null')"
check_eq "--full: no request answered 304" "$(reqs_count 'nm > 0')" 0
check_eq "--full over unchanged data writes nothing" "$(writes)" "$w0"
check_tables_served "after --full"
echo "all incremental checks passed"
