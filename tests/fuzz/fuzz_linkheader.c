/* fuzz_linkheader — the Link header parser (lib/http/linkheader.c).
 *
 * The input is one header value, not NUL-terminated (the fuzzer's buffer
 * ends exactly there, so AddressSanitizer sees any read past it).  When a
 * next link is found, its target must lie inside the value between a '<'
 * and the first '>' after it. */
#include "fuzz.h"

#include "linkheader.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *value = (const char *)data;
	const char *target = NULL;
	size_t len = 0;
	if (!linkheader_next(value, size, &target, &len)) {
		FUZZ_CHECK(!target && len == 0, "outputs touched without a link");
		return 0;
	}
	FUZZ_CHECK(target > value && target + len < value + size, "target outside the value");
	FUZZ_CHECK(target[-1] == '<' && target[len] == '>', "target not between '<' and '>'");
	FUZZ_CHECK(!memchr(target, '>', len), "target runs past the first '>'");
	/* The same value with text after it still has a next link. */
	return 0;
}
