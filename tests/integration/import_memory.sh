#!/usr/bin/env bash
# Memory in bytes (issue 14): pages of tiny items, eight at once, read
# within [daemon] memory_limit: raced's peak RSS stays under the limit +
# 10 % above its baseline, the import is exact, RSS falls back when idle,
# and a page that could never be read within the limit fails for good
# naming memory_limit.  The sizes are small so that it runs in seconds;
# MEM_PAGE, MEM_LIMIT (empty: no memory_limit line, for a build without
# it) and MEM_MEASURE=1 (print the figures, assert only exactness) make it
# the measurement of docs/performance.md, "Memory in bytes" (MEM_WAIT:
# seconds the import may take).
. "$TESTS_DIR/lib/harness.sh"

races=8
page=${MEM_PAGE:-1048576}          # 1 MiB of tiny items a race
limit=${MEM_LIMIT-32MiB}
measure=${MEM_MEASURE:-0}

to_bytes() { numfmt --from=iec-i "${1%B}"; }
kib() { awk -v k="$1" '$1 == k":" {print $2}' "/proc/$RACED_PID/status"; }

# The harness's pipeline without athletes (tiny items name none), with the
# limit and room for the largest pages.
config() {
	write_config
	sed -i -e '/^\[stage athletes\]/,$d' \
		-e "s|^admin_group = root|&\n${limit:+memory_limit = $limit}|" \
		-e 's|^base_url = .*|&\nmax_body = 64MiB|' -e 's|^timeout = 5s|timeout = 30s|' "$T/raced.conf"
}

run_ended() { [ "$(sql "select status from import_runs where id = $1")" != running ]; }

pg_start
fixture_start --seed 5 --races $races --entries-per-race 3 --page-size 100 --tiny-items-page "$page"
config
raced_start
tables_made() { [ "$(sql "select to_regclass('entries') is not null")" = t ]; }
wait_for "raced to create the stage tables" 30 tables_made
base_kib=$(kib VmRSS)

check "start-import" ctl start-import
wait_for "the import to end" "${MEM_WAIT:-120}" run_ended 1
peak_kib=$(kib VmHWM)
expected=0
for r in $(seq 1 $races); do
	n=$(fixture_get "/races/$r/entries" | grep -o '{"id"' | wc -l)
	expected=$((expected + n))
done
check_eq "the run succeeded" "$(sql 'select status from import_runs where id = 1')" succeeded
check_eq "every tiny item stored, once" "$(sql 'select count(*) from entries')" "$expected"
# Idle: RSS falls back (malloc_trim once the charge falls).  The run's
# status is committed before raced is done with it (the finish's index
# build and the counts read follow, then the import is freed): poll.
idle_within() { [ "$(kib VmRSS)" -le $((base_kib * 11 / 10)) ]; }
if [ "$measure" != 1 ] && [ "${SANITIZED:-none}" = none ]; then
	wait_for "raced's RSS to fall back once idle (within 10% of ${base_kib} KiB)" 20 idle_within
fi
idle_kib=$(kib VmRSS)
echo "     pages: $races x $page bytes, $expected items; memory_limit ${limit:-unset}"
echo "     RSS baseline ${base_kib} KiB, peak (VmHWM) ${peak_kib} KiB, idle ${idle_kib} KiB"
if [ "$measure" = 1 ]; then
	raced_stop
	exit 0
fi
limit_kib=$(( $(to_bytes "$limit") / 1024 ))
if [ "${SANITIZED:-none}" != none ]; then
	echo "     (no RSS bounds under AddressSanitizer: its quarantine keeps freed memory)"
else
	check "peak RSS within memory_limit + 10% above the baseline ($((peak_kib - base_kib)) <= $((limit_kib * 11 / 10)) KiB)" \
		test $((peak_kib - base_kib)) -le $((limit_kib * 11 / 10))
	check "idle RSS within 10% of the baseline ($idle_kib <= $((base_kib * 11 / 10)) KiB)" \
		test "$idle_kib" -le $((base_kib * 11 / 10))
fi

# A page whose reading could never fit the limit fails for good, naming
# the setting and the URL; the run ends partial, the other pages stored.
raced_stop
fixture_stop
fixture_start --seed 5 --races 1 --entries-per-race 3 --page-size 100 --tiny-items-page $((limit_kib * 1024 / 4))
config
raced_start
check "start-import" ctl start-import
wait_for "the second import to end" 120 run_ended 2
check_eq "the run is partial" "$(sql 'select status from import_runs where id = 2')" partial
msg=$(sql "select message from import_errors where import_id = 2")
echo "     $msg"
check "the error names memory_limit" grep -q "setting 'memory_limit' of \[daemon\]" <<<"$msg"
check "the error names the URL" grep -q "/races/1/entries" <<<"$msg"
check_eq "it was asked for once (not retried)" "$(json_get "$(fixture_get /_stats)" requests)" 2
raced_stop
