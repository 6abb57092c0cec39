# edges_lib.sh — the relation races -> entries -> athletes three ways
# (source after harness.sh), each as "rows|md5 of the sorted rows":
#   edges_served   what the fixture serves: every entry's race and athlete
#   edges_joined   the join by keys alone, through athletes_parents
#   edges_viewed   the path view races_entries_athletes
#   check_edges_exact LABEL   the three agree (current items)

edges_served() {
	fixture_get /_dump/entries >"$T/served-entries.json"
	sql "select count(*) || '|' || md5(string_agg(r || ' ' || e || ' ' || a, ',' order by r, e, a)) from (
	       select d->>'race_id' r, d->>'id' e, d->>'athlete_id' a
	       from jsonb_array_elements(pg_read_file('$T/served-entries.json')::jsonb) d) s"
}

edges_joined() {
	sql "select count(*) || '|' || md5(string_agg(r || ' ' || e || ' ' || a, ',' order by r, e, a)) from (
	       select r.key r, e.key e, a.key a from races r
	       join entries e on e.parent_key = r.key
	       join athletes_parents l on l.parent_key = e.key
	       join athletes a on a.key = l.key
	       where r.removed_import is null and e.removed_import is null and a.removed_import is null) s"
}

edges_viewed() {
	sql "select count(*) || '|' || md5(string_agg(r || ' ' || e || ' ' || a, ',' order by r, e, a)) from (
	       select races_key r, entries_key e, athletes_key a from races_entries_athletes) s"
}

check_edges_exact() {
	local want
	want=$(edges_served)
	check_eq "$1: the join by keys is the relation served" "$(edges_joined)" "$want"
	check_eq "$1: the path view returns the same" "$(edges_viewed)" "$want"
	check_eq "$1: one link per current entry" \
		"$(sql "select count(*) from athletes_parents l join entries e on e.key = l.parent_key where e.removed_import is null")" \
		"$(sql "select count(*) from entries where removed_import is null")"
}
