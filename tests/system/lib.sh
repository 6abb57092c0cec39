# Shared by the system tests: install the build into a throwaway DESTDIR.
# Sets DEST (removed on exit) and the installed paths UNITDIR, SYSUSERSDIR,
# MANDIR, SBINDIR, found rather than assumed so a changed --prefix or a
# different systemd.pc does not break the tests.
set -euo pipefail

: "${BUILD_DIR:?set by meson}" "${MESON:=meson}"

fail() { echo "FAIL: $*" >&2; exit 1; }

install_destdir() {
	DEST=$(mktemp -d /tmp/raced-system-XXXXXX)
	trap 'rm -rf "$DEST"' EXIT
	"$MESON" install -C "$BUILD_DIR" --destdir "$DEST" --no-rebuild --quiet >/dev/null
	local svc
	svc=$(find "$DEST" -path '*/systemd/system/raced.service' -print -quit)
	[ -n "$svc" ] || fail "meson install put no raced.service under $DEST"
	UNITDIR=$(dirname "$svc")
	SYSUSERSDIR=$(dirname "$(find "$DEST" -path '*/sysusers.d/raced.conf' -print -quit)")
	MANDIR=$(dirname "$(dirname "$(find "$DEST" -path '*/man8/raced.8' -print -quit)")")
	SBINDIR=$(dirname "$(find "$DEST" -path '*/sbin/raced' -print -quit)")
}
