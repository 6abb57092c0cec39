#!/usr/bin/env bash
# The read-back connection with no room for it (review of issue 15,
# findings 1 and 4): a role whose CONNECTION LIMIT is [database]
# connections (1).  The reader is refused; that is logged once, with the
# fix, and shown by racectl stats; its reads go on the first connection
# and the imports succeed.  After restarts of PostgreSQL the first
# connection gets the one backend (the reader never takes it while idle).
. "$TESTS_DIR/lib/harness.sh"
. "$TESTS_DIR/integration/incremental_lib.sh"

pg_start
sql "create role lim login connection limit 1" >/dev/null
sql "alter database races owner to lim" >/dev/null
sql "alter schema public owner to lim" >/dev/null
PG_CONNINFO="${PG_CONNINFO/user=raced/user=lim}"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
fixture_start --port "$PORT" --seed 5 --races 30 --entries-per-race 50 --athletes 900 --page-size 20 \
	--validators both
write_config
check "first import succeeds" raced_once

warned() { grep -c "the connection for read-backs (one more than \[database\] connections = 1) failed" "$T/raced.log" || true; }
connected() { ctl stats 2>/dev/null | grep -q '^store: database connected'; }
# An incremental import through the daemon: succeeds, 304s fed from read-backs.
import_again() {
	fixture_get /_reset >/dev/null
	read_back_next races entries
	check "import $1 succeeds" ctl start-import --wait
	local n
	n=$(last_run)
	check_eq "import $1 status" "$(sql "select status from import_runs where id = $n")" succeeded
	check "import $1 read back 304 pages ($(run_count "$n" entries read_back) + $(run_count "$n" \
entries read_back_ahead) ahead)" test "$(( $(run_count "$n" entries read_back) + $(run_count "$n" \
entries read_back_ahead) ))" -gt 0
}

raced_start
import_again 2
check_eq "the refused reader logged once, naming the fix" "$(warned)" 1
check "... the role's connection limit" grep -q "raise the role's CONNECTION LIMIT or max_connections by one" "$T/raced.log"
check "racectl stats shows it" bash -c "'$RACECTL' stats | grep -q ', read-back connection failed\$'"
check "racectl stats --json has it" bash -c "'$RACECTL' --json stats | grep -q '\"reader\": *\"failed\"'"
for i in 1 2; do
	pg_cluster_stop
	pg_cluster_start
	wait_for "the store connected after restart $i" 30 connected
	import_again "after restart $i"
done
check_eq "still logged once (one outage)" "$(warned)" 1
check_eq "the first connection holds the one backend" \
	"$(sql "select count(*) from pg_stat_activity where usename = 'lim'")" 1
raced_stop
