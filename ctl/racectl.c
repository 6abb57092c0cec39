/* racectl — the command-line client over raced's control socket.
 *
 * Thin: the protocol is lib/control, the transport lib/ctlclient, the human
 * output lib/ctlformat.  Exit codes: 0 success, 1 the command failed or the
 * import did not succeed, 2 usage; `health` 0/1/2/3 as a Nagios plugin,
 * where 2 is CRITICAL, so its usage errors are UNKNOWN (3), the
 * monitoring-plugins' code for invalid arguments.
 */
#include "control.h"
#include "ctlclient.h"
#include "ctlformat.h"
#include "error.h"
#include "raced_version.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define EXIT_USAGE 2
#define INTERVAL_DEFAULT_MS 1000
#define INTERVAL_MIN_MS 100

struct opts {
	const char *socket;
	bool json;
	int timeout_ms;
	int interval_ms;
	bool wait;
	bool watch;
	long long limit;      /* --limit N, 0 when not given */
	bool full;            /* start-import --full */
	bool resume;          /* start-import --resume [ID] */
	long long resume_id;  /* its ID, 0 when not given */
	const char *command;
	const struct control_command *cmd;  /* NULL until a known command */
	const char *arg;      /* the command's operand: status ID, help COMMAND */
};

static const char *program = "racectl";
static volatile sig_atomic_t interrupted;
/* The command is `health`: usage errors exit UNKNOWN, not 2. */
static bool health_check;

static void on_signal(int sig)
{
	(void)sig;
	interrupted = 1;
}

__attribute__((format(printf, 1, 2)))
static int usage_error(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "%s: ", program);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry '%s --help'.\n", program);
	if (health_check) {
		printf("RACED UNKNOWN - invalid arguments; see '%s health --help'\n", program);
		return HEALTH_UNKNOWN;
	}
	return EXIT_USAGE;
}

/* Whether the command word is `health`: the first argument that is not an
 * option or an option's value, found before parsing so that a usage error
 * anywhere on the line is told the plugin way. */
static bool names_health(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--socket") == 0 || strcmp(a, "--timeout") == 0)
			i++;
		else if (a[0] != '-' || !a[1])
			return strcmp(a, "health") == 0;
	}
	return false;
}

/* Seconds ("5", "0.5") to milliseconds; -1 if not a positive number. */
static int parse_seconds(const char *s)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s || *end || !(v > 0) || v > 86400)
		return -1;
	return (int)(v * 1000 + 0.5);
}

/* A positive integer ("3"); -1 if it is not one. */
static long long parse_count(const char *s)
{
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	return errno || end == s || *end || v < 1 ? -1 : v;
}

/* An option the command table gives this command: NULL when it has none
 * by that flag. */
static const struct control_option_spec *command_option(const struct opts *o, const char *flag)
{
	const struct control_option_spec *spec = control_option_find(flag);
	return spec && o->cmd && (o->cmd->options & spec->option) ? spec : NULL;
}

/* Set the option; next is the argument after it.  Returns how many
 * arguments it used beyond the flag, or -1 after a usage error (*rc). */
static int set_option(struct opts *o, const struct control_option_spec *spec, const char *next,
                      int *rc)
{
	switch (spec->option) {
	case CONTROL_OPT_WAIT:
		o->wait = true;
		return 0;
	case CONTROL_OPT_WATCH:
		o->watch = true;
		return 0;
	case CONTROL_OPT_INTERVAL:
		if (!next || (o->interval_ms = parse_seconds(next)) < 0) {
			*rc = usage_error("%s needs a number of seconds, got '%s'", spec->flag,
			                  next ? next : "");
			return -1;
		}
		if (o->interval_ms < INTERVAL_MIN_MS)
			o->interval_ms = INTERVAL_MIN_MS;
		return 1;
	case CONTROL_OPT_LIMIT:
		if (!next || (o->limit = parse_count(next)) < 1) {
			*rc = usage_error("%s needs a positive integer, got '%s'", spec->flag,
			                  next ? next : "");
			return -1;
		}
		return 1;
	case CONTROL_OPT_FULL:
		o->full = true;
		return 0;
	case CONTROL_OPT_RESUME:
		/* its ID is optional: taken when the next argument is one */
		o->resume = true;
		if (next && next[0] != '-' && (o->resume_id = parse_count(next)) > 0)
			return 1;
		if (next && next[0] != '-') {
			*rc = usage_error("%s takes an import id (a positive integer), got '%s'", spec->flag, next);
			return -1;
		}
		o->resume_id = 0;
		return 0;
	}
	return 0;
}

/* Returns -1 to go on, else an exit code. */
static int parse_args(int argc, char **argv, struct opts *o)
{
	bool want_help = false;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *next = i + 1 < argc ? argv[i + 1] : NULL;
		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			want_help = true;
		} else if (strcmp(a, "--version") == 0 && !o->command) {
			printf("racectl %s\n", RACED_VERSION);
			return 0;
		} else if (strcmp(a, "--json") == 0) {
			o->json = true;
		} else if (strcmp(a, "--socket") == 0) {
			if (!next)
				return usage_error("%s needs a path", a);
			o->socket = argv[++i];
		} else if (strcmp(a, "--timeout") == 0) {
			if (!next || (o->timeout_ms = parse_seconds(next)) < 0)
				return usage_error("%s needs a number of seconds, got '%s'", a, next ? next : "");
			i++;
		} else if (command_option(o, a)) {
			int rc, used = set_option(o, command_option(o, a), next, &rc);
			if (used < 0)
				return rc;
			i += used;
		} else if (a[0] == '-' && a[1]) {
			if (o->command)
				return usage_error("'%s' takes no option '%s'", o->command, a);
			return usage_error("unknown option '%s'", a);
		} else if (!o->command) {
			o->command = a;
			o->cmd = control_command_find(a);
			if (!o->cmd && !want_help) {
				const char *hint = control_command_suggest(a);
				if (hint)
					return usage_error("unknown command '%s' (did you mean '%s'?)", a, hint);
				return usage_error("unknown command '%s'", a);
			}
		} else if (!o->arg && o->cmd && o->cmd->operand) {
			o->arg = a;
		} else {
			return usage_error("'%s' takes no further argument '%s'", o->command, a);
		}
	}
	bool help_cmd = o->cmd && control_command_id(o->cmd) == CONTROL_CMD_HELP;
	if (want_help || (help_cmd && !o->arg)) {
		if (o->cmd && !help_cmd)
			control_help_print_command(stdout, program, o->cmd);
		else
			control_help_print(stdout, program);
		return 0;
	}
	if (help_cmd) {
		const struct control_command *c = control_command_find(o->arg);
		if (!c)
			return usage_error("no command '%s' to explain", o->arg);
		control_help_print_command(stdout, program, c);
		return 0;
	}
	if (!o->command)
		return usage_error("which command?");
	if (o->full && o->resume)
		return usage_error("--full and --resume exclude each other: a full import reads no state, a resumed "
		                   "one continues from it");
	return -1;
}

/* The wire arguments of the command's operand: {"id": 42} for "status 42".
 * Returns -1 to go on, else an exit code (a usage error). */
static int operand_args(const struct control_command *cmd, const char *operand, json_t **args)
{
	const struct control_arg *spec = control_command_arg(cmd, cmd->operand);
	if (spec->type != CONTROL_ARG_INTEGER) {
		*args = json_pack("{s:s}", spec->name, operand);
		return -1;
	}
	char *end;
	errno = 0;
	long long v = strtoll(operand, &end, 10);
	if (errno || *end || v < spec->min) {
		if (spec->min == 1)
			return usage_error("%s takes %s (a positive integer), got '%s'", cmd->name,
			                   spec->help, operand);
		return usage_error("%s takes %s (an integer of at least %lld), got '%s'", cmd->name,
		                   spec->help, spec->min, operand);
	}
	*args = json_pack("{s:I}", spec->name, (json_int_t)v);
	return -1;
}

/* One call; returns 1 with *result, 0 with an error reply printed, or a
 * negative class (ctlclient.h; -EPROTO for a line that is not a reply)
 * with the message in err.  Prints the raw line with --json. */
static int call(struct ctlclient *cl, const struct opts *o, const char *cmd, json_t *args,
                bool print_json, json_t **result, char *err)
{
	char *line = NULL;
	*result = NULL;
	int crc = ctlclient_call(cl, cmd, args, o->timeout_ms, &line, err);
	if (crc != 0)
		return crc;
	if (print_json) {
		fputs(line, stdout);
		fputc('\n', stdout);
		fflush(stdout);
	}
	char code[CONTROL_CODE_MAX];
	int rc = control_reply_parse(line, result, code, err);
	free(line);
	if (rc == 0 && !print_json && strcmp(cmd, "health") != 0)
		fprintf(stderr, "%s: %s: %s (%s)\n", program, cmd, err, code);
	if (rc < 0)
		return -EPROTO;
	return rc;
}

/* Sleep up to ms, waking early on a signal. */
static void pause_ms(int ms)
{
	if (!interrupted)
		poll(NULL, 0, ms);
}

static bool terminal_state(const char *s)
{
	return s && strcmp(s, "running") != 0 && strcmp(s, "idle") != 0 && strcmp(s, "starting") != 0;
}

/* After an import that did not succeed: its failures, grouped, when it
 * has any (with --json, the errors reply line). */
static void print_errors(struct ctlclient *cl, const struct opts *o, long long id)
{
	char err[ERR_MAX];
	json_t *args = json_pack("{s:I}", "id", (json_int_t)id), *res = NULL;
	int rc = call(cl, o, "errors", args, o->json, &res, err);
	json_decref(args);
	if (rc < 0)
		fprintf(stderr, "%s: %s\n", program, err);
	if (rc > 0 && !o->json && json_integer_value(json_object_get(res, "errors")) > 0) {
		fputc('\n', stdout);
		ctlformat_error_groups(stdout, json_object_get(res, "groups"));
	}
	json_decref(res);
}

static int wait_import(struct ctlclient *cl, const struct opts *o, long long id)
{
	bool tty = isatty(STDOUT_FILENO) && !o->json;
	char err[ERR_MAX], line[512], last[512] = "";
	const char *final = NULL;
	json_t *stats = NULL;
	while (!interrupted) {
		json_decref(stats);
		int rc = call(cl, o, "stats", NULL, o->json, &stats, err);
		if (rc < 0) {
			if (tty)
				fputs("\r\033[K", stdout);
			fprintf(stderr, "%s: %s\n", program, err);
			return EXIT_FAILURE;
		}
		if (rc == 0)
			return EXIT_FAILURE;
		const json_t *imp = json_object_get(stats, "import");
		long long cur = json_integer_value(json_object_get(imp, "id"));
		const char *state = json_string_value(json_object_get(imp, "state"));
		if (cur != id) {
			/* Another run took over the stats: ask for ours. */
			json_t *args = json_pack("{s:I}", "id", (json_int_t)id), *st = NULL;
			rc = call(cl, o, "status", args, o->json, &st, err);
			json_decref(args);
			if (rc < 0)
				fprintf(stderr, "%s: %s\n", program, err);
			if (rc <= 0) {
				json_decref(stats);
				return EXIT_FAILURE;
			}
			final = json_string_value(json_object_get(json_array_get(json_object_get(st, "runs"), 0), "status"));
			final = final ? strdup(final) : NULL;
			json_decref(st);
			break;
		}
		if (!o->json) {
			ctlformat_progress(stats, line, sizeof line);
			if (tty) {
				printf("\r\033[K%s", line);
				fflush(stdout);
			} else if (strcmp(line, last) != 0) {
				printf("%s\n", line);
				fflush(stdout);
				snprintf(last, sizeof last, "%s", line);
			}
		}
		if (terminal_state(state)) {
			final = strdup(state);
			break;
		}
		pause_ms(o->interval_ms);
	}
	json_decref(stats);
	if (tty)
		fputs("\n", stdout);
	if (interrupted && !final) {
		fprintf(stderr, "%s: stopped waiting; import %lld goes on in raced\n", program, id);
		return EXIT_FAILURE;
	}
	int code = final && strcmp(final, "succeeded") == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
	if (!o->json)
		printf("import %lld %s\n", id, final ? final : "ended (status unknown)");
	free((char *)final);
	if (code != EXIT_SUCCESS)
		print_errors(cl, o, id);
	return code;
}

static int watch_stats(struct ctlclient *cl, const struct opts *o)
{
	bool tty = isatty(STDOUT_FILENO) && !o->json;
	char err[ERR_MAX];
	bool first = true;
	while (!interrupted) {
		json_t *stats;
		int rc = call(cl, o, "stats", NULL, o->json, &stats, err);
		if (rc < 0)
			fprintf(stderr, "%s: %s\n", program, err);
		if (rc <= 0)
			return EXIT_FAILURE;
		if (!o->json) {
			if (tty) {
				fputs("\033[H\033[2J", stdout); /* home, clear: redraw in place */
			} else if (!first) {
				fputc('\n', stdout);
			}
			time_t now = time(NULL);
			char when[32];
			strftime(when, sizeof when, "%H:%M:%S", localtime(&now));
			printf("raced stats at %s (every %.1f s, Ctrl-C to stop)\n", when, o->interval_ms / 1000.0);
			ctlformat_stats(stdout, stats);
			fflush(stdout);
		}
		json_decref(stats);
		first = false;
		pause_ms(o->interval_ms);
	}
	return EXIT_SUCCESS;
}

/* health got no result: its one line and exit code by the failure's class. */
static int health_failed(int class, const char *err)
{
	char line[ERR_MAX + 64];
	int code = ctlformat_health_failure(class, err, line, sizeof line);
	printf("%s\n", line);
	return code;
}

int main(int argc, char **argv)
{
	struct opts o = { .timeout_ms = CTLCLIENT_DEFAULT_TIMEOUT_MS,
	                  .interval_ms = INTERVAL_DEFAULT_MS };
	o.socket = getenv("RACED_SOCKET");
	if (!o.socket || !*o.socket)
		o.socket = CTLCLIENT_DEFAULT_SOCKET;
	health_check = names_health(argc, argv);
	int rc = parse_args(argc, argv, &o);
	if (rc >= 0)
		return rc;
	bool health = strcmp(o.command, "health") == 0;

	json_t *args = NULL;
	if (o.arg && (rc = operand_args(o.cmd, o.arg, &args)) >= 0)
		return rc;
	if (o.limit || o.full || o.resume) {
		if (!args)
			args = json_object();
		if (o.limit)
			json_object_set_new(args, "limit", json_integer((json_int_t)o.limit));
		if (o.full)
			json_object_set_new(args, "full", json_true());
		if (o.resume)
			json_object_set_new(args, "resume",
			                    o.resume_id ? json_integer((json_int_t)o.resume_id) : json_true());
	}

	struct sigaction sa = { .sa_handler = on_signal };
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	char err[ERR_MAX];
	struct ctlclient *cl;
	rc = ctlclient_open(o.socket, o.timeout_ms, &cl, err);
	if (rc != 0) {
		json_decref(args);
		if (health)
			return health_failed(rc, err);
		fprintf(stderr, "%s: %s\n", program, err);
		return EXIT_FAILURE;
	}
	if (o.watch) {
		rc = watch_stats(cl, &o);
		ctlclient_close(cl);
		return rc;
	}

	json_t *result;
	rc = call(cl, &o, o.command, args, o.json, &result, err);
	json_decref(args);
	if (rc < 0) {
		ctlclient_close(cl);
		if (health)
			return health_failed(rc, err);
		fprintf(stderr, "%s: %s\n", program, err);
		return EXIT_FAILURE;
	}
	if (health) {
		char line[ERR_MAX + 64];
		int code;
		if (rc == 0) {
			snprintf(line, sizeof line, "RACED UNKNOWN - %s", err);
			code = HEALTH_UNKNOWN;
		} else {
			code = ctlformat_health(result, line, sizeof line);
		}
		if (!o.json)
			printf("%s\n", line);
		json_decref(result);
		ctlclient_close(cl);
		return code;
	}
	if (rc == 0) {
		ctlclient_close(cl);
		return EXIT_FAILURE;
	}
	if (!o.json) {
		if (strcmp(o.command, "stats") == 0)
			ctlformat_stats(stdout, result);
		else if (strcmp(o.command, "status") == 0)
			ctlformat_status(stdout, result);
		else if (strcmp(o.command, "errors") == 0)
			ctlformat_errors(stdout, result);
		else if (strcmp(o.command, "config") == 0)
			ctlformat_config(stdout, result);
		else
			ctlformat_result(stdout, o.command, result);
	}
	if (o.wait) {
		json_t *id = json_object_get(result, "import_id");
		long long import_id = json_integer_value(id);
		bool have_id = json_is_integer(id);
		json_decref(result);
		if (!have_id) {
			fprintf(stderr, "%s: raced did not say which import started; cannot --wait\n", program);
			ctlclient_close(cl);
			return EXIT_FAILURE;
		}
		rc = wait_import(cl, &o, import_id);
		ctlclient_close(cl);
		return rc;
	}
	json_decref(result);
	ctlclient_close(cl);
	return EXIT_SUCCESS;
}
