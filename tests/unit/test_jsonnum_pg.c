/* jsonnum against the real PostgreSQL: numbers of every shape (signs,
 * leading and trailing zeros, exponents written every way, integers past
 * 2^64), drawn from a fixed seed, go into one jsonb array; each element
 * as `->>` gives it (a narrow read-back) and the array as `::text` gives
 * it (a whole row's read-back, parsed again) must be what jsonnum writes.
 * Runs under tests/lib/with-pg.sh. */
#include "check.h"
#include "jsonnum.h"
#include "pgtest.h"

#include <stdbool.h>
#include <stdint.h>

#define NUMBERS 4000
#define NUMBER_MAX 96

static uint64_t rng = 0x9e3779b97f4a7c15u;

static unsigned draw(unsigned n)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (unsigned)(rng % n);
}

/* Digits, with runs of zeros more often than chance would give them. */
static size_t digits(char *p, size_t n, bool first_nonzero)
{
	for (size_t i = 0; i < n; i++) {
		unsigned d = draw(3) == 0 ? 0 : draw(10);
		p[i] = (char)('0' + (i == 0 && first_nonzero && d == 0 ? 1 + draw(9) : d));
	}
	return n;
}

/* One JSON number into p (NUMBER_MAX bytes). */
static void number(char *p)
{
	size_t o = 0;
	if (draw(3) == 0)
		p[o++] = '-';
	if (draw(3) == 0)
		p[o++] = '0';
	else
		o += digits(p + o, 1 + draw(draw(4) == 0 ? 30 : 4), true);
	if (draw(2)) {
		p[o++] = '.';
		o += digits(p + o, 1 + draw(draw(4) == 0 ? 20 : 4), false);
	}
	if (draw(2)) {
		p[o++] = draw(2) ? 'e' : 'E';
		unsigned sign = draw(3);
		if (sign)
			p[o++] = sign == 1 ? '+' : '-';
		for (unsigned z = draw(4) == 0 ? draw(3) : 0; z; z--)
			p[o++] = '0';
		o += (size_t)snprintf(p + o, 8, "%u", draw(draw(4) == 0 ? 60 : 6));
	}
	p[o] = '\0';
}

static void test_numbers_read_back_are_what_jsonnum_writes(void)
{
	static char in[NUMBERS][NUMBER_MAX], want[NUMBERS][256];
	size_t cap = NUMBERS * (NUMBER_MAX + 1) + 2, o = 0, w = 0;
	char *arr = malloc(cap), *whole = malloc(NUMBERS * 258 + 2), *q = malloc(2 * cap + 256);
	CHECK(arr && whole && q);
	if (!arr || !whole || !q) {
		free(arr);
		free(whole);
		free(q);
		return;
	}
	arr[o++] = '[';
	whole[w++] = '[';
	for (size_t i = 0; i < NUMBERS; i++) {
		number(in[i]);
		size_t n = jsonnum_canon(in[i], strlen(in[i]), want[i], sizeof want[i]);
		CHECK(n != JSONNUM_INVALID && n < sizeof want[i]);
		o += (size_t)sprintf(arr + o, "%s%s", i ? "," : "", in[i]);
		/* jsonb's text of an array: ", " between elements */
		w += (size_t)sprintf(whole + w, "%s%s", i ? ", " : "", want[i]);
	}
	arr[o++] = ']';
	arr[o] = '\0';
	whole[w++] = ']';
	whole[w] = '\0';
	snprintf(q, 2 * cap + 256, "select string_agg(e, ' ' order by i) || '|' || '%s'::jsonb::text "
	         "from jsonb_array_elements_text('%s'::jsonb) with ordinality a(e, i)", arr, arr);
	char *got = sql1(q);
	CHECK(got != NULL);
	char *bar = got ? strchr(got, '|') : NULL;
	CHECK(bar != NULL);
	if (bar) {
		*bar = '\0';
		char *e = got;
		for (size_t i = 0; i < NUMBERS && e; i++) {
			char *sp = strchr(e, ' ');
			if (sp)
				*sp = '\0';
			if (strcmp(e, want[i]) != 0) {
				fprintf(stderr, "%s: PostgreSQL gives %s, jsonnum %s\n", in[i], e, want[i]);
				check_failures++;
			}
			e = sp ? sp + 1 : NULL;
		}
		CHECK_STR(bar + 1, whole);
	}
	free(got);
	free(q);
	free(arr);
	free(whole);
}

int main(void)
{
	conninfo = getenv("PG_CONNINFO");
	if (!conninfo) {
		fprintf(stderr, "PG_CONNINFO is not set: run under tests/lib/with-pg.sh\n");
		return 2;
	}
	RUN(test_numbers_read_back_are_what_jsonnum_writes);
	return CHECK_DONE();
}
