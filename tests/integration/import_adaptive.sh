#!/usr/bin/env bash
# Adaptive concurrency (issue 18 item 4): max_connections = auto against a
# provider that serves 16 requests at once at its normal latency and queues
# the rest (fixture --capacity 16): the limit settles within 20 % of 16 and
# the import is exact.  Against a provider with a fixed latency and no
# capacity limit, it climbs to the ceiling.  racectl stats shows the limit
# and why it last changed.
. "$TESTS_DIR/lib/harness.sh"

pg_start
data=(--seed 11 --races 100 --entries-per-race 50 --athletes 4000 --page-size 20)
config() { # CEILING
	write_config
	sed -i -e "s/^max_connections = .*/max_connections = auto\nmax_connections_ceiling = $1/" \
		-e "s/^timeout = .*/timeout = 30s/" "$T/raced.conf"
	# enough work in flight to use any limit up to the ceiling
	sed -i -e '/^\[stage athletes\]/,$ s/^concurrency = .*/concurrency = 200/' \
		-e '/^\[stage entries\]/,/^\[stage athletes\]/ s/^concurrency = .*/concurrency = 32/' "$T/raced.conf"
	cat >>"$T/raced.conf" <<CONF
max_demand = 1000
CONF
}
# (grep, not json_get: a sample should cost little next to the round trip)
limit_now() { ctl --json stats | grep -o '"limit": *[0-9]*' | head -1 | grep -o '[0-9]*$'; }
sample() { # "limit/in_flight" and why the limit last changed
	local st
	st=$(ctl --json stats)
	printf '%s/%s q%s %s\n' "$(grep -o '"limit": *[0-9]*' <<<"$st" | head -1 | grep -o '[0-9]*$')" \
		"$(grep -o '"in_flight": *[0-9]*' <<<"$st" | tail -1 | grep -o '[0-9]*$')" \
		"$(fixture_get /_stats | grep -o '"serving": *[0-9]*, *"queued": *[0-9]*' | grep -o '[0-9]*$')" \
		"$(grep -o '"limit_reason": *"[^"]*"' <<<"$st" | head -1 | cut -d'"' -f4)" >>"$T/samples.txt"
}
ended() { [ "$(sql 'select status from import_runs order by id desc limit 1')" != running ]; }

# 1. Capacity 16: settles near 16.  At 200 ms a request, so that what a
# round trip spends outside the fixture's hold (both event loops, on a busy
# machine ~10 ms) is small beside it: raced sees the capacity the fixture has.
fixture_start "${data[@]}" --latency-ms 200 --capacity 16
config 128
raced_start
check "start-import" ctl start-import
# Settled: 6 samples in a row (at least 1.5 s) within 20 % of 16.
run=0 samples=""
deadline=$((SECONDS + 90))
while [ $run -lt 6 ]; do
	[ $SECONDS -lt $deadline ] || fail "the limit did not settle within 20 % of 16: $samples"
	! ended || { cat "$T/samples.txt" >&2; fail "the import ended before the limit settled: $samples"; }
	sample
	l=$(tail -1 "$T/samples.txt" | cut -d/ -f1)
	samples="$samples $l"
	if [ "$l" -ge 13 ] && [ "$l" -le 19 ]; then run=$((run + 1)); else run=0; fi
	sleep 0.3
done
echo "     limit samples:$samples"
check "the limit settled within 20 % of the capacity 16" true
ctl stats >"$T/stats.txt"
check "racectl stats shows the adaptive limit in force" grep -qE '^main +.* auto [0-9]+ ' "$T/stats.txt"
check "racectl stats says why the limit last changed" \
	grep -qE '^main: adaptive limit [0-9]+ \(ceiling 128\), last change: (grew|cut): ' "$T/stats.txt"
why=$(json_get "$(ctl --json stats)" result providers 0 limit_reason)
check "stats --json: limit_reason ($why)" test -n "$why"
wait_for "the import to end" 300 ended
check_eq "the run succeeded" "$(sql 'select status from import_runs order by id desc limit 1')" succeeded
fixture_get /_dataset >"$T/dataset.json"
check_eq "entries stored" "$(sql 'select count(*) from entries')" "$(json_get "$(cat "$T/dataset.json")" entries)"
check_eq "athletes stored" "$(sql 'select count(*) from athletes')" \
	"$(json_get "$(cat "$T/dataset.json")" athletes_referenced)"
st=$(fixture_get /_stats)
echo "     provider: peak $(json_get "$st" peak_in_flight) in flight, peak $(json_get "$st" peak_queued) queued beyond its capacity"
raced_stop

# 2. Fixed latency, no capacity: climbs to the ceiling (32).  A longer
# latency (500 ms), so that 32 in flight is 64 requests a second, which
# raced keeps up on a busy machine: the limit grows only while it is used.
fixture_stop
fixture_start --seed 11 --races 120 --entries-per-race 50 --athletes 4500 --page-size 20 --latency-ms 500
sql "drop table if exists races, entries, athletes cascade" >/dev/null
sql "delete from import_runs" >/dev/null 2>&1 || true
config 32
raced_start
check "start-import (no capacity limit)" ctl start-import
: >"$T/samples.txt"
deadline=$((SECONDS + 150))
until sample && [ "$(tail -1 "$T/samples.txt" | cut -d/ -f1)" = 32 ]; do
	[ $SECONDS -lt $deadline ] && ! ended || { cat "$T/samples.txt" >&2; fail "the limit did not climb to the ceiling 32"; }
	sleep 0.3
done
check "the limit climbed to the ceiling 32 ($(cut -d/ -f1 "$T/samples.txt" | tr '\n' ' '))" true
# (the import's exactness is part 1's; this one is cut short)
raced_stop
