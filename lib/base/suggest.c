/* suggest — see suggest.h.  One row of the dynamic-programming table on
 * the stack: names are short and bounded by SUGGEST_NAME_MAX. */
#include "suggest.h"

#include <ctype.h>
#include <stdint.h>
#include <string.h>

size_t suggest_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	size_t row[SUGGEST_NAME_MAX + 1];
	if (la > SUGGEST_NAME_MAX || lb > SUGGEST_NAME_MAX)
		return SIZE_MAX;
	for (size_t j = 0; j <= lb; j++)
		row[j] = j;
	for (size_t i = 1; i <= la; i++) {
		size_t diag = row[0];
		row[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t up = row[j];
			size_t cost = tolower((unsigned char)a[i - 1]) == tolower((unsigned char)b[j - 1]) ? 0 : 1;
			size_t best = diag + cost;
			if (up + 1 < best)
				best = up + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			row[j] = best;
			diag = up;
		}
	}
	return row[lb];
}

bool suggest_near(const char *typed, const char *candidate, size_t *best)
{
	size_t d = suggest_distance(typed, candidate);
	size_t limit = strlen(typed) < 4 ? 1 : 2;
	if (d > limit || d >= *best)
		return false;
	*best = d;
	return true;
}
