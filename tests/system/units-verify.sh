# The units meson installs pass `systemd-analyze verify`, and the sysusers.d
# file creates the raced user and the raced-admin group.
#
# verify checks that ExecStart= names an executable, but the installed
# raced sits under DESTDIR, not at the unit's absolute path (@sbindir@).
# (`--root=DESTDIR` would find it, but then also looks for sysinit.target
# and /bin/kill under DESTDIR.)  So the test verifies a copy of the units
# whose ExecStart= is rewritten to the DESTDIR binary -- nothing else
# changes -- and points MANPATH at the installed man pages, so the
# Documentation=man:... references are checked against the real pages.
. "$(dirname "$0")/lib.sh"
install_destdir

svc="$UNITDIR/raced.service"
sock="$UNITDIR/raced.socket"
exec_path=$(sed -n 's/^ExecStart=\([^ ]*\).*/\1/p' "$svc")
[ -n "$exec_path" ] || fail "no ExecStart= in $svc"
[ -x "$DEST$exec_path" ] || fail "ExecStart=$exec_path is not where meson installed raced ($SBINDIR)"
grep -q '^Type=notify$' "$svc" || fail "raced.service is not Type=notify"
grep -q "^ExecStart=$exec_path --config /.*/raced/raced.conf$" "$svc" || fail "ExecStart= lacks --config"

copy="$DEST/verify"
mkdir "$copy"
sed "s|^ExecStart=$exec_path|ExecStart=$DEST$exec_path|" "$svc" >"$copy/raced.service"
cp "$sock" "$copy/raced.socket"
out=$(MANPATH="$MANDIR" systemd-analyze verify "$copy/raced.service" "$copy/raced.socket" 2>&1) ||
	fail "systemd-analyze verify: $out"
[ -z "$out" ] || fail "systemd-analyze verify warned: $out"
echo "verify: raced.service and raced.socket clean"

grep -q '^ListenStream=/run/raced/raced.sock$' "$sock" || fail "raced.socket does not listen on /run/raced/raced.sock"
grep -q '^SocketMode=0660$' "$sock" || fail "raced.socket is not mode 0660"
grep -q '^SocketGroup=raced-admin$' "$sock" || fail "raced.socket is not group raced-admin"

root="$DEST/sysroot"
mkdir -p "$root/etc"
systemd-sysusers --root="$root" - <"$SYSUSERSDIR/raced.conf" >/dev/null 2>&1 ||
	fail "systemd-sysusers rejected $SYSUSERSDIR/raced.conf"
grep -q '^raced:x:[0-9]*:[0-9]*:.*:/usr/sbin/nologin$' "$root/etc/passwd" || fail "no raced system user: $(cat "$root/etc/passwd")"
grep -q '^raced-admin:x:[0-9]*:' "$root/etc/group" || fail "no raced-admin group: $(cat "$root/etc/group")"
echo "sysusers: raced user and raced-admin group created"
