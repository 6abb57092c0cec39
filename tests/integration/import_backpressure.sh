#!/usr/bin/env bash
# Backpressure (R6, R7): while the database holds the store back (a lock on
# the entries table blocks its batch), fetching stops.  The requests in
# flight and the events alive in the daemon stay within the bound the
# configuration gives, however large the data set; when the lock goes, the
# import finishes with everything stored.
. "$TESTS_DIR/lib/harness.sh"

pg_start
fixture_start --seed 3 --races 400 --entries-per-race 50 --athletes 500 --page-size 10
cat >"$T/raced.conf" <<CONF
[daemon]
control_socket = $T/raced.sock
admin_group = root
[database]
conninfo = $PG_CONNINFO
batch_size = 25
[provider main]
base_url = $FIXTURE_URL
max_connections = 16
[stage races]
provider = main
url = /races
items = /data
next = /next
key = /id
max_demand = 20
[stage entries]
parent = races
provider = main
url = /races/{id}/entries
items = /data
next = /next
key = /id
max_demand = 50
buffer_size = 50
concurrency = 4
[stage athletes]
parent = entries
provider = main
url = /athletes/{athlete_id}
items =
key = /id
dedupe = yes
max_demand = 50
buffer_size = 50
concurrency = 8
CONF
# R7: per stage, its buffer, what each subscriber may hold (max_demand each,
# the store and the child), and the 1:n overshoot of concurrency pages.
page=10
bound=$(( (20 + 20 + 20 + 1 * page) + (50 + 50 + 50 + 4 * page) + (50 + 50 + 8 * 1) ))
raced_start
wait_for "the database to be connected" 30 ctl health

# The lock comes once the import is fetching: an import begins by reading
# every stage table (are any emptied behind raced's back?), so a lock
# taken before the start holds the whole import up before its first
# request, which would test nothing.  Held by a session that sleeps
# inside its transaction.
check "start-import" ctl start-import
fetching() { [ "$(json_get "$(fixture_get /_stats)" requests)" -gt 0 ]; }
wait_for "the import to fetch" 30 fetching
"$PG_BIN/psql" -qAtX -c "begin; lock table entries in access exclusive mode; select pg_sleep(600);" \
	>"$T/locker.log" 2>&1 &
LOCKER=$!
lock_held() { [ "$(sql "select count(*) from pg_locks l join pg_class c on c.oid = l.relation where c.relname = 'entries' and l.mode = 'AccessExclusiveLock' and l.granted")" = 1 ]; }
wait_for "the lock to be held" 10 lock_held
# Fetching must come to a stop: the provider's request count stops moving.
stable=0 last=-1
deadline=$((SECONDS + 60))
while [ $stable -lt 15 ]; do
	[ $SECONDS -lt $deadline ] || fail "fetching never stopped while the store was blocked"
	n=$(json_get "$(fixture_get /_stats)" requests)
	if [ "$n" = "$last" ]; then stable=$((stable + 1)); else stable=0; last=$n; fi
	sleep 0.1
done
stats=$(ctl --json stats)
live=$(json_get "$stats" result import live_events)
inflight=$(json_get "$stats" result providers 0 in_flight)
needed=$(json_get "$(fixture_get /_dataset)" requests_needed)
echo "     stalled after $last of $needed requests: $live events alive (bound $bound), $inflight in flight"
check "events alive within the R7 bound ($live <= $bound)" test "$live" -le "$bound"
check "requests in flight within concurrency ($inflight <= 13)" test "$inflight" -le 13
check "the fetching stopped far short of the data set" test "$last" -lt $((needed / 2))
check "the fetching had begun: the store, not the start, held it ($last requests)" test "$last" -gt 0
for i in 0 1 2; do
	b=$(json_get "$stats" result stages $i buffered)
	bs=$(json_get "$stats" result stages $i buffer_size)
	check "stage $i buffer within its bound ($b <= $bs)" test "$b" -le "$bs"
done

# Release the lock: the import goes on to the end.
sql "select pg_terminate_backend(pid) from pg_stat_activity where query like '%pg_sleep(600)%' and pid <> pg_backend_pid()" >/dev/null
wait "$LOCKER" 2>/dev/null || true
run_ended() { [ "$(sql 'select status from import_runs where id = 1')" != running ]; }
wait_for "the import to end" 120 run_ended
check_eq "the run succeeded" "$(sql 'select status from import_runs where id = 1')" succeeded
fixture_get /_dataset >"$T/dataset.json"
check_eq "entries stored" "$(sql 'select count(*) from entries')" "$(json_get "$(cat "$T/dataset.json")" entries)"
check_eq "athletes stored" "$(sql 'select count(*) from athletes')" "$(json_get "$(cat "$T/dataset.json")" athletes_referenced)"
raced_stop
