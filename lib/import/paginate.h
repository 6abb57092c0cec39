/* paginate — where an input's next page is, and when to stop following.
 *
 * A stage pages through a list (the root's races, one race's entries) one
 * page at a time, the way its `next` setting says (raced.conf(5)):
 *
 *   pointer        a JSON pointer to the next page's URL in the body
 *                  (relative links resolved against the page's URL); the
 *                  list ends when it is absent, null or "".
 *   link           the Link header's rel="next"; ends when there is none.
 *   offset         the page's URL with offset_param = this page's offset +
 *                  its number of items (limit_param = limit is set on the
 *                  first page, paginate_first); ends on an empty page, on a
 *                  short page (fewer than limit items) when neither total
 *                  nor has_more is set, when the next offset reaches the
 *                  total, or when has_more is false.
 *   page_number    the page's URL with page_param = this page's number + 1
 *                  (a URL without it is page first_page); ends on an empty
 *                  page, when this page is the last of total_pages, or when
 *                  has_more is false.
 *   cursor         the page's URL with cursor_param = the cursor at
 *   header_cursor  cursor_pointer in the body, or in the response header
 *                  cursor_header; ends when it is absent, null or "", or
 *                  when has_more is false.
 *   none           one page.
 *
 * A provider that contradicts itself is an error for that input, never a
 * silent end: an empty page before the total (or total_pages) is reached,
 * an empty page or a missing cursor where has_more says there is more, a
 * page serving the same items as the page before it (a provider that
 * ignores the paging parameter, or repeats its last page).
 * paginate_follow() then decides whether to follow the next URL: not past
 * max_pages pages of one input, and not back to a page already fetched (a
 * cursor served again leads back to its page's URL), so that no provider
 * can keep an import running.
 *
 * Pure: no I/O, no clock.  Failures are a class (a negated errno) and a
 * sentence in err (ERR_MAX bytes) naming the setting and the stage; the
 * caller records them with the page's URL, and the list ends at that page.
 *
 * Ownership: the caller owns the rule and its strings (paginate_rule_of()
 * borrows the stage's), and one struct paginate per input (zeroed before
 * its first page); URLs returned are malloc'd and the caller's.
 */
#ifndef RACED_PAGINATE_H
#define RACED_PAGINATE_H

#include "config.h"
#include "error.h"
#include "jsondoc.h"

#include <stdbool.h>
#include <stdint.h>

/* Longest cursor followed (bytes, as received): a longer one is an error
 * naming cursor_pointer or cursor_header. */
#define PAGINATE_CURSOR_MAX 4096u

struct paginate_rule {
	enum next_kind next;    /* the stage's `next` setting */
	const char *pointer;    /* NEXT_POINTER: where the body holds the link */
	const char *items;      /* the stage's `items`: where a page's items are counted */
	const char *param;      /* offset_param, page_param or cursor_param */
	const char *limit_param;/* NEXT_OFFSET */
	uint32_t limit;         /* NEXT_OFFSET: the page size asked for */
	const char *total;      /* NEXT_OFFSET: total; NEXT_PAGE_NUMBER: total_pages; or NULL */
	uint32_t first_page;    /* NEXT_PAGE_NUMBER: 0 or 1 */
	const char *cursor;     /* NEXT_CURSOR: cursor_pointer */
	const char *header;     /* NEXT_HEADER_CURSOR: cursor_header (the fetch captures it) */
	const char *has_more;   /* a JSON pointer to a boolean, or NULL */
	const char *stage;      /* the stage's name, for messages */
	uint32_t max_pages;     /* pages one input may span: [stage] max_pages */
};

/* The rule of stage c, borrowing its strings. */
struct paginate_rule paginate_rule_of(const struct stage_conf *c);

/* One input's walk.  Brent's cycle detection over the pages' URL hashes
 * keeps one mark (moved to the latest page at powers of two): O(1) memory
 * whatever the number of pages, a cycle caught within about twice its
 * length.  The first page is a second, fixed mark: a link back to it (the
 * commonest cycle, a last page pointing at the first) is caught before
 * the first page is fetched a second time.  The hash of the last page's
 * items catches a provider that serves the same page again under a new
 * URL (an offset or page number it ignores). */
struct paginate {
	uint64_t first;         /* hash of the input's first page */
	uint64_t mark;          /* hash of a page fetched before */
	uint32_t power, steps;
	uint32_t pages;         /* next links followed */
	uint64_t items_hash;    /* of the last page read with items */
	bool has_items_hash;
};

/* A page as fetched. */
struct paginate_page {
	const char *url;        /* the URL requested (absolute): computed next
	                           URLs are it with one parameter set */
	const char *base_url;   /* after redirects: relative links resolve against it */
	const struct jsondoc *doc; /* the body */
	const char *link_next;  /* Link rel="next" target (absolute), or NULL */
	const char *header;     /* the cursor_header's value, or NULL */
};

/* The first page's URL of an input whose URL is url (the stage's template
 * expanded), malloc'd in *first: url itself but for offset paging, where
 * limit_param is set to limit.  -ENOMEM. */
RACED_MUST_CHECK
int paginate_first(const struct paginate_rule *rule, const char *url, char **first, char *err);

/* The next page's URL after page, malloc'd in *next, or *next NULL at the
 * end of the list.  -EINVAL when what the body or header holds cannot be
 * read as the setting says (a link that is not a string, a total that is
 * not a whole number, a cursor too long, ...), -EPROTO when the provider
 * contradicts itself (above), -ELOOP when the page serves the same items
 * as the last one, -ENOMEM; *next is NULL then.  pg remembers the page's
 * items for the next call. */
RACED_MUST_CHECK
int paginate_next(struct paginate *pg, const struct paginate_rule *rule, const struct paginate_page *page,
                  char **next, char *err);

/* Follow next, found on the page at page_url?  0: yes (it counts as one
 * page more); -ERANGE when the input has spanned rule->max_pages pages
 * already; -ELOOP when next leads back to a page already fetched. */
RACED_MUST_CHECK
int paginate_follow(struct paginate *pg, const struct paginate_rule *rule, const char *page_url,
                    const char *next, char *err);

#endif
