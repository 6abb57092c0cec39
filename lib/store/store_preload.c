/* store_preload — see store_preload.h. */
#include "store_preload.h"

#include "store_pages.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Narrow columns only: no payload, keys as JSON text and hashes as hex
 * (decoded when the input starts).  The order is the index's: inputs
 * ascending, an input's pages together; they are put in page order per
 * input here, so PostgreSQL sorts nothing. */
const char store_preload_sql[] =
	"SELECT q.input, q.url, q.page_no, q.etag, q.last_modified, q.next_url,"
	" array_to_json(q.keys)::text, encode(q.hashes, 'hex'),"
	" (extract(epoch FROM q.fetched_at) * 1000)::bigint, q.seen_import,"
	" coalesce(q.done_import, 0)"
	" FROM raced_pages q WHERE q.stage = $1::text AND q.input >= $2::text AND q.seen_import >= 0"
	" ORDER BY q.input LIMIT $3::integer";

enum { C_INPUT, C_URL, C_PAGE_NO, C_ETAG, C_LM, C_NEXT, C_KEYS, C_HASHES, C_MS, C_SEEN, C_DONE,
       C_N };

/* A packed field: NULL, a value (its text and a NUL follow), or (the url
 * only) the same as the input's URL. */
enum { F_NULL, F_VALUE, F_SAME };

void store_stage_chunk_free(struct store_stage_chunk *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->n; i++)
		free(c->inputs[i]);
	free(c->inputs);
	free(c->from);
	free(c);
}

struct row_ref {
	int row;
	uint32_t page_no;
	const char *url;
};

static int row_cmp(const void *a, const void *b)
{
	const struct row_ref *x = a, *y = b;
	if (x->page_no != y->page_no)
		return x->page_no < y->page_no ? -1 : 1;
	return strcmp(x->url, y->url);
}

/* Bytes a field takes packed. */
static size_t field_size(const PGresult *res, int row, int col, const char *input)
{
	if (PQgetisnull(res, row, col))
		return 1;
	if (col == C_URL && strcmp(PQgetvalue(res, row, col), input) == 0)
		return 1;
	return 1 + (size_t)PQgetlength(res, row, col) + 1;
}

static char *field_put(char *at, const PGresult *res, int row, int col, const char *input)
{
	if (PQgetisnull(res, row, col)) {
		*at++ = F_NULL;
		return at;
	}
	const char *v = PQgetvalue(res, row, col);
	if (col == C_URL && strcmp(v, input) == 0) {
		*at++ = F_SAME;
		return at;
	}
	size_t len = (size_t)PQgetlength(res, row, col);
	*at++ = F_VALUE;
	memcpy(at, v, len);
	at[len] = '\0';
	return at + len + 1;
}

/* Rows refs[0 .. n) (one input, in page order) packed.  NULL: out of
 * memory. */
static struct store_stage_input *pack(const PGresult *res, const struct row_ref *refs, uint32_t n)
{
	const char *input = PQgetvalue(res, refs[0].row, C_INPUT);
	size_t in_len = strlen(input) + 1;
	size_t size = in_len + sizeof n;
	for (uint32_t i = 0; i < n; i++)
		for (int c = C_URL; c < C_N; c++)
			size += field_size(res, refs[i].row, c, input);
	struct store_stage_input *in = malloc(sizeof *in + size);
	if (!in)
		return NULL;
	in->next = NULL;
	in->hash = 0;
	in->size = size;
	char *at = in->data;
	memcpy(at, input, in_len);
	at += in_len;
	memcpy(at, &n, sizeof n);
	at += sizeof n;
	for (uint32_t i = 0; i < n; i++)
		for (int c = C_URL; c < C_N; c++)
			at = field_put(at, res, refs[i].row, c, input);
	return in;
}

int store_preload_parse(const PGresult *res, size_t limit, struct store_stage_chunk **out,
                        char *err)
{
	*out = NULL;
	struct store_stage_chunk *c = calloc(1, sizeof *c);
	int rows = res ? PQntuples(res) : 0;
	if (!c)
		return err_set(err, "out of memory reading a stage's state");
	if (rows == 0) {
		*out = c;
		return 0;
	}
	if (PQnfields(res) != C_N) {
		free(c);
		return err_set(err, "reading raced_pages: unexpected result");
	}
	/* Reached the limit: the last input may have more rows; it is read
	 * again from the start by the next chunk. */
	int end = rows;
	if ((size_t)rows >= limit) {
		const char *last = PQgetvalue(res, rows - 1, C_INPUT);
		while (end > 0 && strcmp(PQgetvalue(res, end - 1, C_INPUT), last) == 0)
			end--;
		if (!(c->from = strdup(last))) {
			free(c);
			return err_set(err, "out of memory reading a stage's state");
		}
	}
	size_t groups = 0;
	for (int r = 0; r < end; r++)
		groups += r == 0 || strcmp(PQgetvalue(res, r, C_INPUT), PQgetvalue(res, r - 1, C_INPUT)) != 0;
	struct row_ref *refs = end > 0 ? malloc((size_t)end * sizeof *refs) : NULL;
	c->inputs = groups ? calloc(groups, sizeof *c->inputs) : NULL;
	if ((end > 0 && !refs) || (groups && !c->inputs)) {
		free(refs);
		store_stage_chunk_free(c);
		return err_set(err, "out of memory reading a stage's state");
	}
	for (int r = 0; r < end;) {
		const char *input = PQgetvalue(res, r, C_INPUT);
		uint32_t n = 0;
		for (; r + (int)n < end && strcmp(PQgetvalue(res, r + (int)n, C_INPUT), input) == 0; n++) {
			int row = r + (int)n;
			refs[n] = (struct row_ref){ row, (uint32_t)strtoul(PQgetvalue(res, row, C_PAGE_NO), NULL, 10),
			                            PQgetvalue(res, row, C_URL) };
		}
		if (n > 1)
			qsort(refs, n, sizeof *refs, row_cmp);
		if (!(c->inputs[c->n] = pack(res, refs, n))) {
			free(refs);
			store_stage_chunk_free(c);
			return err_set(err, "out of memory reading a stage's state");
		}
		c->n++;
		c->rows += n;
		r += (int)n;
	}
	free(refs);
	*out = c;
	return 0;
}

/* The next packed field: its text (NULL for F_NULL, same for F_SAME);
 * *at moves past it.  false: the data ends first. */
static bool field_get(const char **at, const char *end, const char *same, const char **v)
{
	if (*at >= end)
		return false;
	char tag = *(*at)++;
	if (tag == F_NULL) {
		*v = NULL;
		return true;
	}
	if (tag == F_SAME) {
		*v = same;
		return true;
	}
	const char *nul = memchr(*at, '\0', (size_t)(end - *at));
	if (tag != F_VALUE || !nul)
		return false;
	*v = *at;
	*at = nul + 1;
	return true;
}

static char *dup_field(const char *v, bool *failed)
{
	if (!v)
		return NULL;
	char *d = strdup(v);
	if (!d)
		*failed = true;
	return d;
}

int store_stage_input_unpack(const struct store_stage_input *in, struct store_input_state **out,
                             char *err)
{
	*out = NULL;
	const char *at = in->data, *end = in->data + in->size;
	const char *input = in->data;
	const char *nul = memchr(at, '\0', in->size);
	uint32_t n;
	if (!nul || (size_t)(end - (nul + 1)) < sizeof n)
		return err_set(err, "a stage's state read ahead is unreadable");
	at = nul + 1;
	memcpy(&n, at, sizeof n);
	at += sizeof n;
	struct store_input_state *st = calloc(1, sizeof *st);
	if (!st || (n > 0 && !(st->pages = calloc(n, sizeof *st->pages)))) {
		free(st);
		return err_set(err, "out of memory reading the state of %s", input);
	}
	for (uint32_t i = 0; i < n; i++) {
		const char *v[C_N] = { input };
		for (int c = C_URL; c < C_N; c++)
			if (!field_get(&at, end, input, &v[c]) ||
			    (!v[c] && c != C_ETAG && c != C_LM && c != C_NEXT)) {
				store_input_state_free(st);
				return err_set(err, "the state of %s read ahead is unreadable", input);
			}
		struct store_page_state *p = &st->pages[i];
		bool failed = false;
		st->n_pages++;
		p->url = dup_field(v[C_URL], &failed);
		p->page_no = (uint32_t)strtoul(v[C_PAGE_NO], NULL, 10);
		p->etag = dup_field(v[C_ETAG], &failed);
		p->last_modified = dup_field(v[C_LM], &failed);
		p->next_url = dup_field(v[C_NEXT], &failed);
		p->fetched_at_ms = strtoll(v[C_MS], NULL, 10);
		p->seen_import = strtoll(v[C_SEEN], NULL, 10);
		p->done_import = strtoll(v[C_DONE], NULL, 10);
		if (failed) {
			store_input_state_free(st);
			return err_set(err, "out of memory reading the state of %s", input);
		}
		if (store_pages_keys_parse(p, v[C_KEYS], v[C_HASHES], err) != 0) {
			store_input_state_free(st);
			return -1;
		}
	}
	*out = st;
	return 0;
}
