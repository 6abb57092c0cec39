/* raced — the daemon: parses arguments, sets up the loop, signals, systemd
 * notification and the control socket, and hands everything else to the
 * service (lib/service/service.c).
 *
 * Set-up order: configuration, event base, service (fetcher, store),
 * control socket, signals, READY=1.  Tear-down is the reverse.
 */
#include "raced_version.h"

#include "config.h"
#include "daemon_control.h"
#include "error.h"
#include "log.h"
#include "membudget.h"
#include "metrics_http.h"
#include "notify.h"
#include "redact.h"
#include "service.h"

#include <curl/curl.h>
#include <event2/event.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define EXIT_CONFIG CONFIG_EXIT_INVALID

struct daemon {
	struct event_base *base;
	struct service *svc;
	struct daemon_control *ctl;
	struct metrics_http *metrics; /* NULL: [daemon] metrics unset */
	const char *config_path;
	bool once;
	struct service_start start;   /* --full, --resume[=ID] (with --once) */
	int exit_code;
	struct event *sig_term, *sig_int, *sig_hup, *status_ev;
	char last_status[512];
};

static void usage(FILE *out)
{
	fprintf(out,
	        "Usage: raced [OPTION]...\n"
	        "Import race data from REST providers into PostgreSQL.\n"
	        "\n"
	        "  -c, --config PATH   configuration file (default " CONFIG_DEFAULT_PATH ")\n"
	        "  -t, --check-config  validate the configuration and exit (0 valid, 78 invalid)\n"
	        "  -1, --once          run one import and exit (0 if it succeeded, 1 otherwise)\n"
	        "      --full          with --once: ignore the state earlier imports kept\n"
	        "                      (unconditional requests, no refresh skips, no cursor)\n"
	        "      --resume[=ID]   with --once: continue the latest interrupted import\n"
	        "                      (or import ID) instead of starting a new one\n"
	        "  -v, --verbose       log every request and batch, not only events\n"
	        "  -V, --version       print the version and exit\n"
	        "  -h, --help          print this help and exit\n"
	        "\n"
	        "Signals: SIGHUP reloads the configuration; SIGTERM and SIGINT drain\n"
	        "the running import (it ends 'interrupted') and exit; a second one stops\n"
	        "waiting for requests in flight.\n"
	        "See raced(8), raced.conf(5) and racectl(1).\n");
}

/* "42" to 42; -1 for anything but a positive integer. */
static int parse_import_id(const char *s, int64_t *id)
{
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno || end == s || *end || v < 1)
		return -1;
	*id = v;
	return 0;
}

static void update_status(struct daemon *d)
{
	char line[512];
	service_status_line(d->svc, line, sizeof line);
	if (strcmp(line, d->last_status) != 0) {
		snprintf(d->last_status, sizeof d->last_status, "%s", line);
		notify_status("%s", line);
	}
}

static void status_tick(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	update_status(arg);
}

static void on_import_ended(void *arg, int64_t id, const char *status)
{
	struct daemon *d = arg;
	metrics_http_import_ended(d->metrics);
	update_status(d);
	if (d->once) {
		(void)id;
		d->exit_code = strcmp(status, "succeeded") == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
		event_base_loopexit(d->base, NULL);
	}
}

static void on_stopped(void *arg)
{
	struct daemon *d = arg;
	log_notice("stopped");
	event_base_loopexit(d->base, NULL);
}

static void on_term(evutil_socket_t sig, short what, void *arg)
{
	struct daemon *d = arg;
	(void)what;
	log_notice("%s: draining, then stopping", sig == SIGINT ? "SIGINT" : "SIGTERM");
	notify_stopping();
	daemon_control_close(d->ctl);
	d->ctl = NULL;
	if (d->once && d->exit_code == EXIT_SUCCESS)
		d->exit_code = EXIT_FAILURE; /* the import did not succeed */
	service_stop(d->svc);
}

static void on_hup(evutil_socket_t sig, short what, void *arg)
{
	struct daemon *d = arg;
	char err[ERR_MAX];
	(void)sig;
	(void)what;
	notify_reloading();
	if (daemon_reload(d->ctl, d->svc, d->config_path, NULL, err) < 0)
		log_debug("SIGHUP: the reload was refused (logged above)");
	notify_ready();
	update_status(d);
}

static int check_config(const char *path)
{
	char err[ERR_MAX];
	struct config *cfg = config_load(path, err);
	if (!cfg) {
		redact_buf(err, sizeof err);
		fprintf(stderr, "raced: %s\n", err);
		return EXIT_CONFIG;
	}
	printf("raced: %s: configuration OK (%zu providers, %zu stages)\n", path,
	       cfg->n_providers, cfg->n_stages);
	config_free(cfg);
	return EXIT_SUCCESS;
}

#ifdef RACED_MIMALLOC
/* mimalloc (daemon/meson.build): glibc's settings below do not apply to
 * it, and it keeps its defaults: the options tried (eager commit, the
 * reset and decommit delays) moved peak RSS by 2 MiB at most
 * (docs/performance.md, "The allocator"). */
#include <mimalloc.h>
#define RACED_ALLOCATOR "mimalloc"
/* An empty segment goes back as mimalloc frees it, but what it holds
 * freed in part is given back only when asked, and an idle daemon asks
 * nothing of it: collect, as glibc's malloc_trim (membudget.h). */
static void heap_give_back(void)
{
	mi_collect(true);
}
static void heap_setup(void)
{
	membudget_set_give_back(heap_give_back);
}
static int allocator_version(void)
{
	return mi_version();
}
#else
#define RACED_ALLOCATOR "libc"
static int allocator_version(void)
{
	return 0;
}
/* The heap's top is kept, not given back, up to RACED_HEAP_TRIM_BYTES
 * free: each batch of items (batch_size) grows the heap and frees it all,
 * and glibc's default (trim past 128 KiB of free top, then fault the
 * pages in again for the next batch) cost raced about 5 page faults and
 * 0.04 brk calls a request fetch-only, about a tenth of its CPU
 * (docs/performance.md, "CPU per request").  RACED_HEAP_TOP_PAD is what
 * the heap grows by beyond a request, so that it grows in steps, not per
 * batch.  Setting these turns off glibc's sliding mmap threshold, so it
 * is set too: blocks from RACED_HEAP_MMAP_BYTES (the largest token array
 * kept, FETCH_DOC_KEEP_BYTES) are mapped and unmapped on their own.  The
 * memory kept is bounded by the trim setting; peak RSS is unchanged.
 * glibc's fast bins stay on: with the heap kept, turning them off
 * (M_MXFAST 0, as raced did) costs fetch-only 2.4 % more instructions
 * (malloc's own 8 % more) and about 7 % more CPU. */
#define RACED_HEAP_TRIM_BYTES (4 << 20)
#define RACED_HEAP_TOP_PAD (512 << 10)
#define RACED_HEAP_MMAP_BYTES (1 << 20)

/* Best effort: a libc without these options keeps its defaults. */
static void heap_setup(void)
{
#if defined(M_TRIM_THRESHOLD) && defined(M_TOP_PAD) && defined(M_MMAP_THRESHOLD)
	(void)mallopt(M_TRIM_THRESHOLD, RACED_HEAP_TRIM_BYTES);
	(void)mallopt(M_TOP_PAD, RACED_HEAP_TOP_PAD);
	(void)mallopt(M_MMAP_THRESHOLD, RACED_HEAP_MMAP_BYTES);
#endif
}
#endif

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"config", required_argument, NULL, 'c'},
		{"check-config", no_argument, NULL, 't'},
		{"once", no_argument, NULL, '1'},
		{"full", no_argument, NULL, 'F'},
		{"resume", optional_argument, NULL, 'R'},
		{"verbose", no_argument, NULL, 'v'},
		{"version", no_argument, NULL, 'V'},
		{"help", no_argument, NULL, 'h'},
		{0, 0, 0, 0},
	};
	struct daemon d = {.config_path = CONFIG_DEFAULT_PATH, .exit_code = EXIT_SUCCESS};
	bool check = false;
	char err[ERR_MAX];
	int c;

	log_setup_stderr(); /* timestamps unless stderr is journald's */
	heap_setup();

	while ((c = getopt_long(argc, argv, "c:t1vVh", opts, NULL)) != -1) {
		switch (c) {
		case 'c': d.config_path = optarg; break;
		case 't': check = true; break;
		case '1': d.once = true; break;
		case 'F': d.start.full = true; break;
		case 'R':
			d.start.resume = true;
			if (optarg && parse_import_id(optarg, &d.start.resume_id) < 0) {
				fprintf(stderr, "raced: --resume=ID takes an import id (a positive integer), got '%s'\n",
				        optarg);
				return 2;
			}
			break;
		case 'v': log_pin_level(LOG_DEBUG); break;
		case 'V':
			printf("raced %s\n", RACED_VERSION);
			if (allocator_version() > 0)
				printf("allocator: %s %d.%d.%d\n", RACED_ALLOCATOR, allocator_version() / 100,
				       allocator_version() / 10 % 10, allocator_version() % 10);
			else
				printf("allocator: %s\n", RACED_ALLOCATOR);
			return EXIT_SUCCESS;
		case 'h': usage(stdout); return EXIT_SUCCESS;
		default: usage(stderr); return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "raced: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return 2;
	}
	if ((d.start.full || d.start.resume) && !d.once && !check) {
		fprintf(stderr, "raced: --%s applies to the import --once runs; to a running raced, say "
		        "'racectl start-import --%s'\n", d.start.full ? "full" : "resume", d.start.full ? "full" : "resume");
		return 2;
	}
	if (d.start.full && d.start.resume) {
		fprintf(stderr, "raced: --full and --resume exclude each other: a full import reads no state, a "
		        "resumed one continues from it\n");
		return 2;
	}
	if (check)
		return check_config(d.config_path);

	struct config *cfg = config_load(d.config_path, err);
	if (!cfg) {
		log_err("%s", err);
		return EXIT_CONFIG;
	}
	signal(SIGPIPE, SIG_IGN);
	/* Once, while single-threaded, before any fetcher (fetch.h). */
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		log_err("cannot initialise libcurl");
		config_free(cfg);
		return EXIT_FAILURE;
	}
	d.base = event_base_new();
	if (!d.base) {
		log_err("cannot create the event loop");
		config_free(cfg);
		return EXIT_FAILURE;
	}
	struct service_callbacks scb = {.import_ended = on_import_ended, .stopped = on_stopped, .arg = &d};
	d.svc = service_new(d.base, cfg, &scb, err);
	if (!d.svc) {
		log_err("%s", err);
		event_base_free(d.base);
		return EXIT_FAILURE;
	}
	service_set_auto_resume(d.svc, !d.once);
	if (!d.once) {
		d.ctl = daemon_control_open(d.base, d.svc, err);
		if (!d.ctl) {
			log_err("%s", err);
			service_free(d.svc);
			event_base_free(d.base);
			return EXIT_FAILURE;
		}
	} else if (service_start_import_when_ready(d.svc, "raced --once", &d.start, err) < 0) {
		log_err("%s", err);
		service_free(d.svc);
		event_base_free(d.base);
		return EXIT_FAILURE;
	}
	const char *maddr = service_config(d.svc)->metrics;
	if (maddr && *maddr && !(d.metrics = metrics_http_open(d.base, d.svc, maddr, err))) {
		log_err("%s", err);
		daemon_control_close(d.ctl);
		service_free(d.svc);
		event_base_free(d.base);
		return EXIT_FAILURE;
	}
	d.sig_term = evsignal_new(d.base, SIGTERM, on_term, &d);
	d.sig_int = evsignal_new(d.base, SIGINT, on_term, &d);
	d.sig_hup = evsignal_new(d.base, SIGHUP, on_hup, &d);
	d.status_ev = event_new(d.base, -1, EV_PERSIST, status_tick, &d);
	struct timeval one = {1, 0};
	event_add(d.sig_term, NULL);
	event_add(d.sig_int, NULL);
	event_add(d.sig_hup, NULL);
	event_add(d.status_ev, &one);
	uint64_t watchdog_usec = 0;
	int wd = notify_watchdog_setup(d.base, &watchdog_usec, err);
	if (wd < 0)
		log_warn("watchdog: %s", err);
	else if (wd > 0)
		log_info("watchdog: pinging every %" PRIu64 " ms", watchdog_usec / 1000);
	log_notice("raced %s started with %s", RACED_VERSION, d.config_path);
	notify_ready();
	update_status(&d);

	event_base_dispatch(d.base);

	notify_watchdog_teardown();
	daemon_control_close(d.ctl);
	metrics_http_close(d.metrics);
	event_free(d.sig_term);
	event_free(d.sig_int);
	event_free(d.sig_hup);
	event_free(d.status_ev);
	service_free(d.svc);
	event_base_free(d.base);
	curl_global_cleanup();
	return d.exit_code;
}
