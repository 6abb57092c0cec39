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

uint64_t store_key_hash(const char *key, size_t len)
{
	uint64_t h = 14695981039346656037u;
	for (size_t i = 0; i < len; i++)
		h = (h ^ (unsigned char)key[i]) * 1099511628211u;
	return h;
}

int store_row_set(struct store_row *r, const char *key, const char *parent,
                  const char *payload, size_t payload_len)
{
	size_t kl = strlen(key), pl = parent ? strlen(parent) : 0;
	if (kl >= UINT32_MAX || pl >= UINT32_MAX || payload_len > SIZE_MAX - kl - pl - 3 ||
	    !(r->key = malloc(kl + pl + payload_len + 3)))
		return -1;
	memcpy(r->key, key, kl + 1);
	r->key_len = (uint32_t)kl;
	r->hash = store_key_hash(key, kl);
	char *at = r->key + kl + 1;
	r->parent = NULL;
	r->parent_len = 0;
	if (parent) {
		r->parent = at;
		memcpy(at, parent, pl + 1);
		r->parent_len = (uint32_t)pl;
		at += pl + 1;
	}
	r->payload = at;
	memcpy(at, payload, payload_len);
	at[payload_len] = '\0';
	r->payload_len = payload_len;
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

void store_row_clear(struct store_row *r)
{
	free(r->key);   /* the block: parent and payload too */
	r->key = r->parent = r->payload = NULL;
	cols_free(r);
}

void store_rows_free(struct store_row *rows, size_t n)
{
	for (size_t i = 0; i < n; i++)
		store_row_clear(&rows[i]);
	free(rows);
}

/* --- folding ------------------------------------------------------------ */

static bool same_key(const struct store_row *a, const struct store_row *b)
{
	return a->hash == b->hash && a->key_len == b->key_len &&
	       memcmp(a->key, b->key, a->key_len) == 0;
}

long store_rows_fold(struct store_row *rows, size_t n)
{
	if (n < 2)
		return (long)n;
	/* Open addressing, at most half full: slot + 1 of the latest row of
	 * each key seen (0: empty). */
	size_t cap = 4;
	while (cap < 2 * n)
		cap *= 2;
	/* one block: the slots, then a flag a row (set as each row is met) */
	size_t *slot = malloc(cap * sizeof *slot + n);
	if (!slot)
		return -1;
	memset(slot, 0, cap * sizeof *slot);
	bool *drop = (bool *)(slot + cap);
	bool any = false;
	for (size_t i = 0; i < n; i++) {
		drop[i] = false;
		size_t at = (size_t)(rows[i].hash ^ (rows[i].hash >> 32)) & (cap - 1);
		while (slot[at] && !same_key(&rows[slot[at] - 1], &rows[i]))
			at = (at + 1) & (cap - 1);
		if (slot[at]) {
			drop[slot[at] - 1] = true;   /* an earlier row of the key */
			any = true;
		}
		slot[at] = i + 1;
	}
	size_t w = n;
	if (any) {
		w = 0;
		for (size_t i = 0; i < n; i++) {
			if (drop[i])
				store_row_clear(&rows[i]);
			else
				rows[w++] = rows[i];
		}
	}
	free(slot);
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

/* One typed column's text element; NULL is SQL NULL. */
static void buf_array_text(struct store_buf *b, const char *v)
{
	store_buf_array_bytes(b, v, v ? strlen(v) : 0);
}

static bool any_null_parent(const struct store_row *rows, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!rows[i].parent)
			return true;
	return false;
}

/* Room for n more bytes, so that the adds after it do not grow b. */
static void buf_reserve(struct store_buf *b, size_t n)
{
	if (b->failed || b->len + n <= b->cap)
		return;
	if (b->len + n > INT32_MAX) {
		b->failed = true;
		return;
	}
	char *q = realloc(b->p, b->len + n);
	if (!q) {
		b->failed = true;
		return;
	}
	b->p = q;
	b->cap = b->len + n;
}

static unsigned char *put_be32(unsigned char *at, uint32_t v)
{
	at[0] = (unsigned char)(v >> 24);
	at[1] = (unsigned char)(v >> 16);
	at[2] = (unsigned char)(v >> 8);
	at[3] = (unsigned char)v;
	return at + 4;
}

/* The rows' keys, parent keys (NULL: SQL NULL) and payloads (jsonb: a
 * version byte first) as three arrays, headers and elements, into empty
 * buffers sized for them beforehand: one allocation each, no growth, no
 * strlen. */
static void put_rows(struct store_buf *keys, struct store_buf *parents, struct store_buf *payloads,
                     const struct store_row *rows, size_t n)
{
	enum { HEADER = 20 };   /* store_buf_array_header's five words */
	size_t nk = 0, np = 0, nj = 0;
	for (size_t i = 0; i < n; i++) {
		nk += 4 + rows[i].key_len;
		np += 4 + (rows[i].parent ? rows[i].parent_len : 0);
		nj += 5 + rows[i].payload_len;
		if (nk > INT32_MAX || np > INT32_MAX || nj > INT32_MAX) {
			keys->failed = true;   /* past a parameter's int length */
			return;
		}
	}
	buf_reserve(keys, HEADER + nk);
	buf_reserve(parents, HEADER + np);
	buf_reserve(payloads, HEADER + nj);
	store_buf_array_header(keys, PG_TYPE_TEXT, n, false);
	store_buf_array_header(parents, PG_TYPE_TEXT, n, any_null_parent(rows, n));
	store_buf_array_header(payloads, PG_TYPE_JSONB, n, false);
	if (keys->failed || parents->failed || payloads->failed)
		return;
	unsigned char *k = (unsigned char *)keys->p + keys->len;
	unsigned char *p = (unsigned char *)parents->p + parents->len;
	unsigned char *j = (unsigned char *)payloads->p + payloads->len;
	for (size_t i = 0; i < n; i++) {
		const struct store_row *r = &rows[i];
		k = put_be32(k, (uint32_t)r->key_len);
		memcpy(k, r->key, r->key_len);
		k += r->key_len;
		if (r->parent) {
			p = put_be32(p, (uint32_t)r->parent_len);
			memcpy(p, r->parent, r->parent_len);
			p += r->parent_len;
		} else {
			p = put_be32(p, UINT32_MAX);   /* -1: NULL */
		}
		j = put_be32(j, (uint32_t)(r->payload_len + 1));
		*j++ = PG_JSONB_VERSION;
		memcpy(j, r->payload, r->payload_len);
		j += r->payload_len;
	}
	keys->len += nk;
	parents->len += np;
	payloads->len += nj;
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
	put_rows(keys, parents, payloads, rows, n);
	store_buf_be64(id, (uint64_t)import_id);
	for (size_t c = 0; c < n_cols; c++) {
		bool nulls = false;
		for (size_t i = 0; i < n && !nulls; i++)
			nulls = col_value(&rows[i], c) == NULL;
		store_buf_array_header(&b[STORE_BATCH_PARAMS + c], PG_TYPE_TEXT, n, nulls);
	}
	for (size_t i = 0; i < n; i++)
		for (size_t c = 0; c < n_cols; c++)
			buf_array_text(&b[STORE_BATCH_PARAMS + c], col_value(&rows[i], c));
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
