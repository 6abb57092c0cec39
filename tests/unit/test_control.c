#include "check.h"
#include "control.h"
#include "ctlformat.h"
#include "error.h"

#include <errno.h>

/* Parse line; return the error code name, or "ok". */
static const char *parse(const char *line, char *err)
{
	const struct control_command *cmd;
	json_t *args;
	enum control_code code;
	if (control_request_parse(line, strlen(line), &cmd, &args, &code, err) == 0) {
		json_decref(args);
		return "ok";
	}
	return control_code_name(code);
}

static void test_valid_request_yields_command_and_only_declared_args(void)
{
	const char *line = "{\"cmd\":\"status\",\"id\":42}";
	const struct control_command *cmd;
	json_t *args;
	enum control_code code;
	char err[ERR_MAX];
	CHECK_EQ(control_request_parse(line, strlen(line), &cmd, &args, &code, err), 0);
	CHECK_STR(cmd->name, "status");
	CHECK_EQ(json_object_size(args), 1);
	CHECK_EQ(json_integer_value(json_object_get(args, "id")), 42);
	json_decref(args);
}

static void test_each_malformed_request_gets_its_code_and_message(void)
{
	char err[ERR_MAX];
	CHECK_STR(parse("garbage", err), "bad_request");
	CHECK(strstr(err, "request is not valid JSON") != NULL);
	CHECK_STR(parse("{\"cmd\":\"st\xff\xfe\"}", err), "bad_request");
	CHECK(strstr(err, "not valid UTF-8") != NULL);
	CHECK_STR(parse("[1,2]", err), "bad_request");
	CHECK_STR(err, "request must be a JSON object like {\"cmd\":\"help\"}, got an array");
	CHECK_STR(parse("{\"id\":1}", err), "bad_request");
	CHECK(strstr(err, "no \"cmd\" member") != NULL);
	CHECK_STR(parse("{\"cmd\":7}", err), "bad_request");
	CHECK_STR(err, "\"cmd\" must be a string, got an integer");
	CHECK_STR(parse("{\"cmd\":\"status\",\"id\":\"x\"}", err), "bad_request");
	CHECK_STR(err, "argument 'id' of 'status' must be an integer, got a string");
	CHECK_STR(parse("{\"cmd\":\"status\",\"id\":0}", err), "bad_request");
	CHECK_STR(err, "argument 'id' of 'status' must be at least 1, got 0");
	CHECK_STR(parse("{\"cmd\":\"status\",\"idd\":3}", err), "bad_request");
	CHECK_STR(err, "'status' has no argument 'idd' (it takes: id, limit)");
	CHECK_STR(parse("{\"cmd\":\"pause\",\"now\":true}", err), "bad_request");
	CHECK_STR(err, "'pause' takes no arguments, got 'now'");
	CHECK_STR(parse("{\"cmd\":\"stats\",\"cmd\":\"stats\"}", err), "bad_request");
	CHECK_STR(parse("{\"cmd\":\"stats\"} {}", err), "bad_request");
}

/* start-import's "full" is a boolean, "resume" true or an import id, and
 * at most one of them is given (false counts as not given). */
static void test_start_import_takes_full_or_resume_not_both(void)
{
	char err[ERR_MAX];
	const char *ok[] = {
		"{\"cmd\":\"start-import\"}",
		"{\"cmd\":\"start-import\",\"full\":true}",
		"{\"cmd\":\"start-import\",\"resume\":true}",
		"{\"cmd\":\"start-import\",\"resume\":12}",
		"{\"cmd\":\"start-import\",\"full\":false,\"resume\":12}",
		"{\"cmd\":\"start-import\",\"full\":true,\"resume\":false}",
	};
	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
		if (strcmp(parse(ok[i], err), "ok") != 0) {
			fprintf(stderr, "  refused %s: %s\n", ok[i], err);
			check_failures++;
		}
	CHECK_STR(parse("{\"cmd\":\"start-import\",\"full\":true,\"resume\":true}", err), "bad_request");
	CHECK_STR(err, "'start-import' takes 'full' or 'resume', not both");
	CHECK_STR(parse("{\"cmd\":\"start-import\",\"full\":true,\"resume\":4}", err), "bad_request");
	CHECK_STR(err, "'start-import' takes 'full' or 'resume', not both");
	CHECK_STR(parse("{\"cmd\":\"start-import\",\"resume\":0}", err), "bad_request");
	CHECK_STR(err, "argument 'resume' of 'start-import' must be at least 1, got 0");
	CHECK_STR(parse("{\"cmd\":\"start-import\",\"resume\":\"12\"}", err), "bad_request");
	CHECK_STR(err, "argument 'resume' of 'start-import' must be true or an import id, got a string");
	CHECK_STR(parse("{\"cmd\":\"start-import\",\"full\":1}", err), "bad_request");
	CHECK_STR(err, "argument 'full' of 'start-import' must be a boolean, got an integer");
	CHECK_STR(parse("{\"cmd\":\"start-import\",\"fresh\":true}", err), "bad_request");
	CHECK_STR(err, "'start-import' has no argument 'fresh' (it takes: full, resume)");
}

static void test_unknown_command_suggests_close_names_only(void)
{
	char err[ERR_MAX];
	CHECK_STR(parse("{\"cmd\":\"bogus\"}", err), "unknown_command");
	CHECK_STR(err, "unknown command 'bogus'");
	CHECK_STR(parse("{\"cmd\":\"stat\"}", err), "unknown_command");
	CHECK_STR(err, "unknown command 'stat' (did you mean 'stats'?)");
	CHECK_STR(parse("{\"cmd\":\"start_import\"}", err), "unknown_command");
	CHECK_STR(err, "unknown command 'start_import' (did you mean 'start-import'?)");
	CHECK(control_command_suggest("x") == NULL);
}

static void test_reply_lines_round_trip(void)
{
	char *ok = control_reply_ok_line(json_pack("{s:i}", "import_id", 42));
	CHECK_STR(ok, "{\"ok\":true,\"result\":{\"import_id\":42}}\n");
	json_t *result;
	char code[CONTROL_CODE_MAX], msg[ERR_MAX];
	CHECK_EQ(control_reply_parse(ok, &result, code, msg), 1);
	CHECK_EQ(json_integer_value(json_object_get(result, "import_id")), 42);
	json_decref(result);
	free(ok);
	char *bad = control_reply_error_line(CONTROL_UNKNOWN_COMMAND, "unknown command 'bogus'");
	CHECK_STR(bad, "{\"ok\":false,\"error\":{\"code\":\"unknown_command\",\"message\":\"unknown command 'bogus'\"}}\n");
	CHECK_EQ(control_reply_parse(bad, &result, code, msg), 0);
	CHECK_STR(code, "unknown_command");
	CHECK_STR(msg, "unknown command 'bogus'");
	free(bad);
	CHECK_EQ(control_reply_parse("nonsense", &result, code, msg), -1);
}

static void test_reply_lines_never_carry_a_secret(void)
{
	char *ok = control_reply_ok_line(json_pack("{s:s}", "message", "connected to host=db password=a\"b c"));
	CHECK_STR(ok, "{\"ok\":true,\"result\":{\"message\":\"connected to host=db password=*** c\"}}\n");
	free(ok);
	char *bad = control_reply_error_line(CONTROL_FAILED, "GET http://alice:s3cret@host/: HTTP 500");
	CHECK_STR(bad, "{\"ok\":false,\"error\":{\"code\":\"failed\",\"message\":\"GET http://alice:***@host/: HTTP 500\"}}\n");
	free(bad);
}

/* A quoted secret cut before its closing quote (a message cut at %.400s or
 * ERR_MAX) is masked to the end of its own string, never over the JSON
 * after it: the reply stays one valid line (it lost its '"}}' and '\n'). */
static void test_a_cut_quoted_secret_keeps_the_reply_whole(void)
{
	char name[CONTROL_CODE_MAX], msg[ERR_MAX];
	json_t *result;
	char *bad = control_reply_error_line(CONTROL_FAILED, "cannot connect: host=db password='s3cret");
	CHECK(bad != NULL && strchr(bad, '\n') == bad + strlen(bad) - 1);
	CHECK_EQ(bad ? control_reply_parse(bad, &result, name, msg) : -1, 0);
	CHECK(strstr(msg, "s3cret") == NULL);
	free(bad);
	char *ok = control_reply_ok_line(json_pack("{s:{s:s},s:[s]}", "store", "message", "x password='ab",
	                                           "providers", "it's"));
	CHECK(ok != NULL && strstr(ok, "ab") == NULL && strstr(ok, "\"it's\"") != NULL);
	CHECK_EQ(ok ? control_reply_parse(ok, &result, name, msg) : -1, 1);
	json_decref(result);
	free(ok);
}

/* jansson's error text for '{"cmd":"st\' then "\xcb\x8c" quotes half of
 * that character, and "%.64s" cuts a long name inside one; the reply still
 * goes out, the bytes that are not ASCII as '?' (found by fuzz_control:
 * the client used to be dropped without an answer). */
static void test_an_error_that_is_not_utf8_is_still_replied(void)
{
	char err[ERR_MAX];
	const char bad_escape[] = "{\"cmd\":\"st\\\xcb\x8c\x0f}";
	const struct control_command *cmd;
	json_t *args, *result;
	enum control_code code;
	CHECK_EQ(control_request_parse(bad_escape, sizeof bad_escape - 1, &cmd, &args, &code, err), -1);
	char *line = control_reply_error_line(code, err);
	CHECK(line != NULL);
	char name[CONTROL_CODE_MAX], msg[ERR_MAX];
	CHECK_EQ(line ? control_reply_parse(line, &result, name, msg) : -1, 0);
	CHECK_STR(name, "bad_request");
	CHECK(strstr(msg, "invalid escape near '\"st\\?' at byte 12") != NULL);
	free(line);

	char request[128];
	snprintf(request, sizeof request, "{\"cmd\":\"%s\xc3\xa9\"}",
	         "123456789012345678901234567890123456789012345678901234567890123");
	CHECK_STR(parse(request, err), "unknown_command");
	line = control_reply_error_line(CONTROL_UNKNOWN_COMMAND, err);
	CHECK_EQ(line ? control_reply_parse(line, &result, name, msg) : -1, 0);
	CHECK_STR(msg, "unknown command '123456789012345678901234567890123456789012345678901234567890123?'");
	free(line);
}

static void test_request_line_puts_cmd_with_args(void)
{
	json_t *args = json_pack("{s:i}", "id", 7);
	char *line = control_request_line("status", args);
	CHECK_STR(line, "{\"id\":7,\"cmd\":\"status\"}\n");
	free(line);
	json_decref(args);
}

static void test_command_table_marks_admin_commands(void)
{
	const char *admin[] = { "start-import", "cancel", "pause", "resume", "reload" };
	const char *reading[] = { "stats", "status", "health", "version", "help", "errors", "config" };
	for (size_t i = 0; i < 5; i++) {
		CHECK(control_command_find(admin[i]) &&
		      control_command_find(admin[i])->privilege == CONTROL_ADMIN);
		CHECK(control_command_find(reading[i]) &&
		      control_command_find(reading[i])->privilege == CONTROL_READ);
	}
	CHECK(control_command_find(reading[5])->privilege == CONTROL_READ);
	CHECK(control_command_find(reading[6])->privilege == CONTROL_READ); /* secrets masked */
	CHECK_EQ(control_n_commands, 12);
	json_t *help = control_help_json(NULL);
	CHECK_EQ(json_array_size(json_object_get(help, "commands")), 12);
	json_decref(help);
	CHECK(control_help_json("nope") == NULL);
}

static void test_table_is_indexed_by_command_id(void)
{
	CHECK_STR(control_commands[CONTROL_CMD_START_IMPORT].name, "start-import");
	CHECK_STR(control_commands[CONTROL_CMD_HELP].name, "help");
	for (size_t i = 0; i < control_n_commands; i++) {
		CHECK(control_commands[i].name != NULL);
		CHECK_EQ(control_command_id(control_command_find(control_commands[i].name)), i);
	}
}

static void test_help_lists_every_command_in_table_order_with_its_privilege(void)
{
	json_t *help = control_help_json(NULL);
	json_t *list = json_object_get(help, "commands");
	CHECK_EQ(json_array_size(list), control_n_commands);
	for (size_t i = 0; i < control_n_commands; i++) {
		json_t *c = json_array_get(list, i);
		CHECK_STR(json_string_value(json_object_get(c, "name")), control_commands[i].name);
		CHECK_EQ(json_is_true(json_object_get(c, "mutating")),
		         control_commands[i].privilege == CONTROL_ADMIN);
	}
	json_decref(help);
}

/* The usage lines racectl and `help` show are built from each command's
 * options and operand: these are the texts they have always been. */
static void test_usage_is_built_from_options_and_operand(void)
{
	const char *want[CONTROL_N_COMMANDS] = {
		[CONTROL_CMD_START_IMPORT] = "start-import [--full | --resume [ID]] [--wait] [--interval S]",
		[CONTROL_CMD_CANCEL] = "cancel",
		[CONTROL_CMD_PAUSE] = "pause",
		[CONTROL_CMD_RESUME] = "resume",
		[CONTROL_CMD_STATS] = "stats [--watch] [--interval S]",
		[CONTROL_CMD_STATUS] = "status [ID]",
		[CONTROL_CMD_ERRORS] = "errors [--limit N] [ID]",
		[CONTROL_CMD_HEALTH] = "health",
		[CONTROL_CMD_CONFIG] = "config",
		[CONTROL_CMD_RELOAD] = "reload",
		[CONTROL_CMD_VERSION] = "version",
		[CONTROL_CMD_HELP] = "help [COMMAND]",
	};
	char usage[CONTROL_USAGE_MAX];
	for (size_t i = 0; i < control_n_commands; i++) {
		control_command_usage(&control_commands[i], usage, sizeof usage);
		CHECK_STR(usage, want[i]);
	}
	char small[8];
	control_command_usage(&control_commands[CONTROL_CMD_STATUS], small, sizeof small);
	CHECK_STR(small, "status ");
}

static void test_an_operand_names_a_declared_argument(void)
{
	for (size_t i = 0; i < control_n_commands; i++) {
		const struct control_command *c = &control_commands[i];
		if (c->operand)
			CHECK(control_command_arg(c, c->operand) != NULL);
	}
	CHECK_STR(control_command_arg(&control_commands[CONTROL_CMD_STATUS], "id")->name, "id");
	CHECK(control_command_arg(&control_commands[CONTROL_CMD_STATUS], "nope") == NULL);
}

static void test_option_flags_are_found_by_name(void)
{
	CHECK_EQ(control_option_find("--wait")->option, CONTROL_OPT_WAIT);
	CHECK_EQ(control_option_find("--watch")->option, CONTROL_OPT_WATCH);
	CHECK_EQ(control_option_find("--interval")->option, CONTROL_OPT_INTERVAL);
	CHECK_STR(control_option_find("--interval")->value, "S");
	CHECK_EQ(control_option_find("--limit")->option, CONTROL_OPT_LIMIT);
	CHECK_STR(control_option_find("--limit")->value, "N");
	CHECK(control_option_find("--json") == NULL);
	CHECK_EQ(control_option_find("--full")->option, CONTROL_OPT_FULL);
	CHECK_EQ(control_option_find("--full")->excludes, CONTROL_OPT_RESUME);
	CHECK_EQ(control_option_find("--resume")->option, CONTROL_OPT_RESUME);
	CHECK_STR(control_option_find("--resume")->value, "ID");
	CHECK(control_option_find("--resume")->value_optional);
	CHECK_EQ(control_option_find("--resume")->excludes, CONTROL_OPT_FULL);
	CHECK_EQ(control_commands[CONTROL_CMD_START_IMPORT].options,
	         CONTROL_OPT_FULL | CONTROL_OPT_RESUME | CONTROL_OPT_WAIT | CONTROL_OPT_INTERVAL);
	CHECK_EQ(control_commands[CONTROL_CMD_STATS].options, CONTROL_OPT_WATCH | CONTROL_OPT_INTERVAL);
	CHECK_EQ(control_commands[CONTROL_CMD_STATUS].options, 0);
	CHECK_EQ(control_commands[CONTROL_CMD_ERRORS].options, CONTROL_OPT_LIMIT);
}

/* The wire code of each class a service call returns; the command's
 * fallback for the rest (unclassed -1, out of memory, shutting down). */
static void test_failure_class_maps_to_its_reply_code(void)
{
	CHECK_EQ(control_code_for_class(-ENOTCONN, CONTROL_CONFLICT), CONTROL_UNAVAILABLE);
	CHECK_EQ(control_code_for_class(-EBUSY, CONTROL_FAILED), CONTROL_CONFLICT);
	CHECK_EQ(control_code_for_class(-ESRCH, CONTROL_FAILED), CONTROL_CONFLICT);
	CHECK_EQ(control_code_for_class(-ENOENT, CONTROL_FAILED), CONTROL_NOT_FOUND);
	CHECK_EQ(control_code_for_class(-EINVAL, CONTROL_CONFLICT), CONTROL_FAILED);
	CHECK_EQ(control_code_for_class(-1, CONTROL_FAILED), CONTROL_FAILED);
	CHECK_EQ(control_code_for_class(-ENOMEM, CONTROL_UNAVAILABLE), CONTROL_INTERNAL);
	CHECK_EQ(control_code_for_class(-ESHUTDOWN, CONTROL_CONFLICT), CONTROL_CONFLICT);
	CHECK_EQ(control_code_for_class(-ESHUTDOWN, CONTROL_FAILED), CONTROL_FAILED);
}

static void test_health_maps_to_nagios_lines_and_codes(void)
{
	char line[256];
	json_t *r = json_pack("{s:s,s:s}", "status", "ok", "message", "idle, db connected");
	CHECK_EQ(ctlformat_health(r, line, sizeof line), 0);
	CHECK_STR(line, "RACED OK - idle, db connected");
	json_decref(r);
	r = json_pack("{s:s,s:s}", "status", "warning", "message", "retrying");
	CHECK_EQ(ctlformat_health(r, line, sizeof line), 1);
	CHECK_STR(line, "RACED WARNING - retrying");
	json_decref(r);
	r = json_pack("{s:s,s:s}", "status", "critical", "message", "db down");
	CHECK_EQ(ctlformat_health(r, line, sizeof line), 2);
	CHECK_STR(line, "RACED CRITICAL - db down");
	json_decref(r);
	r = json_pack("{s:s}", "status", "weird");
	CHECK_EQ(ctlformat_health(r, line, sizeof line), 3);
	CHECK_STR(line, "RACED UNKNOWN - raced reported health status 'weird'");
	json_decref(r);
}

/* ctlformat output captured as text (caller frees). */
static char *formatted(void (*fmt)(FILE *, const json_t *), const json_t *result)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	CHECK(f != NULL);
	fmt(f, result);
	fclose(f);
	return buf;
}

/* errors: a summary line, then STAGE, CAUSE and COUNT aligned to the
 * widest cell (COUNT to the right), each group's URLs indented by four
 * spaces under it; a null stage (the import's own error) prints as "-". */
static void test_errors_print_groups_aligned_with_their_urls_below(void)
{
	json_t *r = json_loads(
		"{\"import_id\":7,\"status\":\"partial\",\"errors\":13,\"groups\":["
		"{\"stage\":\"athletes\",\"cause\":\"HTTP 404\",\"count\":12,"
		" \"urls\":[\"http://p/athletes/1\",\"http://p/athletes/2\"]},"
		"{\"stage\":null,\"cause\":\"pagination cycle at URL\",\"count\":1,\"urls\":[]}]}",
		0, NULL);
	char *out = formatted(ctlformat_errors, r);
	CHECK_STR(out, "import 7 partial: 13 errors in 2 groups\n"
	               "STAGE     CAUSE                    COUNT\n"
	               "athletes  HTTP 404                    12\n"
	               "    http://p/athletes/1\n"
	               "    http://p/athletes/2\n"
	               "-         pagination cycle at URL      1\n");
	free(out);
	json_decref(r);
}

static void test_errors_of_a_clean_import_say_none(void)
{
	json_t *r = json_pack("{s:i,s:s,s:i,s:[]}", "import_id", 8, "status", "succeeded",
	                      "errors", 0, "groups");
	char *out = formatted(ctlformat_errors, r);
	CHECK_STR(out, "import 8 succeeded: no errors\n");
	free(out);
	json_decref(r);
}

/* status of one run with error_groups: the run's row, a blank line, the
 * groups; a list of runs (no error_groups) shows the rows only. */
static void test_status_of_one_run_ends_with_its_error_groups(void)
{
	json_t *r = json_loads(
		"{\"runs\":[{\"id\":3,\"status\":\"partial\",\"started_at\":\"s\",\"finished_at\":\"f\","
		"\"requested_by\":\"root\",\"counts\":{\"errors\":1},"
		"\"error_groups\":[{\"stage\":\"races\",\"cause\":\"HTTP 500\",\"count\":1,"
		"\"urls\":[\"http://p/races\"]}]}]}", 0, NULL);
	char *out = formatted(ctlformat_status, r);
	CHECK_STR(out, "ID  STATUS   STARTED  FINISHED  BY    ERRORS\n"
	               " 3  partial  s        f         root       1\n"
	               "\n"
	               "STAGE  CAUSE     COUNT\n"
	               "races  HTTP 500      1\n"
	               "    http://p/races\n");
	free(out);
	json_object_del(json_array_get(json_object_get(r, "runs"), 0), "error_groups");
	out = formatted(ctlformat_status, r);
	CHECK_STR(out, "ID  STATUS   STARTED  FINISHED  BY    ERRORS\n"
	               " 3  partial  s        f         root       1\n");
	free(out);
	json_decref(r);
}

/* status of one resumed run: the daemon flattens "counts" and keeps the
 * per-stage figures as "details" (daemon_control.c): the resumed line and
 * the state table, DONE-BEFORE the inputs found done, come from those. */
static void test_status_of_a_resumed_run_shows_when_and_what_was_done_before(void)
{
	json_t *r = json_loads(
		"{\"runs\":[{\"id\":4,\"status\":\"succeeded\",\"started_at\":\"s\",\"finished_at\":\"f\","
		"\"requested_by\":\"root\",\"counts\":{\"races\":2,\"errors\":0},"
		"\"resumes\":1,\"resumed_at\":\"r\",\"error_groups\":[],"
		"\"details\":{\"races\":{\"requests_body\":3,\"requests_304\":0,\"bytes\":9,"
		"\"stored\":2,\"unchanged\":1,\"skipped_fresh\":0,\"skipped_done\":5}}}]}", 0, NULL);
	char *out = formatted(ctlformat_status, r);
	CHECK_STR(out, "ID  STATUS     STARTED  FINISHED  BY    RACES  ERRORS\n"
	               " 4  succeeded  s        f         root      2       0\n"
	               "\n"
	               "resumed 1 time, last at r; DONE-BEFORE counts the inputs it found already done\n"
	               "\n"
	               "STAGE  REQUESTS  304  BYTES  WRITTEN  UNCHANGED  FRESH  DONE-BEFORE\n"
	               "races         3    0      9        2          1      0            5\n");
	free(out);
	json_decref(r);
}

/* The progress line: while running the rate of the last 5 s and the
 * average, the previous import's counts as totals and an ETA; paused says
 * paused, not a rate winding down; at the end the whole import's average
 * (the last seconds' rate is 0 by then) and how long it took. */
static void test_progress_shows_average_totals_eta_and_paused(void)
{
	char line[512];
	json_t *s = json_loads(
		"{\"import\":{\"id\":9,\"state\":\"running\",\"paused\":false,\"elapsed_s\":10,"
		"\"eta_s\":65,\"expected_from\":8},"
		"\"stages\":[{\"name\":\"races\",\"done\":10,\"failed\":0,\"rate_per_s\":0.0,"
		"\"rate_avg_per_s\":1.0,\"expected\":10},"
		"{\"name\":\"entries\",\"done\":40,\"failed\":1,\"rate_per_s\":5.0,"
		"\"rate_avg_per_s\":4.0,\"expected\":300}]}", 0, NULL);
	ctlformat_progress(s, line, sizeof line);
	CHECK_STR(line, "import 9 running: races 10 of ~10, entries 40 of ~300; 1 failed; "
	                "5.0/s (last 5 s), 5.0/s on average; about 1m05s left (import 8's counts)");
	json_object_set_new(json_object_get(s, "import"), "paused", json_true());
	ctlformat_progress(s, line, sizeof line);
	CHECK_STR(line, "import 9 running (paused): races 10 of ~10, entries 40 of ~300; 1 failed; paused");
	json_t *imp = json_object_get(s, "import");
	json_object_set_new(imp, "paused", json_false());
	json_object_set_new(imp, "state", json_string("succeeded"));
	json_object_set_new(imp, "elapsed_s", json_integer(3725));
	ctlformat_progress(s, line, sizeof line);
	CHECK_STR(line, "import 9 succeeded: races 10, entries 40; 1 failed; 5.0/s on average over 1h02m");
	char tiny[16];
	ctlformat_progress(s, tiny, sizeof tiny);
	CHECK_STR(tiny, "import 9 succee");
	json_decref(s);
}

/* status: a stage's counts (an object) show its rows stored; "errors" is
 * the last column whatever order the counts came in, and a run without
 * counts leaves the columns where they are. */
static void test_status_columns_stay_put(void)
{
	json_t *r = json_loads(
		"{\"runs\":["
		"{\"id\":5,\"status\":\"running\",\"started_at\":\"s\",\"finished_at\":null,"
		"\"requested_by\":\"root\",\"counts\":{}},"
		"{\"id\":4,\"status\":\"partial\",\"started_at\":\"s\",\"finished_at\":\"f\","
		"\"requested_by\":\"root\",\"counts\":{\"errors\":2,\"races\":{\"stored\":10},"
		"\"entries\":{\"stored\":200}}},"
		"{\"id\":3,\"status\":\"succeeded\",\"started_at\":\"s\",\"finished_at\":\"f\","
		"\"requested_by\":\"root\",\"counts\":{\"entries\":{\"stored\":20},\"races\":{\"stored\":1},"
		"\"errors\":0}}]}", 0, NULL);
	char *out = formatted(ctlformat_status, r);
	CHECK_STR(out, "ID  STATUS     STARTED  FINISHED  BY    RACES  ENTRIES  ERRORS\n"
	               " 5  running    s        -         root      -        -       -\n"
	               " 4  partial    s        f         root     10      200       2\n"
	               " 3  succeeded  s        f         root      1       20       0\n");
	free(out);
	json_decref(r);
}

int main(void)
{
	RUN(test_valid_request_yields_command_and_only_declared_args);
	RUN(test_start_import_takes_full_or_resume_not_both);
	RUN(test_each_malformed_request_gets_its_code_and_message);
	RUN(test_unknown_command_suggests_close_names_only);
	RUN(test_reply_lines_round_trip);
	RUN(test_reply_lines_never_carry_a_secret);
	RUN(test_a_cut_quoted_secret_keeps_the_reply_whole);
	RUN(test_an_error_that_is_not_utf8_is_still_replied);
	RUN(test_request_line_puts_cmd_with_args);
	RUN(test_command_table_marks_admin_commands);
	RUN(test_table_is_indexed_by_command_id);
	RUN(test_help_lists_every_command_in_table_order_with_its_privilege);
	RUN(test_usage_is_built_from_options_and_operand);
	RUN(test_an_operand_names_a_declared_argument);
	RUN(test_option_flags_are_found_by_name);
	RUN(test_failure_class_maps_to_its_reply_code);
	RUN(test_health_maps_to_nagios_lines_and_codes);
	RUN(test_errors_print_groups_aligned_with_their_urls_below);
	RUN(test_errors_of_a_clean_import_say_none);
	RUN(test_status_of_one_run_ends_with_its_error_groups);
	RUN(test_status_of_a_resumed_run_shows_when_and_what_was_done_before);
	RUN(test_progress_shows_average_totals_eta_and_paused);
	RUN(test_status_columns_stay_put);
	return CHECK_DONE();
}
