#!/usr/bin/env bash
# The link statement's plan: the store prepares it once per connection,
# and PostgreSQL keeps one plan for every batch.  A plan that reads the
# stage's page rows and filters them by URL reads every page row of the
# stage for every batch, quadratic in the import (it made a 2,000-race
# import 40x slower).  Under plan_cache_mode = force_generic_plan and small
# batches, the page rows an import reads stay within a few per page and
# link record.  The reads of inputs' pages and of stored rows are prepared
# too: the same bound holds with them (the first import reads every
# input's state), and a second import, all 304s, reads back the entries
# of each race for the athletes stage by the race's key (a range of the
# parent_key index), not by scanning entries.
# The same for the link table's rows, read by the link writes (by URL,
# by keys, and the fresh insert: issue 17), in a first import and in one
# where every parent's links change (stale links deleted).
# And the finish's clean-up of page rows (an anti-join against the run's
# reach): with statistics that make the reach look large and a small
# work_mem, a NOT EXISTS under an OR was a subplan run once per page row,
# each reading the whole reach (quadratic: 31 s for 20,000 pages).
. "$TESTS_DIR/lib/harness.sh"
. "$TESTS_DIR/integration/incremental_lib.sh"

pg_start
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
# 100 races x 20 entries over 2,000 athletes: about 2,000 athlete inputs,
# each a link record, in batches of 10.
fixture_start --port "$PORT" --seed 5 --races 100 --entries-per-race 20 --athletes 2000 --page-size 20 \
	--validators both
write_config
sed -i -e "s|^conninfo = .*|conninfo = $PG_CONNINFO options='-c plan_cache_mode=force_generic_plan -c log_statement=all -c work_mem=64kB'|" \
	-e 's/^batch_size = .*/batch_size = 10/' "$T/raced.conf"

pages_read() {
	wait_for "raced's database sessions to end" 20 no_other_backends
	sql "select pg_stat_force_next_flush()" >/dev/null
	sql "select coalesce(seq_tup_read, 0) + coalesce(idx_tup_fetch, 0) from pg_stat_user_tables where relname = 'raced_pages'"
}
links_read() {
	wait_for "raced's database sessions to end" 20 no_other_backends
	sql "select pg_stat_force_next_flush()" >/dev/null
	sql "select coalesce(seq_tup_read, 0) + coalesce(idx_tup_fetch, 0) from pg_stat_user_tables where relname = 'athletes_parents'"
}
check "import succeeds" raced_once
links=$(sql "select count(*) from athletes_parents")
pages=$(sql "select count(*) from raced_pages")
read=$(pages_read)
check "links were written" test "$links" -gt 1000
check "page rows read ($read) <= 10 x (pages $pages + links $links)" test "$read" -le $((10 * (pages + links)))

entries_read() {
	wait_for "raced's database sessions to end" 20 no_other_backends
	sql "select pg_stat_force_next_flush()" >/dev/null
	sql "select coalesce(seq_tup_read, 0) + coalesce(idx_tup_fetch, 0) from pg_stat_user_tables where relname = 'entries'"
}
reach_read() {
	wait_for "raced's database sessions to end" 20 no_other_backends
	sql "select pg_stat_force_next_flush()" >/dev/null
	sql "select coalesce(seq_tup_read, 0) + coalesce(idx_tup_fetch, 0) from pg_stat_user_tables where relname = 'raced_reached'"
}
# Reach rows of an import that never ran, analyzed: the planner takes a
# run's reach of a stage for 4,000 rows, 40,000 URLs, past work_mem.
sql "insert into raced_reached (import_id, stage, urls, done)
     select -1, s, array['/x/' || i], '{}' from generate_series(1, 4000) i,
     unnest(array['races', 'entries', 'athletes']) s" >/dev/null
sql "analyze raced_reached" >/dev/null
r0=$(reach_read)
e0=$(entries_read)
# read back, not taken from the pages' kept values: a delete is counted
sql "delete from entries where false" >/dev/null
check "a second import succeeds" raced_once
entries=$(sql "select count(*) from entries")
read_back=$(sql "select (counts->'entries'->>'read_back')::bigint from import_runs order by id desc limit 1")
e1=$(entries_read)
check "the entries were read back for the athletes ($read_back)" test "$read_back" -gt 0
check "entries rows read ($((e1 - e0))) <= 3 x entries $entries" test "$((e1 - e0))" -le $((3 * entries))
check "the entries were read back by their races' keys (parent_key ranges)" \
	grep -q "execute raced_readp_entries" "$PG_DIR/server.log"
lread=$(links_read)
check "link rows read ($lread) <= 10 x links $links" test "$lread" -le $((10 * links))
r1=$(reach_read)
# A reach row per batch of page records: fewer than the pages.  The
# finish's clean-up deletes the 12,000 made-up ones (import -1 cannot be
# resumed), reading them once.
check "reach rows read ($((r1 - r0))) <= 20 x (pages $pages + 12,000)" \
	test "$((r1 - r0))" -le $((20 * (pages + 12000)))
check "the fresh insert ran" grep -qE "execute raced_link_(plain|fresh)_athletes:" "$PG_DIR/server.log"

# Every entry's athlete URL becomes /athletes/a1: every parent's old link
# is stale and deleted, by a plan prepared when the link table was empty.
sed -i 's|^url = /athletes/{athlete_id}$|url = /athletes/a1?of={athlete_id}|' "$T/raced.conf"
check "import with every link changed succeeds" raced_once
check_eq "every link goes to a1" "$(sql "select count(*) from athletes_parents where key <> 'a1'")" 0
check "the write by keys ran" grep -q "execute raced_link_keys_athletes:" "$PG_DIR/server.log"
lread2=$(links_read)
check "link rows read ($((lread2 - lread))) <= 10 x links $links" test $((lread2 - lread)) -le $((10 * links))

# The finish under stale statistics: raced_pages analyzed while it held
# no page row of the athletes, which the next import then writes (as
# after a stage table was dropped and its state with it, then a first
# import of ten times the items).  Planned from those statistics, the
# clean-up's anti-join (and the counts' join of the keys seen) was a
# nested loop that read the whole reach once per page row (over 12
# minutes at 370,000 pages; 1,136,279 reach rows read here).
sql "delete from raced_pages where stage = 'athletes'" >/dev/null
sql "analyze raced_pages, raced_reached" >/dev/null
r2=$(reach_read)
check "an import after stale statistics succeeds" timeout 60 "$RACED" \
	--config "$T/raced.conf" --once 2>>"$T/raced.log"
athletes_pages=$(sql "select count(*) from raced_pages where stage = 'athletes'")
r3=$(reach_read)
check "athletes' page rows were written again ($athletes_pages)" test "$athletes_pages" -gt 1000
check "reach rows read ($((r3 - r2))) <= 20 x pages $pages" test "$((r3 - r2))" -le $((20 * pages))
check "the statistics were still stale at the finish" test "$(sql "select (c.reltuples < 0.5 * n.n)::int
	from pg_class c, (select count(*) n from raced_pages) n where c.relname = 'raced_pages'")" = 1
echo "all link-plan checks passed"
