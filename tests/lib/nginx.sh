# nginx.sh — nginx serving a directory of static files on loopback, the
# realistic provider of the incremental-import tests (source this file).
#
#   nginx_require         exit 77 (the test is skipped) when nginx is not
#                         installed; nothing else skips a test
#   nginx_start DIR       serve DIR on 127.0.0.1 at a free port, as the
#                         unprivileged user 'nobody' when run as root;
#                         sets NGINX_URL (http://127.0.0.1:PORT) and NGINX_PID
#   nginx_stop            stop it and wait (safe to call twice)
#   nginx_stop_at_exit    in a test of tests/lib/harness.sh: nginx_stop at
#                         exit, then the harness's clean-up, the test's
#                         exit status kept
#   nginx_make_ca DIR     a throwaway CA and a certificate it signed for
#                         127.0.0.1 and localhost (EC P-256, openssl):
#                         DIR/ca.pem, DIR/server.pem, DIR/server.key
#
# HTTPS (issue 17): with NGINX_TLS=DIR (of nginx_make_ca) nginx_start
# serves over TLS with that certificate, HTTP/2 offered by ALPN unless
# NGINX_HTTP2=no, and NGINX_URL is https://127.0.0.1:PORT; the access log
# then ends each line with "conn=N reused=r|." (nginx's connection number
# and $ssl_session_reused: r for a resumed TLS session).  TLS 1.2 and 1.3
# are offered (NGINX_TLS_PROTOCOLS, e.g. "TLSv1.2", to change that), and
# sessions can be resumed (tickets, and a session cache for 1.2's
# session IDs).  Without NGINX_TLS, NGINX_HTTP2=h2c serves HTTP/2 over
# plain http to clients that speak it from the start (prior knowledge)
# and nothing else.  NGINX_EXTRA is
# put into the http block as it is (e.g. "keepalive_requests 50;").
#
# What it serves: every file as application/json (default_type), with
# ETag (etag on: "mtime-size" in hex) and Last-Modified (the file's mtime),
# honouring If-None-Match (weak comparison, lists, *) and If-Modified-Since
# (if_modified_since exact: the date must be the file's Last-Modified as
# sent, which is what a client sends back) with 304.  A file rewritten
# with the same bytes gets a new mtime, so a new ETag: write files only
# when they change (fixture-provider --export does).
#
# DIR and its parents must be readable by 'nobody' (mktemp -d makes 0700
# directories: chmod 755 them).  nginx keeps its own files (config, pid,
# logs, temp paths) in a directory of its own, NGINX_DIR, removed by
# nginx_stop; its error log is printed when it fails to start.

NGINX_BIN=${NGINX_BIN:-$(command -v nginx || echo /usr/sbin/nginx)}
NGINX_PID=
NGINX_DIR=
NGINX_URL=

nginx_require() {
	if [ ! -x "$NGINX_BIN" ]; then
		echo "SKIP: nginx is not installed (.ci/install-deps installs it)" >&2
		exit 77
	fi
}

nginx__cleanup() { local rc=$?; nginx_stop; (exit $rc); harness_cleanup; }
nginx_stop_at_exit() { trap nginx__cleanup EXIT; }

# The command prefix that runs nginx as nobody when we are root; setpriv
# execs (runuser would stay nginx's parent), so $! is nginx's master.
nginx__as() {
	if [ "$(id -u)" = 0 ]; then
		echo setpriv --reuid=nobody --regid=nogroup --clear-groups --
	fi
}

nginx_make_ca() {
	local d=$1
	mkdir -p "$d"
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
		-subj "/CN=raced test CA" -keyout "$d/ca.key" -out "$d/ca.pem" 2>/dev/null &&
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=127.0.0.1" \
		-keyout "$d/server.key" -out "$d/server.csr" 2>/dev/null &&
	printf 'subjectAltName = IP:127.0.0.1, DNS:localhost\nbasicConstraints = CA:FALSE\n' >"$d/ext.cnf" &&
	openssl x509 -req -in "$d/server.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" -CAcreateserial \
		-days 2 -extfile "$d/ext.cnf" -out "$d/server.pem" 2>/dev/null || {
		echo "nginx_make_ca: openssl failed" >&2; return 1; }
	chmod 644 "$d/server.key"
}

# nginx__listen PORT: the listen line (and certificate) for NGINX_TLS or plain
nginx__listen() {
	if [ -n "${NGINX_TLS:-}" ]; then
		local h2=" http2"
		[ "${NGINX_HTTP2:-yes}" = no ] && h2=
		printf 'listen 127.0.0.1:%s ssl%s;\n\t\tssl_certificate %s/server.pem;\n\t\tssl_certificate_key %s/server.key;\n' \
			"$1" "$h2" "$NGINX_TLS" "$NGINX_TLS"
		# What a provider offers: TLS 1.3 (nginx 1.22 offers only up to
		# 1.2 by default) and resumption of 1.2 sessions by their ID
		# (libcurl's OpenSSL backend sends no 1.2 tickets).
		printf '\t\tssl_protocols %s;\n\t\tssl_session_cache shared:raced_tls:1m;\n' \
			"${NGINX_TLS_PROTOCOLS:-TLSv1.2 TLSv1.3}"
	elif [ "${NGINX_HTTP2:-}" = h2c ]; then
		printf 'listen 127.0.0.1:%s http2;\n' "$1"
	else
		printf 'listen 127.0.0.1:%s;\n' "$1"
	fi
}

# nginx__conf DIR PORT: the configuration, in $NGINX_DIR/nginx.conf
nginx__conf() {
	cat >"$NGINX_DIR/nginx.conf" <<CONF
daemon off;
worker_processes 1;
pid $NGINX_DIR/nginx.pid;
error_log $NGINX_DIR/error.log warn;
events { worker_connections 256; }
http {
	log_format tls '\$remote_addr - \$remote_user [\$time_local] "\$request" \$status \$body_bytes_sent "\$http_referer" "\$http_user_agent" conn=\$connection reused=\$ssl_session_reused';
	access_log $NGINX_DIR/access.log${NGINX_TLS:+ tls};
	${NGINX_EXTRA:-}
	client_body_temp_path $NGINX_DIR/tmp/body;
	proxy_temp_path $NGINX_DIR/tmp/proxy;
	fastcgi_temp_path $NGINX_DIR/tmp/fastcgi;
	uwsgi_temp_path $NGINX_DIR/tmp/uwsgi;
	scgi_temp_path $NGINX_DIR/tmp/scgi;
	types { }
	default_type application/json;
	etag on;
	if_modified_since exact;
	server {
		$(nginx__listen "$2")
		root $1;
		location / { try_files \$uri =404; }
	}
}
CONF
}

nginx_start() {
	local dir port tries=0 deadline
	dir=$(cd "$1" && pwd)
	NGINX_DIR=$(mktemp -d /tmp/raced-nginx.XXXXXX)
	mkdir -p "$NGINX_DIR/tmp"
	[ "$(id -u)" = 0 ] && chown -R nobody "$NGINX_DIR"
	# A free port: a random one, again when nginx finds it taken.
	while :; do
		port=$((20000 + RANDOM % 40000))
		nginx__conf "$dir" "$port"
		: >"$NGINX_DIR/error.log"
		[ "$(id -u)" = 0 ] && chown nobody "$NGINX_DIR/error.log"
		$(nginx__as) "$NGINX_BIN" -e "$NGINX_DIR/error.log" -p "$NGINX_DIR" -c "$NGINX_DIR/nginx.conf" &
		NGINX_PID=$!
		NGINX_URL="http${NGINX_TLS:+s}://127.0.0.1:$port"
		local probe=()
		[ -n "${NGINX_TLS:-}" ] && probe=(--cacert "$NGINX_TLS/ca.pem")
		[ -z "${NGINX_TLS:-}" ] && [ "${NGINX_HTTP2:-}" = h2c ] && probe=(--http2-prior-knowledge)
		deadline=$((SECONDS + 10))
		while kill -0 "$NGINX_PID" 2>/dev/null && [ $SECONDS -lt $deadline ]; do
			curl -s -o /dev/null --max-time 1 "${probe[@]}" "$NGINX_URL/" && return 0
			sleep 0.05
		done
		wait "$NGINX_PID" 2>/dev/null || true
		NGINX_PID=
		tries=$((tries + 1))
		if ! grep -q 'Address already in use' "$NGINX_DIR/error.log" || [ $tries -ge 10 ]; then
			echo "nginx did not start ($NGINX_BIN -p $NGINX_DIR):" >&2
			cat "$NGINX_DIR/error.log" >&2
			return 1
		fi
	done
}

nginx_stop() {
	if [ -n "$NGINX_PID" ]; then
		kill -QUIT "$NGINX_PID" 2>/dev/null || true
		wait "$NGINX_PID" 2>/dev/null || true
		NGINX_PID=
	fi
	[ -n "$NGINX_DIR" ] && rm -rf "$NGINX_DIR"
	NGINX_DIR=
}
