/* paginate — see paginate.h. */
#include "paginate.h"

#include "dedupe.h"
#include "fetch.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

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

int paginate_next(const struct paginate_rule *rule, const struct jsondoc *doc,
                  const char *base_url, const char *link_next, char **next, char *err)
{
	*next = NULL;
	switch (rule->next) {
	case NEXT_NONE:
		return 0;
	case NEXT_LINK:
		if (link_next && !(*next = strdup(link_next)))
			return err_set_class(err, ENOMEM, "out of memory");
		return 0;
	case NEXT_POINTER:
		return next_from_pointer(rule, doc, base_url, next, err);
	}
	return 0;
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
		                     "fetched (a pagination cycle; setting 'next' of [stage %s])", next,
		                     rule->stage);
	pg->pages++;
	if (++pg->steps == pg->power) {
		pg->mark = h;
		pg->power *= 2;
		pg->steps = 0;
	}
	return 0;
}
