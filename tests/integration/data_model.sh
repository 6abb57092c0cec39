#!/usr/bin/env bash
# docs/data-model.md, run (issue 16 item 6): every ```sql block of it runs
# against a real import of two providers (the fixture twice: main, and
# other serving fewer athletes under another seed) with the pipeline the
# document shows, and prints exactly the ```text block that follows it
# (psql's unaligned output: columns split by ' | ', a header line, no
# footer).  Also: every table, view and column raced made has a comment,
# and every table and column is named in the document.
# DATA_MODEL_PRINT=1 prints what each block gives instead of checking.
. "$TESTS_DIR/lib/harness.sh"

DOC="$TESTS_DIR/../docs/data-model.md"
pg_start
fixture_start --seed 3 --races 4 --entries-per-race 5 --athletes 8 --page-size 2
"$FIXTURE" --port-file "$T/other.port" --seed 4 --races 1 --entries-per-race 1 --athletes 6 \
	>"$T/fixture-other.log" 2>&1 &
OTHER_PID=$!
trap 'rc=$?; kill $OTHER_PID 2>/dev/null; (exit $rc); harness_cleanup' EXIT
wait_for "the second fixture to listen" 10 test -s "$T/other.port"
write_config "" "[provider other]" "base_url = http://127.0.0.1:$(cat "$T/other.port")" \
	"max_connections = 4" "" "[stage profiles]" "parent = entries" "provider = other" \
	"url = /athletes/{athlete_id}" "items =" "key = /id" "dedupe = yes"
# entries' typed columns, as the document's pipeline shows them
sed -i 's|^url = /races/{id}/entries$|&\ncolumns = bib int /bib, athlete_id text /athlete_id\nindex = athlete_id|' "$T/raced.conf"
check "entries has typed columns in the config" grep -q '^columns = bib int /bib' "$T/raced.conf"
"$RACED" --config "$T/raced.conf" --once 2>>"$T/raced.log" || true
check_eq "the import is partial: other serves fewer athletes" \
	"$(sql 'select status from import_runs where id = 1')" partial

# The blocks: NNN.sql and, when one follows, NNN.out (expected output).
python3 - "$DOC" "$T/blocks" <<'PY'
import os, re, sys
doc, out = sys.argv[1], sys.argv[2]
os.makedirs(out, exist_ok=True)
lines = open(doc, encoding="utf-8").read().split("\n")
blocks, i = [], 0
while i < len(lines):
    m = re.match(r"^```(\w*)\s*$", lines[i])
    if not m:
        i += 1
        continue
    j = i + 1
    while j < len(lines) and lines[j] != "```":
        j += 1
    blocks.append((m.group(1), i + 1, "\n".join(lines[i + 1:j])))
    i = j + 1
n = 0
for k, (tag, line, text) in enumerate(blocks):
    if tag != "sql":
        continue
    n += 1
    base = os.path.join(out, "%03d" % n)
    open(base + ".sql", "w").write(text + "\n")
    open(base + ".where", "w").write("%s:%d" % (doc, line))
    if k + 1 < len(blocks) and blocks[k + 1][0] == "text":
        open(base + ".out", "w").write(blocks[k + 1][2] + "\n")
PY
n=0
for f in "$T"/blocks/*.sql; do
	base=${f%.sql}
	where=$(cat "$base.where")
	"$PG_BIN/psql" -X -A -F ' | ' -P footer=off -v ON_ERROR_STOP=1 -f "$f" >"$base.got" 2>&1 ||
		fail "$where: the query fails: $(cat "$base.got")"
	if [ -n "${DATA_MODEL_PRINT:-}" ]; then
		echo "---- $where"; cat "$base.got"
		continue
	fi
	[ -f "$base.out" ] || fail "$where: a sql block without the text block of its output after it"
	diff -u "$base.out" "$base.got" >&2 || fail "$where: the output differs from the document's"
	echo "ok   $where"
	n=$((n + 1))
done
check "the document has queries" test "$n" -ge 5 -o -n "${DATA_MODEL_PRINT:-}"

# Every table, view and column raced made has a comment; every table and
# column raced made is named in the document.
objs="relname in ('import_runs', 'import_errors', 'raced_pages', 'raced_schema_version',
      'races', 'entries', 'athletes', 'profiles', 'athletes_parents', 'profiles_parents')
      or obj_description(c.oid, 'pg_class') like 'raced: %'"
check_eq "no table or view without a comment" \
	"$(sql "select coalesce(string_agg(relname, ' '), '') from pg_class c where ($objs) and obj_description(c.oid, 'pg_class') is null")" ""
check_eq "no column without a comment" \
	"$(sql "select coalesce(string_agg(relname || '.' || attname, ' '), '') from pg_class c join pg_attribute a on a.attrelid = c.oid
	        where ($objs) and a.attnum > 0 and not a.attisdropped and col_description(c.oid, a.attnum) is null")" ""
for t in import_runs import_errors raced_pages raced_schema_version races athletes_parents; do
	for col in $(sql "select attname from pg_attribute where attrelid = '$t'::regclass and attnum > 0 and not attisdropped"); do
		grep -q "\`$col\`" "$DOC" || fail "docs/data-model.md does not name column $col of $t"
	done
	grep -q "\`$t\`" "$DOC" || fail "docs/data-model.md does not name table $t"
done
echo "all data-model checks passed"
