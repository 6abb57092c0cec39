#!/usr/bin/env bash
# racectl errors (issue 19 item 4): an import with permanent faults --
# three entry pages 404, one malformed -- then `errors` (human and --json),
# `status ID` and `start-import --wait` show its failures grouped by stage
# and cause, with counts and the first URLs.
. "$TESTS_DIR/lib/harness.sh"

pg_start
fixture_start --seed 11 --races 12 --entries-per-race 4 --athletes 20 --page-size 6 \
	--broken /races/3/entries=404 --broken /races/4/entries=404 --broken /races/9/entries=404 \
	--broken /races/5/entries=malformed
write_config
raced_start

expect_out() { # DESC REGEX TEXT
	if grep -qE -- "$2" <<<"$3"; then echo "ok   $1"; else fail "$1: no line matches /$2/ in:
$3"; fi
}

rc=0
out=$(ctl start-import --wait --interval 0.2 2>&1) || rc=$?
check_eq "start-import --wait exits 1 for a partial import" "$rc" 1
expect_out "--wait ends with the final status" '^import 1 partial$' "$out"
expect_out "--wait then shows the groups' header" '^STAGE +CAUSE +COUNT$' "$out"
expect_out "--wait shows the 404 group with its count" '^entries +HTTP 404 +3$' "$out"
check_eq "--wait's summary is its last lines" "$(tail -n 7 <<<"$out" | head -n 1)" "$(grep -E '^STAGE' <<<"$out")"

out=$(ctl errors)
expect_out "errors says which import and how many" '^import 1 partial: 4 errors in 2 groups$' "$out"
# A group's URLs come in the order they were recorded (checked with
# --limit below), which is the order concurrent requests failed in: the
# comparison sorts each group's URLs.
sort_urls() {
	local line urls=""
	while IFS= read -r line; do
		if [[ $line == "    "* ]]; then
			urls+="$line"$'\n'
			continue
		fi
		if [[ -n $urls ]]; then printf '%s' "$urls" | LC_ALL=C sort; urls=""; fi
		printf '%s\n' "$line"
	done
	if [[ -n $urls ]]; then printf '%s' "$urls" | LC_ALL=C sort; fi
}
got=$(sed -E 's|http://127\.0\.0\.1:[0-9]+||g' <<<"$out" | tail -n +2 | sort_urls)
check_eq "errors lists the groups, most frequent first, each with its URLs" "$got" "$(cat <<'T'
STAGE    CAUSE                                                                                    COUNT
entries  HTTP 404                                                                                     3
    /races/3/entries
    /races/4/entries
    /races/9/entries
entries  GET URL: body is not JSON: '?' or '?' expected near '?' at line N column N; not retried      1
    /races/5/entries
T
)"
out=$(ctl errors 1 --limit 1)
check_eq "--limit 1 shows one URL a group" "$(grep -c '^    http' <<<"$out")" 2
check_eq "--limit 1: the first URL recorded (by id)" "$(grep -m1 '^    http' <<<"$out" | sed -E 's|.*:[0-9]+||')" \
	"$(sql "select regexp_replace(url, '^https?://[^/]+', '') from import_errors where http_status = 404 order by id limit 1")"

j=$(ctl --json errors 1)
check_eq "--json: import_id" "$(json_get "$j" result import_id)" 1
check_eq "--json: errors" "$(json_get "$j" result errors)" 4
check_eq "--json: first group's stage" "$(json_get "$j" result groups 0 stage)" entries
check_eq "--json: first group's cause" "$(json_get "$j" result groups 0 cause)" "HTTP 404"
check_eq "--json: first group's count" "$(json_get "$j" result groups 0 count)" 3
check_eq "--json: second group's count" "$(json_get "$j" result groups 1 count)" 1
check "--json: the second group's URL" grep -q '/races/5/entries"' <<<"$(json_get "$j" result groups 1 urls)"

out=$(ctl status 1)
expect_out "status ID shows the run" '^ *1 +partial ' "$out"
expect_out "status ID then shows the groups" '^entries +HTTP 404 +3$' "$out"
expect_out "status ID shows the URLs" '^    http://127\.0\.0\.1:[0-9]+/races/3/entries$' "$out"
check "status (the list) shows no groups" bash -c '! "$RACECTL" status | grep -q CAUSE'
check_eq "status --json of the list has no error_groups" \
	"$(ctl --json status | grep -c error_groups || true)" 0
check_eq "status ID --json has error_groups" "$(json_get "$(ctl --json status 1)" result runs 0 error_groups 0 count)" 3

rc=0; out=$(ctl errors 99 2>&1) || rc=$?
check_eq "errors of an unknown import exits 1" "$rc" 1
expect_out "errors of an unknown import says so" 'no import with id 99 \(not_found\)' "$out"
rc=0; out=$(ctl errors --limit 0 2>&1) || rc=$?
check_eq "--limit 0 is a usage error" "$rc" 2

# A clean import: errors says there are none; --wait adds nothing.
fixture_stop
fixture_start --seed 11 --races 3 --entries-per-race 2 --athletes 5 --page-size 6
sed -i "s|^base_url = .*|base_url = $FIXTURE_URL|" "$T/raced.conf"
ctl reload >/dev/null
out=$(ctl start-import --wait --interval 0.2)
check "a succeeded --wait shows no groups" bash -c '! grep -q CAUSE <<<"$1"' _ "$out"
check_eq "errors of a clean import" "$(ctl errors)" "import 2 succeeded: no errors"
raced_stop
