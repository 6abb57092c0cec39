/* paginate — see paginate.h.
 *
 * Design: every style is a function from one page to the next URL, with
 * nothing kept between pages but what the cycle checks need: an offset or
 * a page number is read back from the page's own URL, so that a walk that
 * went on from a stored next URL (a 304, a resumed run) computes the same
 * next page as one that fetched every page.  Each style first reads what
 * the page says (its items, the total, has_more, the cursor) and then
 * decides, in one place, between the next page, the end and an error.
 */
#include "paginate.h"

#include "dedupe.h"
#include "fetch.h"
#include "urlquery.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A count read from a body or a URL: at most this (2^53, what a JSON
 * number holds exactly), so that offset + items never overflows. */
#define PAGINATE_COUNT_MAX (UINT64_C(1) << 53)

struct paginate_rule paginate_rule_of(const struct stage_conf *c)
{
	struct paginate_rule r = {
		.next = c->next, .pointer = c->next_pointer, .items = c->items,
		.limit_param = c->limit_param, .limit = c->limit, .first_page = c->first_page,
		.cursor = c->cursor_pointer, .header = c->cursor_header, .has_more = c->has_more,
		.stage = c->name, .max_pages = c->max_pages,
	};
	switch (c->next) {
	case NEXT_OFFSET:
		r.param = c->offset_param;
		r.total = c->total;
		break;
	case NEXT_PAGE_NUMBER:
		r.param = c->page_param;
		r.total = c->total_pages;
		break;
	case NEXT_CURSOR:
	case NEXT_HEADER_CURSOR:
		r.param = c->cursor_param;
		break;
	default:
		break;
	}
	return r;
}

/* The next link at rule->pointer: a string resolved against base_url, or
 * the end of the list when it is absent, null or "". */
static int next_from_pointer(const struct paginate_rule *rule, const struct jsondoc *doc,
                             const char *base_url, char **next, char *err)
{
	uint32_t v = jsondoc_get(doc, 0, rule->pointer);
	enum jsondoc_type t = jsondoc_type(doc, v);
	if (t == 0 || t == JSONDOC_NULL) /* 0: absent */
		return 0;
	if (t != JSONDOC_STRING)
		return err_set_class(err, EINVAL, "the next link at '%s' is not a string or null "
		                     "(setting 'next' of [stage %s])", rule->pointer, rule->stage);
	size_t len;
	char *ref = jsondoc_scalar(doc, v, &len);
	if (!ref)
		return err_set_class(err, ENOMEM, "out of memory");
	int rc = 0;
	if (len > 0 && fetch_resolve_url(base_url, ref, next, err) < 0) {
		*next = NULL;
		rc = -EINVAL;
	}
	free(ref);
	return rc;
}

/* A whole number 0..PAGINATE_COUNT_MAX written in decimal. */
static int parse_count(const char *s, uint64_t *out)
{
	uint64_t v = 0;
	if (!*s)
		return -1;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		v = v * 10 + (uint64_t)(*s - '0');
		if (v > PAGINATE_COUNT_MAX)
			return -1;
	}
	*out = v;
	return 0;
}

/* The whole number at ptr (a JSON number or a string of digits), the
 * value of setting `key`. */
static int body_count(const struct paginate_rule *rule, const struct jsondoc *doc, const char *ptr,
                      const char *key, uint64_t *out, char *err)
{
	char text[32];
	size_t len;
	uint32_t v = jsondoc_get(doc, 0, ptr);
	enum jsondoc_type t = jsondoc_type(doc, v);
	if ((t != JSONDOC_NUMBER && t != JSONDOC_STRING) ||
	    jsondoc_scalar_to(doc, v, text, sizeof text, &len) < 0 || parse_count(text, out) < 0)
		return err_set_class(err, EINVAL, "the page has no whole number at '%s' (setting '%s' of "
		                     "[stage %s])", ptr, key, rule->stage);
	return 0;
}

/* has_more's boolean, or *set false when the rule has none. */
static int body_has_more(const struct paginate_rule *rule, const struct jsondoc *doc, bool *set,
                         bool *more, char *err)
{
	*set = rule->has_more != NULL;
	if (!*set)
		return 0;
	enum jsondoc_type t = jsondoc_type(doc, jsondoc_get(doc, 0, rule->has_more));
	if (t != JSONDOC_TRUE && t != JSONDOC_FALSE)
		return err_set_class(err, EINVAL, "the page has no true or false at '%s' (setting 'has_more' "
		                     "of [stage %s])", rule->has_more, rule->stage);
	*more = t == JSONDOC_TRUE;
	return 0;
}

/* The number in the page URL's parameter rule->param, or dflt without
 * one. */
static int url_count(const struct paginate_rule *rule, const char *url, uint64_t dflt, uint64_t *out,
                     char *err)
{
	char *v = NULL;
	int rc = urlquery_get(url, rule->param, &v, err);
	if (rc < 0)
		return rc;
	*out = dflt;
	if (v && parse_count(v, out) < 0)
		rc = err_set_class(err, EINVAL, "the page's URL has '%s=%s', not a whole number (setting "
		                   "'%s' of [stage %s])", rule->param, v, rule->next == NEXT_OFFSET ?
		                   "offset_param" : "page_param", rule->stage);
	free(v);
	return rc;
}

/* The page URL with rule->param set to the number v. */
static int url_with_count(const struct paginate_rule *rule, const char *url, uint64_t v, char **next,
                          char *err)
{
	char text[24];
	snprintf(text, sizeof text, "%" PRIu64, v);
	return urlquery_set(url, rule->param, text, next, err);
}

static int offset_next(const struct paginate_rule *rule, const struct paginate_page *page, uint64_t n,
                       char **next, char *err)
{
	uint64_t offset, total = 0;
	bool has_more_set, more = false;
	int rc = url_count(rule, page->url, 0, &offset, err);
	if (rc == 0 && rule->total)
		rc = body_count(rule, page->doc, rule->total, "total", &total, err);
	if (rc == 0)
		rc = body_has_more(rule, page->doc, &has_more_set, &more, err);
	if (rc < 0)
		return rc;
	if (n == 0 && rule->total && offset < total)
		return err_set_class(err, EPROTO, "the page at offset %" PRIu64 " is empty, but the total at '%s' "
		                     "is %" PRIu64 ": the provider's total is larger than its data (setting "
		                     "'total' of [stage %s])", offset, rule->total, total, rule->stage);
	if (n == 0 && has_more_set && more)
		return err_set_class(err, EPROTO, "the page at offset %" PRIu64 " is empty, but '%s' is true "
		                     "(setting 'has_more' of [stage %s])", offset, rule->has_more, rule->stage);
	uint64_t after = offset + n;
	bool end = n == 0 || (rule->total && after >= total) || (has_more_set && !more) ||
	           (!rule->total && !has_more_set && n < rule->limit);
	return end ? 0 : url_with_count(rule, page->url, after, next, err);
}

static int page_number_next(const struct paginate_rule *rule, const struct paginate_page *page, uint64_t n,
                            char **next, char *err)
{
	uint64_t number, pages = 0;
	bool has_more_set, more = false;
	int rc = url_count(rule, page->url, rule->first_page, &number, err);
	if (rc == 0 && rule->total)
		rc = body_count(rule, page->doc, rule->total, "total_pages", &pages, err);
	if (rc == 0)
		rc = body_has_more(rule, page->doc, &has_more_set, &more, err);
	if (rc < 0)
		return rc;
	/* pages numbered from first_page: the last is first_page + pages - 1 */
	bool before_last = rule->total && number + 1 < rule->first_page + pages;
	if (n == 0 && rule->total && number < rule->first_page + pages)
		return err_set_class(err, EPROTO, "page %" PRIu64 " is empty, but the total of pages at '%s' is "
		                     "%" PRIu64 ": the provider's total is larger than its data (setting "
		                     "'total_pages' of [stage %s])", number, rule->total, pages, rule->stage);
	if (n == 0 && has_more_set && more)
		return err_set_class(err, EPROTO, "page %" PRIu64 " is empty, but '%s' is true (setting "
		                     "'has_more' of [stage %s])", number, rule->has_more, rule->stage);
	bool end = n == 0 || (rule->total && !before_last) || (has_more_set && !more);
	return end ? 0 : url_with_count(rule, page->url, number + 1, next, err);
}

/* The next cursor, from the body or the header, in *cursor (malloc'd), or
 * NULL when there is none. */
static int read_cursor(const struct paginate_rule *rule, const struct paginate_page *page, char **cursor,
                       char *err)
{
	const char *key = rule->next == NEXT_CURSOR ? "cursor_pointer" : "cursor_header";
	const char *where = rule->next == NEXT_CURSOR ? rule->cursor : rule->header;
	size_t len = 0;
	*cursor = NULL;
	if (rule->next == NEXT_HEADER_CURSOR) {
		len = page->header ? strlen(page->header) : 0;
		if (len > 0 && len <= PAGINATE_CURSOR_MAX && !(*cursor = strdup(page->header)))
			return err_set_class(err, ENOMEM, "out of memory");
	} else {
		uint32_t v = jsondoc_get(page->doc, 0, rule->cursor);
		enum jsondoc_type t = jsondoc_type(page->doc, v);
		if (t == 0 || t == JSONDOC_NULL)
			return 0;
		if (t != JSONDOC_STRING && t != JSONDOC_NUMBER)
			return err_set_class(err, EINVAL, "the cursor at '%s' is not a string, a number or null "
			                     "(setting 'cursor_pointer' of [stage %s])", rule->cursor, rule->stage);
		if (jsondoc_has_nul(page->doc, v))
			return err_set_class(err, EINVAL, "the cursor at '%s' holds a NUL character (setting "
			                     "'cursor_pointer' of [stage %s])", rule->cursor, rule->stage);
		if (!(*cursor = jsondoc_scalar(page->doc, v, &len)))
			return err_set_class(err, ENOMEM, "out of memory");
	}
	if (len > PAGINATE_CURSOR_MAX) {
		free(*cursor);
		*cursor = NULL;
		return err_set_class(err, EINVAL, "the cursor in %s '%s' is %zu bytes, more than raced "
		                     "follows (%u) (setting '%s' of [stage %s])", rule->next == NEXT_CURSOR ?
		                     "the body at" : "the header", where, len, PAGINATE_CURSOR_MAX, key,
		                     rule->stage);
	}
	if (*cursor && !**cursor) {
		free(*cursor);
		*cursor = NULL;
	}
	return 0;
}

static int cursor_next(const struct paginate_rule *rule, const struct paginate_page *page, char **next,
                       char *err)
{
	bool has_more_set, more = false;
	char *cursor = NULL;
	int rc = body_has_more(rule, page->doc, &has_more_set, &more, err);
	if (rc == 0)
		rc = read_cursor(rule, page, &cursor, err);
	if (rc < 0)
		return rc;
	if (!cursor && has_more_set && more)
		rc = err_set_class(err, EPROTO, "'%s' is true, but the page has no cursor in %s '%s' (setting "
		                   "'has_more' of [stage %s])", rule->has_more, rule->next == NEXT_CURSOR ?
		                   "the body at" : "the header", rule->next == NEXT_CURSOR ? rule->cursor :
		                   rule->header, rule->stage);
	else if (cursor && !(has_more_set && !more))
		rc = urlquery_set(page->url, rule->param, cursor, next, err);
	free(cursor);
	return rc;
}

/* The number of items on the page (the document is one when items is
 * ""), and the hash of their text. */
static size_t page_items(const struct paginate_rule *rule, const struct jsondoc *doc, uint64_t *hash)
{
	uint32_t v = rule->items && rule->items[0] ? jsondoc_get(doc, 0, rule->items) : 0;
	size_t len;
	const char *text = jsondoc_text(doc, v, &len);
	*hash = text ? dedupe_hash(text, len) : 0;
	if (!rule->items || !rule->items[0])
		return 1;
	return jsondoc_type(doc, v) == JSONDOC_ARRAY ? jsondoc_size(doc, v) : 0;
}

/* The setting a repeated page points at: the parameter the provider ignores. */
static const char *repeat_setting(enum next_kind k)
{
	switch (k) {
	case NEXT_OFFSET: return "offset_param";
	case NEXT_PAGE_NUMBER: return "page_param";
	case NEXT_CURSOR:
	case NEXT_HEADER_CURSOR: return "cursor_param";
	default: return "next";
	}
}

/* The setting a cycle of next URLs points at: where the URL came from. */
static const char *cycle_setting(enum next_kind k)
{
	switch (k) {
	case NEXT_CURSOR: return "cursor_pointer";
	case NEXT_HEADER_CURSOR: return "cursor_header";
	default: return repeat_setting(k);
	}
}

int paginate_first(const struct paginate_rule *rule, const char *url, char **first, char *err)
{
	char text[16];
	if (rule->next != NEXT_OFFSET) {
		*first = strdup(url);
		return *first ? 0 : err_set_class(err, ENOMEM, "out of memory");
	}
	snprintf(text, sizeof text, "%" PRIu32, rule->limit);
	return urlquery_set(url, rule->limit_param, text, first, err);
}

int paginate_next(struct paginate *pg, const struct paginate_rule *rule, const struct paginate_page *page,
                  char **next, char *err)
{
	*next = NULL;
	if (rule->next == NEXT_NONE)
		return 0;
	uint64_t hash;
	size_t n = page_items(rule, page->doc, &hash);
	if (n > 0 && pg->has_items_hash && hash == pg->items_hash)
		return err_set_class(err, ELOOP, "the page %s serves the same %zu items as the page before it: the "
		                     "provider ignores the paging parameter or repeats its last page (setting '%s' "
		                     "of [stage %s])", page->url, n, repeat_setting(rule->next), rule->stage);
	if (n > 0) {
		pg->items_hash = hash;
		pg->has_items_hash = true;
	}
	int rc = 0;
	switch (rule->next) {
	case NEXT_LINK:
		if (page->link_next && !(*next = strdup(page->link_next)))
			rc = err_set_class(err, ENOMEM, "out of memory");
		break;
	case NEXT_POINTER:
		rc = next_from_pointer(rule, page->doc, page->base_url, next, err);
		break;
	case NEXT_OFFSET:
		rc = offset_next(rule, page, n, next, err);
		break;
	case NEXT_PAGE_NUMBER:
		rc = page_number_next(rule, page, n, next, err);
		break;
	case NEXT_CURSOR:
	case NEXT_HEADER_CURSOR:
		rc = cursor_next(rule, page, next, err);
		break;
	case NEXT_NONE:
	case NEXT_KINDS:
		break;
	}
	if (rc < 0) {
		free(*next);
		*next = NULL;
	}
	return rc;
}

int paginate_follow(struct paginate *pg, const struct paginate_rule *rule, const char *page_url,
                    const char *next, char *err)
{
	if (pg->pages == 0) {
		pg->first = pg->mark = dedupe_hash(page_url, strlen(page_url));
		pg->power = 1;
		pg->steps = 0;
	}
	/* pages counts the links followed: the input has spanned pages + 1 */
	if (pg->pages + 1 >= rule->max_pages)
		return err_set_class(err, ERANGE, "%u pages fetched for one input, the limit; its next "
		                     "link is not followed (setting 'max_pages' of [stage %s])",
		                     rule->max_pages, rule->stage);
	uint64_t h = dedupe_hash(next, strlen(next));
	if (h == pg->mark || h == pg->first)
		return err_set_class(err, ELOOP, "the next link leads back to %s, a page already "
		                     "fetched (a pagination cycle; setting '%s' of [stage %s])", next,
		                     cycle_setting(rule->next), rule->stage);
	pg->pages++;
	if (++pg->steps == pg->power) {
		pg->mark = h;
		pg->power *= 2;
		pg->steps = 0;
	}
	return 0;
}
