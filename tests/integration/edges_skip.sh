#!/usr/bin/env bash
# Link records left out (issue 15): an unchanged re-import sends no link
# record for a parent whose item is unchanged and whose athlete's pages
# were all reached only, when the links the run before left are trusted
# (docs/architecture.md, "Edges"); counted in import_runs.counts
# (athletes: links_sent, links_skipped, links_dropped).  With validators,
# without, with refresh.  And every case where they are not trusted sends
# them all: the link table emptied, an interrupted run (a new import, and a
# resume), a run that dropped a link record, --full.  After each import
# the links are the relation served.
. "$TESTS_DIR/lib/harness.sh"
. "$TESTS_DIR/integration/incremental_lib.sh"
. "$TESTS_DIR/integration/edges_lib.sh"

pg_start
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
ARGS=(--port "$PORT" --seed 11 --races 25 --entries-per-race 10 --athletes 60 --page-size 4)
fixture_start "${ARGS[@]}" --validators both
write_config

link_writes() {
	wait_for "raced's database sessions to end" 20 no_other_backends
	sql "select n_tup_ins + n_tup_upd + n_tup_del from pg_stat_user_tables where relname = 'athletes_parents'"
}
# links LABEL SENT SKIPPED: the last run's link records, then the links
# are the relation served.
links() {
	local id
	id=$(last_run)
	check_eq "$1: link records sent, skipped, dropped" \
		"$(run_count "$id" athletes links_sent) $(run_count "$id" athletes links_skipped) $(run_count "$id" athletes links_dropped)" \
		"$2 $3 0"
	check_edges_exact "$1"
}

check "first import succeeds" raced_once
ENTRIES=$(sql "select count(*) from entries")   # every entry is a parent of athletes
links "first import (no run before)" "$ENTRIES" 0

# --- unchanged, validators: every page 304 -------------------------------
w0=$(link_writes)
check "unchanged re-import succeeds" raced_once
links "unchanged, validators" 0 "$ENTRIES"
check_eq "no link row written" "$(link_writes)" "$w0"

# --- a change: only the parents it touches send theirs --------------------
curl -sf -X POST "$FIXTURE_URL/_mutate?add_entries=4:3&at=2026-06-01T00:00:00Z" >/dev/null
check "import after entries were added succeeds" raced_once
id=$(last_run)
check "the added entries' links are sent, the rest skipped" \
	test "$(run_count "$id" athletes links_sent)" -ge 3 -a "$(run_count "$id" athletes links_skipped)" -gt 0
check_eq "every parent counted once" \
	"$(( $(run_count "$id" athletes links_sent) + $(run_count "$id" athletes links_skipped) ))" "$((ENTRIES + 3))"
check_edges_exact "entries added"
ENTRIES=$((ENTRIES + 3))

# --- without validators: the first run writes the pages (their validators
# went), the next finds every item unchanged ---------------------------------
fixture_stop
fixture_start "${ARGS[@]}" --validators none --mutate "add_entries=4:3&at=2026-06-01T00:00:00Z"
check "import without validators succeeds" raced_once
links "validators gone: pages rewritten" "$ENTRIES" 0
check "unchanged re-import without validators succeeds" raced_once
links "unchanged, no validators" 0 "$ENTRIES"

# --- refresh = 1h on athletes: skipped inputs are reached only ------------
sed -i '/^\[stage athletes\]/a refresh = 1h' "$T/raced.conf"
check "unchanged re-import with refresh succeeds" raced_once
check "athletes were skipped by refresh" test "$(run_count "$(last_run)" athletes skipped_fresh)" -gt 0
links "unchanged, refresh" 0 "$ENTRIES"
write_config

# --- 1. the link table emptied -------------------------------------------
sql "delete from athletes_parents" >/dev/null
check "import after the links were deleted succeeds" raced_once
links "link table emptied" "$ENTRIES" 0
check "the next one succeeds" raced_once
links "after the refill" 0 "$ENTRIES"

# --- 2. an interrupted run: what a kill between a parent's page state and
# its link record leaves: links missing, the run 'running' (killed) or
# 'interrupted' with its counts written and no link dropped (drained: the
# status alone must keep the next run from trusting the links) -------------
lose_links() {
	sql "delete from athletes_parents where parent_key in (select key from entries order by key limit 5)" >/dev/null
	sql "insert into import_runs (status, pipeline, resumable, counts, finished_at)
	     select '$1', pipeline, '$1' = 'interrupted', counts, now() from import_runs
	     order by id desc limit 1" >/dev/null
}
lose_links running
check "import after a killed one succeeds" raced_once
check_eq "the killed run is marked interrupted" \
	"$(sql "select status from import_runs where id = $(last_run) - 1")" interrupted
links "after a killed run" "$ENTRIES" 0
lose_links interrupted
check "import after a drained one succeeds" raced_once
links "after a drained run" "$ENTRIES" 0
# ... and resumed: the resume trusts nothing
lose_links interrupted
check "the interrupted run resumed succeeds" raced_once --resume
check_eq "it finished under its id" "$(sql "select status || resumes from import_runs where id = $(last_run)")" succeeded1
links "resumed" "$ENTRIES" 0

# --- 3. a run that dropped a link record (held past its bound, lost its
# undone set, out of memory): the next trusts nothing ----------------------
check "an unchanged import succeeds" raced_once
links "unchanged again" 0 "$ENTRIES"
sql "delete from athletes_parents where parent_key in (select key from entries order by key limit 5)" >/dev/null
sql "update import_runs set counts = jsonb_set(counts, '{athletes,links_dropped}', '1')
     where id = (select max(id) from import_runs)" >/dev/null
check "import after a run that dropped links succeeds" raced_once
links "after a run that dropped links" "$ENTRIES" 0

# --- 4. --full sends them all ---------------------------------------------
check "--full succeeds" raced_once --full
links "--full" "$ENTRIES" 0
check "the import after --full succeeds" raced_once
links "after --full" 0 "$ENTRIES"

echo "all link-skip checks passed"
