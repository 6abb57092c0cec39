#include "check.h"
#include "error.h"

#include <errno.h>

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

static void test_err_set_class_returns_the_negated_errno(void)
{
	char err[ERR_MAX];
	CHECK_EQ(err_set_class(err, EBUSY, "import %d runs", 4), -EBUSY);
	CHECK_STR(err, "import 4 runs");
	CHECK_EQ(err_set_class(NULL, ENOTCONN, "ignored"), -ENOTCONN);
	CHECK_EQ(err_set_class(err, 0, "no class"), -1);
}

int main(void)
{
	RUN(test_err_set_formats_and_returns_minus_one);
	RUN(test_err_set_truncates_at_err_max);
	RUN(test_err_set_class_returns_the_negated_errno);
	return CHECK_DONE();
}
