#include "control.h"

#include "redact.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const char *const code_names[] = {
	[CONTROL_BAD_REQUEST] = "bad_request",
	[CONTROL_LINE_TOO_LONG] = "line_too_long",
	[CONTROL_UNKNOWN_COMMAND] = "unknown_command",
	[CONTROL_PERMISSION_DENIED] = "permission_denied",
	[CONTROL_BUSY] = "busy",
	[CONTROL_CONFLICT] = "conflict",
	[CONTROL_NOT_FOUND] = "not_found",
	[CONTROL_FAILED] = "failed",
	[CONTROL_UNAVAILABLE] = "unavailable",
	[CONTROL_INTERNAL] = "internal",
};

const char *control_code_name(enum control_code code)
{
	if ((size_t)code < sizeof code_names / sizeof code_names[0] && code_names[code])
		return code_names[code];
	return "internal";
}

/* What a class of service failure means on the wire.  Classes not named
 * here mean what the failing command's fallback says. */
static const struct {
	int errnum;
	enum control_code code;
} class_codes[] = {
	{ ENOTCONN, CONTROL_UNAVAILABLE },  /* the database is not connected */
	{ EBUSY, CONTROL_CONFLICT },        /* an import runs, is starting or is ending */
	{ ESRCH, CONTROL_CONFLICT },        /* no import runs */
	{ ENOENT, CONTROL_NOT_FOUND },      /* no such thing (an import id) */
	{ EINVAL, CONTROL_FAILED },         /* an invalid configuration */
	{ ENOMEM, CONTROL_INTERNAL },       /* out of memory, as control-protocol.md says */
};

enum control_code control_code_for_class(int rc, enum control_code fallback)
{
	for (size_t i = 0; i < sizeof class_codes / sizeof class_codes[0]; i++)
		if (rc == -class_codes[i].errnum)
			return class_codes[i].code;
	return fallback;
}

static const char *json_kind(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT: return "an object";
	case JSON_ARRAY: return "an array";
	case JSON_STRING: return "a string";
	case JSON_INTEGER: return "an integer";
	case JSON_REAL: return "a number with a fraction";
	case JSON_TRUE:
	case JSON_FALSE: return "a boolean";
	case JSON_NULL: return "null";
	}
	return "a value";
}

static const char *arg_kind(enum control_arg_type t)
{
	switch (t) {
	case CONTROL_ARG_INTEGER: return "an integer";
	case CONTROL_ARG_STRING: return "a string";
	case CONTROL_ARG_BOOLEAN: return "a boolean";
	case CONTROL_ARG_TRUE_OR_ID: return "true or an import id";
	}
	return "a value";
}

static void arg_names(const struct control_command *cmd, char *buf, size_t size)
{
	buf[0] = '\0';
	size_t used = 0;
	for (size_t i = 0; i < cmd->n_args && used < size; i++) {
		int n = snprintf(buf + used, size - used, "%s%s", i ? ", " : "", cmd->args[i].name);
		if (n < 0)
			break;
		used += (size_t)n;
	}
}

/* Given, for an exclusive pair: present and not false. */
static bool arg_given(json_t *args, const char *name)
{
	json_t *v = json_object_get(args, name);
	return v && !json_is_false(v);
}

static int check_args(const struct control_command *cmd, json_t *req, json_t *args, char *err)
{
	const char *key;
	json_t *value;
	json_object_foreach(req, key, value) {
		if (strcmp(key, "cmd") == 0)
			continue;
		const struct control_arg *spec = control_command_arg(cmd, key);
		if (!spec) {
			if (cmd->n_args == 0)
				return err_set(err, "'%s' takes no arguments, got '%.64s'", cmd->name, key);
			char names[128];
			arg_names(cmd, names, sizeof names);
			return err_set(err, "'%s' has no argument '%.64s' (it takes: %s)",
			               cmd->name, key, names);
		}
		bool ok = false;
		switch (spec->type) {
		case CONTROL_ARG_INTEGER: ok = json_is_integer(value); break;
		case CONTROL_ARG_STRING: ok = json_is_string(value); break;
		case CONTROL_ARG_BOOLEAN: ok = json_is_boolean(value); break;
		case CONTROL_ARG_TRUE_OR_ID: ok = json_is_boolean(value) || json_is_integer(value); break;
		}
		if (!ok)
			return err_set(err, "argument '%s' of '%s' must be %s, got %s",
			               key, cmd->name, arg_kind(spec->type), json_kind(value));
		if ((spec->type == CONTROL_ARG_INTEGER || spec->type == CONTROL_ARG_TRUE_OR_ID) &&
		    json_is_integer(value) && json_integer_value(value) < spec->min)
			return err_set(err, "argument '%s' of '%s' must be at least %lld, got %lld",
			               key, cmd->name, spec->min, (long long)json_integer_value(value));
		if (json_object_set(args, key, value) != 0)
			return err_set(err, "out of memory");
	}
	for (size_t i = 0; i < cmd->n_args; i++)
		if (cmd->args[i].required && !json_object_get(args, cmd->args[i].name))
			return err_set(err, "'%s' needs the argument '%s' (%s)",
			               cmd->name, cmd->args[i].name, cmd->args[i].help);
	if (cmd->exclusive[0] && arg_given(args, cmd->exclusive[0]) && arg_given(args, cmd->exclusive[1]))
		return err_set(err, "'%s' takes '%s' or '%s', not both", cmd->name, cmd->exclusive[0],
		               cmd->exclusive[1]);
	return 0;
}

int control_request_parse(const char *line, size_t len,
                          const struct control_command **cmd, json_t **args,
                          enum control_code *code, char *err)
{
	json_error_t jerr;
	*code = CONTROL_BAD_REQUEST;
	json_t *req = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!req) {
		switch (json_error_code(&jerr)) {
		case json_error_invalid_utf8:
			return err_set(err, "request is not valid UTF-8 (at byte %d); send JSON text encoded in UTF-8",
			               jerr.position);
		case json_error_null_character:
			return err_set(err, "request contains a NUL byte (at byte %d)", jerr.position);
		default:
			return err_set(err, "request is not valid JSON: %s at byte %d; send one object a line, like {\"cmd\":\"help\"}",
			               jerr.text, jerr.position);
		}
	}
	int rc = -1;
	json_t *out = NULL;
	if (!json_is_object(req)) {
		err_set(err, "request must be a JSON object like {\"cmd\":\"help\"}, got %s", json_kind(req));
		goto done;
	}
	json_t *name = json_object_get(req, "cmd");
	if (!name) {
		err_set(err, "request has no \"cmd\" member; send {\"cmd\":\"help\"} for the list of commands");
		goto done;
	}
	if (!json_is_string(name)) {
		err_set(err, "\"cmd\" must be a string, got %s", json_kind(name));
		goto done;
	}
	const char *s = json_string_value(name);
	const struct control_command *c = control_command_find(s);
	if (!c) {
		*code = CONTROL_UNKNOWN_COMMAND;
		const char *hint = strlen(s) <= 64 ? control_command_suggest(s) : NULL;
		if (hint)
			err_set(err, "unknown command '%.64s' (did you mean '%s'?)", s, hint);
		else
			err_set(err, "unknown command '%.64s'", s);
		goto done;
	}
	out = json_object();
	if (!out) {
		*code = CONTROL_INTERNAL;
		err_set(err, "out of memory");
		goto done;
	}
	if (check_args(c, req, out, err) != 0)
		goto done;
	*cmd = c;
	*args = out;
	out = NULL;
	rc = 0;
done:
	json_decref(out);
	json_decref(req);
	return rc;
}

static char *dump_line(json_t *v)
{
	char *s = json_dumps(v, JSON_COMPACT | JSON_ENSURE_ASCII);
	if (!s)
		return NULL;
	size_t n = strlen(s);
	char *line = realloc(s, n + 2);
	if (!line) {
		free(s);
		return NULL;
	}
	line[n] = '\n';
	line[n + 1] = '\0';
	return line;
}

/* No secret leaves raced: every string of a reply is masked (redact.h)
 * before it is encoded.  Masking the encoded line instead could run a
 * cut, quoted secret on over the JSON that follows it.  -1 when out of
 * memory. */
static int redact_strings(json_t *v)
{
	const char *name;
	json_t *item;
	size_t i;
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		json_object_foreach(v, name, item)
			if (redact_strings(item) < 0)
				return -1;
		return 0;
	case JSON_ARRAY:
		json_array_foreach(v, i, item)
			if (redact_strings(item) < 0)
				return -1;
		return 0;
	case JSON_STRING: {
		char *masked = redact_dup(json_string_value(v));
		if (!masked)
			return -1;
		int rc = strcmp(masked, json_string_value(v)) == 0 ? 0 : json_string_set(v, masked);
		free(masked);
		return rc;
	}
	default:
		return 0;
	}
}

char *control_reply_ok_line(json_t *result)
{
	json_t *reply = json_pack("{s:b,s:o}", "ok", 1, "result", result ? result : json_object());
	if (!reply)
		return NULL;
	char *line = redact_strings(reply) == 0 ? dump_line(reply) : NULL;
	json_decref(reply);
	return line;
}

static char *error_line(enum control_code code, const char *message)
{
	json_t *reply = json_pack("{s:b,s:{s:s,s:s}}", "ok", 0, "error",
	                          "code", control_code_name(code), "message", message);
	if (!reply)
		return NULL;
	char *line = redact_strings(reply) == 0 ? dump_line(reply) : NULL;
	json_decref(reply);
	return line;
}

char *control_reply_error_line(enum control_code code, const char *message)
{
	char *line = error_line(code, message);
	if (line || !message)
		return line;
	/* Not UTF-8, which json_pack refuses: jansson's own error text can cut
	 * a character in two ('"st\' and half of one), "%.64s" can, a config
	 * error can quote any byte.  Send it with every non-ASCII byte as '?'
	 * rather than no reply at all (found by tests/fuzz/fuzz_control). */
	char *ascii = strdup(message);
	if (!ascii)
		return NULL;
	for (char *p = ascii; *p; p++)
		if ((unsigned char)*p >= 0x80)
			*p = '?';
	line = error_line(code, ascii);
	free(ascii);
	return line;
}

char *control_request_line(const char *cmd, json_t *args)
{
	json_t *req = args ? json_copy(args) : json_object();
	if (!req)
		return NULL;
	char *line = NULL;
	if (json_object_set_new(req, "cmd", json_string(cmd)) == 0)
		line = dump_line(req);
	json_decref(req);
	return line;
}

int control_reply_parse(const char *line, json_t **result, char *code, char *message)
{
	json_error_t jerr;
	*result = NULL;
	code[0] = '\0';
	json_t *reply = json_loads(line, 0, &jerr);
	if (!reply)
		return err_set(message, "raced sent a reply that is not JSON (%s)", jerr.text);
	int rc = -1;
	json_t *ok = json_object_get(reply, "ok");
	if (!json_is_boolean(ok)) {
		err_set(message, "raced sent a reply without \"ok\"");
	} else if (json_is_true(ok)) {
		json_t *r = json_object_get(reply, "result");
		*result = r ? json_incref(r) : json_object();
		rc = 1;
	} else {
		json_t *e = json_object_get(reply, "error");
		const char *c = json_string_value(json_object_get(e, "code"));
		const char *m = json_string_value(json_object_get(e, "message"));
		snprintf(code, CONTROL_CODE_MAX, "%s", c ? c : "internal");
		snprintf(message, ERR_MAX, "%s", m ? m : "raced gave no reason");
		rc = 0;
	}
	json_decref(reply);
	return rc;
}
