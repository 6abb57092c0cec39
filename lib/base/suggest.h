/* suggest — "did you mean ...?" for misspelt names: configuration keys,
 * sections, stage and provider names, control commands.
 *
 * Ownership: nothing is allocated; strings are only read.
 */
#ifndef RACED_SUGGEST_H
#define RACED_SUGGEST_H

#include <stdbool.h>
#include <stddef.h>

/* Names longer than this are never suggested for (SIZE_MAX distance). */
#define SUGGEST_NAME_MAX 64

/* Levenshtein distance, ignoring ASCII case. */
size_t suggest_distance(const char *a, const char *b);

/* true when candidate is a likely misspelling target of typed (at most one
 * edit for words under 4 characters, two otherwise) and nearer than *best,
 * which it then lowers.  Start with *best = SIZE_MAX. */
bool suggest_near(const char *typed, const char *candidate, size_t *best);

#endif
