#!/usr/bin/env bash
# Fields of ancestors in URL templates (issue 16, item 4): a four-stage graph
# over two providers, races -> entries -> athletes from provider A and
# entries -> results from provider B, whose url names the race of the entry
# ({races.id}, two stages up).  The import is exact, and stays exact when
# re-imported from stored state (inputs skipped within `refresh` and pages
# answered 304: their items are read back and still carry what the results'
# URLs need).  A url field no item has stops the stage with one error naming
# the nearest field; a field of a stage that is not an ancestor is a
# --check-config error.
. "$TESTS_DIR/lib/harness.sh"

pg_start
ARGS=(--seed 11 --races 14 --entries-per-race 6 --athletes 30 --page-size 4 --validators etag)
fixture_start "${ARGS[@]}"
A=$FIXTURE_URL
# Provider B: a second fixture process with the same data set.
"$FIXTURE" --port-file "$T/fixture-b.port" "${ARGS[@]}" >"$T/fixture-b.log" 2>&1 &
EXTRA_PIDS="$!"
wait_for "fixture B to listen" 10 test -s "$T/fixture-b.port"
B="http://127.0.0.1:$(cat "$T/fixture-b.port")"

config() { # RESULTS-URL [EXTRA-RESULTS-KEYS] [RACES-AND-ENTRIES-KEYS]
	cat >"$T/raced.conf" <<CONF
[daemon]
control_socket = $T/raced.sock
admin_group = root
resume = no

[database]
conninfo = $PG_CONNINFO
batch_size = 50

[provider a]
base_url = $A

[provider b]
base_url = $B

[stage races]
provider = a
url = /races
items = /data
next = /next
key = /id
${3:-}

[stage entries]
parent = races
provider = a
url = /races/{id}/entries
items = /data
next = /next
key = /id
${3:-}

[stage athletes]
parent = entries
provider = a
url = /athletes/{athlete_id}
items =
key = /id
dedupe = yes

[stage results]
parent = entries
provider = b
url = $1
items = /data
key = /id
${2:-}
CONF
}

exact() { # DESC: every table equals what the fixture serves
	local kind table
	for kind in races entries athletes splits; do
		table=$kind
		[ "$kind" = splits ] && table=results
		fixture_get "/_dump/$kind" >"$T/$kind.json"
		check_eq "$1: $table equal the served $kind" \
			"$(sql "select count(*) from jsonb_array_elements(pg_read_file('$T/$kind.json')::jsonb) s
			        full join $table t on t.key = s.value->>'id' where t.payload is distinct from s.value")" 0
	done
	check_eq "$1: each result's parent is its entry" \
		"$(sql "select count(*) from results where parent_key is distinct from payload->>'entry_id'")" 0
	check_eq "$1: no errors" "$(sql 'select count(*) from import_errors')" 0
}
last_status() { sql 'select status from import_runs order by id desc limit 1'; }
counts() { sql "select counts->'$1'->>'$2' from import_runs order by id desc limit 1"; }

# --- the four-stage graph: exact --------------------------------------------
config '/races/{races.id}/entries/{id}/splits'
check "raced --check-config accepts {races.id} two stages down" "$RACED" --check-config --config "$T/raced.conf"
check "the import succeeds" "$RACED" --config "$T/raced.conf" --once 2>"$T/raced.log"
check_eq "it succeeded" "$(last_status)" succeeded
check "results were served" test "$(sql 'select count(*) from results')" -gt "$(sql 'select count(*) from entries')"
exact "first import"

# The splits resource answers only under the entry's own race, so a URL
# with the wrong race in it cannot pass for the right one.
code() { curl -s -o /dev/null -w '%{http_code}' "$B$1"; }
entry=$(sql "select key from entries order by key limit 1")
race=$(sql "select payload->>'race_id' from entries where key = '$entry'")
other=$((race % 14 + 1))
check_eq "an entry's splits under its race" "$(code "/races/$race/entries/$entry/splits")" 200
check_eq "under another race: 404" "$(code "/races/$other/entries/$entry/splits")" 404
check_eq "an entry the race does not have: 404" "$(code "/races/$race/entries/e$race-999/splits")" 404

# --- re-imported from stored state ------------------------------------------
# Races and entries fetched within refresh are skipped: their items are
# read back from the tables; the races' own {races.id} is read from the
# stored payload, the entries' from the race item they descend from.
config '/races/{races.id}/entries/{id}/splits' '' 'refresh = 1d'
check "an import within refresh succeeds" "$RACED" --config "$T/raced.conf" --once 2>>"$T/raced.log"
check_eq "it succeeded" "$(last_status)" succeeded
check "races were read back" test "$(counts races skipped_fresh)" -gt 0
# (from the rows, or from the values their pages keep for the children)
check "entries were read back" test "$(( $(counts entries read_back) + $(counts entries from_fields) ))" -gt 0
asked() { echo $(($(counts results requests_304) + $(counts results requests_body))); }
# (each entry's splits were requested at the URL stored for them: a 304)
check_eq "every entry's splits were asked for again" "$(asked)" "$(sql 'select count(*) from entries')"
check_eq "and answered 304" "$(counts results requests_304)" "$(sql 'select count(*) from entries')"
exact "after skipped inputs"

# Without refresh every page is revalidated: the races' and entries' pages
# are answered 304 and their items read back.
config '/races/{races.id}/entries/{id}/splits'
check "a conditional import succeeds" "$RACED" --config "$T/raced.conf" --once 2>>"$T/raced.log"
check_eq "it succeeded" "$(last_status)" succeeded
check "entries' pages were answered 304" test "$(counts entries requests_304)" -gt 0
check_eq "every entry's splits were asked for again" "$(asked)" "$(sql 'select count(*) from entries')"
exact "after 304s"

# --- a typo'd field: one error, naming the nearest field --------------------
ended_errors() { sql "select count(*) from import_errors where import_id = (select max(id) from import_runs)"; }
typo() { # DESC URL WANT-IN-MESSAGE
	config "$2" 'missing_field_limit = 10'
	local rc=0
	timeout 60 "$RACED" --config "$T/raced.conf" --once 2>>"$T/raced.log" || rc=$?
	check "$1: raced --once reports the failure" test "$rc" -ne 0
	check_eq "$1: the import failed" "$(last_status)" failed
	check_eq "$1: one error" "$(ended_errors)" 1
	check_eq "$1: no results request was made" "$(asked)" 0
	local msg
	msg=$(sql "select stage || ': ' || message from import_errors where import_id = (select max(id) from import_runs)")
	case $msg in
	*"$3"*) echo "ok   $1: the error names the field and the nearest one" ;;
	*) fail "$1: error '$msg' does not say '$3'" ;;
	esac
}
typo "parent field" '/races/{races.id}/entries/{idd}/splits' \
	"results: url '/races/{races.id}/entries/{idd}/splits': none of the first 10 inputs' parent items has a string or number at '{idd}' (the nearest field they have is 'id'): [stage results] stops and the import fails"
typo "ancestor field" '/races/{races.idd}/entries/{id}/splits' \
	"none of the first 10 inputs' [stage races] items has a string or number at '{races.idd}' (the nearest field they have is 'id')"
typo "pointer" '/races/{races.id}/entries/{/ids}/splits' "at '{/ids}' (the nearest field they have is 'id')"

# Some items with the field, some without: an error each, as before.  The
# entries are read back (refresh) from rows whose even bibs are removed, so
# each race's first entry has one.
sql "update entries set payload = payload - 'bib' where (payload->>'bib')::int % 2 = 0" >/dev/null
lacking=$(sql "select count(*) from entries where not payload ? 'bib'")
config '/races/{races.id}/entries/{id}/splits?bib={bib}' 'missing_field_limit = 10' 'refresh = 1d'
"$RACED" --config "$T/raced.conf" --once 2>>"$T/raced.log" || true
check_eq "some parents without the field: the import is partial" "$(last_status)" partial
check_eq "an error for each of them" "$(ended_errors)" "$lacking"
check_eq "each names the field" \
	"$(sql "select count(*) from import_errors where import_id = (select max(id) from import_runs) and message like '%no field at ''{bib}''%'")" "$lacking"
check_eq "the others' splits were fetched" "$(counts results requests_body)" "$(sql "select count(*) from entries where payload ? 'bib'")"

# --- not an ancestor: --check-config ----------------------------------------
refused() { # DESC URL WANT
	config "$2"
	local rc=0 out
	out=$("$RACED" --check-config --config "$T/raced.conf" 2>&1) || rc=$?
	check_eq "$1: exit code" "$rc" 78
	check_eq "$1: message" "$out" "raced: $3"
}
line=$(grep -n '^\[stage results\]' "$T/raced.conf" | cut -d: -f1)
refused "a sibling stage" '/x/{athletes.id}' \
	"$T/raced.conf:$((line + 3)): [stage results] url: '{athletes.id}' names stage 'athletes', which is not an ancestor of [stage results]; its ancestors are: entries, races (a field of the parent item whose name has a dot is written as a pointer: {/athletes.id})"
refused "no such stage" '/x/{race.id}' \
	"$T/raced.conf:$((line + 3)): [stage results] url: '{race.id}' names no stage 'race', which is not an ancestor of [stage results]; its ancestors are: entries, races (a field of the parent item whose name has a dot is written as a pointer: {/race.id})"
refused "itself" '/x/{results.id}' \
	"$T/raced.conf:$((line + 3)): [stage results] url: '{results.id}' names stage 'results', which is not an ancestor of [stage results]; its ancestors are: entries, races (a field of the parent item whose name has a dot is written as a pointer: {/results.id})"
refused "no field after the dot" '/x/{races.}' \
	"$T/raced.conf:$((line + 3)): [stage results] url: a placeholder in '/x/{races.}' has a dot but no stage before it or no field after it (expected {stage.field} or {stage./json/pointer})"
