/* Unit tests for import_ahead: entries shared by URL, sent in order with
 * tags, answered, taken, awaited, dropped (before, while and after the
 * read is out), the bound, and the membudget charge returning to zero. */
#include "import_ahead.h"

#include "check.h"
#include "membudget.h"
#include "store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A state of one page with one key. */
static struct store_input_state *one_page(const char *url, const char *key)
{
	struct store_input_state *st = calloc(1, sizeof *st);
	st->pages = calloc(1, sizeof *st->pages);
	st->n_pages = 1;
	st->pages[0].url = strdup(url);
	st->pages[0].keys = calloc(1, sizeof(char *));
	st->pages[0].keys[0] = strdup(key);
	st->pages[0].hashes = calloc(1, sizeof(uint64_t));
	st->pages[0].n_keys = 1;
	return st;
}

static void test_ask_send_answer_take(void)
{
	size_t before = membudget_charged();
	struct import_ahead *a = import_ahead_new();
	struct import_ahead_entry *e1 = import_ahead_ask(a, "http://p/a/1");
	struct import_ahead_entry *e2 = import_ahead_ask(a, "http://p/a/2");
	struct import_ahead_entry *e1b = import_ahead_ask(a, "http://p/a/1");
	CHECK(e1 && e2);
	CHECK(e1b == e1); /* the same URL: one entry, one read */
	CHECK_EQ(import_ahead_unsent(a), 2);
	CHECK(membudget_charged() > before);

	const char *urls[4];
	uint64_t tags[4];
	uint64_t next = 41;
	CHECK_EQ(import_ahead_send(a, urls, tags, 4, &next), 2);
	CHECK_STR(urls[0], "http://p/a/1");
	CHECK_STR(urls[1], "http://p/a/2");
	CHECK_EQ(tags[0], 42);
	CHECK_EQ(tags[1], 43);
	CHECK_EQ(next, 43);
	CHECK_EQ(import_ahead_unsent(a), 0);
	CHECK_EQ(import_ahead_status(e1), IMPORT_AHEAD_SENT);

	/* someone else's tag is not ours */
	void *waiter = (void *)1;
	struct import_ahead_entry *got;
	CHECK(!import_ahead_answer(a, 7, NULL, false, &waiter, &got));
	CHECK(waiter == NULL);

	int me = 0;
	import_ahead_wait(e2, &me);
	CHECK(import_ahead_answer(a, 42, one_page("http://p/a/1", "k1"), false, &waiter, &got));
	CHECK(waiter == NULL);
	CHECK_EQ(import_ahead_status(e1), IMPORT_AHEAD_ANSWERED);
	CHECK(import_ahead_answer(a, 43, NULL, true, &waiter, &got));
	CHECK(waiter == &me);
	CHECK_EQ(import_ahead_status(e2), IMPORT_AHEAD_FAILED);
	CHECK(import_ahead_take(a, e2) == NULL);

	struct store_input_state *st = import_ahead_take(a, e1);
	CHECK(st && st->n_pages == 1);
	CHECK_STR(st->pages[0].keys[0], "k1");
	CHECK_EQ(import_ahead_status(e1), IMPORT_AHEAD_TAKEN);
	CHECK(import_ahead_take(a, e1) == NULL);
	store_input_state_free(st);

	/* a spent entry is not shared: the URL's next input asks anew */
	struct import_ahead_entry *e3 = import_ahead_ask(a, "http://p/a/1");
	CHECK(e3 && e3 != e1);
	struct import_ahead_stats s;
	import_ahead_get_stats(a, &s);
	CHECK_EQ(s.asked, 3);
	CHECK_EQ(s.shared, 1);
	CHECK_EQ(s.sends, 1);
	CHECK_EQ(s.alive, 3);

	import_ahead_drop(a, e1);
	import_ahead_drop(a, e1b);
	import_ahead_drop(a, e2);
	import_ahead_drop(a, e3);
	import_ahead_get_stats(a, &s);
	CHECK_EQ(s.alive, 0);
	import_ahead_free(a);
	CHECK_EQ(membudget_charged(), before);
}

/* A state held is charged its pages' kept fields too (up to 256 KiB a
 * page: import_pagefields.h), and released when taken. */
static void test_a_states_kept_fields_are_charged(void)
{
	size_t before = membudget_charged();
	struct import_ahead *a = import_ahead_new();
	struct import_ahead_entry *e = import_ahead_ask(a, "http://p/f/1");
	const char *urls[1];
	uint64_t tags[1], next = 0;
	CHECK_EQ(import_ahead_send(a, urls, tags, 1, &next), 1);
	size_t sent = membudget_charged();
	struct store_input_state *st = one_page("http://p/f/1", "k1");
	st->pages[0].fields = calloc(1, 100000);
	st->pages[0].fields_len = 100000;
	void *waiter = NULL;
	struct import_ahead_entry *got = NULL;
	CHECK(import_ahead_answer(a, tags[0], st, false, &waiter, &got));
	CHECK(membudget_charged() >= sent + 100000);
	st = import_ahead_take(a, e);
	CHECK(st != NULL);
	CHECK_EQ(membudget_charged(), sent);
	store_input_state_free(st);
	import_ahead_drop(a, e);
	import_ahead_free(a);
	CHECK_EQ(membudget_charged(), before);
}

/* Dropped while its read is out: kept until the answer, then freed with
 * it; dropped unsent or answered: freed at once; free() with reads out
 * and states held frees all (valgrind and ASan check). */
static void test_drop_and_free(void)
{
	size_t before = membudget_charged();
	struct import_ahead *a = import_ahead_new();
	struct import_ahead_entry *out = import_ahead_ask(a, "u/out");
	struct import_ahead_entry *held = import_ahead_ask(a, "u/held");
	const char *urls[2];
	uint64_t tags[2];
	uint64_t next = 0;
	CHECK_EQ(import_ahead_send(a, urls, tags, 2, &next), 2);
	struct import_ahead_entry *unsent = import_ahead_ask(a, "u/unsent");
	int me = 0;
	import_ahead_wait(out, &me);
	import_ahead_drop(a, out); /* its unit ended: the waiter goes too */
	struct import_ahead_stats s;
	import_ahead_get_stats(a, &s);
	CHECK_EQ(s.alive, 3);
	void *waiter = (void *)1;
	struct import_ahead_entry *got;
	CHECK(import_ahead_answer(a, tags[0], one_page("u/out", "k"), false, &waiter, &got));
	CHECK(waiter == NULL);
	import_ahead_get_stats(a, &s);
	CHECK_EQ(s.alive, 2);
	CHECK(import_ahead_answer(a, tags[1], one_page("u/held", "k"), false, &waiter, &got));
	import_ahead_drop(a, unsent);
	CHECK_EQ(import_ahead_unsent(a), 0);
	(void)held; /* still held, its state too: free() frees them */
	struct import_ahead_entry *late = import_ahead_ask(a, "u/late");
	CHECK_EQ(import_ahead_send(a, urls, tags, 2, &next), 1);
	(void)late; /* out when freed */
	import_ahead_free(a);
	import_ahead_free(NULL);
	CHECK_EQ(membudget_charged(), before);
}

/* An ask the store could not take goes back, first in line. */
static void test_unsend(void)
{
	struct import_ahead *a = import_ahead_new();
	struct import_ahead_entry *e1 = import_ahead_ask(a, "u/1");
	struct import_ahead_entry *e2 = import_ahead_ask(a, "u/2");
	const char *urls[2];
	uint64_t tags[2];
	uint64_t next = 0;
	CHECK_EQ(import_ahead_send(a, urls, tags, 2, &next), 2);
	import_ahead_unsend(a, tags[1]);
	import_ahead_unsend(a, tags[0]);
	CHECK_EQ(import_ahead_status(e1), IMPORT_AHEAD_UNSENT);
	CHECK_EQ(import_ahead_unsent(a), 2);
	void *waiter;
	struct import_ahead_entry *got;
	CHECK(!import_ahead_answer(a, tags[0], NULL, false, &waiter, &got));
	CHECK_EQ(import_ahead_send(a, urls, tags, 1, &next), 1);
	CHECK_STR(urls[0], "u/1");
	CHECK_EQ(import_ahead_send(a, urls, tags, 1, &next), 1);
	CHECK_STR(urls[0], "u/2");
	import_ahead_drop(a, e1);
	import_ahead_drop(a, e2);
	import_ahead_free(a);
}

/* At most IMPORT_AHEAD_MAX entries; more are refused (read at start). */
static void test_bound(void)
{
	struct import_ahead *a = import_ahead_new();
	struct import_ahead_entry **e = calloc(IMPORT_AHEAD_MAX + 1, sizeof *e);
	char url[32];
	for (unsigned i = 0; i < IMPORT_AHEAD_MAX; i++) {
		snprintf(url, sizeof url, "u/%u", i);
		e[i] = import_ahead_ask(a, url);
		CHECK(e[i] != NULL);
	}
	CHECK(import_ahead_ask(a, "u/over") == NULL);
	/* the same URL is still shared: no new entry */
	CHECK(import_ahead_ask(a, "u/7") == e[7]);
	import_ahead_drop(a, e[7]);
	struct import_ahead_stats s;
	import_ahead_get_stats(a, &s);
	CHECK_EQ(s.refused, 1);
	CHECK_EQ(s.alive, IMPORT_AHEAD_MAX);
	import_ahead_drop(a, e[0]);
	CHECK((e[IMPORT_AHEAD_MAX] = import_ahead_ask(a, "u/over")) != NULL);
	for (unsigned i = 1; i <= IMPORT_AHEAD_MAX; i++)
		import_ahead_drop(a, e[i]);
	import_ahead_get_stats(a, &s);
	CHECK_EQ(s.alive, 0);
	free(e);
	import_ahead_free(a);
}

static struct store_items *rows(const char *const *keys, size_t n)
{
	struct store_items *it = calloc(1, sizeof *it);
	it->items = calloc(n, sizeof *it->items);
	for (size_t i = 0; i < n; i++) {
		it->items[i].key = strdup(keys[i]);
		it->items[i].payload = strdup("{}");
		it->items[i].payload_len = 2;
	}
	it->n = n;
	return it;
}

static void *resumed[4];
static size_t n_resumed;
static void on_resume(void *arg, void *waiter)
{
	(void)arg;
	resumed[n_resumed++] = waiter;
}

/* Read-backs held back go as one read; its rows (a key missing) are split
 * among the entries in key order; the waiters are resumed; a failed read
 * leaves the entries FAILED. */
static void test_read_back_groups(void)
{
	size_t before = membudget_charged();
	struct import_ahead *a = import_ahead_new();
	struct import_ahead_entry *e1 = import_ahead_ask(a, "u/1");
	struct import_ahead_entry *e2 = import_ahead_ask(a, "u/2");
	const char *urls[2];
	uint64_t tags[2];
	uint64_t next = 0;
	CHECK_EQ(import_ahead_send(a, urls, tags, 2, &next), 2);
	void *waiter;
	struct import_ahead_entry *got;
	CHECK(import_ahead_answer(a, tags[0], one_page("u/1", "a"), false, &waiter, &got));
	CHECK(import_ahead_answer(a, tags[1], one_page("u/2", "b"), false, &waiter, &got));
	const char *k1[] = { "x1", "x2", "x3" }, *k2[] = { "y1", "y2" };
	CHECK_EQ(import_ahead_items_status(e1), IMPORT_AHEAD_NONE);
	/* each key with its entry's parent, when its read goes by parent */
	import_ahead_set_parent(e1, "p1");
	import_ahead_set_parent(e1, "other"); /* the first kept */
	import_ahead_set_parent(e2, "p2");
	import_ahead_items_want(a, e1, k1, 3, true);
	import_ahead_items_want(a, e2, k2, 2, false);
	CHECK_EQ(import_ahead_items_unsent(a), 2);
	CHECK_EQ(import_ahead_items_unsent_keys(a), 5);
	CHECK_EQ(import_ahead_items_held(a), 5);
	const char **keys = NULL;
	size_t n = 0;
	uint64_t tag = 0;
	const char *const *parents = NULL;
	CHECK(import_ahead_items_send(a, &keys, &parents, &n, &tag, &next));
	CHECK_EQ(n, 5);
	CHECK_STR(keys[3], "y1");
	CHECK(parents != NULL);
	if (parents) {
		CHECK_STR(parents[0], "p1");
		CHECK_STR(parents[2], "p1");
		CHECK(parents[3] == NULL); /* e2's not by parent */
	}
	free(keys);
	CHECK_EQ(import_ahead_items_unsent(a), 0);
	CHECK_EQ(import_ahead_items_status(e2), IMPORT_AHEAD_SENT);
	int w2 = 0;
	import_ahead_items_wait(e2, &w2);
	/* its states taken meanwhile: the rows still come */
	store_input_state_free(import_ahead_take(a, e1));
	store_input_state_free(import_ahead_take(a, e2));
	const char *found[] = { "x1", "x3", "y1", "y2" }; /* x2 is gone */
	n_resumed = 0;
	CHECK(!import_ahead_items_answer(a, tag + 1, NULL, false, on_resume, NULL));
	CHECK(import_ahead_items_answer(a, tag, rows(found, 4), false, on_resume, NULL));
	CHECK_EQ(n_resumed, 1);
	CHECK(resumed[0] == &w2);
	struct store_items *i1 = import_ahead_items_take(a, e1), *i2 = import_ahead_items_take(a, e2);
	CHECK(i1 && i1->n == 2);
	CHECK(i2 && i2->n == 2);
	if (i1 && i2) {
		CHECK_STR(i1->items[1].key, "x3");
		CHECK_STR(i2->items[0].key, "y1");
	}
	CHECK_EQ(import_ahead_items_status(e1), IMPORT_AHEAD_TAKEN);
	CHECK_EQ(import_ahead_items_held(a), 0);
	store_items_free(i1);
	store_items_free(i2);

	/* a failed read; and an entry dropped while its read is out */
	struct import_ahead_entry *e3 = import_ahead_ask(a, "u/3");
	CHECK_EQ(import_ahead_send(a, urls, tags, 2, &next), 1);
	CHECK(import_ahead_answer(a, tags[0], one_page("u/3", "c"), false, &waiter, &got));
	import_ahead_items_want(a, e3, k1, 3, false);
	CHECK(import_ahead_items_send(a, &keys, NULL, &n, &tag, &next));
	free(keys);
	import_ahead_drop(a, e3);
	n_resumed = 0;
	CHECK(import_ahead_items_answer(a, tag, NULL, true, on_resume, NULL));
	CHECK_EQ(n_resumed, 0);
	CHECK_EQ(import_ahead_items_held(a), 0);
	struct import_ahead_stats st;
	import_ahead_get_stats(a, &st);
	CHECK_EQ(st.alive, 2);
	CHECK_EQ(st.items_reads, 2);
	/* held back when freed: freed too */
	import_ahead_items_want(a, e1, k2, 2, false); /* TAKEN: not wanted again */
	CHECK_EQ(import_ahead_items_unsent(a), 0);
	import_ahead_drop(a, e1);
	import_ahead_drop(a, e2);
	struct import_ahead_entry *e4 = import_ahead_ask(a, "u/4");
	CHECK_EQ(import_ahead_send(a, urls, tags, 2, &next), 1);
	CHECK(import_ahead_answer(a, tags[0], one_page("u/4", "d"), false, &waiter, &got));
	import_ahead_items_want(a, e4, k2, 2, false);
	CHECK_EQ(import_ahead_items_unsent(a), 1);
	import_ahead_free(a);
	CHECK_EQ(membudget_charged(), before);
}

/* Read-backs put off for the bound come back in order, only while their
 * entry still holds its state and wants nothing; wanting one, dropping
 * it or taking its state takes it off the list. */
static void test_read_back_deferred(void)
{
	size_t before = membudget_charged();
	struct import_ahead *a = import_ahead_new();
	struct import_ahead_entry *e[4];
	const char *urls[4];
	uint64_t tags[4], next = 0;
	char u[8];
	for (int i = 0; i < 4; i++) {
		snprintf(u, sizeof u, "d/%d", i);
		e[i] = import_ahead_ask(a, u);
	}
	CHECK_EQ(import_ahead_send(a, urls, tags, 4, &next), 4);
	void *waiter;
	struct import_ahead_entry *got;
	CHECK(!import_ahead_items_deferred(a));
	/* not answered yet: not deferred */
	import_ahead_items_defer(a, e[0]);
	CHECK(!import_ahead_items_deferred(a));
	for (int i = 0; i < 4; i++)
		CHECK(import_ahead_answer(a, tags[i], one_page(urls[i], "k"), false, &waiter, &got));
	for (int i = 0; i < 4; i++)
		import_ahead_items_defer(a, e[i]);
	import_ahead_items_defer(a, e[0]); /* twice: once in the list */
	CHECK(import_ahead_items_deferred(a) == e[0]);
	const char *k[] = { "k" };
	import_ahead_items_want(a, e[0], k, 1, false); /* wanted: off the list */
	CHECK(import_ahead_items_deferred(a) == e[1]);
	store_input_state_free(import_ahead_take(a, e[1])); /* started: spent */
	CHECK(import_ahead_items_deferred(a) == e[2]);
	import_ahead_drop(a, e[2]); /* freed: off the list */
	CHECK(import_ahead_items_deferred(a) == e[3]);
	import_ahead_items_undefer(a, e[3]);
	CHECK(!import_ahead_items_deferred(a));
	import_ahead_items_defer(a, e[3]);
	import_ahead_free(a); /* frees it deferred */
	CHECK_EQ(membudget_charged(), before);
}

int main(void)
{
	RUN(test_ask_send_answer_take);
	RUN(test_a_states_kept_fields_are_charged);
	RUN(test_drop_and_free);
	RUN(test_unsend);
	RUN(test_bound);
	RUN(test_read_back_groups);
	RUN(test_read_back_deferred);
	return CHECK_DONE();
}
