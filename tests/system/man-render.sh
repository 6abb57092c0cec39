# The man pages render without a single groff warning (-ww: all of them)
# and `man -l` formats each one.
set -euo pipefail
: "${SOURCE_DIR:?set by meson}"
fail() { echo "FAIL: $*" >&2; exit 1; }

for page in raced.8 racectl.1 raced.conf.5; do
	src="$SOURCE_DIR/docs/$page"
	[ -s "$src" ] || fail "$src is missing or empty"
	warn=$(groff -man -Tutf8 -ww -z "$src" 2>&1) || fail "groff failed on $page: $warn"
	[ -z "$warn" ] || fail "groff warnings in $page: $warn"
	text=$(MANWIDTH=80 LC_ALL=C.UTF-8 man -l -P cat "$src" 2>"${TMPDIR:-/tmp}/man-err.$$") ||
		fail "man -l $page failed: $(cat "${TMPDIR:-/tmp}/man-err.$$")"
	err=$(cat "${TMPDIR:-/tmp}/man-err.$$"); rm -f "${TMPDIR:-/tmp}/man-err.$$"
	[ -z "$err" ] || fail "man -l $page: $err"
	for section in NAME SYNOPSIS DESCRIPTION; do
		# a here-string, not a pipe: grep -q exiting early would SIGPIPE printf
		grep -q "^$section" <<<"$text" || fail "$page has no $section section"
	done
	echo "$page: renders clean ($(printf '%s\n' "$text" | wc -l) lines)"
done
