/* linkheader as a specification: which target a Link value's "next" is. */
#include "check.h"
#include "linkheader.h"

#include <stdio.h>
#include <string.h>

/* want NULL: no next link. */
static void check_link(const char *value, const char *want)
{
	const char *t = NULL;
	size_t n = 0;
	bool found = linkheader_next(value, strlen(value), &t, &n);
	if (found != (want != NULL) || (want && (n != strlen(want) || memcmp(t, want, n) != 0))) {
		fprintf(stderr, "  Link: %s gave '%.*s', expected '%s'\n", value, found ? (int)n : 6,
		        found ? t : "(none)", want ? want : "(none)");
		CHECK(!"the next link");
	}
}

static void test_link_header_finds_rel_next_among_several_links(void)
{
	check_link("<entries?page=2>; rel=\"next\"", "entries?page=2");
	check_link("<https://h/x?page=1>; rel=\"first\", <https://h/x?page=3>; rel=\"next\"",
	           "https://h/x?page=3");
	check_link("</p/1>; rel=prev, </p/3>; rel=next", "/p/3");
	check_link("</p/9>; rel=\"last next\"; title=\"a, b; c\"", "/p/9");
	check_link("</p/1>; title=\"rel=next\", </p/2>; REL=\"Next\"", "/p/2");
	check_link("<a>;rel=\"nextish\", <b> ; rel = \"prev\"", NULL);
	check_link("</p/1>; rel=\"prev\"", NULL);
	check_link("garbage", NULL);
	check_link("<unterminated; rel=next", NULL);
	check_link("", NULL);
}

static void test_first_link_listing_next_wins(void)
{
	check_link("</a>; rel=next, </b>; rel=next", "/a");
	check_link("</a>; rel=\"prev next\", </b>; rel=next", "/a");
}

static void test_quoted_values_may_hold_commas_semicolons_and_escapes(void)
{
	check_link("</a>; title=\"x, <y>; rel=next\", </b>; rel=next", "/b");
	check_link("</a>; title=\"say \\\"hi\\\", rel=next\"; rel=next", "/a");
	check_link("</a>; title=\"unterminated, </b>; rel=next", NULL);
}

static void test_relation_types_are_space_separated_and_case_insensitive(void)
{
	check_link("</a>; rel=\"  NEXT  \"", "/a");
	check_link("</a>; rel=\"prev\tnext\"", "/a");
	check_link("</a>; rel=\"next-page\"", NULL);
	check_link("</a>; rel=nexT", "/a");
}

static void test_rel_without_value_or_junk_skips_only_that_link(void)
{
	check_link("</a>; rel, </b>; rel=next", "/b");
	check_link("</a> junk; rel=next, </b>; rel=next", "/b");
	check_link("</a>; ;; @ rel=prev, </b>; rel=next", "/b");
	check_link("   ,, </a>; rel=next", "/a");
}

static void test_a_value_not_starting_with_a_target_ends_the_search(void)
{
	check_link("x, </a>; rel=next", NULL);
	check_link("</a>; rel=prev, x</b>; rel=next", NULL);
}

static void test_target_is_as_sent_and_may_be_empty(void)
{
	check_link("<>; rel=next", "");
	check_link("<../p?page=2&x=%2F>; rel=next", "../p?page=2&x=%2F");
}

static void test_only_the_given_length_is_read(void)
{
	const char *value = "</a>; rel=prev, </b>; rel=next";
	const char *t = NULL;
	size_t n = 0;
	CHECK(!linkheader_next(value, strlen("</a>; rel=prev, </b>; rel=ne"), &t, &n));
	CHECK(linkheader_next(value, strlen(value), &t, &n));
	CHECK_EQ(n, 2);
	CHECK(t == value + 17);
}

int main(void)
{
	RUN(test_link_header_finds_rel_next_among_several_links);
	RUN(test_first_link_listing_next_wins);
	RUN(test_quoted_values_may_hold_commas_semicolons_and_escapes);
	RUN(test_relation_types_are_space_separated_and_case_insensitive);
	RUN(test_rel_without_value_or_junk_skips_only_that_link);
	RUN(test_a_value_not_starting_with_a_target_ends_the_search);
	RUN(test_target_is_as_sent_and_may_be_empty);
	RUN(test_only_the_given_length_is_read);
	return CHECK_DONE();
}
