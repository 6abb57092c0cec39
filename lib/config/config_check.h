/* config_check — the checks that need the whole pipeline, run once every
 * section of raced.conf is read: each stage names a defined provider and
 * parent, parents form no cycle, exactly one stage is the root, and each
 * stage's url is a template as urltemplate_parse() reads it (the parser the
 * import uses, so what passes here is what runs), takes no parent field in
 * the root (only {last_success} and {cursor}, with the cursor, lag and
 * initial they need and that are useless without them), names neither of
 * those two in a child stage, names in {stage.field} only an ancestor with
 * no dedupe stage between them, and resolves against its provider's
 * base_url, and that no stage's table takes the name of a view or link
 * table raced makes for another (docs/data-model.md).  Then the stages
 * are put parents first.
 *
 * Pure: no I/O, no logging.  A failure is described in a struct
 * config_fault the caller owns, naming the stage and key it is about, so
 * that the loader can add the file, line and section.
 */
#ifndef RACED_CONFIG_CHECK_H
#define RACED_CONFIG_CHECK_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "error.h"

#define CONFIG_FAULT_NO_STAGE SIZE_MAX

struct config_fault {
	size_t stage;      /* index into c->stages, or CONFIG_FAULT_NO_STAGE */
	const char *key;   /* the key at fault ("parent"), or NULL: the section itself */
	char msg[ERR_MAX]; /* e.g. "parent 'race' is not a stage (did you mean 'races'?)" */
};

/* 0, or -1 with *f filled for the first fault, in this order: no stage at
 * all; per stage in file order an undefined provider, then parent; a
 * cycle (named from its first stage in file order); a second root; per
 * stage a root url with fields, a child url naming the root's state or a
 * stage that is not an ancestor, then a url that does not resolve; a
 * stage named like another's view or link table. */
RACED_MUST_CHECK int config_check_pipeline(const struct config *c, struct config_fault *f);

/* Whether url is a URL template, read by urltemplate_parse(): 0 with the
 * number of placeholders in *placeholders, or -1 with msg (n bytes) saying
 * why not, e.g. "unclosed '{' in '/races/{id'".  A '}' outside a
 * placeholder is literal text. */
RACED_MUST_CHECK int config_check_template(const char *url, size_t *placeholders, char *msg, size_t n);

/* Reorders c->stages parents first, file order otherwise (stable).  Only
 * for a configuration config_check_pipeline() passed.  -1 with err when out
 * of memory (c is then unchanged). */
RACED_MUST_CHECK int config_order_stages(struct config *c, char *err);

#endif
