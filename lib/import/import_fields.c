/* import_fields — see import_fields.h. */
#include "import_fields.h"

#include "urltemplate.h"

#include <stdlib.h>
#include <string.h>

/* One stage's entry: the store's view of it and the names it owns. */
struct entry {
	struct store_read_fields rf;
	char **names;
	size_t cap;
};

static size_t stage_named(const struct stage_conf *stages, size_t n, const char *name,
                          size_t len)
{
	for (size_t i = 0; name && i < n; i++)
		if (strlen(stages[i].name) == len && memcmp(stages[i].name, name, len) == 0)
			return i;
	return SIZE_MAX;
}

/* Add field to e unless it is there; -1 when out of memory. */
static int entry_add(struct entry *e, const char *field)
{
	for (size_t i = 0; i < e->rf.n; i++)
		if (strcmp(e->names[i], field) == 0)
			return 0;
	if (e->rf.n == e->cap) {
		size_t cap = e->cap ? 2 * e->cap : 4;
		char **names = realloc(e->names, cap * sizeof *names);
		if (!names)
			return -1;
		e->names = names;
		e->cap = cap;
	}
	if (!(e->names[e->rf.n] = strdup(field)))
		return -1;
	e->rf.n++;
	e->rf.fields = (const char *const *)e->names;
	return 0;
}

static struct entry *entry_of(struct import_read_fields *rf, size_t i)
{
	if (!rf->per[i]) {
		struct entry *e = calloc(1, sizeof *e);
		if (!e)
			return NULL;
		e->rf.value_max = URLTEMPLATE_MAX_URL; /* a longer value is carried as too long */
		rf->per[i] = &e->rf;
	}
	return (struct entry *)(void *)rf->per[i];
}

struct import_read_fields *import_read_fields(const struct stage_conf *stages, size_t n,
                                              char *err)
{
	struct import_read_fields *rf = calloc(1, sizeof *rf);
	if (!rf || !(rf->per = calloc(n ? n : 1, sizeof *rf->per))) {
		free(rf);
		return err_set(err, "out of memory"), NULL;
	}
	rf->n = n;
	for (size_t s = 0; s < n; s++) {
		size_t p = stage_named(stages, n, stages[s].parent,
		                       stages[s].parent ? strlen(stages[s].parent) : 0);
		if (p == SIZE_MAX)
			continue;
		if (!entry_of(rf, p))
			goto oom;
		char terr[ERR_MAX];
		struct urltemplate *tpl = stages[s].url ? urltemplate_parse(stages[s].url, terr) : NULL;
		for (size_t i = 0; tpl && i < urltemplate_placeholders(tpl); i++) {
			const char *scope;
			size_t len = urltemplate_scope(tpl, i, &scope);
			size_t a = len ? stage_named(stages, n, scope, len) : p;
			struct entry *e = a != SIZE_MAX ? entry_of(rf, a) : NULL;
			if (a != SIZE_MAX && (!e || entry_add(e, urltemplate_field(tpl, i)) < 0)) {
				urltemplate_free(tpl);
				goto oom;
			}
		}
		urltemplate_free(tpl);
	}
	return rf;
oom:
	import_read_fields_free(rf);
	return err_set(err, "out of memory"), NULL;
}

void import_read_fields_free(struct import_read_fields *rf)
{
	if (!rf)
		return;
	for (size_t i = 0; i < rf->n; i++) {
		struct entry *e = (struct entry *)(void *)rf->per[i];
		if (!e)
			continue;
		for (size_t k = 0; k < e->rf.n; k++)
			free(e->names[k]);
		free(e->names);
		free(e);
	}
	free(rf->per);
	free(rf);
}
