/* store_null — the backend of [database] discard = yes (see store.h):
 * connect to nothing and drop every row and statement, completing each
 * op on a later loop turn as if it had committed.  import_runs inserts are
 * answered with ids counting from 1, queries with [].
 *
 * Ops are completed from a timer of 0 ms, never inside the caller's store
 * call; the ops queued by those completions wait for the next turn.
 */
#include "store_backend.h"
#include "store_runs.h"

#include <event2/event.h>
#include <stdlib.h>

struct store_null {
	struct store_backend b;  /* first */
	struct store *s;
	struct event *ev;
	int64_t last_id;         /* import ids handed out */
};

static void arm(struct store_null *n)
{
	struct timeval zero = { 0, 0 };
	event_add(n->ev, &zero);
}

static void complete(struct store_null *n, struct store_op *op)
{
	if (op->kind == STORE_OP_BEGIN_IMPORT) {
		store_runs_answer_id(op, ++n->last_id, NULL);
		store_op_free(op);
	} else if (op->kind == STORE_OP_GET_RUNS || op->kind == STORE_OP_GET_ERRORS) {
		json_t *none = op->kind == STORE_OP_GET_RUNS ? json_array() : json_object();
		store_runs_answer_runs(op, none, none ? NULL : "out of memory");
		json_decref(none);
		store_op_free(op);
	} else {
		store_op_completed(n->s, op, NULL, NULL);
	}
}

static void on_turn(evutil_socket_t fd, short what, void *arg)
{
	struct store_null *n = arg;
	(void)fd;
	(void)what;
	if (store_state(n->s) != STORE_READY)
		store_set_state(n->s, STORE_READY, "discarding every row ([database] discard = yes)");
	struct store_op_list now = { 0 };
	store_queue_take_all(n->s, &now);
	struct store_op *op;
	while ((op = store_op_pop(&now)))
		complete(n, op);
}

static void null_kick(struct store_backend *b)
{
	struct store_null *n = (struct store_null *)b;
	if (store_state(n->s) == STORE_READY && !store_queue_empty(n->s) &&
	    !evtimer_pending(n->ev, NULL))
		arm(n);
}

static void null_get_stats(const struct store_backend *b, struct store_stats *out)
{
	(void)b;
	out->ops_in_flight = 0;
	out->reconnects = 0;
	out->warmups = 0;
	out->migrations_applied = 0;
	out->reader_state = "idle";
}

static void null_free(struct store_backend *b)
{
	struct store_null *n = (struct store_null *)b;
	if (n->ev)
		event_free(n->ev);
	free(n);
}

static const struct store_backend_ops null_ops = {
	.kick = null_kick,
	.get_stats = null_get_stats,
	.free = null_free,
};

struct store_backend *store_null_new(struct store *s, struct event_base *base, char *err)
{
	struct store_null *n = calloc(1, sizeof *n);
	if (!n) {
		err_set(err, "store: out of memory");
		return NULL;
	}
	n->b.ops = &null_ops;
	n->s = s;
	n->ev = evtimer_new(base, on_turn, n);
	if (!n->ev) {
		free(n);
		err_set(err, "store: out of memory");
		return NULL;
	}
	arm(n);   /* READY from the loop, never inside store_new */
	return &n->b;
}
