#!/usr/bin/env bash
# The layout shows the architecture: each folder of lib/ is a layer, and
# docs/architecture.md's folder table says which layers each may include.
# This test reads that table and fails on any #include "x.h" in lib/ whose
# header lives in a folder the including folder may not use, and on a lib/
# folder or a header the table does not account for.
set -uo pipefail
src=${SOURCE_DIR:?}
doc=$src/docs/architecture.md
fail=0
declare -A allowed
# Rows look like: | `lib/json/` | what it is for | base |
while IFS='|' read -r _ folder _ may _; do
	folder=$(sed -E 's/[[:space:]`]//g; s#^lib/##; s#/$##' <<<"$folder")
	may=$(sed -E 's/—|-//g; s/,/ /g' <<<"$may")
	allowed[$folder]="$folder $may"
done < <(grep -E '^\| `lib/[a-z]+/` \|' "$doc")
[ ${#allowed[@]} -gt 0 ] || { echo "FAIL: no folder table in $doc"; exit 1; }

declare -A home
for dir in "$src"/lib/*/; do
	layer=$(basename "$dir")
	if [ -z "${allowed[$layer]+x}" ]; then
		echo "FAIL: lib/$layer/ is not in the folder table of docs/architecture.md"; fail=1
	fi
	for h in "$dir"*.h; do
		[ -e "$h" ] && home[$(basename "$h")]=$layer
	done
done
if compgen -G "$src/lib/*.[ch]" >/dev/null; then
	echo "FAIL: sources directly in lib/ (each belongs to a layer's folder):" "$src"/lib/*.[ch]; fail=1
fi

checked=0
for f in "$src"/lib/*/*.[ch]; do
	layer=$(basename "$(dirname "$f")")
	while read -r hdr; do
		[ "$hdr" = raced_version.h ] && continue
		to=${home[$hdr]:-}
		if [ -z "$to" ]; then
			echo "FAIL: ${f#$src/} includes \"$hdr\", which is in no lib/ folder"; fail=1; continue
		fi
		checked=$((checked + 1))
		case " ${allowed[$layer]} " in
		*" $to "*) ;;
		*) echo "FAIL: ${f#$src/} (layer $layer) includes $to/$hdr; $layer may include: ${allowed[$layer]}"; fail=1 ;;
		esac
	done < <(sed -nE 's/^#include "([^"]+)".*/\1/p' "$f")
done
[ "$checked" -gt 0 ] || { echo "FAIL: no include was checked"; exit 1; }
[ $fail -eq 0 ] && echo "ok: $checked includes across ${#allowed[@]} layers follow docs/architecture.md"
exit $fail
