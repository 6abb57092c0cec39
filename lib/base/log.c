/* log — one line per event on stderr: a timestamp off journald, the
 * sd-daemon priority prefix; see log.h. */
#include "log.h"

#include "redact.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static int max_level = LOG_LEVEL_DEFAULT;
static int64_t current_import;
static bool timestamps;

void log_set_level(int max_priority)
{
	if (max_priority < LOG_ERR)
		max_priority = LOG_ERR;
	if (max_priority > LOG_DEBUG)
		max_priority = LOG_DEBUG;
	max_level = max_priority;
}

static bool pinned;

void log_pin_level(int max_priority)
{
	log_set_level(max_priority);
	pinned = true;
}

void log_set_configured_level(int max_priority)
{
	if (!pinned)
		log_set_level(max_priority);
}

int log_level(void)
{
	return max_level;
}

bool log_enabled(int priority)
{
	return priority <= max_level;
}

void log_set_import(int64_t id)
{
	current_import = id > 0 ? id : 0;
}

void log_set_timestamps(bool on)
{
	timestamps = on;
}

/* systemd sets JOURNAL_STREAM=DEV:INODE on the stream it connects to a
 * service's stderr; a child whose stderr was redirected inherits the
 * variable, so only a match with fd 2 itself counts (as systemd's tools do). */
bool log_stderr_is_journal(void)
{
	const char *e = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	int used = 0;
	if (!e || sscanf(e, "%llu:%llu%n", &dev, &ino, &used) != 2 || e[used] != '\0')
		return false;
	struct stat st;
	if (fstat(STDERR_FILENO, &st) != 0)
		return false;
	return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

void log_setup_stderr(void)
{
	log_set_timestamps(!log_stderr_is_journal());
}

size_t log_format_time(char *out, size_t size, const struct timespec *ts)
{
	struct tm tm;
	char date[32];
	if (size == 0)
		return 0;
	if (!localtime_r(&ts->tv_sec, &tm) || strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S", &tm) == 0) {
		out[0] = '\0';
		return 0;
	}
	long off = tm.tm_gmtoff / 60; /* minutes east of UTC */
	char sign = off < 0 ? '-' : '+';
	if (off < 0)
		off = -off;
	int n = snprintf(out, size, "%s.%03ld%c%02ld:%02ld", date, ts->tv_nsec / 1000000, sign,
	                 off / 60, off % 60);
	if (n < 0 || (size_t)n >= size) {
		out[0] = '\0';
		return 0;
	}
	return (size_t)n;
}

/* "2026-12-05T22:00:50.123+00:00 " when timestamps are on, else nothing. */
static size_t stamp_into(char *out, size_t size)
{
	if (!timestamps)
		return 0;
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	size_t n = log_format_time(out, size, &now);
	if (n > 0 && n + 1 < size)
		out[n++] = ' ';
	return n;
}

/* Copy msg into out (room bytes, >= 1), escaping control characters.
 * Returns bytes written; stops early and sets *cut when out is full. */
static size_t escape_into(char *out, size_t room, const char *msg, bool *cut)
{
	size_t n = 0;
	for (const unsigned char *p = (const unsigned char *)msg; *p; p++) {
		char esc[5];
		size_t len;
		if (*p == '\n')
			len = (size_t)snprintf(esc, sizeof esc, "\\n");
		else if (*p == '\r')
			len = (size_t)snprintf(esc, sizeof esc, "\\r");
		else if (*p == '\t')
			len = (size_t)snprintf(esc, sizeof esc, "\\t");
		else if (*p < 0x20 || *p == 0x7f)
			len = (size_t)snprintf(esc, sizeof esc, "\\x%02x", *p);
		else {
			esc[0] = (char)*p;
			len = 1;
		}
		if (n + len > room) {
			*cut = true;
			break;
		}
		memcpy(out + n, esc, len);
		n += len;
	}
	return n;
}

__attribute__((format(printf, 2, 0)))
static void log_vwrite(int priority, const char *fmt, va_list ap)
{
	if (!log_enabled(priority))
		return;
	int saved_errno = errno; /* callers may log and then look at errno */
	char msg[LOG_LINE_MAX];
	va_list again;
	va_copy(again, ap);
	int mlen = vsnprintf(msg, sizeof msg, fmt, ap);
	bool cut = mlen >= (int)sizeof msg;
	/* Secrets are masked before the cut, which could hide where one ends. */
	char *whole = cut ? malloc((size_t)mlen + 1) : NULL;
	if (whole)
		vsnprintf(whole, (size_t)mlen + 1, fmt, again);
	va_end(again);
	whole = whole ? redact_take(whole) : NULL;
	if (whole)
		cut = false; /* escape_into tells whether the masked text fits */
	redact_buf(msg, sizeof msg);

	static const char ellipsis[] = "...";
	char line[LOG_LINE_MAX];
	size_t n = stamp_into(line, sizeof line);
	if (current_import > 0)
		n += (size_t)snprintf(line + n, sizeof line - n, "<%d>import %" PRId64 ": ", priority,
		                      current_import);
	else
		n += (size_t)snprintf(line + n, sizeof line - n, "<%d>", priority);
	/* Keep room for "..." and the newline. */
	size_t room = sizeof line - n - (sizeof ellipsis - 1) - 1;
	n += escape_into(line + n, room, whole ? whole : msg, &cut);
	free(whole);
	if (cut) {
		memcpy(line + n, ellipsis, sizeof ellipsis - 1);
		n += sizeof ellipsis - 1;
	}
	line[n++] = '\n';

	size_t off = 0;
	while (off < n) {
		ssize_t w = write(STDERR_FILENO, line + off, n - off);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			break; /* nowhere left to report it */
		}
		off += (size_t)w;
	}
	errno = saved_errno;
}

void log_write(int priority, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_vwrite(priority, fmt, ap);
	va_end(ap);
}

#define LOG_FN(name, prio)                                                     \
	void name(const char *fmt, ...)                                        \
	{                                                                      \
		va_list ap;                                                    \
		va_start(ap, fmt);                                             \
		log_vwrite(prio, fmt, ap);                                     \
		va_end(ap);                                                    \
	}

LOG_FN(log_err, LOG_ERR)
LOG_FN(log_warn, LOG_WARNING)
LOG_FN(log_notice, LOG_NOTICE)
LOG_FN(log_info, LOG_INFO)
LOG_FN(log_debug, LOG_DEBUG)
