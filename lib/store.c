/* store — see store.h.
 *
 * Design notes
 *
 * Everything the store sends is an `op`: a short list of statements sent in
 * libpq pipeline mode and closed by one PQpipelineSync().  Without an
 * explicit BEGIN the statements up to the sync are one implicit transaction,
 * so an op is committed exactly when its PGRES_PIPELINE_SYNC arrives; that is
 * when its completion handler runs (for a batch: the `committed` callback).
 * Ops complete in the order they were sent.
 *
 * Two lists: `queued` (not yet sent) and `sent` (sent, awaiting their sync),
 * both FIFO.  User ops (batches, import runs, errors, queries) are sent only
 * in STORE_READY and at most STORE_MAX_IN_FLIGHT at a time.  While
 * connecting, internal ops (lock, migrations, stage tables) are sent instead.
 * When the connection is lost, internal ops are dropped, every sent user op
 * goes back to the head of `queued` in its order, and the store reconnects
 * after a backoff; the user ops are sent again once READY.  A batch may thus
 * reach the server twice (if its commit raced the loss): the upsert is
 * idempotent, and `committed` is called once, for the run that was
 * acknowledged.  store_begin_import() and store_add_error() are plain
 * inserts: in that same race they may insert twice (a second 'running' run is
 * marked 'interrupted' by store_mark_stale_runs() at the next start).
 *
 * Errors: an error whose SQLSTATE says the connection or server went away
 * (classes 08, 57, 53, 58, 40, or none: a libpq-side error) is a connection
 * loss.  Any other error is the op's own: a batch of several rows is split
 * into one-row batches (so one bad row does not sink 499 good ones); a
 * one-row batch that still fails is reported by `batch_failed` and then
 * `committed` (its credit must come back all the same).
 *
 * Batches: each table's upsert is prepared once per connection, with the
 * stage tables and before READY, and executed per batch with keys, parent
 * keys and payloads as arrays in PostgreSQL's binary format
 * (buf_array_header) and the import id as one bigint: the server neither
 * parses and plans the statement per batch nor lexes and unescapes a text
 * array literal.  A batch holds the rows of one import: a row of another
 * import first sends the pending ones as a batch of their own.
 *
 * Unchanged rows: the upsert's DO UPDATE runs only when last_import must
 * advance or the parent_key or payload differ (tested in that order: the
 * jsonb comparison is the costly one, and a re-import's rows all pass the
 * first test).  updated_at and the payload column change only when the
 * payload did; when only last_import advances the tuple is rewritten with
 * the same payload (the jsonb value copied, updated_at kept; a HOT update,
 * no index touched, when its page has room).  A second write within the
 * same import (a retried batch) updates nothing at all.
 *
 * Identifiers: table names are the stage names, checked here against
 * [a-z_][a-z0-9_]{0,47} (config restricts them already; the store does not
 * rely on it) and written double-quoted in every statement, so a reserved
 * word ("user", "order") is a valid stage name.  (PQescapeIdentifier needs
 * a connection; the statements are built once, in store_new.)
 */
#include "store.h"

#include "error.h"

#include <errno.h>
#include <event2/event.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define STORE_ADVISORY_LOCK  7261636564LL /* "raced" */
#define STORE_NAME_MAX       48

struct row {
	char *key;
	char *parent;  /* or NULL */
	char *payload;
	int64_t import_id;
};

enum op_kind {
	OP_INTERNAL,
	OP_BATCH,
	OP_BEGIN_IMPORT,
	OP_ADD_ERROR,
	OP_FINISH_IMPORT,
	OP_GET_RUNS,
	OP_MARK_STALE,
};

struct stmt {
	const char *sql;     /* borrowed (static or the table's) or owned */
	char *sql_owned;
	int n_params;
	char **params;       /* owned; entries may be NULL (SQL NULL) */
	int *lengths;        /* owned; binary params only (else NULL) */
	const int *formats;  /* static; NULL: every param in text format */
	const char *name;    /* borrowed: a prepared statement (sql NULL: execute it) */
};

struct op;
typedef void (*op_done_fn)(struct store *s, struct op *op, PGresult *res, const char *err);

struct op {
	struct op *next;
	enum op_kind kind;
	struct stmt *stmts;
	size_t n_stmts;
	op_done_fn done;
	/* while sent */
	size_t cur;          /* statement whose results are being read */
	bool cur_seen;
	PGresult *res;       /* last PGRES_TUPLES_OK */
	char err[ERR_MAX];
	const char *sqlstate;
	bool failed;
	bool transient;
	/* OP_BATCH */
	size_t table;
	struct row *rows;
	size_t n_rows;
	size_t n_added;      /* rows added (before folding) this op acknowledges */
	uint64_t sink_gen;   /* the sink attached when its rows were added */
	/* user callbacks */
	store_id_fn id_cb;
	store_done_fn done_cb;
	store_json_fn json_cb;
	void *arg;
	int64_t import_id;
	int migration;       /* OP_INTERNAL: migration version applied, or 0 */
};

struct table {
	char *name;
	char *upsert_name;      /* the upsert, prepared on each connection */
	char *upsert_sql;
	char *create_sql;
	char *index_sql;
	struct row *pending;
	size_t n_pending, cap;
	int64_t pending_import;  /* of the pending rows (a batch holds one import) */
	uint64_t pending_gen;    /* sink_gen when they were added */
	uint64_t uncommitted;   /* added, not yet acknowledged */
	uint64_t rows_committed;
	uint64_t batches_committed;
};

struct dropped {
	struct dropped *next;
	int64_t import_id;
	uint64_t n;
};

struct store {
	struct event_base *base;
	struct store_callbacks cb;
	struct store_sink sink;  /* valid while sink_attached */
	bool sink_attached;
	uint64_t sink_gen;       /* counts attaches and detaches */
	char *conninfo;
	char *conninfo_shown;   /* without password */
	uint32_t batch_size;
	struct table *tables;
	size_t n_tables;

	PGconn *conn;
	struct event *ev_io;     /* read (persistent) or connect-phase event */
	struct event *ev_write;  /* PQflush pending */
	struct event *ev_timer;  /* backoff and connect timeout */
	int ev_fd;
	enum store_state state;
	bool connecting;
	uint32_t backoff_ms;
	bool stmt_failing;             /* a statement failed since one last succeeded */
	uint64_t rand_state;

	struct op *queued, *queued_tail;
	struct op *sent, *sent_tail;
	size_t n_sent_user;
	size_t n_queued_errors;
	struct dropped *dropped;

	bool in_io;
	bool freeing;
	bool discard;            /* [database] discard: no connection, rows dropped */
	int64_t discard_last_id; /* import ids handed out while discarding */

	struct store_stats stats;
	char last_error[ERR_MAX];
};

/* --- migrations --------------------------------------------------------- */

struct migration {
	int version;
	const char *description;
	const char *const *stmts;
};

static const char *const migration_1[] = {
	"CREATE TABLE import_runs ("
	" id bigserial PRIMARY KEY,"
	" started_at timestamptz NOT NULL DEFAULT now(),"
	" finished_at timestamptz,"
	" status text NOT NULL DEFAULT 'running' CHECK (status IN"
	"  ('running', 'succeeded', 'partial', 'failed', 'cancelled', 'interrupted')),"
	" requested_by text,"
	" counts jsonb)",
	"CREATE TABLE import_errors ("
	" id bigserial PRIMARY KEY,"
	" import_id bigint NOT NULL,"
	" stage text NOT NULL,"
	" url text,"
	" http_status integer,"
	" attempts integer NOT NULL DEFAULT 0,"
	" message text,"
	" at timestamptz NOT NULL DEFAULT now())",
	"CREATE INDEX import_errors_import_id ON import_errors (import_id)",
	NULL,
};

static const struct migration migrations[] = {
	{ 1, "import_runs and import_errors", migration_1 },
};
#define N_MIGRATIONS (sizeof migrations / sizeof migrations[0])

/* --- small helpers ------------------------------------------------------ */

const char *store_state_name(enum store_state st)
{
	switch (st) {
	case STORE_CONNECTING: return "connecting";
	case STORE_MIGRATING:  return "migrating";
	case STORE_READY:      return "ready";
	case STORE_BACKOFF:    return "backoff";
	}
	return "unknown";
}

enum store_state store_state(const struct store *s)
{
	return s->state;
}

struct buf {
	char *p;
	size_t len, cap;
	bool oom;
};

static void buf_reserve(struct buf *b, size_t more)
{
	if (b->oom || b->len + more + 1 <= b->cap)
		return;
	size_t cap = b->cap ? b->cap : 256;
	while (cap < b->len + more + 1)
		cap *= 2;
	char *p = realloc(b->p, cap);
	if (!p) {
		b->oom = true;
		return;
	}
	b->p = p;
	b->cap = cap;
}

static void buf_add(struct buf *b, const char *p, size_t n)
{
	buf_reserve(b, n);
	if (b->oom)
		return;
	memcpy(b->p + b->len, p, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void buf_addc(struct buf *b, char c)
{
	buf_add(b, &c, 1);
}

/* PostgreSQL's binary array format (array_send / array_recv): a header of
 * ndim, has-nulls flag, element type OID, then per dimension its length and
 * lower bound, then each element as a length (-1: NULL) and its bytes, every
 * integer a big-endian int32.  Sent binary, an array reaches the server
 * without the lexing and unescaping array_in does on a text literal. */
#define PG_TYPE_TEXT   25u
#define PG_TYPE_JSONB  3802u
#define PG_JSONB_VERSION 1  /* jsonb_recv: a version byte, then the JSON text */

static void buf_add_be32(struct buf *b, uint32_t v)
{
	unsigned char p[4] = { (unsigned char)(v >> 24), (unsigned char)(v >> 16),
	                       (unsigned char)(v >> 8), (unsigned char)v };
	buf_add(b, (const char *)p, 4);
}

static void buf_add_be64(struct buf *b, uint64_t v)
{
	buf_add_be32(b, (uint32_t)(v >> 32));
	buf_add_be32(b, (uint32_t)v);
}

/* A one-dimensional array of n elements of type elem_oid, elements to follow. */
static void buf_array_header(struct buf *b, uint32_t elem_oid, size_t n, bool has_nulls)
{
	buf_add_be32(b, 1);
	buf_add_be32(b, has_nulls ? 1 : 0);
	buf_add_be32(b, elem_oid);
	buf_add_be32(b, (uint32_t)n);
	buf_add_be32(b, 1);
}

/* One text (or jsonb, after its version byte) element; NULL is SQL NULL. */
static void buf_array_text(struct buf *b, const char *v, bool jsonb)
{
	if (!v) {
		buf_add_be32(b, UINT32_MAX);   /* -1 */
		return;
	}
	size_t n = strlen(v);
	if (n > INT32_MAX - 1) {
		b->oom = true;
		return;
	}
	buf_add_be32(b, (uint32_t)(n + jsonb));
	if (jsonb)
		buf_addc(b, PG_JSONB_VERSION);
	buf_add(b, v, n);
}

static bool name_valid(const char *n)
{
	size_t len = strlen(n);
	if (len == 0 || len > STORE_NAME_MAX)
		return false;
	if (!((n[0] >= 'a' && n[0] <= 'z') || n[0] == '_'))
		return false;
	for (size_t i = 1; i < len; i++)
		if (!((n[i] >= 'a' && n[i] <= 'z') || (n[i] >= '0' && n[i] <= '9') || n[i] == '_'))
			return false;
	return strcmp(n, "import_runs") != 0 && strcmp(n, "import_errors") != 0 &&
	       strcmp(n, "raced_schema_version") != 0;
}

/* conninfo as shown in messages: every option except password. */
static char *conninfo_without_password(const char *conninfo)
{
	char *perr = NULL;
	PQconninfoOption *opts = PQconninfoParse(conninfo, &perr);
	if (!opts) {
		PQfreemem(perr);
		return strdup("(unparsable conninfo)");
	}
	struct buf b = { 0 };
	for (PQconninfoOption *o = opts; o->keyword; o++) {
		if (!o->val || strcmp(o->keyword, "password") == 0)
			continue;
		if (b.len)
			buf_addc(&b, ' ');
		buf_add(&b, o->keyword, strlen(o->keyword));
		buf_addc(&b, '=');
		buf_add(&b, o->val, strlen(o->val));
	}
	PQconninfoFree(opts);
	if (b.oom) {
		free(b.p);
		return NULL;
	}
	return b.p ? b.p : strdup("");
}

static void set_state(struct store *s, enum store_state st, const char *why)
{
	s->state = st;
	if (s->cb.state_changed)
		s->cb.state_changed(s->cb.arg, st, why);
}

static void stmt_free(struct stmt *st)
{
	free(st->sql_owned);
	for (int i = 0; i < st->n_params; i++)
		free(st->params[i]);
	free(st->params);
	free(st->lengths);
}

static void rows_free(struct row *rows, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(rows[i].key);
		free(rows[i].parent);
		free(rows[i].payload);
	}
	free(rows);
}

static void op_free(struct op *op)
{
	if (!op)
		return;
	for (size_t i = 0; i < op->n_stmts; i++)
		stmt_free(&op->stmts[i]);
	free(op->stmts);
	PQclear(op->res);
	rows_free(op->rows, op->n_rows);
	free(op);
}

static struct op *op_new(enum op_kind kind, size_t n_stmts)
{
	struct op *op = calloc(1, sizeof *op);
	if (!op)
		return NULL;
	op->kind = kind;
	op->stmts = calloc(n_stmts, sizeof *op->stmts);
	if (!op->stmts) {
		free(op);
		return NULL;
	}
	op->n_stmts = n_stmts;
	return op;
}

/* Give statement i its SQL (borrowed) and n params (copied; NULL allowed). */
static int op_stmt(struct op *op, size_t i, const char *sql, int n, const char *const *params)
{
	struct stmt *st = &op->stmts[i];
	st->sql = sql;
	if (n == 0)
		return 0;
	st->params = calloc((size_t)n, sizeof *st->params);
	if (!st->params)
		return -1;
	st->n_params = n;
	for (int k = 0; k < n; k++) {
		if (params[k] && !(st->params[k] = strdup(params[k])))
			return -1;
	}
	return 0;
}

static void list_push(struct op **head, struct op **tail, struct op *op)
{
	op->next = NULL;
	if (*tail)
		(*tail)->next = op;
	else
		*head = op;
	*tail = op;
}

static struct op *list_pop(struct op **head, struct op **tail)
{
	struct op *op = *head;
	if (op) {
		*head = op->next;
		if (!*head)
			*tail = NULL;
		op->next = NULL;
	}
	return op;
}

/* --- connection --------------------------------------------------------- */

static void pump(struct store *s);
static void start_connect(struct store *s);
static void on_io(evutil_socket_t fd, short what, void *arg);
static void on_write(evutil_socket_t fd, short what, void *arg);

static uint32_t jitter(struct store *s, uint32_t ms)
{
	/* xorshift64: +-20 % */
	uint64_t x = s->rand_state;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	s->rand_state = x;
	uint32_t span = ms / 5;
	if (span == 0)
		return ms;
	return ms - span + (uint32_t)(x % (2 * (uint64_t)span + 1));
}

static void io_unwatch(struct store *s)
{
	if (s->ev_io) {
		event_free(s->ev_io);
		s->ev_io = NULL;
	}
	if (s->ev_write) {
		event_free(s->ev_write);
		s->ev_write = NULL;
	}
	s->ev_fd = -1;
}

/* Watch PQsocket for `what`; the socket may differ from the last one. */
static int io_watch(struct store *s, short what)
{
	int fd = PQsocket(s->conn);
	if (fd < 0)
		return -1;
	io_unwatch(s);
	s->ev_io = event_new(s->base, fd, what, on_io, s);
	if (!s->ev_io || event_add(s->ev_io, NULL) != 0)
		return -1;
	s->ev_fd = fd;
	return 0;
}

static void timer_arm(struct store *s, uint32_t ms)
{
	struct timeval tv = { (time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000) };
	event_add(s->ev_timer, &tv);
}

static void drop_internal_and_requeue(struct store *s)
{
	/* Sent ops go back in front of queued, in order; internal ones die. */
	struct op *keep = NULL, *keep_tail = NULL;
	struct op *op;
	while ((op = list_pop(&s->sent, &s->sent_tail))) {
		PQclear(op->res);
		op->res = NULL;
		op->cur = 0;
		op->cur_seen = false;
		op->failed = false;
		op->transient = false;
		op->err[0] = '\0';
		if (op->kind == OP_INTERNAL)
			op_free(op);
		else
			list_push(&keep, &keep_tail, op);
	}
	s->n_sent_user = 0;
	if (keep) {
		keep_tail->next = s->queued;
		if (!s->queued)
			s->queued_tail = keep_tail;
		s->queued = keep;
	}
	/* Internal ops never wait in queued (they are sent at once). */
}

/* The connection is gone or unusable: back off and reconnect. */
static void connection_lost(struct store *s, const char *why)
{
	uint32_t wait = jitter(s, s->backoff_ms);
	s->backoff_ms = s->backoff_ms * 2 > STORE_BACKOFF_MAX_MS ? STORE_BACKOFF_MAX_MS : s->backoff_ms * 2;
	char msg[ERR_MAX];
	snprintf(msg, sizeof msg, "%s (%s); retrying in %u ms", why, s->conninfo_shown, wait);
	/* libpq's messages span lines: make it one */
	for (char *p = msg; *p; p++)
		if (*p == '\n' || *p == '\t')
			*p = ' ';
	snprintf(s->last_error, sizeof s->last_error, "%s", msg);
	io_unwatch(s);
	if (s->conn) {
		PQfinish(s->conn);
		s->conn = NULL;
	}
	s->connecting = false;
	drop_internal_and_requeue(s);
	s->stats.reconnects++;
	event_del(s->ev_timer);
	timer_arm(s, wait);
	set_state(s, STORE_BACKOFF, msg);
}

static const char *conn_error(struct store *s)
{
	const char *m = s->conn ? PQerrorMessage(s->conn) : NULL;
	return m && *m ? m : "connection to PostgreSQL lost";
}

static void send_internal(struct store *s, struct op *op);

static void internal_done_unlock(struct store *s, struct op *op, PGresult *res, const char *err)
{
	(void)op;
	(void)res;
	if (err) {
		connection_lost(s, err);
		return;
	}
	if (!s->stmt_failing)
		s->backoff_ms = STORE_BACKOFF_MIN_MS;
	char why[ERR_MAX];
	snprintf(why, sizeof why, "connected to %s, schema version %d, %u migration(s) applied",
	         s->conninfo_shown, migrations[N_MIGRATIONS - 1].version,
	         s->stats.migrations_applied);
	set_state(s, STORE_READY, why);
	pump(s);
}

static void internal_done_step(struct store *s, struct op *op, PGresult *res, const char *err)
{
	(void)res;
	if (err) {
		char msg[ERR_MAX];
		snprintf(msg, sizeof msg, "%s: %s", op->migration ? "migration failed" :
		         "creating stage tables or preparing their upserts failed", err);
		connection_lost(s, msg);
		return;
	}
	if (op->migration)
		s->stats.migrations_applied++;
}

static void internal_done_probe(struct store *s, struct op *op, PGresult *res, const char *err)
{
	(void)op;
	if (err || !res || PQntuples(res) != 1) {
		char msg[ERR_MAX];
		snprintf(msg, sizeof msg, "reading raced_schema_version failed: %s", err ? err : "no row");
		connection_lost(s, msg);
		return;
	}
	int current = atoi(PQgetvalue(res, 0, 0));
	if (current > migrations[N_MIGRATIONS - 1].version) {
		char msg[ERR_MAX];
		snprintf(msg, sizeof msg,
		         "database schema version %d is newer than this raced knows (%d): upgrade raced",
		         current, migrations[N_MIGRATIONS - 1].version);
		connection_lost(s, msg);
		return;
	}
	set_state(s, STORE_MIGRATING, "applying migrations");
	if (s->state != STORE_MIGRATING || !s->conn)
		return;
	s->stats.migrations_applied = 0;
	for (size_t m = 0; m < N_MIGRATIONS; m++) {
		if (migrations[m].version <= current)
			continue;
		size_t n = 0;
		while (migrations[m].stmts[n])
			n++;
		struct op *mo = op_new(OP_INTERNAL, n + 3);
		if (!mo) {
			connection_lost(s, "out of memory");
			return;
		}
		mo->done = internal_done_step;
		mo->migration = migrations[m].version;
		op_stmt(mo, 0, "BEGIN", 0, NULL);
		for (size_t k = 0; k < n; k++)
			op_stmt(mo, k + 1, migrations[m].stmts[k], 0, NULL);
		char ver[16];
		snprintf(ver, sizeof ver, "%d", migrations[m].version);
		const char *p[] = { ver, migrations[m].description };
		if (op_stmt(mo, n + 1, "INSERT INTO raced_schema_version (version, description) VALUES ($1, $2)", 2, p) != 0) {
			op_free(mo);
			connection_lost(s, "out of memory");
			return;
		}
		op_stmt(mo, n + 2, "COMMIT", 0, NULL);
		send_internal(s, mo);
		if (!s->conn)
			return;
	}
	struct op *t = op_new(OP_INTERNAL, 3 * s->n_tables + 1);
	if (!t) {
		connection_lost(s, "out of memory");
		return;
	}
	t->done = internal_done_step;
	for (size_t i = 0; i < s->n_tables; i++) {
		op_stmt(t, 3 * i, s->tables[i].create_sql, 0, NULL);
		op_stmt(t, 3 * i + 1, s->tables[i].index_sql, 0, NULL);
		op_stmt(t, 3 * i + 2, s->tables[i].upsert_sql, 0, NULL);
		t->stmts[3 * i + 2].name = s->tables[i].upsert_name;
	}
	op_stmt(t, 3 * s->n_tables, "SELECT 1", 0, NULL);
	send_internal(s, t);
	if (!s->conn)
		return;
	struct op *u = op_new(OP_INTERNAL, 1);
	if (!u) {
		connection_lost(s, "out of memory");
		return;
	}
	u->done = internal_done_unlock;
	char lock[32];
	snprintf(lock, sizeof lock, "%lld", (long long)STORE_ADVISORY_LOCK);
	const char *lp[] = { lock };
	op_stmt(u, 0, "SELECT pg_advisory_unlock($1::bigint)", 1, lp);
	send_internal(s, u);
}

static void connected(struct store *s)
{
	s->connecting = false;
	event_del(s->ev_timer);
	if (PQsetnonblocking(s->conn, 1) != 0 || PQenterPipelineMode(s->conn) != 1) {
		connection_lost(s, conn_error(s));
		return;
	}
	if (io_watch(s, EV_READ | EV_PERSIST) != 0) {
		connection_lost(s, "cannot watch the PostgreSQL socket");
		return;
	}
	/* Serialise migrations between daemons sharing a database. */
	struct op *op = op_new(OP_INTERNAL, 3);
	if (!op) {
		connection_lost(s, "out of memory");
		return;
	}
	op->done = internal_done_probe;
	char lock[32];
	snprintf(lock, sizeof lock, "%lld", (long long)STORE_ADVISORY_LOCK);
	const char *lp[] = { lock };
	op_stmt(op, 0, "SELECT pg_advisory_lock($1::bigint)", 1, lp);
	op_stmt(op, 1, "CREATE TABLE IF NOT EXISTS raced_schema_version ("
	               " version integer PRIMARY KEY,"
	               " description text NOT NULL,"
	               " applied_at timestamptz NOT NULL DEFAULT now())", 0, NULL);
	op_stmt(op, 2, "SELECT coalesce(max(version), 0) FROM raced_schema_version", 0, NULL);
	send_internal(s, op);
}

static void connect_poll(struct store *s)
{
	switch (PQconnectPoll(s->conn)) {
	case PGRES_POLLING_READING:
		if (io_watch(s, EV_READ) != 0)
			connection_lost(s, conn_error(s));
		break;
	case PGRES_POLLING_WRITING:
		if (io_watch(s, EV_WRITE) != 0)
			connection_lost(s, conn_error(s));
		break;
	case PGRES_POLLING_OK:
		connected(s);
		break;
	default:
		connection_lost(s, conn_error(s));
		break;
	}
}

static void quiet_notices(void *arg, const char *message)
{
	(void)arg;
	(void)message;
}

static void start_connect(struct store *s)
{
	s->conn = PQconnectStart(s->conninfo);
	if (!s->conn) {
		connection_lost(s, "out of memory starting a PostgreSQL connection");
		return;
	}
	if (PQstatus(s->conn) == CONNECTION_BAD) {
		connection_lost(s, conn_error(s));
		return;
	}
	PQsetNoticeProcessor(s->conn, quiet_notices, NULL);
	s->connecting = true;
	set_state(s, STORE_CONNECTING, s->conninfo_shown);
	if (!s->conn)
		return;
	timer_arm(s, STORE_CONNECT_TIMEOUT_MS);
	if (io_watch(s, EV_WRITE) != 0)
		connection_lost(s, conn_error(s));
}

static void discard_queued(struct store *s);

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct store *s = arg;
	if (s->discard) {
		if (s->state != STORE_READY)
			set_state(s, STORE_READY, "discarding every row ([database] discard = yes)");
		discard_queued(s);
		return;
	}
	if (s->connecting) {
		char msg[ERR_MAX];
		snprintf(msg, sizeof msg, "connecting took longer than %u ms", STORE_CONNECT_TIMEOUT_MS);
		connection_lost(s, msg);
		return;
	}
	if (!s->conn)
		start_connect(s);
}

/* --- sending ------------------------------------------------------------ */

static int op_send(struct store *s, struct op *op)
{
	for (size_t i = 0; i < op->n_stmts; i++) {
		struct stmt *st = &op->stmts[i];
		const char *sql = st->sql_owned ? st->sql_owned : st->sql;
		const char *const *params = (const char *const *)st->params;
		int ok;
		if (st->name && sql)
			ok = PQsendPrepare(s->conn, st->name, sql, 0, NULL);
		else if (st->name)
			ok = PQsendQueryPrepared(s->conn, st->name, st->n_params, params, st->lengths,
			                         st->formats, 0);
		else
			ok = PQsendQueryParams(s->conn, sql, st->n_params, NULL, params, st->lengths,
			                       st->formats, 0);
		if (!ok)
			return -1;
	}
	if (!PQpipelineSync(s->conn))
		return -1;
	return 0;
}

static void flush(struct store *s)
{
	if (!s->conn)
		return;
	int r = PQflush(s->conn);
	if (r < 0) {
		connection_lost(s, conn_error(s));
		return;
	}
	if (r == 1) {
		if (!s->ev_write) {
			s->ev_write = event_new(s->base, s->ev_fd, EV_WRITE, on_write, s);
			if (!s->ev_write) {
				connection_lost(s, "out of memory");
				return;
			}
		}
		event_add(s->ev_write, NULL);
	} else if (s->ev_write) {
		event_del(s->ev_write);
	}
}

static void send_internal(struct store *s, struct op *op)
{
	if (op_send(s, op) != 0) {
		op_free(op);
		connection_lost(s, conn_error(s));
		return;
	}
	list_push(&s->sent, &s->sent_tail, op);
	flush(s);
}

static void pump(struct store *s)
{
	if (s->discard) {
		/* Acknowledge from the loop, never inside the caller's store call. */
		if (s->queued && s->state == STORE_READY && !evtimer_pending(s->ev_timer, NULL))
			timer_arm(s, 0);
		return;
	}
	if (s->in_io || s->state != STORE_READY || !s->conn)
		return;
	bool any = false;
	while (s->queued && s->n_sent_user < STORE_MAX_IN_FLIGHT) {
		struct op *op = list_pop(&s->queued, &s->queued_tail);
		if (op_send(s, op) != 0) {
			/* put it back; connection_lost requeues the sent ones before it */
			op->next = s->queued;
			s->queued = op;
			if (!s->queued_tail)
				s->queued_tail = op;
			connection_lost(s, conn_error(s));
			return;
		}
		list_push(&s->sent, &s->sent_tail, op);
		s->n_sent_user++;
		any = true;
	}
	if (any)
		flush(s);
}

static void on_write(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct store *s = arg;
	flush(s);
}

/* --- results ------------------------------------------------------------ */

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

static void finish_op(struct store *s, struct op *op);

static void take_result(struct store *s, PGresult *r)
{
	struct op *op = s->sent;
	ExecStatusType st = PQresultStatus(r);
	if (!op) {
		/* An asynchronous error (e.g. the server shutting down). */
		if (st == PGRES_FATAL_ERROR)
			snprintf(s->last_error, sizeof s->last_error, "%s", PQresultErrorMessage(r));
		PQclear(r);
		return;
	}
	if (st == PGRES_PIPELINE_SYNC) {
		PQclear(r);
		list_pop(&s->sent, &s->sent_tail);
		if (op->kind != OP_INTERNAL)
			s->n_sent_user--;
		finish_op(s, op);
		return;
	}
	op->cur_seen = true;
	switch (st) {
	case PGRES_TUPLES_OK:
		PQclear(op->res);
		op->res = r;
		return;
	case PGRES_COMMAND_OK:
	case PGRES_PIPELINE_ABORTED:
		break;
	default:
		if (!op->failed) {
			op->failed = true;
			const char *code = PQresultErrorField(r, PG_DIAG_SQLSTATE);
			op->transient = sqlstate_transient(code);
			snprintf(op->err, sizeof op->err, "%s", PQresultErrorMessage(r));
			size_t n = strlen(op->err);
			while (n && (op->err[n - 1] == '\n' || op->err[n - 1] == ' '))
				op->err[--n] = '\0';
		}
		break;
	}
	PQclear(r);
}

static void read_results(struct store *s)
{
	s->in_io = true;
	while (s->conn) {
		if (PQisBusy(s->conn))
			break;
		PGresult *r = PQgetResult(s->conn);
		if (r) {
			take_result(s, r);
			continue;
		}
		/* NULL: the end of one statement's results, or nothing pending. */
		struct op *op = s->sent;
		if (op && op->cur_seen) {
			op->cur++;
			op->cur_seen = false;
			continue;
		}
		break;
	}
	s->in_io = false;
	if (s->conn && PQstatus(s->conn) == CONNECTION_BAD) {
		connection_lost(s, conn_error(s));
		return;
	}
	pump(s);
}

static void on_io(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct store *s = arg;
	if (s->connecting) {
		connect_poll(s);
		return;
	}
	if (!s->conn)
		return;
	/* On failure, still hand out what arrived before it (commits). */
	int ok = PQconsumeInput(s->conn);
	read_results(s);
	if (!ok && s->conn)
		connection_lost(s, conn_error(s));
}

/* --- op completion ------------------------------------------------------ */

static int split_batch(struct store *s, struct op *op);

static void finish_op(struct store *s, struct op *op)
{
	if (op->failed && op->transient) {
		/* Back to the head of the queue; the connection is (about to be) gone. */
		char why[ERR_MAX];
		snprintf(why, sizeof why, "%s", op->err);
		if (op->kind == OP_INTERNAL) {
			op_free(op);
		} else {
			op->next = s->queued;
			s->queued = op;
			if (!s->queued_tail)
				s->queued_tail = op;
			op->failed = false;
			op->transient = false;
			op->cur = 0;
			op->cur_seen = false;
		}
		s->in_io = false;
		/* A connection is made fine, then the same statement fails
		 * again (a statement_timeout, a held lock): the delay must keep
		 * growing, so connecting does not reset it. */
		s->stmt_failing = true;
		connection_lost(s, why);
		return;
	}
	const char *err = op->failed ? op->err : NULL;
	if (!err && op->kind != OP_INTERNAL) {
		s->stmt_failing = false;
		s->backoff_ms = STORE_BACKOFF_MIN_MS;
	}
	if (err)
		snprintf(s->last_error, sizeof s->last_error, "%s", err);
	switch (op->kind) {
	case OP_INTERNAL:
		op->done(s, op, op->res, err);
		break;
	case OP_BATCH: {
		struct table *t = &s->tables[op->table];
		if (err && op->n_rows > 1 && split_batch(s, op) == 0) {
			s->stats.batches_split++;
			free(op->rows);   /* the strings moved to the one-row ops */
			op->n_rows = 0;
			op->rows = NULL;
			break;
		}
		bool owner = s->sink_attached && op->sink_gen == s->sink_gen;
		if (err) {
			s->stats.rows_failed += op->n_rows;
			if (owner && s->sink.rows_refused)
				s->sink.rows_refused(s->sink.arg, op->table, op->n_added,
				                     op->n_rows == 1 ? op->rows[0].key : NULL, err);
		} else {
			t->batches_committed++;
			s->stats.batches_committed++;
		}
		t->uncommitted -= op->n_added;
		t->rows_committed += op->n_added;
		if (owner && s->sink.committed)
			s->sink.committed(s->sink.arg, op->table, op->n_added);
		break;
	}
	case OP_BEGIN_IMPORT: {
		int64_t id = 0;
		if (!err && op->res && PQntuples(op->res) == 1)
			id = strtoll(PQgetvalue(op->res, 0, 0), NULL, 10);
		if (op->id_cb)
			op->id_cb(op->arg, id, err ? err : (id ? NULL : "import_runs insert returned no id"));
		break;
	}
	case OP_ADD_ERROR:
		s->n_queued_errors--;
		break;
	case OP_FINISH_IMPORT:
	case OP_MARK_STALE:
		if (op->done_cb)
			op->done_cb(op->arg, err);
		break;
	case OP_GET_RUNS: {
		json_t *j = NULL;
		char jerr[ERR_MAX] = "";
		if (!err && op->res && PQntuples(op->res) == 1) {
			json_error_t je;
			j = json_loads(PQgetvalue(op->res, 0, 0), 0, &je);
			if (!j)
				snprintf(jerr, sizeof jerr, "import_runs as JSON unreadable: %s", je.text);
		} else if (!err) {
			snprintf(jerr, sizeof jerr, "import_runs query returned no row");
		}
		if (op->json_cb)
			op->json_cb(op->arg, j, err ? err : (j ? NULL : jerr));
		json_decref(j);
		break;
	}
	}
	op_free(op);
}

/* Discard mode: complete what was queued before this loop turn as if it
 * had committed (ops queued by the callbacks wait for the next turn). */
static void discard_queued(struct store *s)
{
	struct op *op = s->queued;
	s->queued = s->queued_tail = NULL;
	while (op) {
		struct op *next = op->next;
		op->next = NULL;
		if (op->kind == OP_BEGIN_IMPORT) {
			if (op->id_cb)
				op->id_cb(op->arg, ++s->discard_last_id, NULL);
			op_free(op);
		} else if (op->kind == OP_GET_RUNS) {
			json_t *none = json_array();
			if (op->json_cb)
				op->json_cb(op->arg, none, none ? NULL : "out of memory");
			json_decref(none);
			op_free(op);
		} else {
			finish_op(s, op);
		}
		op = next;
	}
	pump(s);
}

/* --- batches ------------------------------------------------------------ */

static const struct row *sort_rows;

static int cmp_idx(const void *a, const void *b)
{
	size_t ia = *(const size_t *)a, ib = *(const size_t *)b;
	int c = strcmp(sort_rows[ia].key, sort_rows[ib].key);
	if (c)
		return c;
	return ia < ib ? -1 : ia > ib;
}

/* Fold rows with the same key (the later wins), keeping first-seen order of
 * the survivors.  Returns the new count or -1 (out of memory). */
static long fold_rows(struct row *rows, size_t n)
{
	if (n < 2)
		return (long)n;
	size_t *idx = malloc(n * sizeof *idx);
	bool *drop = calloc(n, sizeof *drop);
	if (!idx || !drop) {
		free(idx);
		free(drop);
		return -1;
	}
	for (size_t i = 0; i < n; i++)
		idx[i] = i;
	sort_rows = rows;
	qsort(idx, n, sizeof *idx, cmp_idx);
	sort_rows = NULL;
	for (size_t i = 0; i + 1 < n; i++)
		if (strcmp(rows[idx[i]].key, rows[idx[i + 1]].key) == 0)
			drop[idx[i]] = true;
	size_t w = 0;
	for (size_t i = 0; i < n; i++) {
		if (drop[i]) {
			free(rows[i].key);
			free(rows[i].parent);
			free(rows[i].payload);
			continue;
		}
		rows[w++] = rows[i];
	}
	free(idx);
	free(drop);
	return (long)w;
}

/* The batch's statement: the table's upsert over three arrays and the
 * batch's import id (one per batch: see store_add), sent in binary format. */
static int batch_build(struct store *s, struct op *op)
{
	static const int binary[4] = { 1, 1, 1, 1 };
	struct buf keys = { 0 }, parents = { 0 }, payloads = { 0 }, ids = { 0 };
	bool null_parent = false;
	for (size_t i = 0; i < op->n_rows && !null_parent; i++)
		null_parent = !op->rows[i].parent;
	buf_array_header(&keys, PG_TYPE_TEXT, op->n_rows, false);
	buf_array_header(&parents, PG_TYPE_TEXT, op->n_rows, null_parent);
	buf_array_header(&payloads, PG_TYPE_JSONB, op->n_rows, false);
	buf_add_be64(&ids, (uint64_t)op->rows[0].import_id);
	for (size_t i = 0; i < op->n_rows; i++) {
		buf_array_text(&keys, op->rows[i].key, false);
		buf_array_text(&parents, op->rows[i].parent, false);
		buf_array_text(&payloads, op->rows[i].payload, true);
	}
	struct stmt *st = &op->stmts[0];
	st->name = s->tables[op->table].upsert_name;
	st->params = calloc(4, sizeof *st->params);
	st->lengths = calloc(4, sizeof *st->lengths);
	struct buf *bufs[4] = { &keys, &parents, &payloads, &ids };
	bool fail = !st->params || !st->lengths;
	for (size_t k = 0; k < 4; k++)
		fail |= bufs[k]->oom || bufs[k]->len > INT32_MAX;
	if (fail) {
		for (size_t k = 0; k < 4; k++)
			free(bufs[k]->p);
		return -1;
	}
	st->n_params = 4;
	st->formats = binary;
	for (size_t k = 0; k < 4; k++) {
		st->params[k] = bufs[k]->p;
		st->lengths[k] = (int)bufs[k]->len;
	}
	return 0;
}

static struct op *batch_new(struct store *s, size_t table, struct row *rows, size_t n_rows,
                            size_t n_added)
{
	struct op *op = op_new(OP_BATCH, 1);
	if (!op)
		return NULL;
	op->table = table;
	op->rows = rows;
	op->n_rows = n_rows;
	op->n_added = n_added;
	if (batch_build(s, op) != 0) {
		op->rows = NULL;
		op->n_rows = 0;
		op_free(op);
		return NULL;
	}
	return op;
}

/* Replace a failed batch by one-row batches at the head of the queue. */
static int split_batch(struct store *s, struct op *op)
{
	struct op *head = NULL, *tail = NULL;
	for (size_t i = 0; i < op->n_rows; i++) {
		struct row *r = malloc(sizeof *r);
		struct op *one = NULL;
		if (r) {
			*r = op->rows[i];   /* the strings stay owned by op until success */
			one = batch_new(s, op->table, r, 1, i == 0 ? 1 + op->n_added - op->n_rows : 1);
		}
		if (one)
			one->sink_gen = op->sink_gen;
		if (!one) {
			free(r);
			while ((one = list_pop(&head, &tail))) {
				free(one->rows);
				one->rows = NULL;
				one->n_rows = 0;
				op_free(one);
			}
			return -1;
		}
		list_push(&head, &tail, one);
	}
	tail->next = s->queued;
	if (!s->queued)
		s->queued_tail = tail;
	s->queued = head;
	return 0;
}

static int enqueue(struct store *s, struct op *op)
{
	list_push(&s->queued, &s->queued_tail, op);
	pump(s);
	return 0;
}

static int make_batch(struct store *s, size_t table, char *err)
{
	struct table *t = &s->tables[table];
	if (t->n_pending == 0)
		return 0;
	size_t n_added = t->n_pending;
	if (s->discard) {
		/* No rows were kept: a batch that only acknowledges n_added. */
		struct op *op = op_new(OP_BATCH, 1);
		if (!op)
			return err_set(err, "store: out of memory building a batch for table %s", t->name);
		op->table = table;
		op->n_added = n_added;
		op->sink_gen = t->pending_gen;
		t->n_pending = 0;
		return enqueue(s, op);
	}
	long n = fold_rows(t->pending, t->n_pending);
	if (n < 0)
		return err_set(err, "store: out of memory folding a batch for table %s", t->name);
	struct op *op = batch_new(s, table, t->pending, (size_t)n, n_added);
	if (!op) {
		t->n_pending = (size_t)n;
		return err_set(err, "store: out of memory building a batch for table %s", t->name);
	}
	op->sink_gen = t->pending_gen;
	t->pending = NULL;
	t->n_pending = 0;
	t->cap = 0;
	s->stats.rows_folded += n_added - (size_t)n;
	return enqueue(s, op);
}

/* --- public API --------------------------------------------------------- */

static void table_free(struct table *t)
{
	free(t->name);
	free(t->upsert_name);
	free(t->upsert_sql);
	free(t->create_sql);
	free(t->index_sql);
	rows_free(t->pending, t->n_pending);
}

static int table_init(struct table *t, const char *name, char *err)
{
	if (!name_valid(name))
		return err_set(err, "store: stage name '%s' cannot be a table name: use 1 to %d of "
		               "[a-z0-9_], starting with a letter or '_', other than import_runs, "
		               "import_errors, raced_schema_version", name, STORE_NAME_MAX);
	t->name = strdup(name);
	char idxname[STORE_NAME_MAX + 16];
	snprintf(idxname, sizeof idxname, "%s_parent_key", name);
	/* Validated above to [a-z0-9_]: double quotes make it an identifier
	 * even when it is a reserved word ("user", "order"). */
	char q[STORE_NAME_MAX + 3], qi[STORE_NAME_MAX + 19];
	snprintf(q, sizeof q, "\"%s\"", name);
	snprintf(qi, sizeof qi, "\"%s\"", idxname);
	if (!t->name)
		return err_set(err, "store: out of memory");
	int rc = 0;
	if (asprintf(&t->create_sql,
	             "CREATE TABLE IF NOT EXISTS %s ("
	             " key text PRIMARY KEY,"
	             " parent_key text,"
	             " payload jsonb NOT NULL,"
	             " first_import bigint,"
	             " last_import bigint,"
	             " updated_at timestamptz NOT NULL DEFAULT now())", q) < 0)
		t->create_sql = NULL, rc = -1;
	if (asprintf(&t->index_sql, "CREATE INDEX IF NOT EXISTS %s ON %s (parent_key)", qi, q) < 0)
		t->index_sql = NULL, rc = -1;
	if (asprintf(&t->upsert_name, "raced_upsert_%s", name) < 0)
		t->upsert_name = NULL, rc = -1;
	if (asprintf(&t->upsert_sql,
	             "INSERT INTO %s AS t (key, parent_key, payload, first_import, last_import, updated_at)"
	             " SELECT u.k, u.p, u.j, $4::bigint, $4::bigint, now()"
	             " FROM unnest($1::text[], $2::text[], $3::jsonb[]) AS u(k, p, j)"
	             " ON CONFLICT (key) DO UPDATE SET"
	             "  payload = CASE WHEN t.payload IS DISTINCT FROM excluded.payload"
	             "   THEN excluded.payload ELSE t.payload END,"
	             "  updated_at = CASE WHEN t.payload IS DISTINCT FROM excluded.payload"
	             "   THEN now() ELSE t.updated_at END,"
	             "  parent_key = excluded.parent_key,"
	             "  last_import = greatest(t.last_import, excluded.last_import)"
	             " WHERE t.last_import IS NULL OR t.last_import < excluded.last_import"
	             "  OR t.parent_key IS DISTINCT FROM excluded.parent_key"
	             "  OR t.payload IS DISTINCT FROM excluded.payload", q) < 0)
		t->upsert_sql = NULL, rc = -1;
	if (rc)
		return err_set(err, "store: out of memory");
	return 0;
}

struct store *store_new(struct event_base *base, const struct store_conf *conf,
                        const struct store_callbacks *cb, char *err)
{
	if (!conf->discard && !conf->conninfo)
		return err_set(err, "store: [database] conninfo is not set"), NULL;
	if (conf->batch_size == 0 || conf->batch_size > STORE_BATCH_SIZE_MAX)
		return err_set(err, "store: [database] batch_size %u is out of range: use 1 to %u",
		               conf->batch_size, STORE_BATCH_SIZE_MAX), NULL;
	char *perr = NULL;
	PQconninfoOption *opts = conf->discard ? NULL : PQconninfoParse(conf->conninfo, &perr);
	if (!conf->discard && !opts) {
		err_set(err, "store: [database] conninfo is invalid: %s", perr ? perr : "out of memory");
		PQfreemem(perr);
		return NULL;
	}
	PQconninfoFree(opts);

	struct store *s = calloc(1, sizeof *s);
	if (!s)
		return err_set(err, "store: out of memory"), NULL;
	s->base = base;
	if (cb)
		s->cb = *cb;
	s->batch_size = conf->batch_size;
	s->discard = conf->discard;
	s->ev_fd = -1;
	s->backoff_ms = STORE_BACKOFF_MIN_MS;
	struct timeval now;
	gettimeofday(&now, NULL);
	s->rand_state = ((uint64_t)now.tv_sec << 20) ^ (uint64_t)now.tv_usec ^ ((uint64_t)getpid() << 40) ^ 0x9e3779b97f4a7c15ULL;
	s->conninfo = strdup(conf->discard || !conf->conninfo ? "" : conf->conninfo);
	s->conninfo_shown = conninfo_without_password(s->conninfo ? s->conninfo : "");
	s->tables = calloc(conf->n_tables ? conf->n_tables : 1, sizeof *s->tables);
	s->ev_timer = evtimer_new(base, on_timer, s);
	if (!s->conninfo || !s->conninfo_shown || !s->tables || !s->ev_timer) {
		err_set(err, "store: out of memory");
		goto fail;
	}
	s->n_tables = conf->n_tables;
	for (size_t i = 0; i < conf->n_tables; i++) {
		if (table_init(&s->tables[i], conf->tables[i], err) != 0)
			goto fail;
		for (size_t k = 0; k < i; k++)
			if (strcmp(conf->tables[k], conf->tables[i]) == 0) {
				err_set(err, "store: stage name '%s' appears twice", conf->tables[i]);
				goto fail;
			}
	}
	s->state = STORE_CONNECTING;
	/* Connect from the loop, so state_changed never fires inside store_new. */
	timer_arm(s, 0);
	return s;
fail:
	store_free(s);
	return NULL;
}

void store_free(struct store *s)
{
	if (!s)
		return;
	io_unwatch(s);
	if (s->ev_timer)
		event_free(s->ev_timer);
	if (s->conn)
		PQfinish(s->conn);
	struct op *op;
	while ((op = list_pop(&s->sent, &s->sent_tail)))
		op_free(op);
	while ((op = list_pop(&s->queued, &s->queued_tail)))
		op_free(op);
	while (s->dropped) {
		struct dropped *d = s->dropped;
		s->dropped = d->next;
		free(d);
	}
	if (s->tables)
		for (size_t i = 0; i < s->n_tables; i++)
			table_free(&s->tables[i]);
	free(s->tables);
	free(s->conninfo);
	free(s->conninfo_shown);
	free(s);
}

int store_add(struct store *s, size_t table, int64_t import_id, const char *key,
              const char *parent_key, const char *payload, size_t payload_len, char *err)
{
	if (table >= s->n_tables)
		return err_set(err, "store: table %zu out of range (%zu tables)", table, s->n_tables);
	struct table *t = &s->tables[table];
	if (!key || !payload)
		return err_set(err, "store: row for table %s without %s", t->name, key ? "payload" : "key");
	if (memchr(payload, '\0', payload_len))
		return err_set(err, "store: payload for %s key '%s' contains a NUL byte", t->name, key);
	/* A batch belongs to one import (its import id is one parameter) and
	 * to the sink attached when its rows were added. */
	if (t->n_pending > 0 && (t->pending_import != import_id || t->pending_gen != s->sink_gen) &&
	    make_batch(s, table, err) != 0)
		return -1;
	if (s->discard)
		goto counted;
	if (t->n_pending == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : (s->batch_size < 64 ? s->batch_size : 64);
		if (cap > s->batch_size)
			cap = s->batch_size;
		struct row *r = realloc(t->pending, cap * sizeof *r);
		if (!r)
			return err_set(err, "store: out of memory queueing a row for %s", t->name);
		t->pending = r;
		t->cap = cap;
	}
	struct row *r = &t->pending[t->n_pending];
	r->key = strdup(key);
	r->parent = parent_key ? strdup(parent_key) : NULL;
	r->payload = malloc(payload_len + 1);
	if (!r->key || (parent_key && !r->parent) || !r->payload) {
		free(r->key);
		free(r->parent);
		free(r->payload);
		return err_set(err, "store: out of memory queueing a row for %s", t->name);
	}
	memcpy(r->payload, payload, payload_len);
	r->payload[payload_len] = '\0';
	r->import_id = import_id;
counted:
	t->pending_import = import_id;
	t->pending_gen = s->sink_gen;
	t->n_pending++;
	t->uncommitted++;
	s->stats.rows_added++;
	if (t->n_pending >= s->batch_size)
		return make_batch(s, table, err);
	return 0;
}

int store_flush(struct store *s, size_t table, char *err)
{
	if (table >= s->n_tables)
		return err_set(err, "store: table %zu out of range (%zu tables)", table, s->n_tables);
	return make_batch(s, table, err);
}

void store_attach_sink(struct store *s, const struct store_sink *sink)
{
	s->sink_gen++;
	s->sink_attached = sink != NULL;
	if (sink)
		s->sink = *sink;
}

void store_detach_sink(struct store *s, const void *arg)
{
	if (s->sink_attached && s->sink.arg == arg)
		store_attach_sink(s, NULL);
}

size_t store_pending(const struct store *s, size_t table)
{
	return table < s->n_tables ? (size_t)s->tables[table].uncommitted : 0;
}

void store_get_stats(const struct store *s, struct store_stats *out)
{
	*out = s->stats;
	out->state = s->state;
	out->ops_queued = 0;
	for (const struct op *op = s->queued; op; op = op->next)
		out->ops_queued++;
	out->ops_in_flight = s->n_sent_user;
	out->errors_queued = s->n_queued_errors;
	out->last_error = s->last_error[0] ? s->last_error : NULL;
}

size_t store_table_committed(const struct store *s, size_t table)
{
	return table < s->n_tables ? (size_t)s->tables[table].rows_committed : 0;
}

int store_begin_import(struct store *s, const char *requested_by, store_id_fn cb, void *arg)
{
	struct op *op = op_new(OP_BEGIN_IMPORT, 1);
	const char *p[] = { requested_by };
	if (!op || op_stmt(op, 0, "INSERT INTO import_runs (status, requested_by) VALUES ('running', $1) RETURNING id", 1, p) != 0) {
		op_free(op);
		return -1;
	}
	op->id_cb = cb;
	op->arg = arg;
	return enqueue(s, op);
}

static struct dropped *dropped_find(struct store *s, int64_t import_id, bool unlink)
{
	for (struct dropped **pp = &s->dropped; *pp; pp = &(*pp)->next) {
		if ((*pp)->import_id == import_id) {
			struct dropped *d = *pp;
			if (unlink)
				*pp = d->next;
			return d;
		}
	}
	return NULL;
}

int store_add_error(struct store *s, int64_t import_id, const char *stage, const char *url,
                    long http_status, uint32_t attempts, const char *message)
{
	if (s->n_queued_errors >= STORE_MAX_PENDING_ERRORS) {
		struct dropped *d = dropped_find(s, import_id, false);
		if (!d) {
			d = calloc(1, sizeof *d);
			if (!d)
				return -1;
			d->import_id = import_id;
			d->next = s->dropped;
			s->dropped = d;
		}
		d->n++;
		s->stats.errors_dropped++;
		return 0;
	}
	char id[24], status[24], att[16];
	snprintf(id, sizeof id, "%lld", (long long)import_id);
	snprintf(status, sizeof status, "%ld", http_status);
	snprintf(att, sizeof att, "%u", attempts);
	const char *p[] = { id, stage ? stage : "", url, http_status > 0 ? status : NULL, att, message };
	struct op *op = op_new(OP_ADD_ERROR, 1);
	if (!op || op_stmt(op, 0, "INSERT INTO import_errors (import_id, stage, url, http_status, attempts, message)"
	                          " VALUES ($1, $2, $3, $4, $5, $6)", 6, p) != 0) {
		op_free(op);
		return -1;
	}
	s->n_queued_errors++;
	return enqueue(s, op);
}

int store_finish_import(struct store *s, int64_t import_id, const char *status,
                        json_t *counts, store_done_fn cb, void *arg)
{
	/* Every row queued before: flush partial batches first. */
	for (size_t i = 0; i < s->n_tables; i++)
		if (make_batch(s, i, NULL) != 0)
			return -1;
	json_t *c = counts ? json_deep_copy(counts) : json_object();
	if (!c || !json_is_object(c)) {
		json_decref(c);
		return -1;
	}
	struct dropped *d = dropped_find(s, import_id, true);
	if (d) {
		json_object_set_new(c, "errors_not_recorded", json_integer((json_int_t)d->n));
		free(d);
	}
	char *ctext = json_dumps(c, JSON_COMPACT);
	json_decref(c);
	char id[24];
	snprintf(id, sizeof id, "%lld", (long long)import_id);
	const char *p[] = { id, status, ctext };
	struct op *op = ctext ? op_new(OP_FINISH_IMPORT, 1) : NULL;
	if (!op || op_stmt(op, 0, "UPDATE import_runs SET status = $2, finished_at = now(), counts = $3::jsonb"
	                          " WHERE id = $1", 3, p) != 0) {
		free(ctext);
		op_free(op);
		return -1;
	}
	free(ctext);
	op->done_cb = cb;
	op->arg = arg;
	return enqueue(s, op);
}

int store_get_runs(struct store *s, int64_t id, uint32_t limit, store_json_fn cb, void *arg)
{
	char ids[24], lim[16];
	snprintf(ids, sizeof ids, "%lld", (long long)id);
	snprintf(lim, sizeof lim, "%u", limit ? limit : 1);
	const char *p[] = { ids, lim };
	struct op *op = op_new(OP_GET_RUNS, 1);
	if (!op || op_stmt(op, 0,
	        "SELECT coalesce(json_agg(r ORDER BY r.id DESC), '[]')::text FROM ("
	        " SELECT i.id, i.started_at, i.finished_at, i.status, i.requested_by, i.counts,"
	        "  (SELECT count(*) FROM import_errors e WHERE e.import_id = i.id) AS errors"
	        " FROM import_runs i WHERE ($1::bigint = 0 OR i.id = $1::bigint)"
	        " ORDER BY i.id DESC LIMIT $2::integer) r", 2, p) != 0) {
		op_free(op);
		return -1;
	}
	op->json_cb = cb;
	op->arg = arg;
	return enqueue(s, op);
}

int store_mark_stale_runs(struct store *s)
{
	struct op *op = op_new(OP_MARK_STALE, 1);
	if (!op || op_stmt(op, 0, "UPDATE import_runs SET status = 'interrupted', finished_at = now()"
	                          " WHERE status = 'running'", 0, NULL) != 0) {
		op_free(op);
		return -1;
	}
	return enqueue(s, op);
}
