#!/usr/bin/env bash
# The bound on rows read back ahead (IMPORT_AHEAD_READ_BACK_HELD, 10,000;
# review of issue 15, finding 3) holds the later pages' rows kept on the
# units for their 304s too: races of up to 2,000 entries in pages of 200,
# each input's later pages read back with its first.
. "$TESTS_DIR/lib/harness.sh"
. "$TESTS_DIR/integration/incremental_lib.sh"

pg_start
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
fixture_start --port "$PORT" --seed 5 --races 40 --entries-per-race 2000 --athletes 300 \
	--page-size 200 --validators both
write_config
check "first import succeeds" raced_once
fixture_get /_reset >/dev/null
read_back_next races entries
check "second import (unchanged) succeeds" raced_once
N=$(last_run)
ahead=$(run_count "$N" entries read_back_ahead)
peak=$(run_count "$N" entries read_back_held_peak)
check "later pages read back ahead ($ahead pages)" test "$ahead" -ge 100
check "rows read back ahead held at once within the bound ($peak <= 10000)" \
	test "$peak" -gt 0 -a "$peak" -le 10000
check_eq "import status" "$(sql "select status from import_runs where id = $N")" succeeded
