#!/usr/bin/env bash
# Narrow read-backs (docs/architecture.md, "Reading state", "Narrow, by
# parent"): a 304 on an entries page feeds the athletes stage with only
# the fields the athletes' url reads of each entry (athlete_id), read by
# the race's key.  A stored entry whose athlete_id is not a value (an
# object, missing) or too long for a URL comes whole, so that the athlete
# input fails with the error the whole row gives, as if the entry had been
# fetched; every other entry still reaches the athletes.
. "$TESTS_DIR/lib/harness.sh"
. "$TESTS_DIR/integration/incremental_lib.sh"

pg_start
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
fixture_start --port "$PORT" --seed 7 --races 10 --entries-per-race 5 --athletes 500 --page-size 20 \
	--validators both
write_config
sed -i -e "s|^conninfo = .*|conninfo = $PG_CONNINFO options='-c log_statement=all'|" "$T/raced.conf"
log_lines() { wc -l <"$PG_DIR/server.log"; }

check "first import succeeds" raced_once
reqs_save
athletes=$(reqs_count "k like '/athletes/%'")
# The stored rows of three entries no longer what the provider sends:
# the 304s keep them as stored, and their athletes' URLs cannot be made.
read -r k1 k2 k3 <<<"$(sql "select string_agg(key, ' ' order by key) from (select key from entries
	order by key limit 3) e")"
check "three entries to spoil ($k1 $k2 $k3)" test -n "$k3"
sql "update entries set payload = jsonb_set(payload, '{athlete_id}', '{\"o\": 1}') where key = '$k1';
     update entries set payload = payload - 'athlete_id' where key = '$k2';
     update entries set payload = jsonb_set(payload, '{athlete_id}', to_jsonb(repeat('x', 9000)))
     where key = '$k3'" >/dev/null
fixture_get /_reset >/dev/null
from=$(log_lines)
read_back_next races entries
raced_once || true
N=$(last_run)
reqs_save
check_eq "every entries page answered 304" "$(reqs_count "k like '/races/%' and n <> nm")" 0
check "the entries were read back by the races' keys" \
	grep -q 'execute raced_readp_entries' <(tail -n +"$from" "$PG_DIR/server.log")
check_eq "no entry read back by key (none is another race's)" \
	"$(tail -n +"$from" "$PG_DIR/server.log" | grep -c 'execute raced_readf_entries' || true)" 0
errors() { sql "select count(*) from import_errors where import_id = $N and stage = 'athletes' and message like '$1'"; }
check_eq "an object at athlete_id: the whole row's error" \
	"$(errors "%the parent item has no string or number at %{athlete_id}%")" 1
check_eq "no athlete_id: the whole row's error" \
	"$(errors "%the parent item has no field at %{athlete_id}%")" 1
check_eq "an athlete_id too long: the whole row's error" \
	"$(errors "%is 8192 bytes or longer%")" 1
check_eq "no other error" "$(sql "select count(*) from import_errors where import_id = $N")" 3
# Each of the three entries had its own athlete (seed 7) unless another
# entry shares it: the athletes requested are those of every other entry.
want=$(sql "select count(distinct payload->>'athlete_id') from entries
	where jsonb_typeof(payload->'athlete_id') = 'string' and length(payload->>'athlete_id') < 100")
check_eq "every other entry's athlete requested again" "$(reqs_count "k like '/athletes/%'")" "$want"
check "some athlete left out ($want of $athletes)" test "$want" -lt "$athletes"
