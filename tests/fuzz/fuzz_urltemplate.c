/* fuzz_urltemplate — the URL template expander (lib/http/urltemplate.c).
 *
 * The input is a template, then a NUL byte or a newline, then the parent
 * item as JSON.  A template that parses has as many placeholders as it
 * says; one without placeholders expands to itself; an expansion is
 * shorter than URLTEMPLATE_MAX_URL and adds to the template's literal text
 * only unreserved characters and '%' escapes, so a value never changes the
 * URL's structure.  A placeholder naming a stage ("{races.id}") splits into
 * that stage and its field, and expanding it with an ancestor's value (the
 * JSON text stands for it) keeps the same properties; a missing ancestor
 * value fails naming that placeholder. */
#include "fuzz.h"

#include "error.h"
#include "jsondoc.h"
#include "urltemplate.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static bool unreserved(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '.' || c == '_' || c == '~';
}

/* Values add only unreserved characters and '%' escapes: every other byte
 * of the URL (the ones that give it its structure: '/', '?', '&', '#', ...)
 * comes from the template's literal text, as often as it is written there. */
static void check_expansion(const char *text, const char *url)
{
	size_t literal[256] = {0}, got[256] = {0}, lit_len = 0;
	for (const char *p = text; *p; p++) {
		if (*p == '{') {
			p = strchr(p, '}');
			continue;
		}
		literal[(unsigned char)*p]++;
		lit_len++;
	}
	for (const char *u = url; *u; u++)
		got[(unsigned char)*u]++;
	for (unsigned c = 1; c < 256; c++)
		if (!unreserved((unsigned char)c) && c != '%')
			FUZZ_CHECK(got[c] == literal[c], "byte 0x%02x %zu times in '%s', %zu in '%s'", c,
			           got[c], url, literal[c], text);
	FUZZ_CHECK(strlen(url) >= lit_len, "'%s' is shorter than the literal text of '%s'", url, text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct jsondoc *d;
	if (!d && !(d = jsondoc_new()))
		abort();
	size_t tlen = 0;
	while (tlen < size && data[tlen] != '\n' && data[tlen] != '\0')
		tlen++;
	char *text = strndup((const char *)data, tlen);
	if (!text)
		abort();
	char err[ERR_MAX] = "";
	enum urltemplate_fault fault;
	struct urltemplate *t = urltemplate_parse_fault(text, &fault, err);
	if (!t) {
		FUZZ_CHECK(fault != URLTEMPLATE_OK && err[0], "refused without a fault");
		free(text);
		return 0;
	}
	size_t n = urltemplate_placeholders(t);
	for (size_t i = 0; i < n; i++)
		FUZZ_CHECK(urltemplate_placeholder(t, i) && urltemplate_placeholder(t, i)[0], "no %zu", i);
	FUZZ_CHECK(!urltemplate_placeholder(t, n), "placeholder past the count");
	size_t scoped = 0;
	for (size_t i = 0; i < n; i++) {
		const char *ph = urltemplate_placeholder(t, i), *stage;
		size_t len = urltemplate_scope(t, i, &stage);
		const char *field = urltemplate_field(t, i);
		FUZZ_CHECK(field && field[0], "placeholder %zu has no field", i);
		if (len) {
			scoped++;
			FUZZ_CHECK(stage == ph && ph[len] == '.' && field == ph + len + 1 && ph[0] != '/',
			           "'%s' split at %zu", ph, len);
		} else {
			FUZZ_CHECK(stage == NULL && strcmp(field, ph) == 0, "'%s' has no stage but field '%s'",
			           ph, field);
		}
	}

	const char *json = tlen < size ? (const char *)data + tlen + 1 : "";
	size_t jlen = tlen < size ? size - tlen - 1 : 0;
	bool have_item = jsondoc_parse(d, json, jlen, JSONDOC_ANY, err) == 0;
	char *url = NULL;
	if (urltemplate_expand(t, have_item ? d : NULL, 0, &url, err) == 0) {
		FUZZ_CHECK(strlen(url) < URLTEMPLATE_MAX_URL, "%zu bytes", strlen(url));
		if (n == 0)
			FUZZ_CHECK(strcmp(url, text) == 0, "'%s' expanded to '%s'", text, url);
		else
			check_expansion(text, url);
		free(url);
	} else {
		FUZZ_CHECK(n > 0 || strlen(text) >= URLTEMPLATE_MAX_URL, "a literal template failed: %s", err);
		FUZZ_CHECK(err[0], "failed without a message");
	}
	/* The root's named values, and the ancestors' values: the JSON text
	 * stands for them. */
	char *value = strndup(json, jlen);
	if (!value)
		abort();
	struct urltemplate_arg *args = calloc(n ? n : 1, sizeof *args);
	if (!args)
		abort();
	for (int missing_one = 0; missing_one < 2; missing_one++) {
		size_t first_scoped = SIZE_MAX;
		for (size_t i = 0; i < n; i++) {
			const char *stage;
			args[i] = (struct urltemplate_arg){.kind = URLTEMPLATE_FROM_ITEM};
			if (urltemplate_scope(t, i, &stage) == 0)
				continue;
			bool missing = missing_one && first_scoped == SIZE_MAX;
			if (first_scoped == SIZE_MAX)
				first_scoped = i;
			args[i] = (struct urltemplate_arg){
				.kind = missing ? URLTEMPLATE_MISSING : URLTEMPLATE_VALUE,
				.value = json, .len = jlen};
		}
		size_t miss = 0;
		err[0] = '\0';
		if (urltemplate_expand_args(t, have_item ? d : NULL, 0, args, &url, &miss, err) == 0) {
			FUZZ_CHECK(!missing_one || scoped == 0, "expanded with a missing value");
			FUZZ_CHECK(strlen(url) < URLTEMPLATE_MAX_URL, "%zu bytes", strlen(url));
			if (n == 0)
				FUZZ_CHECK(strcmp(url, text) == 0, "'%s' expanded to '%s'", text, url);
			else
				check_expansion(text, url);
			free(url);
		} else {
			FUZZ_CHECK(err[0], "args expansion failed without a message");
			FUZZ_CHECK(miss == SIZE_MAX || miss < n, "missing %zu of %zu", miss, n);
		}
	}
	free(args);
	const struct urltemplate_value named[] = {{"last_success", value}, {"cursor", value}};
	err[0] = '\0';
	if (urltemplate_expand_named(t, named, 2, &url, err) == 0) {
		FUZZ_CHECK(strlen(url) < URLTEMPLATE_MAX_URL, "%zu bytes", strlen(url));
		if (n == 0)
			FUZZ_CHECK(strcmp(url, text) == 0, "'%s' expanded to '%s'", text, url);
		else
			check_expansion(text, url);
		free(url);
	} else {
		FUZZ_CHECK(err[0], "named expansion failed without a message");
	}
	free(value);
	urltemplate_free(t);
	free(text);
	return 0;
}
