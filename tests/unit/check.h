/* check — the assertions unit tests use.  A failed check prints file, line
 * and the two values, and the test exits non-zero at the end. */
#ifndef RACED_CHECK_H
#define RACED_CHECK_H

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int check_failures;

#define CHECK(cond)                                                            \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr, "%s:%d: CHECK(%s) failed\n", __FILE__, \
			        __LINE__, #cond);                              \
			check_failures++;                                      \
		}                                                              \
	} while (0)

#define CHECK_EQ(a, b)                                                         \
	do {                                                                   \
		long long check_a_ = (long long)(a), check_b_ = (long long)(b); \
		if (check_a_ != check_b_) {                                    \
			fprintf(stderr, "%s:%d: %s == %lld, expected %s == %lld\n", \
			        __FILE__, __LINE__, #a, check_a_, #b, check_b_); \
			check_failures++;                                      \
		}                                                              \
	} while (0)

#define CHECK_STR(a, b)                                                        \
	do {                                                                   \
		const char *check_a_ = (a), *check_b_ = (b);                   \
		if (!check_a_ || !check_b_ || strcmp(check_a_, check_b_) != 0) { \
			fprintf(stderr, "%s:%d: %s == \"%s\", expected \"%s\"\n", \
			        __FILE__, __LINE__, #a,                        \
			        check_a_ ? check_a_ : "(null)",                \
			        check_b_ ? check_b_ : "(null)");               \
			check_failures++;                                      \
		}                                                              \
	} while (0)

/* Run one test function, naming it on failure. */
#define RUN(test)                                                              \
	do {                                                                   \
		int check_before_ = check_failures;                            \
		test();                                                        \
		fprintf(stderr, "%s %s\n",                                     \
		        check_failures == check_before_ ? "ok  " : "FAIL", #test); \
	} while (0)

#define CHECK_DONE() (check_failures ? EXIT_FAILURE : EXIT_SUCCESS)

#endif
