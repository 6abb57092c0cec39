#!/usr/bin/env bash
# raced killed with SIGKILL at about PCT % of an import (the argument),
# then `raced --once --resume` (issue 20): the tables equal the data
# served; the resumed run requests no URL whose work was committed before
# the kill (raced_pages rows with seen_import = the run, read after the
# kill); and the URLs it requests again (requested before the kill and in
# the resume: work in flight at the kill) are at most the R7 bound
# computed from the configuration (resume_lib.sh, r7_bound); the edges
# (athletes_parents) are the relation served.
. "$TESTS_DIR/lib/harness.sh"
. "$TESTS_DIR/integration/resume_lib.sh"
. "$TESTS_DIR/integration/edges_lib.sh"
PCT=${1:?usage: resume_killed.sh PCT}

pg_start
sql "alter system set synchronous_commit = on" >/dev/null
sql "select pg_reload_conf()" >/dev/null
# ~130 races of ~10 entries, pages of 5, athletes on their own URL: about
# 800 requests, stretched by latency so the kill lands where it is aimed
# (40 ms: at 20 the polling under a loaded machine overshot by 10 %+ once
# the store read inputs' state in batches and the import sped up).
fixture_start --seed 20 --races 130 --entries-per-race 10 --athletes 400 --page-size 5 --latency-ms 40
resume_config
need=$(json_get "$(fixture_get /_dataset)" requests_needed)
echo "     the import needs $need requests; kill at ${PCT}%"

"$RACED" --config "$T/raced.conf" --once >"$T/raced-killed.log" 2>&1 &
RACED_PID=$!
wait_for "the import to reach ${PCT}% of its requests" 120 progress_at_least "$PCT"
kill -KILL "$RACED_PID"
wait "$RACED_PID" 2>/dev/null || true
RACED_PID=
at=$(progress_pct)
echo "     killed at ${at}% of the requests"
check "the kill landed near ${PCT}% and before the end" test "$at" -lt "$((PCT + 10 < 99 ? PCT + 10 : 99))"
check_eq "the killed run is left running" "$(sql 'select status from import_runs where id = 1')" running

requests_json "$T/before.json"
committed_urls 1 "$T/committed"
requested_paths "$T/before.json" "$T/before"
curl -sf -X POST "$FIXTURE_URL/_reset" >/dev/null
check "the provider's counts are reset" test "$(json_get "$(fixture_get /_stats)" requests)" = 0
echo "     before the kill: $(wc -l <"$T/before") URLs requested, $(wc -l <"$T/committed") recorded committed"

rc=0
"$RACED" --config "$T/raced.conf" --once --resume >"$T/raced.log" 2>&1 || rc=$?
check_eq "raced --once --resume exits 0" "$rc" 0
check "it says which import it resumed" grep -q "resuming import 1 (interrupted since" "$T/raced.log"
check_eq "the import finished under its id" "$(sql 'select status from import_runs where id = 1')" succeeded
check_eq "import_runs has one run" "$(sql 'select count(*) from import_runs')" 1
check_eq "resumed once" "$(sql 'select resumes from import_runs where id = 1')" 1
check_tables_exact
# Links ride the batches: the ones committed before the kill stay, the
# resume re-sends every parent's (issue 16).
check_edges_exact "after the resume"
# An athlete done before the kill is skipped with its state, whose pages
# give its keys: its parents' link records carry them, none goes by URL
# (each probing raced_pages: about 5 times the statement's time).
check_eq "the resume's link records all carry their keys (none by URL)" \
	"$(sql "select coalesce(counts->'athletes'->>'links_by_url', 'none') from import_runs where id = 1")" 0

requests_json "$T/after.json"
requested_paths "$T/after.json" "$T/after"
refetched_committed=$(comm -12 "$T/committed" "$T/after" | wc -l)
comm -12 "$T/committed" "$T/after" | head -5 | sed 's/^/     committed, fetched again: /'
check_eq "no URL committed before the kill is requested again" "$refetched_committed" 0
extra=$(comm -12 "$T/before" "$T/after" | wc -l)
bound=$(r7_bound)
echo "     resume: $(wc -l <"$T/after") URLs requested, $extra of them requested before the kill too (R7 bound $bound)"
check "the URLs requested again are within the R7 bound" test "$extra" -le "$bound"
check_eq "each URL is requested once by the resume" \
	"$(sql "select coalesce(max((value->>'requests')::int), 0) from jsonb_each(pg_read_file('$T/after.json')::jsonb->'urls')")" 1
