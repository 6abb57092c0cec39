/* error — the error buffer every fallible function in libraced fills.
 *
 * Library code never logs: a function that can fail returns -1 (or NULL)
 * and writes one readable sentence into a caller-owned buffer of
 * ERR_MAX bytes, naming the thing that failed and, where known, the fix.
 * The caller that handles the failure logs it, once.
 */
#ifndef RACED_ERROR_H
#define RACED_ERROR_H

#include <stddef.h>

#define ERR_MAX 512

/* Format into err (ERR_MAX bytes); NULL err is allowed and ignored.
 * Always returns -1, so `return err_set(err, ...)` reads naturally. */
int err_set(char *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
