#!/usr/bin/env bash
# Pagination styles (issue 18 item 1): the fixture serves the same data set
# paged by a next link in the body, a Link header, offset and limit, page
# number, a cursor in the body and a cursor in a header.  Each imports the
# same rows exactly; a second import, answered 304 page by page, walks the
# same pages from the stored next URLs.  Each misbehaviour (a cursor served
# again, a total larger than the data, pages past the last that repeat the
# last one) is one error for that input, and the import ends.
. "$TESTS_DIR/lib/harness.sh"

pg_start
data=(--seed 7 --races 23 --entries-per-race 12 --athletes 40 --page-size 5)

# The races' and the entries' paging keys for a style (the races use the
# style's optional signals, the entries its plain end signal).
races_keys() {
	case $1 in
	next) echo 'next = /next' ;;
	link) echo 'next = link' ;;
	offset) printf 'next = offset\nlimit = 5\ntotal = /total\n' ;;
	page_number) printf 'next = page_number\ntotal_pages = /total_pages\n' ;;
	cursor) printf 'next = cursor\ncursor_pointer = /next_cursor\nhas_more = /has_more\n' ;;
	header_cursor) printf 'next = header_cursor\ncursor_header = X-Next-Cursor\n' ;;
	esac
}
entries_keys() {
	case $1 in
	offset) printf 'next = offset\nlimit = 5\n' ;;
	page_number) echo 'next = page_number' ;;
	cursor) printf 'next = cursor\ncursor_pointer = /next_cursor\n' ;;
	*) races_keys "$1" ;;
	esac
}
# $T/raced.conf with the races paged by RACES_STYLE's keys ($2, default
# those of $1) and the entries by ENTRIES_STYLE's.
config_for() {
	write_config
	awk -v races="$(races_keys "$1")" -v entries="$(entries_keys "$1")" \
		'/^\[stage /{st=$2} /^next = \/next$/{print (st == "races]" ? races : entries); next} {print}' \
		"$T/raced.conf" >"$T/raced.conf.new"
	mv "$T/raced.conf.new" "$T/raced.conf"
}
run_id=0
run() { # DESC: one raced --once; its exit status in $rc
	run_id=$((run_id + 1))
	rc=0
	"$RACED" --config "$T/raced.conf" --once 2>>"$T/raced.log" || rc=$?
}
status() { sql "select status from import_runs where id = $run_id"; }
errors() { sql "select count(*) from import_errors where import_id = $run_id"; }
# Forget what the last style stored (the tables exist after the first run).
reset() { [ "$run_id" -eq 0 ] || sql 'truncate races, entries, athletes, raced_pages'; }

fixture_start "${data[@]}"
fixture_get /_dataset >"$T/dataset.json"
for kind in races entries athletes; do fixture_get "/_dump/$kind" >"$T/$kind.json"; done
fixture_stop
expect() { json_get "$(cat "$T/dataset.json")" "$@"; }
race_pages=$(expect race_pages)
check "the races span several pages ($race_pages)" test "$race_pages" -ge 4

for style in next link offset page_number cursor header_cursor; do
	reset
	fixture_start "${data[@]}" --paging "$style" --validators etag
	config_for "$style"
	check "$style: --check-config accepts the keys" "$RACED" --config "$T/raced.conf" --check-config
	run
	check_eq "$style: the import succeeds" "$rc/$(status)/$(errors)" "0/succeeded/0"
	for kind in races entries athletes; do
		diff=$(sql "with served as (select value as doc from jsonb_array_elements(pg_read_file('$T/$kind.json')::jsonb))
		           select count(*) from served s full join $kind t on t.key = s.doc->>'id'
		           where t.payload is distinct from s.doc")
		check_eq "$style: $kind equal the served items" "$diff" 0
	done
	first=$(json_get "$(fixture_get /_stats)" requests)
	# Unchanged: every page answers 304, and the walk goes on at each
	# page's stored next URL (the computed one), through the same pages.
	fixture_get /_reset >/dev/null
	run
	check_eq "$style: the unchanged import succeeds" "$rc/$(status)/$(errors)" "0/succeeded/0"
	stats=$(fixture_get /_stats)
	check_eq "$style: it asks for the same pages" "$(json_get "$stats" requests)" "$first"
	check "$style: the pages answered 304" test "$(json_get "$stats" not_modified)" -gt "$race_pages"
	check_eq "$style: every race page was asked again" "$(json_get "$stats" max_attempts_by_prefix races)" 1
	check_eq "$style: no row rewritten" "$(sql "select count(*) from entries where last_import = $run_id")" 0
	fixture_stop
done

# One misbehaviour: fixture arguments, the paging style of the races, the
# message import_errors must hold.  One error, for the races' list, and the
# import ends partial with the races served before it.
misbehaves() { # DESC STYLE BROKEN LIKE [RACES-KEYS]
	local desc=$1 style=$2 broken=$3 like=$4
	reset
	fixture_start "${data[@]}" --paging "$style" --broken "/races=$broken"
	config_for "$style"
	if [ -n "${5:-}" ]; then
		awk -v keys="$5" '/^\[stage races\]/{st=1} /^\[stage entries\]/{st=0}
			st && /^(next|total|total_pages|has_more|cursor_pointer|cursor_header|limit) =/{next}
			{print} st && /^url = /{print keys}' "$T/raced.conf" >"$T/raced.conf.new"
		mv "$T/raced.conf.new" "$T/raced.conf"
	fi
	run
	check_eq "$desc: raced --once ends, partial" "$rc/$(status)" "1/partial"
	check_eq "$desc: one error" "$(errors)" 1
	check_eq "$desc: on the races' list, naming the setting" \
		"$(sql "select count(*) from import_errors where import_id = $run_id and stage = 'races' and message like '$like'")" 1
	fixture_stop
}
misbehaves "a cursor served again" cursor repeatcursor \
	"the next link leads back to %cursor=%a pagination cycle; setting ''cursor_pointer'' of [stage races])"
check_eq "a cursor served again: the races of the three pages before it are stored" \
	"$(sql "select count(*) from races")" 15
misbehaves "a header cursor served again" header_cursor repeatcursor \
	"%a pagination cycle; setting ''cursor_header'' of [stage races])"
misbehaves "an offset past the data (a total too large)" offset bigtotal \
	"the page at offset 23 is empty, but the total at ''/total'' is 33:%(setting ''total'' of [stage races])"
check_eq "a total too large: every race is stored" "$(sql "select count(*) from races")" "$(expect races)"
misbehaves "a page number past the last (total_pages too large)" page_number bigtotal \
	"page 6 is empty, but the total of pages at ''/total_pages'' is 7:%(setting ''total_pages'' of [stage races])"
misbehaves "pages past the last repeat it" page_number clamp \
	"the page %/races?page=6 serves the same 3 items as the page before it:%(setting ''page_param'' of [stage races])" \
	'next = page_number'
check_eq "pages past the last repeat it: every race is stored" "$(sql "select count(*) from races")" "$(expect races)"
