#!/usr/bin/env bash
# A stop while a first import's finish still makes its secondary indexes
# (docs/architecture.md, "Secondary indexes after a first import"): the
# run's final status is committed before the builds, so raced says that
# the status is written and that the index is left to the next finish or
# connection, not that the status could not be written; the run stays
# 'succeeded', and the next connection makes the index.  The build is held
# by a session that keeps entries locked (ROW EXCLUSIVE: the import's own
# inserts go on, CREATE INDEX's SHARE lock waits).
. "$TESTS_DIR/lib/harness.sh"

pg_start
fixture_start --seed 5 --races 20 --entries-per-race 10 --athletes 60 --page-size 10
write_config
sed -i -e "s|^admin_group = root|&\nstop_timeout = 1s|" "$T/raced.conf"
raced_start
tables_made() { [ "$(sql "select to_regclass('entries') is not null")" = t ]; }
wait_for "the stage tables" 20 tables_made

"$PG_BIN/psql" -qAtX -d "$PGDATABASE" -c "begin; lock table entries in row exclusive mode;
	select pg_sleep(120);" >/dev/null 2>&1 &
HOLDER=$!
EXTRA_PIDS="$EXTRA_PIDS $HOLDER"
end_holder() { sql "select pg_terminate_backend(pid) from pg_stat_activity
	where query like '%pg_sleep(120)%' and pid <> pg_backend_pid()" >/dev/null; }
lock_held() { [ "$(sql "select count(*) from pg_locks where relation = 'entries'::regclass and granted
	and mode = 'RowExclusiveLock'")" -ge 1 ]; }
wait_for "the lock on entries" 20 lock_held

check "start-import" ctl start-import
status_is() { [ "$(sql "select status from import_runs order by id desc limit 1")" = "$1" ]; }
wait_for "the run's status to be committed" 60 status_is succeeded
build_waits() { [ "$(sql "select count(*) from pg_locks where relation = 'entries'::regclass
	and not granted")" -ge 1 ]; }
wait_for "the finish's index build to wait for the lock" 30 build_waits
check_eq "entries' parent_key index not made yet" "$(sql "select to_regclass('entries_parent_key') is null")" t

start=$SECONDS
rc=0
raced_stop || rc=$?
check_eq "raced exits 0" "$rc" 0
check "raced stopped within stop_timeout and its grace ($((SECONDS - start))s <= 20s)" \
	test $((SECONDS - start)) -le 20
check "the log says the status is written" grep -q "final status is written; stopping before the rest of its finish" "$T/raced.log"
says_not() { ! grep -q "$1" "$T/raced.log"; }
check "the log does not say it could not be written" says_not "could not be written"
check_eq "the run stays succeeded" "$(sql "select status from import_runs order by id desc limit 1")" succeeded

check "the lock holder ended" end_holder
no_holder() { [ "$(sql "select count(*) from pg_stat_activity where query like '%pg_sleep(120)%'
	and pid <> pg_backend_pid()")" = 0 ]; }
wait_for "the lock holder to be gone" 20 no_holder
raced_start
index_made() { [ "$(sql "select to_regclass('entries_parent_key') is not null")" = t ]; }
wait_for "the next connection to make the index" 30 index_made
check "raced still answers" ctl version
rc=0
raced_stop || rc=$?
check_eq "raced exits 0 again" "$rc" 0
