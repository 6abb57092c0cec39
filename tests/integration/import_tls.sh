#!/usr/bin/env bash
# HTTPS and HTTP/2 (issue 17 item 4): nginx over TLS with a throwaway CA
# (made here with openssl) serving the fixture's data set as static files.
#  - ca_file: --check-config refuses a missing one (file, line, fix);
#    without it the server's certificate is refused (peers are always
#    verified) and the import fails; with it the import stores everything.
#  - HTTP/1.1 (http_version = 1.1): connections opened (racectl stats)
#    <= max_connections for an import of many requests, none over HTTP/2.
#  - HTTP/2 offered (http_version = auto): every answer over HTTP/2, and
#    with 16 requests on the wire at once the connections opened stay at 2
#    or fewer: streams multiplexed on one connection.
#  - TLS session reuse: nginx closes each connection after 20 requests, so
#    raced opens many; every connection after the first max_connections
#    resumes a TLS session (nginx's $ssl_session_reused).
# Skipped (77) only where nginx is not installed.
. "$TESTS_DIR/lib/harness.sh"
. "$TESTS_DIR/lib/nginx.sh"
nginx_require
tls_cleanup() { local rc=$?; [ $rc = 0 ] || { cp "$T"/raced.log /tmp/tls17-raced.log 2>/dev/null; cp "$NGINX_DIR"/access.log /tmp/tls17-access.log 2>/dev/null; }; nginx_stop; (exit $rc); harness_cleanup; }
trap tls_cleanup EXIT

ARGS=(--seed 3 --races 30 --entries-per-race 20 --athletes 200 --page-size 5)
W=$T/www
"$FIXTURE" "${ARGS[@]}" --export "$W" >/dev/null
nginx_make_ca "$T/ca"
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
alog_mark() { wc -l <"$NGINX_DIR/access.log"; }
alog_since() { tail -n +"$(($1 + 1))" "$NGINX_DIR/access.log"; }

# ---- ca_file ----
NGINX_TLS=$T/ca nginx_start "$W"
tls_config 4 8 "ca_file = $T/nonexistent.pem"
"$RACED" --config "$T/raced.conf" --check-config >"$T/check.out" 2>&1 && fail "--check-config passed a missing ca_file"
check "--check-config names the file, line and fix of a missing ca_file" \
	grep -qE "raced.conf:[0-9]+: \[provider main\] ca_file: cannot open $T/nonexistent.pem: No such file or directory; set ca_file to a readable PEM file" "$T/check.out"
tls_config 4 8
fresh
if "$RACED" --config "$T/raced.conf" --once 2>"$T/raced-noca.log"; then fail "an import trusted an unknown CA"; fi
check "without ca_file the server's certificate is refused" grep -qi "certificate" "$T/raced-noca.log"
check_eq "nothing was requested from nginx without ca_file" "$(grep -c 'GET /races' "$NGINX_DIR/access.log" || true)" 0
tls_config 4 8 "ca_file = $T/ca/ca.pem"
check "--check-config takes a readable ca_file" "$RACED" --config "$T/raced.conf" --check-config

# ---- HTTP/1.1 over TLS: connections <= max_connections ----
tls_config 4 16 "ca_file = $T/ca/ca.pem" "http_version = 1.1"
m=$(alog_mark)
import_with_stats
check_eq "HTTP/1.1: every item stored" "$(stored)" "$n_items"
check_eq "HTTP/1.1: every URL requested once" "$(stat requests)" "$n_requests"
conns=$(stat connections)
echo "     HTTP/1.1: $n_requests requests over $conns connections (max_connections 4)"
check "HTTP/1.1: connections opened ($conns) <= max_connections (4)" test "$conns" -ge 1 -a "$conns" -le 4
check_eq "HTTP/1.1: no answer over HTTP/2" "$(stat http2)" 0
check_eq "HTTP/1.1: nginx saw HTTP/1.1 only" "$(alog_since "$m" | grep -vc 'HTTP/1.1"' || true)" 0
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
check "HTTP/2: nginx saw HTTP/2" grep -q 'HTTP/2.0"' "$NGINX_DIR/access.log"
nginx_stop

# ---- TLS session reuse: connections closed every 20 requests ----
NGINX_TLS=$T/ca NGINX_HTTP2=no NGINX_EXTRA="keepalive_requests 20;" nginx_start "$W"
tls_config 4 16 "ca_file = $T/ca/ca.pem" "http_version = 1.1"
import_with_stats
check_eq "session reuse: every item stored" "$(stored)" "$n_items"
conns=$(stat connections)
nginx_conns=$(grep -o 'conn=[0-9]*' "$NGINX_DIR/access.log" | sort -u | wc -l)
resumed=$(grep -o 'conn=[0-9]* reused=r' "$NGINX_DIR/access.log" | sort -u | wc -l)
echo "     session reuse: $conns connections opened (nginx saw $nginx_conns), $resumed resumed a TLS session"
check "session reuse: nginx's limit made raced open many connections ($conns)" test "$conns" -ge $((n_requests / 20))
check_eq "session reuse: nginx saw the connections raced counted" "$nginx_conns" "$conns"
check "session reuse: all but the first max_connections resumed a session ($resumed of $conns)" \
	test "$resumed" -ge $((conns - 4))
echo "all TLS checks passed"
