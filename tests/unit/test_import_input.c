/* import_input: the item hash, a stored page's key index, and the rule
 * that a page's record waits for the items emitted before it (a discard
 * store takes the records). */
#include "check.h"

#include "import_input.h"
#include "import_keys.h"
#include "store.h"

#include <event2/event.h>

static void test_hash(void)
{
	uint64_t a = import_item_hash("race-1", "{\"id\":1}", 8);
	CHECK(a == import_item_hash("race-1", "{\"id\":1}", 8));
	/* The parent key and the text are both in it, and kept apart. */
	CHECK(a != import_item_hash("race-2", "{\"id\":1}", 8));
	CHECK(a != import_item_hash("race-1", "{\"id\": 1}", 9));
	CHECK(import_item_hash(NULL, "x", 1) == import_item_hash("", "x", 1));
	CHECK(import_item_hash("ab", "c", 1) != import_item_hash("a", "bc", 2));
}

static void test_index(void)
{
	char *keys[] = { "a", "b", "c\"{,}\\", "b" };
	uint64_t hashes[] = { 1, 2, 3, 4 };
	struct store_page_state pg = {.url = "u", .keys = keys, .hashes = hashes, .n_keys = 4};
	struct import_page_index *ix = import_page_index_new(&pg);
	CHECK(ix != NULL);
	CHECK(import_page_index_unchanged(ix, "a", 1));
	CHECK(!import_page_index_unchanged(ix, "a", 2));        /* changed */
	CHECK(!import_page_index_unchanged(ix, "z", 1));        /* new */
	CHECK(import_page_index_unchanged(ix, "c\"{,}\\", 3));
	/* A key twice on a page: either stored hash will do. */
	CHECK(import_page_index_unchanged(ix, "b", 2));
	CHECK(import_page_index_unchanged(ix, "b", 4));
	import_page_index_free(ix);
	/* No stored page: nothing is unchanged. */
	CHECK(import_page_index_new(NULL) == NULL);
	CHECK(!import_page_index_unchanged(NULL, "a", 1));
	/* Many keys: the table grows. */
	static char names[1000][8];
	char *many[1000];
	uint64_t mh[1000];
	for (int i = 0; i < 1000; i++) {
		snprintf(names[i], sizeof names[i], "k%d", i);
		many[i] = names[i];
		mh[i] = (uint64_t)i * 7;
	}
	struct store_page_state big = {.url = "u", .keys = many, .hashes = mh, .n_keys = 1000};
	ix = import_page_index_new(&big);
	int found = 0;
	for (int i = 0; i < 1000; i++)
		found += import_page_index_unchanged(ix, names[i], (uint64_t)i * 7);
	CHECK_EQ(found, 1000);
	import_page_index_free(ix);
}

static void test_records(struct store *s)
{
	char err[ERR_MAX];
	struct import_input *in = import_input_new("http://x/races/1/entries");
	CHECK(in != NULL);
	const char *keys[] = { "e1", "e2" };
	uint64_t hashes[] = { 11, 12 };
	struct store_page pg = {.url = "http://x/races/1/entries", .input = in->url, .fetched = true,
	                        .content = true, .etag = "\"v1\"", .keys = keys, .hashes = hashes,
	                        .n_keys = 2, .next_url = "http://x/races/1/entries?p=2"};
	/* Nothing emitted yet: the record goes at once. */
	CHECK_EQ(import_input_record(in, &pg, s, 0, 1, err), 0);
	CHECK(in->head == NULL);
	/* Three items out, none in: the next record waits for all three. */
	for (int i = 0; i < 3; i++)
		import_input_emitted(in);
	pg.page_no = 1;
	CHECK_EQ(import_input_record(in, &pg, s, 0, 1, err), 0);
	CHECK(in->head != NULL);
	import_input_emitted(in); /* after the record: not waited for */
	pg.page_no = 2;
	pg.input_done = true;
	CHECK_EQ(import_input_record(in, &pg, s, 0, 1, err), 0);
	CHECK_EQ(import_input_delivered(in, false, s, 0, 1, err), 0);
	CHECK_EQ(import_input_delivered(in, false, s, 0, 1, err), 0);
	CHECK(in->head != NULL);
	CHECK_EQ(import_input_delivered(in, false, s, 0, 1, err), 0);
	/* The first waiting record went; the second waits for the fourth. */
	CHECK(in->head != NULL && in->head == in->tail);
	CHECK_EQ(import_input_delivered(in, true, s, 0, 1, err), 0);
	CHECK(in->head == NULL && in->tail == NULL);
	CHECK(in->tainted);
	/* Records still waiting when the last reference goes are freed. */
	import_input_emitted(in);
	CHECK_EQ(import_input_record(in, &pg, s, 0, 1, err), 0);
	CHECK(in->head != NULL);
	import_input_ref(in);
	import_input_unref(in);
	CHECK(in->head != NULL);
	import_input_unref(in);
}

static bool live_empty(const struct import_live *live)
{
	for (size_t b = 0; b < IMPORT_LIVE_BUCKETS; b++)
		if (live->buckets[b])
			return false;
	return true;
}

/* Many live inputs (more than the set's chains): each found by its URL,
 * none by another, each gone once its last reference goes, whatever
 * order they go in. */
static void test_live_set(void)
{
	enum { N = 5 * IMPORT_LIVE_BUCKETS };
	static struct import_live live;
	static struct import_input *in[N];
	char url[64];
	for (size_t i = 0; i < N; i++) {
		snprintf(url, sizeof url, "http://x/athletes/%zu", i);
		in[i] = import_input_new(url);
		CHECK(in[i] != NULL);
		import_input_live(in[i], &live);
	}
	for (size_t i = 0; i < N; i++) {
		snprintf(url, sizeof url, "http://x/athletes/%zu", i);
		CHECK(import_input_find(&live, url) == in[i]);
	}
	CHECK(import_input_find(&live, "http://x/athletes/x") == NULL);
	for (size_t i = 0; i < N; i += 2)   /* every other one ends */
		import_input_unref(in[i]);
	for (size_t i = 0; i < N; i++) {
		snprintf(url, sizeof url, "http://x/athletes/%zu", i);
		CHECK(import_input_find(&live, url) == (i % 2 ? in[i] : NULL));
	}
	for (size_t i = N - 1; i < N; i -= 2)
		import_input_unref(in[i]);
	CHECK(live_empty(&live));
}

/* A dedupe stage's links: held until the unit ends, then behind the
 * input's last record; an input is found among the live ones until its
 * last reference goes.  (Table 1 is the dedupe stage.) */
static void test_links(struct store *s)
{
	char err[ERR_MAX];
	static struct import_live live;
	struct import_input *in = import_input_new("http://x/athletes/a1");
	CHECK(in != NULL);
	import_input_live(in, &live);
	CHECK(import_input_find(&live, "http://x/athletes/a1") == in);
	CHECK(import_input_find(&live, "http://x/athletes/a2") == NULL);
	/* The parent that fetches it, and one that saw it in flight: held. */
	CHECK_EQ(import_input_link(in, "e1-1", false, s, 1, 1, err), 0);
	CHECK_EQ(import_input_link(in, "e2-4", false, s, 1, 1, err), 0);
	CHECK_EQ(in->n_held, 2);
	CHECK(in->head == NULL);
	/* Its item is out, not yet in; the last record waits for it; the unit
	 * ends: the links wait behind the record. */
	import_input_emitted(in);
	struct store_page pg = {.url = in->url, .input = in->url, .fetched = true, .content = true,
	                        .input_done = true};
	CHECK_EQ(import_input_record(in, &pg, s, 1, 1, err), 0);
	CHECK_EQ(import_input_finish(in, s, 1, 1, err), 0);
	CHECK_EQ(in->n_held, 0);
	CHECK(in->head != NULL && in->head != in->tail);
	/* A parent after the end: queued behind them, not held. */
	CHECK_EQ(import_input_link(in, "e3-1", false, s, 1, 1, err), 0);
	CHECK_EQ(in->n_held, 0);
	CHECK_EQ(import_input_delivered(in, false, s, 1, 1, err), 0);
	CHECK(in->head == NULL && in->tail == NULL);
	/* Now a link goes at once. */
	CHECK_EQ(import_input_link(in, "e4-1", false, s, 1, 1, err), 0);
	CHECK(in->head == NULL);
	/* Links still held when the last reference goes are freed; the input
	 * leaves the live list. */
	struct import_input *in2 = import_input_new("http://x/athletes/a2");
	CHECK(in2 != NULL);
	import_input_live(in2, &live);
	CHECK_EQ(import_input_link(in2, "e5-1", false, s, 1, 1, err), 0);
	CHECK(import_input_find(&live, "http://x/athletes/a2") == in2);
	CHECK(import_input_find(&live, "http://x/athletes/a1") == in);
	import_input_unref(in);
	CHECK(import_input_find(&live, "http://x/athletes/a2") == in2);
	CHECK(import_input_find(&live, "http://x/athletes/a1") == NULL);
	import_input_unref(in2);
	CHECK(live_empty(&live));
	/* A link record for a stage without a link table is refused. */
	CHECK_EQ(store_add_link(s, 0, 1, "e1", "http://x/athletes/a1", err), -1);
	CHECK(strstr(err, "table entries, which has no link table") != NULL);
}

/* A record of input `in` with every page reached only or not. */
static void finish_input(struct import_input *in, struct store *s, bool reached_only, char *err)
{
	struct store_page pg = {.url = in->url, .input = in->url, .fetched = true,
	                        .content = !reached_only, .input_done = true,
	                        .reached_only = reached_only};
	CHECK_EQ(import_input_record(in, &pg, s, 1, 1, err), 0);
	CHECK_EQ(import_input_finish(in, s, 1, 1, err), 0);
}

/* Links known in place (struct import_links): trusted, an unchanged
 * parent of an input whose records were all reached only sends nothing;
 * a changed parent, an input that wrote a page, or untrusted links send
 * the record; an input without checkpoint drops it. */
static void test_links_skip(struct store *s)
{
	char err[ERR_MAX];
	static struct import_live live;
	struct import_undone undone = {0};
	struct import_links l = {.trusted = true};
	struct import_input *same = import_input_new("http://x/athletes/a1");
	struct import_input *wrote = import_input_new("http://x/athletes/a2");
	struct import_input *failed = import_input_new("http://x/athletes/a3");
	CHECK(same && wrote && failed);
	struct import_input *all[] = { same, wrote, failed };
	for (size_t i = 0; i < 3; i++) {
		import_input_live(all[i], &live);
		all[i]->undone = &undone;
		all[i]->links = &l;
		CHECK_EQ(import_input_link(all[i], "e1", true, s, 1, 1, err), 0);
		CHECK_EQ(import_input_link(all[i], "e2", false, s, 1, 1, err), 0);
	}
	finish_input(same, s, true, err);
	CHECK(!same->rewrote && same->done);
	CHECK_EQ(l.skipped, 1);   /* e1 */
	CHECK_EQ(l.sent, 1);      /* e2: changed */
	finish_input(wrote, s, false, err);
	CHECK(wrote->rewrote);
	CHECK_EQ(l.skipped, 1);
	CHECK_EQ(l.sent, 3);
	/* No checkpoint (the last page failed): nothing sent, both dropped. */
	struct store_page pg = {.url = failed->url, .input = failed->url, .reached_only = true};
	CHECK_EQ(import_input_record(failed, &pg, s, 1, 1, err), 0);
	CHECK_EQ(import_input_finish(failed, s, 1, 1, err), 0);
	CHECK_EQ(l.dropped, 2);
	CHECK_EQ(l.sent, 3);
	/* A parent meeting them live: the same rule at once. */
	CHECK_EQ(import_input_link(same, "e3", true, s, 1, 1, err), 0);
	CHECK_EQ(import_input_link(wrote, "e3", true, s, 1, 1, err), 0);
	CHECK_EQ(l.skipped, 2);
	CHECK_EQ(l.sent, 4);
	/* Ended: what they were is remembered for their later parents. */
	for (size_t i = 0; i < 3; i++)
		import_input_unref(all[i]);
	CHECK(live_empty(&live));
	CHECK_EQ(import_links_ended(&l, &undone, NULL, "http://x/athletes/a1", "e4", true, s, 1, 1, err), 0);
	CHECK_EQ(l.skipped, 3);
	CHECK_EQ(import_links_ended(&l, &undone, NULL, "http://x/athletes/a1", "e5", false, s, 1, 1, err), 0);
	CHECK_EQ(l.sent, 5);
	CHECK_EQ(import_links_ended(&l, &undone, NULL, "http://x/athletes/a2", "e4", true, s, 1, 1, err), 0);
	CHECK_EQ(l.sent, 6);
	CHECK_EQ(import_links_ended(&l, &undone, NULL, "http://x/athletes/a3", "e4", true, s, 1, 1, err), 0);
	CHECK_EQ(l.dropped, 3);
	CHECK_EQ(l.skipped, 3);
	/* Not trusted: every record of a completed input goes. */
	l.trusted = false;
	CHECK_EQ(import_links_ended(&l, &undone, NULL, "http://x/athletes/a1", "e4", true, s, 1, 1, err), 0);
	CHECK_EQ(l.sent, 7);
	CHECK_EQ(l.skipped, 3);
	/* The set past its bound (lost): every later parent gets its record. */
	l.trusted = true;
	l.changed.lost = true;
	CHECK_EQ(import_links_ended(&l, &undone, NULL, "http://x/athletes/a1", "e4", true, s, 1, 1, err), 0);
	CHECK_EQ(l.sent, 8);
	/* Held past IMPORT_INPUT_LINKS_HELD_MAX: sent before the checkpoint,
	 * so dropped (counted: no next run trusts these links). */
	struct import_input *big = import_input_new("http://x/athletes/a4");
	CHECK(big != NULL);
	big->links = &l;
	uint64_t dropped = l.dropped;
	char key[32];
	for (unsigned i = 0; i <= IMPORT_INPUT_LINKS_HELD_MAX; i++) {
		snprintf(key, sizeof key, "e%u", i);
		if (import_input_link(big, key, true, s, 1, 1, err) != 0)
			break;
	}
	CHECK_EQ(big->n_held, IMPORT_INPUT_LINKS_HELD_MAX);
	CHECK_EQ(l.dropped, dropped + 1);
	/* Held ones never sent (the unit aborted): dropped too. */
	import_input_unref(big);
	CHECK_EQ(l.dropped, dropped + 1 + IMPORT_INPUT_LINKS_HELD_MAX);
	import_undone_free(&l.changed);
	import_undone_free(&undone);
}

/* What a link record carries: the keys of every page record the input
 * made (declared before each), packed; a record made without them, or
 * too many keys, and its records go by URL.  An input ending with its
 * checkpoint and its keys leaves them in its stage's cache, bounded in
 * bytes; one without a checkpoint does not. */
static void test_keys(struct store *s)
{
	char err[ERR_MAX];
	struct import_keys *ended = import_keys_new(4096);
	CHECK(ended != NULL);
	if (!ended)
		return;
	struct import_input *in = import_input_new("http://x/athletes/b1");
	CHECK(in != NULL);
	in->ended = ended;
	const char *p0[] = { "k1", "k2" }, *p1[] = { "k3" };
	struct store_page pg = {.url = in->url, .input = in->url, .fetched = true, .content = true};
	import_input_keys(in, p0, 2);
	CHECK_EQ(import_input_record(in, &pg, s, 1, 1, err), 0);
	pg.input_done = true;
	pg.page_no = 1;
	import_input_keys(in, p1, 1);
	CHECK_EQ(import_input_record(in, &pg, s, 1, 1, err), 0);
	CHECK(in->done && in->keys_known);
	CHECK_EQ(in->n_keys, 3);
	CHECK_EQ(in->keys_len, 9);
	CHECK(in->keys && memcmp(in->keys, "k1\0k2\0k3", 9) == 0);
	CHECK_EQ(import_input_finish(in, s, 1, 1, err), 0);
	import_input_unref(in);
	const char *k = NULL;
	size_t len = 0, n = 0;
	char buf[IMPORT_KEYS_IMPLIED_MAX];
	CHECK(import_keys_find(ended, "http://x/athletes/b1", buf, &k, &len, &n));
	CHECK(n == 3 && len == 9 && k && memcmp(k, "k1\0k2\0k3", 9) == 0);
	CHECK(!import_keys_find(ended, "http://x/athletes/b", buf, &k, &len, &n));
	CHECK_EQ(import_input_link_ended(ended, "http://x/athletes/b1", "e1", s, 1, 1, err), 0);
	CHECK_EQ(import_input_link_ended(ended, "http://x/athletes/zz", "e1", s, 1, 1, err), 0);

	/* an input of a stage that is not a dedupe one keeps no keys */
	in = import_input_new("http://x/entries/r1");
	CHECK(in != NULL);
	import_input_keys(in, p0, 2);
	CHECK(!in->keys_known && in->keys == NULL && in->n_keys == 0);
	import_input_unref(in);

	/* a record without its keys (a skipped page): by URL, not cached */
	in = import_input_new("http://x/athletes/b2");
	in->ended = ended;
	import_input_keys(in, p0, 2);
	CHECK_EQ(import_input_record(in, &pg, s, 1, 1, err), 0);
	CHECK_EQ(import_input_record(in, &pg, s, 1, 1, err), 0);
	CHECK(in->done && !in->keys_known && in->keys == NULL);
	import_input_keys(in, p1, 1);   /* lost stays lost */
	CHECK(!in->keys_known);
	import_input_unref(in);
	CHECK(!import_keys_find(ended, "http://x/athletes/b2", buf, &k, &len, &n));

	/* more than IMPORT_LINK_KEYS_MAX keys: by URL */
	in = import_input_new("http://x/athletes/b3");
	in->ended = ended;
	const char **many = calloc(IMPORT_LINK_KEYS_MAX + 1, sizeof *many);
	for (size_t i = 0; many && i <= IMPORT_LINK_KEYS_MAX; i++)
		many[i] = "k";
	import_input_keys(in, many, IMPORT_LINK_KEYS_MAX);
	CHECK(in->keys_known);
	import_input_keys(in, many, 1);
	CHECK(!in->keys_known);
	free(many);
	import_input_unref(in);

	/* an empty input (no keys) is known: its parents link to nothing;
	 * without a checkpoint it is not cached */
	in = import_input_new("http://x/athletes/b4");
	in->ended = ended;
	import_input_keys(in, NULL, 0);
	pg.input_done = false;
	CHECK_EQ(import_input_record(in, &pg, s, 1, 1, err), 0);
	CHECK(in->keys_known && in->n_keys == 0 && !in->done);
	import_input_unref(in);
	CHECK(!import_keys_find(ended, "http://x/athletes/b4", buf, &k, &len, &n));

	/* the bound: entries past 4096 bytes are refused, the first ones kept
	 * (their key is not the one their URL implies) */
	char url[64];
	size_t added = 0;
	for (int i = 0; i < 200; i++) {
		snprintf(url, sizeof url, "http://x/athletes/c%d", i);
		size_t was = import_keys_count(ended);
		import_keys_ended(ended, url, true, "k", 2, 1);
		added += import_keys_count(ended) - was;
	}
	CHECK(added > 10 && added < 200);
	CHECK(import_keys_bytes(ended) <= 4096 + 4096 / IMPORT_KEYS_BY_URL_SHARE);
	CHECK_EQ(import_keys_refused(ended), 200 - added);
	CHECK(import_keys_find(ended, "http://x/athletes/c0", buf, &k, &len, &n));
	CHECK(!import_keys_find(ended, "http://x/athletes/c199", buf, &k, &len, &n));
	CHECK_EQ(import_keys_count(ended), added + 1);
	import_keys_free(ended);
}

int main(void)
{
	char err[ERR_MAX];
	struct event_base *base = event_base_new();
	const char *tables[] = { "entries", "athletes" };
	const int parents[] = { -1, 0 };
	const bool dedupe[] = { false, true };
	struct store_conf conf = {.conninfo = "", .batch_size = 10, .tables = tables, .n_tables = 2,
	                          .parents = parents, .dedupe = dedupe, .discard = true};
	struct store_callbacks cb = {0};
	struct store *s = store_new(base, &conf, &cb, err);
	CHECK(s != NULL);
	test_hash();
	test_index();
	test_live_set();
	if (s)
		test_records(s);
	if (s)
		test_links(s);
	if (s)
		test_links_skip(s);
	if (s)
		test_keys(s);
	store_free(s);
	event_base_free(base);
	return check_failures ? 1 : 0;
}
