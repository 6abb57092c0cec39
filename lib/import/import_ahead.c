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
	uint64_t items_tag;
	struct store_items *items;
	void *items_waiter;
	struct import_ahead_entry *next_in_bucket;
	TAILQ_ENTRY(import_ahead_entry) link; /* in unsent or sent, by status */
	TAILQ_ENTRY(import_ahead_entry) items_link; /* in items_sent while SENT */
};

TAILQ_HEAD(ahead_list, import_ahead_entry);

struct import_ahead {
	struct import_ahead_entry *buckets[AHEAD_BUCKETS];
	struct ahead_list unsent, sent, items_sent;
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
		     (p->next_url ? strlen(p->next_url) + 1 : 0) + p->n_keys * (sizeof(char *) + 8);
		for (size_t k = 0; k < p->n_keys; k++)
			n += strlen(p->keys[k]) + 1;
	}
	return n;
}

struct import_ahead *import_ahead_new(void)
{
	struct import_ahead *a = calloc(1, sizeof *a);
	if (!a)
		return NULL;
	TAILQ_INIT(&a->unsent);
	TAILQ_INIT(&a->sent);
	TAILQ_INIT(&a->items_sent);
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
	if (e->items_status == IMPORT_AHEAD_SENT)
		TAILQ_REMOVE(&a->items_sent, e, items_link);
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
	if (e->status != IMPORT_AHEAD_SENT && e->items_status != IMPORT_AHEAD_SENT)
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
		if (e->items_status != IMPORT_AHEAD_SENT)
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

uint64_t import_ahead_items_sent(struct import_ahead *a, struct import_ahead_entry *e,
                                 uint64_t *next_tag)
{
	e->items_status = IMPORT_AHEAD_SENT;
	e->items_tag = ++*next_tag;
	TAILQ_INSERT_TAIL(&a->items_sent, e, items_link);
	a->stats.items_sent++;
	return e->items_tag;
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

bool import_ahead_items_answer(struct import_ahead *a, uint64_t tag, struct store_items *items,
                               bool failed, void **waiter)
{
	struct import_ahead_entry *e = NULL;
	*waiter = NULL;
	if (a)
		TAILQ_FOREACH(e, &a->items_sent, items_link)
			if (e->items_tag == tag)
				break;
	if (!e)
		return false;
	TAILQ_REMOVE(&a->items_sent, e, items_link);
	if (failed) {
		store_items_free(items);
		e->items_status = IMPORT_AHEAD_FAILED;
	} else {
		e->items = items;
		e->items_status = IMPORT_AHEAD_ANSWERED;
		size_t more = items_bytes(items);
		e->charge += more;
		membudget_charge(more);
	}
	if (e->refs == 0) {
		if (e->status != IMPORT_AHEAD_SENT)
			entry_free(a, e);
		return true;
	}
	*waiter = e->items_waiter;
	e->items_waiter = NULL;
	return true;
}

struct store_items *import_ahead_items_take(struct import_ahead *a, struct import_ahead_entry *e)
{
	(void)a;
	if (!e || e->items_status != IMPORT_AHEAD_ANSWERED)
		return NULL;
	struct store_items *it = e->items;
	size_t held = items_bytes(it);
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
