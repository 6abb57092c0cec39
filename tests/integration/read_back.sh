#!/usr/bin/env bash
# Read-backs (docs/architecture.md, "Reading state", "Read-back ahead"):
# a 304 on an entries page feeds the athletes stage with the entries
# stored for that page.  Races of three entries pages each: every page of
# an input is read back ahead with its first, many inputs a statement, on
# a connection of its own (not behind the batches' commits); every item
# of every page still reaches the athletes, exactly.  A page whose stored
# rows were deleted is requested once more without validators, and its
# items are not lost.
. "$TESTS_DIR/lib/harness.sh"
. "$TESTS_DIR/integration/incremental_lib.sh"

pg_start
# The backend's pid on every line: which connection ran what.
sql "alter system set log_line_prefix = '[%p] '" >/dev/null
sql "select pg_reload_conf()" >/dev/null
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
ARGS=(--port "$PORT" --seed 5 --races 30 --entries-per-race 50 --athletes 900 --page-size 20 --validators both)
fixture_start "${ARGS[@]}"
write_config
sed -i -e "s|^conninfo = .*|conninfo = $PG_CONNINFO options='-c log_statement=all'|" "$T/raced.conf"
log_lines() { wc -l <"$PG_DIR/server.log"; }
# The pids that ran statement NAME since line $1, one a line.
pids_of() { tail -n +"$1" "$PG_DIR/server.log" | grep "execute $2" | sed -e 's/^\[\([0-9]*\)\].*/\1/' | sort -u; }
# Requests of athletes in /_requests (saved by reqs_save).
athletes_requested() { reqs_count "k like '/athletes/%'"; }

check "first import succeeds" raced_once
reqs_save
athletes=$(athletes_requested)
check "the athletes were requested" test "$athletes" -gt 100
pages=$(sql "select count(*) from raced_pages where stage = 'entries' and seen_import >= 0")
check "races have later entries pages ($pages pages for 30 races)" test "$pages" -ge 60

fixture_get /_reset >/dev/null
from=$(log_lines)
w0=$(writes)
read_back_next races entries
check "second import (unchanged) succeeds" raced_once
N=$(last_run)
reqs_save
check_eq "every request answered 304" "$(reqs_count 'n <> nm')" 0
check_eq "every athlete requested again: fed every entry of every page" "$(athletes_requested)" "$athletes"
check_eq "zero stage-row writes" "$(writes)" "$w0"
check_tables_served "unchanged"
# Every page with items, those of the first inputs too (the stage's
# concurrency, 8): they start while the stage's pass reads, and take
# their state from it through an entry of their own, as queued inputs do.
keyed=$(sql "select count(*) from raced_pages where stage = 'entries' and seen_import >= 0
	and cardinality(keys) > 0")
ahead=$(run_count "$N" entries read_back_ahead)
check_eq "entries pages with items read back ahead, every one" "$ahead" "$keyed"
# Narrow (docs/architecture.md, "Reading state"): the athletes' url reads
# only athlete_id of an entry, so that is all a read-back returns; and
# by the races' keys (a range of the parent_key index a race), not by key.
backs=$(tail -n +"$from" "$PG_DIR/server.log" | grep -cE 'execute raced_read(f|p)_entries' || true)
check "entries pages of 30 races read back in $backs statements (<= 5; one a page before)" \
	test "$backs" -ge 1 -a "$backs" -le 5
check_eq "every read-back by parent, none by key" \
	"$(tail -n +"$from" "$PG_DIR/server.log" | grep -c 'execute raced_readp_entries' || true)" "$backs"
check_eq "no entry read back whole" \
	"$(tail -n +"$from" "$PG_DIR/server.log" | grep -c 'execute raced_read_entries' || true)" 0
# Read-backs on a connection of their own: not queued behind the batches'
# commits on the one that writes.
readers=$(pids_of "$from" raced_readp_entries)
# (an unchanged import's batches write only their reach: raced_reach_write)
writers=$(pids_of "$from" 'raced_\(pages\|reach\)_write')
check "the read-backs and the batches ran (pids: $readers; $writers)" test -n "$readers" -a -n "$writers"
check_eq "no read-back ran on a connection that wrote batches" \
	"$(comm -12 <(echo "$readers") <(echo "$writers") | wc -l)" 0

# A later page's stored rows deleted: its 304 cannot be used; requested
# once more without validators, its items fed and stored again.
row=$(sql "select url || ' ' || array_length(keys, 1) from raced_pages
	where stage = 'entries' and page_no = 1 and seen_import >= 0 order by url limit 1")
url=${row% *}
lost=${row#* }
path=${url#"$FIXTURE_URL"}
check_eq "rows of $path deleted" "$(sql "with d as (delete from entries where key in (select
	unnest(keys) from raced_pages where stage = 'entries' and url = '$url') returning 1)
	select count(*) from d")" "$lost"
fixture_get /_reset >/dev/null
from3=$(log_lines)
check "third import (rows of one page gone) succeeds" raced_once
reqs_save
check_eq "that page requested twice (304, then without validators)" \
	"$(reqs_count "k = '$path' and n = 2 and nm = 1")" 1
check_eq "every other request answered 304" "$(reqs_count "k <> '$path' and n <> nm")" 0
check_eq "every athlete requested again" "$(athletes_requested)" "$athletes"
check "the refetch was logged" grep -q "requesting it again without validators" "$T/raced.log"
check "the read-back that missed those rows went again by key" \
	grep -q 'execute raced_readf_entries' <(tail -n +"$from3" "$PG_DIR/server.log")
check_tables_served "after the refetch"
