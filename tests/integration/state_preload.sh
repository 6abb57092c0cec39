#!/usr/bin/env bash
# A stage's state read in one pass (docs/architecture.md, "Reading
# state"): at a re-import's start each child stage's page rows are read a
# range of raced_pages's blocks at a time (raced_stage_scan), or, for a
# stage of few of its rows, a keyset page at a time after the first range
# (raced_stage_read), so an unchanged input costs no read of its own: the second import of unchanged data reads no input's
# state by raced_inputs_read but the root's, and every entries and
# athletes input starts with its state from the pass (state_preloaded).
# Past the pass's bound (memory_limit / 16: 64 KiB at memory_limit =
# 1MiB, below the athletes' ~600 inputs) the pass stops, the inputs it
# holds still need no read, the others read their state as before, and
# the import is as exact: every request 304, no stage row written, the
# tables equal the data served.  A first import runs no pass.  While the
# pass still reads, an input its chunks so far held starts at once
# (preload_early; PRELOAD_PLACEHOLDERS rows it must scan past slow it).
. "$TESTS_DIR/lib/harness.sh"
. "$TESTS_DIR/integration/incremental_lib.sh"

pg_start
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
PRELOAD_PLACEHOLDERS=${PRELOAD_PLACEHOLDERS:-300000}
ARGS=(--port "$PORT" --seed 23 --races 60 --entries-per-race 30 --athletes 600 --page-size 20 --validators both)
fixture_start "${ARGS[@]}"
write_config
sed -i -e "s|^conninfo = .*|conninfo = $PG_CONNINFO options='-c log_statement=all'|" "$T/raced.conf"

log_mark() { stat -c %s "$PG_DIR/server.log"; }
# executions of the prepared statement $1 logged since the mark $2 (bytes)
executed() { tail -c +"$(($2 + 1))" "$PG_DIR/server.log" | grep -c "execute $1:" || true; }
inputs_of() { sql "select count(distinct input) from raced_pages where stage = '$1' and seen_import >= 0"; }

m=$(log_mark)
check "first import succeeds" raced_once
check_eq "a first import runs no pass" "$(executed raced_stage_read "$m")" 0
w0=$(writes)
# The first import wrote every page row since raced_pages was made, and
# autovacuum (off for it here) has not analyzed it: the next import does,
# before its passes, once.
sql "alter table raced_pages set (autovacuum_enabled = false)"
analyzes() {
	wait_for "raced's database sessions to end" 20 no_other_backends
	sql "select pg_stat_clear_snapshot(); select analyze_count from pg_stat_user_tables where relname = 'raced_pages'" | tail -n 1
}
an0=$(analyzes)

# --- unchanged: no input's state read but the root's ---
fixture_get /_reset >/dev/null
m=$(log_mark)
read_back_next races entries
check "second import (unchanged) succeeds" raced_once
N=$(last_run)
reqs_save
check_eq "every request answered 304" "$(reqs_count 'n <> nm')" 0
check_eq "zero stage-row writes" "$(writes)" "$w0"
check_tables_served "unchanged, state from the pass"
check_eq "no input's state read on its own but the root's" "$(executed raced_inputs_read "$m")" 1
check_eq "raced_pages analyzed before the passes, its statistics stale" "$(analyzes)" $((an0 + 1))
# The athletes, most of raced_pages's rows, read a range of its blocks a
# statement (4 at first, then at most four times more each); the entries
# (a fifth of them) by keyset after their first range.
scans=$(executed raced_stage_scan "$m") keysets=$(executed raced_stage_read "$m")
blocks=$(sql "select pg_relation_size('raced_pages') / current_setting('block_size')::int")
check_eq "athletes: read by blocks" "$(run_count "$N" athletes preload_by_keyset)" 0
check_eq "entries: read by keyset" "$(run_count "$N" entries preload_by_keyset)" 1
check "a few statements in all ($scans by blocks of $blocks blocks, $keysets by keyset)" \
	test "$scans" -ge 3 -a "$scans" -le 8 -a "$keysets" -ge 1 -a "$keysets" -le 2
for st in entries athletes; do
	check_eq "$st: the pass read the stage to its end" "$(run_count "$N" $st preload_complete)" 1
	check_eq "$st: every input's state from the pass" "$(run_count "$N" $st state_preloaded)" "$(inputs_of $st)"
	check_eq "$st: none read ahead" "$(run_count "$N" $st state_ahead)" 0
done
check "races' entries pages fed from rows read back ahead" test "$(run_count "$N" entries read_back_ahead)" -gt 30

# --- past the bound: the pass stops, the rest read as before, still exact ---
sed -i -e "s|^admin_group = root|&\nmemory_limit = 1MiB|" "$T/raced.conf"
fixture_get /_reset >/dev/null
m=$(log_mark)
check "third import (unchanged, pass bounded) succeeds" raced_once
N=$(last_run)
check_eq "raced_pages not analyzed again, its statistics fresh" "$(analyzes)" $((an0 + 1))
reqs_save
check_eq "bounded: every request answered 304" "$(reqs_count 'n <> nm')" 0
check_eq "bounded: zero stage-row writes" "$(writes)" "$w0"
check_tables_served "unchanged, pass bounded"
ath=$(inputs_of athletes)
pre=$(run_count "$N" athletes state_preloaded)
check_eq "athletes: the pass stopped at its bound" "$(run_count "$N" athletes preload_complete)" 0
check "athletes: some inputs' state from the pass, not all ($pre of $ath)" test "$pre" -gt 0 -a "$pre" -lt "$ath"
check "athletes: the pass held at most 64 KiB" test "$(run_count "$N" athletes preload_bytes)" -le 65536
check "athletes: the others read their state ($(executed raced_inputs_read "$m") statements)" \
	test "$(executed raced_inputs_read "$m")" -gt 1

# --- changed after a bounded pass: exactly the changed athletes written ---
curl -sf -X POST "$FIXTURE_URL/_mutate?change_athletes=5&at=2026-06-01T00:00:00Z" >"$T/mutate.json"
fixture_get /_reset >/dev/null
check "fourth import (5% of athletes changed, pass bounded) succeeds" raced_once
N=$(last_run)
changed=$(sql "select jsonb_array_length(pg_read_file('$T/mutate.json')::jsonb->'changed_athletes')")
check "some athletes changed ($changed)" test "$changed" -gt 0
check_eq "the changed athletes, and only they, were written" \
	"$(sql "select count(*) from athletes where last_import = $N")" "$changed"
check_tables_served "changed, pass bounded"

# --- the pass read whole: an unchanged import reaches every page row it
# read (the finish then looks for none to delete); a race's entries gone,
# the athletes only they listed are not reached: the finish looks, deletes
# their page rows and marks them removed ---
sed -i -e "/^memory_limit = 1MiB$/d" "$T/raced.conf"
fixture_get /_reset >/dev/null
check "fifth import (unchanged, pass whole) succeeds" raced_once
N=$(last_run)
for st in entries athletes; do
	check_eq "$st: every page row the pass read was reached" \
		"$(run_count "$N" $st preload_rows_reached)" "$(run_count "$N" $st preload_rows)"
done
# A page row its input's first no longer leads to (page 0 names no next
# page): the pass's blocks find it but it is not held, so the finish
# looks for page rows to delete, and deletes it.
a=$(sql "select input from raced_pages where stage = 'athletes' and page_no = 0 and next_url is null
	and seen_import >= 0 order by ctid limit 1")
sql "insert into raced_pages (stage, url, input, page_no, keys, hashes, fetched_at, seen_import)
	values ('athletes', '$a?stale=1', '$a', 1, '{}', '', now(), $N)"
fixture_get /_reset >/dev/null
check "an unchanged import past a page row off its input's chain succeeds" raced_once
check_eq "that page row was deleted by the finish" \
	"$(sql "select count(*) from raced_pages where url = '$a?stale=1'")" 0
N=$(last_run)
own="select count(distinct e.payload->>'athlete_id') from entries e where e.parent_key = '7'
	and e.removed_import is null and not exists (select 1 from entries o where o.parent_key <> '7'
	and o.removed_import is null and o.payload->>'athlete_id' = e.payload->>'athlete_id')"
only=$(sql "$own")
check "race 7 lists athletes no other race lists ($only)" test "$only" -gt 0
curl -sf -X POST "$FIXTURE_URL/_mutate?remove_entries=7&at=2026-06-02T00:00:00Z" >/dev/null
fixture_get /_reset >/dev/null
check "sixth import (race 7's entries gone) succeeds" raced_once
N=$(last_run)
check "athletes: fewer page rows reached than the pass read" \
	test "$(run_count "$N" athletes preload_rows_reached)" -lt "$(run_count "$N" athletes preload_rows)"
check_eq "race 7's own athletes marked removed by it" \
	"$(sql "select count(*) from athletes where removed_import = $N")" "$only"
check_eq "their page rows deleted: one a current athlete" \
	"$(sql "select count(*) from raced_pages where stage = 'athletes'")" \
	"$(sql "select count(*) from athletes where removed_import is null")"
check_tables_served "race 7's entries gone"

# --- the pass still reading: an input its chunks so far held starts at
# once.  The athletes' page rows stored again, half of them, then
# placeholders of athletes (seen_import < 0: every read leaves them out),
# then the other half: the pass reads the blocks in that order, and the
# placeholders make it long; meanwhile the first half's athletes start
# with their state (preload_early), the rest when the pass is done, and
# the import is as exact ---
sql "create table held_pages as select * from raced_pages where stage = 'athletes';
	delete from raced_pages where stage = 'athletes';
	insert into raced_pages select * from held_pages where hashtext(url) % 2 = 0;
	insert into raced_pages (stage, url, input, page_no, keys, hashes, fetched_at, seen_import)
	select 'athletes', '/athletes/~' || g, '/athletes/~' || g, 0, '{}', '', now(), -1
	from generate_series(1, $PRELOAD_PLACEHOLDERS) g;
	insert into raced_pages select * from held_pages where hashtext(url) % 2 <> 0;
	drop table held_pages"
sql "analyze raced_pages"
fixture_get /_reset >/dev/null
w0=$(writes)
check "seventh import (unchanged, the athletes' pass slowed) succeeds" raced_once
N=$(last_run)
reqs_save
check_eq "slowed pass: every request answered 304" "$(reqs_count 'n <> nm')" 0
check_eq "slowed pass: zero stage-row writes" "$(writes)" "$w0"
check_tables_served "unchanged, the athletes' pass slowed"
check_eq "athletes: the pass read the stage to its end" "$(run_count "$N" athletes preload_complete)" 1
check_eq "athletes: every input's state from the pass" \
	"$(run_count "$N" athletes state_preloaded)" "$(inputs_of athletes)"
early=$(run_count "$N" athletes preload_early)
check "athletes: some started while the pass read on ($early), not all" \
	test "$early" -gt 0 -a "$early" -lt "$(inputs_of athletes)"

# --- the ANALYZE fails: logged, the import goes on.  An expression index
# whose function refuses to run under ANALYZE (as a statement_timeout
# would: 57014, a class raced otherwise retries on a new connection) ---
sql "create function raced_test_refuse(t text) returns text language plpgsql immutable as \$f\$
begin
	if current_query() ilike '%analyze (skip_locked) raced_pages%' then
		raise exception 'canceling statement due to statement timeout (the test)' using errcode = 'query_canceled';
	end if;
	return t;
end \$f\$"
sql "create index raced_test_refuse_idx on raced_pages (raced_test_refuse(input))"
sql "delete from raced_pages where input like '/athletes/~%'" # stale again
an1=$(analyzes)
fixture_get /_reset >/dev/null
check "eighth import (unchanged, its ANALYZE refused) succeeds" timeout 60 "$RACED" --config "$T/raced.conf" --once 2>>"$T/raced.log"
check "the refused ANALYZE is logged, once" \
	test "$(grep -c 'raced_pages could not be analyzed before the import read its state' "$T/raced.log")" -eq 1
check_eq "raced_pages not analyzed" "$(analyzes)" "$an1"
check_eq "no reconnect for it" "$(grep -c 'database: connected' "$T/raced.log")" \
	"$(grep -c 'started with' "$T/raced.log")"
check_tables_served "unchanged, its ANALYZE refused"
sql "drop index raced_test_refuse_idx; drop function raced_test_refuse(text)"
