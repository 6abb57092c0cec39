/* jsonnum — see jsonnum.h.  The rules are PostgreSQL's numeric input and
 * output (set_var_from_str, get_str_from_var), checked against the server
 * by tests/unit/test_jsonnum.c's table. */
#include "jsonnum.h"

#include <stdbool.h>

/* Past this an exponent only makes the form longer than any buffer. */
#define EXP_CLAMP 1000000000LL

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* The k-th digit of the number's digits (its integer part's, then its
 * fraction's), '0' outside them. */
static char digit_at(const char *ip, long long ni, const char *fp, long long nf, long long k)
{
	if (k < 0 || k >= ni + nf)
		return '0';
	return k < ni ? ip[k] : fp[k - ni];
}

size_t jsonnum_canon(const char *text, size_t n, char *out, size_t cap)
{
	size_t i = 0;
	bool neg = i < n && text[i] == '-';
	i += neg;
	const char *ip = text + i;
	if (i < n && text[i] == '0')
		i++;
	else if (i < n && text[i] >= '1' && text[i] <= '9')
		while (i < n && is_digit(text[i]))
			i++;
	else
		return JSONNUM_INVALID;
	long long ni = text + i - ip, nf = 0;
	const char *fp = text + i;
	if (i < n && text[i] == '.') {
		fp = text + ++i;
		while (i < n && is_digit(text[i]))
			i++;
		nf = text + i - fp;
		if (nf == 0)
			return JSONNUM_INVALID;
	}
	long long exp = 0;
	if (i < n && (text[i] == 'e' || text[i] == 'E')) {
		i++;
		bool eneg = i < n && text[i] == '-';
		if (i < n && (text[i] == '-' || text[i] == '+'))
			i++;
		size_t at = i;
		for (; i < n && is_digit(text[i]); i++)
			if ((exp = exp * 10 + (text[i] - '0')) > EXP_CLAMP)
				exp = EXP_CLAMP;
		if (i == at)
			return JSONNUM_INVALID;
		exp = eneg ? -exp : exp;
	}
	if (i != n)
		return JSONNUM_INVALID;

	/* point: how many of the digits stand before the decimal point;
	 * scale: the digits after it PostgreSQL keeps (its dscale). */
	long long point = ni + exp, scale = nf - exp > 0 ? nf - exp : 0;
	long long first = 0;
	while (first < ni + nf && digit_at(ip, ni, fp, nf, first) == '0')
		first++;
	bool zero = first == ni + nf;
	long long int_len = !zero && point > first ? point - first : 1;
	long long len = (neg && !zero) + int_len + (scale ? 1 + scale : 0);
	if (out && (unsigned long long)len < cap) {
		size_t o = 0;
		if (neg && !zero)
			out[o++] = '-';
		if (int_len == 1 && (zero || point <= first))
			out[o++] = '0';
		else
			for (long long k = first; k < point; k++)
				out[o++] = digit_at(ip, ni, fp, nf, k);
		if (scale) {
			out[o++] = '.';
			for (long long k = point; k < point + scale; k++)
				out[o++] = digit_at(ip, ni, fp, nf, k);
		}
		out[o] = '\0';
	}
	return (size_t)len;
}
