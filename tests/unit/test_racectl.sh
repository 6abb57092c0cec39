#!/usr/bin/env bash
# racectl as a subprocess against ctl_test_server (ctlserver with canned
# replies) over real Unix sockets: output, exit codes, health lines,
# permissions, no daemon, a daemon that never answers, stale/live sockets.
set -uo pipefail
: "${RACECTL:?}" "${CTL_TEST_SERVER:?}"

failures=0
dir=$(mktemp -d /tmp/racectl-test.XXXXXX)
chmod 755 "$dir" # nobody must reach the socket for the permission tests
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
	rm -rf "$dir"
}
trap cleanup EXIT

fail() { echo "FAIL $*" >&2; failures=$((failures + 1)); }
ok() { echo "ok   $*" >&2; }

# start_server NAME ARGS... : run the server, wait for its READY line.
start_server() {
	local name=$1; shift
	local fifo=$dir/$name.out
	mkfifo "$fifo"
	"$CTL_TEST_SERVER" --socket "$dir/$name.sock" "$@" >"$fifo" 2>"$dir/$name.err" &
	pids+=($!)
	local line=""
	exec {fd}<"$fifo"
	read -r -t 5 -u "$fd" line
	exec {fd}<&-
	[ "$line" = READY ] || { echo "server $name did not start: $(cat "$dir/$name.err")" >&2; exit 1; }
}

# expect NAME WANT_RC WANT_STDOUT_REGEX CMD... : run, compare exit and output.
expect() {
	local name=$1 want_rc=$2 want=$3; shift 3
	local out rc
	out=$("$@" 2>&1); rc=$?
	if [ "$rc" -ne "$want_rc" ]; then
		fail "$name: exit $rc, expected $want_rc; output: $out"
	elif ! grep -qE -- "$want" <<<"$out"; then
		fail "$name: output does not match /$want/: $out"
	else
		ok "$name"
	fi
}

start_server main --mode 0666 --admin-group users --stats-polls 1000
S=$dir/main.sock
rc() { "$RACECTL" --socket "$S" "$@"; }

expect "version prints the daemon's version" 0 '^raced [0-9]+\.[0-9]+\.[0-9]+$' rc version
expect "--json prints the reply line as is" 0 '^\{"ok":true,"result":\{"version":"[0-9.]+"\}\}$' rc --json version
expect "RACED_SOCKET picks the socket" 0 '^raced ' env RACED_SOCKET="$S" "$RACECTL" version
expect "--help lists every command" 0 'start-import \[--full \| --resume \[ID\]\] \[--wait\]' "$RACECTL" --help
expect "start-import --full sends full:true" 1 'start-import got \{"full":true\} \(failed\)' rc start-import --full
expect "start-import --resume sends resume:true" 1 'start-import got \{"resume":true\} \(failed\)' rc start-import --resume
expect "start-import --resume ID sends the id" 1 'start-import got \{"resume":7\} \(failed\)' rc start-import --resume 7 --wait
expect "start-import --resume before another option takes no id" 1 'start-import got \{"resume":true\} \(failed\)' \
	rc start-import --resume --interval 1
expect "start-import --full and --resume exclude each other" 2 '--full and --resume exclude each other' \
	rc start-import --full --resume 3
expect "start-import --resume takes a positive id" 2 "--resume takes an import id \(a positive integer\), got 'x'" \
	rc start-import --resume x
expect "--full belongs to start-import only" 2 "'stats' takes no option '--full'" rc stats --full
expect "COMMAND --help explains it" 0 'Needs root, the daemon.s user' "$RACECTL" start-import --help
expect "help COMMAND explains it" 0 '^Usage: racectl .*status \[ID\]' "$RACECTL" help status
expect "unknown command is a usage error with a hint" 2 "unknown command 'stat' \(did you mean 'stats'\?\)" rc stat
expect "unknown option is a usage error" 2 "unknown option '--frob'" rc --frob version
expect "a command's foreign option is a usage error" 2 "'version' takes no option '--wait'" rc version --wait
# racectl takes exactly the options each command's usage (the command
# table) names: one taken goes on to connect (exit 1, no daemon there), one
# not taken is a usage error (exit 2; for health UNKNOWN, 3).
commands=$("$RACECTL" --help | sed -nE 's/^ [ *] ([a-z-]+).*/\1/p')
[ "$(wc -w <<<"$commands")" -eq 12 ] || fail "--help lists 12 commands: $commands"
before=$failures
for c in $commands; do
	usage=$("$RACECTL" "$c" --help | head -n 1)
	for opt in --wait --watch --interval --limit; do
		args=("$opt")
		[[ $usage == *"[$opt "* ]] && args+=(1) # the option takes a value
		"$RACECTL" --socket "$dir/none.sock" "$c" "${args[@]}" >/dev/null 2>&1; got=$?
		if [[ $usage == *"[$opt"* ]]; then want=1; elif [ "$c" = health ]; then want=3; else want=2; fi
		[ "$got" -eq "$want" ] || fail "racectl $c ${args[*]}: exit $got, expected $want ($usage)"
	done
done
[ "$failures" -eq "$before" ] && ok "each command takes exactly the options its usage names"
expect "status ID must be a number" 2 "status takes an import id" rc status abc
expect "no command is a usage error" 2 'which command' "$RACECTL" --socket "$S"
expect "status with no runs says so" 0 '^no import runs yet$' rc status
expect "status of an unknown id fails" 1 'status: no import 7 \(not_found\)' rc status 7
expect "pause with no import fails with conflict" 1 'no import is running \(conflict\)' rc pause

expect "health OK line" 0 '^RACED OK - idle, db connected$' rc health

# permissions: nobody may read, not mutate; nobody in admin_group may mutate
as_nobody() { setpriv --reuid=nobody --regid=nogroup --clear-groups "$RACECTL" --socket "$S" "$@"; }
expect "non-admin uid may read stats" 0 '^STAGE +DEMAND' as_nobody stats
expect "non-admin uid gets permission_denied for start-import" 1 \
	"start-import: 'start-import' changes the daemon's state: it needs root, the daemon's user or membership in the admin_group; uid 65534 is none of these \(permission_denied\)" \
	as_nobody start-import
users_gid=$(getent group users | cut -d: -f3)
expect "a member of admin_group may start an import" 0 '^import 42 started$' \
	setpriv --reuid=nobody --regid=nogroup --groups="$users_gid" "$RACECTL" --socket "$S" start-import
expect "second start-import is refused while one runs" 1 'import 42 is running; cancel it or wait \(conflict\)' rc start-import
expect "stats shows the stages as aligned rows" 0 '^entries +[0-9]+ +0/500 +8/8 +2 ' rc stats
expect "stats shows subscriptions" 0 '^races -> entries +120 +500 +250 +0$' rc stats
expect "stats shows the store" 0 '^store: database connected, 120 rows pending, 12 batches committed, 0 reconnects, read-back connection failed$' rc stats
expect "pause reports" 0 '^import 42 paused' rc pause
expect "resume reports" 0 '^import 42 resumed$' rc resume
expect "cancel ends the run" 0 '^import 42 cancelled$' rc cancel
expect "status lists the run with its counts" 0 '^42 +cancelled +2024-05-01T10:00:00Z +2024-05-01T10:01:00Z +root +10 +200 +1$' rc status
expect "status ID shows one run" 0 '^ID +STATUS +STARTED +FINISHED +BY +RACES +ENTRIES +ERRORS$' rc status 42
expect "reload reports" 0 '^configuration reloaded from /etc/raced/raced.conf$' rc reload
expect "reload says what applied now" 0 '^  applied now: \[provider main\] rate_limit 0 -> 50$' rc reload
expect "reload says what waits for the import" 0 '^  when import 42 ends: \[database\] batch_size 500 -> 200$' rc reload
expect "config names the file" 0 '^configuration in force: /etc/raced/raced.conf$' rc config
expect "config: a header" 0 '^SECTION +KEY +VALUE +SOURCE +RELOAD$' rc config
expect "config: the file's name and line" 0 '^\[daemon\] +max_clients +8 +raced\.conf:3 +live$' rc config
expect "config: an unset key, a default" 0 '^\[daemon main\] +metrics +\(not set\) +default +restart$' rc config
start_server waiting
expect "start-import --wait exits 0 when the import succeeds" 0 '^import 42 succeeded$' \
	"$RACECTL" --socket "$dir/waiting.sock" start-import --wait --interval 0.1
expect "start-import --wait prints plain progress lines off a TTY" 0 '^import 42 running: races 10, entries 20; 1 failed; 45.2/s$' \
	"$RACECTL" --socket "$dir/waiting.sock" start-import --wait --interval 0.1

start_server failing --import-result failed
expect "start-import --wait exits 1 when the import fails" 1 '^import 42 failed$' \
	"$RACECTL" --socket "$dir/failing.sock" start-import --wait --interval 0.1
out=$("$RACECTL" --socket "$dir/failing.sock" start-import --wait --interval 0.1 2>&1)
want=$(printf '%s\n' 'import 42 failed' '' 'STAGE     CAUSE     COUNT' 'athletes  HTTP 404      4' \
	'    http://p/athletes/1' '    http://p/athletes/2' '    http://p/athletes/3')
if [ "$(tail -n 7 <<<"$out")" = "$want" ]; then ok "start-import --wait ends with the errors"; else fail "--wait's end: $out"; fi
expect "errors --limit goes on the wire as limit" 0 '^    http://p/athletes/4$' \
	"$RACECTL" --socket "$dir/failing.sock" errors --limit 4
expect "errors says which import and how many" 0 '^import 42 failed: 4 errors in 1 group$' \
	"$RACECTL" --socket "$dir/failing.sock" errors

# --foreground: SIGINT to racectl alone.  Without it timeout signals its
# whole process group a second time, which can hit LeakSanitizer's tracer
# task at exit in an ASan build and leave racectl spinning forever.
out=$(timeout --foreground --preserve-status -s INT 1 "$RACECTL" --socket "$S" stats --watch --interval 0.2 2>&1); rc_=$?
n=$(grep -c '^raced stats at' <<<"$out")
if [ "$rc_" -eq 0 ] && [ "$n" -ge 3 ]; then ok "stats --watch refreshes until Ctrl-C"; else fail "stats --watch: exit $rc_, $n refreshes: $out"; fi

# health: Nagios lines and exit codes 0/1/2/3
start_server warn --health warning
start_server crit --health critical
start_server broken --health error
expect "health WARNING" 1 '^RACED WARNING - import 42: 3 providers retrying$' "$RACECTL" --socket "$dir/warn.sock" health
expect "health CRITICAL" 2 '^RACED CRITICAL - database unreachable: connection refused$' "$RACECTL" --socket "$dir/crit.sock" health
expect "health error reply is UNKNOWN" 3 '^RACED UNKNOWN - health check broke$' "$RACECTL" --socket "$dir/broken.sock" health
expect "health with no daemon is CRITICAL, naming the socket" 2 "^RACED CRITICAL - cannot connect to $dir/none.sock: No such file or directory — is raced running\?$" \
	"$RACECTL" --socket "$dir/none.sock" health
python3 -c 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1])' "$dir/dead.sock"
expect "health with a socket nobody listens on is CRITICAL" 2 "^RACED CRITICAL - cannot connect to $dir/dead.sock: Connection refused — is raced running\?$" \
	"$RACECTL" --socket "$dir/dead.sock" health
start_server nonsense --reply 'this is not JSON'
expect "health getting a line that is not a reply is UNKNOWN" 3 '^RACED UNKNOWN - raced sent a reply that is not JSON' \
	"$RACECTL" --socket "$dir/nonsense.sock" health
start_server purple --health purple
expect "health getting an unknown status is UNKNOWN" 3 "^RACED UNKNOWN - raced reported health status 'purple'$" \
	"$RACECTL" --socket "$dir/purple.sock" health
expect "health output is one line" 0 '^1$' bash -c '"$0" --socket "$1" health | wc -l' "$RACECTL" "$S"
expect "health usage errors are UNKNOWN, not CRITICAL" 3 '^RACED UNKNOWN - invalid arguments' \
	"$RACECTL" --socket "$S" health --wait
expect "an option before health counts too" 3 '^RACED UNKNOWN - invalid arguments' \
	"$RACECTL" --frob health
expect "health --help is help" 0 '^Usage: racectl .*health' "$RACECTL" health --help

# no daemon, a hung daemon: clear message, bounded time
start=$(date +%s%N)
expect "no daemon: clear message, exit 1" 1 "^racectl: cannot connect to $dir/none.sock: No such file or directory — is raced running\?$" \
	"$RACECTL" --socket "$dir/none.sock" stats
start_server hung --silent
start=$(date +%s%N)
expect "a daemon that never answers: timeout message, exit 1" 1 '^racectl: raced did not answer within 1 s$' \
	"$RACECTL" --socket "$dir/hung.sock" --timeout 1 version
ms=$(( ($(date +%s%N) - start) / 1000000 ))
if [ "$ms" -lt 3000 ]; then ok "the timeout bounds the wait (${ms} ms)"; else fail "racectl took ${ms} ms against a hung daemon"; fi
expect "health against a hung daemon is CRITICAL" 2 '^RACED CRITICAL - raced did not answer within 1 s$' \
	"$RACECTL" --socket "$dir/hung.sock" --timeout 1 health

# the socket file: stale replaced, live refused
kill "${pids[-1]}"; wait "${pids[-1]}" 2>/dev/null
python3 -c 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1])' "$dir/stale.sock"
start_server stale
expect "a stale socket file is replaced" 0 '^raced ' "$RACECTL" --socket "$dir/stale.sock" version
expect "a live socket is refused" 1 "another raced is already listening on $S" "$CTL_TEST_SERVER" --socket "$S"
expect "the live daemon still serves after the refused start" 0 '^raced ' rc version

if [ "$failures" -ne 0 ]; then echo "$failures failed" >&2; exit 1; fi
echo "all passed" >&2
