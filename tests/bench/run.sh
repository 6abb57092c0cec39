#!/usr/bin/env bash
# run.sh — how fast raced is, and how close to the limit, in one run.
#
#   tests/bench/run.sh [--races N] [--entries-per-race N] [--athletes N]
#                      [--page-size N] [--seed N] [--connections C]
#                      [--duration S] [--scale K] [--latency-ms MS]
#                      [--latency-c "8 32 128"] [--corunner "10 20 30 45"]
#                      [--e2e-latency-ms MS] [--parts "1 2 3 4 5 6 7 8 9 10 11 12 13 14"]
#                      [--soak-imports N] [--adaptive-n "8 32 128"]
#                      [--adaptive-latency-ms MS] [--results DIR]
#
# Also `meson test -C build --benchmark raced-bench -v` (a benchmark(), never
# a test).  It generates a data set with the fixture provider on loopback and
# measures, one after another on this machine:
#
#   1 the limit: wrk, one thread, C connections, replaying the fixture's
#     /_urls (every URL an import fetches once) — requests/s;
#   2 raced --once fetch-only ([database] discard = yes) — requests/s, and
#     its ratio to 1 (target >= 0.8);
#   3 raced --once end to end into a throwaway PostgreSQL — items/s, and its
#     ratio to 2 (target >= 0.65) and to its CPU bound (target >= 0.9, see
#     "where the time goes" below); [database] connections =
#     $BENCH_DB_CONNECTIONS (default 1);
#   4 raced's peak RSS (end to end) at this size and at --scale times the
#     items (races and athletes scaled), and their ratio;
#   5 with --latency-ms of provider latency, fetch-only requests/s at
#     concurrency C against the Little's-law ceiling C / latency, for each C
#     of --latency-c (max_connections = C, entries and athletes concurrency =
#     C; the data set is sized so each run lasts about 3 s at the ceiling);
#   6 fetch-only again beside corunner, a process that keeps one CPU busy
#     for S % of the time, for each S of --corunner: what a third process
#     alone (as PostgreSQL is in 3) does to the rate — its ratio to 2;
#   7 fetch-only and end to end again with --e2e-latency-ms of provider
#     latency (so the CPUs are not what limits them): end to end's items/s
#     against fetch-only's at that latency, whether the store keeps up;
#  10 incremental re-imports (issue 15): for each of three set-ups — the
#     fixture sending no validators, sending both (ETag and
#     Last-Modified), and both with `refresh = 1h` on athletes — a full
#     import into an empty database, a second import of the unchanged
#     data, and a third after 1 % of the athletes changed (/_mutate); for
#     each, requests with a body, bytes received (import_runs.counts),
#     stage rows written (pg_stat_user_tables n_tup_ins + n_tup_upd),
#     wall time and PostgreSQL CPU time, as ratios to the full import,
#     and raced's CPU time against fetch-only's; and the fetch-only time
#     of the same data (discard = yes) for the unchanged import's target
#     (<= 1.1 x fetch-only); with BENCH_PG_STATEMENTS=1 in the
#     environment, also each import's statements by total time
#     (pg_stat_statements) in incr-statements-SETUP-IMPORT.txt;
#   8 the soak (tests/bench/soak.sh, its own fixture, PostgreSQL and one
#     raced): --soak-imports imports (default 200) back to back with
#     control clients and a reload between two; RSS, fds, PostgreSQL and
#     provider connections after the last import against after the first
#     (fds and connections equal, RSS within 10 %);
#  12 typed columns (issue 16): end to end into a fresh database, entries
#     with three typed columns (bib int, race_id int, athlete_id text) and
#     an index on athlete_id, as raced fills them (`columns =`) and as
#     PostgreSQL generated columns (the table made beforehand), against
#     the same import without them, three rounds in rotated order: items/s and
#     PostgreSQL's and raced's CPU seconds, as ratios to the plain run
#     (target: items/s >= 0.9 x plain);
#  13 HTTPS and HTTP/2 (issue 17): the data set exported as static files
#     and served by nginx over TLS with a throwaway CA (openssl): wrk over
#     HTTPS, then raced fetch-only over HTTPS with http_version = 1.1 and
#     auto (HTTP/2): requests/s and the ratio to wrk (target >= 0.8), CPU
#     of the client and of nginx, connections opened (TLS handshakes),
#     TLS sessions resumed and answers over HTTP/2 (nginx's access log);
#     in tls.txt.  Skipped where nginx or openssl is missing;
#   9 resume: end to end with --e2e-latency-ms, killed (SIGKILL) at half its
#     requests and resumed (raced --once --resume): the resumed run's
#     requests over the URLs the killed run had not committed (<= 1.02), and
#     the wall time to the kill plus the resume's over the import
#     uninterrupted (<= 1.1; the quicker of two, one before, one after).
#  14 nginx as the provider: the data set exported as static files
#     (fixture-provider --export) and served by nginx (tests/lib/nginx.sh);
#     1, 2 and 3 against it: wrk's rate, fetch-only's ratio to it (target
#     >= 0.8), end to end's ratio to fetch-only (>= 0.65) and to its CPU
#     bound (>= 0.9).  Skipped where nginx is not installed.
#
# Where the time goes (tests/lib/bench.sh; every raced --once run and
# wrk run of parts 1-7, 9, 10, 12 and 14; not 8's or 11's): for each run,
# the CPU ms per 1,000 items of raced (or wrk), PostgreSQL (the
# postmaster and all its children, own and reaped) and the provider (the
# fixture, or nginx's master and worker), and the rest of the machine's
# busy time; the CPU bound = the items/s that nproc CPUs doing nothing
# but those three would allow, and the rate's ratio to it; the machine's
# idle share; the share of a CPU raced and PostgreSQL used.  A ratio to
# the bound well below 1 with idle CPU is waiting, or raced's one thread
# at 100 %; without idle CPU, the "other" CPU.  In cpu.txt and the
# summary.
#  11 adaptive concurrency (issue 18): against the fixture's --capacity N
#     (N served at once at --adaptive-latency-ms, default 200, the rest wait
#     in a FIFO; each run sized for about 40 s at N / latency)
#     for each N of --adaptive-n, fetch-only with max_connections = auto
#     (ceiling 256) against max_connections = N (both with stage
#     concurrency 256, so that demand is never what limits): the settled
#     limit (the median of the second half of the run's samples of
#     racectl stats, every 0.25 s) over N, the request rate over the fixed
#     one's (target >= 0.9), and the fraction of 429/503 answers (target
#     <= 1 %); the limit over time in adaptive.dat and adaptive.png, the
#     controller's line per window in adaptive-N.log.
#
# --parts runs only the parts listed (4 includes 3's run at 1x, which is its
# reference); a ratio whose reference part did not run shows "-".
# Prints a table of ratios; writes it, the raw figures, latency.png (a
# gnuplot plot of 5) and soak.txt / soak.dat (8) to --results (default
# tests/bench/results/); exits 1 when the soak's figures are off.  Needs
# wrk, jq, gnuplot and PostgreSQL; RACED and FIXTURE name the binaries
# (default: build/daemon/raced, build/tests/fixture/fixture-provider), and
# CORUNNER the co-runner (default build/tests/bench/corunner); the soak
# also RACECTL and CTL_ABUSE (build/ctl/racectl,
# build/tests/integration/ctl_abuse).
# Only ratios measured in the same run mean anything: nothing here is a
# timed test.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
RACED=${RACED:-$src/build/daemon/raced}
FIXTURE=${FIXTURE:-$src/build/tests/fixture/fixture-provider}
CORUNNER=${CORUNNER:-$src/build/tests/bench/corunner}

races=2000 per_race=50 athletes=40000 page_size=50 seed=1
conns=32 duration=10 scale=10 latency_ms=10 latency_c="8 32 128" corunner="10 20 30 45"
e2e_latency_ms=2 parts="1 2 3 4 5 6 7 8 9 10 11 12 13 14" soak_imports=200
adaptive_n="8 32 128" adaptive_latency_ms=200
RACECTL=${RACECTL:-$src/build/ctl/racectl}
results=$here/results

usage() { sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
	case $1 in
	--races) races=$2; shift 2 ;;
	--entries-per-race) per_race=$2; shift 2 ;;
	--athletes) athletes=$2; shift 2 ;;
	--page-size) page_size=$2; shift 2 ;;
	--seed) seed=$2; shift 2 ;;
	--connections) conns=$2; shift 2 ;;
	--duration) duration=$2; shift 2 ;;
	--scale) scale=$2; shift 2 ;;
	--latency-ms) latency_ms=$2; shift 2 ;;
	--latency-c) latency_c=$2; shift 2 ;;
	--corunner) corunner=$2; shift 2 ;;
	--e2e-latency-ms) e2e_latency_ms=$2; shift 2 ;;
	--parts) parts=$2; shift 2 ;;
	--soak-imports) soak_imports=$2; shift 2 ;;
	--adaptive-n) adaptive_n=$2; shift 2 ;;
	--adaptive-latency-ms) adaptive_latency_ms=$2; shift 2 ;;
	--results) results=$2; shift 2 ;;
	-h|--help) usage; exit 0 ;;
	*) echo "run.sh: unknown option '$1'" >&2; usage >&2; exit 2 ;;
	esac
done
for tool in wrk jq gnuplot; do
	command -v $tool >/dev/null || { echo "run.sh: $tool is not installed" >&2; exit 1; }
done
[ -x "$RACED" ] && [ -x "$FIXTURE" ] && [ -x "$CORUNNER" ] ||
	{ echo "run.sh: build first (RACED=$RACED, FIXTURE=$FIXTURE, CORUNNER=$CORUNNER)" >&2; exit 1; }
. "$src/tests/lib/pgcluster.sh"
. "$src/tests/lib/nginx.sh"

mkdir -p "$results"
results=$(cd "$results" && pwd)
T=$(mktemp -d /tmp/raced-bench.XXXXXX)
chmod 755 "$T"
FIXTURE_PID= CORUNNER_PID=
. "$src/tests/lib/bench.sh"
cleanup() {
	local rc=$?
	[ -n "$FIXTURE_PID" ] && kill "$FIXTURE_PID" 2>/dev/null || true
	[ -n "$CORUNNER_PID" ] && kill "$CORUNNER_PID" 2>/dev/null || true
	nginx_stop 2>/dev/null || true
	[ -n "${PG_DIR:-}" ] && { pg_cluster_stop 2>/dev/null || true; }
	if [ $rc -ne 0 ]; then
		for f in "$T"/*.log; do [ -f "$f" ] && { echo "---- $f"; tail -n 20 "$f"; } >&2; done
	fi
	rm -rf "$T"
	exit $rc
}
trap cleanup EXIT

say() { printf '# %s\n' "$*" >&2; }

# raced.conf: CONNINFO|discard, max_connections, concurrency (entries and
# athletes), and optionally athletes' refresh (part 10).  Throughput
# settings: large demands and batches, no rate limit.
write_config() { # FILE DB MAXCONN CONC [REFRESH]
	local db
	if [ "$2" = discard ]; then db="discard = yes"; else db="conninfo = $2
connections = ${BENCH_DB_CONNECTIONS:-1}"; fi
	cat >"$1" <<CONF
[daemon]
control_socket = $T/raced.sock
admin_group = root

[database]
$db
batch_size = 1000

[provider main]
base_url = $URL
max_connections = $3
rate_limit = 0
timeout = 30s

[stage races]
provider = main
url = /races
items = /data
next = /next
key = /id
max_demand = 1000

[stage entries]
parent = races
provider = main
url = /races/{id}/entries
items = /data
next = /next
key = /id
concurrency = $4
max_demand = 2000

[stage athletes]
parent = entries
provider = main
url = /athletes/{athlete_id}
items =
key = /id
dedupe = yes
concurrency = $4
max_demand = 2000
CONF
	[ -z "${5:-}" ] || echo "refresh = $5" >>"$1"
}

# Run raced --once; sets SECS (wall), RSS_KIB (peak), CPU_S (user+sys),
# REQUESTS (served), and CPU_PROV, CPU_PG, CPU_BUSY (cpu_end, bench.sh).
# Against nginx ($PROVIDER = nginx) the requests are its access log's new
# lines.
run_raced() { # CONF LOG
	local t0 t1 alog0=0
	if [ "$PROVIDER" = nginx ]; then alog0=$(wc -l <"$NGINX_DIR/access.log"); else reset; fi
	cpu_begin
	t0=$(date +%s%N)
	/usr/bin/time -f 'maxrss_kib %M cpu_s %U %S' -o "$T/time.out" "$RACED" --config "$1" --once 2>"$2" || {
		echo "run.sh: raced --once failed" >&2; tail -n 20 "$2" >&2; exit 1; }
	t1=$(date +%s%N)
	cpu_end
	SECS=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')
	RSS_KIB=$(awk '/^maxrss_kib/ { print $2 }' "$T/time.out")
	CPU_S=$(awk '/^maxrss_kib/ { printf "%.2f", $4 + $5 }' "$T/time.out")
	local errors
	if [ "$PROVIDER" = nginx ]; then
		# nginx logs a request as it finishes it: wait until the count holds.
		local n0=-1 _
		for _ in $(seq 40); do
			REQUESTS=$(( $(wc -l <"$NGINX_DIR/access.log") - alog0 ))
			[ "$REQUESTS" = "$n0" ] && break
			n0=$REQUESTS
			sleep 0.05
		done
		errors=$(tail -n +$((alog0 + 1)) "$NGINX_DIR/access.log" | awk '$9 != 200 && $9 != 304' | wc -l)
	else
		REQUESTS=$(get /_stats | jq .requests)
		errors=$(get /_stats | jq '[.by_status | to_entries[] | select(.key != "200" and .key != "304") | .value] | add // 0')
	fi
	[ "$errors" = 0 ] || { echo "run.sh: $errors requests were not 200 or 304" >&2; exit 1; }
}

check_stored() {
	local stored
	stored=$(pg_cluster_psql "select (select count(*) from races) + (select count(*) from entries) + (select count(*) from athletes)")
	[ "$stored" = "$n_items" ] || { echo "run.sh: stored $stored items, expected $n_items" >&2; exit 1; }
}
check_requests() {
	[ "$REQUESTS" = "$n_requests" ] || { echo "run.sh: raced made $REQUESTS requests, expected $n_requests" >&2; exit 1; }
}
want() { case " $parts " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }
div() { case "$1:$2" in :*|*:|-:*|*:-) echo -; return ;; esac; awk -v a="$1" -v b="$2" -v f="${3:-%.2f}" 'BEGIN { printf f, a / b }'; }
verdict() { [ "$1" != - ] || { echo -; return; }; awk -v v="$1" -v op="$2" -v t="$3" 'BEGIN {
	ok = (op == ">=" ? v >= t : op == "<" ? v < t : v <= t); print ok ? "met" : "MISSED" }'; }

# ---- the data set --------------------------------------------------------
fixture_start --races "$races" --entries-per-race "$per_race" --athletes "$athletes"
get /_dataset >"$T/dataset.json"
ds() { jq -r ".$1" "$T/dataset.json"; }
n_requests=$(ds requests_needed)
n_items=$(( $(ds races) + $(ds entries) + $(ds athletes_referenced) ))
get /_urls >"$T/urls.txt"
[ "$(wc -l <"$T/urls.txt")" = "$n_requests" ] || { echo "run.sh: /_urls disagrees with /_dataset" >&2; exit 1; }
say "data set: $(ds races) races, $(ds entries) entries, $(ds athletes_referenced) athletes; $n_requests requests"

# ---- 1: the limit --------------------------------------------------------
cat >"$T/urls.lua" <<'LUA'
-- Replay the URL list (wrk ... -- FILE) in order, round and round.
local urls, i = {}, 0
function init(args)
	for line in io.lines(args[1]) do urls[#urls + 1] = line end
end
function request()
	i = i % #urls + 1
	return wrk.format("GET", urls[i])
end
LUA
# wrk, one thread, --connections, --duration, replaying URLFILE against
# $URL; sets WRK_RPS and adds LABEL's row to the CPU table (the items its
# requests carry: an import's items per request).
run_wrk() { # URLFILE LABEL
	cpu_begin
	/usr/bin/time -f '%U %S' -o "$T/wrk-time.out" \
		wrk -t1 -c"$conns" -d"${duration}s" -s "$T/urls.lua" "$URL" -- "$1" >"$T/wrk.txt"
	cpu_end
	WRK_RPS=$(awk '/^Requests\/sec:/ { printf "%.0f", $2 }' "$T/wrk.txt")
	local non2xx reqs
	non2xx=$(awk '/Non-2xx/ { print $NF }' "$T/wrk.txt")
	[ -z "$non2xx" ] || { echo "run.sh: wrk saw $non2xx non-2xx answers" >&2; exit 1; }
	reqs=$(awk '/ requests in / { print $1 }' "$T/wrk.txt")
	cpu_row "$2" "$(awk -v r="$reqs" -v i="$n_items" -v n="$n_requests" 'BEGIN { printf "%.0f", r * i / n }')" \
		"$(div "$reqs" "$WRK_RPS" %.3f)" "$(awk '{ printf "%.2f", $1 + $2 }' "$T/wrk-time.out")"
}
wrk_rps= fetch_rps= fetch_ratio= fetch_secs= fetch_rss= e2e_ips= e2e_ratio= e2e_secs= e2e_rss=
fix_cpu= pg_cpu= pg_share= slow_e2e_ips= slow_ratio=
big_items= big_secs= big_rss= big_ips= rss_mib= big_rss_mib= rss_ratio= fetch_cpu= e2e_cpu=
if want 1; then
say "1 wrk: 1 thread, $conns connections, ${duration}s"
run_wrk "$T/urls.txt" "1 wrk, fixture"
wrk_rps=$WRK_RPS
fi

# ---- 2: raced fetch-only -------------------------------------------------
if want 2; then
say "2 raced fetch-only"
write_config "$T/fetch.conf" discard "$conns" "$conns"
run_raced "$T/fetch.conf" "$T/raced-fetch.log"
check_requests
cpu_row "2 fetch-only, fixture" "$n_items" "$SECS" "$CPU_S" "1 wrk, fixture"
fetch_secs=$SECS fetch_rss=$RSS_KIB fetch_cpu=$CPU_S
fetch_rps=$(div "$n_requests" "$fetch_secs" %.0f)
fetch_ratio=$(div "$fetch_rps" "$wrk_rps")
fi

# ---- 3: raced end to end -------------------------------------------------
if want 3 || want 4 || want 7 || want 9; then
pg_cluster_init "$T/pg"
pg_cluster_start
fi
if want 3 || want 4; then
say "3 raced end to end into PostgreSQL"
write_config "$T/e2e.conf" "$PG_CONNINFO" "$conns" "$conns"
run_raced "$T/e2e.conf" "$T/raced-e2e.log"
check_stored
cpu_row "3 end to end, fixture" "$n_items" "$SECS" "$CPU_S" "2 fetch-only, fixture"
fix_cpu=$CPU_PROV pg_cpu=$CPU_PG
e2e_secs=$SECS e2e_rss=$RSS_KIB e2e_cpu=$CPU_S
e2e_ips=$(div "$n_items" "$e2e_secs" %.0f)
fetch_ips=$(div "$n_items" "$fetch_secs" %.0f)
e2e_ratio=$(div "$e2e_ips" "$fetch_ips")
pg_share=$(awk -v a="$pg_cpu" -v b="$e2e_secs" 'BEGIN { printf "%.0f", 100 * a / b }')
fi

# ---- 4: peak RSS at scale x the items ------------------------------------
if want 4; then
say "4 raced end to end at ${scale}x the items"
fixture_start --races $((races * scale)) --entries-per-race "$per_race" --athletes $((athletes * scale))
big_items=$(get /_dataset | jq '.races + .entries + .athletes_referenced')
pg_cluster_psql "drop table races, entries, athletes cascade" >/dev/null
write_config "$T/big.conf" "$PG_CONNINFO" "$conns" "$conns"
run_raced "$T/big.conf" "$T/raced-big.log"
cpu_row "4 end to end ${scale}x, fixture" "$big_items" "$SECS" "$CPU_S" "3 end to end, fixture"
big_secs=$SECS big_rss=$RSS_KIB
big_ips=$(div "$big_items" "$big_secs" %.0f)
rss_mib=$(div "$e2e_rss" 1024 %.1f)
big_rss_mib=$(div "$big_rss" 1024 %.1f)
rss_ratio=$(div "$big_rss" "$e2e_rss")
fi

# ---- 7: end to end when the CPUs are not the limit -----------------------
if want 7; then
say "7 raced fetch-only and end to end with ${e2e_latency_ms}ms provider latency"
fixture_start --races "$races" --entries-per-race "$per_race" --athletes "$athletes" --latency-ms "$e2e_latency_ms"
write_config "$T/slow-fetch.conf" discard "$conns" "$conns"
run_raced "$T/slow-fetch.conf" "$T/raced-slow-fetch.log"
check_requests
cpu_row "7 fetch-only, fixture ${e2e_latency_ms}ms" "$n_items" "$SECS" "$CPU_S"
slow_fetch_secs=$SECS
pg_cluster_psql "drop table if exists races, entries, athletes cascade" >/dev/null
write_config "$T/slow-e2e.conf" "$PG_CONNINFO" "$conns" "$conns"
run_raced "$T/slow-e2e.conf" "$T/raced-slow-e2e.log"
check_requests
check_stored
cpu_row "7 end to end, fixture ${e2e_latency_ms}ms" "$n_items" "$SECS" "$CPU_S" "7 fetch-only, fixture ${e2e_latency_ms}ms"
slow_e2e_ips=$(div "$n_items" "$SECS" %.0f)
slow_ratio=$(div "$slow_e2e_ips" "$(div "$n_items" "$slow_fetch_secs" %.0f)")
fi

# ---- 9: resume after a kill ------------------------------------------------
# An import killed (SIGKILL) at half its requests, then raced --once
# --resume, against the same import uninterrupted, with --e2e-latency-ms
# of provider latency.  The remaining work is the URLs whose pages the
# killed run had not committed (raced_pages.seen_import = the run): the
# resumed run's requests over it (target <= 1.02: only what was in flight
# is fetched again); and the wall time from the start to the kill plus the
# resume over the uninterrupted import's (target <= 1.1).
resume_req_ratio= resume_time_ratio= resume_full_secs= resume_secs= resume_kill_secs=
resume_remaining= resume_requests= resume_killed_at= resume_full_secs2=
if want 9; then
say "9 an import killed at 50% and resumed, against one uninterrupted (${e2e_latency_ms}ms latency)"
fixture_start --races "$races" --entries-per-race "$per_race" --athletes "$athletes" --latency-ms "$e2e_latency_ms"
fresh_db() {
	pg_cluster_psql "drop table if exists races, entries, athletes cascade" >/dev/null
	pg_cluster_psql "truncate raced_pages, import_errors, import_runs cascade" >/dev/null 2>&1 || true
}
fresh_db
write_config "$T/resume.conf" "$PG_CONNINFO" "$conns" "$conns"
run_raced "$T/resume.conf" "$T/raced-resume-full.log"
cpu_row "9 end to end, ${e2e_latency_ms}ms (before)" "$n_items" "$SECS" "$CPU_S"
check_requests
check_stored
resume_full_secs=$SECS resume_first_secs=$SECS
fresh_db
reset
t0=$(date +%s%N)
"$RACED" --config "$T/resume.conf" --once 2>"$T/raced-resume-killed.log" &
killed_pid=$!
until [ "$(get /_stats | jq .requests)" -ge $((n_requests / 2)) ]; do
	kill -0 "$killed_pid" 2>/dev/null || { echo "run.sh: the import ended before half its requests" >&2; exit 1; }
	sleep 0.02
done
kill -KILL "$killed_pid"
wait "$killed_pid" 2>/dev/null || true
t1=$(date +%s%N)
resume_kill_secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')
resume_killed_at=$(get /_stats | jq .requests)
run_id=$(pg_cluster_psql "select max(id) from import_runs")
committed=$(pg_cluster_psql "select count(distinct url) from raced_pages where seen_import = $run_id")
resume_remaining=$((n_requests - committed))
reset
t0=$(date +%s%N)
"$RACED" --config "$T/resume.conf" --once --resume 2>"$T/raced-resume.log" || {
	echo "run.sh: raced --once --resume failed" >&2; tail -n 20 "$T/raced-resume.log" >&2; exit 1; }
t1=$(date +%s%N)
resume_secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')
check_stored
resume_requests=$(get /_stats | jq .requests)
resume_req_ratio=$(div "$resume_requests" "$resume_remaining" %.3f)
# The uninterrupted import once more, after: the quicker of the two is the
# reference, so a disturbance of one run does not flatter the ratio.
fresh_db
run_raced "$T/resume.conf" "$T/raced-resume-full2.log"
cpu_row "9 end to end, ${e2e_latency_ms}ms (after)" "$n_items" "$SECS" "$CPU_S"
check_requests
check_stored
resume_full_secs2=$SECS
resume_full_secs=$(awk -v a="$resume_full_secs" -v b="$resume_full_secs2" 'BEGIN { printf "%.3f", a < b ? a : b }')
resume_time_ratio=$(div "$(awk -v a="$resume_kill_secs" -v b="$resume_secs" 'BEGIN { print a + b }')" "$resume_full_secs" %.3f)
fixture_stop
fi
{ want 3 || want 4 || want 7 || want 9; } && pg_cluster_stop

# ---- 14: nginx as the provider -------------------------------------------
# The same data set exported as static files (fixture-provider --export)
# and served by nginx (tests/lib/nginx.sh: one worker, as nobody, its
# access log on): wrk replaying every file once, raced fetch-only, and end
# to end into a cluster of its own; the provider's CPU is nginx's master
# and worker.  Skipped (a line says so) where nginx is not installed.
nginx_wrk_rps= nginx_fetch_rps= nginx_fetch_ratio= nginx_e2e_ips= nginx_e2e_ratio=
if want 14 && [ ! -x "$NGINX_BIN" ]; then
	say "14 skipped: nginx is not installed (.ci/install-deps installs it)"
elif want 14; then
	say "14 nginx serving the data set as static files: wrk, fetch-only, end to end"
	"$FIXTURE" --seed "$seed" --page-size "$page_size" --races "$races" --entries-per-race "$per_race" \
		--athletes "$athletes" --export "$T/www" >"$T/export.txt"
	find "$T/www" -type f -printf '/%P\n' >"$T/nginx-urls.txt"
	[ "$(wc -l <"$T/nginx-urls.txt")" = "$n_requests" ] ||
		{ echo "run.sh: exported $(wc -l <"$T/nginx-urls.txt") files, expected $n_requests" >&2; exit 1; }
	nginx_start "$T/www"
	fixture_url=$URL URL=$NGINX_URL PROVIDER=nginx
	run_wrk "$T/nginx-urls.txt" "14 wrk, nginx"
	nginx_wrk_rps=$WRK_RPS
	nginx_config() { # FILE DB: write_config with the exported files' URLs
		write_config "$1" "$2" "$conns" "$conns"
		sed -i 's|^url = /races$|url = /races.json|; s|^url = /races/{id}/entries$|url = /races/{id}/entries.json|
			s|^url = /athletes/{athlete_id}$|url = /athletes/{athlete_id}.json|' "$1"
	}
	nginx_config "$T/nginx-fetch.conf" discard
	run_raced "$T/nginx-fetch.conf" "$T/raced-nginx-fetch.log"
	check_requests
	cpu_row "14 fetch-only, nginx" "$n_items" "$SECS" "$CPU_S" "14 wrk, nginx"
	nginx_fetch_rps=$(div "$n_requests" "$SECS" %.0f) nginx_fetch_secs=$SECS
	nginx_fetch_ratio=$(div "$nginx_fetch_rps" "$nginx_wrk_rps")
	pg_cluster_init "$T/pg14"
	pg_cluster_start
	nginx_config "$T/nginx-e2e.conf" "$PG_CONNINFO"
	run_raced "$T/nginx-e2e.conf" "$T/raced-nginx-e2e.log"
	check_requests
	check_stored
	cpu_row "14 end to end, nginx" "$n_items" "$SECS" "$CPU_S" "14 fetch-only, nginx"
	nginx_e2e_ips=$(div "$n_items" "$SECS" %.0f)
	nginx_e2e_ratio=$(div "$nginx_fetch_secs" "$SECS")
	pg_cluster_stop
	nginx_stop
	URL=$fixture_url PROVIDER=fixture
fi

# ---- 5: latency-bound ----------------------------------------------------
echo "# C ceiling_rps raced_rps ratio" >"$results/latency.dat"
lat_rows=()
want 5 || latency_c=
for c in $latency_c; do
	ceiling=$(( c * 1000 / latency_ms ))
	# About 3 s at the ceiling: a race costs ~1 + per_race*0.4 requests.
	lr=$(awk -v c="$ceiling" -v p="$per_race" 'BEGIN { r = int(3 * c / (1.5 + 0.4 * p)); print r < 20 ? 20 : r }')
	la=$(( lr * athletes / races ))
	say "5 latency ${latency_ms}ms, C=$c: $lr races"
	fixture_start --races "$lr" --entries-per-race "$per_race" --athletes "$la" --latency-ms "$latency_ms"
	write_config "$T/lat.conf" discard "$c" "$c"
	run_raced "$T/lat.conf" "$T/raced-lat-$c.log"
	cpu_row "5 fetch-only, ${latency_ms}ms, C=$c" "$(get /_dataset | jq '.races + .entries + .athletes_referenced')" \
		"$SECS" "$CPU_S"
	peak=$(get /_stats | jq .peak_in_flight)
	rps=$(div "$REQUESTS" "$SECS" %.0f)
	ratio=$(div "$rps" "$ceiling")
	echo "$c $ceiling $rps $ratio $peak" >>"$results/latency.dat"
	lat_rows+=("$c $ceiling $rps $ratio $peak")
done

# ---- 6: fetch-only beside a co-runner -------------------------------------
co_rows=()
want 6 || corunner=
if [ -n "$corunner" ]; then
	fixture_start --races "$races" --entries-per-race "$per_race" --athletes "$athletes"
	write_config "$T/fetch.conf" discard "$conns" "$conns"
fi
for share in $corunner; do
	say "6 raced fetch-only beside a co-runner busy ${share}% of the time"
	"$CORUNNER" "$share" &
	CORUNNER_PID=$!
	co0=$(ticks "$CORUNNER_PID")
	run_raced "$T/fetch.conf" "$T/raced-co-$share.log"
	check_requests
	cpu_row "6 fetch-only, co-runner ${share}%" "$n_items" "$SECS" "$CPU_S" "2 fetch-only, fixture"
	# What it really used of a CPU while raced ran (it spins on CPU time,
	# so preemption stretches its period rather than cutting its work).
	used=$(div "$(tick_secs "$co0" "$(ticks "$CORUNNER_PID")")" "$SECS" | awk '{ printf "%.0f", 100 * $1 }')
	kill "$CORUNNER_PID"; wait "$CORUNNER_PID" 2>/dev/null || true
	CORUNNER_PID=
	rps=$(div "$n_requests" "$SECS" %.0f)
	co_rows+=("$share $rps $(div "$rps" "$fetch_rps") $used")
done
fixture_stop

# ---- 10: incremental re-imports (issue 15) ----------------------------------
# Each set-up gets its own fixture (its changes start from none) and its
# own database in one throwaway cluster.  Autovacuum is off in that
# cluster and a VACUUM ANALYZE of the database runs between two imports,
# outside the measured window: otherwise the vacuum of the full import's
# rows lands, at random, in the next import's PostgreSQL CPU time.
# PostgreSQL CPU = utime + stime (/proc/PID/stat) of the postmaster and all
# its children, own and reaped, over the import: raced's backends, and the
# checkpointer, walwriter and so on, which are idle here.
incr_rows=()
incr_db_psql() { "$PG_BIN/psql" -qAtX -v ON_ERROR_STOP=1 -d "$1" -c "$2"; } # DB SQL
incr_rows_written() { # DB: stage rows inserted + updated so far (0 before the tables exist)
	incr_db_psql "$1" "select coalesce(sum(n_tup_ins + n_tup_upd), 0) from pg_stat_user_tables
		where relname in ('races', 'entries', 'athletes')"
}
incr_xacts() { # DB: "commits WAL-bytes WAL-records" so far (the database's; the cluster's WAL)
	incr_db_psql "$1" "select (select xact_commit from pg_stat_database where datname = current_database())
		|| ' ' || wal_bytes || ' ' || wal_records from pg_stat_wal"
}
incr_count() { # DB KEY: KEY summed over the stages of the latest run's counts
	incr_db_psql "$1" "select coalesce(sum((v ->> '$2')::bigint), 0)
		from (select counts from import_runs order by id desc limit 1) r, jsonb_each(r.counts) e(k, v)"
}
# One import into DB; appends "STEP BODY N304 BYTES ROWS SECS PGCPU" to
# incr_steps.
incr_import() { # NAME STEP DB CONF
	local rows0 rows1 pg0 pg1 status
	rows0=$(incr_rows_written "$3")
	[ -z "${BENCH_PG_STATEMENTS:-}" ] || incr_db_psql "$3" "select pg_stat_statements_reset()" >/dev/null
	local tx0 tx1
	tx0=$(incr_xacts "$3")
	pg0=$(ticks $(pg_pids))
	run_raced "$4" "$T/raced-incr-$1-$2.log"
	pg_backends_gone
	pg1=$(ticks $(pg_pids))
	tx1=$(incr_xacts "$3")
	rows1=$(incr_rows_written "$3")
	[ -z "${BENCH_PG_STATEMENTS:-}" ] || incr_db_psql "$3" "select round(total_exec_time::numeric, 1) as ms,
		calls, rows, left(regexp_replace(query, '\s+', ' ', 'g'), 160) from pg_stat_statements
		where dbid = (select oid from pg_database where datname = '$3')
		order by total_exec_time desc limit 20" >"$results/incr-statements-$1-$2.txt"
	# and what the import read ahead, per stage (import_runs.counts)
	[ -z "${BENCH_PG_STATEMENTS:-}" ] || incr_db_psql "$3" "select e.k || ': state_ahead '
		|| coalesce(e.v ->> 'state_ahead', '-') || ', read_back_ahead '
		|| coalesce(e.v ->> 'read_back_ahead', '-') || ', requests_304 '
		|| coalesce(e.v ->> 'requests_304', '-') from (select counts from import_runs
		order by id desc limit 1) r, jsonb_each(r.counts) e(k, v) where jsonb_typeof(e.v) = 'object'
		order by e.k" >>"$results/incr-statements-$1-$2.txt"
	# What the import committed: transactions of its database (raced's,
	# and the psql calls between tx0 and tx1: 1 each side), WAL written.
	set -- "$@" $tx0 $tx1
	incr_tx="commits $(( $8 - $5 - 1 )) wal_bytes $(( $9 - $6 )) wal_records $(( ${10} - $7 ))"
	set -- "${@:1:4}"
	say "  $2: $incr_tx"
	[ -z "${BENCH_PG_STATEMENTS:-}" ] || echo "$incr_tx" >>"$results/incr-statements-$1-$2.txt"
	status=$(incr_db_psql "$3" "select status from import_runs order by id desc limit 1")
	[ "$status" = succeeded ] || { echo "run.sh: part 10 $1 $2: the import ended $status" >&2; exit 1; }
	local stored served
	stored=$(incr_db_psql "$3" "select (select count(*) from races where removed_import is null)
		+ (select count(*) from entries where removed_import is null)
		+ (select count(*) from athletes where removed_import is null)")
	served=$(get /_dataset | jq '.races + .entries + .athletes_referenced')
	[ "$stored" = "$served" ] || { echo "run.sh: part 10 $1 $2: stored $stored items, served $served" >&2; exit 1; }
	cpu_row "10 $1, $2 import" "$served" "$SECS" "$CPU_S" "10 $1, fetch-only"
	local body n304 bytes fx_body
	body=$(incr_count "$3" requests_body) n304=$(incr_count "$3" requests_304) bytes=$(incr_count "$3" bytes)
	# The fixture's own count of answers with a body, as a check.
	fx_body=$(get /_stats | jq '.requests - .not_modified')
	[ "$fx_body" = "$body" ] || say "part 10 $1 $2: raced counted $body requests with a body, the fixture $fx_body"
	incr_steps+=("$2 $body $n304 $bytes $((rows1 - rows0)) $SECS $(tick_secs "$pg0" "$pg1") $CPU_S")
	say "  $2: ${incr_steps[-1]#* } (body 304 bytes rows wall-s PG-CPU-s raced-CPU-s)"
	incr_db_psql "$3" "vacuum analyze" >/dev/null
}
if want 10; then
	pg_cluster_init "$T/pg9"
	# BENCH_PG_STATEMENTS=1: what each import ran, by total execution time,
	# in incr-statements-SETUP-IMPORT.txt (not measured otherwise: the
	# extension costs some CPU of its own).
	[ -z "${BENCH_PG_STATEMENTS:-}" ] || cat >>"$PG_DIR/data/postgresql.conf" <<CONF
shared_preload_libraries = 'pg_stat_statements'
pg_stat_statements.track = all
CONF
	pg_cluster_start
	pg_cluster_psql "alter system set autovacuum = off" >/dev/null
	pg_cluster_psql "select pg_reload_conf()" >/dev/null
	for setup in none:none:0 both:both:0 refresh:both:1h; do
		IFS=: read -r name validators refresh <<<"$setup"
		# BENCH_INCR_SETUPS="none both refresh" (the default): which set-ups run
		case " ${BENCH_INCR_SETUPS:-none both refresh} " in *" $name "*) ;; *) continue ;; esac
		[ "$refresh" = 0 ] && refresh=
		say "9 incremental re-imports: validators $validators${refresh:+, refresh = $refresh on athletes}"
		fixture_start --races "$races" --entries-per-race "$per_race" --athletes "$athletes" \
			--validators "$validators"
		write_config "$T/incr-fetch.conf" discard "$conns" "$conns"
		run_raced "$T/incr-fetch.conf" "$T/raced-incr-$name-fetch.log"
		check_requests
		incr_fetch_secs=$SECS incr_fetch_cpu=$CPU_S
		cpu_row "10 $name, fetch-only" "$n_items" "$SECS" "$CPU_S"
		db=incr_$name
		incr_db_psql postgres "create database $db" >/dev/null
		[ -z "${BENCH_PG_STATEMENTS:-}" ] || incr_db_psql "$db" "create extension pg_stat_statements" >/dev/null
		write_config "$T/incr-$name.conf" "host=$PG_DIR/sock port=5432 user=raced dbname=$db" \
			"$conns" "$conns" "$refresh"
		incr_steps=()
		incr_import "$name" full "$db" "$T/incr-$name.conf"
		incr_import "$name" unchanged "$db" "$T/incr-$name.conf"
		get_mutate=$(curl -sf -X POST "$URL/_mutate?change_athletes=1") ||
			{ echo "run.sh: /_mutate failed" >&2; exit 1; }
		say "  changed $(jq '.changed_athletes | length' <<<"$get_mutate") athletes"
		incr_import "$name" changed "$db" "$T/incr-$name.conf"
		for st in "${incr_steps[@]}"; do incr_rows+=("$name $incr_fetch_secs $st $incr_fetch_cpu"); done
	done
	fixture_stop
	pg_cluster_stop
	{
		echo "9 incremental re-imports; ratios to that set-up's full import; fetch-only = discard = yes, same data"
		printf '%-8s %-9s %14s %7s %16s %16s %14s %15s %8s %18s\n' set-up import "body requests" 304s \
			"bytes" "stage rows" "wall s" "PG CPU s" "x fetch" "raced CPU s (x f)"
		for row in "${incr_rows[@]}"; do
			set -- $row
			[ "$3" = full ] && f_body=$4 f_bytes=$6 f_rows=$7 f_secs=$8 f_pg=$9
			printf '%-8s %-9s %7s (%4s) %7s %9s (%4s) %8s (%5s) %7s (%4s) %6s (%4s) %8s %11s (%4s)\n' "$1" "$3" \
				"$4" "$(div "$4" "$f_body")" "$5" "$6" "$(div "$6" "$f_bytes")" \
				"$7" "$(div "$7" "$f_rows" %.3f)" "$8" "$(div "$8" "$f_secs")" \
				"$9" "$(div "$9" "$f_pg")" "$(div "$8" "$2")" "${10}" "$(div "${10}" "${11}")"
		done
		echo "fetch-only (wall, raced CPU): $(for row in "${incr_rows[@]}"; do set -- $row; [ "$3" = full ] && printf '%s %ss %ss  ' "$1" "$2" "${11}"; done)"
		echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
		echo "targets, unchanged import: 0 stage rows; PG CPU <= 0.10 x full; wall <= 1.1 x fetch-only;" \
			"with refresh: wall <= 0.3 x full"
		for row in "${incr_rows[@]}"; do
			set -- $row
			[ "$3" = full ] && f_secs=$8 f_pg=$9
			[ "$3" = unchanged ] || continue
			printf '  %-8s rows %s: %s; PG CPU %s x full: %s; wall %s x fetch-only: %s' "$1" "$7" \
				"$([ "$7" = 0 ] && echo met || echo MISSED)" "$(div "$9" "$f_pg" %.3f)" \
				"$(verdict "$(div "$9" "$f_pg" %.6f)" "<=" 0.10)" "$(div "$8" "$2")" \
				"$(verdict "$(div "$8" "$2" %.6f)" "<=" 1.1)"
			# verdicts on the unrounded ratio: 0.102 is not <= 0.10
			[ "$1" = refresh ] && printf '; wall %s x full: %s' "$(div "$8" "$f_secs")" \
				"$(verdict "$(div "$8" "$f_secs" %.6f)" "<=" 0.3)"
			echo
		done
	} >"$results/incremental.txt"
fi

# ---- 11: adaptive concurrency against a capacity (issue 18) ----------------
ad_rows=()
want 11 || adaptive_n=
[ -z "$adaptive_n" ] || echo "# N t_s limit in_flight" >"$results/adaptive.dat"
for n in $adaptive_n; do
	# About 40 s at the capacity's rate (N / latency): the climb to 128 takes
	# some 130 round trips; a race costs
	# ~1 + per_race*0.4 requests.
	ar=$(awk -v r="$(( n * 1000 / adaptive_latency_ms ))" -v p="$per_race" \
		'BEGIN { x = int(40 * r / (1.5 + 0.4 * p)); print x < 20 ? 20 : x }')
	aa=$(( ar * athletes / races ))
	say "11 adaptive concurrency: capacity $n, ${adaptive_latency_ms}ms, $ar races"
	fixture_start --races "$ar" --entries-per-race "$per_race" --athletes "$aa" \
		--latency-ms "$adaptive_latency_ms" --capacity "$n"
	write_config "$T/fixed.conf" discard "$n" 256
	run_raced "$T/fixed.conf" "$T/raced-fixed-$n.log"
	fixed_rps=$(div "$REQUESTS" "$SECS" %.1f)
	write_config "$T/auto.conf" discard auto 256
	sed -i "s/^max_connections = auto/max_connections = auto\nmax_connections_ceiling = 256/" "$T/auto.conf"
	# the controller's line per window (limit, RTT, baseline, band, last
	# change), kept in the results as adaptive-N.log
	sed -i "s/^\[daemon\]/[daemon]\nlog_level = debug/" "$T/auto.conf"
	# A daemon, not --once: racectl stats reads the limit as it moves.
	reset
	"$RACED" --config "$T/auto.conf" 2>"$T/raced-auto-$n.log" &
	auto_pid=$!
	ctl_() { RACED_SOCKET="$T/raced.sock" "$RACECTL" --timeout 2 "$@"; }
	for _ in $(seq 400); do ctl_ version >/dev/null 2>&1 && break; sleep 0.05; done
	t0=$(date +%s%N)
	ctl_ start-import >/dev/null
	: >"$T/samples-$n"
	while :; do
		st=$(ctl_ --json stats 2>/dev/null) || { sleep 0.25; continue; }
		state=$(jq -r '.result.import.state' <<<"$st")
		[ "$state" = running ] || break
		jq -r --arg t "$(( ($(date +%s%N) - t0) / 1000000 ))" \
			'"\($t) \(.result.providers[0].limit) \(.result.providers[0].in_flight)"' <<<"$st" \
			>>"$T/samples-$n" 2>/dev/null || true
		sleep 0.25
	done
	[ "$state" = succeeded ] || { echo "run.sh: the adaptive import ended $state" >&2; exit 1; }
	kill -TERM "$auto_pid"; wait "$auto_pid" || true
	grep 'window' "$T/raced-auto-$n.log" >"$results/adaptive-$n.log" || true
	secs=$(awk -v a="$t0" -v b="$(date +%s%N)" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')
	st=$(get /_stats)
	reqs=$(jq .requests <<<"$st")
	bad=$(jq '(.by_status["429"] // 0) + (.by_status["503"] // 0)' <<<"$st")
	auto_rps=$(div "$reqs" "$secs" %.1f)
	awk -v n="$n" '{ printf "%s %.2f %s %s\n", n, $1 / 1000, $2, $3 }' "$T/samples-$n" >>"$results/adaptive.dat"
	echo >>"$results/adaptive.dat"; echo >>"$results/adaptive.dat" # a gnuplot index per N
	# the median of the second half's samples
	half=$(( $(wc -l <"$T/samples-$n") / 2 ))
	settled=$(tail -n +$((half + 1)) "$T/samples-$n" | awk '{ print $2 }' | sort -n |
		awk '{ v[NR] = $1 } END { print NR ? v[int((NR + 1) / 2)] : "-" }')
	ad_rows+=("$n $settled $(div "$settled" "$n") $fixed_rps $auto_rps $(div "$auto_rps" "$fixed_rps") $bad $reqs $(div "$bad" "$reqs" %.4f)")
done

# ---- 12: typed columns ---------------------------------------------------
typed_gen_sql='CREATE TABLE entries (key text PRIMARY KEY, parent_key text, payload jsonb NOT NULL,
 first_import bigint, last_import bigint, updated_at timestamptz NOT NULL DEFAULT now(), removed_import bigint,
 bib integer GENERATED ALWAYS AS ((payload->>'"'bib'"')::integer) STORED,
 race_id integer GENERATED ALWAYS AS ((payload->>'"'race_id'"')::integer) STORED,
 athlete_id text GENERATED ALWAYS AS (payload->>'"'athlete_id'"') STORED);
 CREATE INDEX entries_athlete_id_idx ON entries (athlete_id)'
typed_rows=()
if want 12; then
	pg_cluster_init "$T/pg11"
	pg_cluster_start
	fixture_start --races "$races" --entries-per-race "$per_race" --athletes "$athletes"
	n=0
	# Each round in another order: what runs first after a database is
	# created (or the last dropped) must not pass for a variant's cost.
	for round in 1 2 3; do
		case $round in 1) order="plain filled generated" ;; 2) order="generated plain filled" ;;
			3) order="filled generated plain" ;; esac
		for variant in $order; do
			n=$((n + 1))
			db=typed_$n
			incr_db_psql postgres "create database $db" >/dev/null
			[ "$variant" = generated ] && incr_db_psql "$db" "$typed_gen_sql" >/dev/null
			write_config "$T/typed.conf" "host=$PG_DIR/sock port=5432 user=raced dbname=$db" "$conns" "$conns"
			if [ "$variant" = filled ]; then
				sed -i 's|^url = /races/{id}/entries$|&\ncolumns = bib int /bib, race_id int /race_id, athlete_id text /athlete_id\nindex = athlete_id|' \
					"$T/typed.conf"
			fi
			say "11 typed columns: $variant (round $round)"
			pg0=$(ticks $(pg_pids))
			run_raced "$T/typed.conf" "$T/raced-typed-$variant.log"
			cpu_row "12 $variant, round $round" "$n_items" "$SECS" "$CPU_S"
			pg_backends_gone
			pg1=$(ticks $(pg_pids))
			stored=$(incr_db_psql "$db" "select (select count(*) from races) + (select count(*) from entries) + (select count(*) from athletes)")
			[ "$stored" = "$n_items" ] || { echo "run.sh: part 11 $variant: stored $stored, expected $n_items" >&2; exit 1; }
			[ "$variant" = plain ] || [ "$(incr_db_psql "$db" "select count(*) from entries where bib is null or race_id is null or athlete_id is null")" = 0 ] ||
				{ echo "run.sh: part 11 $variant: typed columns not filled" >&2; exit 1; }
			typed_rows+=("$variant $round $SECS $(tick_secs "$pg0" "$pg1") $CPU_S")
			say "  ${typed_rows[-1]} (variant round wall-s PG-CPU-s raced-CPU-s)"
			incr_db_psql postgres "drop database $db" >/dev/null
		done
	done
	fixture_stop
	pg_cluster_stop
	{
		echo "11 typed columns on entries (3 columns, 1 index); $n_items items; ratios to the plain run of the same round"
		printf '%-10s %5s %9s %9s %8s %14s %8s %14s %8s\n' variant round "wall s" "items/s" "x plain" "PG CPU us/row" \
			"x plain" "raced CPU s" "x plain"
		for row in "${typed_rows[@]}"; do
			set -- $row
			rnd=$2
			for r in "${typed_rows[@]}"; do
				set -- $r
				[ "$1" = plain ] && [ "$2" = "$rnd" ] && p_secs=$3 p_pg=$4 p_cpu=$5
			done
			set -- $row
			printf '%-10s %5s %9s %9s %8s %14s %8s %14s %8s\n' "$1" "$2" "$3" "$(div "$n_items" "$3" %.0f)" \
				"$(div "$p_secs" "$3")" "$(awk -v a="$4" -v n="$n_items" 'BEGIN { printf "%.1f", a * 1e6 / n }')" \
				"$(div "$4" "$p_pg")" "$5" "$(div "$5" "$p_cpu")"
		done
		echo "target: filled items/s >= 0.9 x plain"
	} >"$results/typed.txt"
fi

# ---- 13: HTTPS and HTTP/2 --------------------------------------------------
# The data set exported as static files (fixture-provider --export), served
# by nginx over TLS (tests/lib/nginx.sh: a throwaway CA made with openssl,
# one worker, TLS 1.2 and 1.3, HTTP/2 by ALPN, keepalive_requests 1000,
# the access log on): wrk over HTTPS replaying every file (HTTP/1.1, C
# connections, --duration), then raced fetch-only (discard = yes, ca_file
# the throwaway CA) with http_version = 1.1 and with auto (HTTP/2), each
# against an nginx started afresh.  For each: requests/s and its ratio to
# wrk's, CPU seconds (wrk or raced, and nginx), and from nginx's access log
# the connections opened (each a TLS handshake), how many resumed a TLS
# session, and the answers over HTTP/2.  Self-contained: its own files
# under $T/tls, results in tls.txt.  Skipped where nginx or openssl is
# missing.
part13_tls() {
	local d=$T/tls row
	if [ ! -x "$NGINX_BIN" ] || ! command -v openssl >/dev/null; then
		say "13 skipped: nginx or openssl is not installed (.ci/install-deps installs them)"
		echo "13 HTTPS and HTTP/2: skipped (nginx or openssl missing)" >"$results/tls.txt"
		return 0
	fi
	say "13 HTTPS: nginx over TLS serving the data set; wrk, raced fetch-only over HTTP/1.1 and HTTP/2"
	mkdir -p "$d"
	chmod 755 "$d"
	"$FIXTURE" --seed "$seed" --page-size "$page_size" --races "$races" --entries-per-race "$per_race" \
		--athletes "$athletes" --export "$d/www" >/dev/null
	(cd "$d/www" && find . -type f | sed 's|^\.||') >"$d/urls.txt"
	[ "$(wc -l <"$d/urls.txt")" = "$n_requests" ] ||
		{ echo "run.sh: 13: exported $(wc -l <"$d/urls.txt") files, expected $n_requests" >&2; exit 1; }
	nginx_make_ca "$d/ca"
	chmod 755 "$d/ca"
	# nginx's pids (master, worker) and its access log's lines of the run
	# (not nginx_start's probe, which curl makes)
	tls_nginx_pids() { echo "$NGINX_PID" $(pgrep -P "$NGINX_PID"); }
	tls_alog() { grep -v ' "curl/' "$NGINX_DIR/access.log" || true; }
	# "REQUESTS CONNECTIONS RESUMED HTTP2" from the access log over SCHEME
	# (over http nginx.sh's log has no connection numbers: "-")
	tls_alog_counts() {
		if [ "$1" = http ]; then
			echo "$(tls_alog | wc -l) - - $(tls_alog | grep -c 'HTTP/2.0"' || true)"
			return
		fi
		echo "$(tls_alog | wc -l) $(tls_alog | grep -o 'conn=[0-9]*' | sort -u | wc -l)" \
			"$(tls_alog | grep -o 'conn=[0-9]* reused=r' | sort -u | wc -l) $(tls_alog | grep -c 'HTTP/2.0"' || true)"
	}
	# Wait (10 s at most) until nginx has logged N requests: it logs each
	# as it finishes it, which may be after the client has its answer.
	tls_alog_wait() {
		for _ in $(seq 200); do [ "$(tls_alog | wc -l)" -ge "$1" ] && return 0; sleep 0.05; done
		echo "run.sh: 13: nginx logged $(tls_alog | wc -l) requests, expected $1" >&2; exit 1
	}
	local tls_rows=() wrk_rps_http= wrk_rps_https=
	# wrk over SCHEME (http or https; over https it does not verify the
	# certificate), HTTP/1.1: a row, and wrk_rps_SCHEME
	tls_wrk() {
		local scheme=$1 n0 cpu nginx_cpu rps
		NGINX_TLS=$([ "$scheme" = https ] && echo "$d/ca") nginx_start "$d/www"
		n0=$(ticks $(tls_nginx_pids))
		/usr/bin/time -f 'cpu_s %U %S' -o "$d/time.out" \
			wrk -t1 -c"$conns" -d"${duration}s" -s "$T/urls.lua" "$NGINX_URL" -- "$d/urls.txt" >"$d/wrk.txt"
		rps=$(awk '/^Requests\/sec:/ { printf "%.0f", $2 }' "$d/wrk.txt")
		[ -z "$(awk '/Non-2xx/ { print $NF }' "$d/wrk.txt")" ] || { echo "run.sh: 13: wrk saw non-2xx answers" >&2; exit 1; }
		cpu=$(awk '{ printf "%.2f", $2 + $3 }' "$d/time.out")
		nginx_cpu=$(tick_secs "$n0" "$(ticks $(tls_nginx_pids))")
		eval "wrk_rps_$scheme=\$rps"
		tls_rows+=("wrk,$scheme,1.1 $(awk '/requests in/ { print $1 }' "$d/wrk.txt") ${duration} $rps 1.00 $cpu $nginx_cpu $(tls_alog_counts "$scheme" | cut -d' ' -f2-)")
		nginx_stop
	}
	# raced fetch-only over SCHEME with http_version VERSION: a row
	tls_raced() {
		local scheme=$1 v=$2 conf=$d/raced-$1-$2.conf log=$T/raced-tls-$1-$2.log n0 t0 t1 secs rps cpu nginx_cpu counts wrk_rps
		NGINX_TLS=$([ "$scheme" = https ] && echo "$d/ca") nginx_start "$d/www"
		write_config "$conf" discard "$conns" "$conns"
		sed -i "s|^base_url = .*|base_url = $NGINX_URL|; s|^url = /races$|url = /races.json|
			s|^url = /races/{id}/entries$|url = /races/{id}/entries.json|
			s|^url = /athletes/{athlete_id}$|url = /athletes/{athlete_id}.json|
			/^max_connections = /a http_version = $v" "$conf"
		[ "$scheme" = http ] || sed -i "/^max_connections = /a ca_file = $d/ca/ca.pem" "$conf"
		n0=$(ticks $(tls_nginx_pids))
		t0=$(date +%s%N)
		/usr/bin/time -f 'cpu_s %U %S' -o "$d/time.out" "$RACED" --config "$conf" --once 2>"$log" ||
			{ echo "run.sh: 13: raced --once failed" >&2; tail -n 20 "$log" >&2; exit 1; }
		t1=$(date +%s%N)
		secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')
		tls_alog_wait "$n_requests"
		nginx_cpu=$(tick_secs "$n0" "$(ticks $(tls_nginx_pids))")
		counts=$(tls_alog_counts "$scheme")
		[ "${counts%% *}" = "$n_requests" ] ||
			{ echo "run.sh: 13: raced made ${counts%% *} requests, expected $n_requests" >&2; exit 1; }
		[ "$(tls_alog | grep -vc '" 200 ' || true)" = 0 ] || { echo "run.sh: 13: answers other than 200" >&2; exit 1; }
		rps=$(div "$n_requests" "$secs" %.0f)
		cpu=$(awk '{ printf "%.2f", $2 + $3 }' "$d/time.out")
		eval "wrk_rps=\$wrk_rps_$scheme"
		tls_rows+=("raced,$scheme,$v $n_requests $secs $rps $(div "$rps" "$wrk_rps") $cpu $nginx_cpu $(echo "$counts" | cut -d' ' -f2-)")
		nginx_stop
	}
	# HTTPS first, then plain http as the reference for what TLS costs
	tls_wrk https
	tls_raced https 1.1
	tls_raced https auto
	tls_wrk http
	tls_raced http 1.1
	{
		echo "13 HTTPS ($("$NGINX_BIN" -v 2>&1 | sed "s|.*/||"), TLS 1.3, $(openssl version | cut -d" " -f1-2)); $n_requests requests; $conns connections; ratios to wrk over the same scheme"
		printf '%-18s %9s %8s %8s %8s %11s %9s %8s %8s %8s %8s\n' run requests "wall s" "req/s" "x wrk" \
			"client CPU" "us/req" "nginx CPU" conns resumed "HTTP/2"
		for row in "${tls_rows[@]}"; do
			set -- $row
			printf '%-18s %9s %8s %8s %8s %11s %9s %8s %8s %8s %8s\n' "$1" "$2" "$3" "$4" "$5" "$6" \
				"$(awk -v c="$6" -v n="$2" 'BEGIN { printf "%.1f", c * 1e6 / n }')" "$7" "$8" "$9" "${10}"
		done
		echo "target: raced over HTTPS >= 0.8 x wrk over HTTPS; conns = connections nginx accepted (each a TLS" \
			"handshake; nginx closes one after 1000 requests), resumed = those that resumed a TLS session"
	} >"$results/tls.txt"
}
want 13 && part13_tls

# ---- 8: the soak ----------------------------------------------------------
soak_rc=0
if want 8; then
	say "8 the soak: $soak_imports imports with control clients and reloads between them"
	rm -f "$results/soak.txt"
	"$here/soak.sh" --imports "$soak_imports" --results "$results" >/dev/null || soak_rc=$?
fi

# ---- the table -----------------------------------------------------------
{
	echo "raced benchmark: $(ds races) races, $(ds entries) entries, $(ds athletes_referenced) athletes" \
		"($n_items items, $n_requests requests); $conns connections; $(nproc) CPUs"
	printf '%-34s %16s %10s %-18s %s\n' measure value ratio target ""
	want 1 && printf '%-34s %12s req/s %10s %-18s %s\n' "1 wrk, the limit" "$wrk_rps" "" "" ""
	want 2 && printf '%-34s %12s req/s %10s %-18s %s\n' "2 raced fetch-only" "$fetch_rps" "$fetch_ratio" ">= 0.8 x 1" \
		"$(verdict "$fetch_ratio" ">=" 0.8)"
	want 3 && printf '%-34s %12s it/s  %10s %-18s %s\n' "3 raced end to end" "$e2e_ips" "$e2e_ratio" ">= 0.65 x 2" \
		"$(verdict "$e2e_ratio" ">=" 0.65)"
	want 3 && e2e_bound=$(cpu_bound_ratio "3 end to end, fixture") &&
		printf '%-34s %12s      %10s %-18s %s\n' "  over its CPU bound (see below)" "" "$e2e_bound" \
		">= 0.9" "$(verdict "$e2e_bound" ">=" 0.9)"
	if want 14 && [ -n "$nginx_wrk_rps" ]; then
		printf '%-34s %12s req/s %10s %-18s %s\n' "14 wrk, nginx" "$nginx_wrk_rps" "" "" ""
		printf '%-34s %12s req/s %10s %-18s %s\n' "  raced fetch-only, nginx" "$nginx_fetch_rps" \
			"$nginx_fetch_ratio" ">= 0.8 x wrk" "$(verdict "$nginx_fetch_ratio" ">=" 0.8)"
		printf '%-34s %12s it/s  %10s %-18s %s\n' "  raced end to end, nginx" "$nginx_e2e_ips" \
			"$nginx_e2e_ratio" ">= 0.65 x fetch" "$(verdict "$nginx_e2e_ratio" ">=" 0.65)"
		nginx_bound=$(cpu_bound_ratio "14 end to end, nginx")
		printf '%-34s %12s      %10s %-18s %s\n' "  over its CPU bound (see below)" "" "$nginx_bound" \
			">= 0.9" "$(verdict "$nginx_bound" ">=" 0.9)"
	fi
	want 4 && printf '%-34s %12s MiB   %10s %-18s %s\n' "4 peak RSS, $n_items items" "$rss_mib" "" "< 32 MiB" \
		"$(verdict "$rss_mib" "<" 32)"
	want 4 && printf '%-34s %12s MiB   %10s %-18s %s\n' "  peak RSS, $big_items items" "$big_rss_mib" "$rss_ratio" \
		"<= 1.2 x 1x" "$(verdict "$rss_ratio" "<=" 1.2)"
	for row in "${lat_rows[@]}"; do
		set -- $row
		printf '%-34s %12s req/s %10s %-18s %s\n' "5 ${latency_ms}ms latency, C=$1 (peak $5)" "$3" "$4" \
			">= 0.9 x $2/s" "$(verdict "$4" ">=" 0.9)"
	done
	for row in "${co_rows[@]}"; do
		set -- $row
		printf '%-34s %12s req/s %10s %-18s %s\n' "6 fetch-only, co-runner ${1}% ($4%)" "$2" "$3" "(x 2)" ""
	done
	want 7 && printf '%-34s %12s it/s  %10s %-18s %s\n' "7 end to end, ${e2e_latency_ms}ms latency" "$slow_e2e_ips" \
		"$slow_ratio" "(x fetch-only)" ""
	want 9 && printf '%-34s %12s req   %10s %-18s %s\n' "9 resumed run's requests" "$resume_requests" \
		"$resume_req_ratio" "<= 1.02 x remaining" "$(verdict "$resume_req_ratio" "<=" 1.02)"
	want 9 && printf '%-34s %12s s     %10s %-18s %s\n' "  kill at 50% + resume, wall" \
		"$(awk -v a="$resume_kill_secs" -v b="$resume_secs" 'BEGIN { printf "%.2f", a + b }')" \
		"$resume_time_ratio" "<= 1.1 x whole" "$(verdict "$resume_time_ratio" "<=" 1.1)"
	want 9 && echo "(9: killed after ${resume_kill_secs}s at $resume_killed_at of $n_requests requests; $resume_remaining" \
		"URLs not committed; the resume took ${resume_secs}s; the import uninterrupted ${resume_full_secs}s, the quicker of" \
		"${resume_first_secs:--}s before and ${resume_full_secs2:--}s after)"
	echo "(fetch-only: ${fetch_secs:--}s, raced CPU ${fetch_cpu:--}s, peak RSS $(div "$fetch_rss" 1024 %.1f) MiB;" \
		"end to end: ${e2e_secs:--}s, raced CPU ${e2e_cpu:--}s; ${scale}x: ${big_secs:--}s, ${big_ips:--} items/s)"
	if want 8 && [ -s "$results/soak.txt" ]; then
		echo "8 the soak, after import 1 and after the last (soak.txt):"
		tail -n +2 "$results/soak.txt" | sed 's/^/  /'
	elif want 8; then
		echo "8 the soak did not finish (exit $soak_rc, see its messages above)"
	fi
	want 10 && cat "$results/incremental.txt"
	for row in "${ad_rows[@]}"; do
		set -- $row
		printf '%-34s %12s lim   %10s %-18s %s\n' "11 auto vs capacity $1: settled" "$2" "$3" "~1 x N" ""
		printf '%-34s %12s req/s %10s %-18s %s\n' "   rate (fixed $1: $4 req/s)" "$5" "$6" ">= 0.9 x fixed" \
			"$(verdict "$6" ">=" 0.9)"
		printf '%-34s %12s       %10s %-18s %s\n' "   429/503 of $8 requests" "$7" "$9" "<= 0.01" \
			"$(verdict "$9" "<=" 0.01)"
	done
	want 12 && cat "$results/typed.txt"
	want 13 && cat "$results/tls.txt"
	want 3 && echo "(3: PostgreSQL kept a CPU ${pg_share}% busy, compare 6)"
	if [ ${#CPU_ROWS[@]} -gt 0 ]; then
		echo "where the time goes (cpu.txt); load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
		cpu_table | tee "$results/cpu.txt"
	fi
} | tee "$results/summary.txt"

want 5 && gnuplot <<PLOT
set terminal pngcairo size 800,500 noenhanced
set output "$results/latency.png"
set title "raced fetch-only with ${latency_ms} ms provider latency"
set xlabel "concurrency C (requests in flight)"
set ylabel "requests per second"
set logscale xy 2
set key top left
set grid
set offsets graph 0.06, graph 0.06, 0, 0
set xtics ($(echo "$latency_c" | sed 's/ /, /g'))
plot "$results/latency.dat" using 1:2 with linespoints title "ceiling C / ${latency_ms} ms", \
     "$results/latency.dat" using 1:3 with linespoints title "raced"
PLOT
[ ${#ad_rows[@]} -eq 0 ] || gnuplot <<PLOT
set terminal pngcairo size 800,500 noenhanced
set output "$results/adaptive.png"
set title "max_connections = auto against a provider serving N at once (${adaptive_latency_ms} ms)"
set xlabel "seconds"
set ylabel "limit"
set key top left
set grid
plot $(i=0; for n in $adaptive_n; do printf '%s"%s" index %d using 2:3 with lines title "N = %s"' \
	"$([ $i -gt 0 ] && echo ', ')" "$results/adaptive.dat" $i "$n"; i=$((i + 1)); done)
PLOT
say "wrote $results/summary.txt, latency.dat, latency.png, adaptive.dat, adaptive.png, incremental.txt, soak.txt, soak.dat"
exit $soak_rc
