# raced under a stand-in for systemd's notification socket sends, in order:
# READY=1, STATUS=idle, WATCHDOG=1 (WATCHDOG_USEC set), and on SIGHUP
# RELOADING=1 + MONOTONIC_USEC then READY=1, and on SIGTERM STOPPING=1, then
# exits 0.  Run under tests/lib/with-pg.sh (PG_CONNINFO).
set -euo pipefail
: "${RACED:?}" "${NOTIFY_LISTEN:?}" "${PG_CONNINFO:?run under tests/lib/with-pg.sh}"
fail() { echo "FAIL: $*" >&2; exit 1; }

dir=$(mktemp -d /tmp/raced-notify-XXXXXX)
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$dir"' EXIT
cat >"$dir/raced.conf" <<CONF
[daemon]
control_socket = $dir/raced.sock
[database]
conninfo = $PG_CONNINFO
[provider main]
base_url = http://127.0.0.1:9/
[stage races]
provider = main
url = /races
items = /data
next = none
key = /id
CONF

coproc NL { WATCHDOG_USEC=400000 exec "$NOTIFY_LISTEN" "$dir/notify" "$RACED" --config "$dir/raced.conf"; }
# bash unsets NL once the coprocess exits: read from a copy of its fd.
exec {nl_out}<&"${NL[0]}"
pid=
expect() { # pattern: the next non-WATCHDOG line must match (WATCHDOG lines are counted)
	local line
	while read -t 20 -r line <&"$nl_out"; do
		case $line in
		"pid "*) pid=${line#pid }; continue ;;
		WATCHDOG=1) watchdogs=$((watchdogs + 1)); continue ;;
		esac
		[[ $line == $1 ]] || fail "expected '$1', got '$line'"
		echo "got: $line"
		return 0
	done
	fail "no '$1' within 20 s"
}
watchdogs=0
expect 'READY=1'
expect 'STATUS=idle'
# Wait for a ping from the loop: the next two lines are pings.
while [ "$watchdogs" -lt 2 ]; do
	read -t 5 -r line <&"$nl_out" || fail "no WATCHDOG=1 within 5 s"
	[ "$line" = WATCHDOG=1 ] && watchdogs=$((watchdogs + 1))
done
kill -HUP "$pid"
expect 'RELOADING=1\\nMONOTONIC_USEC=[0-9]*'
expect 'READY=1'
kill -TERM "$pid"
expect 'STOPPING=1'
expect 'exit 0'
echo "watchdog pings seen: $watchdogs"
