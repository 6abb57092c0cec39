#!/usr/bin/env bash
# fetch_cpu.sh — raced's own cost per request, fetch-only (issue 17 part 3).
#
#   tests/bench/fetch_cpu.sh [--races N] [--runs N] [--strace] [--perf FILE]
#                            [--callgrind FILE] [--https 1.1|auto]
#
# Starts the fixture provider with run.sh's default data set (2,000 races,
# 50 entries a race, 40,000 athletes, pages of 50), then runs
# `raced --once` fetch-only ([database] discard = yes, 32 connections, the
# stages' concurrency 32, as run.sh part 2) --runs times (default 3) and
# prints, per run, raced's CPU seconds (user + sys, /usr/bin/time) and
# their cost per 1,000 requests (and the fixture's, tests/lib/bench.sh);
# with --strace, one more run under `strace -c -f` and the syscalls per
# request; with --perf FILE, one more under `perf record -g` into FILE.  Counts, not wall time, so that a
# shared machine does not blur them; the load average is printed.  With
# --https VERSION the provider is nginx over TLS instead (the data set
# exported as files, a throwaway CA, as run.sh part 13; tests/lib/nginx.sh)
# and raced asks for http_version = VERSION (1.1, or auto: HTTP/2); the
# provider's CPU is then nginx's.
# RACED and FIXTURE name the binaries (default: build/...); with RACED_B
# set too, every run is two, RACED (A) and RACED_B (B) interleaved, and
# the mean CPU of each and their ratio are printed.  RACED_LIBDIR, when
# set, goes first in raced's LD_LIBRARY_PATH only (not the fixture's nor
# curl's): a libcurl built with symbols, so that callgrind and perf name
# libcurl's functions (Debian's is stripped).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
RACED=${RACED:-$src/build/daemon/raced}
FIXTURE=${FIXTURE:-$src/build/tests/fixture/fixture-provider}
races=2000 runs=3 do_strace= perf_out= cg_out= https=
while [ $# -gt 0 ]; do
	case $1 in
	--races) races=$2; shift 2 ;;
	--runs) runs=$2; shift 2 ;;
	--strace) do_strace=1; shift ;;
	--perf) perf_out=$2; shift 2 ;;
	--callgrind) cg_out=$2; shift 2 ;;
	--https) https=$2; shift 2 ;;
	*) echo "fetch_cpu.sh: unknown option '$1'" >&2; exit 2 ;;
	esac
done
raced_env=
[ -n "${RACED_LIBDIR:-}" ] && raced_env="env LD_LIBRARY_PATH=$RACED_LIBDIR${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
T=$(mktemp -d /tmp/raced-fetchcpu.XXXXXX)
seed=1 page_size=50
. "$src/tests/lib/bench.sh"
. "$src/tests/lib/nginx.sh"
cleanup() {
	local rc=$?
	[ "$rc" = 0 ] || [ ! -s "$T/raced.log" ] || { echo "fetch_cpu.sh: failed (exit $rc); raced's log ends:" >&2; tail -5 "$T/raced.log" >&2; }
	nginx_stop; fixture_stop; rm -rf "$T"
}
trap cleanup EXIT
fixture_start --races "$races" --entries-per-race 50 --athletes $((races * 20))
n=$(get /_dataset | jq .requests_needed)
suffix=
if [ -n "$https" ]; then
	nginx_require
	chmod 755 "$T" # nginx runs as nobody
	"$FIXTURE" --seed "$seed" --page-size "$page_size" --races "$races" --entries-per-race 50 \
		--athletes $((races * 20)) --export "$T/www" >/dev/null
	fixture_stop
	nginx_make_ca "$T/ca"
	chmod 755 "$T/ca"
	NGINX_TLS=$T/ca nginx_start "$T/www"
	URL=$NGINX_URL PROVIDER=nginx suffix=.json
	# nginx's access log, less nginx_start's probe (curl's), is the count
	reset() { : >"$NGINX_DIR/access.log"; }
	get_requests() { grep -vc ' "curl/' "$NGINX_DIR/access.log" || true; }
else
	get_requests() { get /_stats | jq .requests; }
fi
cat >"$T/raced.conf" <<CONF
[daemon]
control_socket = $T/raced.sock
admin_group = root
[database]
discard = yes
batch_size = 1000
[provider main]
base_url = $URL
max_connections = 32
rate_limit = 0
timeout = 30s
${https:+ca_file = $T/ca/ca.pem
http_version = $https}
[stage races]
provider = main
url = /races$suffix
items = /data
next = /next
key = /id
max_demand = 1000
[stage entries]
parent = races
provider = main
url = /races/{id}/entries$suffix
items = /data
next = /next
key = /id
concurrency = 32
max_demand = 2000
[stage athletes]
parent = entries
provider = main
url = /athletes/{athlete_id}$suffix
items =
key = /id
dedupe = yes
concurrency = 32
max_demand = 2000
CONF
echo "requests per import: $n; load average: $(cut -d' ' -f1-3 /proc/loadavg)"
check() {
	local got i
	for i in $(seq 100); do # nginx logs a request after its answer: 5 s at most
		got=$(get_requests)
		[ "$got" -ge "$n" ] && break
		sleep 0.05
	done
	[ "$got" = "$n" ] || { echo "fetch_cpu.sh: raced made $got requests, expected $n" >&2; exit 1; }
}
# One run of binary $1 labelled $2: its CPU a request, summed into sum_$2.
declare -A sum=() cnt=()
one_run() { # BINARY LABEL
	reset
	cpu_begin
	$raced_env /usr/bin/time -f '%U %S %e %R %c %M' -o "$T/time" "$1" --config "$T/raced.conf" --once 2>"$T/raced.log"
	cpu_end
	check
	read -r u s e faults cs rss <"$T/time"
	awk -v l="$2" -v u="$u" -v s="$s" -v e="$e" -v n="$n" -v f="$CPU_PROV" -v pf="$faults" -v cs="$cs" -v rss="$rss" 'BEGIN {
		printf "run%s: user %.2f s, sys %.2f s, wall %.2f s; CPU per 1,000 requests %.1f ms (%.1f us a request);" \
		       " the provider'"'"'s %.1f ms; page faults %d, context switches %d, peak RSS %.1f MiB\n", l == "" ? "" : " " l, u, s, e,
		       (u + s) / n * 1e6, (u + s) / n * 1e6, f / n * 1e6, pf, cs, rss / 1024 }'
	sum[${2:-_}]=$(awk -v a="${sum[${2:-_}]:-0}" -v u="$u" -v s="$s" 'BEGIN { print a + u + s }')
	cnt[${2:-_}]=$(( ${cnt[${2:-_}]:-0} + 1 ))
}
for i in $(seq "$runs"); do
	if [ -n "${RACED_B:-}" ]; then
		# A and B interleaved, in alternating order, so that a change in
		# the machine's load falls on both.
		if [ $((i % 2)) = 1 ]; then one_run "$RACED" A; one_run "$RACED_B" B
		else one_run "$RACED_B" B; one_run "$RACED" A; fi
	else
		one_run "$RACED" ""
	fi
done
if [ -n "${RACED_B:-}" ] && [ "$runs" -gt 0 ]; then
	awk -v a="${sum[A]}" -v b="${sum[B]}" -v k="$runs" -v n="$n" 'BEGIN {
		printf "mean CPU per 1,000 requests: A %.1f ms, B %.1f ms; B/A %.3f\n", a / k / n * 1e6, b / k / n * 1e6, b / a }'
fi
if [ -n "$do_strace" ]; then
	reset
	$raced_env strace -c -f -o "$T/strace" "$RACED" --config "$T/raced.conf" --once 2>"$T/raced.log"
	check
	awk -v n="$n" '/^100.00/ || /total/ { printf "syscalls: %d, %.2f a request\n", $4, $4 / n }' "$T/strace"
	sed -n '1,20p' "$T/strace"
fi
if [ -n "$perf_out" ]; then
	reset
	$raced_env perf record -q -g -o "$perf_out" "$RACED" --config "$T/raced.conf" --once 2>"$T/raced.log"
	check
	echo "perf data: $perf_out"
fi
if [ -n "$cg_out" ]; then
	reset
	$raced_env valgrind -q --tool=callgrind --callgrind-out-file="$cg_out" "$RACED" --config "$T/raced.conf" --once \
		2>"$T/raced.log"
	check
	callgrind_annotate "$cg_out" 2>/dev/null | awk -v n="$n" '
		/PROGRAM TOTALS/ { gsub(",", "", $1); printf "instructions: %.0f, %.0f a request\n", $1, $1 / n }'
	callgrind_annotate --inclusive=yes "$cg_out" 2>/dev/null | awk -v n="$n" '
		/ \*?[^ ]*:(malloc|calloc|realloc|free) / { x = $1; gsub(",", "", x); if (++k <= 8) printf "%s: %.0f Ir inclusive, %.0f a request\n", $NF, x, x / n }'
	echo "callgrind data: $cg_out"
fi
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
