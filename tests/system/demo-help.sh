# tests/demo.sh --help: usage at once, exit 0, nothing installed or built;
# bold headings only on a terminal (through a pty from script(1)), plain
# text in a pipe.  The demo itself installs packages, so the suite does not
# run it.
set -euo pipefail
: "${SOURCE_DIR:?set by meson}"
fail() { echo "FAIL: $*" >&2; exit 1; }

demo=$SOURCE_DIR/tests/demo.sh
start=$(date +%s%N)
out=$(timeout 10 "$demo" --help) || fail "demo.sh --help exited $?"
ms=$(( ($(date +%s%N) - start) / 1000000 ))
[ "$ms" -lt 1000 ] || fail "demo.sh --help took $ms ms"
grep -q '^Usage: tests/demo.sh \[FIXTURE OPTIONS\.\.\.\]$' <<<"$out" || fail "no usage line: $out"
grep -q '^Exit status: 0 when the import succeeded, 1 otherwise\.$' <<<"$out" || fail "no exit status: $out"
echo "ok   demo.sh --help prints its usage and exits 0 in $ms ms"
out=$(timeout 10 "$demo" -h | cat)
grep -q '^Usage: ' <<<"$out" || fail "-h: no usage line: $out"
[[ $out != *$'\033'* ]] && echo "ok   no escape codes when stdout is a pipe" || fail "escape codes in a pipe"
tty_out=$(timeout 10 script -qec "$demo --help" /dev/null) || fail "demo.sh --help on a pty exited $?"
[[ $tty_out == *$'\033[1mUsage: '* ]] && echo "ok   a bold usage line on a terminal" ||
	fail "no bold on a terminal: $tty_out"
