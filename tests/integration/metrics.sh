#!/usr/bin/env bash
# [daemon] metrics: --check-config refuses an address that is not loopback
# or not an address at all; raced serves OpenMetrics text that promtool
# accepts while idle, during an import and after it; the import's id and
# state are the running one's; at the end every stage's items equal the
# rows stored, the store's rows and batches agree with the commit
# histogram; a second import adds to the counters (they never go back);
# only GET /metrics is served; a Unix socket path works too.
. "$TESTS_DIR/lib/harness.sh"

# The race pipeline's configuration with [daemon] metrics = $1.
config_metrics() {
	write_config
	sed -i "/^\[daemon\]/a metrics = $1" "$T/raced.conf"
}

PROMTOOL=${PROMTOOL:-$(command -v promtool || true)}
[ -n "$PROMTOOL" ] || { echo "promtool not installed (Debian: prometheus; .ci/install-deps)"; exit 77; }

pg_start
fixture_start --seed 5 --races 30 --entries-per-race 8 --athletes 60 --page-size 5 --latency-ms 30
fixture_get /_dataset >"$T/dataset.json"
expect_ds() { json_get "$(cat "$T/dataset.json")" "$1"; }

# ---- --check-config ---------------------------------------------------------
refused() { # DESC VALUE REGEX
	local out rc=0
	config_metrics "$2"
	out=$("$RACED" --config "$T/raced.conf" --check-config 2>&1) || rc=$?
	[ "$rc" = 78 ] || fail "$1: exit $rc, expected 78: $out"
	grep -qE -- "$3" <<<"$out" || fail "$1: output does not match /$3/: $out"
	echo "ok   $1"
}
refused "an address on every interface is refused" 0.0.0.0:9187 \
	"\[daemon\] metrics: '0\.0\.0\.0:9187' is not a loopback address .*127\.0\.0\.1:9187"
refused "a host name is refused" localhost:9187 "'localhost:9187' is not a loopback address"
refused "no port is refused" 127.0.0.1 "'127\.0\.0\.1' is not an address: expected a loopback address"
refused "port 0 is refused" 127.0.0.1:0 "is not an address"
refused "a relative path is refused" metrics.sock "is not an address"
config_metrics "[::1]:9187"
check "[::1]:PORT is accepted" "$RACED" --config "$T/raced.conf" --check-config

# ---- serving ----------------------------------------------------------------
port=
for p in $(seq $((20000 + RANDOM % 20000)) 65000); do
	if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then port=$p; break; fi
done
config_metrics "127.0.0.1:$port"
raced_start
URL="http://127.0.0.1:$port/metrics"

scrape() { curl -sf --max-time 5 "$URL" >"$T/scrape.txt"; }
value() { # SERIES (exactly as written, labels included): its value
	awk -v s="$1" '$1 == s { print $2 }' "$T/scrape.txt"
}
promcheck() { "$PROMTOOL" check metrics <"$T/scrape.txt" >"$T/promtool.out" 2>&1 || { cat "$T/promtool.out" >&2; return 1; }; }

check "scrape while idle" scrape
check "promtool accepts the idle text" promcheck
check_eq "no import yet" "$(value raced_import_id)" 0
check_eq "state idle" "$(value 'raced_import_state{state="idle"}')" 1
up_scrape() { scrape && [ "$(value raced_store_up)" = 1 ]; }
wait_for "a scrape showing the database up" 20 up_scrape
check_eq "the store's state" "$(value 'raced_store_state{state="ready"}')" 1
check_eq "the provider's concurrency limit" "$(value 'raced_provider_concurrency_limit{provider="main"}')" 16
check "the text ends with # EOF" test "$(tail -n 1 "$T/scrape.txt")" = "# EOF"
ctype=$(curl -s -o /dev/null -w '%{content_type}' "$URL")
check_eq "Content-Type" "$ctype" "application/openmetrics-text; version=1.0.0; charset=utf-8"

# During an import.
id=$(ctl start-import | sed -n "s/^import \([0-9]*\) started$/\1/p")
check "start-import gave an id" test -n "$id"
running_scrape() { scrape && [ "$(value 'raced_import_state{state="running"}')" = 1 ] &&
	[ "$(value 'raced_stage_items_total{stage="entries"}')" -gt 0 ]; }
wait_for "a scrape showing the import running with entries" 30 running_scrape
check "promtool accepts the text during the import" promcheck
check_eq "the running import's id" "$(value raced_import_id)" "$id"
check "its start time is now" test $(($(date +%s) - $(value raced_import_start_time_seconds))) -le 60
echo "     a scrape during the import: $(wc -c <"$T/scrape.txt") bytes, answered in $(curl -s -o /dev/null -w '%{time_total}' "$URL") s"
check "demand is reported per subscription" grep -q '^raced_stage_demand{stage="races",consumer="entries"} ' "$T/scrape.txt"

run_ended() { [ "$(sql "select status from import_runs where id = $id")" != running ]; }
wait_for "import $id to end" 120 run_ended
ended_scrape() { scrape && [ "$(value 'raced_imports_total{status="succeeded"}')" = 1 ]; }
wait_for "a scrape counting the ended import" 10 ended_scrape
check "promtool accepts the text after the import" promcheck
check_eq "state succeeded" "$(value 'raced_import_state{state="succeeded"}')" 1
rows_total=0
for st in races entries athletes; do
	rows=$(sql "select count(*) from $st")
	check_eq "$st: items counted equal the rows stored" "$(value "raced_stage_items_total{stage=\"$st\"}")" "$rows"
	check_eq "$st: rows stored" "$(value "raced_stage_rows_stored_total{stage=\"$st\"}")" "$rows"
	rows_total=$((rows_total + rows))
done
check_eq "athletes: one 2xx request each" \
	"$(value 'raced_stage_requests_total{stage="athletes",outcome="2xx"}')" "$(expect_ds athletes_referenced)"
check_eq "no transport failures" "$(value 'raced_stage_requests_total{stage="races",outcome="transport"}')" 0
check_eq "the store's rows" "$(value raced_store_rows_total)" "$rows_total"
batches=$(value raced_store_batches_total)
check "batches were committed" test "$batches" -gt 0
check_eq "the commit histogram counts every batch" "$(value raced_store_commit_duration_seconds_count)" "$batches"
check_eq "+Inf bucket equals the count" \
	"$(value 'raced_store_commit_duration_seconds_bucket{le="+Inf"}')" "$batches"

# A second import adds to the counters.
races1=$(value 'raced_stage_items_total{stage="races"}')
check "second import" ctl start-import --wait
two_scrape() { scrape && [ "$(value 'raced_imports_total{status="succeeded"}')" = 2 ]; }
wait_for "a scrape counting two imports" 10 two_scrape
check_eq "counters add up across imports" "$(value 'raced_stage_items_total{stage="races"}')" $((2 * races1))
check "promtool accepts the text after two imports" promcheck

# A reload builds a new fetcher, and a new store when [database] changed,
# which count from 0: the counters carry on from where they were.
scrape
batches=$(value raced_store_batches_total)
requests=$(value 'raced_provider_requests_total{provider="main"}')
sed -i 's/^batch_size = 200$/batch_size = 200\nsynchronous_commit = local/' "$T/raced.conf"
check "reload (synchronous_commit: a new store)" ctl reload
up_again() { scrape && [ "$(value raced_store_up)" = 1 ]; }
wait_for "the database up after the reload" 20 up_again
check_eq "store batches do not go back at a reload" "$(value raced_store_batches_total)" "$batches"
check_eq "provider requests do not go back at a reload" \
	"$(value 'raced_provider_requests_total{provider="main"}')" "$requests"
check "promtool accepts the text after a reload" promcheck

# Read-only, one path.
check_eq "another path is 404" "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/")" 404
check_eq "POST is refused (evhttp: Not Implemented)" "$(curl -s -o /dev/null -w '%{http_code}' -X POST "$URL")" 501
raced_stop

# ---- a Unix socket ----------------------------------------------------------
config_metrics "$T/metrics.sock"
raced_start
check "scrape over the Unix socket" curl -sf --max-time 5 --unix-socket "$T/metrics.sock" \
	-o "$T/scrape.txt" http://localhost/metrics
check "promtool accepts it" promcheck
check_eq "counters are per daemon: a new daemon starts from 0" \
	"$(value 'raced_imports_total{status="succeeded"}')" 0
raced_stop
check "the socket is removed at exit" test ! -e "$T/metrics.sock"
