/* import_input — one input of a stage (the root's list, or one parent
 * item of a child stage) and what the import knows of it across runs:
 * the state its pages left in raced_pages (store_get_input), and the
 * page records this import writes back (docs/architecture.md, "Import
 * state across runs").
 *
 * The rule it keeps: a page's record reaches the store only after every
 * item the input emitted up to that page has been handed to the store,
 * so the record (and the checkpoint the last one carries) commits in the
 * transaction of the page's last row or a later one, never before it.
 * The import counts items out (import_input_emitted) as it emits them and
 * the store consumer counts them in (import_input_delivered); records wait
 * in a FIFO until their turn.
 *
 * Ownership: reference-counted.  The unit of work that walks the input
 * holds one reference, every item emitted from it one more
 * (import_item.input); the last unref frees the state and any record
 * still waiting (an item that never reached the store, at cancel).  The
 * input copies every record and owns the state handed to it.
 */
#ifndef RACED_IMPORT_INPUT_H
#define RACED_IMPORT_INPUT_H

#include "error.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct import_input_record;
struct store;
struct store_input_state;
struct store_page;
struct store_page_state;

/* Link records (store_add_link) an input holds until its unit ends: at
 * most this many per input (about 40 bytes and the key each); more are
 * sent at once, before the input's last page record, and change nothing
 * (the link statement needs the input's checkpoint): the next import
 * makes those links. */
#define IMPORT_INPUT_LINKS_HELD_MAX 100000u

struct import_input_link;
struct import_keys;
struct dedupe;

/* The keys a dedupe stage's input keeps for its link records
 * (store_add_link_keys) at most: more (or more bytes of them), and its
 * link records go by URL, the store reading its keys from raced_pages.
 * An athlete is one page of one key. */
#define IMPORT_LINK_KEYS_MAX 1000u
#define IMPORT_LINK_KEYS_BYTES_MAX (64u << 10)

/* Keys a dedupe stage remembers per import (about 6.5 bytes each, see
 * dedupe.h: about 26 MiB when full); its import_undone likewise. */
#define IMPORT_DEDUPE_MAX_KEYS (4u << 20)

/* The inputs of a dedupe stage that ended in this import without a
 * checkpoint (failed, refused, cut short): a parent mapping to one of
 * them gets no link record.  Remembered as hashes (dedupe.h), up to the
 * dedupe set's own bound; past it (lost) no parent of an input that has
 * ended gets a link record, and the next import makes those links. */
struct import_undone {
	struct dedupe *set;   /* NULL until the first */
	bool lost;            /* one could not be remembered */
};
/* Whether the input named url (masked) ended without a checkpoint. */
bool import_undone_has(const struct import_undone *u, const char *url);
void import_undone_free(struct import_undone *u);

/* A dedupe stage's link records in this import (docs/architecture.md,
 * "Edges").  When the links the run before left are trusted
 * (store_links_trusted), a parent item that is unchanged needs no link
 * record for an input whose page records were all reached only (none
 * wrote a page row) and that completed: the links are in place already.
 * An input that ended completed but not so is remembered in changed (a
 * bounded set, as import_undone; past its bound every parent of an input
 * that has ended gets its record). */
struct import_links {
	bool trusted;
	struct import_undone changed;  /* only while trusted */
	uint64_t sent;                 /* records to the store */
	uint64_t by_url;               /* of them, by URL (the store reads the keys) */
	uint64_t skipped;              /* not sent: the links were in place */
	uint64_t dropped;              /* not sent otherwise (no checkpoint, held
	                                  too many, out of memory): a run that
	                                  drops one leaves links no next run trusts */
};

/* A dedupe stage's live inputs (import_input_live), chained by their
 * URL's hash: a parent whose URL the stage saw looks its input up among
 * them, and most such URLs (their inputs ended) are in none, so a single
 * list cost a comparison with every live input (thousands while the store
 * holds their items uncommitted; docs/performance.md, "Waiting end to
 * end").  Zeroed: empty. */
#define IMPORT_LIVE_BUCKETS 1024
struct import_live {
	struct import_input *buckets[IMPORT_LIVE_BUCKETS];
};

struct import_input {
	char *url;                        /* its first page's URL, masked */
	struct store_input_state *state;  /* as read at its start; NULL: none */
	uint32_t refs;
	uint64_t emitted;                 /* items emitted towards the store */
	uint64_t delivered;               /* of them, handed to the store */
	bool tainted;                     /* the store refused one of its items */
	struct import_input_record *head, *tail; /* waiting records, oldest first */
	/* Edges of a dedupe stage (docs/architecture.md, "Edges"): the
	 * parents whose link records wait for the unit to end. */
	struct import_input_link *held;
	size_t n_held;
	bool finished;                    /* its unit ended: nothing is held */
	bool done;                        /* its checkpoint went to the store (or
	                                     committed in an earlier run of the
	                                     import: set by the import) */
	struct import_undone *undone;     /* its stage's (borrowed), or NULL */
	struct import_links *links;       /* its stage's (borrowed), or NULL */
	bool rewrote;                     /* a record of it was not reached only
	                                     (or was lost): its links may change */
	/* The keys of its pages as this import's records list them, packed
	 * (each NUL-terminated, back to back; charged), for its link records:
	 * only while keys_known (every record so far had its keys). */
	char *keys;
	size_t keys_len, keys_cap, n_keys;
	bool keys_known, keys_lost;
	bool keys_declared;               /* for the next record */
	struct import_keys *ended;        /* its stage's cache of ended inputs
	                                     (borrowed), or NULL */
	struct import_input **live_prev;  /* in its stage's live list, or NULL */
	struct import_input *live_next;
	/* Its state came from its stage's pass (import_input_from_pass): a
	 * flag a page of it, set by the first record that reached the page
	 * (store_add_page took it), and the stage's count of such pages
	 * (borrowed); NULL otherwise. */
	bool *pass_marks;
	uint64_t *pass_reached;
};

/* A new input (one reference) named url (copied); NULL when out of memory. */
RACED_MUST_CHECK
struct import_input *import_input_new(const char *url);
void import_input_ref(struct import_input *in);
void import_input_unref(struct import_input *in);

/* Take the state read for it (ownership passes; NULL: none). */
void import_input_set_state(struct import_input *in, struct store_input_state *st);
/* Its state (as set last) is what its stage's pass read: each of its
 * pages that a record of this run reaches counts once in *reached (the
 * stage's), so that the import can tell it reached every page row the
 * pass read (store_pages_all_reached).  Out of memory it counts none,
 * which only costs the finish its full clean-up. */
void import_input_from_pass(struct import_input *in, uint64_t *reached);
/* The stored state of its page at url, or NULL. */
const struct store_page_state *import_input_page(const struct import_input *in, const char *url);
/* The stored state of its first page, or NULL. */
const struct store_page_state *import_input_first(const struct import_input *in);

/* An item's hash (docs/architecture.md, "The item hash"): its parent key
 * (NULL as ""), a NUL, its text. */
uint64_t import_item_hash(const char *parent_key, const char *text, size_t len);

/* A lookup of the keys of one stored page: whether (key, hash) is there
 * unchanged.  Built once per page fetched with a body. */
struct import_page_index;
/* NULL when pg is NULL or out of memory (then nothing is unchanged). */
struct import_page_index *import_page_index_new(const struct store_page_state *pg);
bool import_page_index_unchanged(const struct import_page_index *ix, const char *key,
                                 uint64_t hash);
void import_page_index_free(struct import_page_index *ix);

/* Count one item emitted towards the store. */
void import_input_emitted(struct import_input *in);

/* Queue a copy of pg, to go to the store once every item emitted so far
 * has been delivered; sent at once (to table of import_id) when they all
 * have.  A tainted input's records go without keys, hashes, validators
 * and checkpoint.  -1 with err: out of memory (the record is lost: the
 * next import only fetches the page again). */
RACED_MUST_CHECK
int import_input_record(struct import_input *in, const struct store_page *pg, struct store *s,
                        size_t table, int64_t import_id, char *err);

/* One item of the input was handed to the store (or refused by it:
 * refused marks the input tainted); the records now due are sent.  -1
 * with err when a record could not be queued (out of memory). */
RACED_MUST_CHECK
int import_input_delivered(struct import_input *in, bool refused, struct store *s, size_t table,
                           int64_t import_id, char *err);

/* ---- edges of a dedupe stage ----
 * Every parent item that maps to an input gets a link record after the
 * input's last page record (store_add_link reads the input's pages).
 * An input lives in its stage's set (live) from its start until its
 * last reference goes, by then every record of it has gone to the store
 * (or was dropped, at cancel): a parent whose URL the stage saw already
 * looks the input up there, and when it is not there links at once
 * (unless the input is in the stage's import_undone).  A link record goes
 * to the store only if the input's checkpoint went before it: the link
 * statement takes every record it gets as an input completed.  It
 * carries the input's keys when every page record of the input had them
 * (import_input_keys); an input that ends with its checkpoint tells its
 * stage's cache (ended: import_keys) what the parents that meet it later
 * link to, its keys or by URL (import_input_link_ended).  So every input
 * of a dedupe stage whose URL the stage has seen must end through here,
 * or be in import_undone (its lost flag when it never began). */
void import_input_live(struct import_input *in, struct import_live *live);
/* The live input named url (masked), or NULL. */
struct import_input *import_input_find(const struct import_live *live, const char *url);
/* A link record for parent_key (copied) to go after the input's last page
 * record: held until import_input_finish, then queued as a record is.
 * unchanged: the parent item is as stored (import_item.unchanged), so the
 * record is not sent if the links are trusted and the input turns out
 * reached only (struct import_links).  -1 with err: out of memory (the
 * link is missing until the next import). */
RACED_MUST_CHECK
int import_input_link(struct import_input *in, const char *parent_key, bool unchanged,
                      struct store *s, size_t table, int64_t import_id, char *err);
/* The link record of a parent (unchanged as above) that meets the input
 * named url (masked), which has ended in this import (not live): sent
 * unless the input had no checkpoint (import_undone_has(undone, url)) or
 * the links are in place; counted in links either way.  Sent with the
 * keys ended gives for url (import_input_link_ended), else by URL
 * (counted in links->by_url).  -1 with err (the record could not be
 * queued). */
RACED_MUST_CHECK
int import_links_ended(struct import_links *links, const struct import_undone *undone,
                       const struct import_keys *ended, const char *url, const char *parent_key,
                       bool unchanged, struct store *s,
                       size_t table, int64_t import_id, char *err);
/* The next page record of the input (import_input_record) lists these n
 * keys (a body's, or the stored page's when it was answered 304): its
 * link records will carry them.  A record made without this first (a
 * page past IMPORT_PAGE_KEYS_MAX, out of memory, an input skipped) makes
 * every link record of the input go by URL.  An input of a stage that
 * is not a dedupe one (neither links nor ended set) keeps none. */
void import_input_keys(struct import_input *in, const char *const *keys, size_t n);
/* The input's unit ended (its last page record is queued): the held link
 * records are queued after it.  -1 with err when one could not be. */
RACED_MUST_CHECK
int import_input_finish(struct import_input *in, struct store *s, size_t table,
                        int64_t import_id, char *err);

/* A parent meeting the input url (masked) of its stage after it ended
 * with its checkpoint (not live, not undone): its link record, with the
 * keys the stage's cache gives for url (kept, or implied by the URL),
 * else by URL.  -1 with err: out of memory. */
RACED_MUST_CHECK
int import_input_link_ended(const struct import_keys *ended, const char *url,
                            const char *parent_key, struct store *s, size_t table,
                            int64_t import_id, char *err);

#endif
