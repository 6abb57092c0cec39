# The daemon's allocator (daemon/meson.build; docs/performance.md, "The
# allocator"): raced --version names the one the build chose
# (RACED_ALLOCATOR, set by meson), and on mimalloc every library's malloc
# and free are mimalloc's, libcurl's and libpq's included, which the
# dynamic linker shows when it binds them all at once (LD_BIND_NOW).
set -euo pipefail
: "${RACED:?set by meson}" "${RACED_ALLOCATOR:?set by meson}"
fail=0
ok() { echo "ok   $*"; }
bad() { echo "FAIL: $*" >&2; fail=1; }

line=$("$RACED" --version | sed -n 2p)
case "$RACED_ALLOCATOR:$line" in
mimalloc:"allocator: mimalloc "[0-9]*.[0-9]*.[0-9]*) ok "--version: $line" ;;
libc:"allocator: libc") ok "--version: $line" ;;
*) bad "--version says '$line', the build chose $RACED_ALLOCATOR" ;;
esac

binds=$(LD_BIND_NOW=1 LD_DEBUG=bindings "$RACED" --version 2>&1 >/dev/null |
	grep -E "normal symbol \`(malloc|free)'" || true)
for lib in libc.so libcurl.so libpq.so; do
	for sym in malloc free; do
		to=$(grep -F "/$lib" <<<"$binds" | grep -F "\`$sym'" | grep -oE 'to [^ ]+' | head -n 1)
		[ -n "$to" ] || { bad "$lib: no binding of $sym seen"; continue; }
		if [ "$RACED_ALLOCATOR" = mimalloc ]; then
			case "$to" in *libmimalloc*) ok "$lib's $sym is mimalloc's ($to)" ;;
			*) bad "$lib's $sym is not mimalloc's ($to)" ;; esac
		else
			case "$to" in *libmimalloc*) bad "$lib's $sym is mimalloc's in a libc build" ;;
			*) ok "$lib's $sym is not mimalloc's ($to)" ;; esac
		fi
	done
done
exit "$fail"
