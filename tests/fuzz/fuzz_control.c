/* fuzz_control — the control protocol (lib/control/control.c).
 *
 * The input is one request line as raced's control server hands it over
 * (without its '\n'; it may hold NULs).  control_request_parse() accepts it
 * or refuses it with a message; an accepted request built again by
 * control_request_line() (what racectl sends) parses to the same command
 * and arguments; a refusal always gets a reply line, which reads back
 * (control_reply_parse(), what racectl does) as the same code and message,
 * masked as every reply is (redact.h), with its non-ASCII bytes as '?'
 * when the message is not UTF-8.  The same
 * bytes are also read as a reply, as racectl would read them from the
 * daemon: a line that is not a reply is refused with a message. */
#include "fuzz.h"

#include "control.h"
#include "error.h"
#include "redact.h"

#include <string.h>

static void check_accepted(const struct control_command *cmd, json_t *args)
{
	char *line = control_request_line(cmd->name, args);
	FUZZ_CHECK(line, "out of memory");
	size_t len = strlen(line);
	FUZZ_CHECK(len > 0 && line[len - 1] == '\n', "a request line without its newline");
	const struct control_command *again = NULL;
	json_t *args2 = NULL;
	enum control_code code;
	char err[ERR_MAX];
	FUZZ_CHECK(control_request_parse(line, len - 1, &again, &args2, &code, err) == 0,
	           "'%s' does not parse back: %s", line, err);
	FUZZ_CHECK(again == cmd && json_equal(args, args2), "'%s' parses back differently", line);
	json_decref(args2);
	free(line);
}

static void check_refused(enum control_code code, const char *err)
{
	FUZZ_CHECK(err[0], "refused without a message");
	char *line = control_reply_error_line(code, err);
	FUZZ_CHECK(line, "out of memory");
	json_t *result = NULL;
	char code_name[CONTROL_CODE_MAX], message[ERR_MAX];
	FUZZ_CHECK(control_reply_parse(line, &result, code_name, message) == 0, "reply '%s'", line);
	/* A message that is not UTF-8 goes out with its non-ASCII bytes as '?';
	 * either way its secrets are masked. */
	char ascii[ERR_MAX];
	snprintf(ascii, sizeof ascii, "%s", err);
	for (char *p = ascii; *p; p++)
		if ((unsigned char)*p >= 0x80)
			*p = '?';
	char *want = redact_dup(err), *want_ascii = redact_dup(ascii);
	FUZZ_CHECK(want && want_ascii, "out of memory");
	FUZZ_CHECK(strcmp(code_name, control_code_name(code)) == 0 &&
	                   (strcmp(message, want) == 0 || strcmp(message, want_ascii) == 0),
	           "reply '%s' reads back as %s '%s'", line, code_name, message);
	free(want);
	free(want_ascii);
	free(line);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > CONTROL_LINE_MAX)
		return 0; /* the server closes the connection before parsing */
	const struct control_command *cmd = NULL;
	json_t *args = NULL;
	enum control_code code = CONTROL_INTERNAL;
	char err[ERR_MAX] = "";
	if (control_request_parse((const char *)data, size, &cmd, &args, &code, err) == 0) {
		FUZZ_CHECK(cmd && json_is_object(args), "accepted without a command or arguments");
		check_accepted(cmd, args);
		json_decref(args);
	} else {
		FUZZ_CHECK(code == CONTROL_BAD_REQUEST || code == CONTROL_UNKNOWN_COMMAND ||
		                   code == CONTROL_INTERNAL, "code %d", code);
		check_refused(code, err);
	}

	char *line = strndup((const char *)data, size);
	FUZZ_CHECK(line, "out of memory");
	json_t *result = NULL;
	char code_name[CONTROL_CODE_MAX], message[ERR_MAX];
	int rc = control_reply_parse(line, &result, code_name, message);
	FUZZ_CHECK(rc == 1 ? result != NULL : result == NULL, "rc %d and result %p", rc, (void *)result);
	if (rc < 0) /* {"ok":false} may carry an empty message; a bad line never */
		FUZZ_CHECK(message[0], "reply refused without a message");
	json_decref(result);
	free(line);
	return 0;
}
