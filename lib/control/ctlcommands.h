/* ctlcommands — the one table of control commands, shared by raced and
 * racectl, in the manner of haproxy's cli_kw: per command its name, its
 * wire arguments with their types, its privilege, racectl's options and
 * operand, and its help texts.
 *
 * Everything that depends on the set of commands reads it from here: the
 * request validation (control.c), the privilege check (ctlserver.c), the
 * daemon's handler table (daemon_control.c, indexed by enum
 * control_command_id), `help` on the wire, racectl's option parsing and
 * every --help text.  Adding a command is one entry here and one handler.
 *
 * Ownership: the tables are static and immutable; help objects returned
 * here are new references the caller owns.  Includes only error.h, jansson
 * and libc.
 */
#ifndef RACED_CTLCOMMANDS_H
#define RACED_CTLCOMMANDS_H

#include "error.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* The commands, in the order help lists them; the table's index. */
enum control_command_id {
	CONTROL_CMD_START_IMPORT,
	CONTROL_CMD_CANCEL,
	CONTROL_CMD_PAUSE,
	CONTROL_CMD_RESUME,
	CONTROL_CMD_STATS,
	CONTROL_CMD_STATUS,
	CONTROL_CMD_ERRORS,
	CONTROL_CMD_HEALTH,
	CONTROL_CMD_CONFIG,
	CONTROL_CMD_RELOAD,
	CONTROL_CMD_VERSION,
	CONTROL_CMD_HELP,
	CONTROL_N_COMMANDS
};

enum control_privilege {
	CONTROL_READ,   /* anyone who can connect */
	CONTROL_ADMIN,  /* changes state: root, the daemon's user or admin_group */
};

enum control_arg_type {
	CONTROL_ARG_INTEGER,
	CONTROL_ARG_STRING,
	CONTROL_ARG_BOOLEAN,
	CONTROL_ARG_TRUE_OR_ID,   /* a boolean, or an integer of at least min (an import id) */
};

struct control_arg {
	const char *name;
	enum control_arg_type type;
	bool required;
	long long min;             /* integers: smallest accepted value */
	const char *help;
};

/* racectl's own options after a command (they never go on the wire, but
 * for --limit, which is the command's "limit" argument); a command's
 * `options` mask says which it takes. */
enum control_option {
	CONTROL_OPT_WAIT = 1u << 0,     /* follow the started import to its end */
	CONTROL_OPT_WATCH = 1u << 1,    /* refresh until Ctrl-C */
	CONTROL_OPT_INTERVAL = 1u << 2, /* seconds between polls */
	CONTROL_OPT_LIMIT = 1u << 3,    /* the "limit" argument: how many */
	CONTROL_OPT_FULL = 1u << 4,     /* the "full" argument: true */
	CONTROL_OPT_RESUME = 1u << 5,   /* the "resume" argument: true, or the ID that follows */
};

struct control_option_spec {
	enum control_option option;
	const char *flag;          /* "--interval" */
	const char *value;         /* its value's name in usage ("S"), NULL for a switch */
	bool value_optional;       /* the value may be left out ("--resume [ID]") */
	unsigned excludes;         /* options it cannot go with; usage shows "[--a | --b]" */
};

#define CONTROL_ARGS_MAX 4
/* Longest usage line a command's table entry builds, NUL included. */
#define CONTROL_USAGE_MAX 128

struct control_command {
	const char *name;          /* the "cmd" value and the racectl subcommand */
	const char *summary;       /* one line for the command list */
	const char *help;          /* a paragraph for "racectl COMMAND --help" */
	enum control_privilege privilege;
	struct control_arg args[CONTROL_ARGS_MAX];
	size_t n_args;
	const char *operand;       /* the argument racectl's one operand sets, or NULL */
	unsigned options;          /* enum control_option bits racectl accepts */
	/* Two arguments of which at most one may be given (a false boolean
	 * counts as not given), or NULLs. */
	const char *exclusive[2];
};

/* The command table, indexed by enum control_command_id. */
extern const struct control_command control_commands[CONTROL_N_COMMANDS];
extern const size_t control_n_commands;

/* racectl's per-command options, in the order usage lists them. */
extern const struct control_option_spec control_options[];
extern const size_t control_n_options;

/* NULL when there is no such command / option flag. */
const struct control_command *control_command_find(const char *name);
const struct control_option_spec *control_option_find(const char *flag);
/* The command's place in the table. */
enum control_command_id control_command_id(const struct control_command *cmd);
/* The closest command name when `name` looks like a typo of one, else NULL. */
const char *control_command_suggest(const char *name);
/* The command's declared argument called name, or NULL. */
const struct control_arg *control_command_arg(const struct control_command *cmd,
                                              const char *name);

/* racectl usage after "racectl ", built from the table: the name, each
 * option the command takes (options that exclude each other in one
 * bracket), its operand: "status [ID]", "stats [--watch] [--interval S]",
 * "start-import [--full | --resume [ID]] [--wait] [--interval S]". */
void control_command_usage(const struct control_command *cmd, char *buf, size_t size);

/* The `help` command's result: {"commands":[{"name","usage","summary",
 * "mutating","help"}]}, or one command's entry when name is given.  NULL
 * when name is not a command (or out of memory). */
RACED_MUST_CHECK json_t *control_help_json(const char *name);

/* Help texts for racectl, written to out. */
void control_help_print(FILE *out, const char *program);
void control_help_print_command(FILE *out, const char *program,
                                const struct control_command *cmd);

#endif
