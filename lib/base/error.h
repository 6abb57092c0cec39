/* error — the error buffer every fallible function in libraced fills.
 *
 * Library code never logs: a function that can fail returns -1 (or NULL)
 * and writes one readable sentence into a caller-owned buffer of
 * ERR_MAX bytes, naming the thing that failed and, where known, the fix.
 * The caller that handles the failure logs it, once.
 *
 * Where a caller must tell failures apart (the control server choosing a
 * reply code), the function returns a class instead of -1: a negated errno
 * (-EBUSY, -ENOTCONN, ...), documented on the function, with the sentence
 * in err as always.  Nobody branches on the text.
 */
#ifndef RACED_ERROR_H
#define RACED_ERROR_H

#include <stddef.h>

#define ERR_MAX 512

/* On a fallible function's declaration: its result must be looked at. */
#define RACED_MUST_CHECK __attribute__((warn_unused_result))

/* Format into err (ERR_MAX bytes); NULL err is allowed and ignored.
 * Always returns -1, so `return err_set(err, ...)` reads naturally. */
int err_set(char *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* As err_set, but returns -errnum (errnum > 0): the failure's class. */
int err_set_class(char *err, int errnum, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
