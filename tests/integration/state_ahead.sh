#!/usr/bin/env bash
# Inputs' state read ahead (docs/architecture.md, "Reading state"): an
# input's state is asked for when its parent item is queued for the stage,
# many inputs a statement, so a second import of unchanged data reads the
# state of its ~700 inputs in a handful of statements (before: one
# statement for every ~8 inputs, those that started while the last read
# was out), and a 304 on a race's entries page finds its rows read back
# already, many races' a statement.  The result is the same: every request 304, no stage row
# written, the tables equal the data served.  An import cancelled while
# reads ahead are out and states are held frees them (under ASan a leak
# fails raced's exit) and the next import is whole.  A re-import reads
# each child stage's state in one pass first (test state-preload): with
# memory_limit = 1MiB that pass holds 64 KiB, a few hundred of the 2,000
# athletes, and the others are read ahead as here.
. "$TESTS_DIR/lib/harness.sh"
. "$TESTS_DIR/integration/incremental_lib.sh"

pg_start
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
ARGS=(--port "$PORT" --seed 21 --races 60 --entries-per-race 20 --athletes 2000 --page-size 20 --validators both)
fixture_start "${ARGS[@]}"
write_config
sed -i -e "s|^conninfo = .*|conninfo = $PG_CONNINFO options='-c log_statement=all'|" \
	-e "s|^admin_group = root|&\nmemory_limit = 1MiB|" "$T/raced.conf"

# Statements reading inputs' state since line $1 of the server log.
state_reads() { tail -n +"$1" "$PG_DIR/server.log" | grep -c 'execute raced_inputs_read' || true; }
# Statements reading entries back (for the athletes) since line $1,
# whole, narrow (only the fields the athletes' url reads) or by parent.
read_backs() { tail -n +"$1" "$PG_DIR/server.log" | grep -cE 'execute raced_read(f|p)?_entries' || true; }
log_lines() { wc -l <"$PG_DIR/server.log"; }

check "first import succeeds" raced_once
w0=$(writes)
fixture_get /_reset >/dev/null
from=$(log_lines)
read_back_next races entries
check "second import (unchanged) succeeds" raced_once
N=$(last_run)
reads=$(state_reads "$from")
backs=$(read_backs "$from")
inputs=$(( $(sql "select count(distinct input) from raced_pages") ))
reqs_save
check_eq "every request answered 304" "$(reqs_count 'n <> nm')" 0
check_eq "zero stage-row writes" "$(writes)" "$w0"
check "the entries were read back for the athletes" test "$(run_count "$N" entries read_back)" -gt 0
check_tables_served "unchanged, read ahead"
# Read ahead, 100 inputs a statement (IMPORT_AHEAD_BATCH) or more and
# fewer where an input starting sends what is held: at least 25 a
# statement here; read as inputs start, about 8.
check "state of $inputs inputs read in $reads statements (>= 25 inputs a statement)" \
	test "$reads" -ge 1 -a "$((reads * 25))" -le "$inputs"
# The races' first pages' rows are read back as their states come in,
# those of one answer in one statement (a few here; before, one a
# race); a later page is read back when its 304 comes, one a page.
later=$(( $(run_count "$N" entries pages) - 60 ))
check "entries pages of 60 races read back in $backs statements (<= 10 + $later later pages)" \
	test "$backs" -ge 1 -a "$backs" -le $((10 + later))
check "athletes started with their state read ahead" test "$(run_count "$N" athletes state_ahead)" -gt 400
check "athletes past the pass's bound" test "$(run_count "$N" athletes preload_complete)" -eq 0
check "races' entries pages fed from rows read back ahead" test "$(run_count "$N" entries read_back_ahead)" -gt 30

# Cancelled with reads ahead out and states held: raced frees them and
# exits 0 (ASan: no leak); the next import fetches and stores the rest.
fixture_stop
fixture_start "${ARGS[@]}" --latency-ms 20
write_config
raced_start
check "start-import (to cancel)" ctl start-import
athletes_asked() { [ "$(json_get "$(fixture_get /_stats)" requests)" -gt 100 ]; }
wait_for "athletes to be requested" 60 athletes_asked
check "cancel" ctl cancel
wait_for "the import to end cancelled" 30 test "$(sql "select status from import_runs order by id desc limit 1")" = cancelled
rc=0
raced_stop || rc=$?
check_eq "raced exits 0 after a cancelled import (nothing read ahead leaks)" "$rc" 0
check "the import after the cancelled one succeeds" raced_once
check_eq "it succeeded" "$(sql "select status from import_runs order by id desc limit 1")" succeeded
check_tables_served "after the cancelled import"
