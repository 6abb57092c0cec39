/* fuzz_config — the configuration loader (lib/config/config.c and the
 * modules it drives: config_lex, config_value, config_check, tokenfile).
 *
 * The input is a whole raced.conf, written to a file in a private temporary
 * directory and read by config_load() as the daemon and --check-config do.
 * A refusal must name the file; an accepted configuration has exactly one
 * root stage, its stages ordered parents first, and compares to itself as
 * "nothing changed".
 *
 * A token_file is read only inside that directory: the target is linked
 * with -Wl,--wrap=open64 (tests/fuzz/meson.build), and any other path
 * fails as unreadable (EACCES), so that a fuzzed "token_file = /dev/stdin"
 * or a FIFO cannot block the run, and no file outside it is read. */
#include "fuzz.h"

#include "config.h"
#include "error.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <string.h>
#include <unistd.h>

static char conf_dir[2048];
static char conf_path[4096];

int __real_open64(const char *path, int flags, ...);
int __wrap_open64(const char *path, int flags, ...);

int __wrap_open64(const char *path, int flags, ...)
{
	size_t n = strlen(conf_dir);
	mode_t mode = 0;
	if (flags & O_CREAT) {
		va_list ap;
		va_start(ap, flags);
		mode = va_arg(ap, mode_t);
		va_end(ap);
	}
	if (!n || strncmp(path, conf_dir, n) != 0 || path[n] != '/' || strstr(path, "..")) {
		errno = EACCES;
		return -1;
	}
	return __real_open64(path, flags, mode);
}

/* At exit: the directory and the two files the target writes there. */
static void remove_dir(void)
{
	char token[sizeof conf_path];
	snprintf(token, sizeof token, "%s/main.token", conf_dir);
	unlink(token);
	unlink(conf_path);
	rmdir(conf_dir);
}

static void setup(void)
{
	const char *tmp = getenv("TMPDIR");
	char tmpl[sizeof conf_dir];
	int n = snprintf(tmpl, sizeof tmpl, "%s/raced-fuzz-config.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (n < 0 || (size_t)n >= sizeof tmpl || !mkdtemp(tmpl))
		abort();
	snprintf(conf_dir, sizeof conf_dir, "%s", tmpl);
	snprintf(conf_path, sizeof conf_path, "%s/raced.conf", conf_dir);
	atexit(remove_dir);
	/* A token file the seeds name ("token_file = main.token"). */
	char token[sizeof conf_path];
	snprintf(token, sizeof token, "%s/main.token", conf_dir);
	FILE *f = fopen(token, "we");
	if (!f || fputs("s3cret-token\n", f) < 0 || fclose(f) != 0)
		abort();
	unsetenv("CREDENTIALS_DIRECTORY"); /* tokens come only from token_file */
}

static void check_loaded(const struct config *c)
{
	size_t roots = 0;
	for (size_t i = 0; i < c->n_stages; i++) {
		const struct stage_conf *s = &c->stages[i];
		FUZZ_CHECK(config_provider(c, s->provider), "stage '%s' without its provider", s->name);
		if (!s->parent) {
			roots++;
			continue;
		}
		const struct stage_conf *p = config_stage(c, s->parent);
		FUZZ_CHECK(p && p < s, "stage '%s' before its parent '%s'", s->name, s->parent);
	}
	FUZZ_CHECK(roots == 1, "%zu root stages", roots);
	char buf[512];
	config_describe_changes(c, c, buf, sizeof buf);
	FUZZ_CHECK(strcmp(buf, "nothing changed") == 0, "compared to itself: %s", buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!conf_path[0])
		setup();
	int fd = open(conf_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || write(fd, data, size) != (ssize_t)size || close(fd) != 0)
		abort();
	char err[ERR_MAX] = "";
	struct config *c = config_load(conf_path, err);
	if (!c) {
		FUZZ_CHECK(strncmp(err, conf_path, strlen(conf_path)) == 0, "'%s' names no file", err);
		return 0;
	}
	check_loaded(c);
	config_free(c);
	return 0;
}
