/* config_diff — config_describe_changes() (declared in config.h): what a
 * reload changes, one line for the log.
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

static void format_string(const char *f, char *out, size_t n)
{
	const char *s;
	memcpy(&s, f, sizeof s);
	if (s)
		snprintf(out, n, "'%s'", s);
	else
		snprintf(out, n, "(none)");
}

/* k's string value as shown: masked, a conninfo as libpq reads it. */
static void format_shown(const struct key_def *k, const void *obj, char *out, size_t n)
{
	const char *s;
	memcpy(&s, (const char *)obj + k->offset, sizeof s);
	char *shown = !s ? NULL : k->type == KT_CONNINFO ? redact_conninfo(s) : redact_dup(s);
	if (shown)
		snprintf(out, n, "'%s'", shown);
	else
		snprintf(out, n, s ? "(not shown: out of memory)" : "(none)");
	free(shown);
}

static bool is_text(const struct key_def *k)
{
	return k->type == KT_STRING || k->type == KT_SOCKET_PATH || k->type == KT_URL ||
	       k->type == KT_CONNINFO || k->type == KT_TEMPLATE || k->type == KT_POINTER || k->type == KT_INITIAL;
}

/* k's value in obj (struct config, provider_conf or stage_conf). */
static void format_value(const struct key_def *k, const void *obj, char *out, size_t n)
{
	const char *f = (const char *)obj + k->offset;
	bool b;
	double d;
	size_t sz;
	uint32_t v;
	switch (k->type) {
	case KT_STRING:
	case KT_SOCKET_PATH:
	case KT_LISTEN:
	case KT_URL:
	case KT_CONNINFO:
	case KT_TEMPLATE:
	case KT_POINTER:
	case KT_INITIAL:
		format_string(f, out, n);
		return;
	case KT_CHOICE:
		memcpy(&v, f, sizeof v);
		snprintf(out, n, "%s", k->choices[v]);
		return;
	case KT_CONNECTIONS: {
		const struct provider_conf *pc = obj;
		if (pc->max_connections_auto)
			snprintf(out, n, "auto");
		else
			snprintf(out, n, "%u", pc->max_connections);
		return;
	}
	case KT_NEXT: {
		const struct stage_conf *st = obj;
		snprintf(out, n, "%s", st->next == NEXT_POINTER ? st->next_pointer : st->next == NEXT_LINK ? "link" : "none");
		return;
	}
	case KT_BOOL:
		memcpy(&b, f, sizeof b);
		snprintf(out, n, "%s", b ? "yes" : "no");
		return;
	case KT_DOUBLE:
		memcpy(&d, f, sizeof d);
		snprintf(out, n, "%g", d);
		return;
	case KT_SIZE:
		memcpy(&sz, f, sizeof sz);
		config_value_format_size(sz, out, n);
		return;
	case KT_DURATION:
		memcpy(&v, f, sizeof v);
		config_value_format_duration(v, out, n);
		return;
	case KT_UINT:
		memcpy(&v, f, sizeof v);
		snprintf(out, n, "%u", v);
		return;
	}
}

static void describe_token(struct appender *a, const char *head, const struct provider_conf *old,
                           const struct provider_conf *next)
{
	const char *t0 = old->token, *t1 = next->token;
	if ((t0 == NULL) != (t1 == NULL) || (t0 && strcmp(t0, t1) != 0))
		append(a, "%s token %s", head, !t1 ? "removed" : !t0 ? "added" : "changed");
}

static void describe_section(struct appender *a, enum section_kind kind, const char *name, const void *old,
                             const void *next)
{
	char head[96];
	snprintf(head, sizeof head, "[%s%s%s]", config_section_names[kind], name ? " " : "", name ? name : "");
	for (size_t i = 0; i < config_n_keys; i++) {
		const struct key_def *k = &config_keys[i];
		char was[VALUE_MAX], now[VALUE_MAX];
		if (k->section != kind)
			continue;
		format_value(k, old, was, sizeof was);
		format_value(k, next, now, sizeof now);
		if (strcmp(was, now) == 0)
			continue;
		const char *restart = k->flags & KF_RESTART ? " (at the next restart)" : "";
		if ((k->flags & KF_SECRET) && k->type != KT_CONNINFO) {
			append(a, "%s %s changed%s", head, k->name, restart);
			continue;
		}
		if (is_text(k)) {
			format_shown(k, old, was, sizeof was);
			format_shown(k, next, now, sizeof now);
		}
		if (strcmp(was, now) == 0)
			append(a, "%s %s changed (a secret changed)%s", head, k->name, restart);
		else
			append(a, "%s %s %s -> %s%s", head, k->name, was, now, restart);
	}
	if (kind == SECT_PROVIDER)
		describe_token(a, head, old, next);
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
static void describe_named(struct appender *a, enum section_kind kind, const struct config *old,
                           const struct config *next)
{
	const char *noun = config_section_names[kind];
	for (size_t i = 0; i < named_count(next, kind); i++) {
		const char *name = named_name(next, kind, i);
		const void *was = named_find(old, kind, name);
		if (was)
			describe_section(a, kind, name, was, named_find(next, kind, name));
		else
			append(a, "%s '%s' added", noun, name);
	}
	for (size_t i = 0; i < named_count(old, kind); i++)
		if (!named_find(next, kind, named_name(old, kind, i)))
			append(a, "%s '%s' removed", noun, named_name(old, kind, i));
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
	describe_section(&a, SECT_DAEMON, NULL, old, next);
	describe_section(&a, SECT_DATABASE, NULL, old, next);
	describe_named(&a, SECT_PROVIDER, old, next);
	describe_named(&a, SECT_STAGE, old, next);
	if (!a.items)
		append(&a, "nothing changed");
}
