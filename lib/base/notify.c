/* notify — sd_notify wrapper; see notify.h. */
#include "notify.h"

#include "error.h"
#include "redact.h"

#include <event2/event.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <time.h>

static char last_status[NOTIFY_STATUS_MAX];
static int status_sent; /* last_status is meaningful */
static struct event *watchdog_ev;

int notify_ready(void)
{
	return sd_notify(0, "READY=1");
}

int notify_status(const char *fmt, ...)
{
	char text[NOTIFY_STATUS_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(text, sizeof text, fmt, ap);
	va_end(ap);
	redact_buf(text, sizeof text);
	/* A newline would start a new assignment in the datagram. */
	for (char *p = text; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	if (status_sent && strcmp(text, last_status) == 0)
		return 0;
	int r = sd_notifyf(0, "STATUS=%s", text);
	if (r > 0) {
		memcpy(last_status, text, sizeof last_status);
		status_sent = 1;
	}
	return r;
}

int notify_reloading(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	uint64_t usec = (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
	return sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%" PRIu64, usec);
}

int notify_stopping(void)
{
	return sd_notify(0, "STOPPING=1");
}

static void watchdog_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	sd_notify(0, "WATCHDOG=1");
}

int notify_watchdog_setup(struct event_base *base, uint64_t *interval_usec, char *err)
{
	notify_watchdog_teardown();
	uint64_t usec = 0;
	int r = sd_watchdog_enabled(0, &usec);
	if (r <= 0 || usec == 0)
		return 0; /* not asked, or WATCHDOG_USEC unparsable: systemd would not expect pings */
	uint64_t half = usec / 2;
	if (half == 0)
		half = 1;
	watchdog_ev = event_new(base, -1, EV_PERSIST, watchdog_cb, NULL);
	if (!watchdog_ev)
		return err_set(err, "watchdog: cannot create the libevent timer (out of memory)");
	struct timeval tv = {
		.tv_sec = (time_t)(half / 1000000u),
		.tv_usec = (suseconds_t)(half % 1000000u),
	};
	if (event_add(watchdog_ev, &tv) < 0) {
		event_free(watchdog_ev);
		watchdog_ev = NULL;
		return err_set(err, "watchdog: cannot arm the %" PRIu64 " us timer", half);
	}
	if (interval_usec)
		*interval_usec = half;
	return 1;
}

void notify_watchdog_teardown(void)
{
	if (watchdog_ev) {
		event_free(watchdog_ev);
		watchdog_ev = NULL;
	}
}
