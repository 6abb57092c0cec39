#!/usr/bin/env bash
# Edges (issue 16, items 1 and 3): after an import the join by keys alone,
# races -> entries -> athletes through athletes_parents, is the relation
# the fixture served, row for row, athletes shared by many entries
# included; the path view returns the same; an unchanged re-import writes
# no link; a race's entries removed lose their links after a succeeded
# import, not after a partial one; --full keeps them exact.
. "$TESTS_DIR/lib/harness.sh"
. "$TESTS_DIR/integration/incremental_lib.sh"
. "$TESTS_DIR/integration/edges_lib.sh"

pg_start
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
# 60 athletes for 25 x 10 entries: most athletes run several races.
ARGS=(--port "$PORT" --seed 11 --races 25 --entries-per-race 10 --athletes 60 --page-size 4 --validators both)
fixture_start "${ARGS[@]}"
write_config

link_writes() {
	wait_for "raced's database sessions to end" 20 no_other_backends
	sql "select n_tup_ins + n_tup_upd + n_tup_del from pg_stat_user_tables where relname = 'athletes_parents'"
}
check "first import succeeds" raced_once
check_edges_exact "first import"
# every athlete's key is its URL's last segment (import_keys: implied), so
# no parent's link record went by URL, however late it met its athlete
check_eq "no link record went by URL" \
	"$(sql "select counts->'athletes'->>'links_by_url' from import_runs order by id desc limit 1")" 0
check "athletes are shared by several entries" \
	test "$(sql 'select max(n) from (select count(*) n from athletes_parents group by key) c')" -gt 1
check_eq "athletes keep no parent_key" "$(sql 'select count(*) from athletes where parent_key is not null')" 0
check_eq "the current views: every row" "$(sql 'select count(*) from athletes_current')" "$(sql 'select count(*) from athletes')"

# --- an unchanged re-import writes no link ------------------------------
w0=$(link_writes)
check "unchanged re-import succeeds" raced_once
check_eq "no link row written" "$(link_writes)" "$w0"
check_edges_exact "unchanged re-import"

# --- a race's entries removed: their links go with a succeeded import ----
# The race with most entries (not 2, 4 or 8, used below) loses them.
RM=$(sql "select parent_key from entries where parent_key not in ('2', '4', '8') group by parent_key order by count(*) desc, parent_key limit 1")
M1="remove_entries=$RM&add_entries=4:3&at=2026-06-01T00:00:00Z"
curl -sf -X POST "$FIXTURE_URL/_mutate?$M1" >"$T/mutate.json"
removed=$(sql "select count(*) from entries where parent_key = '$RM'")
check "race $RM has entries" test "$removed" -gt 0
w0=$(link_writes)
check "import after the change succeeds" raced_once
check_eq "race $RM's entries have no link" \
	"$(sql "select count(*) from athletes_parents l join entries e on e.key = l.parent_key where e.parent_key = '$RM'")" 0
check_eq "link writes: race $RM's removed, race 4's added" "$(( $(link_writes) - w0 ))" "$((removed + 3))"
check_edges_exact "after the change"

# --- a partial import removes no link -------------------------------------
fixture_stop
fixture_start "${ARGS[@]}" --mutate "$M1" \
	--mutate 'remove_entries=8&at=2026-06-02T00:00:00Z' --broken /races/2/entries=404
raced_once || true
check_eq "the import is partial" "$(sql 'select status from import_runs order by id desc limit 1')" partial
check "race 8's entries keep their links" \
	test "$(sql "select count(*) from athletes_parents l join entries e on e.key = l.parent_key where e.parent_key = '8'")" -gt 0
fixture_stop
fixture_start "${ARGS[@]}" --mutate "$M1" \
	--mutate 'remove_entries=8&at=2026-06-02T00:00:00Z'
check "the next import succeeds" raced_once
check_eq "race 8's entries lost their links" \
	"$(sql "select count(*) from athletes_parents l join entries e on e.key = l.parent_key where e.parent_key = '8'")" 0
check_edges_exact "after a partial import and a complete one"

# --- --full keeps them exact ---------------------------------------------
w0=$(link_writes)
check "--full import succeeds" raced_once --full
check_eq "--full over unchanged data writes no link" "$(link_writes)" "$w0"
check_edges_exact "--full"

# --- parents whose URL changed lose their old links -----------------------
# Every entry's athlete URL becomes /athletes/a1: each entry's links now go
# to a1 alone (the other athletes are no longer seen: marked removed).
sed -i 's|^url = /athletes/{athlete_id}$|url = /athletes/a1?of={athlete_id}|' "$T/raced.conf"
check "the import with the changed URL succeeds" raced_once
check_eq "every current entry links to a1 only" \
	"$(sql "select count(*) filter (where l.key = 'a1') || ' ' || count(*) from athletes_parents l join entries e on e.key = l.parent_key where e.removed_import is null")" \
	"$(sql "select count(*) || ' ' || count(*) from entries where removed_import is null")"
check_eq "no link to another athlete is left" "$(sql "select count(*) from athletes_parents where key <> 'a1'")" 0
write_config
check "back to the athletes' own URLs" raced_once
check_edges_exact "URLs changed back"

# --- a database of schema 3 (before edges) upgraded in place ------------
# What raced before migrations 4 to 9 left: no link table, no views, no
# raced_columns, no comments, no raced_reached, no kept fields or their
# trigger.  The next import, unchanged
# data all answered 304, fills the links (every entry goes to athletes as
# an input, whose checkpoint the link statement reads).
sql "do \$\$ declare v record; begin
       for v in select c.relname from pg_class c where c.relkind = 'v'
         and obj_description(c.oid, 'pg_class') like 'raced: %' loop
         execute format('drop view %I', v.relname); end loop; end \$\$" >/dev/null
sql "drop table athletes_parents, raced_columns, raced_reached, raced_stage_deletes;
     drop function raced_stage_deleted() cascade; alter table raced_pages drop column fields;
     delete from raced_schema_version where version >= 4;
     comment on table import_runs is null; comment on table races is null" >/dev/null
check_eq "schema 3: no link table" "$(sql "select to_regclass('athletes_parents') is null")" t
fixture_get /_reset >/dev/null
check "the import after the upgrade succeeds" raced_once
check_eq "migrations 4 to 9 applied" "$(sql 'select max(version) from raced_schema_version')" 9
reqs_save
check_eq "every request was answered 304" "$(reqs_count 'n <> nm')" 0
check_edges_exact "after the upgrade"
check_eq "comments are back" \
	"$(sql "select obj_description('import_runs'::regclass, 'pg_class') is not null and obj_description('races'::regclass, 'pg_class') is not null")" t

# --- views: a user's object of a view's name is never dropped -------------
sql "drop view entries_current; create table entries_current (x int)" >/dev/null
check "raced refuses to connect past it" bash -c "! timeout 8 '$RACED' --config '$T/raced.conf' --once 2>'$T/refused.log'"
check "it names the object and the fix" grep -q 'entries_current exists and raced did not make it: rename or drop it' "$T/refused.log"
check_eq "the user's table is still there" "$(sql "select count(*) from entries_current")" 0
sql "drop table entries_current" >/dev/null
check "after the user's table goes, the import succeeds" raced_once
check_eq "the view is back" "$(sql "select count(*) from entries_current")" "$(sql 'select count(*) from entries where removed_import is null')"

echo "all edge checks passed"
