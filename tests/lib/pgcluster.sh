# pgcluster.sh — a throwaway PostgreSQL cluster for tests (source this file).
#
#   pg_cluster_init DIR   initdb into DIR/data (as the 'postgres' user when
#                         run as root: PostgreSQL refuses to run as root)
#   pg_cluster_start      start it on a Unix socket in DIR/sock; exports
#                         PGHOST, PGPORT, PGUSER, PGDATABASE and
#                         PG_CONNINFO (a libpq conninfo for raced)
#   pg_cluster_stop       fast shutdown (safe to call twice)
#   pg_cluster_psql SQL   run SQL, print unaligned tuples-only output
#
# The cluster listens on no TCP port, runs with fsync off, and is removed
# with DIR by the caller.

PG_BIN=${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)}

pg__as() {
	if [ "$(id -u)" = 0 ]; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

pg_cluster_init() {
	PG_DIR=$1
	mkdir -p "$PG_DIR/sock"
	if [ "$(id -u)" = 0 ]; then
		chown postgres "$PG_DIR" "$PG_DIR/sock"
		chmod 755 "$PG_DIR"
	fi
	pg__as "$PG_BIN/initdb" --no-sync -A trust -U raced -D "$PG_DIR/data" >"$PG_DIR/initdb.log" 2>&1 || {
		cat "$PG_DIR/initdb.log" >&2
		return 1
	}
	cat >>"$PG_DIR/data/postgresql.conf" <<CONF
listen_addresses = ''
unix_socket_directories = '$PG_DIR/sock'
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 50
CONF
	export PGHOST="$PG_DIR/sock" PGPORT=5432 PGUSER=raced PGDATABASE=postgres
}

pg_cluster_start() {
	pg__as "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -t 60 start >/dev/null || {
		cat "$PG_DIR/server.log" >&2
		return 1
	}
	if ! "$PG_BIN/psql" -qAtX -d postgres -c "select 1 from pg_database where datname = 'races'" | grep -q 1; then
		"$PG_BIN/createdb" races || return 1
	fi
	export PGDATABASE=races
	export PG_CONNINFO="host=$PG_DIR/sock port=5432 user=raced dbname=races"
}

pg_cluster_stop() {
	[ -f "$PG_DIR/data/postmaster.pid" ] || return 0
	pg__as "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m fast -w -t 60 stop >/dev/null
}

pg_cluster_psql() {
	"$PG_BIN/psql" -qAtX -v ON_ERROR_STOP=1 -c "$1"
}
