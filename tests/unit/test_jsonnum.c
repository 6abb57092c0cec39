/* jsonnum: a JSON number written as PostgreSQL's numeric prints it.  The
 * expected texts below were taken from PostgreSQL 15.18 itself,
 * `select ('{"a": ' || v || '}')::jsonb ->> 'a'` for each v (and the same
 * text inside `::jsonb::text`, the whole row's read-back), not worked out
 * by hand. */
#include "check.h"
#include "jsonnum.h"

static const struct {
	const char *in, *pg;
} from_pg[] = {
	{"0", "0"},
	{"-0", "0"},
	{"0.0", "0.0"},
	{"-0.0", "0.0"},
	{"-0.00e5", "0"},
	{"0e5", "0"},
	{"0E-3", "0.000"},
	{"0.00e1", "0.0"},
	{"-0e-2", "0.00"},
	{"0e99999", "0"},
	{"1", "1"},
	{"-5", "-5"},
	{"100", "100"},
	{"1.50", "1.50"},
	{"1.10", "1.10"},
	{"-12.500", "-12.500"},
	{"0.5", "0.5"},
	{"0.000001", "0.000001"},
	{"1e3", "1000"},
	{"1E+2", "100"},
	{"1e0", "1"},
	{"1E-0", "1"},
	{"1e-0", "1"},
	{"1e+0", "1"},
	{"1.23e+02", "123"},
	{"1.0e2", "100"},
	{"1.000e2", "100.0"},
	{"0.10e1", "1.0"},
	{"9.999e2", "999.9"},
	{"123.456e1", "1234.56"},
	{"12.3450e-2", "0.123450"},
	{"1.5e-3", "0.0015"},
	{"1e-3", "0.001"},
	{"5e-1", "0.5"},
	{"-1.5E-2", "-0.015"},
	{"1e-7", "0.0000001"},
	{"2.5e-10", "0.00000000025"},
	{"1e20", "100000000000000000000"},
	{"1e-20", "0.00000000000000000001"},
	{"-1e-20", "-0.00000000000000000001"},
	{"0.001e3", "1"},
	{"0.0010e3", "1.0"},
	{"0.0010e-3", "0.0000010"},
	{"100e-2", "1.00"},
	{"100e-3", "0.100"},
	{"1000000e-6", "1.000000"},
	{"10.00e-1", "1.000"},
	{"9223372036854775807", "9223372036854775807"},
	{"9223372036854775808", "9223372036854775808"},
	{"-9223372036854775809", "-9223372036854775809"},
	{"18446744073709551616", "18446744073709551616"},
	{"12345678901234567890123", "12345678901234567890123"},
	{"-12345678901234567890123.50", "-12345678901234567890123.50"},
	{"123456789012345678901234567890.123456789e-5", "1234567890123456789012345.67890123456789"},
	{"1e00000000000000000003", "1000"},
	{"1e-00000000000000000003", "0.001"},
};

static char *canon(const char *in)
{
	static char out[256];
	size_t n = jsonnum_canon(in, strlen(in), out, sizeof out);
	if (n == JSONNUM_INVALID || n >= sizeof out)
		return NULL;
	CHECK_EQ(strlen(out), n);
	return out;
}

static void test_numbers_are_written_as_postgresql_prints_them(void)
{
	for (size_t i = 0; i < sizeof from_pg / sizeof from_pg[0]; i++) {
		CHECK_STR(canon(from_pg[i].in), from_pg[i].pg);
		/* PostgreSQL's own text is its own form: a whole row read
		 * back and written again stays the same */
		char again[256];
		snprintf(again, sizeof again, "%s", from_pg[i].pg);
		CHECK_STR(canon(again), from_pg[i].pg);
	}
}

static void test_text_that_is_no_number_is_refused(void)
{
	static const char *bad[] = {"", "-", "+1", "01", "-01", ".5", "1.", "1.e3", "1e", "1e+",
	                            "1E-", "1x", " 1", "1 ", "0x10", "NaN", "Infinity", "--1",
	                            "1e3.5", "true"};
	char out[16] = "untouched";
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		CHECK(jsonnum_canon(bad[i], strlen(bad[i]), out, sizeof out) == JSONNUM_INVALID);
		CHECK_STR(out, "untouched");
	}
	/* only the n bytes given are read */
	CHECK_EQ(jsonnum_canon("1e3garbage", 3, out, sizeof out), 4);
	CHECK_STR(out, "1000");
}

/* As snprintf(): the length always, the text only when it fits. */
static void test_a_form_that_does_not_fit_is_measured_not_written(void)
{
	char out[5] = "xxxx";
	CHECK_EQ(jsonnum_canon("1e4", 3, out, sizeof out), 5);
	CHECK_STR(out, "xxxx");
	CHECK_EQ(jsonnum_canon("1e3", 3, out, sizeof out), 4);
	CHECK_STR(out, "1000");
	CHECK_EQ(jsonnum_canon("-1.5e-3", 7, NULL, 0), 7); /* -0.0015 */
	/* PostgreSQL: 1e8191 is 8,192 digits, 1e-8190 8,192 characters */
	CHECK_EQ(jsonnum_canon("1e8191", 6, NULL, 0), 8192);
	CHECK_EQ(jsonnum_canon("1e-8190", 7, NULL, 0), 8192);
	CHECK_EQ(jsonnum_canon("-1e-8189", 8, NULL, 0), 8192);
	/* an exponent past any buffer is measured without overflowing */
	CHECK(jsonnum_canon("1e99999999999999999999", 22, NULL, 0) >= 1000000000u);
	CHECK(jsonnum_canon("1e-99999999999999999999", 23, NULL, 0) >= 1000000000u);
	CHECK(jsonnum_canon("0e-99999999999999999999", 23, NULL, 0) >= 1000000000u);
	/* a zero keeps no digits before its point however large the exponent */
	CHECK_EQ(jsonnum_canon("0e99999999999999999999", 22, out, sizeof out), 1);
	CHECK_STR(out, "0");
}

int main(void)
{
	RUN(test_numbers_are_written_as_postgresql_prints_them);
	RUN(test_text_that_is_no_number_is_refused);
	RUN(test_a_form_that_does_not_fit_is_measured_not_written);
	return CHECK_DONE();
}
