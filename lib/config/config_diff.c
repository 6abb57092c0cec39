/* config_diff — what a reload changes (declared in config.h):
 * config_each_change() one change at a time with when it applies,
 * config_describe_changes() one line for the log, config_apply_live() the
 * live keys put in force while an import runs, config_store_same().
 *
 * Design: the key table (config_keys.h) is walked for each section present
 * in both configurations; a key's two values are written in the file's own
 * syntax and compared as text, so a change shows as the user would write
 * it ("timeout 30s -> 2m") and two spellings of one value are no change.
 * Tokens and secret keys (KF_SECRET) are named, never shown; text values
 * that may hold a secret (conninfo, URLs) are compared as written and shown
 * masked (redact.h), and a change the mask hides reads "(a secret changed)".
 */
#include "config.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_keys.h"
#include "config_value.h"
#include "redact.h"

#define VALUE_MAX 160 /* a value as shown; longer ones are cut */

/* A "; "-separated list in a fixed buffer that ends in "..." once full. */
struct appender {
	char *buf;
	size_t len, used;
	bool full;
	unsigned items;
};

/* Appends "; " (but first) and the formatted piece, or ends in "..." when
 * they do not fit. */
__attribute__((format(printf, 2, 3)))
static void append(struct appender *a, const char *fmt, ...)
{
	if (a->full || !a->len)
		return;
	size_t room = a->len - a->used;
	int sep = snprintf(a->buf + a->used, room, "%s", a->items++ ? "; " : "");
	int w = -1;
	if (sep >= 0 && (size_t)sep < room) {
		va_list ap;
		va_start(ap, fmt);
		w = vsnprintf(a->buf + a->used + sep, room - (size_t)sep, fmt, ap);
		va_end(ap);
	}
	if (w >= 0 && (size_t)sep + (size_t)w < room) {
		a->used += (size_t)sep + (size_t)w;
		return;
	}
	a->full = true;
	if (a->len >= 4)
		memcpy(a->buf + a->len - 4, "...", 4);
	else
		a->buf[a->len - 1] = '\0';
}

/* The text of one change: a head, a key and two values. */
#define CHANGE_MAX (2 * VALUE_MAX + 160)

struct walker {
	config_change_fn fn;
	void *arg;
};

__attribute__((format(printf, 3, 4)))
static void emit(const struct walker *w, enum config_when when, const char *fmt, ...)
{
	char text[CHANGE_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(text, sizeof text, fmt, ap);
	va_end(ap);
	w->fn(w->arg, when, text);
}

static bool is_text(const struct key_def *k)
{
	return k->type == KT_STRING || k->type == KT_SOCKET_PATH || k->type == KT_URL ||
	       k->type == KT_CONNINFO || k->type == KT_TEMPLATE || k->type == KT_POINTER || k->type == KT_INITIAL ||
	       k->type == KT_PARAM || k->type == KT_HEADER;
}

static bool is_string(const struct key_def *k)
{
	return is_text(k) || k->type == KT_LISTEN;
}

/* k's value in obj (struct config, provider_conf or stage_conf) in the
 * file's syntax, a string quoted, masked when masked (a conninfo as libpq
 * reads it). */
static void format_value(const struct key_def *k, const void *obj, bool masked, char *out, size_t n)
{
	char v[VALUE_MAX];
	bool set = config_key_format(k, obj, masked, v, sizeof v);
	int w = 0;
	if (!is_string(k))
		w = snprintf(out, n, "%s", v);
	else if (set)
		w = snprintf(out, n, "'%.*s'", VALUE_MAX - 3, v);
	else
		w = snprintf(out, n, "(none)");
	(void)w; /* a value longer than VALUE_MAX is cut, as said at the top */
}

static enum config_when key_when(const struct key_def *k)
{
	return k->flags & KF_RESTART ? CONFIG_WHEN_RESTART : k->flags & KF_LIVE ? CONFIG_WHEN_LIVE : CONFIG_WHEN_BETWEEN;
}

static void describe_token(const struct walker *w, const char *head, const struct provider_conf *old,
                           const struct provider_conf *next)
{
	const char *t0 = old->token, *t1 = next->token;
	if ((t0 == NULL) != (t1 == NULL) || (t0 && strcmp(t0, t1) != 0))
		emit(w, CONFIG_WHEN_BETWEEN, "%s token %s", head, !t1 ? "removed" : !t0 ? "added" : "changed");
	t0 = old->password;
	t1 = next->password;
	if ((t0 == NULL) != (t1 == NULL) || (t0 && strcmp(t0, t1) != 0))
		emit(w, CONFIG_WHEN_BETWEEN, "%s password %s", head, !t1 ? "removed" : !t0 ? "added" : "changed");
}

static void describe_section(const struct walker *w, enum section_kind kind, const char *name, const void *old,
                             const void *next)
{
	char head[96];
	snprintf(head, sizeof head, "[%s%s%s]", config_section_names[kind], name ? " " : "", name ? name : "");
	for (size_t i = 0; i < config_n_keys; i++) {
		const struct key_def *k = &config_keys[i];
		char was[VALUE_MAX], now[VALUE_MAX];
		if (k->section != kind)
			continue;
		format_value(k, old, false, was, sizeof was);
		format_value(k, next, false, now, sizeof now);
		if (strcmp(was, now) == 0)
			continue;
		enum config_when when = key_when(k);
		if ((k->flags & KF_SECRET) && k->type != KT_CONNINFO) {
			emit(w, when, "%s %s changed", head, k->name);
			continue;
		}
		if (is_text(k)) {
			format_value(k, old, true, was, sizeof was);
			format_value(k, next, true, now, sizeof now);
		}
		if (strcmp(was, now) == 0)
			emit(w, when, "%s %s changed (a secret changed)", head, k->name);
		else
			emit(w, when, "%s %s %s -> %s", head, k->name, was, now);
	}
	if (kind == SECT_PROVIDER)
		describe_token(w, head, old, next);
}

/* Providers (kind SECT_PROVIDER) or stages, as the i-th of c or by name. */
static size_t named_count(const struct config *c, enum section_kind kind)
{
	return kind == SECT_PROVIDER ? c->n_providers : c->n_stages;
}

static const char *named_name(const struct config *c, enum section_kind kind, size_t i)
{
	return kind == SECT_PROVIDER ? c->providers[i].name : c->stages[i].name;
}

static const void *named_find(const struct config *c, enum section_kind kind, const char *name)
{
	if (kind == SECT_PROVIDER)
		return config_provider(c, name);
	return config_stage(c, name);
}

/* Each provider (or stage) of next against its namesake in old. */
static void describe_named(const struct walker *w, enum section_kind kind, const struct config *old,
                           const struct config *next)
{
	const char *noun = config_section_names[kind];
	for (size_t i = 0; i < named_count(next, kind); i++) {
		const char *name = named_name(next, kind, i);
		const void *was = named_find(old, kind, name);
		if (was)
			describe_section(w, kind, name, was, named_find(next, kind, name));
		else
			emit(w, CONFIG_WHEN_BETWEEN, "%s '%s' added", noun, name);
	}
	for (size_t i = 0; i < named_count(old, kind); i++)
		if (!named_find(next, kind, named_name(old, kind, i)))
			emit(w, CONFIG_WHEN_BETWEEN, "%s '%s' removed", noun, named_name(old, kind, i));
}

void config_each_change(const struct config *old, const struct config *next, config_change_fn fn, void *arg)
{
	struct walker w = {.fn = fn, .arg = arg};
	describe_section(&w, SECT_DAEMON, NULL, old, next);
	describe_section(&w, SECT_DATABASE, NULL, old, next);
	describe_named(&w, SECT_PROVIDER, old, next);
	describe_named(&w, SECT_STAGE, old, next);
}

static void append_change(void *arg, enum config_when when, const char *text)
{
	append(arg, "%s%s", text, when == CONFIG_WHEN_RESTART ? " (at the next restart)" : "");
}

void config_describe_changes(const struct config *old, const struct config *next, char *buf, size_t len)
{
	struct appender a = {.buf = buf, .len = len};
	if (!len)
		return;
	buf[0] = '\0';
	if (!old || !next) {
		append(&a, "no previous configuration");
		return;
	}
	config_each_change(old, next, append_change, &a);
	if (!a.items)
		append(&a, "nothing changed");
}

/* ---- a reload while an import runs ---- */

/* Copies k's value from src to dst: 0, or -1 when out of memory (dst
 * unchanged).  A string is replaced, the old one freed: only keys nothing
 * keeps a pointer to are KF_LIVE strings (admin_group). */
static int copy_value(const struct key_def *k, void *dst, const void *src)
{
	char *d = (char *)dst + k->offset;
	const char *s = (const char *)src + k->offset;
	size_t size = k->type == KT_DOUBLE ? sizeof(double)
	              : k->type == KT_SIZE ? sizeof(size_t)
	              : k->type == KT_BOOL ? sizeof(bool)
	                                   : sizeof(uint32_t);
	if (is_string(k)) {
		char *was, *copy = NULL;
		const char *now;
		memcpy(&now, s, sizeof now);
		if (now && !(copy = strdup(now)))
			return -1;
		memcpy(&was, d, sizeof was);
		free(was);
		memcpy(d, &copy, sizeof copy);
		return 0;
	}
	if (k->type == KT_NEXT)
		return 0; /* never KF_LIVE: it owns next_pointer */
	if (k->type == KT_CONNECTIONS) { /* a number, or auto: both fields */
		const struct provider_conf *ps = src;
		struct provider_conf *pd = dst;
		pd->max_connections = ps->max_connections;
		pd->max_connections_auto = ps->max_connections_auto;
		return 0;
	}
	memcpy(d, s, size);
	return 0;
}

/* Whether k has one value in a and b: strings compared whole, numbers as
 * the file writes them. */
static bool same_value(const struct key_def *k, const void *a, const void *b)
{
	char x[VALUE_MAX], y[VALUE_MAX];
	if (is_string(k)) {
		const char *s, *t;
		memcpy(&s, (const char *)a + k->offset, sizeof s);
		memcpy(&t, (const char *)b + k->offset, sizeof t);
		return (!s && !t) || (s && t && strcmp(s, t) == 0);
	}
	format_value(k, a, false, x, sizeof x);
	format_value(k, b, false, y, sizeof y);
	return strcmp(x, y) == 0;
}

/* One section of both: the values (and lines) of the keys with a flag of
 * mask, and with same_lines the lines of the keys of equal value. */
static int apply_section(enum section_kind kind, void *dst, const void *src, unsigned mask, bool same_lines)
{
	unsigned *dl = config_key_lines(kind, dst);
	const unsigned *sl = config_key_lines_of(kind, src);
	int changed = 0;
	for (size_t i = 0; i < config_n_keys; i++) {
		const struct key_def *k = &config_keys[i];
		if (k->section != kind)
			continue;
		bool same = same_value(k, dst, src);
		if (same ? !same_lines : !(k->flags & mask))
			continue;
		if (!same) {
			if (copy_value(k, dst, src) < 0)
				return -1;
			changed++;
		}
		dl[i] = sl[i];
	}
	return changed;
}

int config_apply_live(struct config *in_force, const struct config *next)
{
	int total = 0, n;
	if ((n = apply_section(SECT_DAEMON, in_force, next, KF_LIVE, true)) < 0)
		return -1;
	total += n;
	if ((n = apply_section(SECT_DATABASE, in_force, next, KF_LIVE, true)) < 0)
		return -1;
	total += n;
	for (size_t i = 0; i < in_force->n_providers; i++) {
		const struct provider_conf *p = config_provider(next, in_force->providers[i].name);
		if (p && (n = apply_section(SECT_PROVIDER, &in_force->providers[i], p, KF_LIVE, true)) < 0)
			return -1;
		total += p ? n : 0;
	}
	for (size_t i = 0; i < in_force->n_stages; i++) {
		const struct stage_conf *st = config_stage(next, in_force->stages[i].name);
		if (st && (n = apply_section(SECT_STAGE, &in_force->stages[i], st, KF_LIVE, true)) < 0)
			return -1;
		total += st ? n : 0;
	}
	return total;
}

int config_keep_restart(struct config *next, const struct config *in_force)
{
	/* every KF_RESTART key is a [daemon] key (test_config checks it) */
	return apply_section(SECT_DAEMON, next, in_force, KF_RESTART, false) < 0 ? -1 : 0;
}

bool config_store_same(const struct config *a, const struct config *b)
{
	if (a->n_stages != b->n_stages)
		return false;
	for (size_t i = 0; i < a->n_stages; i++)
		if (strcmp(a->stages[i].name, b->stages[i].name) != 0)
			return false;
	for (size_t i = 0; i < config_n_keys; i++) {
		const struct key_def *k = &config_keys[i];
		/* a stage's typed columns are put in place as the store connects */
		if (k->section == SECT_STAGE && (strcmp(k->name, "columns") == 0 || strcmp(k->name, "index") == 0))
			for (size_t j = 0; j < a->n_stages; j++)
				if (!same_value(k, &a->stages[j], &b->stages[j]))
					return false;
		/* a live key (batch_size, max_outage) is put into the store kept */
		if (k->section == SECT_DATABASE && !(k->flags & KF_LIVE) && !same_value(k, a, b))
			return false;
	}
	return true;
}
