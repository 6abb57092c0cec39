#!/usr/bin/env bash
# raced's sessions run without JIT (SET jit = off at connect, on the
# write connections and the reader): on a server whose jit_above_cost its
# statements' estimates pass, each prepared link write's first custom
# plans spent 160-340 ms compiling for 5-10 ms of work, and held a
# resume's state reads behind them (docs/performance.md, "Resume",
# 2026-12-07).  Here the cluster compiles every planned statement
# (jit_above_cost = 0) and pg_stat_statements counts what was compiled:
# a first import and a second one (state reads, read-backs on the reader,
# link writes) compile nothing.  Skipped (77) where the server has no JIT
# provider (llvmjit not installed) or no pg_stat_statements.
. "$TESTS_DIR/lib/harness.sh"

pg_cluster_init "$T/pg"
cat >>"$PG_DIR/data/postgresql.conf" <<CONF
shared_preload_libraries = 'pg_stat_statements'
jit = on
jit_above_cost = 0
CONF
pg_cluster_start
sql "create extension if not exists pg_stat_statements" >/dev/null 2>&1 || {
	echo "SKIP: pg_stat_statements is not available"; exit 77; }

# The server compiles when a session leaves jit on (the probe's own
# statement, the only one of this session).
sql "select sum(x) from generate_series(1, 1000) as g(x)" >/dev/null
probe_jit=$(sql "select coalesce(sum(jit_functions), 0) from pg_stat_statements
                 where query like 'select sum(x) from generate_series%'")
[ "$probe_jit" -gt 0 ] || { echo "SKIP: this server does not compile (no JIT provider)"; exit 77; }
echo "ok   a session with jit on compiles ($probe_jit functions)"

fixture_start --seed 11 --races 12 --entries-per-race 8 --athletes 30 --page-size 5
write_config
# Two connections: the reader is a session of its own.
sed -i 's/^batch_size = 200$/batch_size = 200\nconnections = 2/' "$T/raced.conf"
check "the config has two connections" grep -q '^connections = 2$' "$T/raced.conf"

sql "select pg_stat_statements_reset()" >/dev/null
check "a first raced --once succeeds" "$RACED" --config "$T/raced.conf" --once 2>"$T/raced.log"
check "a second raced --once succeeds" "$RACED" --config "$T/raced.conf" --once 2>>"$T/raced.log"
# raced's statements: everything since the reset but the reads of
# pg_stat_statements (this test's only statements until they are done).
ours="query not like '%pg_stat_statements%'"
calls=$(sql "select coalesce(sum(calls), 0) from pg_stat_statements where $ours")
links=$(sql "select count(*) from pg_stat_statements where $ours and query like '%_parents%'")
jit=$(sql "select coalesce(sum(jit_functions), 0) from pg_stat_statements where $ours")
check "raced's statements were counted ($calls calls)" test "$calls" -gt 100
check "the link writes were among them" test "$links" -gt 0
check_eq "none of raced's statements was compiled (JIT functions)" "$jit" 0
check_eq "both imports succeeded" "$(sql "select count(*) from import_runs where status = 'succeeded'")" 2
