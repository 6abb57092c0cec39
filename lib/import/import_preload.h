/* import_preload — a stage's page state read in one pass at the start of
 * a re-import, so that an input whose state is there starts with no read
 * of its own (docs/architecture.md, "Reading state").
 *
 * The import reads raced_pages of the stage a range of its blocks at a
 * time (store_read_stage): the order the rows are stored in, which is the
 * order the run that wrote them fetched them in, and so about the order
 * this run's inputs come in.  Where the stage holds less than
 * IMPORT_PRELOAD_SCAN_SHARE of the table's rows (by the planner's
 * statistics; none known: likewise), such ranges would read mostly other
 * stages' rows, and after the first it reads a keyset page at a time
 * (IMPORT_PRELOAD_CHUNK rows a statement, inputs in order).  It hands
 * each answer here.  The inputs are held packed, as the
 * store answered them, in a table by their URL's 64-bit hash (the URL
 * compared on a hit), and unpacked when one is taken: already while the
 * pass reads on, since an answer holds whole inputs.  An input read a
 * second time (by keyset after the first range; a row this run moved
 * into a range not read yet) is dropped: the first read stands.  Once the pass read
 * the stage to its end (COMPLETE), a URL not in the table is known to have
 * no page row: it needs no read either.  Past the bound (bytes held, or
 * memory over the admission share) or on a failed read the pass stops
 * (PARTIAL): what is held still answers, every other URL is UNKNOWN and
 * is read as before (import_ahead, store_get_inputs), so correctness
 * never depends on the bound.
 *
 * A URL found answers once: a second take of it (two parents of a stage
 * without dedupe expanding alike; the first may have written its pages
 * since) is UNKNOWN, read from PostgreSQL.  A hash met by two URLs is
 * told apart by the URL, and a spent URL leaves its hash only: a URL with
 * that hash is then UNKNOWN too (read, never wrong).  A URL absent from
 * a complete pass is NO_ROW every time, and costs nothing held: a second
 * parent of it may so start from the state before the first wrote it, as
 * with a read made ahead (more is sent to PostgreSQL, which compares it;
 * nothing wrong is written).
 *
 * Pure book-keeping: no store call, no I/O.  Ownership: the stage owns
 * its import_preload; the inputs of a chunk added are its own, the state
 * a take answers is the caller's.  What it holds is charged to membudget
 * until taken or freed.
 */
#ifndef RACED_IMPORT_PRELOAD_H
#define RACED_IMPORT_PRELOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct store_input_state;
struct store_stage_chunk;
struct store_stage_at;
struct import_preload;

/* Page rows one statement of the pass reads at most: its answer is held
 * whole by libpq (about 1 KiB a row of 30 keys) before it is packed. */
#define IMPORT_PRELOAD_CHUNK 2000u
/* Rows of the first statement, before the pass knows a row's size: a page
 * may list up to IMPORT_PAGE_KEYS_MAX keys (hundreds of KiB), so later
 * statements ask as many rows as the bytes left under the bound hold at
 * the average size so far (import_preload_next_rows), and a chunk is never
 * far past the bound. */
#define IMPORT_PRELOAD_FIRST_CHUNK 64u
/* Bytes a stage's pass holds at most (packed inputs and the table), and
 * at most memory_limit / IMPORT_PRELOAD_SHARE: about 100,000 inputs of
 * one page and one key (160 bytes each packed). */
#define IMPORT_PRELOAD_BYTES_MAX (16u << 20)
#define IMPORT_PRELOAD_SHARE 16u
/* By blocks: the first statement's (about 60 page rows of one key), then
 * as many as the bytes left under the bound and IMPORT_PRELOAD_CHUNK rows
 * take at the density read so far, at most four times the last and
 * IMPORT_PRELOAD_BLOCKS_MAX (8 MiB of the table). */
#define IMPORT_PRELOAD_FIRST_BLOCKS 4u
#define IMPORT_PRELOAD_BLOCKS_MAX 1024u
/* Thousandths of raced_pages's rows a stage holds at least to be read by
 * blocks: a range scan filters the other stages' rows out, about a third
 * of the cost of a row read, so at most one stage pays that, for no more
 * rows than its own. */
#define IMPORT_PRELOAD_SCAN_SHARE 500

enum import_preload_phase {
	IMPORT_PRELOAD_READING,   /* a chunk is out, or about to be asked */
	IMPORT_PRELOAD_COMPLETE,  /* the stage read to its end */
	IMPORT_PRELOAD_PARTIAL,   /* stopped: bound, failed read, out of memory */
};

enum import_preload_answer {
	IMPORT_PRELOAD_UNKNOWN,   /* not known here: read it */
	IMPORT_PRELOAD_NO_ROW,    /* known to have no page row */
	IMPORT_PRELOAD_FOUND,     /* its state, as read */
};

struct import_preload_stats {
	uint64_t chunks;          /* answers added */
	uint64_t rows;            /* page rows of the inputs held */
	uint64_t inputs;          /* inputs held (taken or not) */
	size_t bytes;             /* charged now */
	size_t peak_bytes;
	uint64_t found, absent, unknown; /* takes answered so */
	uint64_t again;           /* inputs read a second time, dropped */
	bool by_keyset;           /* read by keyset after the first range */
	/* The stage's page rows the statements found: by blocks, those stored
	 * in the blocks read; by keyset, those answered (after the first
	 * range: from then on).  Equal to rows when every page row the stage
	 * had is held (import.c, pass_all_reached); more when one was not
	 * reachable from its input's first row, or was read twice. */
	uint64_t listed;
};

/* A pass bounded at bytes_max (0: IMPORT_PRELOAD_BYTES_MAX), by blocks
 * first, or by keyset only.  NULL: out of memory. */
struct import_preload *import_preload_new(size_t bytes_max, bool by_blocks);
/* NULL is allowed. */
void import_preload_free(struct import_preload *p);

enum import_preload_phase import_preload_phase(const struct import_preload *p);
/* While READING: fills *at with the next statement's place (its input
 * valid until the next add or stop) and returns true; otherwise false.
 * By blocks, the first asks the stage's share too.  By keyset: "" at
 * first, IMPORT_PRELOAD_FIRST_CHUNK rows, then as many as the bytes left
 * under the bound hold at the average packed size of a row so far, at
 * most IMPORT_PRELOAD_CHUNK; IMPORT_PRELOAD_CHUNK once after a chunk that
 * held no whole input (one input of more page rows than was asked).
 * Recorded as asked. */
bool import_preload_next(struct import_preload *p, struct store_stage_at *at);
/* A chunk answered (taken, whatever the phase; NULL: the read failed).
 * Returns the phase after it: READING means ask the next chunk. */
enum import_preload_phase import_preload_add(struct import_preload *p,
                                             struct store_stage_chunk *c);
/* Stop reading (READING becomes PARTIAL; otherwise nothing). */
void import_preload_stop(struct import_preload *p);

/* What the pass knows of url: FOUND (once: a later take is UNKNOWN) or
 * NO_ROW with *st the caller's (NO_ROW: no page), UNKNOWN with *st NULL
 * (while READING, a URL the chunks so far did not hold; and when
 * unpacking failed).  FOUND may answer while READING. */
enum import_preload_answer import_preload_take(struct import_preload *p, const char *url,
                                               struct store_input_state **st);
/* Whether a take of url now would answer FOUND or NO_ROW. */
bool import_preload_knows(const struct import_preload *p, const char *url);
/* import_preload_take() for a caller that reads url ahead when the pass
 * does not know it: UNKNOWN is not counted (stats.unknown), as with a
 * take asked only when import_preload_knows(), with one lookup. */
enum import_preload_answer import_preload_take_known(struct import_preload *p, const char *url,
                                                     struct store_input_state **st);

void import_preload_get_stats(const struct import_preload *p, struct import_preload_stats *out);

#endif
