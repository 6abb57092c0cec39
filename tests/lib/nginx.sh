# nginx.sh — nginx serving a directory of static files on loopback, the
# realistic provider of the incremental-import tests (source this file).
#
#   nginx_require         exit 77 (the test is skipped) when nginx is not
#                         installed; nothing else skips a test
#   nginx_start DIR       serve DIR on 127.0.0.1 at a free port, as the
#                         unprivileged user 'nobody' when run as root;
#                         sets NGINX_URL (http://127.0.0.1:PORT) and NGINX_PID
#   nginx_stop            stop it and wait (safe to call twice)
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

# The command prefix that runs nginx as nobody when we are root; setpriv
# execs (runuser would stay nginx's parent), so $! is nginx's master.
nginx__as() {
	if [ "$(id -u)" = 0 ]; then
		echo setpriv --reuid=nobody --regid=nogroup --clear-groups --
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
	access_log $NGINX_DIR/access.log;
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
		listen 127.0.0.1:$2;
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
		NGINX_URL="http://127.0.0.1:$port"
		deadline=$((SECONDS + 10))
		while kill -0 "$NGINX_PID" 2>/dev/null && [ $SECONDS -lt $deadline ]; do
			curl -s -o /dev/null --max-time 1 "$NGINX_URL/" && return 0
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
