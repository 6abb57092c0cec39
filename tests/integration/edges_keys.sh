#!/usr/bin/env bash
# Link records of both kinds (issue 17): a record carries its input's keys
# when the import knows them (the input's page records, held while it is
# live, then a per-stage cache of ended inputs' keys), else only the URL
# and the store reads the keys from raced_pages.  The athletes' URLs are
# /athletes/aK.json, so no key is implied by its URL and every ended
# athlete takes room in the cache; memory_limit = 1MiB bounds it at 64 KiB
# (a sixteenth), well below the 2,000 athlete inputs here, so both
# statements run in every import; whichever way a
# record went, the links are the relation served: first import, unchanged
# re-import (no link written), a change, --full, athletes skipped within
# refresh.
. "$TESTS_DIR/lib/harness.sh"
. "$TESTS_DIR/integration/incremental_lib.sh"
. "$TESTS_DIR/integration/edges_lib.sh"

pg_start
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
ARGS=(--port "$PORT" --seed 7 --races 100 --entries-per-race 20 --athletes 2000 --page-size 20 --validators both)
fixture_start "${ARGS[@]}"
write_config
# Every statement in the server log, to count each link write's executions.
sed -i -e "s|^conninfo = .*|conninfo = $PG_CONNINFO options='-c log_statement=all'|" \
	-e "s|^admin_group = root|&\nmemory_limit = 1MiB|" \
	-e "s|^url = /athletes/{athlete_id}$|url = /athletes/{athlete_id}.json|" "$T/raced.conf"

# executions of the prepared statement $1 logged since the mark $2 (bytes)
executed() {
	tail -c +"$(($2 + 1))" "$PG_DIR/server.log" | grep -c "execute $1:" || true
}
log_mark() { stat -c %s "$PG_DIR/server.log"; }
link_writes() {
	wait_for "raced's database sessions to end" 20 no_other_backends
	sql "select n_tup_ins + n_tup_upd + n_tup_del from pg_stat_user_tables where relname = 'athletes_parents'"
}

m=$(log_mark)
check "first import succeeds" raced_once
# (into an empty link table a parent's first record by keys goes by the
# fresh insert, as a plain INSERT while no pair was found stored, a later
# one by the write by keys)
fresh=$(executed raced_link_plain_athletes "$m")
by_url=$(executed raced_links_athletes "$m")
check "the fresh insert ran, plain ($fresh)" test "$fresh" -gt 0
check "the write by URL ran past the cache's bound ($by_url)" test "$by_url" -gt 0
check "the import counted records by URL" \
	test "$(sql "select counts->'athletes'->>'links_by_url' from import_runs order by id desc limit 1")" -gt 0
check_edges_exact "first import"

w0=$(link_writes)
m=$(log_mark)
check "unchanged re-import succeeds" raced_once
# the links the first import left are trusted: no record is sent (edges-skip)
check "no link write ran" test "$(executed raced_link_keys_athletes "$m")" -eq 0 -a \
	"$(executed raced_links_athletes "$m")" -eq 0 -a "$(executed raced_link_fresh_athletes "$m")" -eq 0
check_eq "no link row written" "$(link_writes)" "$w0"
check_edges_exact "unchanged re-import"

# Entries change athletes (a race's entries replaced, another race's added).
RM=$(sql "select parent_key from entries group by parent_key order by count(*) desc, parent_key limit 1")
curl -sf -X POST "$FIXTURE_URL/_mutate?remove_entries=$RM&add_entries=4:5&at=2026-06-01T00:00:00Z" >/dev/null
check "import after the change succeeds" raced_once
check_eq "race $RM's entries have no link" \
	"$(sql "select count(*) from athletes_parents l join entries e on e.key = l.parent_key where e.parent_key = '$RM'")" 0
check_edges_exact "after the change"

w0=$(link_writes)
m=$(log_mark)
check "--full import succeeds" raced_once --full
check "--full: the writes by keys and by URL ran" test "$(executed raced_link_keys_athletes "$m")" -gt 0 -a \
	"$(executed raced_links_athletes "$m")" -gt 0 -a "$(executed raced_link_fresh_athletes "$m")" -eq 0
check_eq "--full over unchanged data writes no link" "$(link_writes)" "$w0"
check_edges_exact "--full"

# --- athletes skipped within refresh: their keys are the stored pages' ---
sed -i 's|^dedupe = yes$|&\nrefresh = 1h|' "$T/raced.conf"
check "import with refresh succeeds" raced_once
RM2=$(sql "select parent_key from entries where removed_import is null and parent_key <> '4' group by parent_key order by count(*) desc, parent_key limit 1")
curl -sf -X POST "$FIXTURE_URL/_mutate?remove_entries=$RM2&add_entries=4:7&at=2026-06-02T00:00:00Z" >/dev/null
m=$(log_mark)
check "import skipping the athletes within refresh succeeds" raced_once
check "athletes were skipped as fresh" \
	test "$(sql "select (counts->'athletes'->>'skipped_fresh')::int from import_runs order by id desc limit 1")" -gt 0
check "the write by keys ran" test "$(executed raced_link_keys_athletes "$m")" -gt 0
check_edges_exact "refresh"
echo "all link-keys checks passed"
