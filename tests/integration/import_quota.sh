#!/usr/bin/env bash
# Quotas from headers (issue 18 item 3): a provider allowing Q requests per
# window, announced in RateLimit-* (then X-RateLimit-*, reset a Unix time)
# on every answer and refusing with 429 beyond it.  raced holds new
# requests until the reset instead of collecting 429s: at most 1 % of its
# requests are 429s, and the import is exact.  racectl stats shows the
# holds and the 429s.
. "$TESTS_DIR/lib/harness.sh"

pg_start
Q=40 W=2
run_import() { # FORM
	fixture_stop
	fixture_start --seed 5 --races 20 --entries-per-race 15 --athletes 120 --page-size 10 \
		--quota $Q --quota-window $W --quota-headers "$1"
	write_config
	raced_start
	check "start-import ($1)" ctl start-import
	ended() { [ "$(sql 'select status from import_runs order by id desc limit 1')" != running ]; }
	wait_for "the import to end ($1)" 180 ended
	check_eq "the run succeeded ($1)" "$(sql 'select status from import_runs order by id desc limit 1')" succeeded
	fixture_get /_dataset >"$T/dataset.json"
	check_eq "entries stored ($1)" "$(sql 'select count(*) from entries')" "$(json_get "$(cat "$T/dataset.json")" entries)"
	check_eq "athletes stored ($1)" "$(sql 'select count(*) from athletes')" \
		"$(json_get "$(cat "$T/dataset.json")" athletes_referenced)"
	local st requests r429
	st=$(fixture_get /_stats)
	requests=$(json_get "$st" requests)
	r429=$(json_get "$st" by_status 429)
	r429=${r429:-0}
	echo "     $1: $requests requests, $r429 answered 429 (quota $Q per ${W}s)"
	check "the import spanned several quota windows ($requests > $((2 * Q)))" test "$requests" -gt $((2 * Q))
	check "at most 1 % of the requests were 429s ($r429 of $requests)" test $((r429 * 100)) -le "$requests"
	local stats
	stats=$(ctl --json stats)
	check "stats: admission waited for the quota's reset ($1)" \
		test "$(json_get "$stats" result providers 0 quota_holds)" -gt 0
	check_eq "stats: 429s counted as the provider answered them ($1)" \
		"$(json_get "$stats" result providers 0 throttled)" "$r429"
	check "stats: the provider's last word on its quota is shown ($1)" \
		test -n "$(json_get "$stats" result providers 0 quota_remaining)"
	raced_stop
}
run_import ietf
run_import x
