#include "check.h"
#include "error.h"
#include "jsondoc.h"

#include <jansson.h>
#include <math.h>

static struct jsondoc *D;

static int parse(const char *text, unsigned flags, char *err)
{
	return jsondoc_parse(D, text, strlen(text), flags, err);
}

static uint32_t at(const char *text, const char *ptr)
{
	char err[ERR_MAX];
	if (parse(text, 0, err) < 0) {
		fprintf(stderr, "bad test JSON %s: %s\n", text, err);
		exit(2);
	}
	return jsondoc_get(D, 0, ptr);
}

/* The scalar at ptr as text ("" when absent), in a static buffer. */
static const char *scalar(const char *ptr)
{
	static char buf[256];
	char *s = jsondoc_scalar(D, jsondoc_get(D, 0, ptr), NULL);
	snprintf(buf, sizeof buf, "%s", s ? s : "");
	free(s);
	return buf;
}

static void test_empty_pointer_is_the_document(void)
{
	CHECK_EQ(at("{\"a\":1}", ""), 0);
	CHECK_EQ(jsondoc_type(D, 0), JSONDOC_OBJECT);
}

static void test_pointer_walks_objects_and_arrays(void)
{
	at("{\"data\":[{\"id\":7},{\"id\":\"x\"}],\"meta\":{\"next\":\"p2\"}}", "");
	CHECK_STR(scalar("/data/0/id"), "7");
	CHECK_STR(scalar("/data/1/id"), "x");
	CHECK_STR(scalar("/meta/next"), "p2");
	CHECK_EQ(jsondoc_type(D, jsondoc_get(D, 0, "/data")), JSONDOC_ARRAY);
	CHECK_EQ(jsondoc_size(D, jsondoc_get(D, 0, "/data")), 2);
	CHECK_EQ(jsondoc_size(D, 0), 2);
}

static void test_missing_members_and_bad_indexes_are_absent(void)
{
	at("{\"data\":[1,2],\"s\":\"t\"}", "");
	CHECK_EQ(jsondoc_get(D, 0, "/nope"), JSONDOC_ABSENT);
	CHECK_EQ(jsondoc_get(D, 0, "/data/2"), JSONDOC_ABSENT);
	CHECK_EQ(jsondoc_get(D, 0, "/data/01"), JSONDOC_ABSENT);
	CHECK_EQ(jsondoc_get(D, 0, "/data/-"), JSONDOC_ABSENT);
	CHECK_EQ(jsondoc_get(D, 0, "/s/0"), JSONDOC_ABSENT);  /* strings have no members */
	CHECK_EQ(jsondoc_get(D, 0, "data"), JSONDOC_ABSENT);  /* not a pointer */
	CHECK_EQ(jsondoc_get(D, JSONDOC_ABSENT, ""), JSONDOC_ABSENT);
	CHECK_EQ(jsondoc_get(NULL, 0, "/data"), JSONDOC_ABSENT);
	CHECK_EQ(jsondoc_type(D, JSONDOC_ABSENT), 0);
	CHECK(jsondoc_scalar(D, JSONDOC_ABSENT, NULL) == NULL);
}

static void test_escapes_name_tilde_and_slash(void)
{
	at("{\"a/b\":1,\"m~n\":2,\"\":3,\"x\\u002fy\":4,\"\\u00e9\":5}", "");
	CHECK_STR(scalar("/a~1b"), "1");
	CHECK_STR(scalar("/m~0n"), "2");
	CHECK_STR(scalar("/"), "3");
	CHECK_STR(scalar("/x~1y"), "4");   /* an escaped member name matches */
	CHECK_STR(scalar("/\xc3\xa9"), "5");
	CHECK_EQ(jsondoc_get(D, 0, "/m~2n"), JSONDOC_ABSENT);
	CHECK_EQ(jsondoc_get(D, 0, "/x"), JSONDOC_ABSENT);
}

static void test_last_duplicate_member_wins(void)
{
	at("{\"k\":1,\"j\":0,\"k\":[2]}", "");
	CHECK_EQ(jsondoc_type(D, jsondoc_get(D, 0, "/k")), JSONDOC_ARRAY);
	CHECK_STR(scalar("/k/0"), "2");
}

static void test_scalars_and_slices(void)
{
	at(" [ \"a\\\"b\\\\c\\n\\u00e9\\ud83d\\ude00\" , -1.5e+3, true, false, null, {\"x\" : [ ] } ] ", "");
	CHECK_STR(scalar("/0"), "a\"b\\c\n\xc3\xa9\xf0\x9f\x98\x80");
	CHECK_STR(scalar("/1"), "-1.5e+3");
	CHECK_STR(scalar("/2"), "true");
	CHECK_STR(scalar("/3"), "false");
	CHECK(jsondoc_scalar(D, jsondoc_get(D, 0, "/4"), NULL) == NULL); /* null */
	CHECK(jsondoc_scalar(D, jsondoc_get(D, 0, "/5"), NULL) == NULL); /* object */
	/* into a caller's buffer: the max always fits, less may not */
	char small[8];
	size_t slen = 0;
	uint32_t s0 = jsondoc_get(D, 0, "/0");
	CHECK_EQ(jsondoc_scalar_max(D, s0), 30); /* the text as written, and a NUL */
	CHECK_EQ(jsondoc_scalar_to(D, s0, small, sizeof small, &slen), -1);
	CHECK_EQ(jsondoc_scalar_to(D, jsondoc_get(D, 0, "/2"), small, sizeof small, &slen), 0);
	CHECK_STR(small, "true");
	CHECK_EQ(slen, 4);
	CHECK_EQ(jsondoc_scalar_max(D, jsondoc_get(D, 0, "/4")), 0);
	CHECK_EQ(jsondoc_scalar_to(D, jsondoc_get(D, 0, "/4"), small, sizeof small, &slen), -1);
	size_t len;
	const char *t = jsondoc_text(D, jsondoc_get(D, 0, "/5"), &len);
	CHECK_EQ(len, 12);
	CHECK(t && memcmp(t, "{\"x\" : [ ] }", 12) == 0);
	t = jsondoc_text(D, 0, &len); /* the root without the spaces around it */
	CHECK(t && t[0] == '[' && t[len - 1] == ']');
	/* first/next walk the array's elements, not what is inside them */
	size_t n = 0;
	for (uint32_t v = jsondoc_first(D, 0); v != JSONDOC_ABSENT; v = jsondoc_next(D, 0, v))
		n++;
	CHECK_EQ(n, 6);
	CHECK_EQ(jsondoc_size(D, jsondoc_get(D, 0, "/5/x")), 0);
	CHECK_EQ(jsondoc_first(D, jsondoc_get(D, 0, "/5/x")), JSONDOC_ABSENT);
	/* an object's first/next are its members' values */
	at("{\"a\":{\"deep\":[1,2]},\"b\":2}", "");
	uint32_t v = jsondoc_first(D, 0);
	CHECK_EQ(v, jsondoc_get(D, 0, "/a"));
	v = jsondoc_next(D, 0, v);
	CHECK_EQ(v, jsondoc_get(D, 0, "/b"));
	CHECK_EQ(jsondoc_next(D, 0, v), JSONDOC_ABSENT);
}

static void test_nul_is_allowed_and_located(void)
{
	char err[ERR_MAX];
	CHECK_EQ(parse("[{\"a\":\"x\\u0000y\"},{\"b\":\"\\\\u0000\"},\"z\"]", 0, err), 0);
	CHECK(jsondoc_has_nul(D, 0));
	CHECK(jsondoc_has_nul(D, jsondoc_get(D, 0, "/0")));
	CHECK(jsondoc_has_nul(D, jsondoc_get(D, 0, "/0/a")));
	CHECK(!jsondoc_has_nul(D, jsondoc_get(D, 0, "/1"))); /* an escaped backslash, then text */
	CHECK(!jsondoc_has_nul(D, jsondoc_get(D, 0, "/2")));
	size_t len = 0;
	char *s = jsondoc_scalar(D, jsondoc_get(D, 0, "/0/a"), &len);
	CHECK_EQ(len, 3);
	CHECK(s && s[1] == '\0' && s[2] == 'y');
	free(s);
	CHECK_EQ(parse("[{\"\\u0000\":1}]", 0, err), 0); /* in a member name too */
	CHECK(jsondoc_has_nul(D, jsondoc_get(D, 0, "/0")));
}

static void test_errors_name_the_fault_and_where(void)
{
	char err[ERR_MAX];
	CHECK_EQ(parse("<html>", 0, err), -1);
	CHECK_STR(err, "'[' or '{' expected near '<' at line 1 column 1");
	CHECK_EQ(parse("\"just a string\"", 0, err), -1);
	CHECK_EQ(parse("\"just a string\"", JSONDOC_ANY, err), 0);
	CHECK_EQ(parse("", 0, err), -1);
	CHECK_STR(err, "'[' or '{' expected at the end of the text (line 1 column 1)");
	CHECK_EQ(parse("{\"a\": 1,\n \"b\": tru}", 0, err), -1);
	CHECK_STR(err, "invalid literal near 't' at line 2 column 7");
	CHECK_EQ(parse("[1,]", 0, err), -1);
	CHECK_STR(err, "unexpected character near ']' at line 1 column 4");
	CHECK_EQ(parse("{\"a\":1,}", 0, err), -1);
	CHECK_STR(err, "a member name (a string) expected near '}' at line 1 column 8");
	CHECK_EQ(parse("[1] x", 0, err), -1);
	CHECK_STR(err, "the end of the text expected near 'x' at line 1 column 5");
	CHECK_EQ(parse("[\"\xc3\xa9\xff\"]", 0, err), -1);
	CHECK_STR(err, "invalid UTF-8 in a string near byte 0xff at line 1 column 4");
	CHECK_EQ(parse("[\"\\ud800\"]", 0, err), -1);
	CHECK_STR(err, "invalid escape in a string near '\\' at line 1 column 3");
	CHECK_EQ(parse("[\"a", 0, err), -1);
	CHECK_STR(err, "unterminated string at the end of the text (line 1 column 4)");
	CHECK_EQ(parse("[01]", 0, err), -1);
	CHECK_EQ(parse("[1.]", 0, err), -1);
	CHECK_EQ(parse("[-]", 0, err), -1);
	CHECK_EQ(parse("[1e]", 0, err), -1);
	CHECK_EQ(parse("[\"\t\"]", 0, err), -1);
	CHECK_EQ(parse("{\"a\" 1}", 0, err), -1);
	CHECK_EQ(parse("[1 2]", 0, err), -1);
	CHECK_EQ(jsondoc_parse(D, "[1]\0", 4, 0, err), -1); /* a NUL byte is not JSON */
}

/* jansson 2.14 reads past a NUL byte right after a number or a literal, as
 * if it were not there (found by tests/fuzz/fuzz_jsondoc); jsondoc refuses
 * it, as RFC 8259 does, and says where. */
static void test_a_nul_byte_after_a_number_is_refused(void)
{
	char err[ERR_MAX];
	CHECK_EQ(jsondoc_parse(D, "[1\0]", 4, 0, err), -1);
	CHECK_STR(err, "',' or ']' expected near byte 0x00 at line 1 column 3");
	CHECK_EQ(jsondoc_parse(D, "[true\0]", 7, 0, err), -1);
	CHECK_STR(err, "',' or ']' expected near byte 0x00 at line 1 column 6");
	CHECK_EQ(jsondoc_parse(D, "-5\0", 3, JSONDOC_ANY, err), -1);
	CHECK_STR(err, "the end of the text expected near byte 0x00 at line 1 column 3");
}

static void test_depth_is_bounded_like_jansson(void)
{
	char err[ERR_MAX];
	size_t n = JSONDOC_MAX_DEPTH;
	char *s = malloc(2 * n + 4);
	CHECK(s != NULL);
	if (!s)
		return;
	memset(s, '[', n);
	memset(s + n, ']', n);
	s[2 * n] = '\0';
	CHECK_EQ(parse(s, 0, err), 0);
	memset(s, '[', n + 1);
	memset(s + n + 1, ']', n + 1);
	s[2 * n + 2] = '\0';
	CHECK_EQ(parse(s, 0, err), -1);
	CHECK(strstr(err, "nested too deeply") != NULL);
	/* a scalar inside is a level too: 2047 arrays and a 1 fit, 2048 do not */
	for (size_t levels = n - 1; levels <= n; levels++) {
		memset(s, '[', levels);
		s[levels] = '1';
		memset(s + levels + 1, ']', levels);
		s[2 * levels + 1] = '\0';
		json_t *j = json_loads(s, 0, NULL);
		CHECK_EQ(parse(s, 0, err), j ? 0 : -1);
		CHECK_EQ(parse(s, 0, err), levels < n ? 0 : -1);
		json_decref(j);
	}
	free(s);
}

static void test_a_big_document_is_given_back_by_trim(void)
{
	char err[ERR_MAX];
	size_t n = 200000;
	char *s = malloc(2 * n + 2);
	CHECK(s != NULL);
	if (!s)
		return;
	s[0] = '[';
	for (size_t i = 0; i < n; i++)
		s[1 + 2 * i] = '1', s[2 + 2 * i] = ',';
	s[2 * n] = ']';
	s[2 * n + 1] = '\0';
	CHECK_EQ(parse(s, 0, err), 0);
	CHECK_EQ(jsondoc_size(D, 0), n);
	jsondoc_trim(D, 1 << 20);
	CHECK_EQ(parse("[1,2]", 0, err), 0); /* usable again after a trim */
	CHECK_EQ(jsondoc_size(D, 0), 2);
	free(s);
}

static void census(const char *text, size_t tokens, size_t containers)
{
	struct jsondoc_census c;
	jsondoc_census(text, strlen(text), &c);
	CHECK_EQ(c.tokens, tokens);
	CHECK_EQ(c.containers, containers);
}

static void test_census_bounds_tokens_and_containers_from_the_separators(void)
{
	/* array, two objects, two names, two values: exact for tiny items */
	census("[{\"id\":\"a\"},{\"id\":\"b\"}]", 7, 3);
	/* separators inside strings, escaped quotes included, do not count */
	census("[\"a\\\",[{b:\",\"\\\\\"]", 3, 1);
	census("[1,2,3]", 4, 1);
	census("17", 1, 0);
	census("", 1, 0);
	/* an empty container is counted as if it held one value: a bound */
	census("{}", 2, 1);
}

static void test_reserve_sizes_the_tokens_once_and_refuses_the_impossible(void)
{
	char err[ERR_MAX];
	CHECK_EQ(jsondoc_reserve(D, 1000), 0);
	CHECK_EQ(parse("[{\"id\":\"a\"},{\"id\":\"b\"}]", 0, err), 0);
	CHECK_STR(scalar("/1/id"), "b");
	CHECK_EQ(jsondoc_reserve(D, 10), 0); /* already room */
	CHECK_EQ(jsondoc_reserve(D, (size_t)UINT32_MAX), -1);
	jsondoc_trim(D, 0);
	CHECK_EQ(parse("[1]", 0, err), 0);
}

/* ---- against jansson: random documents and random damage ---- */

static uint64_t rng = 0x2545f4914f6cdd1dULL;
static unsigned rnd(unsigned n)
{
	rng ^= rng >> 12;
	rng ^= rng << 25;
	rng ^= rng >> 27;
	return (unsigned)((rng * 0x2545f4914f6cdd1dULL) >> 33) % n;
}

struct buf {
	char s[8192];
	size_t n;
};

static void put(struct buf *b, const char *t)
{
	size_t n = strlen(t);
	if (b->n + n < sizeof b->s) {
		memcpy(b->s + b->n, t, n);
		b->n += n;
	}
}

static void ws(struct buf *b)
{
	static const char *w[] = {"", "", "", " ", "\n", "\t ", "\r\n"};
	put(b, w[rnd(7)]);
}

static void gen_string(struct buf *b)
{
	static const char *parts[] = {"a", "Z", "9", " ", "\\\"", "\\\\", "\\/", "\\n", "\\t",
	                              "\\u00e9", "\\u20AC", "\\ud83d\\ude00", "\xc3\xa9", "\xe2\x82\xac",
	                              "\xf0\x9f\x98\x80", "\\u0000", "~", "/"};
	put(b, "\"");
	for (unsigned i = rnd(6); i > 0; i--)
		put(b, parts[rnd(18)]);
	put(b, "\"");
}

static void gen(struct buf *b, int depth)
{
	static const char *nums[] = {"0", "-1", "12", "3.5", "1e3", "-0.25E-2", "999", "7E+2", "-0"};
	unsigned k = rnd(depth > 3 ? 5 : 8);
	ws(b);
	switch (k) {
	case 0: gen_string(b); break;
	case 1: put(b, nums[rnd(9)]); break;
	case 2: put(b, "true"); break;
	case 3: put(b, "false"); break;
	case 4: put(b, "null"); break;
	case 5:
	case 6: {
		put(b, "[");
		for (unsigned i = rnd(4), first = 1; i > 0; i--, first = 0) {
			if (!first)
				put(b, ",");
			gen(b, depth + 1);
		}
		ws(b);
		put(b, "]");
		break;
	}
	default: {
		/* distinct names, so jansson's object and ours have the same size */
		static const char *names[] = {"\"id\"", "\"a\"", "\"b\\u0041\"", "\"\"", "\"\xc3\xa9\"", "\"x/y\""};
		unsigned used = 0;
		put(b, "{");
		for (unsigned i = rnd(4), first = 1; i > 0; i--) {
			unsigned nm = rnd(6);
			if (used & (1u << nm))
				continue;
			used |= 1u << nm;
			if (!first)
				put(b, ",");
			first = 0;
			ws(b);
			put(b, names[nm]);
			ws(b);
			put(b, ":");
			gen(b, depth + 1);
		}
		ws(b);
		put(b, "}");
		break;
	}
	}
	ws(b);
}

/* Is our value v the same as jansson's j? */
static bool same(uint32_t v, json_t *j)
{
	switch (jsondoc_type(D, v)) {
	case JSONDOC_OBJECT: {
		/* Damage can make two names equal: jansson keeps one (the
		 * last), we keep both and read the last. */
		if (!json_is_object(j) || jsondoc_size(D, v) < json_object_size(j))
			return false;
		const char *key;
		size_t klen;
		json_t *jv;
		void *tmp;
		json_object_keylen_foreach_safe(j, tmp, key, klen, jv)
			if (!same(jsondoc_member(D, v, key, klen), jv))
				return false;
		return true;
	}
	case JSONDOC_ARRAY: {
		if (!json_is_array(j) || jsondoc_size(D, v) != json_array_size(j))
			return false;
		uint32_t e = jsondoc_first(D, v);
		for (size_t i = 0; i < json_array_size(j); i++, e = jsondoc_next(D, v, e))
			if (!same(e, json_array_get(j, i)))
				return false;
		return e == JSONDOC_ABSENT;
	}
	case JSONDOC_STRING: {
		size_t len;
		char *s = jsondoc_scalar(D, v, &len);
		bool ok = s && json_is_string(j) && len == json_string_length(j) &&
		          memcmp(s, json_string_value(j), len) == 0;
		free(s);
		return ok;
	}
	case JSONDOC_NUMBER: {
		char *s = jsondoc_scalar(D, v, NULL);
		bool ok = s && json_is_number(j) && strtod(s, NULL) == json_number_value(j);
		free(s);
		return ok;
	}
	case JSONDOC_TRUE: return json_is_true(j);
	case JSONDOC_FALSE: return json_is_false(j);
	case JSONDOC_NULL: return json_is_null(j);
	}
	return false;
}

static void test_agrees_with_jansson_on_random_documents(void)
{
	static const char damage[] = "\"\\,:[]{}u0e9-.tx \n\x01\x80\xc3\xed\xf4\xf5\xff";
	char err[ERR_MAX];
	int trees = 0, accepted = 0, refused = 0, disagreements = 0;
	for (int round = 0; round < 3000; round++) {
		struct buf b = {.n = 0};
		bool wrapped = rnd(2);
		put(&b, wrapped ? "{\"data\":[" : "[");
		for (unsigned i = rnd(4); i > 0; i--) {
			gen(&b, 1);
			if (i > 1)
				put(&b, ",");
		}
		put(&b, wrapped ? "]}" : "]");
		json_t *j = json_loadb(b.s, b.n, JSON_ALLOW_NUL, NULL);
		int rc = jsondoc_parse(D, b.s, b.n, 0, err);
		if (!j || rc != 0 || !same(0, j)) {
			if (disagreements++ < 5)
				fprintf(stderr, "differs on valid %.*s: %s\n", (int)b.n, b.s, rc ? err : "");
		}
		trees++;
		json_decref(j);
		/* Then damaged: insert, delete or replace bytes. */
		for (int m = 0; m < 4; m++) {
			struct buf d = b;
			for (unsigned k = 1 + rnd(2); k > 0 && d.n > 1; k--) {
				size_t pos = rnd((unsigned)d.n);
				char c = damage[rnd(sizeof damage - 1)];
				switch (rnd(3)) {
				case 0:
					memmove(d.s + pos + 1, d.s + pos, d.n - pos);
					d.s[pos] = c;
					d.n++;
					break;
				case 1:
					memmove(d.s + pos, d.s + pos + 1, d.n - pos - 1);
					d.n--;
					break;
				default:
					d.s[pos] = c;
				}
			}
			json_error_t je;
			j = json_loadb(d.s, d.n, JSON_ALLOW_NUL, &je);
			/* jansson also refuses numbers too big for a double or a
			 * long long; PostgreSQL's jsonb does not, nor do we. */
			if (!j && (strstr(je.text, "overflow") || strstr(je.text, "too big")))
				continue;
			rc = jsondoc_parse(D, d.s, d.n, 0, err);
			if ((j != NULL) != (rc == 0) || (j && !same(0, j))) {
				if (disagreements++ < 5)
					fprintf(stderr, "differs on %.*s: jansson %s, jsondoc %s\n", (int)d.n, d.s,
					        j ? "ok" : je.text, rc ? err : "ok");
			}
			j ? accepted++ : refused++;
			json_decref(j);
		}
	}
	CHECK_EQ(disagreements, 0);
	CHECK_EQ(trees, 3000);
	/* the damage must exercise both outcomes */
	CHECK(accepted > 100);
	CHECK(refused > 1000);
}

int main(void)
{
	D = jsondoc_new();
	RUN(test_empty_pointer_is_the_document);
	RUN(test_pointer_walks_objects_and_arrays);
	RUN(test_missing_members_and_bad_indexes_are_absent);
	RUN(test_escapes_name_tilde_and_slash);
	RUN(test_last_duplicate_member_wins);
	RUN(test_scalars_and_slices);
	RUN(test_nul_is_allowed_and_located);
	RUN(test_errors_name_the_fault_and_where);
	RUN(test_a_nul_byte_after_a_number_is_refused);
	RUN(test_depth_is_bounded_like_jansson);
	RUN(test_a_big_document_is_given_back_by_trim);
	RUN(test_census_bounds_tokens_and_containers_from_the_separators);
	RUN(test_reserve_sizes_the_tokens_once_and_refuses_the_impossible);
	RUN(test_agrees_with_jansson_on_random_documents);
	jsondoc_free(D);
	return CHECK_DONE();
}
