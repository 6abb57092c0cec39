/* store_conn — one of the store's PostgreSQL connections (store_pool.h):
 * an asynchronous libpq connection in pipeline mode, driven by the event
 * loop (PQsocket watched by libevent, non-blocking, never a blocking call
 * on the loop).  It takes its user ops from its pool (store_pool_take),
 * hands them back there when done (store_pool_done) and reports its life
 * cycle there (store_pool_state).
 *
 * Life cycle: CONNECTING (PQconnectPoll) -> MIGRATING (the set-up chain of
 * store_schema: synchronous_commit, lock, migrations, stage tables and
 * prepared statements, unlock) -> READY (user ops taken from the pool) -> on any loss
 * BACKOFF, then CONNECTING again after a delay.
 *
 * Sent ops wait in `sent` (FIFO) for their sync; ops complete in the order
 * they were sent.  User ops are sent only when READY and at most
 * STORE_MAX_IN_FLIGHT at a time; set-up ops are sent at once, but the
 * backend's malloc warm-up, sent when READY just before the first batch of
 * rows (none if a backend was lost in one).  When the
 * connection is lost, set-up ops are dropped, every sent user op goes back
 * to the head of its FIFO in the pool, in its order, and the connection is made
 * again after a backoff.  A batch may thus reach the server twice (if its
 * commit raced the loss): the upsert is idempotent, and the op completes
 * once, for the run that was acknowledged.
 *
 * Errors: an error whose SQLSTATE says the connection or server went away
 * (classes 08, 57, 53, 58, 40, or none: a libpq-side error), or a lock
 * held past lock_timeout (55P03; except for the probe of empty tables,
 * which gives up), is the moment's: the op is sent again as it was after
 * a reconnect.  Any other error is the op's own and completes
 * it (a batch then splits itself: see store.c).
 *
 * Backoff: STORE_BACKOFF_MIN_MS doubling up to STORE_BACKOFF_MAX_MS,
 * +-20 % jitter.  Connecting does not reset the delay, a user op that
 * succeeds does, and so does reaching READY unless a statement failed
 * since one last succeeded (a statement_timeout that recurs after every
 * reconnect must keep backing off further).
 */
#include "backoff.h"
#include "redact.h"
#include "store_backend.h"
#include "store_columns.h"
#include "store_pool.h"
#include "store_schema.h"

#include <event2/event.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

struct store_conn {
	struct store_pool *pool;
	unsigned idx;            /* its index in the pool */
	bool reader;             /* the pool's reader: its own set-up (store_schema_reader) */
	enum store_state state;  /* its own; the store's is the pool's */
	struct store *s;
	struct event_base *base;
	char *conninfo;
	char *conninfo_shown;    /* secrets masked (redact_conninfo) */
	char *synchronous_commit;  /* or NULL: "on" */
	char *schema;            /* [database] schema, or NULL */
	const struct store_table_sql *tables;
	size_t n_tables;
	char *want;              /* the typed columns as configured (store_columns_want) */
	/* n_tables each: this connection's writes of the columns in force,
	 * by mode (store_schema.h: upsert, plain INSERT, fill) */
	char **writes[STORE_WRITES];

	PGconn *conn;
	struct event *ev_io;     /* read (persistent) or connect-phase event */
	struct event *ev_write;  /* PQflush pending */
	struct event *ev_timer;  /* backoff and connect timeout */
	int ev_fd;
	bool connecting;
	bool in_io;              /* reading results: send nothing meanwhile */
	uint32_t backoff_ms;
	int64_t retry_at_ms;     /* the reader: no connect before (monotonic) */
	bool stmt_failing;       /* a statement failed since one last succeeded */
	bool warm_due;           /* its backend has not had store_schema_warm_sql */
	bool warm_off;           /* a backend was lost during one: no more on this connection */
	uint64_t warmups;        /* times it was sent */

	struct store_op_list sent;
	size_t n_sent_user;
	uint64_t reconnects;
	uint32_t migrations_applied;  /* by the last connection */
};

static void on_io(evutil_socket_t fd, short what, void *arg);
static void on_write(evutil_socket_t fd, short what, void *arg);
static void pump(struct store_conn *c);

/* --- connection ---------------------------------------------------------- */

static void timer_arm(struct store_conn *c, uint32_t ms)
{
	struct timeval tv = { (time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000) };
	event_add(c->ev_timer, &tv);
}

static void io_unwatch(struct store_conn *c)
{
	if (c->ev_io) {
		event_free(c->ev_io);
		c->ev_io = NULL;
	}
	if (c->ev_write) {
		event_free(c->ev_write);
		c->ev_write = NULL;
	}
	c->ev_fd = -1;
}

/* Watch PQsocket for `what`; the socket may differ from the last one. */
static int io_watch(struct store_conn *c, short what)
{
	int fd = PQsocket(c->conn);
	if (fd < 0)
		return -1;
	io_unwatch(c);
	c->ev_io = event_new(c->base, fd, what, on_io, c);
	if (!c->ev_io || event_add(c->ev_io, NULL) != 0)
		return -1;
	c->ev_fd = fd;
	return 0;
}

/* Sent set-up ops die; sent user ops go back to the pool. */
static void requeue_sent(struct store_conn *c)
{
	struct store_op_list keep = { 0 };
	struct store_op *op;
	while ((op = store_op_pop(&c->sent))) {
		store_op_reset(op);
		/* A backend lost during the warm-up (the OOM killer, under a
		 * container's memory limit, takes the one asking for 16 MiB):
		 * the batches go on without it rather than reconnect into the
		 * same end, at the shortest delay since READY reset it. */
		if (op->kind == STORE_OP_SETUP && op->step == STORE_STEP_WARM)
			c->warm_off = true;
		if (op->kind == STORE_OP_SETUP)
			store_op_free(op);
		else
			store_op_push(&keep, op);
	}
	c->n_sent_user = 0;
	store_pool_return(c->pool, c->idx, &keep);
}

/* The delay before the next attempt; the one after it doubles. */
static uint32_t backoff_next(struct store_conn *c)
{
	uint32_t wait = backoff_around_ms(c->backoff_ms, NULL);
	c->backoff_ms = backoff_double_ms(c->backoff_ms, STORE_BACKOFF_MAX_MS);
	return wait;
}

/* The connection is gone or unusable: back off and reconnect. */
static void conn_state(struct store_conn *c, enum store_state st, const char *why)
{
	c->state = st;
	store_pool_state(c->pool, c->idx, st, why);
}

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Close the connection; sent user ops go back to the pool. */
static void conn_close(struct store_conn *c)
{
	io_unwatch(c);
	if (c->conn) {
		PQfinish(c->conn);
		c->conn = NULL;
	}
	c->connecting = false;
	requeue_sent(c);
	event_del(c->ev_timer);
}

static void connection_lost(struct store_conn *c, const char *why)
{
	uint32_t wait = backoff_next(c);
	char msg[ERR_MAX];
	/* The reader does not come back on its own (it would hold a backend
	 * while idle, and may take the slot of connection 0): the pool starts
	 * it again for a read, not before the delay. */
	if (c->reader)
		snprintf(msg, sizeof msg, "%s (%s); tried again for a read after %u ms", why,
		         c->conninfo_shown, wait);
	else
		snprintf(msg, sizeof msg, "%s (%s); retrying in %u ms", why, c->conninfo_shown, wait);
	/* libpq's messages span lines: make it one; they may echo an option */
	for (char *p = msg; *p; p++)
		if (*p == '\n' || *p == '\t')
			*p = ' ';
	redact_buf(msg, sizeof msg);
	store_note_error(c->s, msg);
	conn_close(c);
	c->reconnects++;
	if (c->reader)
		c->retry_at_ms = mono_ms() + wait;
	else
		timer_arm(c, wait);
	conn_state(c, STORE_BACKOFF, msg);
}

static const char *conn_error(const struct store_conn *c)
{
	const char *m = c->conn ? PQerrorMessage(c->conn) : NULL;
	return m && *m ? m : "connection to PostgreSQL lost";
}

static void quiet_notices(void *arg, const char *message)
{
	(void)arg;
	(void)message;
}

static void start_connect(struct store_conn *c)
{
	c->conn = PQconnectStart(c->conninfo);
	if (!c->conn) {
		connection_lost(c, "out of memory starting a PostgreSQL connection");
		return;
	}
	if (PQstatus(c->conn) == CONNECTION_BAD) {
		connection_lost(c, conn_error(c));
		return;
	}
	PQsetNoticeProcessor(c->conn, quiet_notices, NULL);
	c->connecting = true;
	conn_state(c, STORE_CONNECTING, c->conninfo_shown);
	if (!c->conn)
		return;
	timer_arm(c, STORE_CONNECT_TIMEOUT_MS);
	if (io_watch(c, EV_WRITE) != 0)
		connection_lost(c, conn_error(c));
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct store_conn *c = arg;
	(void)fd;
	(void)what;
	if (c->connecting) {
		char msg[ERR_MAX];
		snprintf(msg, sizeof msg, "connecting took longer than %u ms", STORE_CONNECT_TIMEOUT_MS);
		connection_lost(c, msg);
		return;
	}
	if (!c->conn)
		start_connect(c);
}

/* --- sending ------------------------------------------------------------- */

static int op_send(struct store_conn *c, const struct store_op *op)
{
	for (size_t i = 0; i < op->n_stmts; i++) {
		const struct store_stmt *st = &op->stmts[i];
		const char *const *params = (const char *const *)st->params;
		int ok;
		if (st->name && st->sql)
			ok = PQsendPrepare(c->conn, st->name, st->sql, 0, NULL);
		else if (st->name)
			ok = PQsendQueryPrepared(c->conn, st->name, st->n_params, params, st->lengths,
			                         st->formats, st->binary_result ? 1 : 0);
		else
			ok = PQsendQueryParams(c->conn, st->sql, st->n_params, NULL, params, st->lengths,
			                       st->formats, 0);
		if (!ok)
			return -1;
	}
	return PQpipelineSync(c->conn) ? 0 : -1;
}

static void flush(struct store_conn *c)
{
	if (!c->conn)
		return;
	int r = PQflush(c->conn);
	if (r < 0) {
		connection_lost(c, conn_error(c));
		return;
	}
	if (r == 0) {
		if (c->ev_write)
			event_del(c->ev_write);
		return;
	}
	if (!c->ev_write && !(c->ev_write = event_new(c->base, c->ev_fd, EV_WRITE, on_write, c))) {
		connection_lost(c, "out of memory");
		return;
	}
	event_add(c->ev_write, NULL);
}

static void on_write(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	flush(arg);
}

/* Send the set-up ops of chain, in order; on failure the connection is lost. */
static void send_setup(struct store_conn *c, struct store_op_list *chain)
{
	struct store_op *op;
	while (c->conn && (op = store_op_pop(chain))) {
		if (op_send(c, op) != 0) {
			store_op_free(op);
			connection_lost(c, conn_error(c));
			break;
		}
		store_op_push(&c->sent, op);
	}
	store_op_list_free(chain);
	flush(c);
}

/* Just before the first batch that carries rows on this backend: the
 * malloc warm-up (store_schema.h), a set-up op of its own, so that its
 * outcome is nobody's (op_finished drops it).  A batch without rows
 * (placeholders, page records of an unchanged re-import) decodes no large
 * arrays and does not need it.  -1: the connection failed. */
static int warm_send(struct store_conn *c, const struct store_op *op)
{
	if (!c->warm_due || op->kind != STORE_OP_BATCH || op->n_rows == 0)
		return 0;
	c->warm_due = false;
	struct store_op *warm = store_schema_warm();
	if (!warm)
		return 0;   /* out of memory: the batches go without it */
	if (op_send(c, warm) != 0) {
		store_op_free(warm);
		return -1;
	}
	store_op_push(&c->sent, warm);
	c->warmups++;
	return 0;
}

/* Send queued user ops while READY, up to STORE_MAX_IN_FLIGHT. */
static void pump(struct store_conn *c)
{
	if (c->in_io || c->state != STORE_READY || !c->conn)
		return;
	bool any = false;
	struct store_op *op;
	while (c->n_sent_user < STORE_MAX_IN_FLIGHT && (op = store_pool_take(c->pool, c->idx))) {
		if (warm_send(c, op) != 0 || op_send(c, op) != 0) {
			/* back in front; connection_lost puts the sent ones before it */
			struct store_op_list back = { op, op };
			store_pool_return(c->pool, c->idx, &back);
			connection_lost(c, conn_error(c));
			return;
		}
		store_op_push(&c->sent, op);
		c->n_sent_user++;
		any = true;
	}
	if (any)
		flush(c);
}

/* --- the set-up chain's results ------------------------------------------- */

static void probe_done(struct store_conn *c, const PGresult *res, const char *err)
{
	int current;
	char msg[ERR_MAX];
	if (store_schema_read_version(res, err, &current, msg) != 0) {
		connection_lost(c, msg);
		return;
	}
	conn_state(c, STORE_MIGRATING, "applying migrations");
	if (c->state != STORE_MIGRATING || !c->conn)
		return;
	c->migrations_applied = 0;
	struct store_op_list chain = { 0 };
	if (store_schema_chain(current, c->tables, c->n_tables, c->want, &chain) != 0) {
		store_op_list_free(&chain);
		connection_lost(c, "out of memory");
		return;
	}
	send_setup(c, &chain);
}

static void step_failed(struct store_conn *c, const struct store_op *op, const char *err)
{
	char msg[ERR_MAX];
	snprintf(msg, sizeof msg, "%s: %s",
	         op->step == STORE_STEP_MIGRATION ? "migration failed" :
	         op->step == STORE_STEP_COLUMNS   ? "applying the typed columns failed" :
	         op->step == STORE_STEP_PREPARE   ? "preparing the stage tables' upserts failed" :
	                                            "creating stage tables failed", err);
	connection_lost(c, msg);
}

static void upserts_free(struct store_conn *c)
{
	for (int m = 0; m < STORE_WRITES; m++) {
		for (size_t i = 0; c->writes[m] && i < c->n_tables; i++)
			free(c->writes[m][i]);
		free(c->writes[m]);
		c->writes[m] = NULL;
	}
}

/* The columns in force are known: prepare the upserts that write them,
 * then release the lock. */
static void columns_done(struct store_conn *c, const PGresult *res)
{
	char msg[ERR_MAX];
	size_t n = c->n_tables;
	bool *inforce = calloc((n ? n : 1) * STORE_COLUMNS_MAX, sizeof *inforce);
	upserts_free(c);
	bool ok = inforce != NULL;
	for (int m = 0; m < STORE_WRITES; m++)
		ok &= (c->writes[m] = calloc(n ? n : 1, sizeof *c->writes[m])) != NULL;
	if (!ok) {
		free(inforce);
		connection_lost(c, "out of memory");
		return;
	}
	if (store_columns_outcome(res, c->tables, n, inforce, msg) != 0) {
		free(inforce);
		connection_lost(c, msg);
		return;
	}
	for (size_t i = 0; i < n; i++)
		for (int m = 0; m < STORE_WRITES; m++)
			if (!(c->writes[m][i] = store_schema_upsert_sql(&c->tables[i],
			                                                inforce + i * STORE_COLUMNS_MAX, m))) {
				free(inforce);
				connection_lost(c, "out of memory");
				return;
			}
	free(inforce);
	struct store_op_list chain = { 0 };
	char *const *writes[STORE_WRITES] = { c->writes[0], c->writes[1], c->writes[2] };
	if (store_schema_chain_end(c->tables, n, writes, &chain) != 0) {
		store_op_list_free(&chain);
		connection_lost(c, "out of memory");
		return;
	}
	send_setup(c, &chain);
}

static void unlock_done(struct store_conn *c, const char *err)
{
	if (err) {
		connection_lost(c, err);
		return;
	}
	if (!c->stmt_failing)
		c->backoff_ms = STORE_BACKOFF_MIN_MS;
	char why[ERR_MAX];
	snprintf(why, sizeof why, "connected to %s, schema version %d, %u migration(s) applied",
	         c->conninfo_shown, store_schema_version(), c->migrations_applied);
	conn_state(c, STORE_READY, why);
	store_pool_kick(c->pool);
}

static void setup_done(struct store_conn *c, struct store_op *op, const char *err)
{
	switch (op->step) {
	case STORE_STEP_PROBE:
		probe_done(c, op->res, err);
		break;
	case STORE_STEP_MIGRATION:
	case STORE_STEP_TABLES:
	case STORE_STEP_PREPARE:
		if (err)
			step_failed(c, op, err);
		else if (op->step == STORE_STEP_MIGRATION)
			c->migrations_applied++;
		break;
	case STORE_STEP_COLUMNS:
		if (err)
			step_failed(c, op, err);
		else
			columns_done(c, op->res);
		break;
	case STORE_STEP_UNLOCK:
	case STORE_STEP_READER:
		unlock_done(c, err);
		break;
	case STORE_STEP_WARM:
		break;   /* dropped by op_finished before it gets here */
	}
}

/* --- results -------------------------------------------------------------- */

/* Errors that are the moment's, not the rows': the statement is tried
 * again as it was.  55P03 is lock_timeout (or NOWAIT) meeting a lock that
 * someone else holds, e.g. a CREATE INDEX on the stage table. */
static bool sqlstate_transient(const char *st)
{
	if (!st || strlen(st) != 5)
		return true;
	return strncmp(st, "08", 2) == 0 || strncmp(st, "57", 2) == 0 ||
	       strncmp(st, "53", 2) == 0 || strncmp(st, "58", 2) == 0 ||
	       strncmp(st, "40", 2) == 0 || strcmp(st, "55P03") == 0;
}

/* The op failed for the moment: it goes back in front of the ops sent
 * after it, and with them to the head of the queue (set-up ops die), in
 * the order they were sent; the connection is made again. */
static void retry_later(struct store_conn *c, struct store_op *op)
{
	char why[ERR_MAX];
	snprintf(why, sizeof why, "%s", op->err);
	struct store_op_list front = { op, op };
	store_op_push_front(&c->sent, &front);
	c->in_io = false;
	/* Connected fine, then the same statement fails again (a
	 * statement_timeout, a held lock): the delay must keep growing. */
	c->stmt_failing = true;
	connection_lost(c, why);
}

/* op's sync arrived: it is committed, or failed as a whole. */
static void op_finished(struct store_conn *c, struct store_op *op)
{
	if (op->kind == STORE_OP_SETUP && op->step == STORE_STEP_WARM) {
		store_op_free(op);   /* failed or not: it only saves faults */
		return;
	}
	if (op->failed && op->transient) {
		retry_later(c, op);
		return;
	}
	const char *err = op->failed ? op->err : NULL;
	if (op->kind == STORE_OP_SETUP) {
		if (err)
			store_note_error(c->s, err);
		setup_done(c, op, err);
		store_op_free(op);
		return;
	}
	if (!err) {
		c->stmt_failing = false;
		c->backoff_ms = STORE_BACKOFF_MIN_MS;
	}
	store_pool_done(c->pool, c->idx, op);
}

/* The first error of an op is the one it reports. */
static void op_note_error(struct store_op *op, const PGresult *r)
{
	if (op->failed)
		return;
	op->failed = true;
	const char *st = PQresultErrorField(r, PG_DIAG_SQLSTATE);
	/* The probe of empty tables does not wait for a lock: it gives up
	 * (its run then writes by the upsert). */
	/* An index build is tried again only on a new connection (class 08,
	 * or the server going away, 57P01-57P03): otherwise it is left to
	 * the next finish or connect (store_runs.h, store_runs_index).  So
	 * is the ANALYZE before the passes (store_analyze_state): a
	 * statement_timeout it meets would otherwise drop the connection
	 * and meet it again on the next. */
	bool gone = !st || strncmp(st, "08", 2) == 0 || strcmp(st, "57P01") == 0 ||
	            strcmp(st, "57P02") == 0 || strcmp(st, "57P03") == 0;
	op->transient = sqlstate_transient(st) &&
	                !(op->kind == STORE_OP_PROBE_EMPTY && st && strcmp(st, "55P03") == 0) &&
	                !((op->kind == STORE_OP_BUILD_INDEX || op->kind == STORE_OP_ANALYZE_STATE) &&
	                  !gone);
	snprintf(op->sqlstate, sizeof op->sqlstate, "%s", st ? st : "");
	snprintf(op->err, sizeof op->err, "%s", PQresultErrorMessage(r));
	size_t n = strlen(op->err);
	while (n && (op->err[n - 1] == '\n' || op->err[n - 1] == ' '))
		op->err[--n] = '\0';
}

static void take_result(struct store_conn *c, PGresult *r)
{
	struct store_op *op = c->sent.head;
	ExecStatusType st = PQresultStatus(r);
	if (!op) {
		/* An asynchronous error (e.g. the server shutting down). */
		if (st == PGRES_FATAL_ERROR)
			store_note_error(c->s, PQresultErrorMessage(r));
		PQclear(r);
		return;
	}
	if (st == PGRES_PIPELINE_SYNC) {
		PQclear(r);
		store_op_pop(&c->sent);
		if (op->kind != STORE_OP_SETUP)
			c->n_sent_user--;
		op_finished(c, op);
		return;
	}
	op->cur_seen = true;
	if (st == PGRES_TUPLES_OK) {
		PQclear(op->res);
		op->res = r;
		return;
	}
	if (st != PGRES_COMMAND_OK && st != PGRES_PIPELINE_ABORTED)
		op_note_error(op, r);
	PQclear(r);
}

static void read_results(struct store_conn *c)
{
	c->in_io = true;
	while (c->conn && !PQisBusy(c->conn)) {
		PGresult *r = PQgetResult(c->conn);
		if (r) {
			take_result(c, r);
			continue;
		}
		/* NULL: the end of one statement's results, or nothing pending. */
		struct store_op *op = c->sent.head;
		if (!op || !op->cur_seen)
			break;
		op->cur++;
		op->cur_seen = false;
	}
	c->in_io = false;
	if (c->conn && PQstatus(c->conn) == CONNECTION_BAD) {
		connection_lost(c, conn_error(c));
		return;
	}
	store_pool_kick(c->pool);
}

/* Connected: pipeline mode, then the set-up chain's first op. */
static void connected(struct store_conn *c)
{
	c->connecting = false;
	c->warm_due = !c->reader && !c->warm_off; /* a new backend */
	event_del(c->ev_timer);
	if (PQsetnonblocking(c->conn, 1) != 0 || PQenterPipelineMode(c->conn) != 1) {
		connection_lost(c, conn_error(c));
		return;
	}
	if (io_watch(c, EV_READ | EV_PERSIST) != 0) {
		connection_lost(c, "cannot watch the PostgreSQL socket");
		return;
	}
	struct store_op *probe = c->reader ? store_schema_reader(c->schema, c->tables, c->n_tables)
	                                   : store_schema_probe(c->synchronous_commit, c->schema);
	if (!probe) {
		connection_lost(c, "out of memory");
		return;
	}
	struct store_op_list chain = { probe, probe };
	send_setup(c, &chain);
}

static void connect_poll(struct store_conn *c)
{
	switch (PQconnectPoll(c->conn)) {
	case PGRES_POLLING_READING:
		if (io_watch(c, EV_READ) != 0)
			connection_lost(c, conn_error(c));
		break;
	case PGRES_POLLING_WRITING:
		if (io_watch(c, EV_WRITE) != 0)
			connection_lost(c, conn_error(c));
		break;
	case PGRES_POLLING_OK:
		connected(c);
		break;
	default:
		connection_lost(c, conn_error(c));
		break;
	}
}

static void on_io(evutil_socket_t fd, short what, void *arg)
{
	struct store_conn *c = arg;
	(void)fd;
	(void)what;
	if (c->connecting) {
		connect_poll(c);
		return;
	}
	if (!c->conn)
		return;
	/* On failure, still hand out what arrived before it (commits). */
	int ok = PQconsumeInput(c->conn);
	read_results(c);
	if (!ok && c->conn)
		connection_lost(c, conn_error(c));
}

/* --- the pool's view ------------------------------------------------------ */

void store_conn_kick(struct store_conn *c)
{
	pump(c);
}

size_t store_conn_in_flight(const struct store_conn *c)
{
	return c->n_sent_user;
}

uint64_t store_conn_reconnects(const struct store_conn *c)
{
	return c->reconnects;
}

uint64_t store_conn_warmups(const struct store_conn *c)
{
	return c->warmups;
}

uint32_t store_conn_migrations(const struct store_conn *c)
{
	return c->migrations_applied;
}

void store_conn_free(struct store_conn *c)
{
	if (!c)
		return;
	io_unwatch(c);
	if (c->ev_timer)
		event_free(c->ev_timer);
	if (c->conn)
		PQfinish(c->conn);
	store_op_list_free(&c->sent);
	free(c->conninfo);
	free(c->conninfo_shown);
	free(c->synchronous_commit);
	free(c->schema);
	free(c->want);
	upserts_free(c);
	free(c);
}

void store_conn_stop(struct store_conn *c)
{
	conn_close(c);
	c->state = STORE_CONNECTING;   /* as before its first start */
}

bool store_conn_may_start(const struct store_conn *c)
{
	return mono_ms() >= c->retry_at_ms;
}

void store_conn_start(struct store_conn *c)
{
	timer_arm(c, 0);   /* connect from the loop: no state_changed inside the caller */
}

struct store_conn *store_conn_new(struct store_pool *p, unsigned idx, struct store *s,
                                  struct event_base *base, const struct store_conn_conf *conf,
                                  char *err)
{
	const char *conninfo = conf->conninfo;
	char *perr = NULL;
	PQconninfoOption *opts = conninfo ? PQconninfoParse(conninfo, &perr) : NULL;
	if (!conninfo)
		return err_set(err, "store: [database] conninfo is not set"), NULL;
	if (!opts) {
		err_set(err, "store: [database] conninfo is invalid: %s", perr ? perr : "out of memory");
		redact_buf(err, ERR_MAX); /* libpq quotes a URI it cannot parse */
		PQfreemem(perr);
		return NULL;
	}
	PQconninfoFree(opts);
	struct store_conn *c = calloc(1, sizeof *c);
	if (!c)
		return err_set(err, "store: out of memory"), NULL;
	c->pool = p;
	c->idx = idx;
	c->reader = conf->reader;
	c->state = STORE_CONNECTING;
	c->s = s;
	c->base = base;
	c->tables = conf->tables;
	c->n_tables = conf->n_tables;
	c->ev_fd = -1;
	c->backoff_ms = STORE_BACKOFF_MIN_MS;
	c->conninfo = strdup(conninfo);
	c->conninfo_shown = redact_conninfo(conninfo);
	c->synchronous_commit = conf->synchronous_commit ? strdup(conf->synchronous_commit) : NULL;
	c->schema = conf->schema ? strdup(conf->schema) : NULL;
	c->want = store_columns_want(conf->tables, conf->n_tables);
	c->ev_timer = evtimer_new(base, on_timer, c);
	if (!c->conninfo || !c->conninfo_shown || !c->ev_timer || !c->want ||
	    (conf->synchronous_commit && !c->synchronous_commit) || (conf->schema && !c->schema)) {
		store_conn_free(c);
		return err_set(err, "store: out of memory"), NULL;
	}
	return c;
}
