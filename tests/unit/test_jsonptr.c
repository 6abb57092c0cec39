#include "check.h"
#include "jsonptr.h"

static void test_validity(void)
{
	CHECK(jsonptr_valid(""));
	CHECK(jsonptr_valid("/data"));
	CHECK(jsonptr_valid("/a~0~1"));
	CHECK(!jsonptr_valid("data"));
	CHECK(!jsonptr_valid("/a~"));
	CHECK(!jsonptr_valid("/a~2"));
	CHECK(!jsonptr_valid(NULL));
}

static void test_tokens_are_unescaped_one_at_a_time(void)
{
	char tok[JSONPTR_TOKEN_MAX];
	const char *p = "/a~1b/m~0n//x";
	CHECK_EQ(*p, '/');
	p++;
	CHECK_EQ(jsonptr_token(&p, tok), 3);
	CHECK_STR(tok, "a/b");
	CHECK_EQ(*p, '/');
	p++;
	CHECK_EQ(jsonptr_token(&p, tok), 3);
	CHECK_STR(tok, "m~n");
	p++;
	CHECK_EQ(jsonptr_token(&p, tok), 0); /* "" names the member "" */
	p++;
	CHECK_EQ(jsonptr_token(&p, tok), 1);
	CHECK_STR(tok, "x");
	CHECK_EQ(*p, '\0');
	p = "m~2n";
	CHECK_EQ(jsonptr_token(&p, tok), -1);
}

static void test_overlong_token_is_refused_not_truncated(void)
{
	char big[JSONPTR_TOKEN_MAX + 8], tok[JSONPTR_TOKEN_MAX];
	memset(big, 'a', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	const char *p = big;
	CHECK_EQ(jsonptr_token(&p, tok), -1);
	big[JSONPTR_TOKEN_MAX - 1] = '\0'; /* the longest that fits */
	p = big;
	CHECK_EQ(jsonptr_token(&p, tok), JSONPTR_TOKEN_MAX - 1);
}

static void test_array_indexes(void)
{
	size_t i = 99;
	CHECK(jsonptr_index("0", 1, &i) && i == 0);
	CHECK(jsonptr_index("42", 2, &i) && i == 42);
	CHECK(!jsonptr_index("01", 2, &i));  /* a leading zero */
	CHECK(!jsonptr_index("-", 1, &i));   /* "past the end" names nothing to read */
	CHECK(!jsonptr_index("", 0, &i));
	CHECK(!jsonptr_index("1a", 2, &i));
	CHECK(!jsonptr_index("99999999999999999999999", 23, &i)); /* overflow */
}

int main(void)
{
	RUN(test_validity);
	RUN(test_tokens_are_unescaped_one_at_a_time);
	RUN(test_overlong_token_is_refused_not_truncated);
	RUN(test_array_indexes);
	return CHECK_DONE();
}
