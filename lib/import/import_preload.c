/* import_preload — see import_preload.h. */
#include "import_preload.h"

#include "dedupe.h"
#include "membudget.h"
#include "store.h"

#include <stdlib.h>
#include <string.h>

/* Buckets at first; doubled when the inputs outnumber them. */
#define PRELOAD_BUCKETS_MIN 1024u
/* What malloc adds to an allocation, counted with it. */
#define PRELOAD_MALLOC_OVERHEAD 16u

struct import_preload {
	enum import_preload_phase phase;
	/* By blocks: the next chunk's first block; the table's size as the
	 * first answer found it (UINT64_MAX before: what this run adds past
	 * it is its own); blocks asked by the chunk out, and read so far. */
	bool scan;
	uint64_t block, end_block, blocks_read;
	uint32_t asked_blocks;
	char *from;                         /* by keyset: the next chunk's start, while READING */
	struct store_stage_input **buckets; /* chains by hash; a spent URL: size 0, its hash */
	size_t n_buckets, n_entries;
	size_t bytes_max;
	uint32_t asked;                     /* rows the chunk out asked (0: not said) */
	bool widen;                         /* the last chunk held no whole input */
	uint64_t seen_rows, seen_bytes;     /* every input added: its rows, its bytes */
	/* Bytes given back by inputs taken while the pass read: still counted
	 * against its bound, so that where the pass stops does not depend on
	 * how soon its inputs start (their states live on in the units). */
	size_t taken_bytes;
	struct import_preload_stats stats;
};

static size_t entry_bytes(const struct store_stage_input *in)
{
	return sizeof *in + in->size + PRELOAD_MALLOC_OVERHEAD;
}

static void charge(struct import_preload *p, size_t n)
{
	p->stats.bytes += n;
	if (p->stats.bytes > p->stats.peak_bytes)
		p->stats.peak_bytes = p->stats.bytes;
	membudget_charge(n);
}

static void release(struct import_preload *p, size_t n)
{
	p->stats.bytes -= n;
	membudget_release(n);
}

struct import_preload *import_preload_new(size_t bytes_max, bool by_blocks)
{
	struct import_preload *p = calloc(1, sizeof *p);
	if (!p)
		return NULL;
	if (!(p->from = strdup(""))) {
		free(p);
		return NULL;
	}
	p->phase = IMPORT_PRELOAD_READING;
	p->bytes_max = bytes_max ? bytes_max : IMPORT_PRELOAD_BYTES_MAX;
	p->scan = by_blocks;
	p->end_block = UINT64_MAX;
	return p;
}

void import_preload_free(struct import_preload *p)
{
	if (!p)
		return;
	for (size_t b = 0; b < p->n_buckets; b++)
		while (p->buckets[b]) {
			struct store_stage_input *in = p->buckets[b];
			p->buckets[b] = in->next;
			release(p, entry_bytes(in));
			free(in);
		}
	release(p, p->n_buckets * sizeof *p->buckets);
	free(p->buckets);
	free(p->from);
	free(p);
}

enum import_preload_phase import_preload_phase(const struct import_preload *p)
{
	return p->phase;
}

void import_preload_stop(struct import_preload *p)
{
	if (p->phase != IMPORT_PRELOAD_READING)
		return;
	p->phase = IMPORT_PRELOAD_PARTIAL;
	free(p->from);
	p->from = NULL;
}

/* Room for one more entry: the buckets doubled when full.  false: out of
 * memory (nothing changed). */
static bool room(struct import_preload *p)
{
	if (p->n_entries < p->n_buckets)
		return true;
	size_t n = p->n_buckets ? 2 * p->n_buckets : PRELOAD_BUCKETS_MIN;
	struct store_stage_input **b = calloc(n, sizeof *b);
	if (!b)
		return false;
	for (size_t i = 0; i < p->n_buckets; i++)
		while (p->buckets[i]) {
			struct store_stage_input *in = p->buckets[i];
			p->buckets[i] = in->next;
			in->next = b[in->hash & (n - 1)];
			b[in->hash & (n - 1)] = in;
		}
	release(p, p->n_buckets * sizeof *p->buckets);
	free(p->buckets);
	p->buckets = b;
	p->n_buckets = n;
	charge(p, n * sizeof *b);
	return true;
}

/* Bytes the table grows by to take one more entry. */
static size_t growth(const struct import_preload *p)
{
	if (p->n_entries < p->n_buckets)
		return 0;
	return (p->n_buckets ? p->n_buckets : PRELOAD_BUCKETS_MIN) * sizeof *p->buckets;
}

static void insert(struct import_preload *p, struct store_stage_input *in)
{
	struct store_stage_input **bucket = &p->buckets[in->hash & (p->n_buckets - 1)];
	in->next = *bucket;
	*bucket = in;
	p->n_entries++;
}

/* Page rows of a packed input (its page count). */
static uint32_t input_rows(const struct store_stage_input *in)
{
	size_t url = strlen(in->data) + 1;
	uint32_t n = 0;
	if (in->size >= url + sizeof n)
		memcpy(&n, in->data + url, sizeof n);
	return n;
}

/* Bytes the pass may still hold. */
static size_t bytes_left(const struct import_preload *p)
{
	size_t used = p->stats.bytes + p->taken_bytes;
	return p->bytes_max > used ? p->bytes_max - used : 0;
}

/* By keyset: IMPORT_PRELOAD_FIRST_CHUNK rows at first, then the bytes
 * left over the average size of a row so far, at most a chunk. */
static uint32_t next_rows(struct import_preload *p)
{
	uint64_t n = IMPORT_PRELOAD_FIRST_CHUNK;
	if (p->widen) {
		n = IMPORT_PRELOAD_CHUNK;
	} else if (p->seen_rows > 0) {
		uint64_t avg = p->seen_bytes / p->seen_rows;
		n = bytes_left(p) / (avg ? avg : 1);
	}
	if (n < 1)
		n = 1;
	if (n > IMPORT_PRELOAD_CHUNK)
		n = IMPORT_PRELOAD_CHUNK;
	p->asked = (uint32_t)n;
	return p->asked;
}

/* Blocks the bytes left under the bound hold, at the bytes a block
 * brought so far (seen_bytes > 0). */
static uint64_t blocks_left(const struct import_preload *p)
{
	return (uint64_t)bytes_left(p) * p->blocks_read / p->seen_bytes;
}

/* By blocks: IMPORT_PRELOAD_FIRST_BLOCKS at first, then as many as hold
 * the bytes left and a chunk's rows at the density read so far, at most
 * four times the last and IMPORT_PRELOAD_BLOCKS_MAX, never past the end. */
static uint32_t next_blocks(struct import_preload *p)
{
	uint64_t n = IMPORT_PRELOAD_FIRST_BLOCKS;
	if (p->blocks_read > 0) {
		n = IMPORT_PRELOAD_BLOCKS_MAX;
		if (p->seen_bytes > 0)
			n = blocks_left(p);
		if (p->seen_rows > 0 && IMPORT_PRELOAD_CHUNK * p->blocks_read / p->seen_rows < n)
			n = IMPORT_PRELOAD_CHUNK * p->blocks_read / p->seen_rows;
		if (n > 4 * (uint64_t)p->asked_blocks)
			n = 4 * (uint64_t)p->asked_blocks;
	}
	if (n > IMPORT_PRELOAD_BLOCKS_MAX)
		n = IMPORT_PRELOAD_BLOCKS_MAX;
	if (p->end_block != UINT64_MAX && n > p->end_block - p->block)
		n = p->end_block - p->block;
	if (n < 1)
		n = 1;
	p->asked_blocks = (uint32_t)n;
	return p->asked_blocks;
}

bool import_preload_next(struct import_preload *p, struct store_stage_at *at)
{
	*at = (struct store_stage_at){ 0 };
	if (p->phase != IMPORT_PRELOAD_READING)
		return false;
	/* by blocks, less left under the bound than a block holds at the
	 * density so far: the bound is reached (rather than a block a
	 * statement, every unheld input waiting on the end) */
	if (p->scan && p->seen_bytes > 0 && blocks_left(p) == 0) {
		import_preload_stop(p);
		return false;
	}
	if (p->scan) {
		at->block = p->block;
		at->want_share = p->end_block == UINT64_MAX;
		at->blocks = next_blocks(p);
	} else {
		at->input = p->from;
		at->limit = next_rows(p);
	}
	return true;
}

/* After a chunk by blocks: on to the next blocks, done at the end, or on
 * by keyset for a stage of few of the table's rows, where a scan would
 * read mostly other stages' rows (what the first chunk held is kept; the
 * keyset reads it again, and the copies are dropped). */
static void scan_on(struct import_preload *p, const struct store_stage_chunk *c)
{
	bool first = p->end_block == UINT64_MAX;
	if (first)
		p->end_block = c->rel_blocks;
	p->block += p->asked_blocks;
	p->blocks_read += p->asked_blocks;
	if (first && c->share < IMPORT_PRELOAD_SCAN_SHARE && p->block < p->end_block) {
		p->scan = false;
		p->stats.by_keyset = true;
		p->stats.listed = 0; /* the keyset answers every row again */
		return;
	}
	if (p->block >= p->end_block) {
		p->phase = IMPORT_PRELOAD_COMPLETE;
		free(p->from);
		p->from = NULL;
	}
}

/* The entry of url or of its hash spent, and where it hangs; NULL when
 * neither. */
static struct store_stage_input **find(const struct import_preload *p, const char *url,
                                       uint64_t hash)
{
	if (p->n_buckets == 0)
		return NULL;
	struct store_stage_input **pp = &p->buckets[hash & (p->n_buckets - 1)];
	struct store_stage_input **spent = NULL;
	for (; *pp; pp = &(*pp)->next) {
		if ((*pp)->hash != hash)
			continue;
		if ((*pp)->size == 0)
			spent = pp;
		else if (strcmp((*pp)->data, url) == 0)
			return pp;
	}
	return spent;
}

enum import_preload_phase import_preload_add(struct import_preload *p,
                                             struct store_stage_chunk *c)
{
	if (p->phase != IMPORT_PRELOAD_READING || !c) {
		store_stage_chunk_free(c);
		import_preload_stop(p);
		return p->phase;
	}
	p->stats.chunks++;
	p->stats.listed += p->scan ? c->listed : c->rows;
	for (size_t i = 0; i < c->n && p->phase == IMPORT_PRELOAD_READING; i++) {
		struct store_stage_input *in = c->inputs[i];
		in->hash = dedupe_hash(in->data, strlen(in->data));
		if (find(p, in->data, in->hash)) {
			/* read before (a scan's first chunk read again by keyset, or a
			 * row this run moved ahead of the scan): the first read stands */
			p->stats.again++;
			c->inputs[i] = NULL;
			free(in);
			continue;
		}
		if (p->stats.bytes + p->taken_bytes + entry_bytes(in) + growth(p) > p->bytes_max ||
		    !membudget_admits_start() || !room(p)) {
			import_preload_stop(p); /* the rest of the chunk is freed with it */
			break;
		}
		c->inputs[i] = NULL;
		insert(p, in);
		charge(p, entry_bytes(in));
		p->stats.inputs++;
		p->stats.rows += input_rows(in);
		p->seen_rows += input_rows(in);
		p->seen_bytes += entry_bytes(in);
	}
	if (p->phase == IMPORT_PRELOAD_READING && p->scan) {
		scan_on(p, c);
	} else if (p->phase == IMPORT_PRELOAD_READING) {
		if (!c->from) {
			p->phase = IMPORT_PRELOAD_COMPLETE;
			free(p->from);
			p->from = NULL;
		} else if (c->n == 0 && p->asked > 0 && p->asked < IMPORT_PRELOAD_CHUNK && !p->widen) {
			p->widen = true;  /* ask the same input again, as many rows as a chunk */
		} else if (c->n == 0) {
			/* one input of more rows than a chunk: no way on */
			import_preload_stop(p);
		} else {
			p->widen = false;
			free(p->from);
			p->from = c->from;
			c->from = NULL;
		}
	}
	store_stage_chunk_free(c);
	return p->phase;
}

bool import_preload_knows(const struct import_preload *p, const char *url)
{
	struct store_stage_input **pp = find(p, url, dedupe_hash(url, strlen(url)));
	if (pp)
		return (*pp)->size > 0;
	return p->phase == IMPORT_PRELOAD_COMPLETE;
}

/* The entry at *pp spent: its hash kept alone (a smaller allocation). */
static void spend(struct import_preload *p, struct store_stage_input **pp)
{
	struct store_stage_input *in = *pp;
	size_t was = entry_bytes(in);
	in->size = 0;
	struct store_stage_input *small = realloc(in, sizeof *in);
	if (small)
		in = small;
	*pp = in;
	release(p, was);
	charge(p, entry_bytes(in));
	if (p->phase == IMPORT_PRELOAD_READING)
		p->taken_bytes += was - entry_bytes(in);
}

/* import_preload_take(); an UNKNOWN answer counted only if count_unknown. */
static enum import_preload_answer take(struct import_preload *p, const char *url,
                                       struct store_input_state **st, bool count_unknown)
{
	*st = NULL;
	uint64_t hash = dedupe_hash(url, strlen(url));
	struct store_stage_input **pp = find(p, url, hash);
	if (pp && (*pp)->size > 0) {
		char err[ERR_MAX];
		enum import_preload_answer a = IMPORT_PRELOAD_FOUND;
		if (store_stage_input_unpack(*pp, st, err) != 0)
			a = IMPORT_PRELOAD_UNKNOWN; /* read it instead */
		spend(p, pp);
		if (a == IMPORT_PRELOAD_FOUND)
			p->stats.found++;
		else
			p->stats.unknown++;
		return a;
	}
	if (pp || p->phase != IMPORT_PRELOAD_COMPLETE) {
		p->stats.unknown += count_unknown;
		return IMPORT_PRELOAD_UNKNOWN;
	}
	/* Known to have no row.  No mark is kept: a later take of the URL
	 * (a second parent of a stage without dedupe) answers the same, as a
	 * read made ahead of the first's writes would (architecture.md,
	 * "Reading state"), and a pass that found nothing (a stage table
	 * emptied, its state cleared) holds nothing for its inputs. */
	if (!(*st = calloc(1, sizeof **st))) {
		p->stats.unknown++;
		return IMPORT_PRELOAD_UNKNOWN;
	}
	p->stats.absent++;
	return IMPORT_PRELOAD_NO_ROW;
}

enum import_preload_answer import_preload_take(struct import_preload *p, const char *url,
                                               struct store_input_state **st)
{
	return take(p, url, st, true);
}

enum import_preload_answer import_preload_take_known(struct import_preload *p, const char *url,
                                                     struct store_input_state **st)
{
	return take(p, url, st, false);
}

void import_preload_get_stats(const struct import_preload *p, struct import_preload_stats *out)
{
	*out = p->stats;
}
