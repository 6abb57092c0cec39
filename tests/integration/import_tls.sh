#!/usr/bin/env bash
# HTTPS and HTTP/2 (issue 17 item 4): nginx over TLS with a throwaway CA
# (made here with openssl) serving the fixture's data set as static files.
#  - ca_file: --check-config refuses a missing one (file, line, fix);
#    without it, or with another CA, the server's certificate is refused
#    (peers are always verified): the import fails with an error naming
#    the URL and the setting to change (ca_file), and nothing is
#    requested; with it the import stores everything.
#  - HTTP/1.1 (http_version = 1.1): connections opened (racectl stats,
#    each a TLS handshake) <= max_connections for an import of many
#    requests, none over HTTP/2, and nginx saw as many.
#  - HTTP/2 offered (http_version = auto): every answer over HTTP/2, and
#    with 16 requests on the wire at once the connections opened stay at 2
#    or fewer: streams multiplexed on one connection.  The same over plain
#    http with http_version = 2 (prior knowledge, nginx's h2c) where
#    libcurl is 8 or later; before, --check-config refuses it (tls.h).
#  - TLS session reuse, over TLS 1.3 (tickets) and TLS 1.2 (session IDs):
#    nginx closes each connection after 20 requests, so raced opens many
#    (nginx's $ssl_session_reused tells which resumed a session): with one
#    connection at a time every one after the first resumes; with four at
#    once most do (session_reuse says why not all).
# Skipped (77) where nginx or openssl is not installed.
. "$TESTS_DIR/lib/harness.sh"
. "$TESTS_DIR/lib/nginx.sh"
nginx_require
command -v openssl >/dev/null || { echo "SKIP: openssl is not installed (.ci/install-deps installs it)" >&2; exit 77; }
tls_cleanup() {
	local rc=$?
	if [ $rc != 0 ] && [ -n "$NGINX_DIR" ] && [ -f "$NGINX_DIR/access.log" ]; then
		echo "---- nginx's access log (last 20 lines)" >&2
		tail -n 20 "$NGINX_DIR/access.log" >&2
	fi
	nginx_stop
	# harness_cleanup reads the status from $?; under set -e a failing
	# "(exit $rc)" would end the shell here, leaving the fixture, raced and
	# the cluster running
	set +e
	(exit $rc)
	harness_cleanup
}
trap tls_cleanup EXIT

ARGS=(--seed 3 --races 30 --entries-per-race 20 --athletes 200 --page-size 5)
W=$T/www
"$FIXTURE" "${ARGS[@]}" --export "$W" >/dev/null
nginx_make_ca "$T/ca"
nginx_make_ca "$T/other" # a CA that signed nothing nginx serves
fixture_start "${ARGS[@]}"
n_requests=$(fixture_get /_dataset | grep -o '"requests_needed": *[0-9]*' | grep -o '[0-9]*$')
pg_start

# raced.conf against nginx: MAXCONN, CONCURRENCY, then extra provider lines
tls_config() {
	local maxconn=$1 conc=$2; shift 2
	write_config
	sed -i "s|^base_url = .*|base_url = $NGINX_URL|; s|^url = /races$|url = /races.json|;
		s|^url = /races/{id}/entries$|url = /races/{id}/entries.json|;
		s|^url = /athletes/{athlete_id}$|url = /athletes/{athlete_id}.json|;
		s|^max_connections = .*|max_connections = $maxconn|;
		s|^concurrency = .*|concurrency = $conc|" "$T/raced.conf"
	local line
	for line in "$@"; do sed -i "/^max_connections = /a $line" "$T/raced.conf"; done
}
fresh() { sql "drop table if exists races, entries, athletes cascade" >/dev/null; }
stored() { sql "select (select count(*) from races) + (select count(*) from entries) + (select count(*) from athletes)"; }
n_items=$(fixture_get /_dataset | sed -e 's/[{}" ]//g' | tr , '\n' |
	awk -F: '$1 == "races" || $1 == "entries" || $1 == "athletes_referenced" { n += $2 } END { print n }')
# The run after RUN0 has ended.
ended() { [ "$(sql "select count(*) from import_runs where id > $run0 and status <> 'running'")" -ge 1 ]; }
# One import through the daemon; then its provider's stats in $T/stats.json
import_with_stats() {
	fresh
	run0=$(sql 'select coalesce(max(id), 0) from import_runs')
	raced_start
	check "start-import" ctl start-import
	wait_for "the import to end" 120 ended
	check_eq "the import succeeded" "$(sql "select status from import_runs where id > $run0")" succeeded
	ctl --json stats >"$T/stats.json"
	ctl stats >"$T/stats.txt"
	raced_stop
}
stat() { json_get "$(cat "$T/stats.json")" result providers 0 "$1"; }
# nginx's access log from raced only (nginx_start's probe is curl's)
alog() { grep ' "raced/' "$NGINX_DIR/access.log" || true; }
# connections of raced's requests, and those that resumed a TLS session
alog_conns() { alog | grep -o 'conn=[0-9]*' | sort -u | wc -l; }
alog_resumed() { alog | grep -o 'conn=[0-9]* reused=r' | sort -u | wc -l; }

# ---- ca_file ----
NGINX_TLS=$T/ca nginx_start "$W"
tls_config 4 8 "ca_file = $T/nonexistent.pem"
"$RACED" --config "$T/raced.conf" --check-config >"$T/check.out" 2>&1 && fail "--check-config passed a missing ca_file"
check "--check-config names the file, line and fix of a missing ca_file" \
	grep -qE "raced.conf:[0-9]+: \[provider main\] ca_file: cannot open $T/nonexistent.pem: No such file or directory; set ca_file to a readable PEM file" "$T/check.out"
# A CA raced does not trust: none (the system's CAs), then another one.
# ONE NAME: the error names the URL and ca_file, and nothing reached nginx.
refused() {
	local name=$1 log=$T/raced-$1.log rc=0
	fresh
	"$RACED" --config "$T/raced.conf" --once 2>"$log" || rc=$?
	check "$name: the import fails (raced --once exits 1, got $rc)" test "$rc" = 1
	echo "     $(grep -m 1 -o "GET .*" "$log" || true)"
	check "$name: the error names the URL, the refused certificate and ca_file" \
		grep -qE "GET $NGINX_URL/races.json: the server's certificate was refused: .*set 'ca_file' of \[provider main\]" "$log"
	check_eq "$name: nothing was requested from nginx" "$(alog | grep -c 'GET /' || true)" 0
}
tls_config 4 8
refused "without ca_file"
grep -q "(now: unset, the system's CAs)" "$T/raced-without ca_file.log" || fail "the error says ca_file is unset"
tls_config 4 8 "ca_file = $T/other/ca.pem"
refused "another CA's ca_file"
grep -qF "(now: $T/other/ca.pem)" "$T/raced-another CA's ca_file.log" || fail "the error names the ca_file in force"
tls_config 4 8 "ca_file = $T/ca/ca.pem"
check "--check-config takes a readable ca_file" "$RACED" --config "$T/raced.conf" --check-config

# ---- HTTP/1.1 over TLS: connections <= max_connections ----
tls_config 4 16 "ca_file = $T/ca/ca.pem" "http_version = 1.1"
import_with_stats
check_eq "HTTP/1.1: every item stored" "$(stored)" "$n_items"
check_eq "HTTP/1.1: every URL requested once" "$(stat requests)" "$n_requests"
conns=$(stat connections)
echo "     HTTP/1.1: $n_requests requests over $conns connections (max_connections 4)"
check "HTTP/1.1: connections opened ($conns) <= max_connections (4)" test "$conns" -ge 1 -a "$conns" -le 4
check_eq "HTTP/1.1: no answer over HTTP/2" "$(stat http2)" 0
check_eq "HTTP/1.1: nginx saw HTTP/1.1 only" "$(alog | grep -vc 'HTTP/1.1"' || true)" 0
check_eq "HTTP/1.1: nginx saw the connections raced counted" "$(alog_conns)" "$conns"
check "racectl stats shows the connections opened" grep -qE '^PROVIDER .* CONNECTIONS +HTTP/2' "$T/stats.txt"
nginx_stop

# ---- HTTP/2 offered: multiplexed ----
NGINX_TLS=$T/ca nginx_start "$W"
tls_config 16 16 "ca_file = $T/ca/ca.pem"
import_with_stats
check_eq "HTTP/2: every item stored" "$(stored)" "$n_items"
conns=$(stat connections)
echo "     HTTP/2: $n_requests requests over $conns connections (16 on the wire at once)"
check_eq "HTTP/2: every answer over HTTP/2" "$(stat http2)" "$n_requests"
check "HTTP/2: streams share connections: $conns opened (<= 2) for 16 requests at once" test "$conns" -ge 1 -a "$conns" -le 2
check_eq "HTTP/2: nginx saw HTTP/2 only" "$(alog | grep -vc 'HTTP/2.0"' || true)" 0
check_eq "HTTP/2: nginx saw the connections raced counted" "$(alog_conns)" "$conns"
nginx_stop

# ---- http_version = 2 over plain http: prior knowledge (h2c) ----
# libcurl before 8.0.0 fails every request after the first on such a
# connection (tls.h): there --check-config refuses it, naming the fix.
NGINX_HTTP2=h2c nginx_start "$W"
tls_config 16 16 "http_version = 2"
if [ "$(pkg-config --modversion libcurl | cut -d. -f1)" -lt 8 ]; then
	"$RACED" --config "$T/raced.conf" --check-config >"$T/check.out" 2>&1 && fail "--check-config passed h2c with libcurl 7"
	check "h2c: --check-config refuses it with libcurl $(pkg-config --modversion libcurl), naming line, libcurl and fix" \
		grep -qE "raced.conf:[0-9]+: \[provider main\] http_version: 2 over plain http .* needs libcurl 8.0.0 or later: .*set http_version = auto" "$T/check.out"
else
	import_with_stats
	check_eq "h2c: every item stored" "$(stored)" "$n_items"
	conns=$(stat connections)
	check_eq "h2c: every answer over HTTP/2" "$(stat http2)" "$n_requests"
	check "h2c: streams share connections: $conns opened (<= 2) for 16 requests at once" test "$conns" -ge 1 -a "$conns" -le 2
	check_eq "h2c: nginx saw HTTP/2 only" "$(alog | grep -vc 'HTTP/2.0"' || true)" 0
fi
nginx_stop

# ---- TLS session reuse: connections closed every 20 requests ----
# PROTOCOLS: nginx's ssl_protocols (TLS 1.3 resumes by tickets, 1.2 by
# session IDs from nginx's session cache); MAXCONN and CONCURRENCY raced's.
# One connection at a time: each new connection opens after the last one
# closed, its session (and, over TLS 1.3, its ticket) in the shared cache,
# so every one after the first must resume.  Four at once: over TLS 1.3 a
# connection opened while another's handshake is in flight sometimes makes
# a full handshake (libcurl 7.88 keeps one session per server, OpenSSL's
# ticket arrives after the handshake): about 1 in 35 on a quiet machine,
# up to half with two busy CPUs beside an ASan build (8 of 17 seen), so
# that case asks for a third; over TLS 1.2 it asks for 3/4.
session_reuse() {
	local protocols=$1 maxconn=$2 conc=$3 conns nginx_conns resumed want
	NGINX_TLS=$T/ca NGINX_TLS_PROTOCOLS=$protocols NGINX_HTTP2=no NGINX_EXTRA="keepalive_requests 20;" \
		nginx_start "$W"
	tls_config "$maxconn" "$conc" "ca_file = $T/ca/ca.pem" "http_version = 1.1"
	import_with_stats
	local name="$protocols session reuse, $maxconn connection(s)"
	check_eq "$name: every item stored" "$(stored)" "$n_items"
	conns=$(stat connections)
	nginx_conns=$(alog_conns)
	resumed=$(alog_resumed)
	echo "     $name: $conns connections opened (nginx saw $nginx_conns), $resumed resumed a TLS session"
	check "$name: nginx's limit made raced open many connections ($conns)" \
		test "$conns" -ge $((n_requests / 20))
	check_eq "$name: nginx saw the connections raced counted" "$nginx_conns" "$conns"
	if [ "$maxconn" = 1 ]; then
		check_eq "$name: every connection after the first resumed a session" "$resumed" $((conns - 1))
	else
		if [ "$protocols" = TLSv1.3 ]; then want=$(((conns - maxconn) / 3)); else want=$(((conns - maxconn) * 3 / 4)); fi
		check "$name: $want or more of the connections after the first $maxconn resumed a session ($resumed of $conns)" \
			test "$resumed" -ge "$want" -a "$resumed" -ge 1
	fi
	nginx_stop
}
session_reuse TLSv1.3 1 1
session_reuse TLSv1.3 4 16
session_reuse TLSv1.2 1 1
session_reuse TLSv1.2 4 16
echo "all TLS checks passed"
