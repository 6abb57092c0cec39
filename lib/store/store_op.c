/* store_op — see store_op.h. */
#include "store_op.h"

#include <stdlib.h>
#include <string.h>

static void stmt_free(struct store_stmt *st)
{
	for (int i = 0; i < st->n_params; i++)
		free(st->params[i]);
	free(st->params);
	free(st->lengths);
}

struct store_op *store_op_new(enum store_op_kind kind, size_t n_stmts)
{
	struct store_op *op = calloc(1, sizeof *op);
	if (!op)
		return NULL;
	op->kind = kind;
	op->stmts = calloc(n_stmts ? n_stmts : 1, sizeof *op->stmts);
	if (!op->stmts) {
		free(op);
		return NULL;
	}
	op->n_stmts = n_stmts;
	return op;
}

void store_op_free(struct store_op *op)
{
	if (!op)
		return;
	for (size_t i = 0; i < op->n_stmts; i++)
		stmt_free(&op->stmts[i]);
	free(op->stmts);
	PQclear(op->res);
	store_rows_free(op->rows, op->n_rows);
	store_page_recs_free(op->pages, op->n_pages);
	store_link_recs_free(op->links, op->n_links);
	free(op->sql_owned);
	for (size_t i = 0; i < op->n_inputs; i++)
		free(op->inputs[i]);
	free(op->inputs);
	free(op->tags);
	free(op->keys);
	free(op);
}

void store_op_sql(struct store_op *op, size_t i, const char *sql)
{
	op->stmts[i].sql = sql;
}

int store_op_stmt(struct store_op *op, size_t i, const char *sql, int n,
                  const char *const *params)
{
	struct store_stmt *st = &op->stmts[i];
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

void store_op_reset(struct store_op *op)
{
	PQclear(op->res);
	op->res = NULL;
	op->cur = 0;
	op->cur_seen = false;
	op->failed = false;
	op->transient = false;
	op->err[0] = '\0';
	op->sqlstate[0] = '\0';
}

void store_op_push(struct store_op_list *l, struct store_op *op)
{
	op->next = NULL;
	if (l->tail)
		l->tail->next = op;
	else
		l->head = op;
	l->tail = op;
}

void store_op_push_front(struct store_op_list *l, struct store_op_list *front)
{
	if (!front->head)
		return;
	front->tail->next = l->head;
	if (!l->head)
		l->tail = front->tail;
	l->head = front->head;
	front->head = front->tail = NULL;
}

struct store_op *store_op_pop(struct store_op_list *l)
{
	struct store_op *op = l->head;
	if (op) {
		l->head = op->next;
		if (!l->head)
			l->tail = NULL;
		op->next = NULL;
	}
	return op;
}

void store_op_list_free(struct store_op_list *l)
{
	struct store_op *op;
	while ((op = store_op_pop(l)))
		store_op_free(op);
}

size_t store_op_list_len(const struct store_op_list *l)
{
	size_t n = 0;
	for (const struct store_op *op = l->head; op; op = op->next)
		n++;
	return n;
}
