#!/usr/bin/env bash
# The docs' examples, run (issue 19 item 3): every command shown in the man
# pages' EXAMPLE(S) sections and in the fenced sh blocks of README.md,
# docs/operations.md and docs/control-protocol.md runs against a live raced
# (a throwaway cluster, fixture providers) and its output is checked; a
# new example is found without touching this test and fails it when it
# does not work.  doc_examples.py finds the examples (its header says
# where it looks); this script brings the daemon into the state each one
# needs, runs it and checks it.
#
# Writing an example: put a marker on the line before the block (blank
# lines between are fine) --
#   Markdown:  <!-- doc-test: WORDS -->   then ```sh
#   roff:      .\" doc-test: WORDS        then .EX (inside .RS/.RE is fine)
# WORDS are shell words KEY=VALUE:
#   skip=WHY        not run, reported as skipped with WHY (needs systemd,
#                   root, a real provider, ...): nothing is skipped silently
#   state=S         what the daemon is doing when the example runs (default
#                   idle): idle (no import running; the clean fixture),
#                   succeeded / partial (idle, and the last import ended so;
#                   partial: some entries pages 404), running (an import
#                   against a fixture with latency, seconds from its end),
#                   paused (that import, paused), stopped (no raced; its
#                   socket and config in place), any (as the last left it)
#   exit=N          the block's exit status (default 0)
#   line=ERE        some line of its output (stdout and stderr) matches ERE
#                   (grep -E); repeatable
#   noline=ERE      no line of its output matches; repeatable
#   interrupt=SECS  the command runs until interrupted (--watch): it must
#                   still run after SECS, then gets SIGINT
#   needs=PROGRAM   skipped, saying so, when PROGRAM is not installed
#   kind=K          command (the default), config (a raced.conf: raced
#                   --check-config must take it), fragment (part of a
#                   raced.conf: merged into the test's, which raced
#                   --check-config must then take), transcript ('-> request'
#                   and '<- reply' lines: each request is sent on one
#                   connection and its reply must have the fields, strings
#                   and booleans shown; numbers may differ), shape (a
#                   jsonc result: every field it names must be in the
#                   reply to cmd=COMMAND, with the same JSON type)
# A block with no marker runs in state idle and must exit 0.  A command
# block runs as `bash -e -o pipefail` in the test's directory, with raced
# and racectl of this build first in PATH, RACED_SOCKET set, and the
# installed paths /etc/raced/ (raced.conf, main.token) and
# /run/raced/raced.sock replaced by the test's.  Each example has 60 s.
. "$TESTS_DIR/lib/harness.sh"

EX_TIMEOUT=60
# Fixtures: clean (the default), broken (permanent 404s: imports end
# partial), slow (latency: an import runs for many seconds).
declare -A FIX_URL FIX_PID
fixture_spawn() { # NAME ARGS...
	local name=$1; shift
	fixture_start "$@"
	FIX_URL[$name]=$FIXTURE_URL
	FIX_PID[$name]=$FIXTURE_PID
	FIXTURE_PID=
}
doc_cleanup() {
	local rc=$? p
	for p in "${FIX_PID[@]}"; do kill "$p" 2>/dev/null || true; done
	(exit $rc)
	harness_cleanup
}
trap doc_cleanup EXIT

pg_start
fixture_spawn clean --seed 5 --races 8 --entries-per-race 3 --athletes 12 --page-size 5
fixture_spawn broken --seed 5 --races 8 --entries-per-race 3 --athletes 12 --page-size 5 \
	--broken /races/2/entries=404 --broken /races/3/entries=404
fixture_spawn slow --seed 5 --races 300 --entries-per-race 3 --athletes 100 --page-size 5 \
	--latency-ms 300

# raced and racectl by their names, as the docs call them.
mkdir "$T/bin"
ln -s "$RACED" "$T/bin/raced"
ln -s "$RACECTL" "$T/bin/racectl"

FIXTURE_NOW=
use_fixture() { # NAME: the configuration's provider (reloaded when raced runs)
	[ "$FIXTURE_NOW" = "$1" ] && return 0
	FIXTURE_URL=${FIX_URL[$1]} write_config
	if [ -n "$RACED_PID" ]; then ctl reload >/dev/null; fi
	FIXTURE_NOW=$1
}
import_state() { ctl --json stats | jq -r '.result.import.state // "none"'; }
last_status() { ctl --json status | jq -r '.result.runs[0].status // "none"'; }
not_running() { [ "$(import_state)" != running ]; }
is_running() { [ "$(import_state)" = running ]; }
is_paused() { [ "$(ctl --json stats | jq -r .result.import.paused)" = true ]; }

use_fixture clean

# Bring raced into state $1.
enter_state() {
	case $1 in
	any) return 0 ;;
	stopped)
		raced_stop || fail "raced did not stop cleanly"
		use_fixture clean
		return 0 ;;
	esac
	[ -n "$RACED_PID" ] || raced_start
	if is_running; then
		ctl cancel >/dev/null 2>&1 || true
		wait_for "the running import to end" 30 not_running
	fi
	case $1 in
	idle) use_fixture clean ;;
	succeeded)
		use_fixture clean
		[ "$(last_status)" = succeeded ] || ctl start-import --wait --interval 0.2 >/dev/null \
			|| fail "a clean import did not succeed" ;;
	partial)
		use_fixture broken
		if [ "$(last_status)" != partial ]; then
			ctl start-import --wait --interval 0.2 >/dev/null 2>&1 || true
			[ "$(last_status)" = partial ] || fail "the broken fixture's import is not partial"
		fi ;;
	running|paused)
		use_fixture slow
		ctl start-import >/dev/null
		wait_for "an import to run" 10 is_running
		if [ "$1" = paused ]; then
			ctl pause >/dev/null
			wait_for "the import to be paused" 10 is_paused
		fi ;;
	*) return 1 ;;
	esac
}

# The installed paths the docs name, and the test's: /etc/raced/ is
# $T/etc/raced/, its raced.conf the test's, and main.token the token
# raced.conf(5)'s example names.
mkdir -p "$T/etc/raced"
ln -s "$T/raced.conf" "$T/etc/raced/raced.conf"
echo doc-example-token >"$T/etc/raced/main.token"
localise() { sed -e "s|/etc/raced/|$T/etc/raced/|g" -e "s|/run/raced/raced\.sock|$T/raced.sock|g" "$1"; }

passed=0 skipped=0 failed=0
example_fail() { # WHY
	echo "FAIL $where: $1" >&2
	sed 's/^/     | /' "$T/ex.out" >&2
	failed=$((failed + 1))
}

# Run one example, $1 its directory; sets where for the messages.
run_example() {
	local d=$1 kind w state=idle want_exit=0 skip= interrupt= cmd= need=
	local -a lines=() nolines=()
	where=$(cat "$d/where"); kind=$(cat "$d/kind")
	while IFS= read -r w; do
		case $w in
		skip=*) skip=${w#skip=} ;;
		state=*) state=${w#state=} ;;
		exit=*) want_exit=${w#exit=} ;;
		line=*) lines+=("${w#line=}") ;;
		noline=*) nolines+=("${w#noline=}") ;;
		interrupt=*) interrupt=${w#interrupt=} ;;
		cmd=*) cmd=${w#cmd=} ;;
		needs=*) need=${w#needs=} ;;
		esac
	done <"$d/words"
	if [ -n "$skip" ]; then
		echo "SKIP $where: $skip"
		skipped=$((skipped + 1)); return 0
	fi
	if [ -n "$need" ] && ! command -v "$need" >/dev/null; then
		echo "SKIP $where: $need is not installed"
		skipped=$((skipped + 1)); return 0
	fi
	enter_state "$state" || { echo "unknown state '$state'" >"$T/ex.out"; example_fail "bad marker"; return 0; }
	localise "$d/block" >"$T/ex.block"
	local rc=0
	case $kind in
	command)
		if [ -n "$interrupt" ]; then
			(cd "$T" && PATH="$T/bin:$PATH" exec bash -e -o pipefail "$T/ex.block") >"$T/ex.out" 2>&1 &
			local pid=$!
			sleep "$interrupt" # the example's own run time, not a wait for an event
			if ! kill -0 "$pid" 2>/dev/null; then
				wait "$pid" || true
				example_fail "ended before it was interrupted at ${interrupt}s"; return 0
			fi
			pkill -INT -P "$pid" || true
			wait "$pid" || rc=$?
		else
			(cd "$T" && PATH="$T/bin:$PATH" timeout "$EX_TIMEOUT" bash -e -o pipefail "$T/ex.block") \
				>"$T/ex.out" 2>&1 </dev/null || rc=$?
		fi ;;
	config|fragment)
		local conf=$T/ex.block
		if [ "$kind" = fragment ]; then
			conf=$T/ex.conf
			python3 "$TESTS_DIR/integration/doc_examples.py" merge "$T/raced.conf" "$T/ex.block" \
				>"$conf" 2>"$T/ex.out" || { example_fail "the fragment cannot be merged"; return 0; }
		fi
		timeout "$EX_TIMEOUT" "$RACED" --check-config --config "$conf" >"$T/ex.out" 2>&1 || rc=$? ;;
	transcript)
		timeout "$EX_TIMEOUT" python3 "$TESTS_DIR/integration/doc_examples.py" transcript \
			"$RACED_SOCKET" "$T/ex.block" >"$T/ex.out" 2>&1 || rc=$? ;;
	shape)
		[ -n "$cmd" ] || { echo "kind=shape needs cmd=COMMAND" >"$T/ex.out"; example_fail "bad marker"; return 0; }
		ctl --json "$cmd" >"$T/ex.reply" 2>&1 || true
		timeout "$EX_TIMEOUT" python3 "$TESTS_DIR/integration/doc_examples.py" shape \
			"$T/ex.block" "$T/ex.reply" >"$T/ex.out" 2>&1 || rc=$?
		[ $rc -eq 0 ] || sed 's/^/reply: /' "$T/ex.reply" >>"$T/ex.out"
		want_exit=0 ;;
	esac
	if [ "$rc" != "$want_exit" ]; then
		example_fail "exit status $rc, the doc expects $want_exit"; return 0
	fi
	local re
	for re in "${lines[@]}"; do
		grep -qE -- "$re" "$T/ex.out" || { example_fail "no output line matches /$re/"; return 0; }
	done
	for re in "${nolines[@]}"; do
		! grep -qE -- "$re" "$T/ex.out" || { example_fail "an output line matches /$re/"; return 0; }
	done
	echo "ok   $where: $(head -n 1 "$d/block")"
	passed=$((passed + 1))
}

n=$(python3 "$TESTS_DIR/integration/doc_examples.py" extract "$TESTS_DIR/.." "$T/examples") \
	|| fail "the docs' examples could not be read (above)"
[ "$n" -gt 0 ] || fail "no examples found in the docs"
for d in "$T"/examples/*; do run_example "$d"; done
echo "$n examples: $passed passed, $skipped skipped, $failed failed"
[ "$failed" -eq 0 ]
raced_stop
