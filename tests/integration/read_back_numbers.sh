#!/usr/bin/env bash
# A child's URL does not depend on whether its parent was fetched or read
# back (docs/architecture.md, "Fields of ancestors"): a number in the
# parent's text (1e3, 1.50, -0, 1E+2, 0.10e1, ...) goes into the URL as
# PostgreSQL's jsonb prints it (1000, 1.50, 0, 100, 1.0), which is what a
# read-back gives after a 304.  Static files served by nginx (304s on
# unchanged files): races -> entries (/races/{n}/entries.json) ->
# athletes (/athletes/{races.n}_{k}.json: one value carried from the
# grandparent, one of the parent's own).  The first import is all 200s,
# the second, unchanged, all 304s: it asks for the same URLs, makes no
# new input (no stage row written, no page row by a new URL).  Twice:
# with narrow read-backs (the fields alone, `->>`) and with whole rows
# (a field name the SQL cannot read, `n$`, makes them whole: payload as
# jsonb's text, parsed again).  A number longer than a URL as PostgreSQL
# writes it (2e9000) fails its input alike both times, naming the field.
# Skipped (77) only where nginx is not installed.
. "$TESTS_DIR/lib/harness.sh"
. "$TESTS_DIR/lib/nginx.sh"
. "$TESTS_DIR/integration/incremental_lib.sh"
nginx_require
nginx_stop_at_exit

# The races' numbers as the provider writes them, and the entries' (one an
# entry, two entries a race).
NUMS=(1e3 1.50 -0 1E+2 0.10e1 -0.0 12.3450e-2 -1.5E-2 2.5e-10 1e20 100e-2
	9223372036854775808 123456789012345678901234567890 0e-3 1.000e2)
KNUMS=(7e0 0.70e1 -0 1e-3)
BIG=2e9000

pg_start
# What PostgreSQL prints for a number: the URLs' expected text.
pgnum() { sql "select ('{\"a\": $1}'::jsonb)->>'a'"; }

W=$T/www
mkdir -p "$W/athletes"
chmod 755 "$T" "$W" "$W/athletes"
{
	printf '{"data":['
	i=0
	for n in "${NUMS[@]}" "$BIG"; do
		[ $i -gt 0 ] && printf ','
		printf '{"id":"r%d","n":%s,"n$":%s}' $i "$n" "$n"
		i=$((i + 1))
	done
	printf '],"next":null}'
} >"$W/races.json"
: >"$T/want_first.txt"
i=0
for n in "${NUMS[@]}"; do
	p=$(pgnum "$n")
	mkdir -p "$W/races/$p"
	chmod 755 "$W/races" "$W/races/$p"
	printf '{"data":[{"id":"e%d-0","k":%s,"k$":%s},{"id":"e%d-1","k":%s,"k$":%s}],"next":null}' \
		$i "${KNUMS[$((i % 4))]}" "${KNUMS[$((i % 4))]}" \
		$i "${KNUMS[$(((i + 1) % 4))]}" "${KNUMS[$(((i + 1) % 4))]}" >"$W/races/$p/entries.json"
	echo "/races/$p/entries.json" >>"$T/want_first.txt"
	for j in 0 1; do
		k=$(pgnum "${KNUMS[$(((i + j) % 4))]}")
		printf '{"id":"%s_%s"}' "$p" "$k" >"$W/athletes/${p}_$k.json"
		echo "/athletes/${p}_$k.json" >>"$T/want_first.txt"
	done
	i=$((i + 1))
done
sort -o "$T/want_first.txt" "$T/want_first.txt"
echo /races.json >>"$T/want_first.txt"
sort -o "$T/want_first.txt" "$T/want_first.txt"
chmod -R a+rX "$W"
check_eq "1e3 is 1000 in PostgreSQL" "$(pgnum 1e3)" 1000
check_eq "0.10e1 is 1.0" "$(pgnum 0.10e1)" 1.0
check_eq "-0 is 0" "$(pgnum -0)" 0
check_eq "every race has a URL of its own" "$(grep '^/races/' "$T/want_first.txt" | sort -u | wc -l)" "${#NUMS[@]}"
check_eq "every entry an athlete of its own" "$(grep '^/athletes/' "$T/want_first.txt" | sort -u | wc -l)" \
	"$((2 * ${#NUMS[@]}))"
nginx_start "$W"

ALOG() { echo "$NGINX_DIR/access.log"; }
mark() { wc -l <"$(ALOG)"; }
since() { tail -n +"$(($1 + 1))" "$(ALOG)" | awk '{print $9, $7}'; }

# run MODE FIELD KFIELD: both imports with the stages reading FIELD and KFIELD
run() {
	local mode=$1 f=$2 kf=$3 m from N w0 p0
	sql "set client_min_messages = warning; drop schema public cascade; create schema public" >/dev/null
	FIXTURE_URL=$NGINX_URL write_config
	# dedupe on athletes: a second URL for one athlete would be a second input
	sed -i "s|^base_url = .*|base_url = $NGINX_URL|; s|^url = /races$|url = /races.json|;
		s|^url = /races/{id}/entries$|url = /races/{$f}/entries.json|;
		s|^url = /athletes/{athlete_id}$|url = /athletes/{races.$f}_{$kf}.json|;
		s|^conninfo = .*|conninfo = $PG_CONNINFO options='-c log_statement=all'|" "$T/raced.conf"
	m=$(mark)
	raced_once || true
	N=$(last_run)
	since "$m" >"$T/$mode-first.txt"
	check_eq "$mode: first import: every request a 200" "$(grep -vc '^200 ' "$T/$mode-first.txt" || true)" 0
	awk '{print $2}' "$T/$mode-first.txt" | sort >"$T/$mode-first-urls.txt"
	check "$mode: first import: the URLs with the numbers as PostgreSQL writes them" \
		diff -u "$T/want_first.txt" "$T/$mode-first-urls.txt"
	check "$mode: a 200 of the parent with 1e3 gives /races/1000/entries.json" \
		grep -qx '200 /races/1000/entries.json' "$T/$mode-first.txt"
	check_eq "$mode: first import: the big number's input failed, naming the field" \
		"$(sql "select count(*) from import_errors where import_id = $N and stage = 'entries' and
			message like '%''{$f}'' is 8192 bytes or longer%'")" 1
	check_eq "$mode: first import: no other error" \
		"$(sql "select count(*) from import_errors where import_id = $N")" 1
	sql "select stage || ' ' || url from raced_pages order by 1" >"$T/$mode-pages1.txt"
	w0=$(writes)
	p0=$(page_writes)

	m=$(mark)
	from=$(wc -l <"$PG_DIR/server.log")
	raced_once || true
	N=$(last_run)
	since "$m" >"$T/$mode-second.txt"
	check_eq "$mode: unchanged import: every request a 304" \
		"$(grep -vc '^304 ' "$T/$mode-second.txt" || true)" 0
	awk '{print $2}' "$T/$mode-second.txt" | sort >"$T/$mode-second-urls.txt"
	check "$mode: unchanged import: the same URLs as the first" \
		diff -u "$T/want_first.txt" "$T/$mode-second-urls.txt"
	check_eq "$mode: no stage row written (no new input)" "$(writes)" "$w0"
	check_eq "$mode: no page row written" "$(page_writes)" "$p0"
	sql "select stage || ' ' || url from raced_pages order by 1" >"$T/$mode-pages2.txt"
	check "$mode: the page rows by the same URLs" diff -u "$T/$mode-pages1.txt" "$T/$mode-pages2.txt"
	check_eq "$mode: unchanged import: the big number's input failed alike" \
		"$(sql "select count(*) from import_errors where import_id = $N and stage = 'entries' and
			message like '%''{$f}'' is 8192 bytes or longer%'")" 1
	check_eq "$mode: unchanged import: no other error" \
		"$(sql "select count(*) from import_errors where import_id = $N")" 1
	tail -n +"$from" "$PG_DIR/server.log" >"$T/$mode-pglog.txt"
	if [ "$mode" = narrow ]; then
		check "$mode: the races were read back narrow" grep -Eq 'execute raced_read[fp]_races' "$T/$mode-pglog.txt"
		check "$mode: the entries were read back narrow" grep -Eq 'execute raced_read[fp]_entries' "$T/$mode-pglog.txt"
	else
		check "$mode: the races were read back whole" grep -q 'execute raced_read_races' "$T/$mode-pglog.txt"
		check "$mode: the entries were read back whole" grep -q 'execute raced_read_entries' "$T/$mode-pglog.txt"
		check_eq "$mode: none narrow" "$(grep -Ec 'execute raced_read[fp]_' "$T/$mode-pglog.txt" || true)" 0
	fi
}

run narrow n k
run whole 'n$' 'k$'
nginx_stop
echo "all number URL checks passed"
