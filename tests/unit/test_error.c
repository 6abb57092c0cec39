#include "check.h"
#include "error.h"

static void test_err_set_formats_and_returns_minus_one(void)
{
	char err[ERR_MAX];
	CHECK_EQ(err_set(err, "%s:%d: bad", "raced.conf", 12), -1);
	CHECK_STR(err, "raced.conf:12: bad");
	CHECK_EQ(err_set(NULL, "ignored"), -1);
}

static void test_err_set_truncates_at_err_max(void)
{
	char err[ERR_MAX];
	char big[ERR_MAX * 2];
	memset(big, 'x', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	err_set(err, "%s", big);
	CHECK_EQ(strlen(err), ERR_MAX - 1);
}

int main(void)
{
	RUN(test_err_set_formats_and_returns_minus_one);
	RUN(test_err_set_truncates_at_err_max);
	return CHECK_DONE();
}
