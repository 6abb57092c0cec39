#!/usr/bin/env bash
# The control socket and racectl against the real daemon (SPEC §5): every
# command and its exit code; stats showing demand and requests in flight
# while an import runs; pause that really stops the requests and resume
# that finishes the import with all data; cancel ending the run
# 'cancelled' (and start-import --wait exiting 1); start-import and cancel
# refused while an import's final status is still being written; health
# CRITICAL while the database is down and OK again after; reading but not
# mutating for a user who is not an admin; no daemon at all (health
# CRITICAL).
. "$TESTS_DIR/lib/harness.sh"

# expect DESC WANT_RC REGEX CMD...: run CMD; its exit status must be
# WANT_RC and its output (stdout and stderr) must match REGEX.
expect() {
	local desc=$1 want_rc=$2 want=$3; shift 3
	local out rc=0
	out=$("$@" 2>&1) || rc=$?
	[ "$rc" = "$want_rc" ] || fail "$desc: exit $rc, expected $want_rc; output: $out"
	grep -qE -- "$want" <<<"$out" || fail "$desc: output does not match /$want/: $out"
	echo "ok   $desc (exit $rc)"
}

# jsql DOC EXPR: an SQL expression over the JSON document 'doc' (jsonb).
jsql() {
	"$PG_BIN/psql" -qAtX -d postgres -v ON_ERROR_STOP=1 -v doc="$1" \
		<<<"with d(doc) as (select :'doc'::jsonb) select $2 from d"
}

stats_json() { ctl --json stats; }
fixture_requests() { json_get "$(fixture_get /_stats)" requests; }
run_status() { sql "select status from import_runs where id = $1"; }
run_ended() { [ "$(run_status "$1")" != running ]; }

pg_start
# Latency makes an import last long enough to watch it: about 200 races
# pages, entries and athletes, each answered after 40 ms, 8 + 16 at once.
fixture_start --seed 11 --races 60 --entries-per-race 12 --athletes 150 --page-size 5 --latency-ms 150
write_config
fixture_get /_dataset >"$T/dataset.json"
expect_ds() { json_get "$(cat "$T/dataset.json")" "$1"; }

# ---- no daemon --------------------------------------------------------------
start=$SECONDS
expect "no daemon: a clear message, exit 1" 1 \
	'^racectl: cannot connect to /nonexistent/x\.sock: No such file or directory — is raced running\?$' \
	ctl --socket /nonexistent/x.sock version
expect "no daemon: health is CRITICAL, exit 2, naming the socket" 2 \
	'^RACED CRITICAL - cannot connect to .*/raced\.sock: No such file or directory — is raced running\?$' \
	ctl health
check "no daemon: racectl answered at once ($((SECONDS - start)) s)" test $((SECONDS - start)) -le 2

# ---- usage errors: exit 2, before any connection ---------------------------
expect "usage: no command" 2 "which command" ctl
expect "usage: unknown command suggests" 2 "unknown command 'stast' \(did you mean 'stats'\?\)" ctl stast
expect "usage: unknown option" 2 "unknown option '--bogus'" ctl --bogus version
expect "usage: option of another command" 2 "'stats' takes no option '--wait'" ctl stats --wait
expect "usage: status takes a positive id" 2 "status takes an import id" ctl status abc
expect "usage: status takes one id" 2 "takes no further argument" ctl status 1 2
expect "usage: bad --timeout" 2 "--timeout needs a number of seconds" ctl --timeout x version
expect "usage: --socket without a path" 2 "--socket needs a path" ctl --socket
expect "--help exits 0" 0 "^Usage: racectl" ctl --help

raced_start

# ---- the reading commands, idle --------------------------------------------
expect "version" 0 '^raced [0-9]+\.[0-9]+\.[0-9]+' ctl version
expect "version --json" 0 '^\{"ok":true,"result":\{"version":"[0-9.]+"\}\}$' ctl --json version
wait_for "the database to be connected" 20 ctl health
expect "health when idle: OK, one line" 0 '^RACED OK - idle, db connected$' ctl health
check_eq "health prints exactly one line" "$(ctl health | wc -l)" 1
expect "status before any import" 0 '^no import runs yet$' ctl status
expect "status --json before any import" 0 '^\{"ok":true,"result":\{"runs":\[\]\}\}$' ctl --json status
expect "status of an unknown id: exit 1, says so" 1 'no import with id 99 \(not_found\)' ctl status 99
expect "stats when idle: the import line" 0 '^import: none yet \(idle\)$' ctl stats
expect "stats when idle: the stage table" 0 '^STAGE +DEMAND +BUFFER +IN-FLIGHT' ctl stats
expect "stats when idle: the store line" 0 '^store: database connected' ctl stats
expect "stats --json" 0 '^\{"ok":true,"result":\{"import":' ctl --json stats
for cmd in pause resume cancel; do
	expect "$cmd without an import: exit 1, says why" 1 "$cmd: no import is running \(conflict\)" ctl "$cmd"
done
expect "reload" 0 "^configuration reloaded from $T/raced.conf$" ctl reload
cp "$T/raced.conf" "$T/good.conf"
echo "concurency = 3" >>"$T/raced.conf"
expect "reload of an invalid file: exit 1, names file, line and key" 1 \
	"reload: .*raced\.conf:[0-9]+: \[stage athletes\] unknown key 'concurency'.* \(failed\)" ctl reload
refused_logged() { grep -Eq "reload refused, the previous configuration stays: .*raced\.conf:[0-9]+: .*unknown key 'concurency'" "$T/raced.log"; }
wait_for "racectl reload's refusal to be logged with file, line and why" 10 refused_logged
cp "$T/good.conf" "$T/raced.conf"
expect "raced still answers after a refused reload" 0 '^raced ' ctl version

# ---- an import: demand and in-flight in stats, status at the end -----------
expect "start-import" 0 '^import 1 started$' ctl start-import
expect "a second start-import is refused, and says why" 1 \
	'start-import: import 1 is running; wait for it to end or cancel it.* \(conflict\)' ctl start-import
expect "health while importing" 0 '^RACED OK - import 1 running, db connected$' ctl health

# Poll stats until both a request in flight and a subscription's demand show.
# Keep one text stats taken while it runs too (the import lasts about 4 s).
saw_inflight=0 saw_demand=0 txt=
deadline=$((SECONDS + 60))
while [ $saw_inflight = 0 ] || [ $saw_demand = 0 ] || [ -z "$txt" ]; do
	[ $SECONDS -lt $deadline ] || fail "stats never showed in_flight > 0 and demand > 0 while importing"
	t=$(ctl stats)
	grep -q '^import 1: running' <<<"$t" && grep -q '^SUBSCRIPTION' <<<"$t" && txt=$t
	s=$(stats_json)
	read -r inflight demand <<<"$(jsql "$s" "
		(select coalesce(max((st->>'in_flight')::int), 0) from jsonb_array_elements(doc->'result'->'stages') st),
		(select coalesce(max((sub->>'demand')::int), 0) from jsonb_array_elements(doc->'result'->'stages') st,
		        jsonb_array_elements(st->'subscriptions') sub)" | tr '|' ' ')"
	[ "${inflight:-0}" -gt 0 ] && saw_inflight=$inflight
	[ "${demand:-0}" -gt 0 ] && saw_demand=$demand
done
check "stats showed requests in flight ($saw_inflight)" test "$saw_inflight" -gt 0
check "stats showed outstanding demand ($saw_demand)" test "$saw_demand" -gt 0
check_eq "stats --json: the running import" "$(jsql "$s" "doc->'result'->'import'->>'id' || ' ' || (doc->'result'->'import'->>'state')")" "1 running"
check "stats --json: started_at while running, no finished_at" \
	test "$(jsql "$s" "(doc->'result'->'import'->>'started_at') ~ '^\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\dZ$' and doc->'result'->'import'->'finished_at' = 'null'::jsonb")" = t
check "stats while importing: the import line" grep -Eq '^import 1: running, started [0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z, [0-9hms]+ so far$' <<<"$txt"
check "stats while importing: the subscription table" grep -Eq '^SUBSCRIPTION +DEMAND +MAX +MIN +PENDING' <<<"$txt"
check "stats while importing: races -> entries" grep -Eq '^races -> entries ' <<<"$txt"
expect "status while importing" 0 '^ *1 +running ' ctl status 1

wait_for "import 1 to end" 120 run_ended 1
check_eq "import 1 succeeded" "$(run_status 1)" succeeded
expect "status 1 shows the finished run" 0 '^ *1 +succeeded +[0-9]{4}-' ctl status 1
st=$(ctl --json status 1)
check_eq "status 1 --json: races counted" "$(jsql "$st" "doc->'result'->'runs'->0->'counts'->>'races'")" "$(expect_ds races)"
check_eq "status 1 --json: entries counted" "$(jsql "$st" "doc->'result'->'runs'->0->'counts'->>'entries'")" "$(expect_ds entries)"
check_eq "status 1 --json: athletes counted" "$(jsql "$st" "doc->'result'->'runs'->0->'counts'->>'athletes'")" "$(expect_ds athletes_referenced)"
check_eq "status 1 --json: no errors" "$(jsql "$st" "doc->'result'->'runs'->0->'counts'->>'errors'")" 0
check_eq "status 1 --json: requested by root" "$(jsql "$st" "doc->'result'->'runs'->0->>'requested_by'")" root
expect "status lists the run" 0 '^ *1 +succeeded ' ctl status
check_eq "raced's connection shows as application_name raced" \
	"$(sql "select count(*) > 0 from pg_stat_activity where application_name = 'raced'")" t
expect "health after a successful import" 0 '^RACED OK - idle, db connected$' ctl health
expect "stats after the import: batches committed, no reconnects" 0 \
	'^store: database connected, 0 rows pending, [1-9][0-9]* batches committed, 0 reconnects, read-back connection (idle|ready)$' ctl stats
expect "stats after the import: its end state" 0 '^import 1: succeeded, started [0-9T:-]+Z, finished [0-9T:-]+Z, took [0-9hms]+$' ctl stats
expect "stats after the import: stage figures labelled per import" 0 '^per stage, this import:$' ctl stats
expect "stats after the import: store and providers labelled per daemon" 0 '^since raced started \(all imports\):$' ctl stats
s=$(stats_json)
check_eq "stats after the import: each stage's average rate over the import is above 0" \
	"$(jsql "$s" "(select bool_and((st->>'rate_avg_per_s')::float > 0) from jsonb_array_elements(doc->'result'->'stages') st)")" t
check "stats after the import: elapsed_s" test "$(jsql "$s" "doc->'result'->'import'->>'elapsed_s'")" -ge 0
done1=$(jsql "$s" "(select string_agg(st->>'done', ' ') from jsonb_array_elements(doc->'result'->'stages') st)")

# ---- pause stops new requests; resume finishes with all data ---------------
sql 'truncate races, entries, athletes' >/dev/null
# Counted before the import starts: read once it runs, its first requests
# were already made and the exact count below came out short.
base=$(fixture_requests)
ctl start-import --wait --interval 0.2 >"$T/wait2.log" 2>&1 &
WAITER=$!
running2() { [ "$(run_status 2 2>/dev/null)" = running ]; }
wait_for "import 2 to run" 20 running2
requests_over() { [ "$(fixture_requests)" -gt "$1" ]; }
wait_for "import 2 to make some requests" 30 requests_over $((base + 20))
s=$(stats_json)
check_eq "import 2 expects import 1's counts" \
	"$(jsql "$s" "(select string_agg(st->>'expected', ' ') from jsonb_array_elements(doc->'result'->'stages') st)")" "$done1"
check_eq "import 2's totals come from import 1" "$(jsql "$s" "doc->'result'->'import'->>'expected_from'")" 1
expect "pause" 0 '^import 2 paused: no new requests; in-flight ones finish$' ctl pause
expect "health while paused: WARNING" 1 '^RACED WARNING - import 2 paused, db connected$' ctl health
check_eq "stats --json says paused" "$(jsql "$(stats_json)" "doc->'result'->'import'->>'paused'")" true
quiet() {
	[ "$(json_get "$(fixture_get /_stats)" in_flight)" = 0 ] &&
	[ "$(jsql "$(stats_json)" "(select sum((p->>'in_flight')::int) from jsonb_array_elements(doc->'result'->'providers') p)")" = 0 ]
}
wait_for "the requests in flight to finish after pause" 20 quiet
held=$(fixture_requests)
sleep 1.5 # the point: nothing happens for a while
check_eq "no request while paused (1.5 s)" "$(fixture_requests)" "$held"
check_eq "still nothing in flight" "$(json_get "$(fixture_get /_stats)" in_flight)" 0
check "the paused import is not finished" test "$held" -lt $((base + $(expect_ds requests_needed)))
expect "resume" 0 '^import 2 resumed$' ctl resume
wait_for "requests to flow again after resume" 20 requests_over "$held"
rc=0
wait "$WAITER" || rc=$?
check_eq "start-import --wait exits 0 when the import succeeds" "$rc" 0
check "start-import --wait ends with the result" grep -q '^import 2 succeeded$' "$T/wait2.log"
check "start-import --wait: progress against import 1's counts" grep -q '^import 2 running: races [0-9]* of ~' "$T/wait2.log"
check "start-import --wait: paused shows paused, not a rate" grep -q '^import 2 running (paused): .*; paused$' "$T/wait2.log"
check "start-import --wait: the last progress line has the import's average rate" \
	grep -Eq '^import 2 succeeded: .*; [0-9]+\.[0-9]/s on average over [0-9hms]+$' "$T/wait2.log"
check "start-import --wait: no 0.0/s at the end" sh -c "! grep -q '^import 2 succeeded: .* 0\.0/s' '$T/wait2.log'"
check_eq "import 2 succeeded" "$(run_status 2)" succeeded
check_eq "all races stored after pause/resume" "$(sql 'select count(*) from races')" "$(expect_ds races)"
check_eq "all entries stored after pause/resume" "$(sql 'select count(*) from entries')" "$(expect_ds entries)"
check_eq "all athletes stored after pause/resume" "$(sql 'select count(*) from athletes')" "$(expect_ds athletes_referenced)"
check_eq "import 2 made exactly the requests the data set needs" \
	"$(($(fixture_requests) - base))" "$(expect_ds requests_needed)"

# ---- health follows the database -------------------------------------------
pg_cluster_stop
health_is() { # RC REGEX
	local out rc=0
	out=$(ctl health) || rc=$?
	[ "$rc" = "$1" ] && grep -qE -- "$2" <<<"$out"
}
wait_for "health to go CRITICAL with the database stopped" 30 health_is 2 '^RACED CRITICAL - database '
expect "health CRITICAL: exit 2, one line" 2 '^RACED CRITICAL - database [a-z]+: ' ctl health
expect "start-import without a database: exit 1, says why" 1 \
	'start-import: the database is not connected .* \(unavailable\)' ctl start-import
expect "status without a database: exit 1 at once, says why" 1 'status: cannot read import runs: the database is not connected .* \(unavailable\)' ctl --timeout 2 status
expect "stats still answers without a database" 0 '^store: database disconnected' ctl stats
pg_cluster_start
wait_for "health to be OK again with the database back" 60 health_is 0 '^RACED OK - idle, db connected$'
expect "stats counts the reconnect" 0 '^store: database connected, .*, [1-9][0-9]* reconnects, read-back connection [a-z]+$' ctl stats
expect "status answers again" 0 '^ *2 +succeeded ' ctl status

# ---- a user who is not an admin may read, not mutate -----------------------
cp "$RACECTL" "$T/racectl"
chmod 755 "$T/racectl"
chmod 0666 "$T/raced.sock"
nobody() { runuser -u nobody -- "$T/racectl" --socket "$T/raced.sock" "$@"; }
expect "nobody: stats" 0 '^STAGE ' nobody stats
expect "nobody: status" 0 '^ *2 +succeeded ' nobody status
expect "nobody: health" 0 '^RACED OK - ' nobody health
for cmd in start-import pause resume cancel reload; do
	expect "nobody: $cmd is refused, says who may" 1 \
		"$cmd: '$cmd' changes the daemon's state: it needs root, the daemon's user or membership in the admin_group; uid 65534 is none of these \(permission_denied\)" \
		nobody "$cmd"
done
expect "nobody: --json start-import gives the code" 1 '"code":"permission_denied"' nobody --json start-import
check_eq "nobody started nothing" "$(sql 'select count(*) from import_runs')" 2
chmod 0660 "$T/raced.sock"
expect "nobody without access to the socket: a clear message" 1 \
	'cannot connect to .*: Permission denied' nobody version

# ---- cancel ------------------------------------------------------------------
ctl start-import --wait --interval 0.2 >"$T/wait3.log" 2>&1 &
WAITER=$!
running3() { [ "$(run_status 3 2>/dev/null)" = running ]; }
wait_for "import 3 to run" 20 running3
wait_for "import 3 to make some requests" 30 requests_over $(($(fixture_requests) + 20))
expect "cancel" 0 '^import 3 cancelled$' ctl cancel
wait_for "import 3 to end" 30 run_ended 3
check_eq "import 3 ended cancelled" "$(run_status 3)" cancelled
rc=0
wait "$WAITER" || rc=$?
check_eq "start-import --wait exits 1 when the import is cancelled" "$rc" 1
check "start-import --wait says how it ended" grep -q '^import 3 cancelled$' "$T/wait3.log"
expect "status 3 says cancelled" 0 '^ *3 +cancelled ' ctl status 3
expect "health after a cancelled import: WARNING" 1 '^RACED WARNING - idle, last import 3 cancelled' ctl health
expect "cancel again: nothing to cancel" 1 'cancel: no import is running \(conflict\)' ctl cancel

# ---- an import whose final status is still being written --------------------
# A transaction holding import 4's row in import_runs makes the store's final
# UPDATE wait, so the import stays 'ending' until the test commits.
expect "start import 4" 0 '^import 4 started$' ctl start-import
expect "pause import 4, so that it cannot end on its own" 0 '^import 4 paused' ctl pause
running4() { [ "$(run_status 4 2>/dev/null)" = running ]; }
wait_for "import 4 to run" 20 running4
mkfifo "$T/holder.in"
"$PG_BIN/psql" -qAtX -v ON_ERROR_STOP=1 <"$T/holder.in" >"$T/holder.out" 2>&1 &
HOLDER=$!
exec 7>"$T/holder.in"
echo "begin; select 'locked ' || id from import_runs where id = 4 for update;" >&7
wait_for "the test's transaction to lock import 4's row" 20 grep -q '^locked 4$' "$T/holder.out"
expect "cancel import 4" 0 '^import 4 cancelled$' ctl cancel
store_waits() { [ "$(sql "select count(*) from pg_stat_activity where wait_event_type = 'Lock'")" = 1 ]; }
wait_for "the store's final status to wait for the lock" 20 store_waits
expect "start-import while import 4 is ending: try again" 1 \
	"start-import: import 4 is ending \(its final status is being written\); try again in a moment \(conflict\)" \
	ctl start-import
expect "cancel while import 4 is ending" 1 'cancel: import 4 is already ending \(conflict\)' ctl cancel
check_eq "import 4 is still running in the database" "$(run_status 4)" running
echo "commit;" >&7
exec 7>&-
wait "$HOLDER"
wait_for "import 4 to end" 30 run_ended 4
check_eq "import 4 ended cancelled once its row was free" "$(run_status 4)" cancelled
expect "start-import works again" 0 '^import 5 started$' ctl start-import
expect "pause import 5" 0 '^import 5 paused' ctl pause
expect "cancel import 5" 0 '^import 5 cancelled$' ctl cancel
wait_for "import 5 to end" 30 run_ended 5
raced_stop

# ---- a socket raced binds itself; a burst of idle clients -------------------
# The socket gets admin_group's group (mode 0660), so its members connect
# as they do to raced.socket's; "daemon" stands for any such group.
sed -i 's/^admin_group = root$/admin_group = daemon/' "$T/raced.conf"
raced_start
check_eq "the self-bound socket is daemon's, mode 0660" "$(stat -c '%G %a' "$T/raced.sock")" "daemon 660"
daemon_gid=$(getent group daemon | cut -d: -f3)
as_member() { setpriv --reuid=nobody --regid=nogroup --groups="$daemon_gid" "$T/racectl" --socket "$T/raced.sock" "$@"; }
expect "a member of admin_group connects to the 0660 socket" 0 '^STAGE ' as_member stats
expect "a member of admin_group may mutate" 0 '^configuration reloaded' as_member reload
# max_clients (64) connections that say nothing: racectl still gets in,
# once the oldest have been silent for the handshake timeout (3 s).
python3 - "$T/raced.sock" "$T/idle.held" <<'PY' &
import socket, sys, time
held = []
for _ in range(64):
    s = socket.socket(socket.AF_UNIX)
    s.connect(sys.argv[1])
    held.append(s)
open(sys.argv[2], "w").write("held\n")
time.sleep(30)
PY
IDLE=$!
wait_for "64 idle clients to connect" 20 test -s "$T/idle.held"
start_ms=$(date +%s%3N)
expect "racectl stats gets in past 64 idle clients" 0 '^STAGE ' ctl stats
took=$(( $(date +%s%3N) - start_ms ))
check "answered within 5 s (${took} ms)" test "$took" -lt 5000
kill "$IDLE" 2>/dev/null; wait "$IDLE" 2>/dev/null || true
raced_stop
