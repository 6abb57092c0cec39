#!/usr/bin/env bash
# Socket activation (SPEC §6): raced under systemd-socket-activate (from
# Debian's systemd package) serves racectl on the socket it was passed
# (LISTEN_FDS), not one of its own.
. "$TESTS_DIR/lib/harness.sh"
command -v systemd-socket-activate >/dev/null || fail "systemd-socket-activate is not installed (package systemd)"

pg_start
fixture_start --seed 2 --races 5 --entries-per-race 4 --athletes 10
write_config
# The configured path differs from the activated one: raced must use the fd.
sed -i "s|^control_socket = .*|control_socket = $T/unused.sock|" "$T/raced.conf"
systemd-socket-activate -l "$T/raced.sock" "$RACED" --config "$T/raced.conf" >"$T/raced.log" 2>&1 &
RACED_PID=$!
wait_for "systemd-socket-activate to listen" 10 test -S "$T/raced.sock"
# The first request starts raced (as a timer's `racectl start-import --wait`
# would): it arrives before raced has connected to the database, and waits
# for that connection rather than being refused.
check "start-import --wait activates raced and the import succeeds" \
	"$RACECTL" --socket "$T/raced.sock" --timeout 20 start-import --wait
check "racectl answers through the passed socket" "$RACECTL" --socket "$T/raced.sock" --timeout 10 version
check "raced did not create its configured socket" test ! -e "$T/unused.sock"
check_eq "the run succeeded" "$(sql 'select status from import_runs where id = 1')" succeeded
raced_stop

# The same first request with the database unreachable: a prompt, clear
# refusal (exit 1), not a client left waiting for an outage to end.
sed -i "s|^conninfo = .*|conninfo = host=$T/nopg dbname=races|" "$T/raced.conf"
rm -f "$T/raced.sock" # the first run's socket node stays behind
systemd-socket-activate -l "$T/raced.sock" "$RACED" --config "$T/raced.conf" >"$T/raced2.log" 2>&1 &
RACED_PID=$!
wait_for "systemd-socket-activate to listen again" 10 test -S "$T/raced.sock"
rc=0
out=$("$RACECTL" --socket "$T/raced.sock" --timeout 10 start-import 2>&1) || rc=$?
check_eq "start-import with the database unreachable exits 1" "$rc" 1
check "it says the database is not connected: $out" grep -q 'database is not connected' <<<"$out"
raced_stop
