# `systemd-analyze security --offline=true` rates the installed
# raced.service with an overall exposure under 2.0 (0 = locked down,
# 10 = fully exposed).  The test prints the score and fails above it.
. "$(dirname "$0")/lib.sh"
install_destdir
max=2.0

out=$(systemd-analyze security --offline=true --no-pager "$UNITDIR/raced.service" 2>&1) ||
	fail "systemd-analyze security failed: $out"
score=$(printf '%s\n' "$out" | sed -n 's/.*Overall exposure level for raced.service: \([0-9.]*\).*/\1/p')
[ -n "$score" ] || fail "no exposure score in: $out"
printf '%s\n' "$out" | grep '^✗' || true
echo "exposure: $score (must be under $max)"
awk -v s="$score" -v m="$max" 'BEGIN { exit !(s < m) }' || fail "exposure $score is not under $max"
