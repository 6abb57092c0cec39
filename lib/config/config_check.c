/* config_check — see config_check.h.
 *
 * Design: each check is a function over the finished struct config that
 * returns at the first fault.  Stages are found by name with a linear scan:
 * a pipeline has a handful of stages, and the loader runs this once.  The
 * cycle check walks up from each stage: a walk longer than the number of
 * stages has entered a cycle.
 */
#include "config_check.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_value.h"
#include "suggest.h"
#include "urltemplate.h"

__attribute__((format(printf, 4, 5)))
static int fault(struct config_fault *f, size_t stage, const char *key, const char *fmt, ...)
{
	va_list ap;
	f->stage = stage;
	f->key = key;
	va_start(ap, fmt);
	vsnprintf(f->msg, sizeof f->msg, fmt, ap);
	va_end(ap);
	return -1;
}

static size_t stage_index(const struct config *c, const char *name)
{
	for (size_t i = 0; i < c->n_stages; i++)
		if (strcmp(c->stages[i].name, name) == 0)
			return i;
	return CONFIG_FAULT_NO_STAGE;
}

/* The stage (or provider) name nearest to typed, for "did you mean". */
static const char *nearest(const struct config *c, bool provider, const char *typed)
{
	size_t best = SIZE_MAX, n = provider ? c->n_providers : c->n_stages;
	const char *sugg = NULL;
	for (size_t i = 0; i < n; i++) {
		const char *name = provider ? c->providers[i].name : c->stages[i].name;
		if (suggest_near(typed, name, &best))
			sugg = name;
	}
	return sugg;
}

static int check_references(const struct config *c, struct config_fault *f)
{
	for (size_t i = 0; i < c->n_stages; i++) {
		const struct stage_conf *st = &c->stages[i];
		if (!config_provider(c, st->provider)) {
			const char *sugg = nearest(c, true, st->provider);
			if (sugg)
				return fault(f, i, "provider", "provider '%s' is not defined (did you mean '%s'?)",
				             st->provider, sugg);
			return fault(f, i, "provider", "provider '%s' is not defined (add a [provider %s] section)",
			             st->provider, st->provider);
		}
		if (st->parent && stage_index(c, st->parent) == CONFIG_FAULT_NO_STAGE) {
			const char *sugg = nearest(c, false, st->parent);
			if (sugg)
				return fault(f, i, "parent", "parent '%s' is not a stage (did you mean '%s'?)", st->parent,
				             sugg);
			return fault(f, i, "parent", "parent '%s' is not a stage", st->parent);
		}
	}
	return 0;
}

/* The stage above at (every parent exists: check_references passed). */
static size_t parent_of(const struct config *c, size_t at)
{
	return stage_index(c, c->stages[at].parent);
}

/* Names the cycle that the walk up from `from` enters, starting from the
 * cycle's stage that comes first in the file: "b -> c -> b". */
static int cycle_fault(const struct config *c, size_t from, struct config_fault *f)
{
	size_t at = from;
	for (size_t k = 0; k < c->n_stages; k++) /* n steps up: surely on the cycle */
		at = parent_of(c, at);
	size_t first = at;
	for (size_t s = parent_of(c, at); s != at; s = parent_of(c, s))
		if (s < first)
			first = s;
	char chain[ERR_MAX] = "";
	size_t used = 0, s = first;
	do {
		int w = snprintf(chain + used, sizeof chain - used, "%s -> ", c->stages[s].name);
		used += w > 0 ? (size_t)w : 0;
		if (used > sizeof chain - 1)
			used = sizeof chain - 1;
		s = parent_of(c, s);
	} while (s != first);
	snprintf(chain + used, sizeof chain - used, "%s", c->stages[first].name);
	return fault(f, first, "parent", "parents form a cycle: %s (one stage must have no parent)", chain);
}

static int check_cycles(const struct config *c, struct config_fault *f)
{
	for (size_t i = 0; i < c->n_stages; i++) {
		size_t at = i, steps = 0;
		while (c->stages[at].parent && steps <= c->n_stages) {
			at = parent_of(c, at);
			steps++;
		}
		if (steps > c->n_stages)
			return cycle_fault(c, i, f);
	}
	return 0;
}

static int check_single_root(const struct config *c, struct config_fault *f)
{
	size_t root = CONFIG_FAULT_NO_STAGE;
	for (size_t i = 0; i < c->n_stages; i++) {
		if (c->stages[i].parent)
			continue;
		if (root != CONFIG_FAULT_NO_STAGE)
			return fault(f, i, NULL,
			             "has no parent, but [stage %s] (line %u) is already the root; exactly one stage may "
			             "have no parent", c->stages[root].name, c->stages[root].line);
		root = i;
	}
	return 0;
}

/* url read by urltemplate_parse(), as the import reads it; NULL with msg
 * (n bytes, in config's words) when it is not a template. */
static struct urltemplate *parse_template(const char *url, char *msg, size_t n)
{
	enum urltemplate_fault why;
	struct urltemplate *t = urltemplate_parse_fault(url, &why, NULL);
	if (t)
		return t;
	switch (why) {
	case URLTEMPLATE_UNCLOSED:
		snprintf(msg, n, "unclosed '{' in '%s'", url);
		break;
	case URLTEMPLATE_EMPTY:
		snprintf(msg, n, "empty '{}' in '%s' (expected {field} or {/json/pointer})", url);
		break;
	case URLTEMPLATE_BAD_POINTER:
		snprintf(msg, n, "a placeholder in '%s' is not a valid JSON pointer ('~' must be followed by 0 or 1)",
		         url);
		break;
	case URLTEMPLATE_BAD_SCOPE:
		snprintf(msg, n, "a placeholder in '%s' has a dot but no stage before it or no field after it "
		         "(expected {stage.field} or {stage./json/pointer})", url);
		break;
	case URLTEMPLATE_OK:
	case URLTEMPLATE_NO_MEMORY:
		snprintf(msg, n, "out of memory");
		break;
	}
	return NULL;
}

/* Whether url has a password in its userinfo (scheme://user:pw@host). */
static bool has_password(const char *url)
{
	const char *a = strstr(url, "://");
	if (!a)
		return false;
	a += 3;
	size_t len = strcspn(a, "/?#");
	const char *at = memrchr(a, '@', len);
	return at && memchr(a, ':', (size_t)(at - a));
}

int config_check_template(const char *url, size_t *placeholders, char *msg, size_t n)
{
	if (has_password(url)) {
		/* The root's URL is stored with its import (import_runs.root_url,
		 * read back to resume it): a secret has no place there. */
		snprintf(msg, n, "a stage URL may not hold user:password (it is stored with each import): put it "
		         "in the provider's base_url, or better use auth = basic with username and password_file");
		return -1;
	}
	struct urltemplate *t = parse_template(url, msg, n);
	if (!t)
		return -1;
	*placeholders = urltemplate_placeholders(t);
	urltemplate_free(t);
	return 0;
}

/* url with each placeholder filled in with "x", into out (at least
 * strlen(url) + 1 bytes): a value is percent-encoded at run time, so it
 * never changes the URL's structure, and any one value stands for all.
 * Each '{' of a template opens its next placeholder. */
static void fill_template(const char *url, const struct urltemplate *t, char *out)
{
	const char *p = url;
	size_t o = 0;
	for (size_t i = 0; i < urltemplate_placeholders(t); i++) {
		const char *open = strchr(p, '{');
		memcpy(out + o, p, (size_t)(open - p));
		o += (size_t)(open - p);
		out[o++] = 'x';
		p = open + strlen(urltemplate_placeholder(t, i)) + 2;
	}
	strcpy(out + o, p);
}

/* Whether stage i's url (template t), filled in, resolves against its
 * provider's base_url as the fetcher will. */
static int check_resolves(const struct config *c, size_t i, const struct urltemplate *t, struct config_fault *f)
{
	const struct stage_conf *st = &c->stages[i];
	char *filled = malloc(strlen(st->url) + 1);
	CURLU *u = filled ? curl_url() : NULL;
	if (!u) {
		free(filled);
		return fault(f, CONFIG_FAULT_NO_STAGE, NULL, "out of memory");
	}
	fill_template(st->url, t, filled);
	CURLUcode uc = curl_url_set(u, CURLUPART_URL, config_provider(c, st->provider)->base_url,
	                            CURLU_NON_SUPPORT_SCHEME);
	if (uc == CURLUE_OK)
		uc = curl_url_set(u, CURLUPART_URL, filled, CURLU_NON_SUPPORT_SCHEME);
	curl_url_cleanup(u);
	free(filled);
	if (uc != CURLUE_OK)
		return fault(f, i, "url", "url: '%s' is not a valid URL (%s)", st->url, curl_url_strerror(uc));
	return 0;
}

static bool uses(const struct urltemplate *t, const char *name)
{
	for (size_t i = 0; i < urltemplate_placeholders(t); i++)
		if (strcmp(urltemplate_placeholder(t, i), name) == 0)
			return true;
	return false;
}

/* The root's url may name {last_success} and {cursor} (config.h), nothing
 * else; with them come `cursor`, `lag` and `initial`, which are useless
 * (so refused) without them. */
static int check_root_template(const struct config *c, size_t i, const struct urltemplate *t,
                               struct config_fault *f)
{
	const struct stage_conf *st = &c->stages[i];
	for (size_t p = 0; p < urltemplate_placeholders(t); p++) {
		const char *ph = urltemplate_placeholder(t, p);
		if (strcmp(ph, CONFIG_URL_LAST_SUCCESS) != 0 && strcmp(ph, CONFIG_URL_CURSOR) != 0)
			return fault(f, i, "url",
			             "url: '%s' uses a field of the parent item, but this is the root stage: it has no "
			             "parent (the root's url may name only {" CONFIG_URL_LAST_SUCCESS "} and {"
			             CONFIG_URL_CURSOR "})", st->url);
	}
	bool last = uses(t, CONFIG_URL_LAST_SUCCESS), cur = uses(t, CONFIG_URL_CURSOR);
	if (cur && !st->cursor)
		return fault(f, i, "url",
		             "url: '{" CONFIG_URL_CURSOR "}' needs 'cursor = /pointer', the field of the root's items "
		             "whose largest stored value it stands for (e.g. cursor = /updated_at)");
	if ((last || cur) && !st->initial)
		return fault(f, i, "url",
		             "url: '{%s}' needs 'initial', the value the first import uses (e.g. initial = %s)",
		             last ? CONFIG_URL_LAST_SUCCESS : CONFIG_URL_CURSOR,
		             last ? "2024-01-01T00:00:00Z" : "2024-01-01T00:00:00Z or initial = 0");
	if (last && !cur && config_value_timestamp(st->initial) < 0)
		return fault(f, i, "initial",
		             "initial: '%s' is not an ISO 8601 timestamp, but {" CONFIG_URL_LAST_SUCCESS "} is a time "
		             "(expected e.g. 2024-01-01T00:00:00Z)", st->initial);
	if (st->cursor && !cur)
		return fault(f, i, "cursor",
		             "cursor: set, but url '%s' does not use {" CONFIG_URL_CURSOR "}: add {" CONFIG_URL_CURSOR
		             "} to the url or remove cursor", st->url);
	if (st->initial && !last && !cur)
		return fault(f, i, "initial",
		             "initial: set, but url '%s' uses neither {" CONFIG_URL_LAST_SUCCESS "} nor {"
		             CONFIG_URL_CURSOR "}: add one to the url or remove initial", st->url);
	if (st->lag_ms && !last && !cur)
		return fault(f, i, "lag",
		             "lag: set, but url '%s' uses neither {" CONFIG_URL_LAST_SUCCESS "} nor {"
		             CONFIG_URL_CURSOR "}: add one to the url or remove lag", st->url);
	return 0;
}

/* Stage i's ancestors, parent first, as "entries, races" into out (n
 * bytes).  Only after check_cycles. */
static void ancestors(const struct config *c, size_t i, char *out, size_t n)
{
	size_t o = 0;
	out[0] = '\0';
	for (const struct stage_conf *a = config_stage(c, c->stages[i].parent); a && o < n;
	     a = a->parent ? config_stage(c, a->parent) : NULL) {
		int w = snprintf(out + o, n - o, "%s%s", o ? ", " : "", a->name);
		if (w < 0)
			break;
		o += (size_t)w;
	}
}

/* {stage.field} in stage i's url names a field of an ancestor's item: the
 * stage must be an ancestor, and the items in between must come one from
 * each parent item (a dedupe stage's item has many parents, so which
 * ancestor's value it would carry is not defined). */
static int check_scope(const struct config *c, size_t i, const struct urltemplate *t, size_t p,
                       struct config_fault *f)
{
	const struct stage_conf *st = &c->stages[i];
	const char *scope;
	size_t len = urltemplate_scope(t, p, &scope);
	char anc[ERR_MAX / 2];
	if (len == 0)
		return 0;
	ancestors(c, i, anc, sizeof anc);
	const struct stage_conf *dedupe = NULL;
	for (const struct stage_conf *a = config_stage(c, st->parent); a;
	     a = a->parent ? config_stage(c, a->parent) : NULL) {
		if (strlen(a->name) == len && memcmp(a->name, scope, len) == 0) {
			if (dedupe)
				return fault(f, i, "url",
				             "url: '{%s}' names a field of [stage %s], but [stage %s] between them "
				             "has dedupe = yes: its items have many parent items, so which %s item's "
				             "value to use is not defined; name a field of [stage %s] or a stage "
				             "below it", urltemplate_placeholder(t, p), a->name, dedupe->name,
				             a->name, dedupe->name);
			return 0;
		}
		if (a->dedupe)
			dedupe = a;
	}
	bool is_stage = false;
	for (size_t k = 0; k < c->n_stages; k++)
		if (strlen(c->stages[k].name) == len && memcmp(c->stages[k].name, scope, len) == 0)
			is_stage = true;
	return fault(f, i, "url",
	             "url: '{%s}' names %s '%.*s', which is not an ancestor of [stage %s]; its ancestors "
	             "are: %s (a field of the parent item whose name has a dot is written as a "
	             "pointer: {/%s})", urltemplate_placeholder(t, p), is_stage ? "stage" : "no stage",
	             (int)len, scope, st->name, anc, urltemplate_placeholder(t, p));
}

/* In a child stage {name} is the parent item's field, but these two names
 * mean the import's state in the root: refused, rather than read as a
 * field whose meaning depends on where it is.  {stage.field} must name an
 * ancestor (check_scope). */
static int check_child_template(const struct config *c, size_t i, const struct urltemplate *t,
                                struct config_fault *f)
{
	const char *names[] = {CONFIG_URL_LAST_SUCCESS, CONFIG_URL_CURSOR};
	for (size_t n = 0; n < 2; n++)
		if (uses(t, names[n]))
			return fault(f, i, "url",
			             "url: '{%s}' may only be used in the root stage's url (it is the import's state, not "
			             "a field of the parent item); to use a parent field of that name write {/%s}",
			             names[n], names[n]);
	for (size_t p = 0; p < urltemplate_placeholders(t); p++)
		if (check_scope(c, i, t, p, f) < 0)
			return -1;
	return 0;
}

static int check_url(const struct config *c, size_t i, struct config_fault *f)
{
	const struct stage_conf *st = &c->stages[i];
	char msg[ERR_MAX];
	struct urltemplate *t = parse_template(st->url, msg, sizeof msg);
	if (!t)
		return fault(f, i, "url", "url: %s", msg);
	int rc = st->parent ? check_child_template(c, i, t, f) : check_root_template(c, i, t, f);
	if (rc == 0)
		rc = check_resolves(c, i, t, f);
	urltemplate_free(t);
	return rc;
}

static int check_urls(const struct config *c, struct config_fault *f)
{
	for (size_t i = 0; i < c->n_stages; i++)
		if (check_url(c, i, f) < 0)
			return -1;
	return 0;
}

/* The name of the path view of leaf i (store_views.c makes it: the stages
 * from the root down, joined by '_'; a name of 64 bytes or more becomes
 * "<leaf>_path"), in out; "" when i is the root or has children. */
static void path_view_name(const struct config *c, size_t i, char *out, size_t n)
{
	out[0] = '\0';
	if (!c->stages[i].parent)
		return;
	for (size_t k = 0; k < c->n_stages; k++)
		if (c->stages[k].parent && strcmp(c->stages[k].parent, c->stages[i].name) == 0)
			return;
	char buf[512] = "";
	size_t at = i, depth = 0;
	while (at != CONFIG_FAULT_NO_STAGE && depth++ < c->n_stages) {
		char tmp[512];
		snprintf(tmp, sizeof tmp, "%s%s%s", c->stages[at].name, buf[0] ? "_" : "", buf);
		snprintf(buf, sizeof buf, "%s", tmp);
		at = c->stages[at].parent ? stage_index(c, c->stages[at].parent) : CONFIG_FAULT_NO_STAGE;
	}
	if (strlen(buf) < 64)
		snprintf(out, n, "%s", buf);
	else
		snprintf(out, n, "%s_path", c->stages[i].name);
}

/* A stage table may not take the name of a view or link table raced makes
 * for another stage (docs/data-model.md): <stage>_current, <stage>_parents
 * of a dedupe stage, a path view. */
static int check_names(const struct config *c, struct config_fault *f)
{
	char name[600];
	for (size_t i = 0; i < c->n_stages; i++) {
		const struct stage_conf *st = &c->stages[i];
		for (size_t k = 0; k < c->n_stages; k++) {
			const char *what = NULL;
			snprintf(name, sizeof name, "%s_current", st->name);
			if (strcmp(c->stages[k].name, name) == 0)
				what = "the view of its current items";
			snprintf(name, sizeof name, "%s_parents", st->name);
			if (!what && st->dedupe && st->parent && strcmp(c->stages[k].name, name) == 0)
				what = "its link table";
			path_view_name(c, i, name, sizeof name);
			if (!what && name[0] && strcmp(c->stages[k].name, name) == 0)
				what = "the view of its path from the root";
			if (what)
				return fault(f, k, NULL, "the stage's table would take the name of %s of "
				             "[stage %s] (%s): rename one of the stages", what, st->name,
				             c->stages[k].name);
		}
	}
	return 0;
}

int config_check_pipeline(const struct config *c, struct config_fault *f)
{
	if (c->n_stages == 0)
		return fault(f, CONFIG_FAULT_NO_STAGE, NULL,
		             "no [stage NAME] section: a pipeline needs at least one stage");
	if (check_references(c, f) < 0 || check_cycles(c, f) < 0 || check_single_root(c, f) < 0 ||
	    check_urls(c, f) < 0 || check_names(c, f) < 0)
		return -1;
	return 0;
}

int config_order_stages(struct config *c, char *err)
{
	struct stage_conf *sorted = calloc(c->n_stages, sizeof *sorted);
	bool *done = calloc(c->n_stages, sizeof *done);
	if (!sorted || !done) {
		free(sorted);
		free(done);
		return err_set_class(err, ENOMEM, "out of memory");
	}
	size_t n = 0;
	while (n < c->n_stages) {
		for (size_t i = 0; i < c->n_stages; i++) {
			if (done[i])
				continue;
			const char *par = c->stages[i].parent;
			bool ready = !par;
			for (size_t j = 0; par && j < n; j++)
				if (strcmp(sorted[j].name, par) == 0)
					ready = true;
			if (ready) {
				sorted[n++] = c->stages[i];
				done[i] = true;
			}
		}
	}
	free(done);
	free(c->stages);
	c->stages = sorted;
	return 0;
}
