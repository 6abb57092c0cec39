/* import_keys: the keys a dedupe stage's ended inputs leave for their
 * later parents.  Built twice: as is, and with IMPORT_KEYS_HASH giving
 * every URL the same hash (test_import_keys_collide), so that every
 * lookup meets a collision; what differs is checked under COLLIDE. */
#include "check.h"

#include "import_keys.h"
#include "membudget.h"

#ifdef IMPORT_KEYS_HASH
#define COLLIDE 1
#else
#define COLLIDE 0
#endif

static bool find(const struct import_keys *c, const char *url, const char *want, size_t n_want)
{
	char buf[IMPORT_KEYS_IMPLIED_MAX];
	const char *k = NULL;
	size_t len = 0, n = 0;
	if (!import_keys_find(c, url, buf, &k, &len, &n))
		return false;
	size_t want_len = 0;
	for (size_t i = 0; i < n_want; i++)
		want_len += strlen(want + want_len) + 1;
	return n == n_want && len == want_len && memcmp(k, want, len) == 0;
}

static bool by_url(const struct import_keys *c, const char *url)
{
	char buf[IMPORT_KEYS_IMPLIED_MAX];
	const char *k;
	size_t len, n;
	return !import_keys_find(c, url, buf, &k, &len, &n);
}

/* An athlete's key is its URL's last segment: nothing kept for it. */
static void test_implied(void)
{
	struct import_keys *c = import_keys_new(1 << 20);
	CHECK(c != NULL);
	/* nothing implied yet: a URL not kept goes by URL */
	CHECK(by_url(c, "http://x/athletes/7"));
	import_keys_ended(c, "http://x/athletes/123", true, "123", 4, 1);
	import_keys_ended(c, "http://x/athletes/Zo%C3%AB%2F2?limit=50", true, "Zo\xc3\xab/2", 7, 1);
	CHECK_EQ(import_keys_implied(c), 2);
	CHECK_EQ(import_keys_count(c), 0);
	CHECK_EQ(import_keys_bytes(c), 0);
	CHECK(find(c, "http://x/athletes/123", "123", 1));
	CHECK(find(c, "http://x/athletes/Zo%C3%AB%2F2?limit=50", "Zo\xc3\xab/2", 1));
	/* the place is fixed: any URL not kept is read there */
	CHECK(find(c, "http://x/athletes/99#f", "99", 1));
	CHECK(find(c, "/athletes/98", "98", 1));
	/* no segment there, or one that cannot be a key: by URL */
	CHECK(by_url(c, "http://x/athletes/"));
	CHECK(by_url(c, "http://x?id=5"));
	CHECK(by_url(c, "http://x/a/b%zz"));
	CHECK(by_url(c, "http://x/a/b%0"));
	CHECK(by_url(c, "http://x/a/b%00c"));
	char longurl[IMPORT_KEYS_IMPLIED_MAX + 32];
	snprintf(longurl, sizeof longurl, "http://x/a/%0*d", IMPORT_KEYS_IMPLIED_MAX, 1);
	CHECK(by_url(c, longurl));
	/* keys that are not the implied one are kept, by URL string */
	import_keys_ended(c, "http://x/athletes/5", true, "6", 2, 1);
	import_keys_ended(c, "http://x/athletes/8", true, "8\0x", 4, 2);
	import_keys_ended(c, "http://x/athletes/9", true, "", 0, 0);
	import_keys_ended(c, longurl, true, longurl + 11, strlen(longurl + 11) + 1, 1);
	CHECK_EQ(import_keys_count(c), 4);
	CHECK_EQ(import_keys_implied(c), 2);
	CHECK(find(c, "http://x/athletes/5", "6", 1));
	CHECK(find(c, "http://x/athletes/8", "8\0x", 2));
	CHECK(find(c, "http://x/athletes/9", "", 0));
	CHECK(find(c, longurl, longurl + 11, 1));
	CHECK(import_keys_bytes(c) > 0);
	CHECK_EQ(membudget_charged(), import_keys_bytes(c));
	import_keys_free(c);
	CHECK_EQ(membudget_charged(), 0);
	CHECK(!import_keys_find(NULL, "http://x/a", NULL, NULL, NULL, NULL));
}

/* The key may be a segment before the last: the first input whose key is
 * found fixes the place for all. */
static void test_place(void)
{
	struct import_keys *c = import_keys_new(1 << 20);
	import_keys_ended(c, "http://x/teams/t1/roster", true, "t1", 3, 1);
	CHECK_EQ(import_keys_implied(c), 1);
	/* "roster" is the last segment, not the place fixed: kept */
	import_keys_ended(c, "http://x/teams/t2/roster", true, "roster", 7, 1);
	CHECK_EQ(import_keys_count(c), 1);
	CHECK(find(c, "http://x/teams/t2/roster", "roster", 1));
	CHECK(find(c, "http://x/teams/t3/roster?page=1", "t3", 1));
	CHECK(by_url(c, "http://x/roster"));
	import_keys_free(c);

	/* beyond IMPORT_KEYS_SEGMENTS from the end: never implied */
	c = import_keys_new(1 << 20);
	import_keys_ended(c, "http://x/k1/a/b/c/d", true, "k1", 3, 1);
	CHECK_EQ(import_keys_implied(c), 0);
	CHECK_EQ(import_keys_count(c), 1);
	CHECK(by_url(c, "http://x/k2/a/b/c/d"));
	import_keys_free(c);
}

/* Inputs whose records go by URL (keys not known): remembered by hash;
 * under a collision an implied input goes by URL too, never with
 * another's keys. */
static void test_by_url(void)
{
	struct import_keys *c = import_keys_new(1 << 20);
	import_keys_ended(c, "http://x/athletes/1", true, "1", 2, 1);
	import_keys_ended(c, "http://x/athletes/2", false, NULL, 0, 0);
	import_keys_ended(c, "http://x/athletes/3", true, "3", 2, 1);
	CHECK_EQ(import_keys_by_url(c), 1);
	CHECK(by_url(c, "http://x/athletes/2"));
	/* a kept input found by its URL whatever the hash says */
	import_keys_ended(c, "http://x/athletes/4", true, "k4", 3, 1);
	import_keys_ended(c, "http://x/athletes/5", true, "k5", 3, 1);
	CHECK(find(c, "http://x/athletes/4", "k4", 1));
	CHECK(find(c, "http://x/athletes/5", "k5", 1));
	if (COLLIDE) {
		/* every URL has input 2's hash: all not kept go by URL */
		CHECK(by_url(c, "http://x/athletes/1"));
		CHECK(by_url(c, "http://x/athletes/3"));
	} else {
		CHECK(find(c, "http://x/athletes/1", "1", 1));
		CHECK(find(c, "http://x/athletes/3", "3", 1));
	}
	/* a second time changes nothing */
	import_keys_ended(c, "http://x/athletes/4", true, "other", 6, 1);
	CHECK(find(c, "http://x/athletes/4", "k4", 1));
	CHECK_EQ(import_keys_count(c), 2);
	CHECK_EQ(membudget_charged(), import_keys_bytes(c));
	import_keys_free(c);
	CHECK_EQ(membudget_charged(), 0);
}

/* The bound: kept inputs past it go into the by-URL set; past it for
 * that too (lost) nothing is implied any more, while what was kept
 * stays found. */
static void test_bound(void)
{
	struct import_keys *c = import_keys_new(4096);
	import_keys_ended(c, "http://x/athletes/1", true, "1", 2, 1);
	char url[64], key[16];
	size_t kept = 0;
	for (int i = 0; i < 200; i++) {
		snprintf(url, sizeof url, "http://x/athletes/c%d", i);
		snprintf(key, sizeof key, "k%d", i);
		size_t was = import_keys_count(c);
		import_keys_ended(c, url, true, key, strlen(key) + 1, 1);
		kept += import_keys_count(c) - was;
	}
	CHECK(kept > 10 && kept < 200);
	CHECK_EQ(import_keys_refused(c), 200 - kept);
	CHECK(import_keys_bytes(c) <= 4096 + 4096 / IMPORT_KEYS_BY_URL_SHARE);
	CHECK_EQ(membudget_charged(), import_keys_bytes(c));
	CHECK(find(c, "http://x/athletes/c0", "k0", 1));
	/* refused: by URL, never implied (its key is not c199) */
	CHECK(by_url(c, "http://x/athletes/c199"));
	/* the by-URL set has no room left in 4096 bytes: lost (under the
	 * collision all have one hash, which is there: by URL just the same) */
	CHECK(by_url(c, "http://x/athletes/1"));
	import_keys_ended(c, "http://x/athletes/2", true, "2", 2, 1);
	CHECK_EQ(import_keys_implied(c), COLLIDE ? 2 : 1);
	CHECK(by_url(c, "http://x/athletes/2"));
	import_keys_free(c);
	CHECK_EQ(membudget_charged(), 0);

	/* room for the set but not for an entry: refused, by URL */
	c = import_keys_new(0);
	import_keys_ended(c, "http://x/athletes/1", true, "1", 2, 1);
	import_keys_ended(c, "http://x/athletes/5", true, "k5", 3, 1);
	CHECK_EQ(import_keys_count(c), 0);
	CHECK_EQ(import_keys_refused(c), 1);
	CHECK(by_url(c, "http://x/athletes/5"));
	CHECK(by_url(c, "http://x/athletes/1"));
	import_keys_free(c);
	CHECK_EQ(membudget_charged(), 0);
}

int main(void)
{
	test_implied();
	test_place();
	test_by_url();
	test_bound();
	return check_failures ? EXIT_FAILURE : EXIT_SUCCESS;
}
