/* import_input — see import_input.h. */
#include "import_input.h"

#include "dedupe.h"
#include "import_keys.h"
#include "membudget.h"
#include "store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A page record waiting for the items emitted before it (pg's strings
 * and arrays in the record's own allocation, record_copy); or a link
 * record (link set: the parent's key, after the record; pg unused,
 * zero).  One allocation either way. */
struct import_input_record {
	struct import_input_record *next;
	uint64_t after;          /* due once this many items were delivered */
	struct store_page pg;    /* its strings and arrays after the record */
	char *link;              /* after the record */
	bool unchanged;          /* link: the parent item is as stored */
	size_t charge;
};

/* A parent's link record held until the unit ends. */
struct import_input_link {
	struct import_input_link *next;
	char *parent;
	bool unchanged;          /* the parent item is as stored */
	size_t charge;
};

struct import_input *import_input_new(const char *url)
{
	struct import_input *in = calloc(1, sizeof *in);
	if (!in)
		return NULL;
	in->url = strdup(url);
	if (!in->url) {
		free(in);
		return NULL;
	}
	in->refs = 1;
	return in;
}

void import_input_ref(struct import_input *in)
{
	in->refs++;
}

static void record_free(struct import_input_record *r)
{
	membudget_release(r->charge);
	free(r);
}

static void held_free(struct import_input *in)
{
	while (in->held) {
		struct import_input_link *l = in->held;
		in->held = l->next;
		membudget_release(l->charge);
		free(l->parent);
		free(l);
	}
	in->n_held = 0;
}

static void undone_add(struct import_undone *u, const char *url)
{
	if (u->lost)
		return;
	if (!u->set)
		u->set = dedupe_new(IMPORT_DEDUPE_MAX_KEYS);
	size_t n = u->set ? dedupe_count(u->set) : 0;
	if (!u->set || (dedupe_add(u->set, url, strlen(url)) && dedupe_count(u->set) == n))
		u->lost = true;   /* new, and not remembered */
}

bool import_undone_has(const struct import_undone *u, const char *url)
{
	return u->lost || (u->set && dedupe_has(u->set, url, strlen(url)));
}

void import_undone_free(struct import_undone *u)
{
	dedupe_free(u->set);
	u->set = NULL;
	u->lost = false;
}

void import_input_unref(struct import_input *in)
{
	if (!in || --in->refs > 0)
		return;
	while (in->head) {
		struct import_input_record *r = in->head;
		in->head = r->next;
		if (r->link && in->links)
			in->links->dropped++;
		record_free(r);
	}
	if (in->links)
		in->links->dropped += in->n_held;
	held_free(in);
	if (in->undone && !in->done)
		undone_add(in->undone, in->url);
	/* Its parents still to come must know it was not reached only. */
	if (in->links && in->links->trusted && in->done && in->rewrote)
		undone_add(&in->links->changed, in->url);
	if (in->ended && in->done)
		import_keys_ended(in->ended, in->url, in->keys_known && !in->tainted, in->keys,
		                  in->keys_len, in->n_keys);
	membudget_release(in->keys_cap);
	free(in->keys);
	if (in->live_prev) {
		*in->live_prev = in->live_next;
		if (in->live_next)
			in->live_next->live_prev = in->live_prev;
	}
	store_input_state_free(in->state);
	free(in->pass_marks);
	free(in->url);
	free(in);
}

void import_input_set_state(struct import_input *in, struct store_input_state *st)
{
	store_input_state_free(in->state);
	in->state = st;
	free(in->pass_marks);
	in->pass_marks = NULL;
	in->pass_reached = NULL;
}

void import_input_from_pass(struct import_input *in, uint64_t *reached)
{
	free(in->pass_marks);
	in->pass_marks = NULL;
	in->pass_reached = NULL;
	if (!in->state || in->state->n_pages == 0)
		return;
	if ((in->pass_marks = calloc(in->state->n_pages, sizeof *in->pass_marks)))
		in->pass_reached = reached;
}

const struct store_page_state *import_input_page(const struct import_input *in, const char *url)
{
	if (!in->state)
		return NULL;
	for (size_t i = 0; i < in->state->n_pages; i++)
		if (strcmp(in->state->pages[i].url, url) == 0)
			return &in->state->pages[i];
	return NULL;
}

const struct store_page_state *import_input_first(const struct import_input *in)
{
	if (!in->state)
		return NULL;
	for (size_t i = 0; i < in->state->n_pages; i++)
		if (in->state->pages[i].page_no == 0)
			return &in->state->pages[i];
	return NULL;
}

/* ---- hashing ---- */

#define FNV_OFFSET 0xcbf29ce484222325u
#define FNV_PRIME 0x100000001b3u

static uint64_t fnv(uint64_t h, const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		h ^= (unsigned char)p[i];
		h *= FNV_PRIME;
	}
	return h;
}

/* FNV-1a over the bytes, then a murmur finaliser.  Stored (raced_pages):
 * unlike dedupe_hash, it cannot change without every stored item reading
 * as changed once. */
uint64_t import_item_hash(const char *parent_key, const char *text, size_t len)
{
	uint64_t h = FNV_OFFSET;
	if (parent_key)
		h = fnv(h, parent_key, strlen(parent_key));
	h = fnv(h, "", 1);
	h = fnv(h, text, len);
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdu;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53u;
	h ^= h >> 33;
	return h;
}

/* ---- a stored page's keys ---- */

/* Open addressing over the key strings' hashes: slots hold index + 1. */
struct import_page_index {
	const struct store_page_state *pg;
	size_t mask;
	uint32_t slots[];
};

static uint64_t key_hash(const char *key)
{
	return import_item_hash(NULL, key, strlen(key));
}

struct import_page_index *import_page_index_new(const struct store_page_state *pg)
{
	if (!pg)
		return NULL;
	size_t cap = 8;
	while (cap < 2 * pg->n_keys)
		cap *= 2;
	struct import_page_index *ix = calloc(1, sizeof *ix + cap * sizeof ix->slots[0]);
	if (!ix)
		return NULL;
	ix->pg = pg;
	ix->mask = cap - 1;
	for (size_t i = 0; i < pg->n_keys; i++) {
		size_t s = (size_t)key_hash(pg->keys[i]) & ix->mask;
		while (ix->slots[s])
			s = (s + 1) & ix->mask;
		ix->slots[s] = (uint32_t)(i + 1);
	}
	return ix;
}

bool import_page_index_unchanged(const struct import_page_index *ix, const char *key,
                                 uint64_t hash)
{
	if (!ix)
		return false;
	size_t s = (size_t)key_hash(key) & ix->mask;
	for (; ix->slots[s]; s = (s + 1) & ix->mask) {
		size_t i = ix->slots[s] - 1;
		if (strcmp(ix->pg->keys[i], key) == 0 && ix->pg->hashes[i] == hash)
			return true;
	}
	return false;
}

void import_page_index_free(struct import_page_index *ix)
{
	free(ix);
}

/* ---- records ---- */

void import_input_emitted(struct import_input *in)
{
	in->emitted++;
}

static size_t str_size(const char *s)
{
	return s ? strlen(s) + 1 : 0;
}

/* s copied to *at, which moves past it; NULL stays NULL. */
static const char *put_str(char **at, const char *s)
{
	if (!s)
		return NULL;
	size_t n = strlen(s) + 1;
	char *d = memcpy(*at, s, n);
	*at += n;
	return d;
}

/* A copy of pg in one allocation: the record, the keys' hashes, their
 * pointers, then every string.  (Each string and array its own
 * allocation made a page's record ten allocations or more, two a key:
 * docs/performance.md, "CPU per request", fourth round.)  It charges its
 * bytes, which are what the separate copies charged. */
static struct import_input_record *record_copy(const struct store_page *pg)
{
	size_t n = pg->n_keys;
	size_t size = sizeof(struct import_input_record) + n * (sizeof(uint64_t) + sizeof(char *)) +
	              str_size(pg->url) + str_size(pg->input) + str_size(pg->etag) +
	              str_size(pg->last_modified) + str_size(pg->next_url) +
	              (pg->fields ? pg->fields_len : 0);
	for (size_t i = 0; i < n; i++)
		size += str_size(pg->keys[i]);
	struct import_input_record *r = malloc(size);
	if (!r)
		return NULL;
	memset(r, 0, sizeof *r);
	uint64_t *hashes = (uint64_t *)(r + 1);
	const char **keys = (const char **)(hashes + n);
	char *at = (char *)(keys + n);
	r->pg = *pg;
	r->pg.url = put_str(&at, pg->url);
	r->pg.input = put_str(&at, pg->input);
	r->pg.etag = put_str(&at, pg->etag);
	r->pg.last_modified = put_str(&at, pg->last_modified);
	r->pg.next_url = put_str(&at, pg->next_url);
	r->pg.keys = NULL;
	r->pg.hashes = NULL;
	if (n > 0) {
		memcpy(hashes, pg->hashes, n * sizeof *hashes);
		for (size_t i = 0; i < n; i++)
			keys[i] = put_str(&at, pg->keys[i]);
		r->pg.keys = keys;
		r->pg.hashes = hashes;
	}
	if (pg->fields) {
		r->pg.fields = memcpy(at, pg->fields, pg->fields_len);
		at += pg->fields_len;
	}
	r->charge = size;
	membudget_charge(size);
	return r;
}

/* A tainted input's record: the page was reached, nothing more is known. */
static void untaint(struct store_page *pg)
{
	pg->keys = NULL;
	pg->hashes = NULL;
	pg->n_keys = 0;
	pg->fields = NULL;
	pg->fields_len = 0;
	pg->etag = NULL;
	pg->last_modified = NULL;
	pg->input_done = false;
	pg->reached_only = false;
	pg->keys_same = false;
	pg->first = false;
}

static int send(struct import_input *in, const struct store_page *pg, struct store *s,
                size_t table, int64_t import_id, char *err);

/* parent's link record to in, now: with its keys when it has them all,
 * else by URL; none without the input's checkpoint. */
static int link_send(struct import_input *in, const char *parent, struct store *s, size_t table,
                     int64_t import_id, char *err)
{
	if (!in->done)
		return 0;
	if (in->keys_known && !in->tainted)
		return store_add_link_keys(s, table, import_id, parent, in->keys, in->keys_len,
		                           in->n_keys, err);
	int rc = store_add_link(s, table, import_id, parent, in->url, err);
	if (in->links)
		in->links->by_url += rc == 0;
	return rc;
}

/* Whether a link record would change nothing (struct import_links):
 * asked once every page record of a completed input has gone. */
static bool link_in_place(const struct import_links *l, bool unchanged, bool rewrote)
{
	return l && l->trusted && unchanged && !rewrote;
}

/* A parent's link record, due now: to the store only for an input this
 * import completed, and then only when it may change a link. */
static int send_link(struct import_input *in, const char *parent, bool unchanged,
                     struct store *s, size_t table, int64_t import_id, char *err)
{
	struct import_links *l = in->links;
	if (!in->done) {
		if (l)
			l->dropped++;
		return 0;
	}
	if (link_in_place(l, unchanged, in->rewrote)) {
		l->skipped++;
		return 0;
	}
	int rc = link_send(in, parent, s, table, import_id, err);
	if (l)
		*(rc == 0 ? &l->sent : &l->dropped) += 1;
	return rc;
}

static int send_record(struct import_input *in, const struct import_input_record *r,
                       struct store *s, size_t table, int64_t import_id, char *err)
{
	if (r->link)
		return send_link(in, r->link, r->unchanged, s, table, import_id, err);
	return send(in, &r->pg, s, table, import_id, err);
}

static int send(struct import_input *in, const struct store_page *pg, struct store *s,
                size_t table, int64_t import_id, char *err)
{
	struct store_page out = *pg;
	if (in->tainted)
		untaint(&out); /* content without keys: the next import writes it all */
	int rc = store_add_page(s, table, import_id, &out, err);
	if (rc < 0 || !out.reached_only)
		in->rewrote = true;
	const struct store_page_state *was = rc == 0 && in->pass_reached
		? import_input_page(in, out.url) : NULL;
	if (was && !in->pass_marks[was - in->state->pages]) {
		in->pass_marks[was - in->state->pages] = true;
		(*in->pass_reached)++;
	}
	if (rc == 0 && out.input_done)
		in->done = true;
	return rc;
}

static int flush_due(struct import_input *in, struct store *s, size_t table, int64_t import_id,
                     char *err)
{
	int rc = 0;
	while (in->head && in->head->after <= in->delivered) {
		struct import_input_record *r = in->head;
		in->head = r->next;
		if (!in->head)
			in->tail = NULL;
		if (send_record(in, r, s, table, import_id, err) < 0)
			rc = -1;
		record_free(r);
	}
	return rc;
}

/* No keys known for its link records from now on (they go by URL). */
static void keys_lose(struct import_input *in)
{
	membudget_release(in->keys_cap);
	free(in->keys);
	in->keys = NULL;
	in->keys_len = in->keys_cap = in->n_keys = 0;
	in->keys_known = false;
	in->keys_lost = true;
}

int import_input_record(struct import_input *in, const struct store_page *pg, struct store *s,
                        size_t table, int64_t import_id, char *err)
{
	if (!in->keys_declared)
		keys_lose(in);   /* a record whose keys this input does not know */
	in->keys_declared = false;
	if (!in->head && in->delivered >= in->emitted)
		return send(in, pg, s, table, import_id, err);
	struct import_input_record *r = record_copy(pg);
	if (!r) {
		in->rewrote = true;   /* its page row is not what this import found */
		return err_set(err, "out of memory keeping the state of page %s", pg->url);
	}
	r->after = in->emitted;
	if (in->tail)
		in->tail->next = r;
	else
		in->head = r;
	in->tail = r;
	return 0;
}

int import_input_delivered(struct import_input *in, bool refused, struct store *s, size_t table,
                           int64_t import_id, char *err)
{
	in->delivered++;
	if (refused)
		in->tainted = true;
	return flush_due(in, s, table, import_id, err);
}

/* ---- edges of a dedupe stage ---- */

/* The chain of live for url (FNV-1a). */
static struct import_input **live_bucket(const struct import_live *live, const char *url)
{
	uint64_t h = 14695981039346656037u;
	for (const unsigned char *p = (const unsigned char *)url; *p; p++)
		h = (h ^ *p) * 1099511628211u;
	return (struct import_input **)&live->buckets[h % IMPORT_LIVE_BUCKETS];
}

void import_input_live(struct import_input *in, struct import_live *live)
{
	struct import_input **head = live_bucket(live, in->url);
	in->live_next = *head;
	if (*head)
		(*head)->live_prev = &in->live_next;
	in->live_prev = head;
	*head = in;
}

struct import_input *import_input_find(const struct import_live *live, const char *url)
{
	for (struct import_input *in = *live_bucket(live, url); in; in = in->live_next)
		if (strcmp(in->url, url) == 0)
			return in;
	return NULL;
}

/* Queue a link record for parent after everything queued so far (sent at
 * once when nothing waits). */
static int queue_link(struct import_input *in, const char *parent, bool unchanged,
                      struct store *s, size_t table, int64_t import_id, char *err)
{
	if (!in->head && in->delivered >= in->emitted)
		return send_link(in, parent, unchanged, s, table, import_id, err);
	/* one allocation: the record, then the key (as record_copy) */
	size_t len = strlen(parent) + 1;
	struct import_input_record *r = malloc(sizeof *r + len);
	if (!r) {
		if (in->links)
			in->links->dropped++;
		return err_set(err, "out of memory keeping the link of %s to %s", parent, in->url);
	}
	memset(r, 0, sizeof *r);
	r->link = memcpy((char *)(r + 1), parent, len);
	r->unchanged = unchanged;
	r->charge = sizeof *r + len;
	membudget_charge(r->charge);
	r->after = in->emitted;
	if (in->tail)
		in->tail->next = r;
	else
		in->head = r;
	in->tail = r;
	return 0;
}

int import_input_link(struct import_input *in, const char *parent_key, bool unchanged,
                      struct store *s, size_t table, int64_t import_id, char *err)
{
	if (in->finished || in->n_held >= IMPORT_INPUT_LINKS_HELD_MAX)
		return queue_link(in, parent_key, unchanged, s, table, import_id, err);
	struct import_input_link *l = calloc(1, sizeof *l);
	if (l)
		l->parent = strdup(parent_key);
	if (!l || !l->parent) {
		free(l);
		if (in->links)
			in->links->dropped++;
		return err_set(err, "out of memory keeping the link of %s to %s", parent_key, in->url);
	}
	l->unchanged = unchanged;
	l->charge = sizeof *l + strlen(parent_key) + 1;
	membudget_charge(l->charge);
	l->next = in->held;   /* the order of links does not matter */
	in->held = l;
	in->n_held++;
	return 0;
}

int import_input_finish(struct import_input *in, struct store *s, size_t table,
                        int64_t import_id, char *err)
{
	int rc = 0;
	in->finished = true;
	for (struct import_input_link *l = in->held; l; l = l->next)
		if (queue_link(in, l->parent, l->unchanged, s, table, import_id, err) < 0)
			rc = -1;
	held_free(in);
	return rc;
}

void import_input_keys(struct import_input *in, const char *const *keys, size_t n)
{
	/* Only a dedupe stage's inputs make link records (import_input_live
	 * gives them links, and ended): the others keep no keys. */
	if (in->keys_lost || (!in->links && !in->ended))
		return;
	if ((!keys && n > 0) || in->n_keys + n > IMPORT_LINK_KEYS_MAX) {
		keys_lose(in);
		return;
	}
	size_t more = 0;
	for (size_t i = 0; i < n; i++)
		more += strlen(keys[i]) + 1;
	if (in->keys_len + more > IMPORT_LINK_KEYS_BYTES_MAX) {
		keys_lose(in);
		return;
	}
	if (in->keys_len + more > in->keys_cap) {
		size_t cap = in->keys_cap ? in->keys_cap : 32;
		while (cap < in->keys_len + more)
			cap *= 2;
		char *k = realloc(in->keys, cap);
		if (!k) {
			keys_lose(in);
			return;
		}
		membudget_charge(cap - in->keys_cap);
		in->keys = k;
		in->keys_cap = cap;
	}
	for (size_t i = 0; i < n; i++) {
		size_t l = strlen(keys[i]) + 1;
		memcpy(in->keys + in->keys_len, keys[i], l);
		in->keys_len += l;
	}
	in->n_keys += n;
	in->keys_known = true;
	in->keys_declared = true;
}

/* import_input_link_ended, and whether the record went by URL. */
static int link_ended(const struct import_keys *ended, const char *url, const char *parent_key,
                      struct store *s, size_t table, int64_t import_id, bool *by_url, char *err)
{
	char buf[IMPORT_KEYS_IMPLIED_MAX];
	const char *keys;
	size_t len, n;
	*by_url = !ended || !import_keys_find(ended, url, buf, &keys, &len, &n);
	if (!*by_url)
		return store_add_link_keys(s, table, import_id, parent_key, keys, len, n, err);
	return store_add_link(s, table, import_id, parent_key, url, err);
}

int import_input_link_ended(const struct import_keys *ended, const char *url,
                            const char *parent_key, struct store *s, size_t table,
                            int64_t import_id, char *err)
{
	bool by_url;
	return link_ended(ended, url, parent_key, s, table, import_id, &by_url, err);
}

int import_links_ended(struct import_links *links, const struct import_undone *undone,
                       const struct import_keys *ended,
                       const char *url, const char *parent_key, bool unchanged, struct store *s,
                       size_t table, int64_t import_id, char *err)
{
	if (import_undone_has(undone, url)) {
		links->dropped++;   /* no checkpoint: no link change */
		return 0;
	}
	if (link_in_place(links, unchanged, import_undone_has(&links->changed, url))) {
		links->skipped++;
		return 0;
	}
	bool by_url;
	int rc = link_ended(ended, url, parent_key, s, table, import_id, &by_url, err);
	*(rc == 0 ? &links->sent : &links->dropped) += 1;
	links->by_url += rc == 0 && by_url;
	return rc;
}
