# bench.sh — what the benchmark scripts share (tests/bench/run.sh,
# tests/bench/fetch_cpu.sh): the fixture provider, and where the CPU time
# of a run goes (source this file; set T, a private directory, and
# FIXTURE, the fixture binary, first).
#
#   fixture_start ARGS...  the fixture provider on 127.0.0.1 (a free port)
#                          with --seed ${seed:-1} --page-size
#                          ${page_size:-50} ARGS, its log in
#                          $T/fixture.log; waits (30 s at most) until it
#                          listens; sets URL and FIXTURE_PID (a running
#                          one is stopped first)
#   fixture_stop           stop it and wait (safe to call twice)
#   get PATH               GET $URL PATH to stdout;  reset: POST /_reset
#   ticks PID...           CPU ticks (user + system, own and reaped
#                          children's) of the processes, all threads
#   tick_secs T0 T1        ticks to seconds
#   busy_ticks             busy ticks of the whole machine
#   pg_running, pg_pids    the throwaway cluster (pgcluster.sh) runs / its
#                          postmaster and children
#   pg_backends_gone       wait (5 s at most) until raced's backends exited
#
# Where the time goes (issue 17 part 5): a run is bracketed by
#   cpu_begin              samples the provider ($PROVIDER: fixture, the
#                          default, or nginx: its master and workers, via
#                          NGINX_PID), PostgreSQL (when its cluster runs)
#                          and the machine
#   cpu_end                samples again (after raced's backends exited:
#                          a backend's time reaches the postmaster's
#                          reaped-children fields only then); sets
#                          CPU_PROV, CPU_PG, CPU_BUSY (seconds)
#   cpu_row LABEL ITEMS SECS CLIENT_S [REF]
#                          one row of CPU_ROWS: ITEMS in SECS (wall), the
#                          client's (raced's or wrk's) CPU seconds and the
#                          last cpu_end's; REF is the label of an earlier
#                          row whose items/s this one is compared with
#   cpu_table              CPU_ROWS as a table: items/s; CPU ms per 1,000
#                          items of the client, PostgreSQL, the provider
#                          and the rest of the machine (loopback softirq,
#                          other processes); the CPU bound = items/s that
#                          nproc CPUs doing nothing but the three costs
#                          would allow = nproc / (their CPU s an item);
#                          the rate over the bound; the machine's idle
#                          share; the share of one CPU the client and
#                          PostgreSQL used; the rate over REF's.
# A ratio to the bound well below 1 with idle CPU means waiting (latency,
# a queue, a lock) or one thread at 100 % of a CPU (raced's event loop:
# the client's share); with no idle CPU, the "other" column or the
# scheduler.  Only rows of one run compare.

HZ=$(getconf CLK_TCK)
FIXTURE_PID=${FIXTURE_PID:-}
PROVIDER=${PROVIDER:-fixture}
CPU_ROWS=()

fixture_start() { # ARGS...
	fixture_stop
	rm -f "$T/fixture.port"
	"$FIXTURE" --port-file "$T/fixture.port" --seed "${seed:-1}" --page-size "${page_size:-50}" "$@" \
		>"$T/fixture.log" 2>&1 &
	FIXTURE_PID=$!
	local _
	for _ in $(seq 600); do
		[ -s "$T/fixture.port" ] && break
		kill -0 "$FIXTURE_PID" 2>/dev/null || break
		sleep 0.05
	done
	[ -s "$T/fixture.port" ] || {
		echo "${0##*/}: the fixture did not start ($FIXTURE):" >&2
		tail -n 5 "$T/fixture.log" >&2
		exit 1
	}
	URL="http://127.0.0.1:$(cat "$T/fixture.port")"
}
fixture_stop() {
	[ -n "$FIXTURE_PID" ] || return 0
	kill "$FIXTURE_PID" 2>/dev/null || true
	wait "$FIXTURE_PID" 2>/dev/null || true
	FIXTURE_PID=
}
get() { curl -sf --max-time 60 "$URL$1"; }
reset() { curl -sf -X POST "$URL/_reset" >/dev/null; }

ticks() {
	local p t sum=0
	for p in "$@"; do
		# Fields after the ")" that ends the command name: utime is the 12th.
		# A process may exit meanwhile (an autovacuum worker): it counts 0.
		t=$(sed 's/.*) //' "/proc/$p/stat" 2>/dev/null | awk '{ print $12 + $13 + $14 + $15 }') || t=
		sum=$((sum + ${t:-0}))
	done
	echo "$sum"
}
tick_secs() { awk -v a="$1" -v b="$2" -v hz="$HZ" 'BEGIN { printf "%.2f", (b - a) / hz }'; } # T0 T1
# Busy ticks of the whole machine (user, nice, system, irq, softirq): also
# the loopback traffic's softirq work, which no process's own times count.
busy_ticks() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 }' /proc/stat; }
pg_running() { [ -n "${PG_DIR:-}" ] && [ -s "$PG_DIR/data/postmaster.pid" ]; }
# The postmaster and its children: a backend's CPU time reaches the
# postmaster's children's fields once it has exited and been reaped.
pg_pids() { local pm; pm=$(head -n 1 "$PG_DIR/data/postmaster.pid"); echo "$pm" $(pgrep -P "$pm"); }
pg_backends_gone() {
	local pm _; pm=$(head -n 1 "$PG_DIR/data/postmaster.pid")
	for _ in $(seq 100); do pgrep -P "$pm" -f "postgres: raced" >/dev/null || return 0; sleep 0.05; done
	echo "${0##*/}: raced's PostgreSQL backend did not exit" >&2; return 1
}

# nginx's master and its workers (a worker's time reaches the master's
# reaped-children fields when it exits).
provider_pids() {
	case $PROVIDER in
	nginx) echo "$NGINX_PID" $(pgrep -P "$NGINX_PID") ;;
	*) echo "$FIXTURE_PID" ;;
	esac
}
cpu__sample() { # prints "PROVIDER PG BUSY" ticks
	local pg=0
	if pg_running; then pg=$(ticks $(pg_pids)); fi
	echo "$(ticks $(provider_pids)) $pg $(busy_ticks)"
}
cpu_begin() { CPU__T0=$(cpu__sample); CPU__PG=; pg_running && CPU__PG=1; return 0; }
cpu_end() {
	[ -z "$CPU__PG" ] || pg_backends_gone
	local p0 g0 b0 p1 g1 b1
	read -r p0 g0 b0 <<<"$CPU__T0"
	read -r p1 g1 b1 <<<"$(cpu__sample)"
	CPU_PROV=$(tick_secs "$p0" "$p1") CPU_BUSY=$(tick_secs "$b0" "$b1")
	if [ -n "$CPU__PG" ]; then CPU_PG=$(tick_secs "$g0" "$g1"); else CPU_PG=0; fi
}
cpu_row() { # LABEL ITEMS SECS CLIENT_S [REF]
	CPU_ROWS+=("$1|$2|$3|$4|$CPU_PG|$CPU_PROV|$CPU_BUSY|$PROVIDER|${5:-}")
}
cpu_table() {
	local row
	printf '%s\n' "${CPU_ROWS[@]}" | awk -F'|' -v ncpu="$(nproc)" '
	BEGIN {
		printf "%-30s %9s %8s %8s %8s %8s %9s %6s %5s %5s %5s %6s %s\n", "part", "items/s",
			"client", "PG", "provider", "other", "bound/s", "x bnd", "idle", "cl%", "PG%", "x ref", "ref"
	}
	{
		label = $1; n = $2; secs = $3; cl = $4; pg = $5; pv = $6; busy = $7
		rate = n / secs; rates[label] = rate
		ms = 1e6 / n # CPU seconds -> ms per 1,000 items
		other = busy - cl - pg - pv; if (other < 0) other = 0
		own = cl + pg + pv
		bound = own > 0 ? ncpu * n / own : 0
		idle = 1 - busy / (ncpu * secs); if (idle < 0) idle = 0
		ref = "-"
		if ($9 != "" && ($9 in rates)) ref = sprintf("%.2f", rate / rates[$9])
		xb = 0
		if (bound > 0) xb = rate / bound
		printf "%-30s %9.0f %8.1f %8.1f %8.1f %8.1f %9.0f %6.2f %4.0f%% %4.0f%% %4.0f%% %6s %s\n", label,
			rate, cl * ms, pg * ms, pv * ms, other * ms, bound, xb, 100 * idle, 100 * cl / secs,
			100 * pg / secs, ref, $9
	}'
	echo "(CPU ms per 1,000 items: client = raced or wrk, PG = the postmaster and all its children," \
		"provider = the fixture or nginx's master and workers, other = the rest of the machine's busy time;" \
		"bound = $(nproc) CPUs / (client + PG + provider CPU s an item); idle = the machine's;" \
		"cl% and PG% = the share of one CPU the client and PostgreSQL used (raced is one thread:" \
		"near 100 % it is the limit, whatever the bound); wrk rows count the items an import's requests carry)"
}
# The rate of row LABEL over its CPU bound ("-" without that row).
cpu_bound_ratio() { # LABEL
	local row
	row=$(printf '%s\n' "${CPU_ROWS[@]}" | awk -F'|' -v l="$1" '$1 == l' | tail -n 1)
	[ -n "$row" ] || { echo -; return; }
	awk -F'|' -v ncpu="$(nproc)" '{ own = $4 + $5 + $6
		if (own <= 0) print "-"; else printf "%.2f\n", ($2 / $3) / (ncpu * $2 / own) }' <<<"$row"
}
