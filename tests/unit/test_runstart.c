/* runstart: cursor texts (times and numbers less lag, initial when there
 * is no value) and the rules of resuming. */
#include "check.h"

#include "runstart.h"

#include <errno.h>

static void cursor(const char *json, uint32_t lag_ms, const char *initial, const char *want)
{
	char err[ERR_MAX], *out = NULL;
	json_t *v = json ? json_loads(json, JSON_DECODE_ANY, NULL) : NULL;
	int rc = runstart_cursor_text(v, lag_ms, initial, &out, err);
	if (want) {
		CHECK_EQ(rc, 0);
		CHECK_STR(out, want);
	} else {
		CHECK_EQ(rc, -EINVAL);
		CHECK(out == NULL);
		CHECK(strlen(err) > 20);
	}
	free(out);
	json_decref(v);
}

static void test_cursor(void)
{
	cursor("\"2026-12-05T10:00:00Z\"", 0, NULL, "2026-12-05T10:00:00Z");
	cursor("\"2026-12-05T10:00:00.123456+00:00\"", 0, NULL, "2026-12-05T10:00:00Z");
	cursor("\"2026-12-05 10:00:00+01\"", 0, NULL, "2026-12-05T09:00:00Z");
	cursor("\"2026-12-05T10:00:00-02:30\"", 0, NULL, "2026-12-05T12:30:00Z");
	/* lag moves it back, a part second rounding down */
	cursor("\"2026-12-05T10:00:00Z\"", 300000, NULL, "2026-12-05T09:55:00Z");
	cursor("\"2026-12-05T10:00:00Z\"", 1500, NULL, "2026-12-05T09:59:58Z");
	cursor("\"2026-01-01T00:00:30Z\"", 60000, NULL, "2025-12-31T23:59:30Z");
	cursor("1700000000", 10000, NULL, "1699999990");
	cursor("1.5", 0, NULL, "1.5");
	/* no value yet: initial as it is, without lag */
	cursor(NULL, 60000, "2020-01-01T00:00:00Z", "2020-01-01T00:00:00Z");
	cursor("null", 0, "0", "0");
	cursor(NULL, 0, NULL, NULL);
	cursor("\"yesterday\"", 0, NULL, NULL);
	cursor("\"2026-13-05T10:00:00Z\"", 0, NULL, NULL);
	cursor("\"2026-12-05T10:00:00Zjunk\"", 0, NULL, NULL);
	cursor("true", 0, NULL, NULL);
	cursor("{}", 0, NULL, NULL);
}

static int resume(const char *json, int64_t asked)
{
	char err[ERR_MAX] = "";
	json_t *run = json_loads(json, JSON_DECODE_ANY, NULL);
	int rc = runstart_check_resume(run, asked, err);
	if (rc)
		CHECK(strlen(err) > 20);
	json_decref(run);
	return rc;
}

static void test_resume(void)
{
	CHECK_EQ(resume("null", 0), -ENOENT);
	CHECK_EQ(resume("null", 12), -ENOENT);
	CHECK_EQ(resume("{\"id\":3,\"status\":\"interrupted\",\"resumable\":true}", 0), 0);
	CHECK_EQ(resume("{\"id\":3,\"status\":\"failed\",\"resumable\":true}", 3), 0);
	CHECK_EQ(resume("{\"id\":3,\"status\":\"succeeded\",\"resumable\":false}", 3), -EINVAL);
	CHECK_EQ(resume("{\"id\":3,\"status\":\"running\",\"resumable\":false}", 3), -EINVAL);
	CHECK_EQ(resume("{\"id\":3,\"status\":\"interrupted\",\"resumable\":true,"
	                "\"newer_success\":true}", 3), -ESTALE);
	char err[ERR_MAX];
	json_t *run = json_pack("{s:i,s:s,s:b}", "id", 7, "status", "succeeded", "resumable", 0);
	CHECK(runstart_check_resume(run, 7, err) < 0);
	CHECK(strstr(err, "import 7 ended 'succeeded'") != NULL);
	json_decref(run);
}

int main(void)
{
	test_cursor();
	test_resume();
	return check_failures ? 1 : 0;
}
