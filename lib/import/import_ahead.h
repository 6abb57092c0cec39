/* import_ahead — a stage's reads of input state made ahead of its work
 * (docs/architecture.md, "Reading state").
 *
 * An input's state (store_get_input) is asked for when its parent item is
 * queued for the stage, not when the input gets a concurrency slot, and
 * the asks are gathered so that one statement reads many inputs
 * (store_get_inputs).  By the time the input starts its state is
 * usually there.  This module is the book-keeping only (no store call,
 * no I/O): entries by URL, their tags, what was answered and who waits.
 *
 * Entries: one per URL (the input's name, masked), shared by every
 * queued input of that URL (a dedupe stage's repeats), reference-
 * counted by them.  An entry is UNSENT until import_ahead_send() hands
 * it out with a tag, SENT until import_ahead_answer(), then ANSWERED
 * (state held) or FAILED; TAKEN once a starting input took the state.
 * Entries alive are bounded by IMPORT_AHEAD_MAX per stage (R7: the
 * queued inputs are bounded already, this bounds the states held for
 * them), and each is charged to membudget (its URL, and its state once
 * answered) until it is freed or its state taken.
 *
 * Read-back ahead: a stage with children feeds them a 304 page's items
 * read back from its table (store_read_committed).  For an input whose
 * state says its first page has validators (so a 304 is likely), the
 * import asks for that read as soon as the state is in
 * (import_ahead_items_*; with the input's later pages: the keys are the
 * caller's), and the entry holds the rows until the page's answer: a 304
 * then feeds the children with no round trip to PostgreSQL on its path.
 * Reads past the bound on rows held are deferred, in order
 * (import_ahead_items_defer), and wanted once rows held are taken.
 *
 * Ownership: the stage owns its import_ahead; each queued input owns one
 * reference to its entry (import_ahead_drop() when it ends, started or
 * not).  An entry whose last reference goes while its read is out stays
 * until the answer, which is then freed.  import_ahead_free() frees every
 * entry and state, whatever is out.  A state taken is the taker's.
 */
#ifndef RACED_IMPORT_AHEAD_H
#define RACED_IMPORT_AHEAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct store_input_state;
struct store_items;
struct import_ahead;
struct import_ahead_entry;

/* Entries (URLs read ahead) alive per stage at most; more queued inputs
 * read their state when they start, as without read-ahead. */
#define IMPORT_AHEAD_MAX 2000u
/* Unsent asks that go to the store at once, without waiting for an input
 * to need one (an input starting sends every ask held back).  Larger
 * statements hold the one connection longer, and the commits that give
 * credit back wait behind them. */
#define IMPORT_AHEAD_BATCH 100u
/* Keys of the read-backs held back that go as one read at once. */
#define IMPORT_AHEAD_READ_BACK_KEYS 2000u
/* Rows (keys) a stage reads back ahead and holds at most, a few MiB of
 * payloads: asked, answered, or kept on a unit for a later page
 * (import_ahead_items_hold).  A read-back that does not fit waits
 * (import_ahead_items_defer); a first page larger than this is read when
 * its 304 comes. */
#define IMPORT_AHEAD_READ_BACK_HELD 10000u
/* Pages after the first read back ahead with it (those with validators,
 * by page_no, while the keys fit the room left and
 * IMPORT_AHEAD_READ_BACK_KEYS); later ones are read when their 304 comes. */
#define IMPORT_AHEAD_READ_BACK_PAGES 8u

enum import_ahead_status {
	IMPORT_AHEAD_UNSENT,
	IMPORT_AHEAD_SENT,
	IMPORT_AHEAD_ANSWERED,
	IMPORT_AHEAD_FAILED,
	IMPORT_AHEAD_TAKEN,
	IMPORT_AHEAD_NONE,   /* read-back only: not asked */
};

struct import_ahead_stats {
	uint64_t asked;      /* entries made (URLs asked ahead) */
	uint64_t shared;     /* asks that found an entry of the same URL */
	uint64_t refused;    /* asks over IMPORT_AHEAD_MAX or out of memory */
	uint64_t sends;      /* import_ahead_send() calls that handed some out */
	uint64_t items_sent; /* read-backs asked ahead (pages) */
	uint64_t items_reads; /* statements they went in */
	size_t items_held_peak; /* most rows read back ahead held at once
	                           (import_ahead_items_held) */
	size_t alive;        /* entries now */
};

struct import_ahead *import_ahead_new(void);
/* NULL is allowed. */
void import_ahead_free(struct import_ahead *a);

/* A queued input named url: its entry, with a reference for the caller
 * (a new UNSENT one, or the entry of the same URL).  NULL when the bound
 * is reached or out of memory: the input reads its state when it starts. */
struct import_ahead_entry *import_ahead_ask(struct import_ahead *a, const char *url);
/* The caller's reference ends (e NULL: nothing). */
void import_ahead_drop(struct import_ahead *a, struct import_ahead_entry *e);

enum import_ahead_status import_ahead_status(const struct import_ahead_entry *e);
/* Entries UNSENT now. */
size_t import_ahead_unsent(const struct import_ahead *a);

/* Hand out up to max UNSENT entries, oldest first, as SENT: their URLs
 * (valid while the entry lives) and a tag each from *next_tag (which is
 * advanced; tags must not collide with the caller's other reads).
 * Returns how many. */
size_t import_ahead_send(struct import_ahead *a, const char **urls, uint64_t *tags, size_t max,
                         uint64_t *next_tag);
/* An ask handed out could not be queued after all: UNSENT again (its
 * tag forgotten). */
void import_ahead_unsend(struct import_ahead *a, uint64_t tag);

/* The store's answer for tag.  Returns false if tag is none of this
 * stage's sent asks (st is still the caller's).  Otherwise st is taken
 * (failed: freed, the entry FAILED; else ANSWERED) and *waiter is the
 * waiter the entry had (import_ahead_wait), now cleared, or NULL; *entry
 * the entry, or NULL when nobody holds it any more (freed with st). */
bool import_ahead_answer(struct import_ahead *a, uint64_t tag, struct store_input_state *st,
                         bool failed, void **waiter, struct import_ahead_entry **entry);
/* The state of an ANSWERED entry, still the entry's (NULL otherwise). */
const struct store_input_state *import_ahead_state(const struct import_ahead_entry *e);

/* The state of an ANSWERED entry, now the caller's (the entry TAKEN);
 * NULL otherwise. */
struct store_input_state *import_ahead_take(struct import_ahead *a, struct import_ahead_entry *e);

/* A SENT entry's answer is awaited by waiter (NULL: no longer). */
void import_ahead_wait(struct import_ahead_entry *e, void *waiter);

/* Read-back of the first page's rows: NONE (not wanted), UNSENT (held
 * back), SENT, ANSWERED, FAILED, TAKEN. */
enum import_ahead_status import_ahead_items_status(const struct import_ahead_entry *e);
/* The first page's rows are wanted (e's state in, its items NONE): the n
 * keys (copied) join the read-backs held back, with e's parent
 * (import_ahead_set_parent) when by_parent (they are most of the input's
 * rows).  Out of memory: nothing
 * wanted (the page is read back when its 304 comes). */
void import_ahead_items_want(struct import_ahead *a, struct import_ahead_entry *e,
                             const char *const *keys, size_t n, bool by_parent);
/* A read-back not wanted now for the bound on rows held
 * (IMPORT_AHEAD_READ_BACK_HELD), e ANSWERED and its items NONE: kept in
 * order, so that it can be wanted once rows held ahead are taken. */
void import_ahead_items_defer(struct import_ahead *a, struct import_ahead_entry *e);
/* Not deferred any more (nothing if it was not). */
void import_ahead_items_undefer(struct import_ahead *a, struct import_ahead_entry *e);
/* The oldest deferred entry still ANSWERED with its items NONE (left
 * deferred; the spent ones before it are dropped from the list), or NULL. */
struct import_ahead_entry *import_ahead_items_deferred(struct import_ahead *a);
/* Entries whose read-back is held back, and their keys. */
size_t import_ahead_items_unsent(const struct import_ahead *a);
size_t import_ahead_items_unsent_keys(const struct import_ahead *a);
/* The parent key e's rows are expected under (the item whose input asked
 * it first; store_read_committed_fields reads them by it): copied once,
 * the first set kept.  Out of memory: none (they are read by key). */
void import_ahead_set_parent(struct import_ahead_entry *e, const char *parent);
/* The read-backs held back as one read: *keys (*n of them, in entry
 * order; the array is the caller's to free, the strings stay valid until
 * the answer) and, when parents is not NULL, *parents beside them (each
 * key's entry's parent, or NULL; in the same array: not freed apart)
 * under *tag (from *next_tag, advanced); the entries SENT.  false: none
 * held, or out of memory (they stay held). */
bool import_ahead_items_send(struct import_ahead *a, const char ***keys,
                             const char *const **parents, size_t *n, uint64_t *tag,
                             uint64_t *next_tag);
/* The answer for a read-back tag (false: not ours, items the caller's).
 * The rows (in the order of the keys sent, missing ones left out) are
 * split among the read's entries, each ANSWERED with its own rows (or
 * FAILED if failed, items freed); then resume(arg, waiter) is called for
 * each entry's waiter (import_ahead_items_wait). */
bool import_ahead_items_answer(struct import_ahead *a, uint64_t tag, struct store_items *items,
                               bool failed, void (*resume)(void *arg, void *waiter), void *arg);
/* Keys of the read-backs wanted and not yet taken (held back, out, or
 * answered), and rows held (import_ahead_items_hold): what the rows held
 * ahead are bounded by (IMPORT_AHEAD_READ_BACK_HELD). */
size_t import_ahead_items_held(const struct import_ahead *a);
/* Rows read back ahead and taken, but still held elsewhere (a later
 * page's rows kept on its unit): counted in items_held until unheld. */
void import_ahead_items_hold(struct import_ahead *a, size_t n);
void import_ahead_items_unhold(struct import_ahead *a, size_t n);
/* An ANSWERED entry's rows, now the caller's; NULL otherwise. */
struct store_items *import_ahead_items_take(struct import_ahead *a, struct import_ahead_entry *e);
void import_ahead_items_wait(struct import_ahead_entry *e, void *waiter);

void import_ahead_get_stats(const struct import_ahead *a, struct import_ahead_stats *out);

/* An UNSENT entry's state known without a read (import_preload.h: the
 * stage's state read in one pass): st taken, the entry ANSWERED as if
 * read.  Returns false (st still the caller's) when e is not UNSENT. */
bool import_ahead_fill(struct import_ahead *a, struct import_ahead_entry *e,
                       struct store_input_state *st);

#endif
