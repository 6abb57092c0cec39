/* store_batch — see store_batch.h.
 *
 * PostgreSQL's binary array format (array_send / array_recv): a header of
 * ndim, has-nulls flag, element type OID, then per dimension its length and
 * lower bound, then each element as a length (-1: NULL) and its bytes, every
 * integer a big-endian int32.
 */
#include "store_batch.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

int store_row_set(struct store_row *r, const char *key, const char *parent,
                  const char *payload, size_t payload_len)
{
	r->key = strdup(key);
	r->parent = parent ? strdup(parent) : NULL;
	r->payload = malloc(payload_len + 1);
	if (!r->key || (parent && !r->parent) || !r->payload) {
		free(r->key);
		free(r->parent);
		free(r->payload);
		return -1;
	}
	memcpy(r->payload, payload, payload_len);
	r->payload[payload_len] = '\0';
	r->cols = NULL;
	r->n_cols = 0;
	return 0;
}

static void cols_free(struct store_row *r)
{
	for (size_t i = 0; r->cols && i < r->n_cols; i++)
		free(r->cols[i]);
	free(r->cols);
	r->cols = NULL;
	r->n_cols = 0;
}

int store_row_set_cols(struct store_row *r, const char *const *values, size_t n)
{
	r->cols = NULL;
	r->n_cols = 0;
	if (!values || n == 0)
		return 0;
	if (!(r->cols = calloc(n, sizeof *r->cols)))
		return -1;
	r->n_cols = n;
	for (size_t i = 0; i < n; i++)
		if (values[i] && !(r->cols[i] = strdup(values[i]))) {
			cols_free(r);
			return -1;
		}
	return 0;
}

static void row_clear(struct store_row *r)
{
	free(r->key);
	free(r->parent);
	free(r->payload);
	cols_free(r);
}

void store_rows_free(struct store_row *rows, size_t n)
{
	for (size_t i = 0; i < n; i++)
		row_clear(&rows[i]);
	free(rows);
}

/* --- folding ------------------------------------------------------------ */

/* Row indexes by key, then by position: equal keys end up adjacent, the
 * latest last. */
static int cmp_index(const void *a, const void *b, void *rows_arg)
{
	const struct store_row *rows = rows_arg;
	size_t ia = *(const size_t *)a, ib = *(const size_t *)b;
	int c = strcmp(rows[ia].key, rows[ib].key);
	if (c)
		return c;
	return ia < ib ? -1 : ia > ib;
}

long store_rows_fold(struct store_row *rows, size_t n)
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
	qsort_r(idx, n, sizeof *idx, cmp_index, rows);
	for (size_t i = 0; i + 1 < n; i++)
		if (strcmp(rows[idx[i]].key, rows[idx[i + 1]].key) == 0)
			drop[idx[i]] = true;
	free(idx);
	size_t w = 0;
	for (size_t i = 0; i < n; i++) {
		if (drop[i])
			row_clear(&rows[i]);
		else
			rows[w++] = rows[i];
	}
	free(drop);
	return (long)w;
}

/* --- encoding ----------------------------------------------------------- */

void store_buf_add(struct store_buf *b, const void *p, size_t n)
{
	if (b->failed)
		return;
	if (b->len + n > INT32_MAX) {
		b->failed = true;
		return;
	}
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		while (cap < b->len + n)
			cap *= 2;
		char *q = realloc(b->p, cap);
		if (!q) {
			b->failed = true;
			return;
		}
		b->p = q;
		b->cap = cap;
	}
	memcpy(b->p + b->len, p, n);
	b->len += n;
}

void store_buf_be32(struct store_buf *b, uint32_t v)
{
	unsigned char p[4] = { (unsigned char)(v >> 24), (unsigned char)(v >> 16),
	                       (unsigned char)(v >> 8), (unsigned char)v };
	store_buf_add(b, p, 4);
}

void store_buf_be64(struct store_buf *b, uint64_t v)
{
	store_buf_be32(b, (uint32_t)(v >> 32));
	store_buf_be32(b, (uint32_t)v);
}

void store_buf_array_header(struct store_buf *b, uint32_t elem_oid, size_t n, bool has_nulls)
{
	store_buf_be32(b, 1);
	store_buf_be32(b, has_nulls ? 1 : 0);
	store_buf_be32(b, elem_oid);
	store_buf_be32(b, (uint32_t)n);
	store_buf_be32(b, 1);
}

void store_buf_array_bytes(struct store_buf *b, const void *v, size_t n)
{
	if (!v) {
		store_buf_be32(b, UINT32_MAX);   /* -1 */
		return;
	}
	if (n > INT32_MAX) {
		b->failed = true;
		return;
	}
	store_buf_be32(b, (uint32_t)n);
	store_buf_add(b, v, n);
}

/* One text (or jsonb, after its version byte) element; NULL is SQL NULL. */
static void buf_array_text(struct store_buf *b, const char *v, bool jsonb)
{
	if (!v || !jsonb) {
		store_buf_array_bytes(b, v, v ? strlen(v) : 0);
		return;
	}
	size_t n = strlen(v);
	if (n > INT32_MAX - 1) {
		b->failed = true;
		return;
	}
	store_buf_be32(b, (uint32_t)(n + 1));
	char version = PG_JSONB_VERSION;
	store_buf_add(b, &version, 1);
	store_buf_add(b, v, n);
}

static bool any_null_parent(const struct store_row *rows, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!rows[i].parent)
			return true;
	return false;
}

/* Row r's value of typed column c, or NULL. */
static const char *col_value(const struct store_row *r, size_t c)
{
	return r->cols && c < r->n_cols ? r->cols[c] : NULL;
}

int store_batch_encode(const struct store_row *rows, size_t n, int64_t import_id,
                       size_t n_cols, struct store_batch_params *out)
{
	static const int binary[STORE_BATCH_PARAMS_MAX] = {
		1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
		1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
	};
	if (n_cols > STORE_BATCH_PARAMS_MAX - STORE_BATCH_PARAMS)
		return -1;
	size_t np = STORE_BATCH_PARAMS + n_cols;
	struct store_buf b[STORE_BATCH_PARAMS_MAX] = { { 0 } };
	struct store_buf *keys = &b[0], *parents = &b[1], *payloads = &b[2], *id = &b[3];
	store_buf_array_header(keys, PG_TYPE_TEXT, n, false);
	store_buf_array_header(parents, PG_TYPE_TEXT, n, any_null_parent(rows, n));
	store_buf_array_header(payloads, PG_TYPE_JSONB, n, false);
	store_buf_be64(id, (uint64_t)import_id);
	for (size_t c = 0; c < n_cols; c++) {
		bool nulls = false;
		for (size_t i = 0; i < n && !nulls; i++)
			nulls = col_value(&rows[i], c) == NULL;
		store_buf_array_header(&b[STORE_BATCH_PARAMS + c], PG_TYPE_TEXT, n, nulls);
	}
	for (size_t i = 0; i < n; i++) {
		buf_array_text(keys, rows[i].key, false);
		buf_array_text(parents, rows[i].parent, false);
		buf_array_text(payloads, rows[i].payload, true);
		for (size_t c = 0; c < n_cols; c++)
			buf_array_text(&b[STORE_BATCH_PARAMS + c], col_value(&rows[i], c), false);
	}
	bool failed = false;
	for (size_t k = 0; k < np; k++)
		failed |= b[k].failed;
	for (size_t k = 0; k < np; k++) {
		if (failed) {
			free(b[k].p);
			continue;
		}
		out->values[k] = b[k].p;
		out->lengths[k] = (int)b[k].len;
	}
	if (failed)
		return -1;
	out->n = np;
	out->formats = binary;
	return 0;
}

void store_batch_params_free(struct store_batch_params *p)
{
	for (size_t k = 0; k < p->n && k < STORE_BATCH_PARAMS_MAX; k++) {
		free(p->values[k]);
		p->values[k] = NULL;
	}
}
