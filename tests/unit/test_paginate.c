/* Unit tests for paginate: where the next page is (a JSON pointer into the
 * body, resolved against the page; the Link header; an offset, a page
 * number, a cursor in the body or a header; none), each style's end
 * signals and contradictions, and when following stops (a cycle back to a
 * page already fetched, the same items again, max_pages).  Each test
 * reads one page and asserts the exact URL or error class. */
#include "check.h"
#include "paginate.h"

#include <errno.h>

#define PAGE "https://api.example.com/v1/races?page=1"

static struct jsondoc *doc;

static const struct jsondoc *body(const char *json)
{
	char err[ERR_MAX];
	if (jsondoc_parse(doc, json, strlen(json), 0, err) < 0) {
		fprintf(stderr, "bad test JSON %s: %s\n", json, err);
		exit(EXIT_FAILURE);
	}
	return doc;
}

static const struct paginate_rule by_pointer = {
	.next = NEXT_POINTER, .pointer = "/links/next", .stage = "races", .max_pages = 1000,
};

/* The next page of url (fetched at base) by `rule`, with Link target link
 * and cursor header header, or NULL; the class lands in *rc.  Each call
 * is a new input's first page. */
static char *next_at(const struct paginate_rule *rule, const char *url, const char *json,
                     const char *link, const char *header, int *rc, char *err)
{
	struct paginate pg = {0};
	struct paginate_page page = {.url = url, .base_url = url, .doc = body(json),
	                             .link_next = link, .header = header};
	char *next = (char *)"unset";
	*rc = paginate_next(&pg, rule, &page, &next, err);
	return next;
}

static char *next_of(const struct paginate_rule *rule, const char *json, const char *link,
                     int *rc, char *err)
{
	return next_at(rule, PAGE, json, link, NULL, rc, err);
}

static void test_next_pointer_link_is_resolved_against_the_page(void)
{
	char err[ERR_MAX];
	int rc;
	char *n = next_of(&by_pointer, "{\"links\":{\"next\":\"?page=2\"}}", NULL, &rc, err);
	CHECK_EQ(rc, 0);
	CHECK_STR(n, "https://api.example.com/v1/races?page=2");
	free(n);
	n = next_of(&by_pointer, "{\"links\":{\"next\":\"../v2/races?page=2\"}}", NULL, &rc, err);
	CHECK_STR(n, "https://api.example.com/v2/races?page=2");
	free(n);
	n = next_of(&by_pointer, "{\"links\":{\"next\":\"https://cdn.example.net/p/2\"}}", NULL, &rc, err);
	CHECK_STR(n, "https://cdn.example.net/p/2");
	free(n);
}

static void test_next_pointer_absent_null_or_empty_ends_the_list(void)
{
	char err[ERR_MAX];
	int rc;
	CHECK(next_of(&by_pointer, "{\"links\":{}}", NULL, &rc, err) == NULL);
	CHECK_EQ(rc, 0);
	CHECK(next_of(&by_pointer, "{\"links\":{\"next\":null}}", NULL, &rc, err) == NULL);
	CHECK_EQ(rc, 0);
	CHECK(next_of(&by_pointer, "{\"links\":{\"next\":\"\"}}", NULL, &rc, err) == NULL);
	CHECK_EQ(rc, 0);
	/* the body decides, not the Link header */
	CHECK(next_of(&by_pointer, "[]", "https://api.example.com/v1/races?page=9", &rc, err) == NULL);
	CHECK_EQ(rc, 0);
}

static void test_next_pointer_not_a_string_is_an_error_naming_the_setting(void)
{
	char err[ERR_MAX];
	int rc;
	CHECK(next_of(&by_pointer, "{\"links\":{\"next\":2}}", NULL, &rc, err) == NULL);
	CHECK_EQ(rc, -EINVAL);
	CHECK_STR(err, "the next link at '/links/next' is not a string or null "
	               "(setting 'next' of [stage races])");
	CHECK(next_of(&by_pointer, "{\"links\":{\"next\":\"http://[::1\"}}", NULL, &rc, err) == NULL);
	CHECK_EQ(rc, -EINVAL);
}

static void test_link_header_is_followed_as_given(void)
{
	struct paginate_rule rule = {.next = NEXT_LINK, .stage = "races", .max_pages = 1000};
	char err[ERR_MAX];
	int rc;
	char *n = next_of(&rule, "{\"links\":{\"next\":\"?page=7\"}}",
	                  "https://api.example.com/v1/races?page=2", &rc, err);
	CHECK_EQ(rc, 0);
	CHECK_STR(n, "https://api.example.com/v1/races?page=2");
	free(n);
	CHECK(next_of(&rule, "{\"links\":{\"next\":\"?page=7\"}}", NULL, &rc, err) == NULL);
	CHECK_EQ(rc, 0);
}

static void test_next_none_is_one_page(void)
{
	struct paginate_rule rule = {.next = NEXT_NONE, .stage = "races", .max_pages = 1000};
	char err[ERR_MAX];
	int rc;
	CHECK(next_of(&rule, "{\"links\":{\"next\":\"?page=2\"}}",
	              "https://api.example.com/v1/races?page=2", &rc, err) == NULL);
	CHECK_EQ(rc, 0);
}

static int follow(struct paginate *pg, const char *from, const char *to, char *err)
{
	return paginate_follow(pg, &by_pointer, from, to, err);
}

static void test_a_link_back_to_the_page_itself_is_a_cycle(void)
{
	struct paginate pg = {0};
	char err[ERR_MAX];
	CHECK_EQ(follow(&pg, "p1", "p1", err), -ELOOP);
	CHECK_STR(err, "the next link leads back to p1, a page already fetched "
	               "(a pagination cycle; setting 'next' of [stage races])");
}

/* p1 -> p2 -> p1: the last page links back to the first, which is caught
 * before the first page is fetched a second time. */
static void test_a_link_back_to_the_first_page_is_a_cycle_at_once(void)
{
	struct paginate pg = {0};
	char err[ERR_MAX];
	CHECK_EQ(follow(&pg, "p1", "p2", err), 0);
	CHECK_EQ(follow(&pg, "p2", "p3", err), 0);
	CHECK_EQ(follow(&pg, "p3", "p4", err), 0);
	CHECK_EQ(follow(&pg, "p4", "p1", err), -ELOOP);
	CHECK_STR(err, "the next link leads back to p1, a page already fetched "
	               "(a pagination cycle; setting 'next' of [stage races])");
	CHECK_EQ(pg.pages, 3);
}

/* p0 -> p1 -> p2 -> p3 -> p1 -> p2 -> p3: caught at the 6th link, within twice
 * the cycle's length (Brent's mark moves to p1 after 1 link, to p3 after 3). */
static void test_a_cycle_back_to_a_later_page_is_caught_within_twice_its_length(void)
{
	struct paginate pg = {0};
	const char *walk[] = {"p0", "p1", "p2", "p3", "p1", "p2"};
	char err[ERR_MAX];
	for (size_t i = 0; i + 1 < sizeof walk / sizeof *walk; i++)
		CHECK_EQ(follow(&pg, walk[i], walk[i + 1], err), 0);
	CHECK_EQ(pg.pages, 5);
	CHECK_EQ(follow(&pg, "p2", "p3", err), -ELOOP);
}

/* max_pages = 3: the first page and two next links; the third link is an
 * error naming the setting. */
static void test_an_input_spans_at_most_max_pages_pages(void)
{
	struct paginate_rule rule = by_pointer;
	struct paginate pg = {0};
	char err[ERR_MAX], from[32], to[32];
	rule.max_pages = 3;
	for (int i = 0; i < 2; i++) {
		snprintf(from, sizeof from, "p%d", i);
		snprintf(to, sizeof to, "p%d", i + 1);
		CHECK_EQ(paginate_follow(&pg, &rule, from, to, err), 0);
	}
	CHECK_EQ(paginate_follow(&pg, &rule, "p2", "p3", err), -ERANGE);
	CHECK_STR(err, "3 pages fetched for one input, the limit; its next link is not followed "
	               "(setting 'max_pages' of [stage races])");

	/* max_pages = 1: the first page only */
	struct paginate one = {0};
	rule.max_pages = 1;
	CHECK_EQ(paginate_follow(&one, &rule, "p0", "p1", err), -ERANGE);

	/* a long walk without a cycle is never taken for one */
	struct paginate long_walk = {0};
	int refused = 0;
	for (int i = 0; i < 999; i++) {
		snprintf(from, sizeof from, "https://x/p%d", i);
		snprintf(to, sizeof to, "https://x/p%d", i + 1);
		refused += paginate_follow(&long_walk, &by_pointer, from, to, err) != 0;
	}
	CHECK_EQ(refused, 0);
	CHECK_EQ(long_walk.pages, 999);
	CHECK_EQ(paginate_follow(&long_walk, &by_pointer, "https://x/p999", "https://x/p1000", err),
	         -ERANGE);
}


/* ---- offset ---- */

static const struct paginate_rule by_offset = {
	.next = NEXT_OFFSET, .items = "/data", .param = "offset", .limit_param = "limit", .limit = 3,
	.stage = "races", .max_pages = 1000,
};

#define OFFS "https://api.example.com/v1/races?since=2024-01-01&limit=3"

static void test_offset_first_page_sets_limit_and_keeps_the_rest(void)
{
	char err[ERR_MAX], *u;
	CHECK_EQ(paginate_first(&by_offset, "/races?since=x&limit=50#f", &u, err), 0);
	CHECK_STR(u, "/races?since=x&limit=3#f");
	free(u);
	CHECK_EQ(paginate_first(&by_offset, "/races", &u, err), 0);
	CHECK_STR(u, "/races?limit=3");
	free(u);
	CHECK_EQ(paginate_first(&by_pointer, "/races?limit=50", &u, err), 0);
	CHECK_STR(u, "/races?limit=50");
	free(u);
}

static void test_offset_next_is_this_offset_plus_the_items(void)
{
	char err[ERR_MAX];
	int rc;
	char *n = next_at(&by_offset, OFFS, "{\"data\":[1,2,3]}", NULL, NULL, &rc, err);
	CHECK_EQ(rc, 0);
	CHECK_STR(n, OFFS "&offset=3");
	free(n);
	n = next_at(&by_offset, OFFS "&offset=3", "{\"data\":[4,5,6]}", NULL, NULL, &rc, err);
	CHECK_STR(n, OFFS "&offset=6");
	free(n);
	/* a provider that caps the page below limit: the next page starts where
	 * this one ended, when a total says there is more */
	struct paginate_rule r = by_offset;
	r.total = "/total";
	r.limit = 10;
	n = next_at(&r, OFFS "&offset=6", "{\"data\":[7,8,9],\"total\":20}", NULL, NULL, &rc, err);
	CHECK_STR(n, OFFS "&offset=9");
	free(n);
}

static void test_offset_ends_on_an_empty_or_short_page(void)
{
	char err[ERR_MAX];
	int rc;
	CHECK(next_at(&by_offset, OFFS "&offset=6", "{\"data\":[]}", NULL, NULL, &rc, err) == NULL);
	CHECK_EQ(rc, 0);
	CHECK(next_at(&by_offset, OFFS "&offset=6", "{\"data\":[7,8]}", NULL, NULL, &rc, err) == NULL);
	CHECK_EQ(rc, 0);
}

static void test_offset_ends_at_the_total_or_has_more_false(void)
{
	char err[ERR_MAX];
	int rc;
	struct paginate_rule r = by_offset;
	r.total = "/meta/total";
	CHECK(next_at(&r, OFFS "&offset=3", "{\"data\":[4,5,6],\"meta\":{\"total\":6}}", NULL, NULL, &rc,
	              err) == NULL);
	CHECK_EQ(rc, 0);
	/* a total as a string of digits is read too */
	char *n = next_at(&r, OFFS, "{\"data\":[1,2,3],\"meta\":{\"total\":\"7\"}}", NULL, NULL, &rc, err);
	CHECK_STR(n, OFFS "&offset=3");
	free(n);
	r = by_offset;
	r.has_more = "/has_more";
	CHECK(next_at(&r, OFFS, "{\"data\":[1,2,3],\"has_more\":false}", NULL, NULL, &rc, err) == NULL);
	CHECK_EQ(rc, 0);
	/* with has_more, a short page is not the end */
	n = next_at(&r, OFFS, "{\"data\":[1],\"has_more\":true}", NULL, NULL, &rc, err);
	CHECK_STR(n, OFFS "&offset=1");
	free(n);
}

static void test_offset_empty_page_before_the_total_is_an_error(void)
{
	char err[ERR_MAX];
	int rc;
	struct paginate_rule r = by_offset;
	r.total = "/total";
	CHECK(next_at(&r, OFFS "&offset=6", "{\"data\":[],\"total\":12}", NULL, NULL, &rc, err) == NULL);
	CHECK_EQ(rc, -EPROTO);
	CHECK_STR(err, "the page at offset 6 is empty, but the total at '/total' is 12: the provider's "
	               "total is larger than its data (setting 'total' of [stage races])");
	CHECK(next_at(&r, OFFS, "{\"data\":[1,2,3],\"total\":-1}", NULL, NULL, &rc, err) == NULL);
	CHECK_EQ(rc, -EINVAL);
	CHECK_STR(err, "the page has no whole number at '/total' (setting 'total' of [stage races])");
	CHECK(next_at(&r, OFFS, "{\"data\":[1,2,3]}", NULL, NULL, &rc, err) == NULL);
	CHECK_EQ(rc, -EINVAL);
	r = by_offset;
	r.has_more = "/more";
	CHECK(next_at(&r, OFFS, "{\"data\":[],\"more\":true}", NULL, NULL, &rc, err) == NULL);
	CHECK_EQ(rc, -EPROTO);
	CHECK(next_at(&r, OFFS, "{\"data\":[1,2,3],\"more\":1}", NULL, NULL, &rc, err) == NULL);
	CHECK_EQ(rc, -EINVAL);
	CHECK_STR(err, "the page has no true or false at '/more' (setting 'has_more' of [stage races])");
	CHECK(next_at(&by_offset, OFFS "&offset=x1", "{\"data\":[1,2,3]}", NULL, NULL, &rc, err) == NULL);
	CHECK_EQ(rc, -EINVAL);
}

/* ---- page_number ---- */

static const struct paginate_rule by_page = {
	.next = NEXT_PAGE_NUMBER, .items = "/data", .param = "page", .first_page = 1,
	.stage = "races", .max_pages = 1000,
};

#define PAGES "https://api.example.com/v1/races?per_page=2"

static void test_page_number_counts_from_first_page(void)
{
	char err[ERR_MAX];
	int rc;
	char *n = next_at(&by_page, PAGES, "{\"data\":[1,2]}", NULL, NULL, &rc, err);
	CHECK_EQ(rc, 0);
	CHECK_STR(n, PAGES "&page=2");
	free(n);
	n = next_at(&by_page, PAGES "&page=2", "{\"data\":[1]}", NULL, NULL, &rc, err);
	CHECK_STR(n, PAGES "&page=3"); /* no page size: a short page is not the end */
	free(n);
	struct paginate_rule r = by_page;
	r.first_page = 0;
	n = next_at(&r, PAGES, "{\"data\":[1,2]}", NULL, NULL, &rc, err);
	CHECK_STR(n, PAGES "&page=1");
	free(n);
}

static void test_page_number_ends_empty_last_of_total_or_has_more_false(void)
{
	char err[ERR_MAX];
	int rc;
	CHECK(next_at(&by_page, PAGES "&page=4", "{\"data\":[]}", NULL, NULL, &rc, err) == NULL);
	CHECK_EQ(rc, 0);
	struct paginate_rule r = by_page;
	r.total = "/pages";
	CHECK(next_at(&r, PAGES "&page=3", "{\"data\":[1],\"pages\":3}", NULL, NULL, &rc, err) == NULL);
	CHECK_EQ(rc, 0);
	char *n = next_at(&r, PAGES "&page=2", "{\"data\":[1,2],\"pages\":3}", NULL, NULL, &rc, err);
	CHECK_STR(n, PAGES "&page=3");
	free(n);
	r.first_page = 0; /* pages 0, 1, 2 */
	CHECK(next_at(&r, PAGES "&page=2", "{\"data\":[1],\"pages\":3}", NULL, NULL, &rc, err) == NULL);
	CHECK_EQ(rc, 0);
	/* no data at all: page 0 of 0 pages is empty, and that is right */
	CHECK(next_at(&r, PAGES, "{\"data\":[],\"pages\":0}", NULL, NULL, &rc, err) == NULL);
	CHECK_EQ(rc, 0);
	r = by_page;
	r.has_more = "/more";
	CHECK(next_at(&r, PAGES, "{\"data\":[1,2],\"more\":false}", NULL, NULL, &rc, err) == NULL);
	CHECK_EQ(rc, 0);
}

static void test_page_number_empty_page_before_the_last_is_an_error(void)
{
	char err[ERR_MAX];
	int rc;
	struct paginate_rule r = by_page;
	r.total = "/pages";
	CHECK(next_at(&r, PAGES "&page=3", "{\"data\":[],\"pages\":5}", NULL, NULL, &rc, err) == NULL);
	CHECK_EQ(rc, -EPROTO);
	CHECK_STR(err, "page 3 is empty, but the total of pages at '/pages' is 5: the provider's total "
	               "is larger than its data (setting 'total_pages' of [stage races])");
}

/* ---- cursor, header_cursor ---- */

static const struct paginate_rule by_cursor = {
	.next = NEXT_CURSOR, .items = "/data", .param = "cursor", .cursor = "/meta/next",
	.stage = "races", .max_pages = 1000,
};

#define CURS "https://api.example.com/v1/races?limit=2"

static void test_cursor_is_sent_back_percent_encoded(void)
{
	char err[ERR_MAX];
	int rc;
	char *n = next_at(&by_cursor, CURS, "{\"data\":[1],\"meta\":{\"next\":\"a+b/c=\"}}", NULL, NULL, &rc, err);
	CHECK_EQ(rc, 0);
	CHECK_STR(n, CURS "&cursor=a%2Bb%2Fc%3D");
	free(n);
	/* the next cursor replaces this page's */
	n = next_at(&by_cursor, CURS "&cursor=a%2Bb%2Fc%3D&x=1", "{\"data\":[1],\"meta\":{\"next\":42}}", NULL,
	            NULL, &rc, err);
	CHECK_STR(n, CURS "&cursor=42&x=1");
	free(n);
	/* an empty page with a cursor goes on: the cursor decides */
	n = next_at(&by_cursor, CURS, "{\"data\":[],\"meta\":{\"next\":\"z\"}}", NULL, NULL, &rc, err);
	CHECK_STR(n, CURS "&cursor=z");
	free(n);
}

static void test_cursor_missing_null_or_empty_ends_the_list(void)
{
	char err[ERR_MAX];
	int rc;
	const char *ends[] = {"{\"data\":[1],\"meta\":{}}", "{\"data\":[1],\"meta\":{\"next\":null}}",
	                      "{\"data\":[1],\"meta\":{\"next\":\"\"}}", "{\"data\":[1]}"};
	for (size_t i = 0; i < sizeof ends / sizeof *ends; i++) {
		CHECK(next_at(&by_cursor, CURS, ends[i], NULL, NULL, &rc, err) == NULL);
		CHECK_EQ(rc, 0);
	}
	struct paginate_rule r = by_cursor;
	r.has_more = "/more";
	CHECK(next_at(&r, CURS, "{\"data\":[1],\"meta\":{\"next\":\"q\"},\"more\":false}", NULL, NULL, &rc,
	              err) == NULL);
	CHECK_EQ(rc, 0);
	CHECK(next_at(&r, CURS, "{\"data\":[1],\"meta\":{},\"more\":true}", NULL, NULL, &rc, err) == NULL);
	CHECK_EQ(rc, -EPROTO);
	CHECK_STR(err, "'/more' is true, but the page has no cursor in the body at '/meta/next' "
	               "(setting 'has_more' of [stage races])");
}

static void test_cursor_not_a_scalar_or_too_long_is_an_error(void)
{
	char err[ERR_MAX];
	int rc;
	CHECK(next_at(&by_cursor, CURS, "{\"data\":[1],\"meta\":{\"next\":{}}}", NULL, NULL, &rc, err) == NULL);
	CHECK_EQ(rc, -EINVAL);
	CHECK_STR(err, "the cursor at '/meta/next' is not a string, a number or null "
	               "(setting 'cursor_pointer' of [stage races])");
	static char json[PAGINATE_CURSOR_MAX + 64];
	int w = snprintf(json, sizeof json, "{\"data\":[1],\"meta\":{\"next\":\"");
	memset(json + w, 'c', PAGINATE_CURSOR_MAX + 1);
	strcpy(json + w + PAGINATE_CURSOR_MAX + 1, "\"}}");
	CHECK(next_at(&by_cursor, CURS, json, NULL, NULL, &rc, err) == NULL);
	CHECK_EQ(rc, -EINVAL);
}

static void test_header_cursor_comes_from_the_header(void)
{
	struct paginate_rule r = {.next = NEXT_HEADER_CURSOR, .items = "/data", .param = "after",
	                          .header = "X-Next-Cursor", .stage = "races", .max_pages = 1000};
	char err[ERR_MAX];
	int rc;
	char *n = next_at(&r, CURS, "{\"data\":[1],\"next\":\"no\"}", NULL, "c 2", &rc, err);
	CHECK_EQ(rc, 0);
	CHECK_STR(n, CURS "&after=c%202");
	free(n);
	CHECK(next_at(&r, CURS, "{\"data\":[1]}", NULL, NULL, &rc, err) == NULL);
	CHECK_EQ(rc, 0);
	CHECK(next_at(&r, CURS, "{\"data\":[1]}", NULL, "", &rc, err) == NULL);
	CHECK_EQ(rc, 0);
}

/* A cursor served again leads back to its page's URL: the cycle check
 * catches it (cursor 2 -> 3 -> 2). */
static void test_a_repeated_cursor_is_a_cycle(void)
{
	struct paginate pg = {0};
	char err[ERR_MAX], *n;
	const char *pages[] = {"{\"data\":[1],\"meta\":{\"next\":\"c2\"}}", "{\"data\":[2],\"meta\":{\"next\":\"c3\"}}",
	                       "{\"data\":[3],\"meta\":{\"next\":\"c2\"}}"};
	char *url = strdup(CURS);
	int rc = 0;
	for (size_t i = 0; i < 3 && rc == 0; i++) {
		struct paginate_page page = {.url = url, .base_url = url, .doc = body(pages[i])};
		CHECK_EQ(paginate_next(&pg, &by_cursor, &page, &n, err), 0);
		rc = paginate_follow(&pg, &by_cursor, url, n, err);
		free(url);
		url = n;
	}
	free(url);
	CHECK_EQ(rc, -ELOOP);
	CHECK_STR(err, "the next link leads back to " CURS "&cursor=c2, a page already fetched "
	               "(a pagination cycle; setting 'cursor_pointer' of [stage races])");
}

/* A provider that ignores the page parameter serves the same items under
 * every page number: caught at the second page, not after max_pages. */
static void test_the_same_items_again_are_an_error(void)
{
	struct paginate pg = {0};
	char err[ERR_MAX], *n;
	struct paginate_page page = {.url = PAGES, .base_url = PAGES, .doc = body("{\"data\":[1,2]}")};
	CHECK_EQ(paginate_next(&pg, &by_page, &page, &n, err), 0);
	page.url = n;
	CHECK_EQ(paginate_next(&pg, &by_page, &page, &n, err), -ELOOP);
	CHECK(n == NULL);
	CHECK_STR(err, "the page " PAGES "&page=2 serves the same 2 items as the page before it: the provider "
	               "ignores the paging parameter or repeats its last page (setting 'page_param' of "
	               "[stage races])");
	free((char *)page.url);
	/* empty pages are not compared (an endless list of them ends by max_pages) */
	struct paginate pg2 = {0};
	struct paginate_page empty = {.url = PAGE, .base_url = PAGE, .doc = body("{\"data\":[],\"n\":\"?p=2\"}")};
	struct paginate_rule r = by_pointer;
	r.pointer = "/n";
	r.items = "/data";
	CHECK_EQ(paginate_next(&pg2, &r, &empty, &n, err), 0);
	free(n);
	CHECK_EQ(paginate_next(&pg2, &r, &empty, &n, err), 0);
	free(n);
}

int main(void)
{
	doc = jsondoc_new();
	RUN(test_next_pointer_link_is_resolved_against_the_page);
	RUN(test_next_pointer_absent_null_or_empty_ends_the_list);
	RUN(test_next_pointer_not_a_string_is_an_error_naming_the_setting);
	RUN(test_link_header_is_followed_as_given);
	RUN(test_next_none_is_one_page);
	RUN(test_a_link_back_to_the_page_itself_is_a_cycle);
	RUN(test_a_link_back_to_the_first_page_is_a_cycle_at_once);
	RUN(test_a_cycle_back_to_a_later_page_is_caught_within_twice_its_length);
	RUN(test_an_input_spans_at_most_max_pages_pages);
	RUN(test_offset_first_page_sets_limit_and_keeps_the_rest);
	RUN(test_offset_next_is_this_offset_plus_the_items);
	RUN(test_offset_ends_on_an_empty_or_short_page);
	RUN(test_offset_ends_at_the_total_or_has_more_false);
	RUN(test_offset_empty_page_before_the_total_is_an_error);
	RUN(test_page_number_counts_from_first_page);
	RUN(test_page_number_ends_empty_last_of_total_or_has_more_false);
	RUN(test_page_number_empty_page_before_the_last_is_an_error);
	RUN(test_cursor_is_sent_back_percent_encoded);
	RUN(test_cursor_missing_null_or_empty_ends_the_list);
	RUN(test_cursor_not_a_scalar_or_too_long_is_an_error);
	RUN(test_header_cursor_comes_from_the_header);
	RUN(test_a_repeated_cursor_is_a_cycle);
	RUN(test_the_same_items_again_are_an_error);
	jsondoc_free(doc);
	return CHECK_DONE();
}
