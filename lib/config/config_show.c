/* config_show — a configuration's values as the file would write them:
 * config_key_format() (config_keys.h), which the reload diff shares, and
 * config_each_entry() (config.h), what `racectl config` lists.
 *
 * Design: every key of the table is shown for every section, the default
 * ones too, so that the listing is the whole configuration in force, in
 * the manner of pgbouncer's SHOW CONFIG.  A value's source is the line the
 * loader recorded (config.c, on_key) or "default".  Text values go
 * through redact.h before they leave: a conninfo as libpq reads it with its
 * password masked, a URL without its userinfo's password.  Tokens are not
 * keys: nothing here reads provider_conf.token.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config_keys.h"
#include "config_value.h"
#include "redact.h"

#define SHOW_VALUE_MAX 1024 /* a value as listed; longer ones are cut */

const char *const config_when_names[] = {"live", "between_imports", "restart"};

static bool is_string(enum key_type t)
{
	return t == KT_STRING || t == KT_SOCKET_PATH || t == KT_LISTEN || t == KT_URL || t == KT_CONNINFO ||
	       t == KT_TEMPLATE || t == KT_POINTER || t == KT_INITIAL || t == KT_PARAM || t == KT_HEADER;
}

static bool format_text(const struct key_def *k, const char *s, bool masked, char *out, size_t n)
{
	if (!s) {
		out[0] = '\0';
		return false;
	}
	if (!masked) {
		snprintf(out, n, "%s", s);
		return true;
	}
	char *shown = k->type == KT_CONNINFO ? redact_conninfo(s) : redact_dup(s);
	snprintf(out, n, "%s", shown ? shown : "(not shown: out of memory)");
	free(shown);
	return true;
}

/* A header whose name says it carries a credential shows its name only
 * when masked: operators put API keys in static headers too. */
static bool header_secret(const char *line)
{
	static const char *const words[] = {"auth", "key", "token", "secret", "cookie", "pass", "session"};
	size_t name_len = strcspn(line, ":");
	for (size_t i = 0; i < sizeof words / sizeof words[0]; i++) {
		size_t wl = strlen(words[i]);
		for (size_t j = 0; j + wl <= name_len; j++)
			if (strncasecmp(line + j, words[i], wl) == 0)
				return true;
	}
	return false;
}

/* "header": every line, quoted, comma-separated; "(none)" when unset. */
static void format_headers(const struct provider_conf *p, bool masked, char *out, size_t n)
{
	size_t used = 0;
	out[0] = '\0';
	if (!p->n_headers) {
		snprintf(out, n, "(none)");
		return;
	}
	for (size_t i = 0; i < p->n_headers && used < n; i++) {
		const char *h = p->headers[i];
		int w = masked && header_secret(h)
		                ? snprintf(out + used, n - used, "%s'%.*s: (not shown)'", i ? ", " : "",
		                           (int)strcspn(h, ":"), h)
		                : snprintf(out + used, n - used, "%s'%s'", i ? ", " : "", h);
		used += w > 0 ? (size_t)w : 0;
	}
}

bool config_key_format(const struct key_def *k, const void *obj, bool masked, char *out, size_t n)
{
	const char *f = (const char *)obj + k->offset;
	bool b;
	double d;
	size_t sz;
	uint32_t v;
	if (k->type == KT_HEADER_LINES) {
		format_headers(obj, masked, out, n);
		return ((const struct provider_conf *)obj)->n_headers > 0;
	}
	if (is_string(k->type)) {
		const char *s;
		memcpy(&s, f, sizeof s);
		return format_text(k, s, masked, out, n);
	}
	switch (k->type) {
	case KT_CHOICE:
		memcpy(&v, f, sizeof v);
		snprintf(out, n, "%s", k->choices[v]);
		break;
	case KT_CONNECTIONS: {
		const struct provider_conf *pc = obj;
		if (pc->max_connections_auto)
			snprintf(out, n, "auto");
		else
			snprintf(out, n, "%u", pc->max_connections);
		break;
	}
	case KT_NEXT: {
		const struct stage_conf *st = obj;
		snprintf(out, n, "%s", st->next == NEXT_POINTER ? st->next_pointer : config_next_names[st->next]);
		break;
	}
	case KT_BOOL:
		memcpy(&b, f, sizeof b);
		snprintf(out, n, "%s", b ? "yes" : "no");
		break;
	case KT_DOUBLE:
		memcpy(&d, f, sizeof d);
		snprintf(out, n, "%g", d);
		break;
	case KT_SIZE:
		memcpy(&sz, f, sizeof sz);
		config_value_format_size(sz, out, n);
		break;
	case KT_DURATION:
		memcpy(&v, f, sizeof v);
		config_value_format_duration(v, out, n);
		break;
	default: /* KT_UINT */
		memcpy(&v, f, sizeof v);
		snprintf(out, n, "%u", v);
		break;
	}
	return true;
}

static enum config_when key_when(const struct key_def *k)
{
	return k->flags & KF_RESTART ? CONFIG_WHEN_RESTART : k->flags & KF_LIVE ? CONFIG_WHEN_LIVE : CONFIG_WHEN_BETWEEN;
}

static void each_key(enum section_kind kind, const char *name, const void *obj, config_entry_fn fn, void *arg)
{
	const unsigned *lines = config_key_lines_of(kind, obj);
	for (size_t i = 0; i < config_n_keys; i++) {
		const struct key_def *k = &config_keys[i];
		char value[SHOW_VALUE_MAX];
		if (k->section != kind)
			continue;
		bool set = config_key_format(k, obj, true, value, sizeof value);
		struct config_entry e = {
			.section = config_section_names[kind], .name = name, .key = k->name,
			.value = set ? value : NULL, .def = k->def, .derived = (k->flags & KF_DERIVED) != 0,
			.line = lines[i], .when = key_when(k),
		};
		fn(arg, &e);
	}
}

void config_each_entry(const struct config *c, config_entry_fn fn, void *arg)
{
	each_key(SECT_DAEMON, NULL, c, fn, arg);
	each_key(SECT_DATABASE, NULL, c, fn, arg);
	for (size_t i = 0; i < c->n_providers; i++)
		each_key(SECT_PROVIDER, c->providers[i].name, &c->providers[i], fn, arg);
	for (size_t i = 0; i < c->n_stages; i++)
		each_key(SECT_STAGE, c->stages[i].name, &c->stages[i], fn, arg);
}
