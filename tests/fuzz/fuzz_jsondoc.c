/* fuzz_jsondoc — the JSON reader (lib/json/jsondoc.c) against jansson.
 *
 * SPEC: jsondoc accepts and rejects what jansson does and reads the same
 * values.  Each input is parsed by both (jansson with JSON_DECODE_ANY and
 * JSON_ALLOW_NUL, jsondoc with JSONDOC_ANY) and the target aborts when they
 * differ: one accepts and the other refuses, a type differs, a string's
 * bytes, a number's value, an array's elements or an object's members
 * (found by name, as jsondoc_member and JSON pointers find them).  The
 * container-only mode (no JSONDOC_ANY) must accept exactly the accepted
 * documents whose root is an object or an array.  And each element of the
 * root (a page's items) sliced out by jsondoc_text(), which is what raced
 * stores, must read in jansson as the same value.
 *
 * The exceptions, on purpose (docs/fuzzing.md lists them too):
 *  - numbers too big for jansson (an integer beyond int64, a real beyond
 *    double, jansson's json_error_numeric_overflow) are accepted by jsondoc,
 *    which keeps a number as the provider wrote it;
 *  - "\u0000" in a member name (json_error_null_byte_in_key) is accepted by
 *    jsondoc; in a value it is accepted by both here (JSON_ALLOW_NUL; raced
 *    refuses such an item by jsondoc_has_nul, checked below);
 *  - duplicate member names: both keep the last, but jsondoc_size() counts
 *    every member written, jansson only the distinct names;
 *  - a NUL byte right after a number or a literal ("[1\0]", "[true\0]"):
 *    jansson 2.14 accepts it as if it were not there (its lexer pushes the
 *    byte back and then reads past it), jsondoc refuses it as RFC 8259
 *    says.  Where jansson accepts and jsondoc refuses, every NUL byte must
 *    follow a digit or a letter, and without them jsondoc must accept the
 *    text and read jansson's values.
 * The depth limit is the same in both (JSONDOC_MAX_DEPTH = 2048 values, a
 * scalar counting as a level as in jansson), so it is no exception.
 */
#include "fuzz.h"

#include "error.h"
#include "jsondoc.h"
#include "jsonptr.h"

#include <errno.h>
#include <jansson.h>
#include <stdbool.h>
#include <string.h>

static void compare(const struct jsondoc *d, uint32_t v, json_t *j);

static void compare_string(const struct jsondoc *d, uint32_t v, json_t *j)
{
	size_t len = 0;
	char *s = jsondoc_scalar(d, v, &len);
	FUZZ_CHECK(s, "jsondoc_scalar of a string gave NULL");
	FUZZ_CHECK(len == json_string_length(j) && memcmp(s, json_string_value(j), len) == 0,
	           "string of %zu bytes, jansson's of %zu", len, json_string_length(j));
	FUZZ_CHECK(jsondoc_has_nul(d, v) == (memchr(s, '\0', len) != NULL), "has_nul wrong");
	/* The exact cap fits, one byte less does not. */
	size_t cap = jsondoc_scalar_max(d, v);
	char *buf = malloc(cap);
	FUZZ_CHECK(buf, "out of memory");
	FUZZ_CHECK(jsondoc_scalar_to(d, v, buf, cap, NULL) == 0, "scalar_max does not fit");
	if (len + 1 < cap)
		FUZZ_CHECK(jsondoc_scalar_to(d, v, buf, len, NULL) < 0, "fits in its own length");
	free(buf);
	free(s);
}

static void compare_number(const struct jsondoc *d, uint32_t v, json_t *j)
{
	char *s = jsondoc_scalar(d, v, NULL);
	FUZZ_CHECK(s, "jsondoc_scalar of a number gave NULL");
	size_t tlen;
	const char *text = jsondoc_text(d, v, &tlen);
	FUZZ_CHECK(strlen(s) == tlen && memcmp(s, text, tlen) == 0, "number not as written");
	errno = 0;
	if (json_is_integer(j)) {
		FUZZ_CHECK(!strpbrk(s, ".eE"), "jansson integer '%s' has a fraction or exponent", s);
		long long n = strtoll(s, NULL, 10);
		FUZZ_CHECK(errno == 0 && n == json_integer_value(j), "integer '%s' is %lld in jansson",
		           s, (long long)json_integer_value(j));
	} else {
		FUZZ_CHECK(json_is_real(j), "'%s' is not a number in jansson", s);
		FUZZ_CHECK(strpbrk(s, ".eE"), "jansson real '%s' has no fraction or exponent", s);
		double x = strtod(s, NULL);
		FUZZ_CHECK(x == json_real_value(j), "real '%s' is %.17g in jansson", s, json_real_value(j));
	}
	free(s);
}

static void compare_array(const struct jsondoc *d, uint32_t v, json_t *j)
{
	size_t n = jsondoc_size(d, v);
	FUZZ_CHECK(n == json_array_size(j), "array of %zu, jansson's of %zu", n, json_array_size(j));
	size_t i = 0;
	for (uint32_t e = jsondoc_first(d, v); e != JSONDOC_ABSENT; e = jsondoc_next(d, v, e), i++) {
		FUZZ_CHECK(i < n, "more elements than the size");
		if (i < 3) { /* a pointer finds the same element */
			char ptr[8];
			snprintf(ptr, sizeof ptr, "/%zu", i);
			FUZZ_CHECK(jsondoc_get(d, v, ptr) == e, "pointer %s", ptr);
		}
		compare(d, e, json_array_get(j, i));
	}
	FUZZ_CHECK(i == n, "%zu elements iterated, size %zu", i, n);
}

/* "/name" with '~' and '/' escaped; false when it would not fit. */
static bool member_pointer(const char *name, size_t len, char *ptr, size_t cap)
{
	size_t k = 0;
	ptr[k++] = '/';
	for (size_t i = 0; i < len; i++) {
		if (k + 3 > cap || name[i] == '\0')
			return false;
		if (name[i] == '~' || name[i] == '/') {
			ptr[k++] = '~';
			ptr[k++] = name[i] == '~' ? '0' : '1';
		} else {
			ptr[k++] = name[i];
		}
	}
	ptr[k] = '\0';
	return true;
}

static void compare_object(const struct jsondoc *d, uint32_t v, json_t *j)
{
	size_t written = 0;
	/* Every member jsondoc read: jansson has the name, and the member
	 * jsondoc_member() finds by it (the last of duplicates) equals it. */
	for (uint32_t e = jsondoc_first(d, v); e != JSONDOC_ABSENT; e = jsondoc_next(d, v, e)) {
		written++;
		/* The member's name is the token before its value (jsondoc's
		 * layout; the public API has no name accessor). */
		FUZZ_CHECK(jsondoc_type(d, e - 1) == JSONDOC_STRING, "no name before a member");
		size_t len;
		char *name = jsondoc_scalar(d, e - 1, &len);
		FUZZ_CHECK(name, "out of memory");
		json_t *jv = json_object_getn(j, name, len);
		FUZZ_CHECK(jv, "member '%s' missing in jansson", name);
		uint32_t last = jsondoc_member(d, v, name, len);
		FUZZ_CHECK(last != JSONDOC_ABSENT && last >= e, "member '%s' not found by name", name);
		if (last == e)
			compare(d, e, jv);
		char ptr[JSONPTR_TOKEN_MAX];
		if (len + 1 < JSONPTR_TOKEN_MAX && member_pointer(name, len, ptr, sizeof ptr))
			FUZZ_CHECK(jsondoc_get(d, v, ptr) == last, "pointer '%s'", ptr);
		free(name);
	}
	FUZZ_CHECK(written == jsondoc_size(d, v), "%zu members iterated, size %zu", written,
	           jsondoc_size(d, v));
	FUZZ_CHECK(written >= json_object_size(j), "fewer members than jansson's names");
	/* And every name jansson kept, jsondoc finds. */
	const char *key;
	size_t klen;
	json_t *jv;
	json_object_keylen_foreach(j, key, klen, jv)
		FUZZ_CHECK(jsondoc_member(d, v, key, klen) != JSONDOC_ABSENT, "no member '%s'", key);
}

static void compare(const struct jsondoc *d, uint32_t v, json_t *j)
{
	static const enum jsondoc_type same[] = {
		[JSON_OBJECT] = JSONDOC_OBJECT, [JSON_ARRAY] = JSONDOC_ARRAY,
		[JSON_STRING] = JSONDOC_STRING, [JSON_INTEGER] = JSONDOC_NUMBER,
		[JSON_REAL] = JSONDOC_NUMBER,   [JSON_TRUE] = JSONDOC_TRUE,
		[JSON_FALSE] = JSONDOC_FALSE,   [JSON_NULL] = JSONDOC_NULL,
	};
	FUZZ_CHECK(j, "jansson has no value where jsondoc has one");
	enum jsondoc_type t = jsondoc_type(d, v);
	FUZZ_CHECK(t == same[json_typeof(j)], "type %d, jansson's %d", t, json_typeof(j));
	switch (t) {
	case JSONDOC_OBJECT: compare_object(d, v, j); break;
	case JSONDOC_ARRAY: compare_array(d, v, j); break;
	case JSONDOC_STRING: compare_string(d, v, j); break;
	case JSONDOC_NUMBER: compare_number(d, v, j); break;
	default: break;
	}
}

/* Each child of the root, as raced slices items out of a page, is JSON that
 * jansson reads as the value it read in place. */
static void check_slices(const struct jsondoc *d, json_t *root)
{
	bool obj = jsondoc_type(d, 0) == JSONDOC_OBJECT;
	size_t i = 0;
	for (uint32_t e = jsondoc_first(d, 0); e != JSONDOC_ABSENT; e = jsondoc_next(d, 0, e), i++) {
		json_t *want;
		if (obj) {
			size_t nlen;
			char *name = jsondoc_scalar(d, e - 1, &nlen);
			FUZZ_CHECK(name, "out of memory");
			want = json_object_getn(root, name, nlen);
			bool last = jsondoc_member(d, 0, name, nlen) == e;
			free(name);
			if (!last)
				continue; /* a duplicate name: only the last is jansson's */
		} else {
			want = json_array_get(root, i);
		}
		size_t len;
		const char *slice = jsondoc_text(d, e, &len);
		json_error_t jerr;
		json_t *got = json_loadb(slice, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
		FUZZ_CHECK(got, "slice '%.*s' does not read: %s", (int)len, slice, jerr.text);
		FUZZ_CHECK(json_equal(got, want), "slice '%.*s' reads differently", (int)len, slice);
		json_decref(got);
	}
}

/* jansson accepted text that jsondoc refused: only its NUL-after-a-token
 * bug may explain it (see the top).  Returns the text without those NULs
 * (malloc'd), or aborts. */
static char *without_dropped_nuls(const char *text, size_t size, size_t *out_len, const char *err)
{
	char *out = malloc(size + 1);
	FUZZ_CHECK(out, "out of memory");
	size_t n = 0, nuls = 0;
	for (size_t i = 0; i < size; i++) {
		if (text[i] != '\0') {
			out[n++] = text[i];
			continue;
		}
		bool after_token = i > 0 && ((text[i - 1] >= '0' && text[i - 1] <= '9') ||
		                             (text[i - 1] >= 'a' && text[i - 1] <= 'z'));
		FUZZ_CHECK(after_token, "jsondoc refuses what jansson accepts: %s", err);
		nuls++;
	}
	FUZZ_CHECK(nuls > 0, "jsondoc refuses what jansson accepts: %s", err);
	*out_len = n;
	return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct jsondoc *d;
	if (!d && !(d = jsondoc_new()))
		abort();
	const char *text = (const char *)data;
	char err[ERR_MAX];
	json_error_t jerr;

	json_t *j = json_loadb(text, size, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
	int rc = jsondoc_parse(d, text, size, JSONDOC_ANY, err);
	if (!j) {
		enum json_error_code code = json_error_code(&jerr);
		FUZZ_CHECK(rc < 0 || code == json_error_numeric_overflow ||
		                   code == json_error_null_byte_in_key,
		           "jsondoc accepts what jansson refuses: %s", jerr.text);
	} else if (rc == 0) {
		compare(d, 0, j);
		check_slices(d, j);
		json_decref(j);
	} else {
		size_t len;
		char *clean = without_dropped_nuls(text, size, &len, err);
		FUZZ_CHECK(jsondoc_parse(d, clean, len, JSONDOC_ANY, err) == 0,
		           "jsondoc refuses what jansson accepts, NULs left out: %s", err);
		compare(d, 0, j);
		check_slices(d, j);
		json_decref(j);
		free(clean);
	}

	/* Containers only: the same verdict when the root is one. */
	bool container = rc == 0 && (jsondoc_type(d, 0) == JSONDOC_OBJECT ||
	                             jsondoc_type(d, 0) == JSONDOC_ARRAY);
	int rc2 = jsondoc_parse(d, text, size, 0, err);
	FUZZ_CHECK((rc2 == 0) == container, "container mode: %d, any mode: %d", rc2, rc);
	if (rc2 < 0)
		FUZZ_CHECK(err[0] != '\0', "refused without a message");
	/* Give the token array back now and then, as the fetcher does. */
	if (size > 4096)
		jsondoc_trim(d, 0);
	return 0;
}
