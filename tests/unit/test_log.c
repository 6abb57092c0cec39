#include "check.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* stderr captured through a real pipe: capture_begin() points fd 2 at the
 * pipe, capture_end() restores it and returns what was written. */
static int cap_pipe[2] = {-1, -1};
static int cap_saved = -1;
static char cap_buf[3 * LOG_LINE_MAX];

static void capture_begin(void)
{
	if (pipe2(cap_pipe, O_CLOEXEC) < 0) {
		perror("pipe2");
		exit(1);
	}
	cap_saved = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 0);
	dup2(cap_pipe[1], STDERR_FILENO);
}

static const char *capture_end(void)
{
	dup2(cap_saved, STDERR_FILENO);
	close(cap_saved);
	close(cap_pipe[1]);
	size_t n = 0;
	for (;;) {
		ssize_t r = read(cap_pipe[0], cap_buf + n, sizeof cap_buf - 1 - n);
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	close(cap_pipe[0]);
	cap_buf[n] = '\0';
	return cap_buf;
}

static void test_log_quiet_by_default_shows_notice_and_above(void)
{
	CHECK_EQ(log_level(), LOG_NOTICE);
	capture_begin();
	log_err("e");
	log_warn("w");
	log_notice("n");
	log_info("i");
	log_debug("d");
	CHECK_STR(capture_end(), "<3>e\n<4>w\n<5>n\n");
	CHECK(log_enabled(LOG_NOTICE));
	CHECK(!log_enabled(LOG_INFO));
}

static void test_log_verbose_prefixes_every_priority(void)
{
	log_set_level(LOG_DEBUG);
	capture_begin();
	log_err("database down: %s", "connection refused");
	log_warn("retry %d of %d", 2, 5);
	log_notice("reloaded");
	log_info("GET %s 200", "/races");
	log_debug("credit %u", 100u);
	log_write(LOG_NOTICE, "via log_write");
	CHECK_STR(capture_end(), "<3>database down: connection refused\n"
	                         "<4>retry 2 of 5\n"
	                         "<5>reloaded\n"
	                         "<6>GET /races 200\n"
	                         "<7>credit 100\n"
	                         "<5>via log_write\n");
	log_set_level(LOG_LEVEL_DEFAULT);
}

static void test_log_level_is_clamped(void)
{
	log_set_level(99);
	CHECK_EQ(log_level(), LOG_DEBUG);
	log_set_level(0);
	CHECK_EQ(log_level(), LOG_ERR);
	log_set_level(LOG_LEVEL_DEFAULT);
}

static void test_log_escapes_newlines_so_one_event_is_one_line(void)
{
	capture_begin();
	log_notice("line1\nline2\r\ttab\x01" "end");
	CHECK_STR(capture_end(), "<5>line1\\nline2\\r\\ttab\\x01end\n");
}

static void test_log_lines_carry_the_current_import_id(void)
{
	capture_begin();
	log_set_import(42);
	log_warn("GET /races/7/entries: HTTP 503, retrying");
	log_set_import(0);
	log_warn("idle");
	CHECK_STR(capture_end(), "<4>import 42: GET /races/7/entries: HTTP 503, retrying\n"
	                         "<4>idle\n");
}

static void test_log_cuts_long_messages_at_line_max(void)
{
	static char big[2 * LOG_LINE_MAX];
	memset(big, 'x', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	capture_begin();
	log_err("%s", big);
	const char *out = capture_end();
	size_t len = strlen(out);
	CHECK_EQ(len, LOG_LINE_MAX);
	CHECK(strncmp(out, "<3>xxx", 6) == 0);
	CHECK_STR(out + len - 4, "...\n");
	CHECK(strchr(out, '\n') == out + len - 1);
}

static void test_log_escape_is_not_split_at_the_cut(void)
{
	/* Every character escapes to 2 bytes; the cut must fall between
	 * escapes, never inside one. */
	static char nl[LOG_LINE_MAX];
	memset(nl, '\n', sizeof nl - 1);
	nl[sizeof nl - 1] = '\0';
	capture_begin();
	log_err("%s", nl);
	const char *out = capture_end();
	size_t len = strlen(out);
	CHECK(len <= LOG_LINE_MAX);
	CHECK_STR(out + len - 6, "\\n...\n");
	CHECK(strchr(out, '\n') == out + len - 1);
}

static void test_log_masks_secrets_even_where_the_line_is_cut(void)
{
	static char pw[2 * LOG_LINE_MAX];
	memset(pw, 'p', sizeof pw - 1);
	pw[sizeof pw - 1] = '\0';
	capture_begin();
	log_err("store: connecting to host=db password=%s", "hunter2");
	log_err("GET http://alice:%s@host/races: HTTP 500", pw);
	CHECK_STR(capture_end(), "<3>store: connecting to host=db password=***\n"
	                         "<3>GET http://alice:***@host/races: HTTP 500\n");
}

static void test_log_preserves_errno(void)
{
	capture_begin();
	errno = ECONNREFUSED;
	log_err("connect failed");
	int e = errno;
	capture_end();
	CHECK_EQ(e, ECONNREFUSED);
}

static void test_log_time_is_iso8601_local_with_milliseconds_and_offset(void)
{
	struct timespec ts = {.tv_sec = 1796508050, .tv_nsec = 123456789};
	char out[64];
	setenv("TZ", "UTC", 1);
	tzset();
	CHECK_EQ(log_format_time(out, sizeof out, &ts), 29);
	CHECK_STR(out, "2026-12-05T22:00:50.123+00:00");
	setenv("TZ", "EST5", 1);
	tzset();
	log_format_time(out, sizeof out, &ts);
	CHECK_STR(out, "2026-12-05T17:00:50.123-05:00");
	setenv("TZ", "<+0530>-5:30", 1);
	tzset();
	log_format_time(out, sizeof out, &ts);
	CHECK_STR(out, "2026-12-06T03:30:50.123+05:30");
	CHECK_EQ(log_format_time(out, 29, &ts), 0); /* no room for the NUL */
	CHECK_STR(out, "");
	unsetenv("TZ");
	tzset();
}

/* A timestamped line: "YYYY-MM-DDTHH:MM:SS.mmm+HH:MM " then want. */
static void check_stamped(const char *line, const char *want)
{
	CHECK(strlen(line) == 30 + strlen(want));
	CHECK(line[4] == '-' && line[7] == '-' && line[10] == 'T' && line[13] == ':' &&
	      line[16] == ':' && line[19] == '.' && (line[23] == '+' || line[23] == '-') &&
	      line[26] == ':' && line[29] == ' ');
	CHECK_STR(line + 30, want);
}

static void test_log_lines_off_journald_open_with_a_timestamp(void)
{
	unsetenv("JOURNAL_STREAM");
	capture_begin();
	log_setup_stderr();
	log_notice("started");
	check_stamped(capture_end(), "<5>started\n");
	/* the timestamp counts against the line bound */
	static char big[2 * LOG_LINE_MAX];
	memset(big, 'x', sizeof big - 1);
	capture_begin();
	log_err("%s", big);
	const char *out = capture_end();
	CHECK_EQ(strlen(out), LOG_LINE_MAX);
	CHECK_STR(out + LOG_LINE_MAX - 4, "...\n");
	log_set_timestamps(false);
}

static void test_log_lines_on_journald_carry_no_timestamp(void)
{
	capture_begin();
	struct stat st;
	CHECK_EQ(fstat(STDERR_FILENO, &st), 0);
	char stream[64];
	snprintf(stream, sizeof stream, "%llu:%llu", (unsigned long long)st.st_dev,
	         (unsigned long long)st.st_ino);
	setenv("JOURNAL_STREAM", stream, 1);
	CHECK(log_stderr_is_journal());
	log_setup_stderr();
	log_notice("started");
	CHECK_STR(capture_end(), "<5>started\n");
	unsetenv("JOURNAL_STREAM");
	log_set_timestamps(false);
}

static void test_journal_stream_naming_another_file_is_not_journald(void)
{
	/* stderr redirected by a child of a service: the variable is
	 * inherited but names the journal's stream, not fd 2 */
	struct stat st;
	CHECK_EQ(stat("/", &st), 0);
	char stream[64];
	snprintf(stream, sizeof stream, "%llu:%llu", (unsigned long long)st.st_dev,
	         (unsigned long long)st.st_ino);
	setenv("JOURNAL_STREAM", stream, 1);
	capture_begin();
	CHECK(!log_stderr_is_journal());
	log_setup_stderr();
	log_warn("retrying");
	check_stamped(capture_end(), "<4>retrying\n");
	setenv("JOURNAL_STREAM", "12", 1); /* malformed */
	CHECK(!log_stderr_is_journal());
	unsetenv("JOURNAL_STREAM");
	log_set_timestamps(false);
}

/* Last: a pin lasts for the process (raced -v). */
static void test_a_pinned_level_ignores_the_configured_one(void)
{
	log_set_configured_level(LOG_WARNING);
	CHECK_EQ(log_level(), LOG_WARNING);
	log_pin_level(LOG_DEBUG);
	log_set_configured_level(LOG_NOTICE);
	CHECK_EQ(log_level(), LOG_DEBUG);
	CHECK(log_enabled(LOG_DEBUG));
}

int main(void)
{
	RUN(test_log_quiet_by_default_shows_notice_and_above);
	RUN(test_log_verbose_prefixes_every_priority);
	RUN(test_log_level_is_clamped);
	RUN(test_log_escapes_newlines_so_one_event_is_one_line);
	RUN(test_log_lines_carry_the_current_import_id);
	RUN(test_log_cuts_long_messages_at_line_max);
	RUN(test_log_escape_is_not_split_at_the_cut);
	RUN(test_log_masks_secrets_even_where_the_line_is_cut);
	RUN(test_log_preserves_errno);
	RUN(test_log_time_is_iso8601_local_with_milliseconds_and_offset);
	RUN(test_log_lines_off_journald_open_with_a_timestamp);
	RUN(test_log_lines_on_journald_carry_no_timestamp);
	RUN(test_journal_stream_naming_another_file_is_not_journald);
	RUN(test_a_pinned_level_ignores_the_configured_one);
	return CHECK_DONE();
}
