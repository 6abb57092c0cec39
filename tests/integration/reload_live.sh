#!/usr/bin/env bash
# Live reload and racectl config (issue 19, item 6).  A reload during an
# import applies a provider's rate_limit (and batch_size, a stage's
# concurrency, log_level) at once (stats show the new limit
# while the import runs, and it ends long before the old rate would allow)
# and keeps the database connection (the backend pid of
# application_name = raced is the same); a changed conninfo waits for the
# import's end (the reply says so) and then opens a new connection.
# racectl config shows each value's file:line or default and never a
# secret.
. "$TESTS_DIR/lib/harness.sh"

pg_start
# 4 race pages + 40 entry pages + 100 athletes: 144 requests, 144 s at 1/s.
fixture_start --seed 5 --races 40 --entries-per-race 10 --athletes 100 --page-size 10
printf 'tok-SECRET-4711\n' >"$T/main.token"
chmod 600 "$T/main.token"
write_config
sed -i "s|^conninfo = .*|conninfo = $PG_CONNINFO password=pw-SECRET-0815|" "$T/raced.conf"
sed -i "s|^max_retries = 5$|max_retries = 5\nrate_limit = 1\ntoken_file = $T/main.token|" "$T/raced.conf"
raced_start

# ---- racectl config ----
line_of() { grep -n "^$1 = " "$T/raced.conf" | head -1 | cut -d: -f1; }
out=$(ctl config)
json=$(ctl --json config)
check "config: rate_limit from raced.conf:$(line_of rate_limit), live" \
	grep -Eq "^\[provider main\] +rate_limit +1 +raced\.conf:$(line_of rate_limit) +live$" <<<"$out"
check "config: max_body is the default" grep -Eq '^\[provider main\] +max_body +16MiB +default +between_imports$' <<<"$out"
check "config: an unset key is said so" grep -Eq '^\[daemon\] +metrics +\(not set\) +default +restart$' <<<"$out"
check "config: the conninfo's password masked" grep -q 'password=\*\*\*' <<<"$out"
check "config: a stage's derived concurrency" grep -Eq '^\[stage races\] +concurrency +1 +default +live$' <<<"$out"
for secret in tok-SECRET-4711 pw-SECRET-0815; do
	check "config (text) never shows $secret" bash -c '! grep -q "$0" <<<"$1"' "$secret" "$out"
	check "config (JSON) never shows $secret" bash -c '! grep -q "$0" <<<"$1"' "$secret" "$json"
done
key_field() { # JSON SECTION KEY FIELD: FIELD of the config reply's row for KEY in SECTION
	"$PG_BIN/psql" -qAtX -d postgres -v ON_ERROR_STOP=1 -v doc="$1" -v sect="$2" -v key="$3" -v f="$4" <<<"
		select k ->> :'f' from jsonb_array_elements((:'doc'::jsonb) #> '{result,keys}') k
		where k ->> 'section' = :'sect' and k ->> 'key' = :'key'"
}
check_eq "config --json: the source of rate_limit" \
	"$(key_field "$json" provider rate_limit source)" "$T/raced.conf:$(line_of rate_limit)"
check_eq "config --json: its line" "$(key_field "$json" provider rate_limit line)" "$(line_of rate_limit)"
check_eq "config --json: its reload class" "$(key_field "$json" provider rate_limit reload)" live
check_eq "config --json: max_body's default" "$(key_field "$json" provider max_body default)" 16MiB
check_eq "config --json: max_body's source" "$(key_field "$json" provider max_body source)" default

backend_pid() { sql "select pid from pg_stat_activity where application_name = 'raced'"; }
pid1=$(backend_pid)
check "raced's connection is in pg_stat_activity" test -n "$pid1"

# ---- a rate changed during an import: at once ----
check "start-import" ctl start-import
requests_over() { [ "$(json_get "$(fixture_get /_stats)" requests)" -ge "$1" ]; }
wait_for "the first requests at 1/s" 30 requests_over 3
sed -i 's/^rate_limit = 1$/rate_limit = 20/; s/^batch_size = 200$/batch_size = 50/; s/^concurrency = 8$/concurrency = 2/' \
	"$T/raced.conf"
reply=$(ctl --json reload)
check_eq "reload: batch_size applied now" "$(json_get "$reply" result applied 0)" "[database] batch_size 200 -> 50"
check_eq "reload: the rate applied now" "$(json_get "$reply" result applied 1)" "[provider main] rate_limit 1 -> 20"
check_eq "reload: a stage's concurrency applied now" "$(json_get "$reply" result applied 2)" "[stage entries] concurrency 8 -> 2"
check_eq "reload: nothing waits" "$(json_get "$reply" result waiting)" "[]"
check_eq "reload: the running import named" "$(json_get "$reply" result waits_for_import)" 1
stats=$(ctl --json stats)
check_eq "stats: the new limit in force" "$(json_get "$stats" result providers 0 rate_limit)" 20.0
check_eq "stats: the stage's new concurrency" "$(json_get "$stats" result stages 1 concurrency)" 2
check_eq "stats: while the import runs" "$(json_get "$stats" result import state)" running
check "the log says what applied now" \
	grep -q 'reload: .*: applied now: \[database\] batch_size 200 -> 50; \[provider main\] rate_limit 1 -> 20; \[stage entries\] concurrency 8 -> 2' "$T/raced.log"
import_done() { [ "$(sql 'select status from import_runs where id = 1')" = succeeded ]; }
# At 1/s the 140-odd requests left would take over two minutes; at 20/s
# about seven seconds.
wait_for "the import to end at the new rate" 60 import_done
check_eq "the connection kept across the live reload" "$(backend_pid)" "$pid1"
out=$(ctl config)
check "config: the new rate in force" grep -Eq '^\[provider main\] +rate_limit +20 ' <<<"$out"
check "config: the new batch_size in force" grep -Eq '^\[database\] +batch_size +50 +raced\.conf:[0-9]+ +live$' <<<"$out"

# ---- idle, only a rate changed: the connection is kept ----
sed -i 's/^rate_limit = 20$/rate_limit = 1/' "$T/raced.conf"
out=$(ctl reload)
check "reload (idle): applied now" grep -q '^  applied now: \[provider main\] rate_limit 20 -> 1$' <<<"$out"
check "the log says the connection is kept" grep -q 'in force; \[database\] unchanged: the database connection is kept' "$T/raced.log"
check_eq "the connection kept across an idle reload" "$(backend_pid)" "$pid1"

# ---- log_level: live ----
printf 'log_level = warning\n' >"$T/level.conf"
sed -i '/^\[daemon\]$/r '"$T/level.conf" "$T/raced.conf"
check "reload to log_level = warning" ctl reload
check "config: log_level warning, live" grep -Eq '^\[daemon\] +log_level +warning +raced\.conf:[0-9]+ +live$' <<<"$(ctl config)"
check "reload (a notice, not logged)" ctl reload
check_eq "no notice logged at log_level = warning" \
	"$(grep -c 'reload: .*: nothing changed' "$T/raced.log" || true)" 0
sed -i 's/^log_level = warning$/log_level = notice/' "$T/raced.conf"
check "reload to log_level = notice" ctl reload
check "notices logged again" grep -q 'reload: .*: applied now: \[daemon\] log_level warning -> notice' "$T/raced.log"

# ---- conninfo changed during an import: waits for its end ----
check "start-import (second)" ctl start-import --full
wait_for "the second import's first requests" 30 requests_over 148
sed -i 's/^\(conninfo = .*\)$/\1 connect_timeout=9/' "$T/raced.conf"
reply=$(ctl --json reload)
check_eq "reload: nothing applied now" "$(json_get "$reply" result applied)" "[]"
check "reload: the conninfo waits" grep -q '^\[database\] conninfo .* -> .*connect_timeout=9' <<<"$(json_get "$reply" result waiting 0)"
check_eq "reload: waits for import 2" "$(json_get "$reply" result waits_for_import)" 2
check "config: the conninfo in force is still the old one" bash -c '! "$RACECTL" config | grep -q connect_timeout'
check_eq "the old connection while the import runs" "$(backend_pid)" "$pid1"
check "the log says what waits" grep -q 'reload: .*: when import 2 ends: \[database\] conninfo' "$T/raced.log"
# Then the rate too: applied now, the conninfo still waits.
sed -i 's/^rate_limit = 1$/rate_limit = 500/' "$T/raced.conf"
out=$(ctl reload)
check "reload (text): the rate applied now" grep -q '^  applied now: \[provider main\] rate_limit 1 -> 500$' <<<"$out"
check "reload (text): the conninfo still waits" grep -q '^  when import 2 ends: \[database\] conninfo' <<<"$out"
import2_done() { [ "$(sql 'select status from import_runs where id = 2')" = succeeded ]; }
wait_for "the second import to end" 60 import2_done
new_pid() { p=$(backend_pid); [ -n "$p" ] && [ "$p" != "$pid1" ]; }
wait_for "a new connection once the import ended" 20 new_pid
check "config: the new conninfo in force, with its line" \
	grep -Eq "^\[database\] +conninfo +.*connect_timeout=9.* +raced\.conf:$(line_of conninfo) +between_imports$" <<<"$(ctl config)"
check "the pending reload was put in force" grep -q 'reload: configuration .* in force$' "$T/raced.log"
for secret in tok-SECRET-4711 pw-SECRET-0815; do
	check "the log never shows $secret" bash -c '! grep -q "$0" "$1"' "$secret" "$T/raced.log"
done

# ---- a key only a restart applies: listed, and not shown as in force ----
sed -i 's/^resume = no$/resume = auto/' "$T/raced.conf"
reply=$(ctl --json reload)
check_eq "reload: resume waits for a restart" "$(json_get "$reply" result restart 0)" "[daemon] resume no -> auto"
check "config: resume in force is still no" \
	grep -Eq '^\[daemon\] +resume +no +raced\.conf:[0-9]+ +restart$' <<<"$(ctl config)"
check_eq "reload again: still waits for a restart" "$(json_get "$(ctl --json reload)" result restart 0)" \
	"[daemon] resume no -> auto"
