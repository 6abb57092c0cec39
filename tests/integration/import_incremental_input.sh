#!/usr/bin/env bash
# Incremental imports when the provider sends no validators, one kind of
# them, or bad ones (issue 15, "Bad input"), and the root's cursor:
# - no validators: every item recognised unchanged, no stage-row write;
# - ETag only, Last-Modified only, weak ETags: the second import all 304;
# - a new ETag with the same content writes nothing;
# - a 304 for a page whose rows were deleted, or to a request without
#   validators: refetched unconditionally once, logged, no item lost;
# - a Last-Modified that is not a date is not kept;
# - {last_success} and {cursor} less lag, initial first, a failed import
#   does not move them.
. "$TESTS_DIR/lib/harness.sh"
. "$TESTS_DIR/integration/incremental_lib.sh"

pg_start
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
ARGS=(--port "$PORT" --seed 11 --races 17 --entries-per-race 9 --athletes 60 --page-size 4)
restart() { fixture_stop; fixture_start "${ARGS[@]}" "$@"; }
fixture_start "${ARGS[@]}" --validators none
write_config

# --- no validators --------------------------------------------------------
check "first import (no validators) succeeds" raced_once
w0=$(writes)
pw0=$(page_writes)
fixture_get /_reset >/dev/null
check "second import (no validators) succeeds" raced_once
N=$(last_run)
reqs_save
check_eq "no validators: no 304" "$(reqs_count 'nm > 0')" 0
for k in races entries athletes; do
	check_eq "no validators: every $k item recognised unchanged" \
		"$(run_count "$N" $k unchanged)" "$(run_count "$N" $k fetched)"
	check_eq "no validators: no $k row written" "$(run_count "$N" $k stored)" 0
done
check_eq "no validators: zero stage-row writes" "$(writes)" "$w0"
check_eq "no validators: no raced_pages row written" "$(page_writes)" "$pw0"
check_tables_served "no validators"

# --- one validator, or weak ETags: the second import is all 304 ------------
for v in etag lm weak; do
	restart --validators $v
	check "$v: an import that learns the validators succeeds" raced_once
	w0=$(writes)
	fixture_get /_reset >/dev/null
	check "$v: the next import succeeds" raced_once
	reqs_save
	check_eq "$v: every request answered 304" "$(reqs_count 'n <> nm')" 0
	check_eq "$v: zero stage-row writes" "$(writes)" "$w0"
	check_tables_served "$v"
done
check_eq "weak ETags are kept as received" \
	"$(sql "select count(*) from raced_pages where etag not like 'W/\"%'")" 0

# --- a new ETag, the same content ------------------------------------------
restart --validators etag
check "an import over strong ETags succeeds" raced_once
w0=$(writes)
curl -sf -X POST "$FIXTURE_URL/_mutate?etag_salt=5" >/dev/null
fixture_get /_reset >/dev/null
check "an import after the ETags changed succeeds" raced_once
N=$(last_run)
reqs_save
check_eq "new ETags: every page fetched with a body" "$(reqs_count 'nm > 0')" 0
check_eq "new ETags, same content: zero stage-row writes" "$(writes)" "$w0"
check_eq "new ETags: every entry unchanged" "$(run_count "$N" entries unchanged)" "$(run_count "$N" entries fetched)"

# --- a 304 for a page whose rows were deleted --------------------------------
fixture_get /_reset >/dev/null
sql "delete from entries where parent_key = '3'"
check "an import after rows were deleted succeeds" raced_once
N=$(last_run)
reqs_save
check "race 3's first page was requested again" test "$(reqs_count "k = '/races/3/entries' and n = 2 and nm = 1")" = 1
check "counts: refetched" test "$(run_count "$N" entries refetched)" -gt 0
check "it is logged" grep -q "races/3/entries" "$T/raced.log"
check_tables_served "rows deleted"
# TRUNCATE: the emptied table's page state is forgotten, everything refetched.
fixture_get /_reset >/dev/null
sql "truncate athletes"
check "an import after TRUNCATE athletes succeeds" raced_once
reqs_save
check_eq "no athlete answered 304" "$(reqs_count "k like '/athletes/%' and nm > 0")" 0
check_tables_served "athletes truncated"

# --- a 304 to a request that sent no validator -------------------------------
# An import without validators first, so that none is stored to send.
restart --validators none
check "an import that forgets the validators succeeds" raced_once
check_eq "no validator stored" "$(sql "select count(*) from raced_pages where etag is not null or last_modified is not null")" 0
restart --validators none --broken /races/6/entries=notmodified
fixture_get /_reset >/dev/null
before=$(sql "select count(*) from entries where parent_key = '6' and removed_import is null")
raced_once || true
N=$(last_run)
reqs_save
check_eq "the unasked-for 304 was requested again once (twice in all), both 304" \
	"$(reqs_count "k = '/races/6/entries' and n = 2 and nm = 2")" 1
check "the import is partial" test "$(sql "select status from import_runs where id = $N")" = partial
check "the refetch is logged" grep -q "HTTP 304 to a request without validators: requesting it again without validators" "$T/raced.log"
check "the failure names the page" test "$(sql "select count(*) from import_errors where import_id = $N and url like '%/races/6/entries'")" -gt 0
check "it is logged" grep -q "races/6/entries" "$T/raced.log"
check_eq "race 6's entries are not lost" \
	"$(sql "select count(*) from entries where parent_key = '6' and removed_import is null")" "$before"

# --- a Last-Modified that is not a date --------------------------------------
restart --validators lm --broken /races/2/entries=baddate
check "an import with a bad Last-Modified succeeds" raced_once
check_eq "the bad date is not kept, the ETag is" \
	"$(sql "select coalesce(last_modified, 'null') || ' ' || coalesce(etag, 'null') from raced_pages where url like '%/races/2/entries'")" 'null "bd1"'
check "other pages keep theirs" test "$(sql "select count(*) from raced_pages where stage = 'entries' and last_modified is not null")" -gt 0

# --- the cursor: {last_success} less lag; initial; a failed import ---------------
# A database of its own: {last_success} is the latest succeeded import's.
sql "create database cursor_db owner raced"
PG_CONNINFO="${PG_CONNINFO/dbname=races/dbname=cursor_db}"
export PGDATABASE=cursor_db
restart --validators none
write_config
sed -i "s|^base_url = .*|base_url = $FIXTURE_URL|; s|^url = /races$|url = /races?since={last_success}\ninitial = 2026-01-01T00:00:00Z\nlag = 1h|" "$T/raced.conf"
check "--check-config takes the cursor" "$RACED" --config "$T/raced.conf" --check-config
fixture_get /_reset >/dev/null
check "first cursor import succeeds" raced_once
reqs_save
check_eq "the first import requests initial" "$(reqs_list "k like '/races?since=%' and k not like '%page=%'" | sed 's/%3A/:/g')" "/races?since=2026-01-01T00:00:00Z"
S=$(last_run)
want=$(sql "select to_char((started_at - interval '1 hour') at time zone 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') from import_runs where id = $S")
fixture_get /_reset >/dev/null
check "second cursor import succeeds" raced_once
reqs_save
check_eq "the second requests the last success less lag" "$(reqs_list "k like '/races?since=%' and k not like '%page=%'" | sed 's/%3A/:/g')" "/races?since=$want"
check_eq "root_url keeps it" "$(sql "select replace(root_url, '%3A', ':') like '%/races?since=$want' from import_runs where id = $(last_run)")" t
S=$(last_run)
want=$(sql "select to_char((started_at - interval '1 hour') at time zone 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') from import_runs where id = $S")
restart --validators none --broken /races=404
raced_once || true
check_eq "an import whose root fails is failed" "$(sql "select status from import_runs where id = $(last_run)")" failed
restart --validators none
fixture_get /_reset >/dev/null
check "the import after it succeeds" raced_once
reqs_save
check_eq "a failed import did not move the cursor" "$(reqs_list "k like '/races?since=%' and k not like '%page=%'" | sed 's/%3A/:/g')" "/races?since=$want"

# {cursor} = the largest stored /updated_at, less lag.
# (at = now: the {last_success} import lists races changed since an hour ago)
curl -sf -X POST "$FIXTURE_URL/_mutate?remove_entries=4" >"$T/mutate.json"
check "an import sees the change" raced_once
check_eq "race 4's updated_at stored" "$(sql "select payload->>'updated_at' from races where key = '4'")" \
	"$(json_get "$(cat "$T/mutate.json")" updated_at)"
want=$(sql "select to_char((payload->>'updated_at')::timestamptz at time zone 'UTC' - interval '30 minutes', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') from races where key = '4'")
write_config
sed -i "s|^base_url = .*|base_url = $FIXTURE_URL|; s|^url = /races$|url = /races?since={cursor}\ncursor = /updated_at\ninitial = 2026-01-01T00:00:00Z\nlag = 30m|" "$T/raced.conf"
check "--check-config takes {cursor}" "$RACED" --config "$T/raced.conf" --check-config
fixture_get /_reset >/dev/null
check "a {cursor} import succeeds" raced_once
reqs_save
check_eq "it requests the largest updated_at less lag" "$(reqs_list "k like '/races?since=%' and k not like '%page=%'" | sed 's/%3A/:/g')" "/races?since=$want"
echo "all incremental input checks passed"
