# Every long option that `raced --help` and `racectl --help` list is
# documented in raced(8) and racectl(1) respectively.
#
# The options are taken from the binaries' own --help output (RACED and
# RACECTL, set by meson), so the test follows the code.  A binary whose
# --help lists no --options yet (before the daemon and client are wired)
# makes the test skip (exit 77) rather than pass vacuously.
set -euo pipefail
: "${SOURCE_DIR:?set by meson}" "${RACED:?set by meson}" "${RACECTL:?set by meson}"
fail=0

check() { # binary page
	local bin=$1 page=$2 help opts text
	help=$("$bin" --help 2>&1 || true)
	opts=$(printf '%s\n' "$help" | grep -oE '(^|[^[:alnum:]-])--[a-z][a-z0-9-]*' | grep -oE -- '--[a-z][a-z0-9-]*' | sort -u)
	if [ -z "$opts" ]; then
		echo "SKIP: $(basename "$bin") --help lists no options yet: $(printf '%s' "$help" | head -n 1)"
		return 77
	fi
	text=$(groff -man -Tascii -P-cbou "$SOURCE_DIR/docs/$page" 2>/dev/null)
	for o in $opts; do
		if grep -qF -- "$o" <<<"$text"; then
			echo "$page documents $o"
		else
			echo "FAIL: $(basename "$bin") --help lists $o but $page does not document it" >&2
			fail=1
		fi
	done
}

rc=0
check "$RACED" raced.8 || rc=$?
[ "$rc" -eq 0 ] || [ "$rc" -eq 77 ] || exit "$rc"
rc2=0
check "$RACECTL" racectl.1 || rc2=$?
[ "$fail" -eq 0 ] || exit 1
# Skip only if neither binary has a --help to check yet.
if [ "$rc" -eq 77 ] && [ "$rc2" -eq 77 ]; then exit 77; fi
exit 0
