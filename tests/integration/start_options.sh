#!/usr/bin/env bash
# start-import --full and --resume as raced and racectl take them (issues
# 15 and 20): --full runs a plain import that reads no state; --resume
# with nothing to resume, or of a succeeded import, is refused with why;
# the two together are a usage error.
. "$TESTS_DIR/lib/harness.sh"

pg_start
fixture_start --seed 3 --races 6 --entries-per-race 3 --athletes 10 --page-size 4
expect() { json_get "$(fixture_get /_dataset)" "$@"; }
write_config

usage() { # DESC WANT-REGEX ARGS...
	local desc=$1 want=$2 rc=0 out; shift 2
	out=$("$@" 2>&1) || rc=$?
	check_eq "$desc: exit code" "$rc" 2
	check "$desc: message" grep -qE -- "$want" <<<"$out"
}
usage "raced --full needs --once" "--full applies to the import --once runs" \
	"$RACED" --config "$T/raced.conf" --full
usage "raced --resume needs --once" "--resume applies to the import --once runs" \
	"$RACED" --config "$T/raced.conf" --resume=3
usage "raced --once --full --resume" "--full and --resume exclude each other" \
	"$RACED" --config "$T/raced.conf" --once --full --resume
usage "raced --resume=ID takes a positive id" "--resume=ID takes an import id" \
	"$RACED" --config "$T/raced.conf" --once --resume=x

check "raced --once --full imports" "$RACED" --config "$T/raced.conf" --once --full 2>"$T/once.log"
check "and says the import is full" grep -q "started (requested by raced --once), full: no state read" "$T/once.log"
check_eq "every entry stored" "$(sql 'select count(*) from entries')" "$(expect entries)"
rc=0
"$RACED" --config "$T/raced.conf" --once --resume 2>"$T/resume.log" || rc=$?
check_eq "raced --once --resume refused: exit code" "$rc" 1
check "raced --once --resume with nothing to resume says so" \
	grep -q "there is no interrupted import to resume: start a new one" "$T/resume.log"

raced_start
out=$(ctl start-import --full --wait --interval 0.2)
check "racectl start-import --full --wait succeeds" grep -q "succeeded$" <<<"$out"
check_eq "the full import is run 2" "$(sql "select count(*) from import_runs where status = 'succeeded'")" 2
rc=0
out=$(ctl start-import --resume 1 2>&1) || rc=$?
check_eq "racectl start-import --resume of a succeeded import: exit code" "$rc" 1
check "and it names the status" grep -q "import 1 ended 'succeeded'" <<<"$out"
rc=0
ctl start-import --full --resume >/dev/null 2>&1 || rc=$?
check_eq "racectl start-import --full --resume: usage error" "$rc" 2
raced_stop
