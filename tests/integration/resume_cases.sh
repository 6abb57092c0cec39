#!/usr/bin/env bash
# Resume (issue 20), the cases around the kill test (resume_killed.sh):
#  1. --resume with nothing to resume: a clear message, exit 1 (raced and
#     racectl);
#  2. SIGTERM mid-import, raced started again with resume = auto: the
#     import finishes under its id, import_runs has one row, the log names
#     the import resumed, racectl status says resumed (when) with the
#     DONE-BEFORE counts; nothing committed is fetched again;
#  3. --resume=ID of a succeeded import: refused naming its status;
#  4. PostgreSQL stopped for longer than [database] max_outage: the import
#     fails; PostgreSQL back; --resume: exact, nothing committed fetched
#     twice;
#  5. a killed import whose pipeline changed since (a stage's url changed,
#     a stage added, a stage removed): refused naming the stage and the fix;
#     with the configuration it began with it resumes;
#  6. raced's connection commits with synchronous_commit = on when the
#     server's default is off (a statement trigger records the setting of
#     the session that writes the rows).
. "$TESTS_DIR/lib/harness.sh"
. "$TESTS_DIR/integration/resume_lib.sh"

pg_start
sql "alter system set synchronous_commit = on" >/dev/null
sql "select pg_reload_conf()" >/dev/null
fixture_start --seed 21 --races 80 --entries-per-race 8 --athletes 300 --page-size 4 --latency-ms 20
resume_config
sed -i 's/^synchronous_commit = on$/synchronous_commit = on\nmax_outage = 2s/; s/^resume = no$/resume = auto/' "$T/raced.conf"

last_run() { sql 'select max(id) from import_runs'; }
status_of() { sql "select status from import_runs where id = $1"; }
# The URLs the run committed, then what the provider served so far; reset.
snapshot_and_reset() { # ID
	committed_urls "$1" "$T/committed"
	requests_json "$T/before.json"
	requested_paths "$T/before.json" "$T/before"
	curl -sf -X POST "$FIXTURE_URL/_reset" >/dev/null
}
check_no_committed_refetched() { # DESC
	requests_json "$T/after.json"
	requested_paths "$T/after.json" "$T/after"
	check_eq "$1: no URL committed before is requested again" "$(comm -12 "$T/committed" "$T/after" | wc -l)" 0
	local extra; extra=$(comm -12 "$T/before" "$T/after" | wc -l)
	echo "     $(wc -l <"$T/committed") URLs committed before; the resume requested $(wc -l <"$T/after"), $extra of them again (R7 bound $(r7_bound))"
	check "$1: URLs requested again within the R7 bound" test "$extra" -le "$(r7_bound)"
}

# ---- 1. nothing to resume ----------------------------------------------------
rc=0
"$RACED" --config "$T/raced.conf" --once --resume >"$T/nothing.log" 2>&1 || rc=$?
check_eq "raced --once --resume with nothing to resume: exit 1" "$rc" 1
check "and says there is nothing to resume" \
	grep -q "there is no interrupted import to resume: start a new one" "$T/nothing.log"
sed -i 's/^resume = auto$/resume = no/' "$T/raced.conf"
raced_start
rc=0
out=$(ctl start-import --resume 2>&1) || rc=$?
check_eq "racectl start-import --resume with nothing to resume: exit 1" "$rc" 1
check "and says so" grep -q "there is no interrupted import to resume" <<<"$out"
raced_stop
sed -i 's/^resume = no$/resume = auto/' "$T/raced.conf"

# ---- 2. SIGTERM, then resume = auto ------------------------------------------
raced_start
check "start-import" ctl start-import
wait_for "the import to reach 40% of its requests" 60 progress_at_least 40
id=$(last_run)
check "SIGTERM stops raced" raced_stop
mv "$T/raced.log" "$T/raced-stopped.log"
check_eq "the stopped import is interrupted" "$(status_of "$id")" interrupted
check "the stop landed mid-import" test "$(progress_pct)" -lt 100
snapshot_and_reset "$id"
raced_start
is_succeeded() { [ "$(status_of "$id")" = succeeded ]; }
wait_for "import $id to finish after the restart" 60 is_succeeded
check_eq "import_runs has one row" "$(sql 'select count(*) from import_runs')" 1
check_eq "resumed once" "$(sql "select resumes from import_runs where id = $id")" 1
check "resumed_at is set" test "$(sql "select resumed_at is not null from import_runs where id = $id")" = t
check "the start-up log names the import resumed" grep -q "resuming import $id (interrupted since" "$T/raced.log"
grep "resuming import" "$T/raced.log" | sed 's/^/     /'
done_before=$(sql "select sum(coalesce((value->>'skipped_done')::bigint, 0)) from jsonb_each((select counts from import_runs where id = $id))")
check "inputs were skipped as done" test "$done_before" -gt 0
out=$(ctl status "$id")
sed "s/^/     /" <<<"$out"
check "racectl status says it was resumed, and when" grep -qE "^resumed 1 time, last at .+; DONE-BEFORE counts" <<<"$out"
check "racectl status shows DONE-BEFORE" grep -q "DONE-BEFORE" <<<"$out"
check_tables_exact
check_no_committed_refetched "SIGTERM then resume = auto"
raced_stop

# ---- 3. --resume=ID of a succeeded import ------------------------------------
rc=0
"$RACED" --config "$T/raced.conf" --once --resume="$id" >"$T/succeeded.log" 2>&1 || rc=$?
check_eq "raced --once --resume=$id of a succeeded import: exit 1" "$rc" 1
check "and it names the status" grep -q "import $id ended 'succeeded'" "$T/succeeded.log"

# A new import from nothing for the next cases.
sql "truncate races, entries, athletes, raced_pages" >/dev/null
sql "delete from import_runs" >/dev/null
sed -i 's/^resume = auto$/resume = no/' "$T/raced.conf"

# ---- 4. PostgreSQL away longer than max_outage -------------------------------
curl -sf -X POST "$FIXTURE_URL/_reset" >/dev/null
"$RACED" --config "$T/raced.conf" --once >"$T/raced-outage.log" 2>&1 &
RACED_PID=$!
wait_for "the import to reach 40% of its requests" 60 progress_at_least 40
pg_cluster_stop
rc=0
wait "$RACED_PID" || rc=$?
RACED_PID=
check "the import fails when the database stays away past max_outage" test "$rc" -ne 0
grep -i "max_outage\|database" "$T/raced-outage.log" | tail -n 2 | sed 's/^/     /'
pg_cluster_start
id=$(last_run)
# The failure could not be written while the database was away: the run
# is left 'running' (or 'failed' and resumable, had the database come back
# in time); raced marks a run left running interrupted at start.
echo "     import $id is left '$(status_of "$id")' (resumable: $(sql "select resumable from import_runs where id = $id"))"
snapshot_and_reset "$id"
rc=0
"$RACED" --config "$T/raced.conf" --once --resume >"$T/raced.log" 2>&1 || rc=$?
check_eq "raced --once --resume after the outage exits 0" "$rc" 0
check_eq "the import finished under its id" "$(status_of "$id")" succeeded
check_eq "import_runs has one row" "$(sql 'select count(*) from import_runs')" 1
check_tables_exact
check_no_committed_refetched "database outage then --resume"

# ---- 5. the pipeline changed since the import began --------------------------
sql "truncate races, entries, athletes, raced_pages" >/dev/null
sql "delete from import_runs" >/dev/null
curl -sf -X POST "$FIXTURE_URL/_reset" >/dev/null
"$RACED" --config "$T/raced.conf" --once >"$T/raced-killed.log" 2>&1 &
RACED_PID=$!
wait_for "the import to reach 40% of its requests" 60 progress_at_least 40
kill -KILL "$RACED_PID"
wait "$RACED_PID" 2>/dev/null || true
RACED_PID=
id=$(last_run)
cp "$T/raced.conf" "$T/raced.conf.orig"
refused() { # DESC STAGE-REGEX
	local rc=0
	"$RACED" --config "$T/raced.conf" --once --resume >"$T/changed.log" 2>&1 || rc=$?
	check_eq "$1: exit 1" "$rc" 1
	check "$1: names the stage and the fix" \
		grep -qE "\[stage $2\] .* since import $id began: resume it with the configuration it began with, or start a new import \(racectl start-import, or --full\)" "$T/changed.log"
	grep -E "\[stage $2\]" "$T/changed.log" | head -n 1 | sed 's/^/     /'
	cp "$T/raced.conf.orig" "$T/raced.conf"
}
sed -i 's|^url = /races/{id}/entries$|url = /races/{id}/entries?x=1|' "$T/raced.conf"
refused "entries' url changed" entries
printf '%s\n' "" "[stage results]" "parent = races" "provider = main" \
	"url = /races/{id}/entries" "items = /data" "next = /next" "key = /id" >>"$T/raced.conf"
refused "a stage added" results
python3 - "$T/raced.conf" <<'PY'
import sys
p = sys.argv[1]
s = open(p).read()
open(p, 'w').write(s[:s.index('[stage athletes]')])
PY
refused "a stage removed" athletes
check_eq "the refused import is left as it was" "$(sql "select resumes from import_runs where id = $id")" 0
rc=0
"$RACED" --config "$T/raced.conf" --once --resume >"$T/raced.log" 2>&1 || rc=$?
check_eq "with its configuration it resumes: exit 0" "$rc" 0
check_eq "and finishes" "$(status_of "$id")" succeeded
check_tables_exact

# ---- 6. synchronous_commit = on whatever the server's default ----------------
sql "alter system set synchronous_commit = off" >/dev/null
sql "select pg_reload_conf()" >/dev/null
check_eq "the server's default is off" "$(sql 'show synchronous_commit')" off
sql "create table sc_seen (v text)" >/dev/null
sql "create function sc_note() returns trigger language plpgsql as
     \$\$ begin insert into sc_seen values (current_setting('synchronous_commit')); return null; end \$\$" >/dev/null
sql "create trigger sc_note after insert on races for each statement execute function sc_note()" >/dev/null
check "raced --once --full" "$RACED" --config "$T/raced.conf" --once --full 2>"$T/raced.log"
check_eq "raced's transactions ran with synchronous_commit = on" \
	"$(sql "select string_agg(distinct v, ',') from sc_seen")" on
