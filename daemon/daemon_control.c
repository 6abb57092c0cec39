#include "daemon_control.h"

#include "raced_version.h"

#include "config.h"
#include "control.h"
#include "ctlserver.h"
#include "error.h"
#include "log.h"
#include "service.h"

#include <errno.h>
#include <grp.h>
#include <inttypes.h>
#include <limits.h>
#include <pwd.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>

/* Most runs one `status` lists (its reply stays well under a client's
 * reply line bound). */
#define STATUS_LIMIT_MAX 1000
/* Most URLs a group of `errors` lists. */
#define ERRORS_LIMIT_MAX 1000

struct daemon_control {
	struct ctlserver *srv;
	struct service *svc;
	struct daemon_peer_names names;  /* filled at open */
};

static void server_options(const struct config *cfg, struct ctlserver_options *o)
{
	memset(o, 0, sizeof *o);
	o->max_clients = cfg->max_clients;
	o->admin_group = cfg->admin_group;
}

static void peer_names_add(struct daemon_peer_names *pn, const struct passwd *pw)
{
	if (!pw || pn->n >= DAEMON_PEER_NAMES_MAX || strlen(pw->pw_name) >= DAEMON_PEER_NAME_LEN)
		return;
	for (size_t i = 0; i < pn->n; i++)
		if (pn->e[i].uid == pw->pw_uid)
			return;
	pn->e[pn->n].uid = pw->pw_uid;
	snprintf(pn->e[pn->n].name, DAEMON_PEER_NAME_LEN, "%s", pw->pw_name);
	pn->n++;
}

void daemon_peer_names_fill(struct daemon_peer_names *pn, const char *admin_group)
{
	pn->n = 0;
	peer_names_add(pn, getpwuid(0));
	peer_names_add(pn, getpwuid(geteuid()));
	struct group *gr = admin_group && admin_group[0] ? getgrnam(admin_group) : NULL;
	if (!gr)
		return;
	/* getpwnam may reuse getgrnam's buffer: copy the member names first */
	char members[DAEMON_PEER_NAMES_MAX][DAEMON_PEER_NAME_LEN];
	size_t n = 0;
	for (char **m = gr->gr_mem; m && *m && n < DAEMON_PEER_NAMES_MAX; m++)
		if (strlen(*m) < DAEMON_PEER_NAME_LEN)
			snprintf(members[n++], DAEMON_PEER_NAME_LEN, "%s", *m);
	for (size_t i = 0; i < n; i++)
		peer_names_add(pn, getpwnam(members[i]));
}

void daemon_peer_name(const struct daemon_peer_names *pn, uid_t uid, char *buf, size_t len)
{
	for (size_t i = 0; i < pn->n; i++)
		if (pn->e[i].uid == uid) {
			snprintf(buf, len, "%s", pn->e[i].name);
			return;
		}
	snprintf(buf, len, "uid %u", (unsigned)uid);
}

static void started(void *arg, int64_t id, const char *err)
{
	struct control_request *req = arg;
	if (err)
		control_reply_error(req, CONTROL_FAILED, "%s", err);
	else
		control_reply_ok(req, json_pack("{s:I}", "import_id", (json_int_t)id));
}

/* import_runs.counts holds per-stage objects; status shows stored rows per
 * stage and the errors, and keeps the whole object as "details". */
static void flatten_counts(json_t *run)
{
	json_t *counts = json_object_get(run, "counts");
	json_t *flat = json_object();
	json_int_t errors = 0;
	const char *stage;
	json_t *c;
	json_object_foreach(counts, stage, c) {
		if (!json_is_object(c))
			continue;
		json_object_set(flat, stage, json_object_get(c, "stored"));
		errors += json_integer_value(json_object_get(c, "failed"));
	}
	json_object_set_new(flat, "errors", json_integer(errors));
	/* error_groups: only for one run (status ID) */
	if (json_is_null(json_object_get(run, "error_groups")))
		json_object_del(run, "error_groups");
	json_object_set(run, "details", counts);
	json_object_set_new(run, "counts", flat);
}

static void runs_ready(void *arg, json_t *result, const char *err)
{
	struct control_request *req = arg;
	json_t *args = control_request_args(req);
	if (err) {
		control_reply_error(req, CONTROL_UNAVAILABLE, "cannot read import runs: %s", err);
		return;
	}
	if (json_object_get(args, "id") && json_array_size(result) == 0) {
		control_reply_error(req, CONTROL_NOT_FOUND, "no import with id %" JSON_INTEGER_FORMAT,
		                    json_integer_value(json_object_get(args, "id")));
		return;
	}
	size_t i;
	json_t *run;
	json_array_foreach(result, i, run)
		flatten_counts(run);
	control_reply_ok(req, json_pack("{s:O}", "runs", result));
}

/* A failed service call: the reply code its class names (control.h),
 * else the command's fallback. */
static void reply_failure(struct control_request *req, int rc, enum control_code fallback,
                          const char *err)
{
	control_reply_error(req, control_code_for_class(rc, fallback), "%s", err);
}

/* The import id a pause, resume or cancel acted on, or its failure. */
static void reply_import_id(struct control_request *req, int64_t id, const char *err)
{
	if (id < 0)
		reply_failure(req, (int)id, CONTROL_CONFLICT, err);
	else
		control_reply_ok(req, json_pack("{s:I}", "import_id", (json_int_t)id));
}

static void on_start_import(void *ctx, struct control_request *req)
{
	struct daemon_control *dc = ctx;
	char who[64], err[ERR_MAX];
	daemon_peer_name(&dc->names, control_request_uid(req), who, sizeof who);
	/* validated by the command table: full a boolean, resume true or an id >= 1, not both */
	json_t *args = control_request_args(req), *resume = json_object_get(args, "resume");
	struct service_start opt = {
		.full = json_is_true(json_object_get(args, "full")),
		.resume = json_is_true(resume) || json_is_integer(resume),
		.resume_id = json_is_integer(resume) ? (int64_t)json_integer_value(resume) : 0,
	};
	int rc = service_start_import(dc->svc, who, &opt, started, req, err);
	if (rc < 0)
		reply_failure(req, rc, CONTROL_CONFLICT, err);
}

static void on_cancel(void *ctx, struct control_request *req)
{
	struct daemon_control *dc = ctx;
	char err[ERR_MAX];
	int64_t id = service_cancel(dc->svc, err);
	reply_import_id(req, id, err);
}

static void on_pause(void *ctx, struct control_request *req)
{
	struct daemon_control *dc = ctx;
	char err[ERR_MAX];
	int64_t id = service_pause(dc->svc, true, err);
	reply_import_id(req, id, err);
}

static void on_resume(void *ctx, struct control_request *req)
{
	struct daemon_control *dc = ctx;
	char err[ERR_MAX];
	int64_t id = service_pause(dc->svc, false, err);
	reply_import_id(req, id, err);
}

static void on_stats(void *ctx, struct control_request *req)
{
	struct daemon_control *dc = ctx;
	control_reply_ok(req, service_stats(dc->svc));
}

static void on_health(void *ctx, struct control_request *req)
{
	struct daemon_control *dc = ctx;
	control_reply_ok(req, service_health(dc->svc));
}

typedef int (*runs_query_fn)(struct service *s, int64_t id, uint32_t limit,
                             service_json_fn cb, void *arg, char *err);

/* Ask the service (service_runs or service_errors) with the request's id
 * and limit (at most limit_max); ready answers.  what: "runs", "errors". */
static void ask_service(struct daemon_control *dc, struct control_request *req,
                        runs_query_fn query, json_int_t limit_max, service_json_fn ready,
                        const char *what)
{
	json_t *args = control_request_args(req);
	char err[ERR_MAX];
	json_int_t id = json_integer_value(json_object_get(args, "id"));
	json_int_t limit = json_integer_value(json_object_get(args, "limit"));
	if (limit > limit_max)
		limit = limit_max;
	int rc = query(dc->svc, id, (uint32_t)limit, ready, req, err);
	if (rc < 0)
		control_reply_error(req, control_code_for_class(rc, CONTROL_UNAVAILABLE),
		                    "cannot read import %s: %s", what, err);
}

static void on_status(void *ctx, struct control_request *req)
{
	ask_service(ctx, req, service_runs, STATUS_LIMIT_MAX, runs_ready, "runs");
}

static void errors_ready(void *arg, json_t *result, const char *err)
{
	struct control_request *req = arg;
	json_t *id = json_object_get(control_request_args(req), "id");
	if (err)
		control_reply_error(req, CONTROL_UNAVAILABLE, "cannot read import errors: %s", err);
	else if (!json_object_get(result, "import_id") && id)
		control_reply_error(req, CONTROL_NOT_FOUND, "no import with id %" JSON_INTEGER_FORMAT,
		                    json_integer_value(id));
	else if (!json_object_get(result, "import_id"))
		control_reply_error(req, CONTROL_NOT_FOUND, "no import runs yet");
	else
		control_reply_ok(req, json_incref(result));
}

static void on_errors(void *ctx, struct control_request *req)
{
	ask_service(ctx, req, service_errors, ERRORS_LIMIT_MAX, errors_ready, "errors");
}

static void on_reload(void *ctx, struct control_request *req)
{
	struct daemon_control *dc = ctx;
	char err[ERR_MAX];
	char *path = strdup(service_config(dc->svc)->path);
	if (!path) {
		control_reply_error(req, CONTROL_INTERNAL, "out of memory");
		return;
	}
	json_t *report = NULL;
	int rc = daemon_reload(dc, dc->svc, path, &report, err);
	if (rc < 0) {
		reply_failure(req, rc, CONTROL_FAILED, err);
	} else {
		json_t *result = report ? report : json_object();
		json_object_set_new(result, "config", json_string(path));
		control_reply_ok(req, result);
	}
	free(path);
}

/* config_each_entry's callback: one key as the config reply lists it. */
static void config_entry_json(void *arg, const struct config_entry *e)
{
	json_t *keys = json_object_get(arg, "keys");
	const char *path = json_string_value(json_object_get(arg, "config"));
	char source[PATH_MAX + 16];
	if (e->line)
		snprintf(source, sizeof source, "%s:%u", path, e->line);
	else
		snprintf(source, sizeof source, "default");
	json_t *k = json_pack("{s:s,s:s?,s:s,s:s?,s:s?,s:b,s:s,s:s}", "section", e->section, "name", e->name,
	                      "key", e->key, "value", e->value, "default", e->def, "derived", e->derived,
	                      "source", source, "reload", config_when_names[e->when]);
	if (k)
		json_object_set_new(k, "line", e->line ? json_integer(e->line) : json_null());
	json_array_append_new(keys, k);
}

static void on_config(void *ctx, struct control_request *req)
{
	struct daemon_control *dc = ctx;
	const struct config *cfg = service_config(dc->svc);
	json_t *result = json_pack("{s:s,s:[]}", "config", cfg->path, "keys");
	if (!result) {
		control_reply_error(req, CONTROL_INTERNAL, "out of memory");
		return;
	}
	config_each_entry(cfg, config_entry_json, result);
	control_reply_ok(req, result);
}

static void on_version(void *ctx, struct control_request *req)
{
	(void)ctx;
	control_reply_ok(req, json_pack("{s:s}", "version", RACED_VERSION));
}

/* Each command's handler, by its place in the command table. */
const ctlserver_handler daemon_control_handlers[CONTROL_N_COMMANDS] = {
	[CONTROL_CMD_START_IMPORT] = on_start_import,
	[CONTROL_CMD_CANCEL] = on_cancel,
	[CONTROL_CMD_PAUSE] = on_pause,
	[CONTROL_CMD_RESUME] = on_resume,
	[CONTROL_CMD_STATS] = on_stats,
	[CONTROL_CMD_STATUS] = on_status,
	[CONTROL_CMD_ERRORS] = on_errors,
	[CONTROL_CMD_HEALTH] = on_health,
	[CONTROL_CMD_CONFIG] = on_config,
	[CONTROL_CMD_RELOAD] = on_reload,
	[CONTROL_CMD_VERSION] = on_version,
	[CONTROL_CMD_HELP] = ctlserver_help,
};

static void handle(void *ctx, struct control_request *req)
{
	enum control_command_id id = control_command_id(control_request_command(req));
	daemon_control_handlers[id](ctx, req);
}

struct daemon_control *daemon_control_open(struct event_base *base, struct service *svc, char *err)
{
	struct daemon_control *dc = calloc(1, sizeof *dc);
	const struct config *cfg = service_config(svc);
	struct ctlserver_options o;
	if (!dc) {
		err_set(err, "out of memory");
		return NULL;
	}
	dc->svc = svc;
	daemon_peer_names_fill(&dc->names, cfg->admin_group);
	server_options(cfg, &o);
	int n = sd_listen_fds(1);
	if (n > 1) {
		err_set(err, "systemd passed %d sockets; raced.socket should pass exactly one", n);
	} else if (n == 1) {
		dc->srv = ctlserver_adopt(base, SD_LISTEN_FDS_START, &o, handle, dc, err);
		if (dc->srv)
			log_info("control: listening on the socket systemd passed");
	} else {
		dc->srv = ctlserver_listen(base, cfg->control_socket, &o, handle, dc, err);
		if (dc->srv)
			log_info("control: listening on %s", cfg->control_socket);
	}
	if (!dc->srv) {
		free(dc);
		return NULL;
	}
	return dc;
}

void daemon_control_close(struct daemon_control *dc)
{
	if (!dc)
		return;
	ctlserver_free(dc->srv);
	free(dc);
}

/* "; "-joined texts of a report's list, after head, into buf (cut with
 * "..." when full). */
static void join_list(char *buf, size_t len, size_t *used, const char *head, const json_t *list)
{
	size_t i;
	const json_t *t;
	json_array_foreach(list, i, t) {
		if (*used >= len)
			return;
		int w = snprintf(buf + *used, len - *used, "%s%s%s", i ? "; " : *used ? "; " : "", i ? "" : head,
		                 json_string_value(t));
		*used += w > 0 ? (size_t)w : 0;
	}
	if (*used >= len && len >= 4)
		memcpy(buf + len - 4, "...", 4);
}

/* The log line of an accepted reload: what applies now, what waits for
 * the running import, what waits for a restart. */
static void log_reload(const char *path, const json_t *report)
{
	char line[LOG_LINE_MAX / 2] = "", waits[64];
	size_t used = 0;
	json_int_t id = json_integer_value(json_object_get(report, "waits_for_import"));
	snprintf(waits, sizeof waits, "when import %" JSON_INTEGER_FORMAT " ends: ", id);
	join_list(line, sizeof line, &used, "applied now: ", json_object_get(report, "applied"));
	join_list(line, sizeof line, &used, waits, json_object_get(report, "waiting"));
	join_list(line, sizeof line, &used, "at the next restart: ", json_object_get(report, "restart"));
	log_notice("reload: %s: %s", path, line[0] ? line : report ? "nothing changed" : "(out of memory)");
}

int daemon_reload(struct daemon_control *dc, struct service *svc, const char *path, json_t **report, char *err)
{
	json_t *rep = NULL;
	struct ctlserver_options o;
	if (report)
		*report = NULL;
	struct config *next = config_load(path, err);
	if (!next) {
		/* Logged here, whichever way the reload came (SIGHUP or racectl):
		 * err names the file, the line and why. */
		log_err("reload refused, the previous configuration stays: %s", err);
		return -EINVAL;
	}
	/* The control server's limits and admin_group apply now, even while
	 * an import runs (they are live keys; service_reload may also free
	 * next). */
	if (dc) {
		server_options(next, &o);
		ctlserver_configure(dc->srv, &o);
	}
	int rc = service_reload(svc, next, &rep, err);
	if (rc < 0) {
		config_free(next);
		if (dc) {
			server_options(service_config(svc), &o);
			ctlserver_configure(dc->srv, &o);
		}
		log_err("reload refused, the previous configuration stays: %s", err);
		return rc;
	}
	log_reload(path, rep);
	if (report)
		*report = rep;
	else
		json_decref(rep);
	return 0;
}
