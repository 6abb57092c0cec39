/* config_pipeline — see config_pipeline.h.
 *
 * Design: both sides are compared as JSON, `now` first turned into the
 * object config_pipeline_json() writes, so that what is compared is
 * exactly what was kept; a field's values are shown as the user writes
 * them ('...' for text, yes/no, (none) for no parent).
 */
#include "config_pipeline.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "redact.h"

#define VALUE_MAX 200 /* a value as shown in the message; longer ones are cut */

/* The fields compared, in the order a difference is looked for. */
static const char *const fields[] = {"parent", "provider", "url", "items", "key", "next", "dedupe"};
#define N_FIELDS (sizeof fields / sizeof fields[0])

static json_t *text_or_null(const char *s)
{
	return s ? json_string(s) : json_null();
}

/* The companions of the stage's paging style (config.c's paging keys):
 * they decide a page's URL as much as `next` does.  NULL for a style
 * without them (none, link, a pointer), and when out of memory (*oom). */
static json_t *paging_json(const struct stage_conf *st, bool *oom)
{
	json_t *o = NULL;
	switch (st->next) {
	case NEXT_OFFSET:
		o = json_pack("{s:s,s:s,s:I,s:o,s:o}", "offset_param", st->offset_param, "limit_param",
		              st->limit_param, "limit", (json_int_t)st->limit, "total", text_or_null(st->total),
		              "has_more", text_or_null(st->has_more));
		break;
	case NEXT_PAGE_NUMBER:
		o = json_pack("{s:s,s:I,s:o,s:o}", "page_param", st->page_param, "first_page",
		              (json_int_t)st->first_page, "total_pages", text_or_null(st->total_pages), "has_more",
		              text_or_null(st->has_more));
		break;
	case NEXT_CURSOR:
		o = json_pack("{s:s,s:s,s:o}", "cursor_pointer", st->cursor_pointer, "cursor_param", st->cursor_param,
		              "has_more", text_or_null(st->has_more));
		break;
	case NEXT_HEADER_CURSOR:
		o = json_pack("{s:s,s:s,s:o}", "cursor_header", st->cursor_header, "cursor_param", st->cursor_param,
		              "has_more", text_or_null(st->has_more));
		break;
	default:
		return NULL;
	}
	*oom = !o;
	return o;
}

static json_t *stage_json(const struct stage_conf *st)
{
	char *url = redact_dup(st->url);
	const char *next = st->next == NEXT_POINTER ? st->next_pointer : config_next_names[st->next];
	json_t *o = url ? json_pack("{s:o,s:s,s:s,s:s,s:s,s:s,s:b}", "parent", text_or_null(st->parent), "provider",
	                            st->provider, "url", url, "items", st->items ? st->items : "", "key",
	                            st->key ? st->key : "", "next", next, "dedupe", st->dedupe)
	                : NULL;
	free(url);
	bool oom = false;
	json_t *paging = o ? paging_json(st, &oom) : NULL;
	if (oom || (paging && json_object_set_new(o, "paging", paging) < 0)) {
		json_decref(o);
		return NULL;
	}
	return o;
}

json_t *config_pipeline_json(const struct config *c)
{
	json_t *all = json_object();
	for (size_t i = 0; all && i < c->n_stages; i++) {
		json_t *st = stage_json(&c->stages[i]);
		if (!st || json_object_set_new(all, c->stages[i].name, st) < 0) {
			json_decref(all);
			return NULL;
		}
	}
	return all;
}

/* A field's value as raced.conf would write it. */
static void shown(const json_t *v, char *out, size_t n)
{
	if (json_is_string(v))
		snprintf(out, n, "'%s'", json_string_value(v));
	else if (json_is_boolean(v))
		snprintf(out, n, "%s", json_is_true(v) ? "yes" : "no");
	else if (json_is_integer(v))
		snprintf(out, n, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
	else if (json_is_null(v))
		snprintf(out, n, "(none)");
	else
		snprintf(out, n, "(not recorded)");
}

#define FIX "resume it with the configuration it began with, or start a new import (racectl start-import, or --full)"

static int differs(char *msg, size_t len, const char *stage, const char *what, int64_t id)
{
	snprintf(msg, len, "[stage %s] %s since import %" PRId64 " began: " FIX, stage, what, id);
	return -1;
}

/* The first field of one stage that differs, or 0. */
static int stage_diff(const json_t *was, const json_t *now, const char *stage, int64_t id, char *msg, size_t len)
{
	for (size_t f = 0; f < N_FIELDS; f++) {
		const json_t *a = json_object_get(was, fields[f]), *b = json_object_get(now, fields[f]);
		if (a && json_equal((json_t *)a, (json_t *)b))
			continue;
		char va[VALUE_MAX], vb[VALUE_MAX], what[2 * VALUE_MAX + 64];
		shown(a, va, sizeof va);
		shown(b, vb, sizeof vb);
		snprintf(what, sizeof what, "%s changed from %s to %s", fields[f], va, vb);
		return differs(msg, len, stage, what, id);
	}
	/* The paging companions, named one by one.  A run kept by a raced
	 * that did not record them (no "paging") is not checked on them. */
	const json_t *pa = json_object_get(was, "paging"), *pb = json_object_get(now, "paging");
	if (!pa || json_equal((json_t *)pa, (json_t *)pb))
		return 0;
	const char *k;
	json_t *va;
	json_object_foreach((json_t *)pa, k, va) {
		const json_t *vb = pb ? json_object_get(pb, k) : NULL;
		if (vb && json_equal(va, (json_t *)vb))
			continue;
		char sa[VALUE_MAX], sb[VALUE_MAX], what[2 * VALUE_MAX + 64];
		shown(va, sa, sizeof sa);
		shown(vb, sb, sizeof sb);
		snprintf(what, sizeof what, "%s changed from %s to %s", k, sa, sb);
		return differs(msg, len, stage, what, id);
	}
	return differs(msg, len, stage, "paging changed", id);
}

int config_pipeline_diff(const json_t *was, const struct config *now, int64_t import_id, char *msg, size_t len)
{
	if (!json_is_object(was)) {
		snprintf(msg, len, "import %" PRId64 " kept no record of its pipeline, so it cannot be checked against "
		         "this configuration: start a new import (racectl start-import, or --full)", import_id);
		return -1;
	}
	json_t *cur = config_pipeline_json(now);
	if (!cur) {
		snprintf(msg, len, "out of memory");
		return -1;
	}
	int rc = 0;
	for (size_t i = 0; rc == 0 && i < now->n_stages; i++) {
		const char *name = now->stages[i].name;
		const json_t *w = json_object_get(was, name);
		rc = !w ? differs(msg, len, name, "added", import_id)
		        : stage_diff(w, json_object_get(cur, name), name, import_id, msg, len);
	}
	const char *name;
	json_t *w;
	json_object_foreach((json_t *)was, name, w) {
		if (rc == 0 && !json_object_get(cur, name))
			rc = differs(msg, len, name, "removed", import_id);
	}
	json_decref(cur);
	return rc;
}
