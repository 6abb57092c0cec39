/* paginate — where an input's next page is, and when to stop following.
 *
 * A stage pages through a list (the root's races, one race's entries) one
 * page at a time.  paginate_next() reads the next page's URL from a page
 * the way the stage's `next` setting says: a JSON pointer into the body
 * (relative links resolved against the page's URL), the Link header, or
 * none.  paginate_follow() then decides whether to follow it: not past a
 * bound on the pages of one input, and not back to a page already fetched,
 * so that a provider whose links cycle cannot keep an import running.
 *
 * Pure: no I/O, no clock.  Failures are a class (a negated errno) and a
 * sentence in err (ERR_MAX bytes) naming the setting; the caller records
 * them, and the list ends at that page.
 *
 * Ownership: the caller owns the rule and its strings, and one struct
 * paginate per input (zeroed before its first page); the URL paginate_next()
 * returns is malloc'd and the caller's.
 */
#ifndef RACED_PAGINATE_H
#define RACED_PAGINATE_H

#include "config.h"
#include "error.h"
#include "jsondoc.h"

#include <stdint.h>

struct paginate_rule {
	enum next_kind next;    /* the stage's `next` setting */
	const char *pointer;    /* NEXT_POINTER: where the body holds the link */
	const char *stage;      /* the stage's name, for messages */
	uint32_t max_pages;     /* pages one input may span: [stage] max_pages */
};

/* One input's walk.  Brent's cycle detection over the pages' URL hashes
 * keeps one mark (moved to the latest page at powers of two): O(1) memory
 * whatever the number of pages, a cycle caught within about twice its
 * length.  The first page is a second, fixed mark: a link back to it (the
 * commonest cycle, a last page pointing at the first) is caught before
 * the first page is fetched a second time. */
struct paginate {
	uint64_t first;         /* hash of the input's first page */
	uint64_t mark;          /* hash of a page fetched before */
	uint32_t power, steps;
	uint32_t pages;         /* next links followed */
};

/* The page at page_url (its URL after redirects, which relative links are
 * resolved against, is base_url), with body doc and Link rel="next" target
 * link_next (absolute, or NULL): its next page's URL in *next, malloc'd, or
 * *next NULL at the end of the list.  -EINVAL when the link is not a string
 * or null or cannot be resolved, -ENOMEM; *next is NULL then. */
RACED_MUST_CHECK
int paginate_next(const struct paginate_rule *rule, const struct jsondoc *doc,
                  const char *base_url, const char *link_next, char **next, char *err);

/* Follow next, found on the page at page_url?  0: yes (it counts as one
 * page more); -ERANGE when the input has spanned rule->max_pages pages
 * already; -ELOOP when next leads back to a page already fetched. */
RACED_MUST_CHECK
int paginate_follow(struct paginate *pg, const struct paginate_rule *rule, const char *page_url,
                    const char *next, char *err);

#endif
