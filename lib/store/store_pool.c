/* store_pool — see store_pool.h. */
#include "store_pool.h"

#include "log.h"
#include "store_backend.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

struct pool_conn {
	struct store_conn *c;
	struct store_op_list fifo;   /* taken, not yet sent, in take order */
	size_t n_fifo;
	size_t n_reads;              /* reads of committed rows at the FIFO's head */
	enum store_state state;
	bool started;
};

struct store_pool {
	struct store_backend b;  /* first */
	struct store *s;
	unsigned n;              /* the write connections; conns[n] is the reader */
	struct pool_conn *conns;
	/* every op taken and not yet handed back, in take order (pool_next) */
	struct store_op *win_head, *win_tail;
	size_t n_win;
	bool pumping, again;     /* pool_pump re-entered: run once more */
	bool delivering;
	struct event *reader_idle;  /* closes the reader once idle */
	int64_t reader_busy_ms;     /* when it last had reads (monotonic) */
	bool reader_failing;        /* it failed and has not been READY since (logged once) */
};

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static enum store_state pool_state(const struct store_pool *p);

static unsigned route(const struct store_pool *p, const struct store_op *op)
{
	return op->conn < p->n ? op->conn : 0;
}

/* Every op taken before op on another connection is done (but side ops,
 * for a side op). */
static bool barrier_clear(const struct store_pool *p, const struct store_op *op)
{
	for (const struct store_op *w = p->win_head; w && w != op; w = w->pool_next)
		if (!w->pool_done && route(p, w) != route(p, op) && !(op->side && w->side))
			return false;
	return true;
}

/* Put op at the head of pc's FIFO, after the reads already there. */
static void push_read(struct pool_conn *pc, struct store_op *op)
{
	struct store_op *after = NULL;
	for (struct store_op *o = pc->fifo.head; o && o->unordered; o = o->next)
		after = o;
	if (!after) {
		struct store_op_list one = { op, op };
		op->next = NULL;
		store_op_push_front(&pc->fifo, &one);
	} else {
		op->next = after->next;
		after->next = op;
		if (pc->fifo.tail == after)
			pc->fifo.tail = op;
	}
	pc->n_fifo++;
	pc->n_reads++;
}

/* Reads of committed rows (store_read_committed) go on the reader while
 * it is READY; while it is closed (idle, or backing off after a failure),
 * at the head of connection 0's FIFO (at most STORE_POOL_READS_AHEAD
 * there, so they wait only for what connection 0 has sent); while it
 * connects they wait for it.  The reader is (re)started by a read, only
 * while every write connection is READY (the schema is current, and the
 * reader never takes a backend they need: a role's CONNECTION LIMIT may
 * leave no room for it) and its backoff after a failure has passed; what
 * it held when it went down moves to connection 0. */
static void take_reads(struct store_pool *p)
{
	struct pool_conn *rd = &p->conns[p->n], *c0 = &p->conns[0];
	if (!rd->started && (rd->n_fifo > 0 || store_reads_waiting(p->s)) &&
	    pool_state(p) == STORE_READY && store_conn_may_start(rd->c)) {
		rd->started = true;
		rd->state = STORE_CONNECTING;
		p->reader_busy_ms = mono_ms();
		store_conn_start(rd->c);
	}
	/* Connecting or setting up: its reads wait for it (a few round
	 * trips); closed: connection 0 carries them. */
	bool fallback = !rd->started;
	if (fallback && c0->state == STORE_READY) {
		struct store_op *op;
		while ((op = store_op_pop(&rd->fifo))) {
			rd->n_fifo--;
			op->conn = 0;
			push_read(c0, op);
		}
		rd->n_reads = 0;
	}
	while (store_reads_waiting(p->s)) {
		struct store_op *op;
		if (rd->started && rd->state == STORE_READY) {
			if (rd->n_fifo + store_conn_in_flight(rd->c) >= STORE_MAX_IN_FLIGHT ||
			    !(op = store_reads_take(p->s)))
				return;
			op->conn = p->n;
			store_op_push(&rd->fifo, op);
			rd->n_fifo++;
		} else {
			if (!fallback || c0->state != STORE_READY || c0->n_reads >= STORE_POOL_READS_AHEAD ||
			    !(op = store_reads_take(p->s)))
				return;
			op->conn = 0;
			push_read(c0, op);
		}
	}
}

/* Take ops from the store's queue into their connections' FIFOs while the
 * head's connection is READY and has room. */
static void fill(struct store_pool *p)
{
	take_reads(p);
	while (p->n_win < STORE_POOL_WINDOW_PER_CONN * (size_t)p->n) {
		const struct store_op *head = store_queue_peek(p->s);
		if (!head)
			return;
		struct pool_conn *pc = &p->conns[route(p, head)];
		if (pc->state != STORE_READY ||
		    pc->n_fifo + store_conn_in_flight(pc->c) >= STORE_MAX_IN_FLIGHT)
			return;
		struct store_op *op = store_queue_take(p->s);
		if (!op)
			return;   /* a read waiting for company, or the head failed to seal */
		op->conn = route(p, op);
		op->pool_done = false;
		op->pool_next = NULL;
		if (p->win_tail)
			p->win_tail->pool_next = op;
		else
			p->win_head = op;
		p->win_tail = op;
		p->n_win++;
		pc = &p->conns[op->conn];
		store_op_push(&pc->fifo, op);
		pc->n_fifo++;
	}
}

static bool reader_busy(const struct store_pool *p)
{
	const struct pool_conn *rd = &p->conns[p->n];
	return rd->n_fifo > 0 || store_conn_in_flight(rd->c) > 0 || store_reads_waiting(p->s);
}

/* Close the reader (it holds a backend); a later read starts it again. */
static void reader_close(struct store_pool *p)
{
	struct pool_conn *rd = &p->conns[p->n];
	if (!rd->started)
		return;
	rd->started = false;
	rd->state = STORE_CONNECTING;
	store_conn_stop(rd->c);   /* its sent reads back to its FIFO */
	if (p->reader_idle)
		event_del(p->reader_idle);
}

/* The reader started: note when it was last busy, and watch for
 * STORE_POOL_READER_IDLE_MS without a read. */
static void reader_watch(struct store_pool *p)
{
	if (!p->conns[p->n].started)
		return;
	if (reader_busy(p))
		p->reader_busy_ms = mono_ms();
	if (p->reader_idle && !evtimer_pending(p->reader_idle, NULL)) {
		struct timeval tv = { STORE_POOL_READER_IDLE_MS / 1000,
		                      (STORE_POOL_READER_IDLE_MS % 1000) * 1000 };
		evtimer_add(p->reader_idle, &tv);
	}
}

static void on_reader_idle(evutil_socket_t fd, short what, void *arg)
{
	struct store_pool *p = arg;
	(void)fd;
	(void)what;
	if (!p->conns[p->n].started)
		return;
	int64_t idle = mono_ms() - p->reader_busy_ms;
	if (reader_busy(p) || idle < STORE_POOL_READER_IDLE_MS) {
		int64_t left = reader_busy(p) ? STORE_POOL_READER_IDLE_MS : STORE_POOL_READER_IDLE_MS - idle;
		struct timeval tv = { (time_t)(left / 1000), (suseconds_t)(left % 1000 * 1000) };
		evtimer_add(p->reader_idle, &tv);
		return;
	}
	reader_close(p);
}

static void pool_pump(struct store_pool *p)
{
	if (p->pumping) {
		p->again = true;
		return;
	}
	p->pumping = true;
	do {
		p->again = false;
		fill(p);
		for (unsigned i = 0; i <= p->n; i++)
			store_conn_kick(p->conns[i].c);
	} while (p->again);
	reader_watch(p);
	p->pumping = false;
}

void store_pool_kick(struct store_pool *p)
{
	pool_pump(p);
}

struct store_op *store_pool_take(struct store_pool *p, unsigned idx)
{
	struct pool_conn *pc = &p->conns[idx];
	struct store_op *op = pc->fifo.head;
	if (!op || (!op->unordered && op->barrier && p->n > 1 && !barrier_clear(p, op)))
		return NULL;
	store_op_pop(&pc->fifo);
	pc->n_fifo--;
	if (op->unordered && pc->n_reads > 0)
		pc->n_reads--;
	return op;
}

void store_pool_return(struct store_pool *p, unsigned idx, struct store_op_list *ops)
{
	struct pool_conn *pc = &p->conns[idx];
	pc->n_fifo += store_op_list_len(ops);
	/* sent in FIFO order, the reads first: they stay at the head */
	for (const struct store_op *op = ops->head; op; op = op->next)
		pc->n_reads += op->unordered;
	store_op_push_front(&pc->fifo, ops);
}

/* Hand back, in take order, the ops done at the head of the window. */
static void deliver(struct store_pool *p)
{
	if (p->delivering)
		return;
	p->delivering = true;
	struct store_op *op;
	while ((op = p->win_head) && op->pool_done) {
		p->win_head = op->pool_next;
		if (!p->win_head)
			p->win_tail = NULL;
		p->n_win--;
		op->pool_next = NULL;
		store_op_completed(p->s, op, op->res, op->failed ? op->err : NULL);
	}
	p->delivering = false;
}

void store_pool_done(struct store_pool *p, unsigned idx, struct store_op *op)
{
	(void)idx;
	if (op->unordered) {
		/* in no window: nothing waits for it, nor it for anything */
		store_op_completed(p->s, op, op->res, op->failed ? op->err : NULL);
		return;
	}
	op->pool_done = true;
	deliver(p);
}

/* BACKOFF before CONNECTING before MIGRATING before READY. */
static int state_rank(enum store_state st)
{
	switch (st) {
	case STORE_BACKOFF:    return 0;
	case STORE_CONNECTING: return 1;
	case STORE_MIGRATING:  return 2;
	case STORE_READY:      return 3;
	}
	return 0;
}

static enum store_state pool_state(const struct store_pool *p)
{
	enum store_state st = STORE_READY;
	for (unsigned i = 0; i < p->n; i++)
		if (state_rank(p->conns[i].state) < state_rank(st))
			st = p->conns[i].state;
	return st;
}

/* The reader is not the store's state: while it is down its reads go on
 * connection 0 (take_reads).  It is logged (once an outage) as nothing
 * else shows it: a role's CONNECTION LIMIT or max_connections with no
 * room for it refuses it at every read. */
static void reader_state(struct store_pool *p, enum store_state st, const char *why)
{
	struct pool_conn *rd = &p->conns[p->n];
	rd->state = st;
	if (st == STORE_BACKOFF) {
		rd->started = false;   /* a later read starts it again, after the delay */
		if (!p->reader_failing) {
			p->reader_failing = true;
			log_warn("store: the connection for read-backs (one more than [database] connections"
			         " = %u) failed: %s; read-backs go on the first connection meanwhile. If"
			         " PostgreSQL refused it for too many connections, raise the role's CONNECTION"
			         " LIMIT or max_connections by one", p->n, why ? why : "");
		}
	} else if (st == STORE_READY && p->reader_failing) {
		p->reader_failing = false;
		log_notice("store: the connection for read-backs is back: %s", why ? why : "");
	}
	pool_pump(p);
}

void store_pool_state(struct store_pool *p, unsigned idx, enum store_state st, const char *why)
{
	if (idx == p->n) {
		reader_state(p, st, why);
		return;
	}
	enum store_state before = pool_state(p);
	p->conns[idx].state = st;
	enum store_state now = pool_state(p);
	/* A write connection went down: the reader gives its backend back
	 * (with a connection limit it could take theirs). */
	if (st != STORE_READY)
		reader_close(p);
	/* Connection 0 applied the migrations: the others may start. */
	if (idx == 0 && st == STORE_READY) {
		for (unsigned i = 1; i < p->n; i++)
			if (!p->conns[i].started) {
				p->conns[i].started = true;
				store_conn_start(p->conns[i].c);
			}
	}
	if (now != before || now == st) {
		if (p->n == 1) {
			store_set_state(p->s, now, why);
		} else {
			char msg[ERR_MAX];
			snprintf(msg, sizeof msg, "connection %u of %u: %s", idx + 1, p->n, why);
			store_set_state(p->s, now, msg);
		}
	}
}

static void pool_kick(struct store_backend *b)
{
	pool_pump((struct store_pool *)b);
}

static void pool_get_stats(const struct store_backend *b, struct store_stats *out)
{
	const struct store_pool *p = (const struct store_pool *)b;
	out->ops_in_flight = 0;
	out->reconnects = 0;
	out->warmups = 0;
	for (unsigned i = 0; i <= p->n; i++) {
		out->ops_in_flight += store_conn_in_flight(p->conns[i].c);
		out->reconnects += store_conn_reconnects(p->conns[i].c);
		out->warmups += store_conn_warmups(p->conns[i].c);
	}
	out->migrations_applied = store_conn_migrations(p->conns[0].c);
	const struct pool_conn *rd = &p->conns[p->n];
	out->reader_state = rd->started ? store_state_name(rd->state)
	                    : p->reader_failing ? "failed" : "idle";
	/* taken by the pool, not yet sent: still queued for the figures */
	for (unsigned i = 0; i <= p->n; i++)
		out->ops_queued += p->conns[i].n_fifo;
}

static void pool_free(struct store_backend *b)
{
	struct store_pool *p = (struct store_pool *)b;
	/* Ops done and not handed back are on no list but the window; the
	 * others are in a FIFO or a connection's sent list. */
	struct store_op *op = p->win_head;
	while (op) {
		struct store_op *next = op->pool_next;
		if (op->pool_done)
			store_op_free(op);
		op = next;
	}
	if (p->reader_idle)
		event_free(p->reader_idle);
	for (unsigned i = 0; p->conns && i <= p->n; i++) {
		store_op_list_free(&p->conns[i].fifo);
		store_conn_free(p->conns[i].c);
	}
	free(p->conns);
	free(p);
}

static const struct store_backend_ops pool_ops = {
	.kick = pool_kick,
	.get_stats = pool_get_stats,
	.free = pool_free,
};

struct store_backend *store_pool_new(struct store *s, struct event_base *base,
                                     const char *conninfo, const char *synchronous_commit,
                                     const char *schema, const struct store_table_sql *tables,
                                     size_t n_tables, unsigned connections, char *err)
{
	if (connections == 0 || connections > STORE_CONNECTIONS_MAX)
		return err_set(err, "store: [database] connections %u is out of range: use 1 to %u",
		               connections, STORE_CONNECTIONS_MAX), NULL;
	struct store_pool *p = calloc(1, sizeof *p);
	if (!p || !(p->conns = calloc(connections + 1, sizeof *p->conns))) {
		free(p);
		return err_set(err, "store: out of memory"), NULL;
	}
	p->b.ops = &pool_ops;
	p->s = s;
	p->n = connections;
	if (!(p->reader_idle = evtimer_new(base, on_reader_idle, p))) {
		pool_free(&p->b);
		return err_set(err, "store: out of memory"), NULL;
	}
	struct store_conn_conf cf = { .conninfo = conninfo, .synchronous_commit = synchronous_commit,
	                              .schema = schema, .tables = tables, .n_tables = n_tables };
	for (unsigned i = 0; i <= connections; i++) {
		p->conns[i].state = STORE_CONNECTING;
		cf.reader = i == connections;
		if (!(p->conns[i].c = store_conn_new(p, i, s, base, &cf, err))) {
			pool_free(&p->b);
			return NULL;
		}
	}
	p->conns[0].started = true;
	store_conn_start(p->conns[0].c);
	return &p->b;
}
