#!/usr/bin/env bash
# Items that share a key (issue 14, item 5): with `key = /race_id` on
# entries, every entry of a race has its race's key, so each race is one
# row.  counts.stored is the rows the import wrote (not the items sent),
# counts.shared_keys the items whose key another item had, and the log
# says so, naming the setting.
. "$TESTS_DIR/lib/harness.sh"

pg_start
fixture_start --seed 7 --races 12 --entries-per-race 6 --athletes 30 --page-size 4
write_config
# entries keyed by their race: shared keys; and no athletes stage.
sed -i -e '/^\[stage athletes\]/,$d' "$T/raced.conf"
awk '/^\[stage entries\]/{e=1} e && /^key = /{$0="key = /race_id"; e=0} {print}' "$T/raced.conf" >"$T/c" &&
	mv "$T/c" "$T/raced.conf"
check "raced --once succeeds" "$RACED" --config "$T/raced.conf" --once 2>"$T/raced.log"

entries=$(json_get "$(fixture_get /_dataset)" entries)
with_entries=$(( $(json_get "$(fixture_get /_dataset)" races) - $(json_get "$(fixture_get /_dataset)" races_without_entries) ))
check_eq "one row a race with entries" "$(sql 'select count(*) from entries')" "$with_entries"
check_eq "counts.entries.stored is the rows written" \
	"$(sql "select counts->'entries'->>'stored' from import_runs where id = 1")" "$with_entries"
check_eq "counts.entries.shared_keys is the items folded" \
	"$(sql "select counts->'entries'->>'shared_keys' from import_runs where id = 1")" "$((entries - with_entries))"
check_eq "counts.entries.fetched is every item" \
	"$(sql "select counts->'entries'->>'fetched' from import_runs where id = 1")" "$entries"
check_eq "races share no key" "$(sql "select counts->'races'->>'shared_keys' from import_runs where id = 1")" 0
check "the log names the stage and the setting" \
	grep -qE "\[stage entries\] $((entries - with_entries)) items had a key another item of this import had too: .*key = setting" "$T/raced.log"
