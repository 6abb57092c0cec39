#!/usr/bin/env bash
# soak.sh — does raced hold on to anything from one import to the next?
#
#   tests/bench/soak.sh [--imports N] [--rss-tolerance PCT] [--heap-every K]
#                       [--results DIR]
#
# Part 8 of tests/bench/run.sh, and a benchmark of its own (`meson test -C
# build --benchmark raced-soak -v`); never a test.  It starts the fixture
# provider (a small data set, 2 ms of latency so every import fills the
# provider's connections), a throwaway PostgreSQL and one raced, then runs N
# imports (default 200) back to back, each with `racectl start-import`,
# then polling import_runs until it has ended (succeeded, or the soak
# fails).  After each it waits until raced is idle and has closed every
# control client, and records raced's RSS, its open fds, its PostgreSQL
# connections (pg_stat_activity) and its TCP connections to the provider
# (its socket fds that /proc/PID/net/tcp shows established to the
# fixture's port).  Between two imports: stats, status,
# health, status ID, a client that sends requests and hangs up mid-reply,
# a client sending garbage, then a reload — SIGHUP and `racectl reload` in
# turn, each applying a changed batch_size, so the fetcher and the store are
# rebuilt every time, as before the first import.
#
# At the end the figures after import N must equal those after import 1:
# fds and both connection counts exactly, RSS within --rss-tolerance
# (default 10) per cent.  A slow leak hides in that tolerance, so the table
# also shows how RSS grew over the second half of the imports (after
# malloc's warm-up), per import, and — when gdb is installed — the heap
# bytes in use (glibc's malloc_stats(), called in raced by gdb) after import
# 1, every K-th (default 20) and the last.  That figure includes the chunks
# glibc's per-thread cache holds (up to 234 KiB, filled over the first
# imports); GLIBC_TUNABLES=glibc.malloc.tcache_count=0 turns the cache off
# and makes it exact.  Prints a table, writes it to DIR/soak.txt and one
# row per import to DIR/soak.dat (default DIR tests/bench/results/); exits
# 1 when a figure is off.  RACED, RACECTL, FIXTURE and CTL_ABUSE name the
# binaries (default: under build/).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
export RACED=${RACED:-$src/build/daemon/raced}
export RACECTL=${RACECTL:-$src/build/ctl/racectl}
export FIXTURE=${FIXTURE:-$src/build/tests/fixture/fixture-provider}
CTL_ABUSE=${CTL_ABUSE:-$src/build/tests/integration/ctl_abuse}
export TESTS_DIR=$src/tests

imports=200 rss_tolerance=10 heap_every=20 results=$here/results
# The provider's connections: fewer than the stages' concurrency, so each
# import uses them all and the count after it is the same every time.
max_connections=4

usage() { sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
	case $1 in
	--imports) imports=$2; shift 2 ;;
	--rss-tolerance) rss_tolerance=$2; shift 2 ;;
	--heap-every) heap_every=$2; shift 2 ;;
	--results) results=$2; shift 2 ;;
	-h|--help) usage; exit 0 ;;
	*) echo "soak.sh: unknown option '$1'" >&2; usage >&2; exit 2 ;;
	esac
done
for n in "$imports" "$heap_every"; do
	[ "$n" -ge 1 ] 2>/dev/null || { echo "soak.sh: --imports and --heap-every want a number >= 1" >&2; exit 2; }
done
for b in "$RACED" "$RACECTL" "$FIXTURE" "$CTL_ABUSE"; do
	[ -x "$b" ] || { echo "soak.sh: build first ($b is missing)" >&2; exit 1; }
done
mkdir -p "$results"
results=$(cd "$results" && pwd)

. "$TESTS_DIR/lib/harness.sh"
say() { printf '# %s\n' "$*" >&2; }

# ---- what raced holds ----------------------------------------------------
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$RACED_PID/status"; }
fd_count() { find "/proc/$RACED_PID/fd" -mindepth 1 -maxdepth 1 | wc -l; }
# How many of raced's fds are sockets among the inodes read on stdin.
own_sockets() {
	local inodes
	inodes=$(cat)
	find "/proc/$RACED_PID/fd" -mindepth 1 -maxdepth 1 -printf '%l\n' 2>/dev/null |
		sed -n 's/^socket:\[\([0-9]*\)\]$/\1/p' | grep -cxF -f <(echo "$inodes"; echo x) || true
}
# Established TCP connections to the fixture's port.
provider_conns() {
	local port
	port=$(printf '%04X' "$(cat "$T/fixture.port")")
	awk -v p=":$port" 'NR > 1 && $4 == "01" && substr($3, length($3) - 4) == p { print $10 }' \
		"/proc/$RACED_PID/net/tcp" "/proc/$RACED_PID/net/tcp6" | own_sockets
}
# Control clients raced still holds (connected sockets on its socket's path):
# racectl has gone, but raced may not have read its hang-up yet.
ctl_clients() {
	awk -v p="$T/raced.sock" 'NR > 1 && $6 == "03" && $8 == p { print $7 }' "/proc/$RACED_PID/net/unix" | own_sockets
}
no_ctl_client() { [ "$(ctl_clients)" = 0 ]; }
# raced's connections carry an application_name of their own (psql's
# backends of this script's earlier queries may still be exiting).
pg_conns() { sql "select count(*) from pg_stat_activity where application_name = 'raced-soak'"; }
run_status() { sql "select status from import_runs where id = $1"; }
ended() { case $(run_status "$1") in ''|running) return 1 ;; esac; }
is_idle() { ctl health | grep -q '^RACED OK - idle'; }
# The bytes malloc has handed out and not had back: glibc's malloc_stats(),
# called in raced by gdb, prints them to raced's stderr (its log).  Exact
# where RSS counts pages; "-" without gdb, and for a raced on mimalloc
# (raced --version), where glibc's heap is not the one in use.
heap_bytes() {
	command -v gdb >/dev/null || { echo -; return; }
	"$RACED" --version | grep -q '^allocator: libc' || { echo -; return; }
	local before
	before=$(wc -l <"$T/raced.log")
	timeout 30 gdb -p "$RACED_PID" -batch -ex 'call (void) malloc_stats()' >/dev/null 2>&1 || { echo -; return; }
	tail -n +"$((before + 1))" "$T/raced.log" |
		awk '/^Total/ { t = 1 } t && /^in use bytes/ { print $NF; exit }' | grep . || echo -
}

# ---- set-up --------------------------------------------------------------
pg_start
fixture_start --seed 8 --races 60 --entries-per-race 10 --athletes 300 --page-size 10 --latency-ms 2
write_config
sed -i -e "s/^max_connections = .*/max_connections = $max_connections/" \
	-e "s/^conninfo = .*/& application_name=raced-soak/" "$T/raced.conf"
fixture_get /_dataset >"$T/dataset.json"
ds() { json_get "$(cat "$T/dataset.json")" "$1"; }
n_items=$(( $(ds races) + $(ds entries) + $(ds athletes_referenced) ))
n_requests=$(ds requests_needed)
raced_start
wait_for "the database to be connected" 20 is_idle
say "soak: $imports imports of $n_items items ($n_requests requests) each, max_connections = $max_connections"

# ---- the imports ---------------------------------------------------------
reloads_applied() { grep -c 'reload: configuration .* in force' "$T/raced.log" || true; }
reload() { # I: SIGHUP after odd imports, racectl reload after even ones
	local want=$(( $(reloads_applied) + 1 ))
	# A changed setting, so that the reload really is one.
	sed -i "s/^batch_size = .*/batch_size = $((200 + $1 % 2))/" "$T/raced.conf"
	if [ $(($1 % 2)) = 1 ]; then
		kill -HUP "$RACED_PID"
		reload_done() { [ "$(reloads_applied)" -ge "$want" ]; }
		wait_for "the SIGHUP reload after import $1" 20 reload_done
	else
		ctl reload >/dev/null || fail "racectl reload after import $1"
	fi
	wait_for "the database after the reload after import $1" 20 is_idle
}
clients() { # ID: the control clients between two imports
	ctl stats >/dev/null || fail "racectl stats after import $1"
	ctl status >/dev/null || fail "racectl status after import $1"
	ctl health >/dev/null || fail "racectl health after import $1"
	ctl status "$1" >/dev/null || fail "racectl status $1"
	"$CTL_ABUSE" "$T/raced.sock" vanish 20 >/dev/null || fail "a client hanging up mid-reply after import $1"
	"$CTL_ABUSE" "$T/raced.sock" garbage >/dev/null || fail "a client sending garbage after import $1"
}

echo "# import rss_kib fds pg_conns provider_conns secs heap_bytes" >"$results/soak.dat"
t_start=$SECONDS
for i in $(seq "$imports"); do
	t0=$(date +%s%N)
	ctl start-import >/dev/null || fail "racectl start-import $i"
	wait_for "import $i to end" 60 ended "$i"
	t1=$(date +%s%N)
	status=$(run_status "$i")
	[ "$status" = succeeded ] || fail "import $i ended $status"
	wait_for "raced to be idle after import $i" 20 is_idle
	wait_for "raced to close its control clients after import $i" 20 no_ctl_client
	heap=-
	[ "$i" = 1 ] || [ $((i % heap_every)) = 0 ] || [ "$i" = "$imports" ] && heap=$(heap_bytes)
	row="$i $(rss_kib) $(fd_count) $(pg_conns) $(provider_conns) $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e9 }') $heap"
	echo "$row" >>"$results/soak.dat"
	[ "$i" = 1 ] && first=$row
	[ $((i % heap_every)) = 0 ] && say "import $i: $row"
	[ "$i" = "$imports" ] && break
	clients "$i"
	reload "$i"
done
last=$row
secs=$((SECONDS - t_start))
stored=$(sql "select (select count(*) from races) + (select count(*) from entries) + (select count(*) from athletes)")
[ "$stored" = "$n_items" ] || fail "stored $stored items, expected $n_items"
import_ms=$(sql "select round(avg(extract(epoch from finished_at - started_at)) * 1000) from import_runs")
not_ok=$(sql "select count(*) from import_runs where status <> 'succeeded'")
[ "$not_ok" = 0 ] || fail "$not_ok imports did not succeed"
raced_stop || fail "raced did not stop cleanly"

# ---- the table -----------------------------------------------------------
# The largest value of column C over every import.
series_max() { awk -v c="$1" '!/^#/ && $c > m { m = $c } END { print m }' "$results/soak.dat"; }
# RSS after the middle import and after the last, and the growth per import.
half=$(( (imports + 1) / 2 ))
h_rss=$(awk -v h="$half" '!/^#/ && $1 == h { print $2 }' "$results/soak.dat")
set -- $first; f_rss=$2 f_fds=$3 f_pg=$4 f_tcp=$5 f_heap=$7
set -- $last; l_rss=$2 l_fds=$3 l_pg=$4 l_tcp=$5 l_heap=$7
rss_pct=$(awk -v a="$f_rss" -v b="$l_rss" 'BEGIN { printf "%+.1f", 100 * (b - a) / a }')
rss_ok=$(awk -v p="$rss_pct" -v t="$rss_tolerance" 'BEGIN { print (p <= t && p >= -t) ? "met" : "MISSED" }')
same() { [ "$1" = "$2" ] && echo met || echo MISSED; }
verdicts="$rss_ok $(same "$f_fds" "$l_fds") $(same "$f_pg" "$l_pg") $(same "$f_tcp" "$l_tcp")"
{
	echo "raced soak: $imports imports of $n_items items ($n_requests requests) each, ${secs}s;" \
		"between two imports stats, status, health, status ID, a client gone mid-reply, garbage, a reload" \
		"(SIGHUP and racectl reload in turn); an import took ${import_ms} ms in raced"
	printf '%-28s %10s %10s %10s %10s %-10s %s\n' measure "import 1" "import $imports" change max target ""
	printf '%-28s %10s %10s %10s %10s %-10s %s\n' "RSS (KiB)" "$f_rss" "$l_rss" "$rss_pct%" "$(series_max 2)" \
		"±$rss_tolerance%" "$rss_ok"
	printf '%-28s %10s %10s %10s %10s %-10s %s\n' "open fds" "$f_fds" "$l_fds" $((l_fds - f_fds)) "$(series_max 3)" \
		"equal" "$(same "$f_fds" "$l_fds")"
	printf '%-28s %10s %10s %10s %10s %-10s %s\n' "PostgreSQL connections" "$f_pg" "$l_pg" $((l_pg - f_pg)) \
		"$(series_max 4)" "equal" "$(same "$f_pg" "$l_pg")"
	printf '%-28s %10s %10s %10s %10s %-10s %s\n' "TCP connections to provider" "$f_tcp" "$l_tcp" $((l_tcp - f_tcp)) \
		"$(series_max 5)" "equal" "$(same "$f_tcp" "$l_tcp")"
	[ "$f_heap" != - ] && [ "$l_heap" != - ] && printf '%-28s %10s %10s %10s %10s %-10s %s\n' "heap in use (bytes)" \
		"$f_heap" "$l_heap" $((l_heap - f_heap)) "$(series_max 7)" "(malloc_stats)" ""
	[ "$imports" -gt "$half" ] && echo "(RSS after import $half: $h_rss KiB; from there to import $imports" \
		"$((l_rss - h_rss)) KiB, $(awk -v a="$h_rss" -v b="$l_rss" -v n=$((imports - half)) \
		'BEGIN { printf "%.2f", (b - a) / n }') KiB per import)"
} | tee "$results/soak.txt"
say "wrote $results/soak.txt, soak.dat"
case " $verdicts " in *" MISSED "*) echo "soak.sh: raced's figures after import $imports differ from import 1's" >&2; exit 1 ;; esac
exit 0
