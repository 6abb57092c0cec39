/* fuzz_jsonnum — a provider's number as a URL takes it (lib/json/jsonnum.c).
 *
 * The input is the number's text.  jsonnum accepts exactly what jsondoc
 * reads as one number (no whitespace around it); the length it measures
 * is the length it writes; what it writes is in PostgreSQL's form (an
 * optional '-', "0" or digits without a leading zero, then '.' and digits
 * or nothing; no '-' on a zero) and is its own form again; it has the
 * same value: the same significant digits at the same place, and as many
 * digits after the point as the text had less its exponent. */
#include "fuzz.h"

#include "error.h"
#include "jsondoc.h"
#include "jsonnum.h"

#include <stdbool.h>
#include <string.h>

#define OUT_MAX 4096

/* The significant digits of a number's text (mantissa digits without
 * leading and trailing zeros) into sig, and the place of the first one:
 * its digit's power of ten.  false for a zero. */
static bool significant(const char *s, size_t n, char *sig, size_t cap, long long *place)
{
	size_t i = s[0] == '-', before = 0, k = 0;
	bool seen_point = false, any = false;
	long long first_at = 0, exp = 0;
	for (; i < n && s[i] != 'e' && s[i] != 'E'; i++) {
		if (s[i] == '.') {
			seen_point = true;
			continue;
		}
		if (!seen_point)
			before++;
		if (s[i] != '0' && !any) {
			any = true;
			/* digits before the point, less this digit's index */
			first_at = (long long)k;
		}
		if (any && k - (size_t)first_at < cap - 1)
			sig[k - (size_t)first_at] = s[i];
		k++;
	}
	if (!any)
		return false;
	size_t len = k - (size_t)first_at < cap - 1 ? k - (size_t)first_at : cap - 1;
	while (len > 1 && sig[len - 1] == '0')
		len--;
	sig[len] = '\0';
	if (i < n) {
		bool neg = s[++i] == '-';
		if (s[i] == '-' || s[i] == '+')
			i++;
		for (; i < n; i++)
			if (exp < 100000000)
				exp = exp * 10 + (s[i] - '0');
		exp = neg ? -exp : exp;
	}
	*place = (long long)before - 1 - first_at + exp;
	return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct jsondoc *d;
	static char out[OUT_MAX], again[OUT_MAX];
	if (!d && !(d = jsondoc_new()))
		abort();
	const char *text = (const char *)data;
	size_t len = jsonnum_canon(text, size, out, sizeof out);

	bool spaced = false;
	for (size_t i = 0; i < size; i++)
		spaced = spaced || data[i] == ' ' || data[i] == '\t' || data[i] == '\n' || data[i] == '\r';
	char err[ERR_MAX];
	bool number = jsondoc_parse(d, text, size, JSONDOC_ANY, err) == 0 &&
	              jsondoc_type(d, 0) == JSONDOC_NUMBER && !spaced;
	FUZZ_CHECK(number == (len != JSONNUM_INVALID), "jsondoc %s '%.*s', jsonnum %s it",
	           number ? "reads" : "refuses", (int)size, text, number ? "refuses" : "reads");
	if (len == JSONNUM_INVALID || len >= sizeof out)
		return 0;

	FUZZ_CHECK(strlen(out) == len, "measured %zu, wrote '%s'", len, out);
	const char *p = out + (out[0] == '-');
	FUZZ_CHECK(p[0] >= '0' && p[0] <= '9' && (p[0] != '0' || p[1] == '\0' || p[1] == '.'),
	           "'%s' starts badly", out);
	size_t digits_after = 0;
	bool point = false, nonzero = false;
	for (; *p; p++) {
		FUZZ_CHECK((*p >= '0' && *p <= '9') || (*p == '.' && !point && p[1]), "'%s' at '%c'", out, *p);
		digits_after += point;
		point = point || *p == '.';
		nonzero = nonzero || (*p >= '1' && *p <= '9');
	}
	FUZZ_CHECK(nonzero || out[0] != '-', "a zero with a sign: '%s'", out);
	FUZZ_CHECK(jsonnum_canon(out, len, again, sizeof again) == len && strcmp(again, out) == 0,
	           "'%s' is not its own form", out);

	/* the same value */
	char sig_in[64], sig_out[64];
	long long at_in = 0, at_out = 0;
	bool nz_in = significant(text, size, sig_in, sizeof sig_in, &at_in);
	bool nz_out = significant(out, len, sig_out, sizeof sig_out, &at_out);
	FUZZ_CHECK(nz_in == nz_out && nz_in == nonzero, "'%.*s' zero or not: '%s'", (int)size, text, out);
	FUZZ_CHECK(!nz_in || (at_in == at_out && strcmp(sig_in, sig_out) == 0 &&
	                      (text[0] == '-') == (out[0] == '-')),
	           "'%.*s' is %s at 10^%lld, '%s' %s at 10^%lld", (int)size, text, sig_in, at_in, out,
	           sig_out, at_out);
	/* the digits after the point: the text's less its exponent */
	const char *dot = memchr(text, '.', size), *e = NULL;
	for (size_t i = 0; i < size; i++)
		if (text[i] == 'e' || text[i] == 'E')
			e = text + i;
	long long frac = dot ? (e ? e : text + size) - dot - 1 : 0, exp = 0;
	if (e) {
		const char *q = e + 1 + (e[1] == '-' || e[1] == '+');
		for (; q < text + size; q++)
			if (exp < 100000000)
				exp = exp * 10 + (*q - '0');
		exp = e[1] == '-' ? -exp : exp;
	}
	FUZZ_CHECK((long long)digits_after == (frac - exp > 0 ? frac - exp : 0),
	           "'%.*s' gave %zu digits after the point: '%s'", (int)size, text, digits_after, out);
	return 0;
}
