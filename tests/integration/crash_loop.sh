#!/usr/bin/env bash
# A crash loop: raced killed with SIGKILL at a random point of an import,
# started again, over and over (PostgreSQL at synchronous_commit = on).
# After each kill:
#   - every stored row is an item the provider served, with its payload
#     (the tables are a prefix of the data served, never anything else);
#   - no torn batch: every batch raced logged as committed is one
#     transaction of exactly its rows (rows grouped by xmin), and at most
#     STORE_MAX_IN_FLIGHT transactions more committed unlogged;
#   - never a duplicate key, and no row committed before is lost;
# after each restart, the killed run is 'interrupted' with counts equal to
# the rows it wrote, and the log says so; at the end one more import
# completes the data exactly.  (The fixture serves no key twice, so a
# batch's logged row count is its rows' count in the table.)
#
# Settable: CRASH_LOOP_ITERATIONS (default 12), CRASH_LOOP_SECONDS (time
# bound of the loop, default 60), CRASH_LOOP_KILL_MAX_MS (kill points are
# drawn from 0 .. this after start-import, default 2500), CRASH_LOOP_SEED
# (the seed of the kill points; printed, to replay a failure).
. "$TESTS_DIR/lib/harness.sh"

iterations=${CRASH_LOOP_ITERATIONS:-12}
bound=${CRASH_LOOP_SECONDS:-60}
kill_max_ms=${CRASH_LOOP_KILL_MAX_MS:-2500}
seed=${CRASH_LOOP_SEED:-$(( $(od -An -N2 -tu2 /dev/urandom) % 32768 ))}
echo "crash loop: seed $seed (replay with CRASH_LOOP_SEED=$seed), up to $iterations kills in ${bound}s"
RANDOM=$seed
in_flight_max=8   # STORE_MAX_IN_FLIGHT (lib/store/store.h)
stages="races entries athletes"
started=$SECONDS

pg_start
sql "alter system set synchronous_commit = on" >/dev/null
sql "select pg_reload_conf()" >/dev/null
check_eq "PostgreSQL runs with synchronous_commit" "$(sql 'show synchronous_commit')" on
fixture_start --seed 13 --races 30 --entries-per-race 15 --athletes 120 --page-size 5 --latency-ms 20
write_config
sed -i 's/^max_retries = 5$/max_retries = 5\nrate_limit = 100/' "$T/raced.conf"

# What the provider serves, by key, in a schema of its own.
sql "create schema served" >/dev/null
for st in $stages; do
	fixture_get "/_dump/$st" >"$T/served-$st.json"
	sql "create table served.$st as select value->>'id' as key, value as doc
	     from jsonb_array_elements(pg_read_file('$T/served-$st.json')::jsonb)" >/dev/null
done

# Every stored row is a served item with its payload; no key twice; no
# row committed before is gone.
declare -A had=([races]=0 [entries]=0 [athletes]=0)
check_prefix() { # ITERATION
	local st n
	for st in $stages; do
		n=$(sql "select count(*) from $st")
		check "[$1] no $st row lost ($n >= ${had[$st]})" test "$n" -ge "${had[$st]}"
		had[$st]=$n
		# (a row the killed import did not reach keeps the mark stale_rows gave it)
		check_eq "[$1] every $st row is a served item with its payload" \
			"$(sql "select count(*) from $st t left join served.$st s using (key)
			        where s.doc is distinct from t.payload - 'crash_loop_stale'")" 0
		check_eq "[$1] no $st key twice" "$(sql "select count(*) - count(distinct key) from $st")" 0
	done
}

lines() { grep -c . || true; }

# Each batch the log says committed is one transaction of exactly its rows.
check_batches() { # IMPORT LOG
	local st logged groups missing extra
	for st in $stages; do
		logged=$({ log_lines "$2" | grep -o "^<7>import $1: database: committed [0-9]* rows\? of $st\$" || true; } |
			awk '{print $5}' | sort)
		groups=$(sql "select count(*) from $st where last_import = $1 group by xmin::text" | sort)
		missing=$(comm -23 <(printf '%s\n' $logged) <(printf '%s\n' $groups) | lines)
		check_eq "[$1] every $st batch logged committed is whole in one transaction" "$missing" 0
		extra=$(( $(printf '%s\n' $groups | lines) - $(printf '%s\n' $logged | lines) ))
		check "[$1] at most $in_flight_max $st transactions committed unlogged ($extra)" \
			test "$extra" -le "$in_flight_max"
	done
}

# The killed run, as the restart marked it: counts equal the rows it wrote.
check_marked() { # IMPORT
	local status st total=0 list=
	status=$(sql "select status from import_runs where id = $1")
	if [ "$status" = succeeded ]; then
		echo "     [$1] the import had ended before the kill"
		return 0
	fi
	check_eq "[$1] the killed run is marked interrupted" "$status" interrupted
	for st in $stages; do
		rows=$(sql "select count(*) from $st where last_import = $1")
		check_eq "[$1] counts.$st.stored equals the rows written" \
			"$(sql "select counts->'$st'->>'stored' from import_runs where id = $1")" "$rows"
		total=$((total + rows))
		list="$list${list:+, }$st $rows"
	done
	check "[$1] the start-up log says so" grep -q \
		"^<4>import $1 was running when raced stopped (last alive [^)]*): marked interrupted, $total rows stored ($list)\$" \
		<(log_lines "$T/raced.log")
}

is_marked() { [ "$(sql "select status from import_runs where id = $1")" != running ]; }

# An import writes only the rows that changed (last_import is the import
# that wrote the row): alter every stored row before the next import, so
# that it rewrites every row it reaches and each of its batches is whole
# in the table (the checks above read its rows by last_import, and
# compare payloads without the marker).
stale_rows() {
	local st
	# and forget the state of the pages, so that no item is taken as
	# unchanged before PostgreSQL compares it
	[ "$(sql "select to_regclass('raced_pages') is not null")" = t ] &&
		sql "delete from raced_pages" >/dev/null
	for st in $stages; do
		# (a kill before the tables were made leaves none)
		[ "$(sql "select to_regclass('$st') is not null")" = t ] || continue
		sql "update $st set payload = payload || '{\"crash_loop_stale\": true}'" >/dev/null
	done
}

i=0
while [ "$i" -lt "$iterations" ] && [ $((SECONDS - started)) -lt "$bound" ]; do
	i=$((i + 1))
	stale_rows
	raced_start --verbose
	if [ "$i" -gt 1 ]; then
		wait_for "import $((i - 1)) to be marked" 20 is_marked $((i - 1))
		check_marked $((i - 1))
	fi
	check_eq "[$i] start-import" "$(ctl start-import)" "import $i started"
	delay_ms=$((RANDOM % kill_max_ms))
	sleep "$(printf '%d.%03d' $((delay_ms / 1000)) $((delay_ms % 1000)))" # the kill point itself
	kill -KILL "$RACED_PID"
	wait "$RACED_PID" 2>/dev/null || true
	RACED_PID=
	echo "     [$i] killed ${delay_ms} ms after start-import, $(sql "select count(*) from entries where last_import = $i") entries written by it"
	check_prefix "$i"
	check_batches "$i" "$T/raced.log"
	mv "$T/raced.log" "$T/raced-$i.log"
done
check "at least 2 kills within ${bound}s" test "$i" -ge 2

# The next import completes the data exactly.
stale_rows
raced_start
wait_for "import $i to be marked" 20 is_marked "$i"
check_marked "$i"
check "the next import succeeds" ctl start-import --wait --interval 0.2
last=$((i + 1))
check_eq "import $last succeeded" "$(sql "select status from import_runs where id = $last")" succeeded
for st in $stages; do
	check_eq "$st equal the data served" \
		"$(sql "select count(*) from $st t full join served.$st s using (key)
		        where s.doc is distinct from t.payload")" 0
	check_eq "every $st row seen by import $last" \
		"$(sql "select count(*) from $st where last_import <> $last")" 0
done
check_eq "one run a start-import" "$(sql 'select count(*) from import_runs')" "$last"
check_eq "no run left running" "$(sql "select count(*) from import_runs where status = 'running'")" 0
raced_stop
echo "crash loop: $i kills in $((SECONDS - started))s, seed $seed"
