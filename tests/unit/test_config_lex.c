/* Unit tests for config_lex: what one line of raced.conf is, once cleaned,
 * before inih sees it.  Each test states a rule of raced.conf(5)'s syntax
 * and asserts the exact text, kind and message. */
#include "check.h"
#include "config_lex.h"

#include <stdbool.h>

/* Lexes a copy of text in buf (256 bytes). */
static int lex(const char *text, bool first, struct config_line *cl, char *buf, char *msg)
{
	snprintf(buf, 256, "%s", text);
	return config_lex_line(buf, first, cl, msg, ERR_MAX);
}

static void test_blanks_and_comments_leave_a_blank_line(void)
{
	const char *blank[] = {"", "\n", "  \t\r\n", "; comment\n", "# comment", "   ; indented comment\n"};
	char buf[256], msg[ERR_MAX];
	struct config_line cl;
	for (size_t i = 0; i < sizeof blank / sizeof blank[0]; i++) {
		CHECK_EQ(lex(blank[i], false, &cl, buf, msg), 0);
		CHECK_EQ(cl.kind, CONFIG_LINE_BLANK);
		CHECK_EQ(cl.len, 0);
	}
}

static void test_a_comment_starts_only_at_the_start_or_after_a_blank(void)
{
	char buf[256], msg[ERR_MAX];
	struct config_line cl;
	CHECK_EQ(lex("  base_url = https://x/v1#frag ; main API\r\n", false, &cl, buf, msg), 0);
	CHECK_EQ(cl.kind, CONFIG_LINE_KEY);
	CHECK_STR(cl.text, "base_url = https://x/v1#frag");
	CHECK_EQ(cl.len, 28);
	CHECK_EQ(lex("url = /races;v=1\t# tab before\n", false, &cl, buf, msg), 0);
	CHECK_STR(cl.text, "url = /races;v=1");
}

static void test_a_byte_order_mark_is_skipped_on_the_first_line_only(void)
{
	char buf[256], msg[ERR_MAX];
	struct config_line cl;
	CHECK_EQ(lex("\xEF\xBB\xBF[daemon]\n", true, &cl, buf, msg), 0);
	CHECK_EQ(cl.kind, CONFIG_LINE_SECTION);
	CHECK_STR(cl.section, "daemon");
	CHECK_EQ(lex("\xEF\xBB\xBF[daemon]\n", false, &cl, buf, msg), -1);
	CHECK_STR(msg, "expected 'key = value' or a [section] header, found '\xEF\xBB\xBF[daemon]'");
}

static void test_a_header_splits_into_kind_and_name(void)
{
	char buf[256], msg[ERR_MAX];
	struct config_line cl;
	CHECK_EQ(lex("[ stage \t races  ] ; the root\n", false, &cl, buf, msg), 0);
	CHECK_EQ(cl.kind, CONFIG_LINE_SECTION);
	CHECK_STR(cl.section, "stage");
	CHECK_STR(cl.name, "races");
	CHECK_STR(cl.text, "[ stage \t races  ]");
	CHECK_EQ(lex("[database]", false, &cl, buf, msg), 0);
	CHECK_STR(cl.section, "database");
	CHECK_STR(cl.name, "");
	CHECK_EQ(lex("[stage races\n", false, &cl, buf, msg), -1);
	CHECK_STR(msg, "section header '[stage races' has no closing ']'");
	CHECK_EQ(lex("[", false, &cl, buf, msg), -1);
	CHECK_STR(msg, "section header '[' has no closing ']'");
}

static void test_a_key_line_needs_an_equals_sign_after_a_name(void)
{
	char buf[256], msg[ERR_MAX];
	struct config_line cl;
	CHECK_EQ(lex("key =\n", false, &cl, buf, msg), 0);
	CHECK_EQ(cl.kind, CONFIG_LINE_KEY);
	CHECK_EQ(lex("max_clients\n", false, &cl, buf, msg), -1);
	CHECK_STR(msg, "expected 'key = value' or a [section] header, found 'max_clients'");
	CHECK_EQ(lex("max_clients: 3 = x\n", false, &cl, buf, msg), -1);
	CHECK_STR(msg, "expected 'key = value' or a [section] header, found 'max_clients: 3 = x'");
	CHECK_EQ(lex("  = 3\n", false, &cl, buf, msg), -1);
	CHECK_STR(msg, "missing key name before '='");
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
