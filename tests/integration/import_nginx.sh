#!/usr/bin/env bash
# Incremental imports from nginx serving the fixture's data set as static
# files (issue 15): the first import stores what is served; the second is
# all 304 and writes no stage row; after a change re-exported, the next
# import fetches only the changed files with a body and writes only the
# changed rows.  Skipped (77) only where nginx is not installed.
. "$TESTS_DIR/lib/harness.sh"
. "$TESTS_DIR/lib/nginx.sh"
. "$TESTS_DIR/integration/incremental_lib.sh"
nginx_require
nginx_stop_at_exit

ARGS=(--seed 7 --races 23 --entries-per-race 12 --athletes 40 --page-size 5)
MUT='change_athletes=10&add_entries=3:2&remove_entries=5&at=2026-06-01T00:00:00Z'
W=$T/www
"$FIXTURE" "${ARGS[@]}" --export "$W" >/dev/null
nginx_start "$W"
# The fixture serves the same data set: its /_dump is what the files hold.
fixture_start "${ARGS[@]}"
pg_start
write_config
sed -i "s|^base_url = .*|base_url = $NGINX_URL|; s|^url = /races$|url = /races.json|;
	s|^url = /races/{id}/entries$|url = /races/{id}/entries.json|;
	s|^url = /athletes/{athlete_id}$|url = /athletes/{athlete_id}.json|" "$T/raced.conf"

# The access log's lines since MARK, as "STATUS PATH".
ALOG() { echo "$NGINX_DIR/access.log"; }
mark() { wc -l <"$(ALOG)"; }
since() { tail -n +"$(($1 + 1))" "$(ALOG)" | awk '{print $9, $7}'; }

check "first import from nginx succeeds" raced_once
check_tables_served "nginx, first import"
w0=$(writes)
m=$(mark)
check "unchanged second import succeeds" raced_once
since "$m" >"$T/second.txt"
check "it made requests" test -s "$T/second.txt"
check_eq "every request answered 304" "$(grep -vc '^304 ' "$T/second.txt" || true)" 0
check_eq "zero stage-row writes" "$(writes)" "$w0"
check_tables_served "nginx, unchanged import"

# A change, re-exported: only the changed files are rewritten.
sleep 1.1 # nginx's ETag holds the mtime in seconds: a rewrite must show
"$FIXTURE" "${ARGS[@]}" --mutate "$MUT" --export "$W" >/dev/null
curl -sf -X POST "$FIXTURE_URL/_mutate?$MUT" >"$T/mutate.json"
changed_files=$(find "$W" -type f -newer "$T/second.txt" -printf '/%P\n' | sort)
check "some files changed" test -n "$changed_files"
w0=$(writes)
m=$(mark)
check "import after the change succeeds" raced_once
N=$(last_run)
since "$m" >"$T/third.txt"
bodies=$(awk '$1 == 200 {print $2}' "$T/third.txt" | sort)
for u in $bodies; do
	check "a body only for a changed file: $u" grep -qxF "$u" <<<"$changed_files"
done
for f in $changed_files; do
	if grep -q " $f\$" "$T/third.txt"; then
		check_eq "a changed file requested is fetched with a body: $f" "$(grep " $f\$" "$T/third.txt" | cut -d' ' -f1 | sort -u)" 200
	fi
done
check_eq "no other status than 200 and 304" "$(awk '$1 != 200 && $1 != 304' "$T/third.txt" | wc -l)" 0
check_tables_served "nginx, after the change"
expect_w=$(sql "select (select count(*) from races where last_import = $N) + (select count(*) from entries where last_import = $N or removed_import = $N) + (select count(*) from athletes where last_import = $N or removed_import = $N)")
check_eq "stage-row writes = rows written + rows marked removed" "$(($(writes) - w0))" "$expect_w"
check_eq "race 5's entries are marked removed" \
	"$(sql "select count(*) from entries where parent_key = '5' and removed_import is null")" 0
nginx_stop
echo "all nginx import checks passed"
