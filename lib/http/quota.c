/* quota — see quota.h. */
#include "quota.h"

#include <ctype.h>
#include <stddef.h>
#include <string.h>
#include <strings.h>

enum { H_REMAINING, H_RESET, H_COMBINED, H_X_REMAINING, H_X_RESET };

const char *const quota_header_names[] = {"RateLimit-Remaining", "RateLimit-Reset", "RateLimit",
                                          "X-RateLimit-Remaining", "X-RateLimit-Reset", NULL};

/* A whole number, blanks around it allowed; false if anything else. */
static bool parse_count(const char *s, size_t len, int64_t *out)
{
	while (len && (*s == ' ' || *s == '\t'))
		s++, len--;
	while (len && (s[len - 1] == ' ' || s[len - 1] == '\t'))
		len--;
	if (len && *s == '"' && len >= 2 && s[len - 1] == '"')
		s++, len -= 2;
	if (!len || len > 18) /* 18 digits fit int64_t */
		return false;
	int64_t v = 0;
	for (size_t i = 0; i < len; i++) {
		if (!isdigit((unsigned char)s[i]))
			return false;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return true;
}

static bool parse_value(const char *v, int64_t *out)
{
	return v && strlen(v) <= QUOTA_VALUE_MAX && parse_count(v, strlen(v), out);
}

/* A reset as seconds from now: delta seconds, or a Unix time. */
static double reset_seconds(int64_t v, time_t wall_now)
{
	if (v >= QUOTA_EPOCH_MIN)
		return v > (int64_t)wall_now ? (double)(v - (int64_t)wall_now) : 0.0;
	return (double)v;
}

/* "limit=100, remaining=50, reset=30" or "\"default\";r=50;t=30". */
static bool parse_combined(const char *v, time_t wall_now, struct quota_reading *out)
{
	bool have_remaining = false;
	int64_t n;

	if (!v || strlen(v) > QUOTA_VALUE_MAX)
		return false;
	out->reset_s = -1;
	while (*v) {
		size_t len = strcspn(v, ",;");
		const char *eq = memchr(v, '=', len);
		if (eq) {
			const char *k = v;
			size_t klen = (size_t)(eq - v);
			while (klen && (*k == ' ' || *k == '\t'))
				k++, klen--;
			while (klen && (k[klen - 1] == ' ' || k[klen - 1] == '\t'))
				klen--;
			bool is_rem = (klen == 9 && strncasecmp(k, "remaining", 9) == 0) ||
			              (klen == 1 && (*k == 'r' || *k == 'R'));
			bool is_reset = (klen == 5 && strncasecmp(k, "reset", 5) == 0) ||
			                (klen == 1 && (*k == 't' || *k == 'T'));
			if ((is_rem || is_reset) && parse_count(eq + 1, (size_t)(v + len - (eq + 1)), &n)) {
				if (is_rem) {
					out->remaining = n;
					have_remaining = true;
				} else {
					out->reset_s = reset_seconds(n, wall_now);
				}
			}
		}
		v += len;
		if (*v)
			v++;
	}
	return have_remaining;
}

bool quota_read(quota_header_fn get, void *ctx, time_t wall_now, struct quota_reading *out)
{
	int64_t n;
	static const int pairs[2][2] = {{H_REMAINING, H_RESET}, {H_X_REMAINING, H_X_RESET}};

	for (int i = 0; i < 2; i++) {
		if (i == 1 && parse_combined(get(ctx, quota_header_names[H_COMBINED]), wall_now, out))
			return true;
		if (!parse_value(get(ctx, quota_header_names[pairs[i][0]]), &n))
			continue;
		out->remaining = n;
		out->reset_s = parse_value(get(ctx, quota_header_names[pairs[i][1]]), &n)
		                       ? reset_seconds(n, wall_now)
		                       : -1;
		return true;
	}
	return false;
}

void quota_init(struct quota *q)
{
	*q = (struct quota){.remaining = -1};
}

void quota_observe(struct quota *q, const struct quota_reading *r, uint32_t others, double now)
{
	double reset_s = r->reset_s < 0 ? QUOTA_UNKNOWN_RESET_S : r->reset_s;
	if (reset_s > QUOTA_RESET_MAX_S)
		reset_s = QUOTA_RESET_MAX_S;
	double reset_at = now + reset_s;
	int64_t budget = r->remaining - QUOTA_RESERVE - (int64_t)others;

	if (q->known && reset_at < q->reset_at - QUOTA_SAME_WINDOW_S)
		return; /* an answer from a window already over */
	q->remaining = r->remaining;
	if (q->known && reset_at <= q->reset_at + QUOTA_SAME_WINDOW_S) {
		if (budget < q->budget)
			q->budget = budget;
		if (reset_at > q->reset_at)
			q->reset_at = reset_at;
		return;
	}
	q->known = true;
	q->budget = budget;
	q->reset_at = reset_at;
}

void quota_started(struct quota *q)
{
	if (q->known)
		q->budget--;
}

bool quota_may_start(struct quota *q, double now, double *until)
{
	if (q->known && now >= q->reset_at)
		q->known = false; /* the window is over: the next answer tells */
	if (!q->known || q->budget > 0) {
		q->holding = false;
		return true;
	}
	if (!q->holding)
		q->holds++;
	q->holding = true;
	*until = q->reset_at;
	return false;
}

uint64_t quota_retry_delay_ms(int64_t retry_after_ms, uint64_t backoff_ms, uint64_t lo_ms,
                              uint64_t hi_ms)
{
	if (retry_after_ms < 0)
		return backoff_ms;
	uint64_t ra = (uint64_t)retry_after_ms;
	if (ra < lo_ms)
		ra = lo_ms;
	if (ra > hi_ms)
		ra = hi_ms;
	return ra > backoff_ms ? ra : backoff_ms;
}
