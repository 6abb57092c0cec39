# incremental_lib.sh — helpers shared by the incremental-import tests
# (source after harness.sh): stage-row writes from pg_stat_user_tables,
# the fixture's per-URL request counts, tables compared with the data
# served.

STAGES="races entries athletes"

# pg_stat_user_tables shows a backend's writes once it flushed them; a
# backend flushes when it exits, and it has left pg_stat_activity only
# after that (pgstat's shutdown hook runs before its proc slot is freed).
no_other_backends() {
	test "$(sql "select count(*) from pg_stat_activity where backend_type = 'client backend' and pid <> pg_backend_pid()")" = 0
}

# Rows inserted, updated and deleted in TABLES (default: every stage table).
writes() {
	wait_for "raced's database sessions to end" 20 no_other_backends
	local list
	list=$(printf "'%s'," ${1:-$STAGES})
	sql "select coalesce(sum(n_tup_ins + n_tup_upd + n_tup_del), 0) from pg_stat_user_tables where relname in (${list%,})"
}

# Rows of raced_pages updated and inserted so far (an unchanged import
# writes none: what it reached is one raced_reached row a batch).
page_writes() {
	wait_for "raced's database sessions to end" 20 no_other_backends
	sql "select n_tup_ins + n_tup_upd from pg_stat_user_tables where relname = 'raced_pages'"
}

# The fixture's /_requests, queried: reqs_count WHERE counts the URLs
# (k: the URL, n: requests, nm: of them answered 304) matching WHERE.
reqs_save() { fixture_get /_requests >"$T/requests.json"; }
reqs_count() {
	sql "select count(*) from (select key as k, (value->>'requests')::int as n,
	      (value->>'not_modified')::int as nm
	      from jsonb_each(pg_read_file('$T/requests.json')::jsonb->'urls')) r where $1"
}
reqs_list() {
	sql "select string_agg(k, ' ' order by k) from (select key as k, (value->>'requests')::int as n,
	      (value->>'not_modified')::int as nm
	      from jsonb_each(pg_read_file('$T/requests.json')::jsonb->'urls')) r where $1"
}

# Every stage's current set (the documented query: removed_import is null)
# equals what the fixture serves, compared as JSON.
check_tables_served() {
	local kind diff
	for kind in $STAGES; do
		fixture_get "/_dump/$kind" >"$T/$kind.json"
		diff=$(sql "with served as (select value as doc from jsonb_array_elements(pg_read_file('$T/$kind.json')::jsonb)),
		           cur as (select * from $kind where removed_import is null)
		           select count(*) from served s full join cur t on t.key = s.doc->>'id'
		           where t.payload is distinct from s.doc")
		check_eq "$1: the current set of $kind equals the items served" "$diff" 0
	done
}

# A count of import ID's run (import_runs.counts): count ID STAGE NAME
run_count() { sql "select counts->'$2'->>'$3' from import_runs where id = $1"; }

raced_once() { "$RACED" --config "$T/raced.conf" --once "$@" 2>>"$T/raced.log"; }
last_run() { sql 'select max(id) from import_runs'; }
# Make the next import read back the rows of its 304 pages rather than
# take their kept values (docs/architecture.md, "Children of a 304
# without a read-back"): a DELETE, even of no row, is counted, so the
# next run does not trust the tables named.
read_back_next() {
	local t
	for t in "$@"; do sql "delete from $t where false" >/dev/null; done
}
