# harness.sh — set-up shared by the integration tests (source it).
#
# Gives each test a private directory $T (removed at exit), and:
#   fixture_start [ARGS]   start the fixture provider on 127.0.0.1 (a free
#                          port); sets FIXTURE_URL and FIXTURE_PID
#   fixture_stop
#   fixture_get PATH       GET a fixture URL (e.g. /_stats) to stdout
#   EXTRA_PIDS             processes a test started itself (a second
#                          fixture provider), killed at exit
#   pg_start               a throwaway PostgreSQL cluster (see pgcluster.sh)
#   write_config [EXTRA]   $T/raced.conf: the race pipeline against the
#                          fixture and the cluster; EXTRA is appended;
#                          [daemon] resume is $RACED_RESUME (default no:
#                          a test that restarts raced starts its own
#                          imports unless it sets RACED_RESUME=auto)
#   raced_start [ARGS]     run raced in the background on $T/raced.sock,
#                          wait until it answers; sets RACED_PID
#   raced_stop             SIGTERM and wait for it
#   ctl ARGS...            racectl on the test's socket
#   sql QUERY              one value (or rows) from the cluster
#   wait_for DESC SECS CMD...  poll CMD until it succeeds or fail after SECS
#                          (CMD runs anew each time: put computed values
#                          in a function, not in a $(...) argument)
#   check DESC CMD...      fail the test with DESC unless CMD succeeds
#   check_eq DESC GOT WANT
set -euo pipefail

: "${RACED:?RACED must name the raced binary}"
: "${RACECTL:?RACECTL must name the racectl binary}"
: "${FIXTURE:?FIXTURE must name the fixture provider binary}"
: "${TESTS_DIR:?TESTS_DIR must name the tests directory}"

. "$TESTS_DIR/lib/pgcluster.sh"

T=$(mktemp -d /tmp/raced-test.XXXXXX)
chmod 755 "$T"
FIXTURE_PID=
RACED_PID=
EXTRA_PIDS=
export RACED_SOCKET="$T/raced.sock"

harness_cleanup() {
	local rc=$?
	[ -n "$RACED_PID" ] && kill -9 "$RACED_PID" 2>/dev/null || true
	[ -n "$FIXTURE_PID" ] && kill "$FIXTURE_PID" 2>/dev/null || true
	for p in $EXTRA_PIDS; do kill "$p" 2>/dev/null || true; done
	if [ -n "${PG_DIR:-}" ]; then pg_cluster_stop 2>/dev/null || true; fi
	if [ $rc -ne 0 ]; then
		for f in "$T"/raced*.log "$T"/fixture.log; do
			[ -f "$f" ] && { echo "---- $f (last 40 lines)"; tail -n 40 "$f"; } >&2
		done
	fi
	rm -rf "$T"
	exit $rc
}
trap harness_cleanup EXIT

fail() {
	echo "FAIL: $*" >&2
	exit 1
}

check() {
	local desc=$1; shift
	"$@" || fail "$desc"
	echo "ok   $desc"
}

check_eq() {
	[ "$2" = "$3" ] || fail "$1: got '$2', expected '$3'"
	echo "ok   $1 ($2)"
}

# raced stamps each log line with the time when stderr is not journald's:
# LOG_TS matches that stamp (grep -E), log_lines prints a log without them.
LOG_TS='[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}[+-][0-9]{2}:[0-9]{2} '
log_lines() { sed -E "s/^$LOG_TS//" "$1"; }

wait_for() {
	local desc=$1 secs=$2; shift 2
	local deadline=$((SECONDS + secs))
	until "$@" >/dev/null 2>&1; do
		[ $SECONDS -lt $deadline ] || fail "timed out after ${secs}s waiting for: $desc"
		sleep 0.05
	done
}

fixture_start() {
	rm -f "$T/fixture.port"
	"$FIXTURE" --port-file "$T/fixture.port" "$@" >"$T/fixture.log" 2>&1 &
	FIXTURE_PID=$!
	wait_for "the fixture provider to listen" 10 test -s "$T/fixture.port"
	FIXTURE_URL="http://127.0.0.1:$(cat "$T/fixture.port")"
	export FIXTURE_URL
}

fixture_stop() {
	[ -n "$FIXTURE_PID" ] || return 0
	kill "$FIXTURE_PID" 2>/dev/null || true
	wait "$FIXTURE_PID" 2>/dev/null || true
	FIXTURE_PID=
}

fixture_get() {
	curl -sf --max-time 10 "$FIXTURE_URL$1"
}

pg_start() {
	pg_cluster_init "$T/pg"
	pg_cluster_start
}

sql() {
	"$PG_BIN/psql" -qAtX -v ON_ERROR_STOP=1 -c "$1"
}

write_config() {
	cat >"$T/raced.conf" <<CONF
[daemon]
control_socket = $T/raced.sock
admin_group = root
resume = ${RACED_RESUME:-no}

[database]
conninfo = $PG_CONNINFO
batch_size = 200

[provider main]
base_url = $FIXTURE_URL
max_connections = 16
timeout = 5s
max_retries = 5

[stage races]
provider = main
url = /races
items = /data
next = /next
key = /id
max_demand = 100

[stage entries]
parent = races
provider = main
url = /races/{id}/entries
items = /data
next = /next
key = /id
concurrency = 8

[stage athletes]
parent = entries
provider = main
url = /athletes/{athlete_id}
items =
key = /id
dedupe = yes
concurrency = 16
CONF
	if [ $# -gt 0 ]; then printf '%s\n' "$@" >>"$T/raced.conf"; fi
}

raced_start() {
	"$RACED" --config "$T/raced.conf" "$@" >"$T/raced.log" 2>&1 &
	RACED_PID=$!
	wait_for "raced to answer on $RACED_SOCKET" 20 "$RACECTL" --timeout 1 version
}

raced_stop() {
	[ -n "$RACED_PID" ] || return 0
	kill -TERM "$RACED_PID" 2>/dev/null || true
	local rc=0
	wait "$RACED_PID" || rc=$?
	RACED_PID=
	return $rc
}

ctl() {
	"$RACECTL" "$@"
}

# The JSON value at a dotted path of racectl --json output: jpath '.result.import.id'
# (uses PostgreSQL's JSON functions, so the tests need nothing else).
json_get() { # JSON PATH-ELEMENTS...
	local doc=$1; shift
	local path
	path=$(printf '%s,' "$@")
	path="{${path%,}}"
	# psql interpolates variables only in what it reads, not in -c.
	"$PG_BIN/psql" -qAtX -d postgres -v ON_ERROR_STOP=1 -v doc="$doc" -v path="$path" \
		<<<"select (:'doc'::jsonb) #>> :'path'::text[]"
}
