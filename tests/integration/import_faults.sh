#!/usr/bin/env bash
# Faults: with transient failures on about 20% of requests (500, 503, 429
# with Retry-After, bodies cut short) the import still ends 'succeeded' with
# every item; with a few permanently broken URLs it ends 'partial',
# import_errors names exactly those URLs, and everything else is stored.
. "$TESTS_DIR/lib/harness.sh"

pg_start
data=(--seed 11 --races 30 --entries-per-race 8 --athletes 60 --page-size 6)
fixture_start "${data[@]}" --rate-500 0.05 --rate-503 0.08 --rate-429 0.02 --retry-after 1 --rate-cut 0.05
write_config
check "raced --once succeeds despite transient faults" "$RACED" --config "$T/raced.conf" --once 2>"$T/raced.log"
fixture_get /_dataset >"$T/dataset.json"
expect() { json_get "$(cat "$T/dataset.json")" "$@"; }
stats=$(fixture_get /_stats)
num() { local v; v=$(json_get "$stats" "$@"); echo "${v:-0}"; }
faults=$(( $(num by_status 500) + $(num by_status 503) + $(num by_status 429) + $(num cut) ))
check "the provider really injected faults ($faults)" test "$faults" -gt 10
check_eq "races stored" "$(sql 'select count(*) from races')" "$(expect races)"
check_eq "entries stored" "$(sql 'select count(*) from entries')" "$(expect entries)"
check_eq "athletes stored" "$(sql 'select count(*) from athletes')" "$(expect athletes_referenced)"
check_eq "the run succeeded" "$(sql 'select status from import_runs order by id desc limit 1')" succeeded
check_eq "no import_errors" "$(sql 'select count(*) from import_errors')" 0
check "retries were counted" test "$(sql "select sum((value->>'retried')::int) from import_runs, jsonb_each(counts) where id = 1")" -gt 0

# Permanent failures: two athletes 404, race 5's entries malformed.  The
# athletes are ones an entry outside race 5 references, so they are asked.
fixture_get /_dump/entries >"$T/entries.json"
fixture_stop
sql 'truncate races, entries, athletes, import_errors'
served="jsonb_array_elements(pg_read_file('$T/entries.json')::jsonb)"
mapfile -t bad < <(sql "select distinct e->>'athlete_id' from $served e where e->>'race_id' <> '5' order by 1 limit 3")
check_eq "three athletes picked" "${#bad[@]}" 3
# The third athlete's key is too long for PostgreSQL's index: the row is
# refused, which must count as a failure, never as stored.
fixture_start "${data[@]}" --broken "/athletes/${bad[0]}=404" --broken "/athletes/${bad[1]}=404" \
	--broken "/races/5/entries=malformed" --broken "/athletes/${bad[2]}=longkey"
sed -i "s|^base_url = .*|base_url = $FIXTURE_URL|" "$T/raced.conf"
rc=0
"$RACED" --config "$T/raced.conf" --once 2>>"$T/raced.log" || rc=$?
check_eq "raced --once exits 1 for a partial import" "$rc" 1
check_eq "the run is partial" "$(sql 'select status from import_runs order by id desc limit 1')" partial
got=$(sql "select string_agg(u, ' ' order by u collate \"C\") from (select regexp_replace(url, '^https?://[^/]+', '') u from import_errors where import_id = 2 and url <> '') x")
want=$(printf '%s\n' "/athletes/${bad[0]}" "/athletes/${bad[1]}" "/races/5/entries" | LC_ALL=C sort | tr '\n' ' ')
check_eq "import_errors names exactly the broken URLs" "$got" "${want% }"
check_eq "the 404s were tried once" "$(sql "select string_agg(distinct attempts::text, ',') from import_errors where import_id = 2 and http_status = 404")" 1
check_eq "the malformed page's error says it is not JSON" \
	"$(sql "select count(*) from import_errors where import_id = 2 and url like '%/races/5/entries' and message ilike '%not JSON%'")" 1
check_eq "the refused row is an import error naming its key" \
	"$(sql "select count(*) from import_errors where import_id = 2 and message like 'PostgreSQL refused the row with key ''%' and stage = 'athletes'")" 1
check_eq "every other athlete is stored" "$(sql 'select count(*) from athletes')" \
	"$(sql "select count(distinct e->>'athlete_id') - 3 from $served e where e->>'race_id' <> '5'")"
check_eq "the run's counts say what was really stored" \
	"$(sql "select (counts->'athletes'->>'stored')::int from import_runs where id = 2")" "$(sql 'select count(*) from athletes')"
check_eq "the run's counts name 3 failed athletes" \
	"$(sql "select (counts->'athletes'->>'failed')::int from import_runs where id = 2")" 3
check_eq "every entry but race 5's is stored" "$(sql 'select count(*) from entries')" \
	"$(sql "select count(*) from $served e where e->>'race_id' <> '5'")"
check_eq "every race is stored" "$(sql 'select count(*) from races')" "$(expect races)"

# A provider whose next link leads back to the same page: the cycle is an
# error for that race, fetched once, and the import still ends.
fixture_stop
fixture_start "${data[@]}" --broken "/races/7/entries=cycle"
sed -i "s|^base_url = .*|base_url = $FIXTURE_URL|" "$T/raced.conf"
rc=0
"$RACED" --config "$T/raced.conf" --once 2>>"$T/raced.log" || rc=$?
check_eq "a pagination cycle ends the import partial" "$(sql 'select status from import_runs where id = 3')" partial
check_eq "the cycle is one import error, on race 7's entries" \
	"$(sql "select count(*) from import_errors where import_id = 3 and url like '%/races/7/entries' and message like '%pagination cycle%'")" 1
check_eq "the looping page was fetched once" "$(json_get "$(fixture_get '/_attempts?url=/races/7/entries')" attempts)" 1

# The root's first page without its items, or with items that have no key:
# nothing below can run, so the import fails (SPEC §3), with one error.
id=3
for kind in nodata nokey; do
	id=$((id + 1))
	fixture_stop
	fixture_start "${data[@]}" --broken "/races=$kind"
	sed -i "s|^base_url = .*|base_url = $FIXTURE_URL|" "$T/raced.conf"
	rc=0
	"$RACED" --config "$T/raced.conf" --once 2>>"$T/raced.log" || rc=$?
	check_eq "root first page $kind: raced --once exits 1" "$rc" 1
	check_eq "root first page $kind: the import failed" "$(sql "select status from import_runs where id = $id")" failed
	check_eq "root first page $kind: one import error" "$(sql "select count(*) from import_errors where import_id = $id")" 1
done
check "a page of unkeyed items is reported once, with the count" \
	grep -q "6 of 6 items have no string or number key at '/id'" "$T/raced.log"

# An entries page whose items lack keys: one error for the page, the rest stored.
id=$((id + 1))
fixture_stop
fixture_start "${data[@]}" --broken "/races/3/entries=nokey"
sed -i "s|^base_url = .*|base_url = $FIXTURE_URL|" "$T/raced.conf"
"$RACED" --config "$T/raced.conf" --once 2>>"$T/raced.log" || true
check_eq "unkeyed entries: the import is partial" "$(sql "select status from import_runs where id = $id")" partial
check_eq "unkeyed entries: one import error for the page" \
	"$(sql "select count(*) from import_errors where import_id = $id and url like '%/races/3/entries'")" 1

# An item with a NUL in a string (valid JSON, refused by jsonb): that item
# is an error, the rest of its page and of the import is stored.
id=$((id + 1))
fixture_stop
fixture_start "${data[@]}" --broken "/races=nul"
sed -i "s|^base_url = .*|base_url = $FIXTURE_URL|" "$T/raced.conf"
sql 'truncate races'
"$RACED" --config "$T/raced.conf" --once 2>>"$T/raced.log" || true
check_eq "a NUL in an item: the import is partial" "$(sql "select status from import_runs where id = $id")" partial
# (--broken matches every page of /races: the first race of each page)
check_eq "a NUL in an item: one error an item" \
	"$(sql "select count(*) from import_errors where import_id = $id and message like '%u0000%jsonb%'")" "$(expect race_pages)"
check_eq "a NUL in an item: every other race stored" "$(sql 'select count(*) from races')" "$(( $(expect races) - $(expect race_pages) ))"

# A last page whose next link is the first page: a cycle, caught before the
# first page is fetched a second time.
id=$((id + 1))
fixture_stop
fixture_start "${data[@]}" --broken "/races/7/entries=cyclefirst"
sed -i "s|^base_url = .*|base_url = $FIXTURE_URL|" "$T/raced.conf"
"$RACED" --config "$T/raced.conf" --once 2>>"$T/raced.log" || true
check_eq "a link back to the first page is one cycle error" \
	"$(sql "select count(*) from import_errors where import_id = $id and url like '%/races/7/entries%' and message like '%pagination cycle%'")" 1
check_eq "the first page was fetched once" "$(json_get "$(fixture_get '/_attempts?url=/races/7/entries')" attempts)" 1

# Next links that never end: max_pages pages, then one error naming the setting.
id=$((id + 1))
fixture_stop
fixture_start "${data[@]}" --broken "/races/4/entries=endless"
sed -i -e "s|^base_url = .*|base_url = $FIXTURE_URL|" -e '\|^url = /races/{id}/entries|a max_pages = 5' "$T/raced.conf"
"$RACED" --config "$T/raced.conf" --once 2>>"$T/raced.log" || true
check_eq "endless next links end the input partial" "$(sql "select status from import_runs where id = $id")" partial
check_eq "one error naming max_pages" \
	"$(sql "select count(*) from import_errors where import_id = $id and message like '5 pages fetched for one input%setting ''max_pages'' of [stage entries])'")" 1
check_eq "the 5th page was fetched" "$(json_get "$(fixture_get '/_attempts?url=/races/4/entries?page=5')" attempts)" 1
check_eq "the 6th was not" "$(json_get "$(fixture_get '/_attempts?url=/races/4/entries?page=6')" attempts)" 0
