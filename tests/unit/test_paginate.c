/* Unit tests for paginate: where the next page is (a JSON pointer into the
 * body, resolved against the page; the Link header; none) and when following
 * stops (a cycle back to a page already fetched, max_pages).  Each test
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

/* The next page of PAGE by `rule`, or NULL; the class lands in *rc. */
static char *next_of(const struct paginate_rule *rule, const char *json, const char *link,
                     int *rc, char *err)
{
	char *next = (char *)"unset";
	*rc = paginate_next(rule, body(json), PAGE, link, &next, err);
	return next;
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
	jsondoc_free(doc);
	return CHECK_DONE();
}
