#!/usr/bin/env bash
# A full import: several pages of races, races with no entries and with
# many pages of entries, athletes shared by many entries.  Every table holds
# exactly the items served (compared as JSON), parent_key is right, each
# athlete is fetched once; a second run rewrites nothing, a changed item is
# updated.
. "$TESTS_DIR/lib/harness.sh"

pg_start
fixture_start --seed 7 --races 23 --entries-per-race 12 --athletes 40 --page-size 5
write_config

check "raced --once succeeds" "$RACED" --config "$T/raced.conf" --once --verbose 2>"$T/raced.log"
# stderr is a file, not journald: every line opens with the local time
TS=$LOG_TS
check "off journald every log line opens with an ISO 8601 timestamp" bash -c '! grep -qvE "^$0<[0-7]>" "$1"' "$TS" "$T/raced.log"
check "--verbose logs each request" grep -qE "^$TS"'<7>import 1: \[stage races\] GET http://127\.0\.0\.1:[0-9]*/races: HTTP 200, 5 items, attempt 1$' "$T/raced.log"
check "--verbose logs each commit" grep -qE "^$TS"'<7>import 1: database: committed [0-9]* rows of entries$' "$T/raced.log"

expect() { fixture_get "/_dataset" >"$T/dataset.json"; json_get "$(cat "$T/dataset.json")" "$@"; }
check_eq "races stored" "$(sql 'select count(*) from races')" "$(expect races)"
check_eq "entries stored" "$(sql 'select count(*) from entries')" "$(expect entries)"
check_eq "athletes stored" "$(sql 'select count(*) from athletes')" "$(expect athletes_referenced)"
check_eq "races with no entries exist in the data set" "$(test "$(expect races_without_entries)" -gt 0 && echo yes)" yes

# Payloads equal what the provider serves, compared as JSON.
for kind in races entries athletes; do
	fixture_get "/_dump/$kind" >"$T/$kind.json"
	diff=$(sql "with served as (select value as doc from jsonb_array_elements(pg_read_file('$T/$kind.json')::jsonb))
	           select count(*) from served s full join $kind t on t.key = s.doc->>'id'
	           where t.payload is distinct from s.doc")
	check_eq "$kind payloads equal the served items" "$diff" 0
done
check_eq "entries' parent_key is their race" \
	"$(sql "select count(*) from entries where parent_key is distinct from payload->>'race_id'")" 0
check_eq "races have no parent" "$(sql 'select count(*) from races where parent_key is not null')" 0
check_eq "each athlete fetched once" \
	"$(json_get "$(fixture_get '/_stats')" max_attempts_by_prefix athletes)" 1
check_eq "the run succeeded" "$(sql 'select status from import_runs order by id desc limit 1')" succeeded

# Second import of unchanged data: no row rewritten.
before=$(sql "select md5(string_agg(key || updated_at::text, ',' order by key)) from entries")
check "second raced --once succeeds" "$RACED" --config "$T/raced.conf" --once 2>>"$T/raced.log"
after=$(sql "select md5(string_agg(key || updated_at::text, ',' order by key)) from entries")
check_eq "unchanged entries keep updated_at" "$after" "$before"
# last_import is the import that wrote the row: the second wrote none.
check_eq "unchanged entries not rewritten" "$(sql 'select count(*) from entries where last_import = 1')" "$(expect entries)"

# Changed items are updated.
fixture_stop
fixture_start --seed 7 --races 23 --entries-per-race 12 --athletes 40 --page-size 5 --version-bump 1
sed -i "s|^base_url = .*|base_url = $FIXTURE_URL|" "$T/raced.conf"
check "third raced --once succeeds" "$RACED" --config "$T/raced.conf" --once 2>>"$T/raced.log"
changed=$(sql "select count(*) from athletes where updated_at > (select started_at from import_runs where id = 3)")
check "changed athletes were rewritten" test "$changed" -gt 0
check_eq "changed athletes equal the served ones" \
	"$(fixture_get /_dump/athletes >"$T/a2.json"; sql "select count(*) from jsonb_array_elements(pg_read_file('$T/a2.json')::jsonb) s full join athletes t on t.key = s.value->>'id' where t.payload is distinct from s.value")" 0
