/* Unit tests for config_lex: what one line of raced.conf is, once cleaned,
 * before inih sees it.  Each test states a rule of raced.conf(5)'s syntax
 * as a table of lines and their exact outcome: kind and cleaned text, the
 * header's kind and name, or the message. */
#include "check.h"
#include "config_lex.h"

#include <stdbool.h>

struct lex_case {
	const char *line;
	bool first;                 /* the file's first line */
	int rc;
	enum config_line_kind kind; /* when rc == 0 */
	const char *want;           /* rc == 0: the cleaned text; -1: the message */
	const char *section, *name; /* for a header */
};

static void check_cases(const struct lex_case *cases, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const struct lex_case *c = &cases[i];
		char buf[256], msg[ERR_MAX] = "";
		struct config_line cl;
		snprintf(buf, sizeof buf, "%s", c->line);
		int rc = config_lex_line(buf, c->first, &cl, msg, sizeof msg);
		CHECK_EQ(rc, c->rc);
		if (rc < 0) {
			CHECK_STR(msg, c->want);
			continue;
		}
		CHECK_EQ(cl.kind, c->kind);
		CHECK_STR(cl.text, c->want);
		CHECK_EQ(cl.len, strlen(c->want));
		if (c->section) {
			CHECK_STR(cl.section, c->section);
			CHECK_STR(cl.name, c->name);
		}
	}
}

#define N(a) (sizeof a / sizeof a[0])

static void test_blanks_and_comments_leave_a_blank_line(void)
{
	static const struct lex_case cases[] = {
		{"", false, 0, CONFIG_LINE_BLANK, "", NULL, NULL},
		{"  \t\r\n", false, 0, CONFIG_LINE_BLANK, "", NULL, NULL},
		{"; comment\n", false, 0, CONFIG_LINE_BLANK, "", NULL, NULL},
		{"   # indented comment", false, 0, CONFIG_LINE_BLANK, "", NULL, NULL},
	};
	check_cases(cases, N(cases));
}

static void test_a_comment_starts_only_at_the_start_or_after_a_blank(void)
{
	static const struct lex_case cases[] = {
		{"  base_url = https://x/v1#frag ; main API\r\n", false, 0, CONFIG_LINE_KEY, "base_url = https://x/v1#frag",
		 NULL, NULL},
		{"url = /races;v=1\t# after a tab\n", false, 0, CONFIG_LINE_KEY, "url = /races;v=1", NULL, NULL},
	};
	check_cases(cases, N(cases));
}

static void test_a_byte_order_mark_is_skipped_on_the_first_line_only(void)
{
	static const struct lex_case cases[] = {
		{"\xEF\xBB\xBF[daemon]\n", true, 0, CONFIG_LINE_SECTION, "[daemon]", "daemon", ""},
		{"\xEF\xBB\xBF[daemon]\n", false, -1, 0,
		 "expected 'key = value' or a [section] header, found '\xEF\xBB\xBF[daemon]'", NULL, NULL},
	};
	check_cases(cases, N(cases));
}

static void test_a_header_splits_into_kind_and_name(void)
{
	static const struct lex_case cases[] = {
		{"[ stage \t races  ] ; the root\n", false, 0, CONFIG_LINE_SECTION, "[ stage \t races  ]", "stage", "races"},
		{"[database]", false, 0, CONFIG_LINE_SECTION, "[database]", "database", ""},
		{"[stage races\n", false, -1, 0, "section header '[stage races' has no closing ']'", NULL, NULL},
		{"[", false, -1, 0, "section header '[' has no closing ']'", NULL, NULL},
	};
	check_cases(cases, N(cases));
}

static void test_a_key_line_needs_an_equals_sign_after_a_name(void)
{
	static const struct lex_case cases[] = {
		{"key =\n", false, 0, CONFIG_LINE_KEY, "key =", NULL, NULL},
		{"max_clients\n", false, -1, 0, "expected 'key = value' or a [section] header, found 'max_clients'", NULL,
		 NULL},
		{"max_clients: 3 = x\n", false, -1, 0,
		 "expected 'key = value' or a [section] header, found 'max_clients: 3 = x'", NULL, NULL},
		{"  = 3\n", false, -1, 0, "missing key name before '='", NULL, NULL},
	};
	check_cases(cases, N(cases));
}

int main(void)
{
	RUN(test_blanks_and_comments_leave_a_blank_line);
	RUN(test_a_comment_starts_only_at_the_start_or_after_a_blank);
	RUN(test_a_byte_order_mark_is_skipped_on_the_first_line_only);
	RUN(test_a_header_splits_into_kind_and_name);
	RUN(test_a_key_line_needs_an_equals_sign_after_a_name);
	return CHECK_DONE();
}
