#include "ctlcommands.h"

#include "suggest.h"

#include <ctype.h>
#include <stdarg.h>
#include <string.h>

/* The arguments status and errors share. */
#define ARG_IMPORT_ID { .name = "id", .type = CONTROL_ARG_INTEGER, .min = 1, .help = "an import id" }
#define ARG_LIMIT(what) { .name = "limit", .type = CONTROL_ARG_INTEGER, .min = 1, .help = what }

const struct control_command control_commands[CONTROL_N_COMMANDS] = {
	[CONTROL_CMD_START_IMPORT] = {
		.name = "start-import",
		.summary = "start an import run now",
		.help = "Starts an import run: the root stage fetches the races, the stages below\n"
		        "fetch entries and athletes as demand allows, the store writes them.\n"
		        "Refused (conflict) while another import runs.  Prints the new import's id.\n"
		        "An import is incremental: it asks conditionally, skips what was fetched\n"
		        "within a stage's refresh and fills the root's cursor from earlier runs.\n"
		        "With --full, it ignores all of that (unconditional requests, no skips,\n"
		        "no cursor).  With --resume, it continues the latest interrupted import\n"
		        "(or import ID) under its own id, fetching nothing already committed.\n"
		        "With --wait, follows the import (a live progress line on a terminal, one\n"
		        "line per change otherwise) and exits 0 if it succeeded, 1 if it did not.",
		.privilege = CONTROL_ADMIN,
		.args = {
			{ .name = "full", .type = CONTROL_ARG_BOOLEAN,
			  .help = "true: ignore the state earlier imports kept" },
			{ .name = "resume", .type = CONTROL_ARG_TRUE_OR_ID, .min = 1,
			  .help = "true: continue the latest interrupted import; an id: that one" },
		},
		.n_args = 2,
		.options = CONTROL_OPT_FULL | CONTROL_OPT_RESUME | CONTROL_OPT_WAIT | CONTROL_OPT_INTERVAL,
		.exclusive = { "full", "resume" },
	},
	[CONTROL_CMD_CANCEL] = {
		.name = "cancel",
		.summary = "cancel the running import",
		.help = "Cancels the running import: no new requests are made, in-flight ones are\n"
		        "abandoned, the store commits what it holds and the run ends 'cancelled'.",
		.privilege = CONTROL_ADMIN,
	},
	[CONTROL_CMD_PAUSE] = {
		.name = "pause",
		.summary = "stop making new requests (in-flight ones finish)",
		.help = "Pauses the running import: no new requests go to the providers; those in\n"
		        "flight finish and their results are stored.  'resume' continues.",
		.privilege = CONTROL_ADMIN,
	},
	[CONTROL_CMD_RESUME] = {
		.name = "resume",
		.summary = "continue a paused import",
		.help = "Resumes a paused import where it stopped.",
		.privilege = CONTROL_ADMIN,
	},
	[CONTROL_CMD_STATS] = {
		.name = "stats",
		.summary = "show the pipeline: demand, buffers, in-flight, rates",
		.help = "Shows the current import and, per stage, the outstanding demand of each\n"
		        "subscription, buffered events, in-flight requests, items done, failed\n"
		        "and retried, and the rate over the last seconds; then the store's pending\n"
		        "rows and database state, and each provider's counters.\n"
		        "With --watch, refreshes every --interval seconds (default 1) until Ctrl-C.",
		.options = CONTROL_OPT_WATCH | CONTROL_OPT_INTERVAL,
	},
	[CONTROL_CMD_STATUS] = {
		.name = "status",
		.summary = "show the recent import runs, or run ID",
		.help = "Lists the recent import runs (id, status, start, end, who asked, counts),\n"
		        "or only run ID, then its failures grouped as 'errors ID' shows them.",
		.args = { ARG_IMPORT_ID, ARG_LIMIT("how many recent runs (default 10)") },
		.n_args = 2,
		.operand = "id",
	},
	[CONTROL_CMD_ERRORS] = {
		.name = "errors",
		.summary = "show an import's failures by stage and cause, or run ID's",
		.help = "Shows the failures (import_errors) of the latest import, or of run ID,\n"
		        "grouped by stage and cause, the most frequent first, with each group's\n"
		        "count and its first URLs (--limit N a group, default 3).  The cause is\n"
		        "'HTTP 404' for an HTTP status other than 2xx, else the message with each\n"
		        "URL replaced by URL, each quoted value by '?' and each number by N.",
		.args = { ARG_IMPORT_ID, ARG_LIMIT("URLs shown per group (default 3)") },
		.n_args = 2,
		.operand = "id",
		.options = CONTROL_OPT_LIMIT,
	},
	[CONTROL_CMD_HEALTH] = {
		.name = "health",
		.summary = "Nagios-style health check (exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN)",
		.help = "Prints one line, 'RACED OK - idle, db connected', 'RACED WARNING - ...',\n"
		        "'RACED CRITICAL - ...' or 'RACED UNKNOWN - ...', and exits 0, 1, 2 or 3,\n"
		        "as a Nagios/Icinga plugin or a health-check script expects.",
	},
	[CONTROL_CMD_CONFIG] = {
		.name = "config",
		.summary = "show the configuration in force, each value's source",
		.help = "Lists every key of every section of the configuration in force, defaults\n"
		        "included: its value in the file's syntax, where it comes from (FILE:LINE,\n"
		        "or 'default') and when a reload applies it ('live': at once, even during\n"
		        "an import; 'between_imports': at once when idle, else when the running\n"
		        "import ends; 'restart').  Secrets are masked: a conninfo's password, a\n"
		        "URL's user:password; tokens are never shown (token_file is, a path).",
	},
	[CONTROL_CMD_RELOAD] = {
		.name = "reload",
		.summary = "reload the configuration file",
		.help = "Reads the configuration file again (as SIGHUP does) and says what changed:\n"
		        "what applies now (live keys even while an import runs: a provider's\n"
		        "rate_limit, max_connections, timeout, max_retries, ...), what waits for\n"
		        "the running import to end, what waits for a restart.  An invalid file\n"
		        "is refused with the reason and the running configuration is kept.",
		.privilege = CONTROL_ADMIN,
	},
	[CONTROL_CMD_VERSION] = {
		.name = "version",
		.summary = "show the daemon's version",
		.help = "Shows the version of the running raced.",
	},
	[CONTROL_CMD_HELP] = {
		.name = "help",
		.summary = "list the commands, or explain one",
		.help = "Lists the commands, or shows the help of COMMAND.",
		.args = { { .name = "command", .type = CONTROL_ARG_STRING,
		            .help = "the command to explain" } },
		.n_args = 1,
		.operand = "command",
	},
};

const size_t control_n_commands = CONTROL_N_COMMANDS;

const struct control_option_spec control_options[] = {
	{ CONTROL_OPT_FULL, "--full", NULL, false, CONTROL_OPT_RESUME },
	{ CONTROL_OPT_RESUME, "--resume", "ID", true, CONTROL_OPT_FULL },
	{ CONTROL_OPT_WAIT, "--wait", NULL, false, 0 },
	{ CONTROL_OPT_WATCH, "--watch", NULL, false, 0 },
	{ CONTROL_OPT_INTERVAL, "--interval", "S", false, 0 },
	{ CONTROL_OPT_LIMIT, "--limit", "N", false, 0 },
};

const size_t control_n_options = sizeof control_options / sizeof control_options[0];

const struct control_command *control_command_find(const char *name)
{
	for (size_t i = 0; i < control_n_commands; i++)
		if (strcmp(control_commands[i].name, name) == 0)
			return &control_commands[i];
	return NULL;
}

const struct control_option_spec *control_option_find(const char *flag)
{
	for (size_t i = 0; i < control_n_options; i++)
		if (strcmp(control_options[i].flag, flag) == 0)
			return &control_options[i];
	return NULL;
}

enum control_command_id control_command_id(const struct control_command *cmd)
{
	return (enum control_command_id)(cmd - control_commands);
}

const struct control_arg *control_command_arg(const struct control_command *cmd,
                                              const char *name)
{
	for (size_t i = 0; i < cmd->n_args; i++)
		if (strcmp(cmd->args[i].name, name) == 0)
			return &cmd->args[i];
	return NULL;
}

const char *control_command_suggest(const char *name)
{
	const char *best = NULL;
	size_t best_d = (size_t)-1;
	for (size_t i = 0; i < control_n_commands; i++) {
		size_t d = suggest_distance(name, control_commands[i].name);
		if (d < best_d) {
			best_d = d;
			best = control_commands[i].name;
		}
	}
	/* A typo, not another word: at most 2 edits, and fewer than a third. */
	size_t len = strlen(name);
	if (best && best_d <= 2 && best_d * 3 <= len + 1)
		return best;
	return NULL;
}

/* Append to buf (size bytes, NUL-terminated), truncating; *used tracks it. */
__attribute__((format(printf, 4, 5)))
static void append(char *buf, size_t size, size_t *used, const char *fmt, ...)
{
	if (*used >= size)
		return;
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf + *used, size - *used, fmt, ap);
	va_end(ap);
	if (n > 0)
		*used += (size_t)n;
}

/* "--interval S", "--resume [ID]", "--wait". */
static void append_option(char *buf, size_t size, size_t *used, const struct control_option_spec *o)
{
	append(buf, size, used, "%s", o->flag);
	if (o->value)
		append(buf, size, used, o->value_optional ? " [%s]" : " %s", o->value);
}

void control_command_usage(const struct control_command *cmd, char *buf, size_t size)
{
	size_t used = 0;
	unsigned shown = 0;
	buf[0] = '\0';
	append(buf, size, &used, "%s", cmd->name);
	for (size_t i = 0; i < control_n_options; i++) {
		const struct control_option_spec *o = &control_options[i];
		if (!(cmd->options & o->option) || (shown & o->option))
			continue;
		append(buf, size, &used, " [");
		append_option(buf, size, &used, o);
		/* the options it excludes, in one bracket with it */
		for (size_t j = i + 1; j < control_n_options; j++) {
			const struct control_option_spec *x = &control_options[j];
			if ((o->excludes & x->option) && (cmd->options & x->option)) {
				append(buf, size, &used, " | ");
				append_option(buf, size, &used, x);
				shown |= x->option;
			}
		}
		append(buf, size, &used, "]");
	}
	if (!cmd->operand)
		return;
	append(buf, size, &used, " [");
	for (const char *p = cmd->operand; *p; p++)
		append(buf, size, &used, "%c", toupper((unsigned char)*p));
	append(buf, size, &used, "]");
}

static json_t *command_json(const struct control_command *c)
{
	char usage[CONTROL_USAGE_MAX];
	control_command_usage(c, usage, sizeof usage);
	return json_pack("{s:s,s:s,s:s,s:b,s:s}", "name", c->name, "usage", usage,
	                 "summary", c->summary, "mutating", c->privilege == CONTROL_ADMIN,
	                 "help", c->help);
}

json_t *control_help_json(const char *name)
{
	if (name) {
		const struct control_command *c = control_command_find(name);
		return c ? json_pack("{s:[o]}", "commands", command_json(c)) : NULL;
	}
	json_t *list = json_array();
	for (size_t i = 0; i < control_n_commands; i++)
		json_array_append_new(list, command_json(&control_commands[i]));
	return json_pack("{s:o}", "commands", list);
}

void control_help_print(FILE *out, const char *program)
{
	fprintf(out,
	        "Usage: %s [--socket PATH] [--json] [--timeout S] COMMAND [ARGS]\n"
	        "\n"
	        "Drive and watch raced, the race data importer, over its control socket.\n"
	        "\n"
	        "Commands (* needs root, raced's user or the admin_group):\n",
	        program);
	char usage[CONTROL_N_COMMANDS][CONTROL_USAGE_MAX];
	size_t width = 0;
	for (size_t i = 0; i < control_n_commands; i++) {
		control_command_usage(&control_commands[i], usage[i], sizeof usage[i]);
		if (strlen(usage[i]) > width)
			width = strlen(usage[i]);
	}
	for (size_t i = 0; i < control_n_commands; i++) {
		const struct control_command *c = &control_commands[i];
		fprintf(out, " %c %-*s  %s\n", c->privilege == CONTROL_ADMIN ? '*' : ' ', (int)width,
		        usage[i], c->summary);
	}
	fprintf(out,
	        "\n"
	        "Options:\n"
	        "  --socket PATH  the control socket (default $RACED_SOCKET, else /run/raced/raced.sock)\n"
	        "  --json         print the daemon's reply as JSON, for scripts\n"
	        "  --timeout S    give up when raced does not answer within S seconds (default 5)\n"
	        "  --help         this text; '%s COMMAND --help' explains a command\n"
	        "  --version      racectl's version\n"
	        "\n"
	        "Exit status: 0 success; 1 the command failed or the import did not succeed;\n"
	        "2 usage error; 'health' exits 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.\n",
	        program);
}

void control_help_print_command(FILE *out, const char *program, const struct control_command *cmd)
{
	char usage[CONTROL_USAGE_MAX];
	control_command_usage(cmd, usage, sizeof usage);
	fprintf(out, "Usage: %s [--socket PATH] [--json] %s\n\n%s\n", program, usage, cmd->help);
	if (cmd->privilege == CONTROL_ADMIN)
		fprintf(out, "\nNeeds root, the daemon's user, or membership in the admin_group\n"
		             "(raced.conf [daemon] admin_group); others get permission_denied.\n");
	fprintf(out, "\nWire request: {\"cmd\":\"%s\"", cmd->name);
	for (size_t i = 0; i < cmd->n_args; i++)
		fprintf(out, ", \"%s\":%s%s", cmd->args[i].name,
		        cmd->args[i].type == CONTROL_ARG_STRING ? "\"...\"" :
		        cmd->args[i].type == CONTROL_ARG_BOOLEAN ? "true" :
		        cmd->args[i].type == CONTROL_ARG_TRUE_OR_ID ? "true|N" : "N",
		        cmd->args[i].required ? "" : " (optional)");
	fprintf(out, "}\n");
}
