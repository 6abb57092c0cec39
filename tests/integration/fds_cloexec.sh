#!/usr/bin/env bash
# Every fd of a running raced is close-on-exec, mid-import: its control
# socket and clients, libpq's connection, libcurl's sockets (and its
# resolver's and multi handle's socketpairs), libevent's epoll and
# notification fds.  A child raced ever started would inherit none.
. "$TESTS_DIR/lib/harness.sh"

pg_start
# Latency keeps requests on the wire while the fds are read.
fixture_start --seed 9 --races 40 --entries-per-race 10 --athletes 80 --page-size 5 --latency-ms 200
write_config
raced_start
tables_exist() { test "$(sql "select to_regclass('entries') is not null")" = t; }
wait_for "the store to connect" 20 tables_exist
ctl start-import >/dev/null
entries_arriving() { test "$(sql 'select count(*) from entries')" -gt 0; }
wait_for "entries to arrive" 30 entries_arriving

# O_CLOEXEC is 02000000 in fdinfo's octal flags.
not_cloexec() {
	local f fd flags
	for f in /proc/"$RACED_PID"/fdinfo/*; do
		fd=${f##*/}
		flags=$(awk '/^flags:/ { print $2 }' "$f" 2>/dev/null) || continue
		[ -n "$flags" ] || continue
		if (( (8#$flags & 8#2000000) == 0 )); then
			echo "$fd -> $(readlink /proc/"$RACED_PID"/fd/"$fd" 2>/dev/null)"
		fi
	done
}
fds=$(ls /proc/"$RACED_PID"/fd | wc -l)
sockets=$(find /proc/"$RACED_PID"/fd -lname 'socket:*' 2>/dev/null | wc -l)
check "raced has sockets open mid-import ($sockets of $fds fds)" test "$sockets" -ge 3
check "the import is still running" test "$(sql 'select status from import_runs where id = 1')" = running
bad=$(not_cloexec | grep -v '^[012] ' || true)
check_eq "every fd but stdin, stdout and stderr is close-on-exec" "$bad" ""
raced_stop
