#!/usr/bin/env bash
# Clients that misbehave (SPEC §5), while an import runs: garbage, invalid
# UTF-8, wrong types, unknown commands, a 1 MiB line, half a line, clients
# that hang up mid-reply, pipelining, 500 clients at once (refused 'busy'
# beyond max_clients, all served once max_clients is raised by reload), and
# a client that never reads its replies.  Each gets a clear answer or a
# clean close; the daemon answers everyone else promptly, frees every
# client, does not grow, and the import ends succeeded with all its rows.
. "$TESTS_DIR/lib/harness.sh"
: "${CTL_ABUSE:?CTL_ABUSE must name the ctl_abuse helper}"

abuse() { "$CTL_ABUSE" "$T/raced.sock" "$@"; }
run_status() { sql "select status from import_runs where id = $1"; }
answers_promptly() { ctl --timeout 1 version >/dev/null; }
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$RACED_PID/status"; }
# The daemon's Unix-domain sockets: the listener, the database, the clients.
unix_fds() {
	local inodes n=0 f l i
	inodes=$(awk 'NR > 1 {print $7}' /proc/net/unix | sort -u)
	for f in /proc/"$RACED_PID"/fd/*; do
		l=$(readlink "$f" 2>/dev/null) || continue
		case $l in socket:*) i=${l#socket:[}; i=${i%]}
			grep -qx "$i" <<<"$inodes" && n=$((n + 1)) ;;
		esac
	done
	echo "$n"
}
unix_fds_at_most() { [ "$(unix_fds)" -le "$1" ]; }

pg_start
fixture_start --seed 13 --races 120 --entries-per-race 12 --athletes 300 --page-size 5 --latency-ms 20
write_config
# A rate limit stretches the import over the whole test: about 680 requests
# at 20 a second, some 34 s, longer than the abuse takes on a loaded machine
# (at 60 a second, 11 s, it once ended first).
sed -i 's/^max_retries = 5$/max_retries = 5\nrate_limit = 20/' "$T/raced.conf"
fixture_get /_dataset >"$T/dataset.json"
expect_ds() { json_get "$(cat "$T/dataset.json")" "$1"; }
raced_start
wait_for "the database to be connected" 20 ctl health
idle_fds=$(unix_fds)
check "start-import" ctl start-import
running() { [ "$(run_status 1 2>/dev/null)" = running ]; }
wait_for "import 1 to run" 20 running
rss_before=$(rss_kib)

for s in garbage utf8 wrongtype unknown badargs longline halfline; do
	check "abuse: $s" abuse "$s"
	check "raced answers promptly after $s" answers_promptly
done
check "abuse: 200 stats requests, then hang up unread" abuse vanish 200
check "abuse: 20 clients hang up mid-reply" bash -c 'for i in $(seq 20); do "$0" "$1" vanish 5 >/dev/null || exit 1; done' "$CTL_ABUSE" "$T/raced.sock"
check "raced answers promptly after the hang-ups" answers_promptly
check "abuse: 300 pipelined requests, write side shut" abuse pipeline 300
check "abuse: 500 clients at once (max_clients 64)" abuse many 500 64
check "raced answers promptly after 500 clients" answers_promptly
check "abuse: a client that never reads" abuse noread
check "raced answers promptly after the non-reader" answers_promptly
check "abuse: a client that never reads its status replies and holds on" abuse noread-hold
check "raced answers promptly after the holder" answers_promptly

# All 500 served once max_clients allows it (a reload applies it).
sed -i 's/^admin_group = root$/admin_group = root\nmax_clients = 600/' "$T/raced.conf"
check "reload with max_clients = 600" ctl reload
check "abuse: 500 clients at once (max_clients 600), all served" abuse many 500 500

check_eq "import 1 still ran through the abuse" "$(run_status 1)" running
rss_after=$(rss_kib)
echo "     raced RSS ${rss_before} KiB before the abuse, ${rss_after} KiB after"
if [ "${SANITIZED:-none}" != none ]; then
	echo "     (no RSS bound under AddressSanitizer: its quarantine keeps freed memory)"
else
	check "raced did not grow by more than 32 MiB" test "$rss_after" -le $((rss_before + 32 * 1024))
fi
# Every abusive client was freed: the Unix sockets are back to the listener,
# the database connection (and its spare).
wait_for "raced to free every client" 20 unix_fds_at_most "$idle_fds"
check "raced still serves racectl" ctl stats >/dev/null

ended() { [ "$(run_status 1)" != running ]; }
wait_for "import 1 to end" 180 ended
check_eq "import 1 succeeded" "$(run_status 1)" succeeded
check_eq "all races stored" "$(sql 'select count(*) from races')" "$(expect_ds races)"
check_eq "all entries stored" "$(sql 'select count(*) from entries')" "$(expect_ds entries)"
check_eq "all athletes stored" "$(sql 'select count(*) from athletes')" "$(expect_ds athletes_referenced)"
check_eq "no import errors" "$(sql 'select count(*) from import_errors')" 0
check "the log has no assertion or internal error" bash -c '! grep -qiE "assert|internal|out of memory" "$0"' "$T/raced.log"
raced_stop
