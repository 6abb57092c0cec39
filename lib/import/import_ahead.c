/* import_ahead — see import_ahead.h. */
#include "import_ahead.h"

#include "dedupe.h"
#include "membudget.h"
#include "store.h"

#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

/* Buckets of the URL table: a power of two, about the bound. */
#define AHEAD_BUCKETS 2048u

struct import_ahead_entry {
	char *url;
	uint64_t hash;
	uint64_t tag;                    /* while SENT */
	enum import_ahead_status status;
	unsigned refs;                   /* queued inputs holding it */
	struct store_input_state *state; /* while ANSWERED */
	void *waiter;
	size_t charge;                   /* charged to membudget */
	/* the first page's rows read back ahead */
	enum import_ahead_status items_status;
	char *parent;                    /* its rows' expected parent key, or NULL */
	bool rb_by_parent;               /* its read-back goes with the parent */
	char **rb_keys;                  /* while UNSENT or SENT: its keys (one block) */
	size_t rb_n;
	size_t rb_held;                  /* its keys counted in items_held, until taken */
	struct store_items *items;       /* while ANSWERED */
	void *items_waiter;
	struct import_ahead_entry *next_in_bucket;
	TAILQ_ENTRY(import_ahead_entry) link; /* in unsent or sent, by status */
	TAILQ_ENTRY(import_ahead_entry) items_link; /* in items_unsent while UNSENT */
	bool deferred;                   /* in deferred */
	TAILQ_ENTRY(import_ahead_entry) defer_link;
};

/* One read-back statement: its entries (a reference each) in key order. */
struct ahead_group {
	uint64_t tag;
	struct import_ahead_entry **e;
	void **waiters;                  /* room for one an entry, at the answer */
	size_t n;
	TAILQ_ENTRY(ahead_group) link;
};

TAILQ_HEAD(ahead_list, import_ahead_entry);

struct import_ahead {
	struct import_ahead_entry *buckets[AHEAD_BUCKETS];
	struct ahead_list unsent, sent, items_unsent;
	struct ahead_list deferred;      /* read-backs put off for the bound, oldest first */
	TAILQ_HEAD(, ahead_group) groups;
	size_t n_items_unsent, items_unsent_keys;
	size_t items_held;               /* keys of read-backs wanted and not yet taken */
	size_t items_kept;               /* rows taken, still held by their units */
	size_t n_unsent;
	struct import_ahead_stats stats;
};

/* What a state costs held: its strings, keys and arrays (an estimate of
 * the heap it takes, as membudget counts). */
static size_t state_bytes(const struct store_input_state *st)
{
	size_t n = st ? sizeof *st : 0;
	for (size_t i = 0; st && i < st->n_pages; i++) {
		const struct store_page_state *p = &st->pages[i];
		n += sizeof *p + (p->url ? strlen(p->url) + 1 : 0) + (p->etag ? strlen(p->etag) + 1 : 0) +
		     (p->last_modified ? strlen(p->last_modified) + 1 : 0) +
		     (p->next_url ? strlen(p->next_url) + 1 : 0) + p->n_keys * (sizeof(char *) + 8) +
		     (p->fields ? p->fields_len : 0);   /* up to IMPORT_PAGEFIELDS_MAX_BYTES */
		for (size_t k = 0; k < p->n_keys; k++)
			n += strlen(p->keys[k]) + 1;
	}
	return n;
}

static void held_peak(struct import_ahead *a)
{
	size_t held = a->items_held + a->items_kept;
	if (held > a->stats.items_held_peak)
		a->stats.items_held_peak = held;
}

struct import_ahead *import_ahead_new(void)
{
	struct import_ahead *a = calloc(1, sizeof *a);
	if (!a)
		return NULL;
	TAILQ_INIT(&a->unsent);
	TAILQ_INIT(&a->sent);
	TAILQ_INIT(&a->items_unsent);
	TAILQ_INIT(&a->deferred);
	TAILQ_INIT(&a->groups);
	return a;
}

static struct import_ahead_entry **bucket_of(struct import_ahead *a, uint64_t hash)
{
	return &a->buckets[hash & (AHEAD_BUCKETS - 1)];
}

/* Out of the URL table, its list, the budget; freed with its state. */
static void entry_free(struct import_ahead *a, struct import_ahead_entry *e)
{
	struct import_ahead_entry **pp = bucket_of(a, e->hash);
	while (*pp && *pp != e)
		pp = &(*pp)->next_in_bucket;
	if (*pp)
		*pp = e->next_in_bucket;
	if (e->status == IMPORT_AHEAD_UNSENT) {
		TAILQ_REMOVE(&a->unsent, e, link);
		a->n_unsent--;
	} else if (e->status == IMPORT_AHEAD_SENT) {
		TAILQ_REMOVE(&a->sent, e, link);
	}
	if (e->items_status == IMPORT_AHEAD_UNSENT) {
		TAILQ_REMOVE(&a->items_unsent, e, items_link);
		a->n_items_unsent--;
		a->items_unsent_keys -= e->rb_n;
	}
	if (e->deferred)
		TAILQ_REMOVE(&a->deferred, e, defer_link);
	free(e->parent);
	free(e->rb_keys);
	a->items_held -= e->rb_held;
	membudget_release(e->charge);
	store_items_free(e->items);
	store_input_state_free(e->state);
	free(e->url);
	free(e);
	a->stats.alive--;
}

void import_ahead_free(struct import_ahead *a)
{
	if (!a)
		return;
	struct ahead_group *g;
	while ((g = TAILQ_FIRST(&a->groups))) {
		TAILQ_REMOVE(&a->groups, g, link);
		free(g->e); /* its references go with the entries, below */
		free(g->waiters);
		free(g);
	}
	for (size_t b = 0; b < AHEAD_BUCKETS; b++)
		while (a->buckets[b])
			entry_free(a, a->buckets[b]);
	free(a);
}

struct import_ahead_entry *import_ahead_ask(struct import_ahead *a, const char *url)
{
	size_t len = strlen(url);
	uint64_t hash = dedupe_hash(url, len);
	struct import_ahead_entry **bucket = bucket_of(a, hash);
	for (struct import_ahead_entry *e = *bucket; e; e = e->next_in_bucket)
		/* a TAKEN entry is spent: its URL's next input reads anew */
		if (e->hash == hash && e->status != IMPORT_AHEAD_TAKEN && strcmp(e->url, url) == 0) {
			e->refs++;
			a->stats.shared++;
			return e;
		}
	struct import_ahead_entry *e = a->stats.alive < IMPORT_AHEAD_MAX ? calloc(1, sizeof *e) : NULL;
	if (e && !(e->url = strdup(url))) {
		free(e);
		e = NULL;
	}
	if (!e) {
		a->stats.refused++;
		return NULL;
	}
	e->hash = hash;
	e->refs = 1;
	e->status = IMPORT_AHEAD_UNSENT;
	e->items_status = IMPORT_AHEAD_NONE;
	e->charge = sizeof *e + len + 1;
	membudget_charge(e->charge);
	e->next_in_bucket = *bucket;
	*bucket = e;
	TAILQ_INSERT_TAIL(&a->unsent, e, link);
	a->n_unsent++;
	a->stats.asked++;
	a->stats.alive++;
	return e;
}

void import_ahead_drop(struct import_ahead *a, struct import_ahead_entry *e)
{
	if (!e || --e->refs > 0)
		return;
	e->waiter = NULL;
	e->items_waiter = NULL;
	/* Out: the answer will come and finds it by its tag, then frees it. */
	if (e->status != IMPORT_AHEAD_SENT)
		entry_free(a, e);
}

enum import_ahead_status import_ahead_status(const struct import_ahead_entry *e)
{
	return e->status;
}

size_t import_ahead_unsent(const struct import_ahead *a)
{
	return a->n_unsent;
}

size_t import_ahead_send(struct import_ahead *a, const char **urls, uint64_t *tags, size_t max,
                         uint64_t *next_tag)
{
	size_t n = 0;
	struct import_ahead_entry *e;
	while (n < max && (e = TAILQ_FIRST(&a->unsent))) {
		TAILQ_REMOVE(&a->unsent, e, link);
		a->n_unsent--;
		e->status = IMPORT_AHEAD_SENT;
		e->tag = ++*next_tag;
		TAILQ_INSERT_TAIL(&a->sent, e, link);
		urls[n] = e->url;
		tags[n++] = e->tag;
	}
	if (n > 0)
		a->stats.sends++;
	return n;
}

/* The SENT entry of tag; answers come in the order of the asks, so it is
 * nearly always the first. */
static struct import_ahead_entry *sent_find(struct import_ahead *a, uint64_t tag)
{
	struct import_ahead_entry *e;
	TAILQ_FOREACH(e, &a->sent, link)
		if (e->tag == tag)
			return e;
	return NULL;
}

void import_ahead_unsend(struct import_ahead *a, uint64_t tag)
{
	struct import_ahead_entry *e = sent_find(a, tag);
	if (!e)
		return;
	TAILQ_REMOVE(&a->sent, e, link);
	e->status = IMPORT_AHEAD_UNSENT;
	e->tag = 0;
	/* ahead of the others: it was the oldest */
	TAILQ_INSERT_HEAD(&a->unsent, e, link);
	a->n_unsent++;
}

const struct store_input_state *import_ahead_state(const struct import_ahead_entry *e)
{
	return e->status == IMPORT_AHEAD_ANSWERED ? e->state : NULL;
}

bool import_ahead_answer(struct import_ahead *a, uint64_t tag, struct store_input_state *st,
                         bool failed, void **waiter, struct import_ahead_entry **entry)
{
	struct import_ahead_entry *e = a ? sent_find(a, tag) : NULL;
	*waiter = NULL;
	*entry = NULL;
	if (!e)
		return false;
	TAILQ_REMOVE(&a->sent, e, link);
	if (failed) {
		store_input_state_free(st);
		e->status = IMPORT_AHEAD_FAILED;
	} else {
		e->state = st;
		e->status = IMPORT_AHEAD_ANSWERED;
		size_t more = state_bytes(st);
		e->charge += more;
		membudget_charge(more);
	}
	if (e->refs == 0) {
		entry_free(a, e);
		return true;
	}
	*waiter = e->waiter;
	e->waiter = NULL;
	*entry = e;
	return true;
}

struct store_input_state *import_ahead_take(struct import_ahead *a, struct import_ahead_entry *e)
{
	(void)a;
	if (!e || e->status != IMPORT_AHEAD_ANSWERED)
		return NULL;
	struct store_input_state *st = e->state;
	size_t held = state_bytes(st);
	e->state = NULL;
	e->status = IMPORT_AHEAD_TAKEN;
	membudget_release(held);
	e->charge -= held;
	return st;
}

void import_ahead_wait(struct import_ahead_entry *e, void *waiter)
{
	e->waiter = waiter;
}

enum import_ahead_status import_ahead_items_status(const struct import_ahead_entry *e)
{
	return e->items_status;
}

void import_ahead_items_want(struct import_ahead *a, struct import_ahead_entry *e,
                             const char *const *keys, size_t n, bool by_parent)
{
	if (e->items_status != IMPORT_AHEAD_NONE || n == 0)
		return;
	import_ahead_items_undefer(a, e);
	size_t bytes = n * sizeof(char *);
	for (size_t i = 0; i < n; i++)
		bytes += strlen(keys[i]) + 1;
	char **block = malloc(bytes);
	if (!block)
		return;
	char *at = (char *)(block + n);
	for (size_t i = 0; i < n; i++) {
		size_t len = strlen(keys[i]) + 1;
		memcpy(at, keys[i], len);
		block[i] = at;
		at += len;
	}
	e->rb_keys = block;
	e->rb_n = n;
	e->rb_by_parent = by_parent;
	e->rb_held = n;
	a->items_held += n;
	held_peak(a);
	e->charge += bytes;
	membudget_charge(bytes);
	e->items_status = IMPORT_AHEAD_UNSENT;
	TAILQ_INSERT_TAIL(&a->items_unsent, e, items_link);
	a->n_items_unsent++;
	a->items_unsent_keys += n;
	a->stats.items_sent++;
}

void import_ahead_items_defer(struct import_ahead *a, struct import_ahead_entry *e)
{
	if (e->deferred || e->items_status != IMPORT_AHEAD_NONE || e->status != IMPORT_AHEAD_ANSWERED)
		return;
	e->deferred = true;
	TAILQ_INSERT_TAIL(&a->deferred, e, defer_link);
}

void import_ahead_items_undefer(struct import_ahead *a, struct import_ahead_entry *e)
{
	if (!e->deferred)
		return;
	e->deferred = false;
	TAILQ_REMOVE(&a->deferred, e, defer_link);
}

struct import_ahead_entry *import_ahead_items_deferred(struct import_ahead *a)
{
	struct import_ahead_entry *e;
	/* an entry whose state was taken (its input started) is spent */
	while ((e = TAILQ_FIRST(&a->deferred)) &&
	       (e->status != IMPORT_AHEAD_ANSWERED || e->items_status != IMPORT_AHEAD_NONE))
		import_ahead_items_undefer(a, e);
	return e;
}

size_t import_ahead_items_unsent(const struct import_ahead *a)
{
	return a->n_items_unsent;
}

size_t import_ahead_items_unsent_keys(const struct import_ahead *a)
{
	return a->items_unsent_keys;
}

void import_ahead_set_parent(struct import_ahead_entry *e, const char *parent)
{
	if (e->parent || !parent || !(e->parent = strdup(parent)))
		return;
	size_t bytes = strlen(parent) + 1;
	e->charge += bytes;
	membudget_charge(bytes);
}

bool import_ahead_items_send(struct import_ahead *a, const char ***keys,
                             const char *const **parents, size_t *n, uint64_t *tag,
                             uint64_t *next_tag)
{
	if (a->n_items_unsent == 0)
		return false;
	struct ahead_group *g = calloc(1, sizeof *g);
	/* the keys, then their parents */
	const char **k = malloc(2 * a->items_unsent_keys * sizeof *k);
	if (g) {
		g->e = malloc(a->n_items_unsent * sizeof *g->e);
		g->waiters = malloc(a->n_items_unsent * sizeof *g->waiters);
	}
	if (!g || !k || !g->e || !g->waiters) {
		if (g) {
			free(g->e);
			free(g->waiters);
		}
		free(g);
		free(k);
		return false;
	}
	size_t nk = 0;
	struct import_ahead_entry *e;
	while ((e = TAILQ_FIRST(&a->items_unsent))) {
		TAILQ_REMOVE(&a->items_unsent, e, items_link);
		e->items_status = IMPORT_AHEAD_SENT;
		e->refs++; /* the group's */
		g->e[g->n++] = e;
		for (size_t i = 0; i < e->rb_n; i++) {
			k[a->items_unsent_keys + nk] = e->rb_by_parent ? e->parent : NULL;
			k[nk++] = e->rb_keys[i];
		}
	}
	if (parents)
		*parents = k + a->items_unsent_keys;
	a->n_items_unsent = 0;
	a->items_unsent_keys = 0;
	g->tag = ++*next_tag;
	TAILQ_INSERT_TAIL(&a->groups, g, link);
	a->stats.items_reads++;
	*keys = k;
	*n = nk;
	*tag = g->tag;
	return true;
}

/* What read-back rows cost held. */
static size_t items_bytes(const struct store_items *it)
{
	size_t n = it ? sizeof *it : 0;
	for (size_t i = 0; it && i < it->n; i++) {
		const struct store_item *x = &it->items[i];
		n += sizeof *x + (x->key ? strlen(x->key) + 1 : 0) +
		     (x->parent_key ? strlen(x->parent_key) + 1 : 0) + x->payload_len + 1;
	}
	return n;
}

/* The group's rows, each given to the entry whose key it answers (rows
 * come in the order of the keys, missing ones left out).  -1: out of
 * memory (items untouched). */
static int items_split(struct ahead_group *g, struct store_items *items)
{
	size_t *owner = items->n ? malloc(items->n * sizeof *owner) : NULL;
	size_t *count = calloc(g->n ? g->n : 1, sizeof *count);
	struct store_items **per = calloc(g->n ? g->n : 1, sizeof *per);
	int rc = (items->n && !owner) || !count || !per ? -1 : 0;
	size_t j = 0, k = 0; /* entry j, its key k */
	for (size_t r = 0; rc == 0 && r < items->n; r++) {
		owner[r] = SIZE_MAX;
		while (j < g->n) {
			if (k >= g->e[j]->rb_n) {
				j++;
				k = 0;
				continue;
			}
			if (strcmp(g->e[j]->rb_keys[k++], items->items[r].key) == 0) {
				owner[r] = j;
				count[j]++;
				break;
			}
		}
	}
	for (size_t i = 0; rc == 0 && i < g->n; i++)
		if (!(per[i] = calloc(1, sizeof *per[i])) ||
		    (count[i] && !(per[i]->items = malloc(count[i] * sizeof *per[i]->items))))
			rc = -1;
	if (rc == 0) {
		for (size_t r = 0; r < items->n; r++) {
			struct store_item *x = &items->items[r];
			if (owner[r] == SIZE_MAX) { /* answers no key asked: not expected */
				free(x->key);
				free(x->parent_key);
				free(x->payload);
				continue;
			}
			struct store_items *to = per[owner[r]];
			to->items[to->n++] = *x;
		}
		for (size_t i = 0; i < g->n; i++) {
			struct import_ahead_entry *e = g->e[i];
			e->items = per[i];
			e->items_status = IMPORT_AHEAD_ANSWERED;
			size_t more = items_bytes(per[i]);
			e->charge += more;
			membudget_charge(more);
		}
		free(items->items);
		free(items);
	} else {
		for (size_t i = 0; per && i < g->n; i++)
			if (per[i]) {
				free(per[i]->items);
				free(per[i]);
			}
	}
	free(owner);
	free(count);
	free(per);
	return rc;
}

bool import_ahead_items_answer(struct import_ahead *a, uint64_t tag, struct store_items *items,
                               bool failed, void (*resume)(void *arg, void *waiter), void *arg)
{
	struct ahead_group *g = NULL;
	if (a)
		TAILQ_FOREACH(g, &a->groups, link)
			if (g->tag == tag)
				break;
	if (!g)
		return false;
	TAILQ_REMOVE(&a->groups, g, link);
	if (failed || !items || items_split(g, items) < 0) {
		store_items_free(items);
		for (size_t i = 0; i < g->n; i++) {
			g->e[i]->items_status = IMPORT_AHEAD_FAILED;
			a->items_held -= g->e[i]->rb_held;
			g->e[i]->rb_held = 0;
		}
	}
	/* The keys are spent; the waiters are taken before any is resumed
	 * (a resumed unit may drop entries of this group). */
	void **waiters = g->waiters;
	size_t n_waiters = 0;
	for (size_t i = 0; i < g->n; i++) {
		struct import_ahead_entry *e = g->e[i];
		void *w = e->items_waiter;
		e->items_waiter = NULL;
		size_t kb = e->rb_n * sizeof(char *);
		for (size_t k = 0; k < e->rb_n; k++)
			kb += strlen(e->rb_keys[k]) + 1;
		free(e->rb_keys);
		e->rb_keys = NULL;
		e->rb_n = 0;
		e->charge -= kb;
		membudget_release(kb);
		import_ahead_drop(a, e); /* the group's reference */
		if (w)
			waiters[n_waiters++] = w;
	}
	for (size_t i = 0; i < n_waiters; i++)
		resume(arg, waiters[i]);
	free(g->e);
	free(g->waiters);
	free(g);
	return true;
}

void import_ahead_items_hold(struct import_ahead *a, size_t n)
{
	if (!a)
		return;
	a->items_kept += n;
	held_peak(a);
}

void import_ahead_items_unhold(struct import_ahead *a, size_t n)
{
	if (a)
		a->items_kept -= n < a->items_kept ? n : a->items_kept;
}

size_t import_ahead_items_held(const struct import_ahead *a)
{
	return a->items_held + a->items_kept;
}

struct store_items *import_ahead_items_take(struct import_ahead *a, struct import_ahead_entry *e)
{
	if (!e || e->items_status != IMPORT_AHEAD_ANSWERED)
		return NULL;
	struct store_items *it = e->items;
	size_t held = items_bytes(it);
	a->items_held -= e->rb_held;
	e->rb_held = 0;
	e->items = NULL;
	e->items_status = IMPORT_AHEAD_TAKEN;
	membudget_release(held);
	e->charge -= held;
	return it;
}

void import_ahead_items_wait(struct import_ahead_entry *e, void *waiter)
{
	e->items_waiter = waiter;
}

void import_ahead_get_stats(const struct import_ahead *a, struct import_ahead_stats *out)
{
	*out = a->stats;
}

bool import_ahead_fill(struct import_ahead *a, struct import_ahead_entry *e,
                       struct store_input_state *st)
{
	if (!e || e->status != IMPORT_AHEAD_UNSENT)
		return false;
	TAILQ_REMOVE(&a->unsent, e, link);
	a->n_unsent--;
	e->state = st;
	e->status = IMPORT_AHEAD_ANSWERED;
	size_t more = state_bytes(st);
	e->charge += more;
	membudget_charge(more);
	return true;
}
