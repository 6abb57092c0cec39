#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "config.h"
#include "config_keys.h"
#include "config_value.h"
#include "error.h"
#include "jsondoc.h"
#include "urltemplate.h"

/* The smallest valid configuration: one provider, one root stage. */
#define MIN_PROVIDER "[provider main]\nbase_url = https://api.example.com/v1\n"
#define MIN_STAGE "[stage races]\nprovider = main\nurl = /races\nkey = /id\n"

static char tmpdir[] = "/tmp/raced-test-config-XXXXXX";

/* Writes text to a new file in tmpdir; returns its malloc'd path. */
static char *write_file(const char *name, const char *text)
{
	char *path;
	if (name) {
		if (asprintf(&path, "%s/%s", tmpdir, name) < 0)
			abort();
	} else {
		if (asprintf(&path, "%s/conf-XXXXXX", tmpdir) < 0)
			abort();
		int fd = mkstemp(path);
		if (fd < 0)
			abort();
		close(fd);
	}
	FILE *f = fopen(path, "w");
	if (!f)
		abort();
	fputs(text, f);
	fclose(f);
	return path;
}

static struct config *load_text(const char *text, char *err)
{
	char *path = write_file(NULL, text);
	struct config *c = config_load(path, err);
	unlink(path);
	free(path);
	return c;
}

/* Loading text fails with exactly "<path><tail>". */
static bool fails_with(const char *text, const char *tail)
{
	char err[ERR_MAX] = "";
	char *path = write_file(NULL, text);
	struct config *c = config_load(path, err);
	char want[ERR_MAX + 256];
	snprintf(want, sizeof want, "%s%s", path, tail);
	bool ok = !c && strcmp(err, want) == 0;
	if (!ok)
		fprintf(stderr, "  config:\n%s  got:  %s\n  want: %s\n", text, c ? "(loaded)" : err, want);
	config_free(c);
	unlink(path);
	free(path);
	return ok;
}

static struct config *load_ok(const char *text)
{
	char err[ERR_MAX] = "";
	struct config *c = load_text(text, err);
	if (!c)
		fprintf(stderr, "  unexpected error: %s\n", err);
	return c;
}

/* ---- the shipped file ---- */

static char *source_file(const char *rel)
{
	const char *root = getenv("RACED_SOURCE_ROOT");
	char *path;
	if (asprintf(&path, "%s/%s", root ? root : "..", rel) < 0)
		abort();
	return path;
}

static void test_shipped_config_loads_with_the_documented_pipeline(void)
{
	char err[ERR_MAX] = "";
	char *path = source_file("etc/raced.conf");
	unsetenv("CREDENTIALS_DIRECTORY");
	struct config *c = config_load(path, err);
	CHECK_STR(err, "");
	CHECK(c != NULL);
	if (c) {
		CHECK_STR(c->control_socket, "/run/raced/raced.sock");
		CHECK_STR(c->admin_group, "raced-admin");
		CHECK_EQ(c->max_clients, 64);
		CHECK_EQ(c->stop_timeout_ms, 20000);
		CHECK_STR(c->conninfo, "dbname=races");
		CHECK_EQ(c->batch_size, 500);
		CHECK_EQ(c->n_providers, 2);
		const struct provider_conf *m = config_provider(c, "main");
		CHECK(m && m->rate_limit == 50.0);
		CHECK(m && m->token == NULL && m->token_file == NULL);
		CHECK_EQ(m ? m->max_body : 0, 16u << 20);
		CHECK_EQ(m ? m->timeout_ms : 0, 30000);
		const struct provider_conf *p = config_provider(c, "people");
		CHECK_STR(p ? p->base_url : NULL, "https://people.example.org");
		CHECK_EQ(c->n_stages, 3);
		CHECK_STR(c->stages[0].name, "races");
		CHECK_STR(c->stages[1].name, "entries");
		CHECK_STR(c->stages[2].name, "athletes");
		CHECK(c->stages[0].parent == NULL);
		CHECK_EQ(c->stages[0].max_demand, 100);
		CHECK_EQ(c->stages[0].min_demand, 50);
		CHECK_EQ(c->stages[0].buffer_size, 100);
		CHECK_EQ(c->stages[0].concurrency, 1);
		CHECK_EQ(c->stages[0].next, NEXT_POINTER);
		CHECK_STR(c->stages[0].next_pointer, "/next");
		CHECK_STR(c->stages[1].url, "/races/{id}/entries");
		CHECK_EQ(c->stages[1].concurrency, 8);
		CHECK_STR(c->stages[2].items, "");
		CHECK_EQ(c->stages[2].next, NEXT_NONE);
		CHECK(c->stages[2].dedupe);
		CHECK_EQ(c->stages[2].concurrency, 32);
		CHECK_EQ(c->stages[2].max_demand, 500);
	}
	config_free(c);
	free(path);
}

/* Every key is documented in raced.conf(5) and shown in etc/raced.conf. */
static void test_every_key_is_in_the_man_page_and_the_shipped_file(void)
{
	const char *files[] = {"docs/raced.conf.5", "etc/raced.conf"};
	for (size_t f = 0; f < 2; f++) {
		char *path = source_file(files[f]);
		FILE *fp = fopen(path, "r");
		char *text = calloc(1, 1 << 16);
		CHECK(fp != NULL);
		if (fp) {
			size_t n = fread(text, 1, (1 << 16) - 1, fp);
			text[n] = '\0';
			fclose(fp);
		}
		for (size_t i = 0; i < config_n_keys; i++) {
			const char *name = config_keys[i].name;
			/* the man page: ".B key" or ".BR key " opens its entry;
			 * the shipped file: "key =" or ";key =" */
			char p1[64], p2[64];
			if (f == 0) {
				snprintf(p1, sizeof p1, "\n.B %s\n", name);
				snprintf(p2, sizeof p2, "\n.BR %s ", name);
			} else {
				snprintf(p1, sizeof p1, "\n%s =", name);
				snprintf(p2, sizeof p2, "\n;%s =", name);
			}
			if (!strstr(text, p1) && !strstr(text, p2)) {
				fprintf(stderr, "  %s does not show %s\n", files[f], name);
				check_failures++;
			}
		}
		free(text);
		free(path);
	}
}

/* ---- defaults ---- */

static void test_defaults_fill_every_unset_key(void)
{
	struct config *c = load_ok(MIN_PROVIDER MIN_STAGE);
	CHECK(c != NULL);
	if (!c)
		return;
	CHECK_STR(c->control_socket, "/run/raced/raced.sock");
	CHECK_STR(c->admin_group, "raced-admin");
	CHECK_EQ(c->max_clients, 64);
	CHECK_EQ(c->stop_timeout_ms, 20000);
	CHECK_STR(c->conninfo, "dbname=races");
	CHECK_EQ(c->batch_size, 500);
	const struct provider_conf *p = &c->providers[0];
	CHECK_EQ(p->max_connections, 16);
	CHECK(p->rate_limit == 0.0);
	CHECK_EQ(p->timeout_ms, 30000);
	CHECK_EQ(p->max_retries, 5);
	CHECK_EQ(p->max_body, 16u << 20);
	CHECK_EQ(p->max_redirects, 5);
	CHECK(p->token_file == NULL && p->token == NULL);
	CHECK_EQ(p->line, 1);
	const struct stage_conf *s = &c->stages[0];
	CHECK_STR(s->items, "/data");
	CHECK_EQ(s->next, NEXT_NONE);
	CHECK(s->next_pointer == NULL);
	CHECK(!s->dedupe);
	CHECK_EQ(s->max_demand, 500);
	CHECK_EQ(s->min_demand, 250);
	CHECK_EQ(s->buffer_size, 500);
	CHECK_EQ(s->concurrency, 1);
	CHECK_EQ(s->line, 3);
	config_free(c);
}

static void test_child_stage_defaults_follow_max_demand_and_concurrency_8(void)
{
	struct config *c = load_ok(MIN_PROVIDER MIN_STAGE
	                           "[stage entries]\nparent = races\nprovider = main\nurl = /races/{id}\nkey = /id\n"
	                           "max_demand = 41\n");
	CHECK(c != NULL);
	if (!c)
		return;
	const struct stage_conf *s = config_stage(c, "entries");
	CHECK_EQ(s->max_demand, 41);
	CHECK_EQ(s->min_demand, 20);
	CHECK_EQ(s->buffer_size, 41);
	CHECK_EQ(s->concurrency, 8);
	config_free(c);
}

/* ---- value syntax ---- */

static void test_durations_are_ms_s_m_or_bare_seconds(void)
{
	uint32_t ms = 0;
	CHECK_EQ(config_parse_duration("250ms", &ms), 0);
	CHECK_EQ(ms, 250);
	CHECK_EQ(config_parse_duration("30s", &ms), 0);
	CHECK_EQ(ms, 30000);
	CHECK_EQ(config_parse_duration("2m", &ms), 0);
	CHECK_EQ(ms, 120000);
	CHECK_EQ(config_parse_duration("5", &ms), 0);
	CHECK_EQ(ms, 5000);
	CHECK_EQ(config_parse_duration("0", &ms), 0);
	CHECK_EQ(ms, 0);
	CHECK_EQ(config_parse_duration("10 s", &ms), 0);
	CHECK_EQ(ms, 10000);
	CHECK_EQ(config_parse_duration("1h", &ms), 0);
	CHECK_EQ(ms, 3600000);
	CHECK_EQ(config_parse_duration("7d", &ms), 0);
	CHECK_EQ(ms, 604800000);
	const char *bad[] = {"", "s", "-1s", "1.5s", "10w", "10 sec", "ms", "3000000000s", "99999999999999999999999",
	                     "5 ", "50d"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		ms = 7;
		if (config_parse_duration(bad[i], &ms) != -1 || ms != 7) {
			fprintf(stderr, "  duration '%s' accepted\n", bad[i]);
			check_failures++;
		}
	}
	CHECK_EQ(config_parse_duration(NULL, &ms), -1);
}

static void test_sizes_and_booleans_accept_the_documented_forms(void)
{
	static const struct { const char *size; size_t bytes; } sizes[] = {
		{"2048", 2048}, {"4KiB", 4096}, {"16MiB", 16u << 20}, {"1 GiB", 1u << 30}, {"3mib", 3u << 20}};
	for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
		char text[256];
		snprintf(text, sizeof text, MIN_PROVIDER "max_body = %s\n" MIN_STAGE, sizes[i].size);
		struct config *c = load_ok(text);
		CHECK(c && c->providers[0].max_body == sizes[i].bytes);
		config_free(c);
	}
	static const struct { const char *word; bool value; } bools[] = {
		{"yes", true}, {"no", false}, {"true", true}, {"false", false}, {"on", true},
		{"off", false}, {"1", true}, {"0", false}, {"Yes", true}};
	for (size_t i = 0; i < sizeof bools / sizeof bools[0]; i++) {
		char text[256];
		snprintf(text, sizeof text, MIN_PROVIDER MIN_STAGE "dedupe = %s\n", bools[i].word);
		struct config *c = load_ok(text);
		CHECK(c && c->stages[0].dedupe == bools[i].value);
		config_free(c);
	}
}

static void test_inline_comments_end_values_and_empty_items_is_allowed(void)
{
	struct config *c = load_ok("; comment\n# another\n"
	                           "[provider main] ; main API\n"
	                           "base_url = https://api.example.com/v1#frag ; a comment\n"
	                           "rate_limit = 2.5   # per second\n"
	                           "[stage races]\n"
	                           "provider = main\n"
	                           "url = /races;v=1\n"
	                           "items =              ; the document is one item\n"
	                           "key =\n"
	                           "\tnext = link\n");
	CHECK(c != NULL);
	if (!c)
		return;
	CHECK_STR(c->providers[0].base_url, "https://api.example.com/v1#frag");
	CHECK(c->providers[0].rate_limit == 2.5);
	CHECK_STR(c->stages[0].url, "/races;v=1");
	CHECK_STR(c->stages[0].items, "");
	CHECK_STR(c->stages[0].key, "");
	CHECK_EQ(c->stages[0].next, NEXT_LINK);
	config_free(c);
}

static void test_values_longer_than_inih_default_buffer_are_kept_whole(void)
{
	char text[8192], conninfo[1200];
	memset(conninfo, 'x', sizeof conninfo - 1);
	conninfo[sizeof conninfo - 1] = '\0';
	memcpy(conninfo, "host=", 5);
	snprintf(text, sizeof text, "[database]\nconninfo = %s\n" MIN_PROVIDER MIN_STAGE, conninfo);
	struct config *c = load_ok(text);
	CHECK_STR(c ? c->conninfo : NULL, conninfo);
	config_free(c);

	char big[CONFIG_LINE_MAX + 100];
	memset(big, 'y', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	char *huge;
	if (asprintf(&huge, "[database]\nconninfo = %s\n", big) < 0)
		abort();
	CHECK(fails_with(huge, ":2: line too long (at most 4096 characters)"));
	free(huge);
}

/* ---- errors: every one names file, line, section and key ---- */

static void test_unknown_key_suggests_nearest(void)
{
	CHECK(fails_with(MIN_PROVIDER MIN_STAGE "concurency = 8\n",
	                 ":7: [stage races] unknown key 'concurency' (did you mean 'concurrency'?)"));
	CHECK(fails_with("[daemon]\nMax_Clients = 3\n", ":2: [daemon] unknown key 'Max_Clients' (did you mean 'max_clients'?)"));
	CHECK(fails_with("[daemon]\nfoo = 3\n", ":2: [daemon] unknown key 'foo'"));
	CHECK(fails_with(MIN_PROVIDER MIN_STAGE "rate_limit = 5\n",
	                 ":7: [stage races] unknown key 'rate_limit' (it belongs in a [provider NAME] section)"));
}

static void test_unknown_or_malformed_section_is_an_error(void)
{
	CHECK(fails_with("[daemon]\n[stages races]\n", ":2: unknown section [stages races] (did you mean [stage races]?)"));
	CHECK(fails_with("[server]\n",
	                 ":1: unknown section [server] (expected [daemon], [database], [provider NAME] or [stage NAME])"));
	CHECK(fails_with("[daemon main]\n", ":1: section [daemon] takes no name (found [daemon main])"));
	CHECK(fails_with("[stage]\n", ":1: section [stage] needs a name: [stage NAME]"));
	CHECK(fails_with("[stage races\n", ":1: section header '[stage races' has no closing ']'"));
	CHECK(fails_with("[stage Races]\n",
	                 ":1: stage name 'Races' is not valid: it names a PostgreSQL table, so lowercase letters, "
	                 "digits and '_', starting with a letter or '_', at most 48 characters"));
	CHECK(fails_with("[stage import_runs]\n", ":1: stage name 'import_runs' is reserved for raced's own table"));
	CHECK(fails_with("[stage raced_reached]\n", ":1: stage name 'raced_reached' is reserved for raced's own table"));
	CHECK(fails_with("[provider ../x]\n",
	                 ":1: provider name '../x' is not valid: letters, digits, '_' and '-', starting with a letter "
	                 "or digit, at most 48 characters"));
}

static void test_syntax_errors_name_the_line(void)
{
	CHECK(fails_with("max_clients = 3\n", ":1: key 'max_clients' is outside any section"));
	CHECK(fails_with("[daemon]\n\nmax_clients\n", ":3: expected 'key = value' or a [section] header, found 'max_clients'"));
	CHECK(fails_with("[daemon]\n= 3\n", ":2: missing key name before '='"));
	CHECK(fails_with("[daemon]\nmax_clients: 3\n",
	                 ":2: expected 'key = value' or a [section] header, found 'max_clients: 3'"));
}

static void test_duplicate_key_and_section_name_the_first(void)
{
	CHECK(fails_with("[daemon]\nmax_clients = 3\n\nmax_clients = 4\n",
	                 ":4: [daemon] duplicate key 'max_clients' (first set on line 2)"));
	CHECK(fails_with(MIN_PROVIDER MIN_STAGE "[provider main]\n",
	                 ":7: duplicate section [provider main] (first on line 1)"));
	CHECK(fails_with("[database]\n[daemon]\n[database]\n", ":3: duplicate section [database] (first on line 1)"));
}

static void test_bad_values_say_what_is_accepted(void)
{
	CHECK(fails_with("[daemon]\nmax_clients = many\n",
	                 ":2: [daemon] max_clients: 'many' is not a whole number (expected 1 to 65536)"));
	CHECK(fails_with("[daemon]\nmax_clients = -1\n",
	                 ":2: [daemon] max_clients: '-1' is not a whole number (expected 1 to 65536)"));
	CHECK(fails_with("[daemon]\nmax_clients = 0\n", ":2: [daemon] max_clients: 0 is out of range (1 to 65536)"));
	CHECK(fails_with("[daemon]\nstop_timeout = 30x\n",
	                 ":2: [daemon] stop_timeout: '30x' is not a duration (expected a whole number with ms, s, m, h or d, "
	                 "e.g. 250ms, 30s, 2m, 1h; a bare number is seconds)"));
	CHECK(fails_with("[daemon]\nstop_timeout = 61m\n", ":2: [daemon] stop_timeout: 61m is out of range (0s to 1h)"));
	/* the store's own bound, so that --check-config passes only what starts */
	CHECK(fails_with("[database]\nbatch_size = 10001\n", ":2: [database] batch_size: 10001 is out of range (1 to 10000)"));
	CHECK(fails_with("[database]\nconnections = 0\n", ":2: [database] connections: 0 is out of range (1 to 16)"));
	CHECK(fails_with("[database]\nconnections = 17\n", ":2: [database] connections: 17 is out of range (1 to 16)"));
	CHECK(fails_with("[provider main]\ntimeout = 50ms\n",
	                 ":2: [provider main] timeout: 50ms is out of range (100ms to 1h)"));
	CHECK(fails_with("[provider main]\nmax_body = 16MB\n",
	                 ":2: [provider main] max_body: '16MB' is not a size (expected a number of bytes, optionally with "
	                 "KiB, MiB or GiB, e.g. 16MiB)"));
	CHECK(fails_with("[provider main]\nmax_body = 2GiB\n",
	                 ":2: [provider main] max_body: 2GiB is out of range (1KiB to 1GiB)"));
	CHECK(fails_with("[provider main]\nrate_limit = fast\n",
	                 ":2: [provider main] rate_limit: 'fast' is not a number (expected 0 to 1000000)"));
	CHECK(fails_with("[stage a]\ndedupe = maybe\n",
	                 ":2: [stage a] dedupe: 'maybe' is not a boolean (expected yes/no, true/false, on/off or 1/0)"));
	CHECK(fails_with("[daemon]\ncontrol_socket = raced.sock\n",
	                 ":2: [daemon] control_socket: 'raced.sock' is not an absolute path"));
	CHECK(fails_with("[daemon]\nadmin_group =\n", ":2: [daemon] admin_group: empty value (a value is required)"));
	CHECK(fails_with("[stage a]\nnext = next\n",
	                 ":2: [stage a] next: 'next' is not valid (expected a JSON pointer starting "
	                 "with '/', link, offset, page_number, cursor, header_cursor or none)"));
	CHECK(fails_with("[stage a]\nnext = ofset\n",
	                 ":2: [stage a] next: 'ofset' is not valid (did you mean 'offset'? expected a JSON pointer starting "
	                 "with '/', link, offset, page_number, cursor, header_cursor or none)"));
	CHECK(fails_with("[stage a]\nitems = data\n",
	                 ":2: [stage a] items: 'data' is not a JSON pointer (expected \"\" or a pointer starting with '/', "
	                 "e.g. /data)"));
	CHECK(fails_with("[stage a]\nkey = id\n",
	                 ":2: [stage a] key: 'id' is not a JSON pointer (expected \"\" or a pointer starting with '/', "
	                 "e.g. /data)"));
}


/* The paging styles' keys: defaults, each style's companions and nothing
 * else, the required ones, their syntax. */
static void test_paging_styles_take_their_companions(void)
{
	struct config *c = load_ok(MIN_PROVIDER "[stage races]\nprovider = main\nurl = /races\nkey = /id\n"
	                           "next = offset\nlimit = 50\ntotal = /meta/total\nhas_more = /more\n");
	CHECK(c != NULL);
	if (c) {
		const struct stage_conf *st = config_stage(c, "races");
		CHECK_EQ(st->next, NEXT_OFFSET);
		CHECK_STR(st->offset_param, "offset");
		CHECK_STR(st->limit_param, "limit");
		CHECK_EQ(st->limit, 50);
		CHECK_STR(st->total, "/meta/total");
		CHECK_STR(st->has_more, "/more");
	}
	config_free(c);
	c = load_ok(MIN_PROVIDER "[stage races]\nprovider = main\nurl = /races\nkey = /id\n"
	            "next = page_number\npage_param = page[number]\nfirst_page = 0\ntotal_pages = /pages\n");
	CHECK(c != NULL);
	if (c) {
		const struct stage_conf *st = config_stage(c, "races");
		CHECK_EQ(st->next, NEXT_PAGE_NUMBER);
		CHECK_STR(st->page_param, "page[number]");
		CHECK_EQ(st->first_page, 0);
		CHECK_STR(st->total_pages, "/pages");
	}
	config_free(c);
	c = load_ok(MIN_PROVIDER "[stage races]\nprovider = main\nurl = /races\nkey = /id\n"
	            "next = header_cursor\ncursor_header = X-Next-Cursor\ncursor_param = after\n");
	CHECK(c != NULL);
	if (c) {
		CHECK_EQ(config_stage(c, "races")->next, NEXT_HEADER_CURSOR);
		CHECK_STR(config_stage(c, "races")->cursor_header, "X-Next-Cursor");
		CHECK_STR(config_stage(c, "races")->cursor_param, "after");
	}
	config_free(c);
	c = load_ok(MIN_PROVIDER "[stage races]\nprovider = main\nurl = /races\nkey = /id\n"
	            "next = cursor\ncursor_pointer = /meta/next_cursor\n");
	CHECK(c && config_stage(c, "races")->next == NEXT_CURSOR);
	CHECK(c && strcmp(config_stage(c, "races")->cursor_param, "cursor") == 0);
	config_free(c);

	/* companions of another style, or of none */
	CHECK(fails_with(MIN_PROVIDER MIN_STAGE "next = /next\nlimit = 10\n",
	                 ":8: [stage races] limit: only next = offset takes it, and this stage has next = /next: "
	                 "remove limit or set next = offset"));
	CHECK(fails_with(MIN_PROVIDER MIN_STAGE "next = offset\nlimit = 10\npage_param = p\n",
	                 ":9: [stage races] page_param: only next = page_number takes it, and this stage has "
	                 "next = offset: remove page_param or set next = page_number"));
	CHECK(fails_with(MIN_PROVIDER MIN_STAGE "has_more = /more\n",
	                 ":7: [stage races] has_more: only next = offset, page_number, cursor or header_cursor takes "
	                 "it, and this stage has next = none: remove has_more or set next = offset, page_number, "
	                 "cursor or header_cursor"));
	CHECK(fails_with(MIN_PROVIDER MIN_STAGE "next = cursor\ncursor_pointer = /c\ncursor_header = X-C\n",
	                 ":9: [stage races] cursor_header: only next = header_cursor takes it, and this stage has "
	                 "next = cursor: remove cursor_header or set next = header_cursor"));
	/* required ones */
	CHECK(fails_with(MIN_PROVIDER MIN_STAGE "next = offset\n",
	                 ":7: [stage races] next = offset needs 'limit' (e.g. limit = 100, the page size to ask for)"));
	CHECK(fails_with(MIN_PROVIDER MIN_STAGE "next = cursor\n",
	                 ":7: [stage races] next = cursor needs 'cursor_pointer' (e.g. cursor_pointer = "
	                 "/meta/next_cursor, where the body holds the next cursor)"));
	CHECK(fails_with(MIN_PROVIDER MIN_STAGE "next = header_cursor\n",
	                 ":7: [stage races] next = header_cursor needs 'cursor_header' (e.g. cursor_header = "
	                 "X-Next-Cursor, the response header holding the next cursor)"));
	/* syntax */
	CHECK(fails_with(MIN_PROVIDER MIN_STAGE "next = offset\nlimit = 0\n",
	                 ":8: [stage races] limit: 0 is out of range (1 to 1000000)"));
	CHECK(fails_with(MIN_PROVIDER MIN_STAGE "next = page_number\nfirst_page = 2\n",
	                 ":8: [stage races] first_page: 2 is out of range (0 to 1)"));
	CHECK(fails_with(MIN_PROVIDER MIN_STAGE "next = offset\nlimit = 5\ntotal = meta.total\n",
	                 ":9: [stage races] total: 'meta.total' is not a JSON pointer (expected a pointer starting "
	                 "with '/', e.g. /updated_at)"));
	CHECK(fails_with(MIN_PROVIDER MIN_STAGE "next = offset\nlimit = 5\noffset_param = off set\n",
	                 ":9: [stage races] offset_param: 'off set' is not a query parameter name raced writes as it "
	                 "is (expected 1 to 64 letters, digits, '-', '.', '_', '~', '[' or ']', e.g. page or "
	                 "page[number])"));
	CHECK(fails_with(MIN_PROVIDER MIN_STAGE "next = header_cursor\ncursor_header = X-Cursor:\n",
	                 ":8: [stage races] cursor_header: 'X-Cursor:' is not an HTTP header name (expected 1 to 64 "
	                 "letters, digits or !#$%&'*+-.^_`|~, without the colon, e.g. X-Next-Cursor)"));
	CHECK(fails_with(MIN_PROVIDER MIN_STAGE "next = /a~2\n",
	                 ":7: [stage races] next: '/a~2' is not a valid JSON pointer ('~' must be followed by 0 or 1; "
	                 "write ~1 for '/' and ~0 for '~' in a name)"));
	CHECK(fails_with(MIN_PROVIDER MIN_STAGE "next = offset\nlimit = 5\nlimit_param = offset\n",
	                 ":9: [stage races] offset_param and limit_param are both 'offset': name two parameters"));
	CHECK(fails_with(MIN_PROVIDER "[stage races]\nprovider = main\nurl = /races\nkey = /id\nitems =\n"
	                 "next = page_number\n",
	                 ":8: [stage races] next = page_number counts a page's items, but items is empty (the document "
	                 "is one item): set items = /pointer to the page's array"));
}

static void test_max_connections_is_a_number_or_auto_with_a_ceiling(void)
{
	CHECK(fails_with("[provider main]\nmax_connections = adaptive\n",
	                 ":2: [provider main] max_connections: 'adaptive' is not valid (expected a whole number from 1 "
	                 "to 1024, or 'auto' to adapt it to the provider up to max_connections_ceiling)"));
	CHECK(fails_with("[provider main]\nmax_connections = 0\n",
	                 ":2: [provider main] max_connections: '0' is not valid (expected a whole number from 1 "
	                 "to 1024, or 'auto' to adapt it to the provider up to max_connections_ceiling)"));
	CHECK(fails_with("[provider main]\nmax_connections_ceiling = 2000\n",
	                 ":2: [provider main] max_connections_ceiling: 2000 is out of range (1 to 1024)"));
	struct config *c = load_ok("[provider main]\nbase_url = http://127.0.0.1/\nmax_connections = auto\n"
	                           "max_connections_ceiling = 64\n"
	                           "[stage a]\nprovider = main\nurl = /a\nkey = /id\n");
	if (c) {
		CHECK(c->providers[0].max_connections_auto);
		CHECK_EQ(c->providers[0].max_connections_ceiling, 64);
	}
	config_free(c);
	c = load_ok("[provider main]\nbase_url = http://127.0.0.1/\nmax_connections = 8\n"
	            "[stage a]\nprovider = main\nurl = /a\nkey = /id\n");
	if (c) {
		CHECK(!c->providers[0].max_connections_auto);
		CHECK_EQ(c->providers[0].max_connections, 8);
		CHECK_EQ(c->providers[0].max_connections_ceiling, 128);
	}
	config_free(c);
}

static void test_base_url_must_be_an_absolute_http_url(void)
{
	CHECK(fails_with("[provider main]\nbase_url = api.example.com/v1\n",
	                 ":2: [provider main] base_url: 'api.example.com/v1' is not an absolute http:// or https:// URL "
	                 "(it has no scheme)"));
	CHECK(fails_with("[provider main]\nbase_url = ftp://example.com/\n",
	                 ":2: [provider main] base_url: 'ftp://example.com/' is not an absolute http:// or https:// URL "
	                 "(scheme 'ftp')"));
	CHECK(fails_with("[provider main]\nbase_url = /v1\n",
	                 ":2: [provider main] base_url: '/v1' is not an absolute http:// or https:// URL "
	                 "(it has no scheme)"));
	CHECK(fails_with("[provider main]\nbase_url = https://exa mple.com/\n",
	                 ":2: [provider main] base_url: 'https://exa mple.com/' is not an absolute http:// or https:// URL "
	                 "(Bad hostname)"));
	struct config *c = load_ok("[provider main]\nbase_url = http://127.0.0.1:8080\n" MIN_STAGE);
	CHECK(c != NULL);
	config_free(c);
}

static void test_url_templates_need_closed_nonempty_braces(void)
{
	CHECK(fails_with("[stage a]\nurl = /races/{id/entries\n",
	                 ":2: [stage a] url: unclosed '{' in '/races/{id/entries'"));
	CHECK(fails_with("[stage a]\nurl = /races/{}/entries\n",
	                 ":2: [stage a] url: empty '{}' in '/races/{}/entries' (expected {field} or {/json/pointer})"));
	CHECK(fails_with("[stage a]\nurl = /races/{a{b}}\n", ":2: [stage a] url: unclosed '{' in '/races/{a{b}}'"));
	CHECK(fails_with(MIN_PROVIDER "[stage races]\nprovider = main\nkey = /id\nurl = https://bad host/races\n",
	                 ":6: [stage races] url: 'https://bad host/races' is not a valid URL (Bad hostname)"));
}

/* The import reads a url with urltemplate_parse(), so the check does too:
 * a '}' outside a placeholder is literal text, in the check and at run time. */
static void test_stray_close_brace_is_literal_text_as_the_import_reads_it(void)
{
	struct config *c = load_ok(MIN_PROVIDER "[stage races]\nprovider = main\nurl = /races/id}/entries\nkey = /id\n"
	                           "[stage e]\nparent = races\nprovider = main\nurl = /e/{id}}x\nkey = /id\n");
	CHECK(c != NULL);
	if (!c)
		return;
	CHECK_STR(config_stage(c, "races")->url, "/races/id}/entries");
	char err[ERR_MAX] = "", *url = NULL;
	struct urltemplate *t = urltemplate_parse(config_stage(c, "e")->url, err);
	struct jsondoc *d = jsondoc_new();
	CHECK(t && urltemplate_placeholders(t) == 1);
	CHECK(d && jsondoc_parse(d, "{\"id\":7}", 8, JSONDOC_ANY, err) == 0);
	CHECK(t && d && urltemplate_expand(t, d, 0, &url, err) == 0);
	CHECK_STR(url, "/e/7}x");
	free(url);
	jsondoc_free(d);
	urltemplate_free(t);
	config_free(c);
}

static void test_url_placeholder_pointers_must_be_valid(void)
{
	CHECK(fails_with("[stage a]\nurl = /a/{/b~2}\n",
	                 ":2: [stage a] url: a placeholder in '/a/{/b~2}' is not a valid JSON pointer ('~' must be "
	                 "followed by 0 or 1)"));
	struct config *c = load_ok(MIN_PROVIDER MIN_STAGE
	                           "[stage e]\nparent = races\nprovider = main\nurl = /e/{/a~1b/~0}\nkey = /id\n");
	CHECK(c != NULL);
	config_free(c);
}

static void test_root_stage_url_cannot_use_parent_fields(void)
{
	CHECK(fails_with(MIN_PROVIDER "[stage races]\nprovider = main\nkey = /id\nurl = /races/{id}\n",
	                 ":6: [stage races] url: '/races/{id}' uses a field of the parent item, but this is the root "
	                 "stage: it has no parent (the root's url may name only {last_success} and {cursor})"));
}

static void test_missing_required_keys_name_the_section_line(void)
{
	CHECK(fails_with(MIN_PROVIDER MIN_STAGE "\n[provider people]\nmax_retries = 1\n",
	                 ":8: [provider people] missing required key 'base_url'"));
	CHECK(fails_with(MIN_PROVIDER "[stage races]\nurl = /races\nkey = /id\n",
	                 ":3: [stage races] missing required key 'provider'"));
	CHECK(fails_with(MIN_PROVIDER "[stage races]\nprovider = main\nkey = /id\n",
	                 ":3: [stage races] missing required key 'url'"));
	CHECK(fails_with(MIN_PROVIDER "[stage races]\nprovider = main\nurl = /races\n",
	                 ":3: [stage races] missing required key 'key'"));
}

static void test_min_demand_must_be_below_max_demand(void)
{
	CHECK(fails_with(MIN_PROVIDER MIN_STAGE "max_demand = 100\nmin_demand = 100\n",
	                 ":8: [stage races] min_demand (100) must be less than max_demand (100)"));
	CHECK(fails_with(MIN_PROVIDER MIN_STAGE "min_demand = 600\n",
	                 ":7: [stage races] min_demand (600) must be less than max_demand (500)"));
	struct config *c = load_ok(MIN_PROVIDER MIN_STAGE "max_demand = 1\n");
	CHECK(c && c->stages[0].min_demand == 0);
	config_free(c);
}

/* Typed columns: NAME TYPE /POINTER, types in PostgreSQL's spelling;
 * every mistake at its key's line with the fix. */
static void test_columns_and_index_parse_and_name_each_mistake(void)
{
	struct config *c = load_ok(MIN_PROVIDER MIN_STAGE
	                           "columns = bib int /bib, start_time  Timestamptz /start_time ,"
	                           " n double   precision /a~1b, j jsonb /x/0\nindex = j, bib\n");
	CHECK(c && c->stages[0].n_columns == 4);
	if (c && c->stages[0].n_columns == 4) {
		const struct config_column *col = c->stages[0].columns;
		CHECK_STR(col[0].name, "bib");
		CHECK_STR(col[0].type, "integer");
		CHECK_STR(col[0].pointer, "/bib");
		CHECK(col[0].indexed);
		CHECK_STR(col[1].type, "timestamp with time zone");
		CHECK(!col[1].indexed);
		CHECK_STR(col[2].type, "double precision");
		CHECK_STR(col[2].pointer, "/a~1b");
		CHECK(col[3].kind == COLKIND_JSONB && col[3].indexed);
	}
	config_free(c);
	c = load_ok(MIN_PROVIDER MIN_STAGE "columns =\nindex =\n");
	CHECK(c && c->stages[0].n_columns == 0);
	config_free(c);
	CHECK(fails_with(MIN_PROVIDER MIN_STAGE "columns = bib integr /bib\n",
	                 ":7: [stage races] columns: column bib: type 'integr' is not supported (use one "
	                 "of: text, int (integer, int4), bigint (int8), numeric, double precision (float8), "
	                 "boolean (bool), date, timestamptz (timestamp with time zone), timestamp, jsonb)"));
	CHECK(fails_with(MIN_PROVIDER MIN_STAGE "columns = bib int /b~2\n",
	                 ":7: [stage races] columns: column bib: '/b~2' is not a valid JSON pointer (a '/' "
	                 "and a field name, e.g. /bib; '~' must be followed by 0 or 1)"));
	CHECK(fails_with(MIN_PROVIDER MIN_STAGE "columns = bib int bib\n",
	                 ":7: [stage races] columns: entry 1 'bib int bib' is not NAME TYPE /POINTER (e.g. "
	                 "columns = bib int /bib, start_time timestamptz /start_time)"));
	CHECK(fails_with(MIN_PROVIDER MIN_STAGE "columns = payload jsonb /p\n",
	                 ":7: [stage races] columns: column name 'payload' is one of raced's own columns "
	                 "(key, parent_key, payload, first_import, last_import, updated_at, removed_import): "
	                 "choose another name, e.g. payload_value"));
	CHECK(fails_with(MIN_PROVIDER MIN_STAGE "columns = Bib int /bib\n",
	                 ":7: [stage races] columns: column name 'Bib' is not valid: lowercase letters, "
	                 "digits and '_', starting with a letter or '_', at most 48 characters"));
	CHECK(fails_with(MIN_PROVIDER MIN_STAGE "columns = a int /a, a text /b\n",
	                 ":7: [stage races] columns: column a is named twice (entries 1 and 2)"));
	CHECK(fails_with(MIN_PROVIDER MIN_STAGE "columns = a int /a,\n",
	                 ":7: [stage races] columns: entry 2 is empty (e.g. columns = bib int /bib, "
	                 "start_time timestamptz /start_time)"));
	CHECK(fails_with(MIN_PROVIDER MIN_STAGE "columns = a int /a\nindex = b\n",
	                 ":8: [stage races] index: 'b' is not a column of this stage (index names columns "
	                 "of `columns`, e.g. index = a)"));
	CHECK(fails_with(MIN_PROVIDER MIN_STAGE "index = b\n",
	                 ":7: [stage races] index: this stage has no columns to index: declare them first "
	                 "with columns = NAME TYPE /POINTER, ..."));
}

/* [database] schema: quoted by raced, so any name PostgreSQL allows. */
static void test_schema_takes_odd_names_but_not_reserved_ones(void)
{
	struct config *c = load_ok("[database]\nschema = My \"odd\" schema\n" MIN_PROVIDER MIN_STAGE);
	CHECK(c && c->schema && strcmp(c->schema, "My \"odd\" schema") == 0);
	config_free(c);
	CHECK(fails_with("[database]\nschema = pg_raced\n" MIN_PROVIDER MIN_STAGE,
	                 ":2: [database] schema: 'pg_raced' is reserved by PostgreSQL (pg_* and "
	                 "information_schema): choose another name, e.g. raced"));
	CHECK(fails_with("[database]\nschema = "
	                 "a234567890123456789012345678901234567890123456789012345678901234\n"
	                 MIN_PROVIDER MIN_STAGE,
	                 ":2: [database] schema: 'a234567890123456789012345678901234567890123456789012345678901234' "
	                 "is not a schema name: 1 to 63 bytes, no control characters (raced quotes it, so "
	                 "any other character is fine)"));
}

static void test_stages_name_defined_providers_and_parents(void)
{
	CHECK(fails_with(MIN_PROVIDER "[stage races]\nprovider = mian\nurl = /races\nkey = /id\n",
	                 ":4: [stage races] provider 'mian' is not defined (did you mean 'main'?)"));
	CHECK(fails_with(MIN_PROVIDER "[stage races]\nprovider = people\nurl = /races\nkey = /id\n",
	                 ":4: [stage races] provider 'people' is not defined (add a [provider people] section)"));
	CHECK(fails_with(MIN_PROVIDER MIN_STAGE
	                 "[stage entries]\nprovider = main\nurl = /e/{id}\nkey = /id\nparent = race\n",
	                 ":11: [stage entries] parent 'race' is not a stage (did you mean 'races'?)"));
	CHECK(fails_with(MIN_PROVIDER MIN_STAGE
	                 "[stage entries]\nprovider = main\nurl = /e/{id}\nkey = /id\nparent = zzz\n",
	                 ":11: [stage entries] parent 'zzz' is not a stage"));
}

static void test_cycle_of_parents_is_refused(void)
{
	CHECK(fails_with(MIN_PROVIDER MIN_STAGE
	                 "[stage b]\nparent = c\nprovider = main\nurl = /b/{id}\nkey = /id\n"
	                 "[stage c]\nparent = b\nprovider = main\nurl = /c/{id}\nkey = /id\n",
	                 ":8: [stage b] parents form a cycle: b -> c -> b (one stage must have no parent)"));
	CHECK(fails_with(MIN_PROVIDER "[stage a]\nparent = a\nprovider = main\nurl = /a\nkey = /id\n",
	                 ":4: [stage a] parents form a cycle: a -> a (one stage must have no parent)"));
}

static void test_exactly_one_stage_is_the_root(void)
{
	CHECK(fails_with(MIN_PROVIDER MIN_STAGE "[stage other]\nprovider = main\nurl = /other\nkey = /id\n",
	                 ":7: [stage other] has no parent, but [stage races] (line 3) is already the root; exactly one "
	                 "stage may have no parent"));
	CHECK(fails_with(MIN_PROVIDER, ": no [stage NAME] section: a pipeline needs at least one stage"));
	CHECK(fails_with("", ": no [stage NAME] section: a pipeline needs at least one stage"));
}

static void test_stages_are_ordered_parents_first(void)
{
	struct config *c = load_ok(MIN_PROVIDER
	                           "[stage d]\nparent = c\nprovider = main\nurl = /d/{id}\nkey = /id\n"
	                           "[stage b]\nparent = a\nprovider = main\nurl = /b/{id}\nkey = /id\n"
	                           "[stage c]\nparent = a\nprovider = main\nurl = /c/{id}\nkey = /id\n"
	                           "[stage a]\nprovider = main\nurl = /a\nkey = /id\n");
	CHECK(c != NULL);
	if (!c)
		return;
	CHECK_EQ(c->n_stages, 4);
	CHECK_STR(c->stages[0].name, "a");
	CHECK_STR(c->stages[1].name, "b");
	CHECK_STR(c->stages[2].name, "c");
	CHECK_STR(c->stages[3].name, "d");
	CHECK_EQ(config_stage(c, "d")->line, 3);
	CHECK(config_stage(c, "nope") == NULL);
	CHECK(config_provider(c, "nope") == NULL);
	config_free(c);
}

static void test_unreadable_config_file_names_the_path_and_errno(void)
{
	char err[ERR_MAX];
	CHECK(config_load("/nonexistent/raced.conf", err) == NULL);
	CHECK_STR(err, "/nonexistent/raced.conf: cannot open: No such file or directory");
	CHECK(config_load(tmpdir, err) == NULL);
	char want[ERR_MAX];
	snprintf(want, sizeof want, "%s: cannot read: Is a directory", tmpdir);
	CHECK_STR(err, want);
	config_free(NULL);
}

/* ---- tokens ---- */

static void test_token_file_is_read_and_trimmed(void)
{
	char *tok = write_file("main.token", "  s3cret-token\n\n");
	char text[512];
	unsetenv("CREDENTIALS_DIRECTORY");
	snprintf(text, sizeof text, MIN_PROVIDER "token_file = %s\n" MIN_STAGE, tok);
	struct config *c = load_ok(text);
	CHECK_STR(c ? c->providers[0].token : NULL, "s3cret-token");
	CHECK_STR(c ? c->providers[0].token_file : NULL, tok);
	config_free(c);
	/* relative: next to the configuration file (load_text writes into tmpdir) */
	c = load_ok(MIN_PROVIDER "token_file = main.token\n" MIN_STAGE);
	CHECK_STR(c ? c->providers[0].token : NULL, "s3cret-token");
	config_free(c);
	unlink(tok);
	free(tok);
}

static void test_bad_token_file_names_the_file_and_the_reason(void)
{
	char *empty = write_file("empty.token", " \n");
	char *two = write_file("two.token", "abc\ndef\n");
	char text[512], want[ERR_MAX];
	unsetenv("CREDENTIALS_DIRECTORY");
	snprintf(text, sizeof text, MIN_PROVIDER "token_file = %s\n" MIN_STAGE, empty);
	snprintf(want, sizeof want, ":3: [provider main] token_file: '%s' is empty", empty);
	CHECK(fails_with(text, want));
	snprintf(text, sizeof text, MIN_PROVIDER "token_file = %s\n" MIN_STAGE, two);
	snprintf(want, sizeof want,
	         ":3: [provider main] token_file: '%s' holds more than one line or control characters; it must hold "
	         "just the token", two);
	CHECK(fails_with(text, want));
	CHECK(fails_with(MIN_PROVIDER "token_file = /nonexistent/main.token\n" MIN_STAGE,
	                 ":3: [provider main] token_file: cannot read '/nonexistent/main.token': No such file or directory"));
	unlink(empty);
	unlink(two);
	free(empty);
	free(two);
}

/* ---- TLS (issue 17) ---- */

static void test_ca_file_and_http_version(void)
{
	char *ca = write_file("ca.pem", "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n");
	struct config *c = load_ok(MIN_PROVIDER MIN_STAGE);
	CHECK(c && c->providers[0].ca_file == NULL && c->providers[0].ca_path == NULL);
	CHECK(c && c->providers[0].http_version == TLS_HTTP_AUTO);
	config_free(c);
	/* relative: next to the configuration file, as token_file */
	c = load_ok(MIN_PROVIDER "ca_file = ca.pem\nhttp_version = 1.1\n" MIN_STAGE);
	CHECK_STR(c ? c->providers[0].ca_file : NULL, "ca.pem");
	CHECK_STR(c ? c->providers[0].ca_path : NULL, ca);
	CHECK(c && c->providers[0].http_version == TLS_HTTP_1_1);
	config_free(c);
	c = load_ok(MIN_PROVIDER "http_version = 2\n" MIN_STAGE);
	CHECK(c && c->providers[0].http_version == TLS_HTTP_2);
	config_free(c);
	unlink(ca);
	free(ca);
}

static void test_bad_ca_file_names_the_file_the_reason_and_the_fix(void)
{
	char *nocert = write_file("nocert.pem", "just text\n");
	char text[512], want[ERR_MAX];
	CHECK(fails_with(MIN_PROVIDER "ca_file = /nonexistent/ca.pem\n" MIN_STAGE,
	                 ":3: [provider main] ca_file: cannot open /nonexistent/ca.pem: No such file or directory; "
	                 "set ca_file to a readable PEM file of the CA certificates to trust"));
	snprintf(text, sizeof text, MIN_PROVIDER "ca_file = %s\n" MIN_STAGE, nocert);
	snprintf(want, sizeof want, ":3: [provider main] ca_file: %s holds no PEM certificate (no \"-----BEGIN "
	         "CERTIFICATE-----\" line); set ca_file to a readable PEM file of the CA certificates to trust", nocert);
	CHECK(fails_with(text, want));
	snprintf(text, sizeof text, MIN_PROVIDER "ca_file = %s\n" MIN_STAGE, tmpdir);
	snprintf(want, sizeof want, ":3: [provider main] ca_file: %s is not a regular file; set ca_file to a "
	         "readable PEM file of the CA certificates to trust", tmpdir);
	CHECK(fails_with(text, want));
	char err[ERR_MAX] = "";
	struct config *c = load_text(MIN_PROVIDER "http_version = 3\n" MIN_STAGE, err);
	CHECK(!c && strstr(err, ":3: [provider main]") && strstr(err, "http_version"));
	config_free(c);
	unlink(nocert);
	free(nocert);
}

/* h2c with a libcurl that fails it (tls.h) is refused, naming the line,
 * the libcurl and the fix; with one that speaks it, taken. */
static void test_http_version_2_over_plain_http_needs_a_libcurl_that_speaks_it(void)
{
	const char *text = "[provider main]\nbase_url = http://api.example.com/v1\nhttp_version = 2\n" MIN_STAGE;
	const curl_version_info_data *ci = curl_version_info(CURLVERSION_NOW);
	if (ci->version_num >= TLS_H2C_MIN_LIBCURL) {
		struct config *c = load_ok(text);
		CHECK(c && c->providers[0].http_version == TLS_HTTP_2);
		config_free(c);
		return;
	}
	char want[ERR_MAX];
	snprintf(want, sizeof want, ":3: [provider main] http_version: 2 over plain http (an http base_url) "
	         "needs libcurl 8.0.0 or later: this libcurl, %s, fails every request after the first on an "
	         "HTTP/2 connection without TLS (curl issue 10634); set http_version = auto (HTTP/2 over https, "
	         "HTTP/1.1 over http) or 1.1", ci->version);
	CHECK(fails_with(text, want));
	/* over https the same libcurl is fine */
	struct config *c = load_ok(MIN_PROVIDER "http_version = 2\n" MIN_STAGE);
	CHECK(c && c->providers[0].http_version == TLS_HTTP_2);
	config_free(c);
}

static void test_token_comes_from_credentials_directory_when_present(void)
{
	char creds[] = "/tmp/raced-test-creds-XXXXXX";
	CHECK(mkdtemp(creds) != NULL);
	char *path;
	if (asprintf(&path, "%s/main.token", creds) < 0)
		abort();
	FILE *f = fopen(path, "w");
	fputs("cred-token\n", f);
	fclose(f);
	setenv("CREDENTIALS_DIRECTORY", creds, 1);
	struct config *c = load_ok(MIN_PROVIDER "[provider people]\nbase_url = https://people.example.org\n" MIN_STAGE);
	CHECK_STR(c ? config_provider(c, "main")->token : NULL, "cred-token");
	CHECK(c && config_provider(c, "people")->token == NULL); /* absent: fine */
	CHECK(c && config_provider(c, "main")->token_file == NULL);
	config_free(c);

	/* present but unreadable: an error naming the section's line */
	unlink(path);
	mkdir(path, 0700);
	char want[ERR_MAX];
	snprintf(want, sizeof want, ":1: [provider main] cannot read credential '%s': Is a directory", path);
	CHECK(fails_with(MIN_PROVIDER MIN_STAGE, want));
	rmdir(path);
	f = fopen(path, "w");
	fclose(f);
	snprintf(want, sizeof want, ":1: [provider main] credential '%s' is empty", path);
	CHECK(fails_with(MIN_PROVIDER MIN_STAGE, want));
	unsetenv("CREDENTIALS_DIRECTORY");
	unlink(path);
	rmdir(creds);
	free(path);
}

/* ---- auth and static headers ---- */

static void test_auth_defaults_to_bearer_with_a_token_else_none(void)
{
	char *tok = write_file("main.token", "t0k\n");
	unsetenv("CREDENTIALS_DIRECTORY");
	struct config *c = load_ok(MIN_PROVIDER "token_file = main.token\n" MIN_STAGE);
	CHECK_EQ(c ? (int)c->providers[0].auth : -1, AUTH_BEARER);
	config_free(c);
	c = load_ok(MIN_PROVIDER MIN_STAGE);
	CHECK_EQ(c ? (int)c->providers[0].auth : -1, AUTH_NONE);
	config_free(c);
	unlink(tok);
	free(tok);
}

static void test_each_method_reads_its_secret_and_names(void)
{
	char *tok = write_file("main.token", "t0k\n");
	char *pw = write_file("main.password", " pa ss \n");
	unsetenv("CREDENTIALS_DIRECTORY");
	struct config *c = load_ok(MIN_PROVIDER "auth = basic\nusername = u\npassword_file = main.password\n"
	                           "header = Accept: application/vnd.x+json\nheader = X-Api-Version: 2\n" MIN_STAGE);
	CHECK_EQ(c ? (int)c->providers[0].auth : -1, AUTH_BASIC);
	CHECK_STR(c ? c->providers[0].password : NULL, "pa ss");
	CHECK_EQ(c ? c->providers[0].n_headers : 0, 2);
	CHECK_STR(c ? c->providers[0].headers[1] : NULL, "X-Api-Version: 2");
	CHECK_EQ(c ? c->providers[0].header_lines[1] : 0, 7);
	config_free(c);
	c = load_ok(MIN_PROVIDER "auth = query\nauth_param = api_key\ntoken_file = main.token\n" MIN_STAGE);
	CHECK_STR(c ? c->providers[0].auth_param : NULL, "api_key");
	CHECK_STR(c ? c->providers[0].token : NULL, "t0k");
	config_free(c);
	unlink(tok);
	unlink(pw);
	free(tok);
	free(pw);
}

static void test_auth_errors_name_the_line_the_key_and_the_fix(void)
{
	char *tok = write_file("main.token", "t0k\n");
	char *empty = write_file("empty.password", "\n");
	char text[512], want[ERR_MAX];
	unsetenv("CREDENTIALS_DIRECTORY");
	CHECK(fails_with(MIN_PROVIDER "auth = digest\n" MIN_STAGE,
	                 ":3: [provider main] auth: 'digest' is not valid (expected none, bearer, basic, header or query)"));
	CHECK(fails_with(MIN_PROVIDER "auth = basic\n" MIN_STAGE,
	                 ":3: [provider main] auth = basic needs username = NAME"));
	CHECK(fails_with(MIN_PROVIDER "auth = basic\nusername = u\n" MIN_STAGE,
	                 ":3: [provider main] auth = basic needs a password: set password_file = PATH (a file holding "
	                 "just the password), or give systemd the credential main.password"));
	snprintf(text, sizeof text, MIN_PROVIDER "auth = basic\nusername = u\npassword_file = %s\n" MIN_STAGE, empty);
	snprintf(want, sizeof want, ":5: [provider main] password_file: '%s' is empty", empty);
	CHECK(fails_with(text, want));
	CHECK(fails_with(MIN_PROVIDER "auth = header\ntoken_file = main.token\n" MIN_STAGE,
	                 ":3: [provider main] auth = header needs auth_header = HEADER-NAME (e.g. X-Api-Key)"));
	CHECK(fails_with(MIN_PROVIDER "auth = header\nauth_header = Host\ntoken_file = main.token\n" MIN_STAGE,
	                 ":4: [provider main] auth_header Host cannot be used: raced or libcurl sets it for every "
	                 "request"));
	CHECK(fails_with(MIN_PROVIDER "auth = query\nauth_param = api_key\n" MIN_STAGE,
	                 ":3: [provider main] auth = query needs a token: set token_file = PATH (a file holding just the "
	                 "token), or give systemd the credential main.token"));
	CHECK(fails_with(MIN_PROVIDER "username = u\n" MIN_STAGE,
	                 ":3: [provider main] username is for auth = basic, but auth is none: remove username or set "
	                 "auth = basic"));
	CHECK(fails_with(MIN_PROVIDER "auth = none\ntoken_file = main.token\n" MIN_STAGE,
	                 ":4: [provider main] token_file is for auth = bearer, header or query, but auth is none: remove "
	                 "token_file or set auth = bearer"));
	CHECK(fails_with("[provider main]\nbase_url = https://u:pw@api.example.com/v1\ntoken_file = main.token\n"
	                 MIN_STAGE,
	                 ":1: [provider main] base_url holds user:password, which is basic auth by itself, and auth is "
	                 "bearer: use one (for basic auth, better auth = basic with username and password_file)"));
	unlink(tok);
	unlink(empty);
	free(tok);
	free(empty);
}

static void test_static_headers_are_checked_where_they_are_set(void)
{
	CHECK(fails_with(MIN_PROVIDER "header = Accept application/json\n" MIN_STAGE,
	                 ":3: [provider main] header: 'Accept ' is not a header name followed by ':' (expected e.g. "
	                 "header = Accept: application/vnd.api+json; a name is letters, digits and !#$%&'*+-.^_`|~)"));
	CHECK(fails_with(MIN_PROVIDER "header = If-None-Match: x\n" MIN_STAGE,
	                 ":3: [provider main] header: header If-None-Match cannot be set here: raced or libcurl sets it "
	                 "for every request (remove this line)"));
	CHECK(fails_with(MIN_PROVIDER "header = Accept: a/b\nheader = X-V: 1\nheader = accept: c/d\n" MIN_STAGE,
	                 ":5: [provider main] header accept is set twice (first on line 3): keep one"));
	char *tok = write_file("main.token", "t0k\n");
	CHECK(fails_with(MIN_PROVIDER "token_file = main.token\nheader = X-V: 1\nheader = Authorization: Basic eA==\n"
	                 MIN_STAGE,
	                 ":5: [provider main] header: header Authorization cannot be set here: auth sets it (remove "
	                 "this line)"));
	unlink(tok);
	free(tok);
}

/* ---- reload summaries ---- */

/* [daemon] metrics: loopback host:port (brackets dropped) or a socket path. */
static void test_metrics_address_is_loopback_or_a_socket_path(void)
{
	struct config_listen l;
	char msg[ERR_MAX];
	CHECK_EQ(config_listen_parse("127.0.0.1:9187", &l, msg, sizeof msg), 0);
	CHECK_STR(l.host, "127.0.0.1");
	CHECK_EQ(l.port, 9187);
	CHECK(l.path == NULL);
	CHECK_EQ(config_listen_parse("127.8.9.10:1", &l, msg, sizeof msg), 0);
	CHECK_EQ(config_listen_parse("[::1]:65535", &l, msg, sizeof msg), 0);
	CHECK_STR(l.host, "::1");
	CHECK_EQ(l.port, 65535);
	CHECK_EQ(config_listen_parse("/run/raced/metrics.sock", &l, msg, sizeof msg), 0);
	CHECK_STR(l.path, "/run/raced/metrics.sock");
	CHECK_EQ(config_listen_parse("10.0.0.1:9187", &l, msg, sizeof msg), -1);
	CHECK(strstr(msg, "'10.0.0.1:9187' is not a loopback address") != NULL);
	CHECK_EQ(config_listen_parse("[::]:9187", &l, msg, sizeof msg), -1);
	CHECK_EQ(config_listen_parse("127.0.0.1:65536", &l, msg, sizeof msg), -1);
	CHECK(strstr(msg, "is not an address: expected a loopback address") != NULL);
	CHECK_EQ(config_listen_parse(":9187", &l, msg, sizeof msg), -1);
}

static void test_describe_changes_lists_each_change_once(void)
{
	struct config *a = load_ok("[database]\nconninfo = dbname=a password=x\n" MIN_PROVIDER MIN_STAGE
	                           "[stage x]\nparent = races\nprovider = main\nurl = /x/{id}\nkey = /id\n");
	struct config *b = load_ok("[database]\nconninfo = dbname=b password=y\n" MIN_PROVIDER "rate_limit = 50\n"
	                           "[daemon]\ncontrol_socket = /run/other.sock\n"
	                           "[provider people]\nbase_url = https://people.example.org\n" MIN_STAGE
	                           "concurrency = 4\nnext = /next\n"
	                           "[stage y]\nparent = races\nprovider = people\nurl = /y/{id}\nkey = /id\n");
	char buf[1024];
	CHECK(a && b);
	if (!a || !b)
		goto out;
	config_describe_changes(a, b, buf, sizeof buf);
	CHECK_STR(buf, "[daemon] control_socket '/run/raced/raced.sock' -> '/run/other.sock' (at the next restart); "
	               "[database] conninfo 'password=*** dbname=a' -> 'password=*** dbname=b'; "
	               "[provider main] rate_limit 0 -> 50; provider 'people' added; "
	               "[stage races] next none -> /next; [stage races] concurrency 1 -> 4; "
	               "stage 'y' added; stage 'x' removed");
	CHECK(!strstr(buf, "password=x") && !strstr(buf, "password=y")); /* named and masked, never shown */
	config_describe_changes(a, a, buf, sizeof buf);
	CHECK_STR(buf, "nothing changed");

	char small[40];
	memset(small, '#', sizeof small);
	config_describe_changes(a, b, small, sizeof small);
	CHECK_EQ(strlen(small), sizeof small - 1);
	CHECK(strcmp(small + sizeof small - 4, "...") == 0);
	char tiny[2] = "##";
	config_describe_changes(a, b, tiny, sizeof tiny);
	CHECK_EQ(tiny[1], '\0');
	config_describe_changes(a, b, tiny, 0); /* writes nothing */
out:
	config_free(a);
	config_free(b);
}

/* ---- racectl config and live reload (issue 19, item 6) ---- */

struct shown {
	char text[8192];
	size_t used;
};

/* "section[ name].key=value@line/when" lines, value "(unset)" when NULL. */
static void show_entry(void *arg, const struct config_entry *e)
{
	struct shown *sh = arg;
	int w = snprintf(sh->text + sh->used, sizeof sh->text - sh->used, "%s%s%s.%s=%s@%u/%s%s\n", e->section,
	                 e->name ? " " : "", e->name ? e->name : "", e->key, e->value ? e->value : "(unset)", e->line,
	                 config_when_names[e->when], e->derived ? "/derived" : "");
	if (w > 0 && (size_t)w < sizeof sh->text - sh->used)
		sh->used += (size_t)w;
}

static void test_each_entry_lists_every_key_with_its_line_or_default_and_masks_secrets(void)
{
	char *tok = write_file("main.token", "s3cr3t-token\n");
	char text[1024];
	snprintf(text, sizeof text,
	         "[daemon]\nmax_clients = 8\n"
	         "[database]\nconninfo = host=/tmp dbname=r password=hunter2\n"
	         "[provider main]\nbase_url = https://bob:pa55@api.example.com/v1\n"
	         "\n"
	         "\n"
	         "rate_limit = 5\n" MIN_STAGE
	         "[provider other]\nbase_url = https://api2.example.com/v1\ntoken_file = %s\n", tok);
	struct config *c = load_ok(text);
	struct shown sh = {.used = 0};
	CHECK(c != NULL);
	if (!c)
		goto out;
	config_each_entry(c, show_entry, &sh);
	CHECK(strstr(sh.text, "daemon.max_clients=8@2/live\n") != NULL);
	CHECK(strstr(sh.text, "daemon.control_socket=/run/raced/raced.sock@0/restart\n") != NULL);
	CHECK(strstr(sh.text, "daemon.metrics=(unset)@0/restart\n") != NULL);
	CHECK(strstr(sh.text, "database.conninfo=") && strstr(sh.text, "password=***") &&
	      strstr(strstr(sh.text, "database.conninfo="), "@4/between_imports\n"));
	CHECK(strstr(sh.text, "database.batch_size=500@0/live\n") != NULL);
	CHECK(strstr(sh.text, "provider main.base_url=https://bob:***@api.example.com/v1@6/between_imports\n") != NULL);
	CHECK(strstr(sh.text, "provider main.rate_limit=5@9/live\n") != NULL);
	CHECK(strstr(sh.text, "provider main.timeout=30s@0/live\n") != NULL);
	CHECK(strstr(sh.text, "stage races.url=/races@12/between_imports\n") != NULL);
	CHECK(strstr(sh.text, "stage races.concurrency=1@0/live/derived\n") != NULL);
	CHECK(!strstr(sh.text, "hunter2") && !strstr(sh.text, "pa55") && !strstr(sh.text, "s3cr3t"));
	/* every key of the table, once per section */
	size_t lines = 0;
	for (const char *p = sh.text; (p = strchr(p, '\n')); p++)
		lines++;
	size_t want = 0;
	for (size_t i = 0; i < config_n_keys; i++)
		want += config_keys[i].section <= SECT_DATABASE || config_keys[i].section == SECT_STAGE ? 1
		        : config_keys[i].section == SECT_PROVIDER                                     ? 2 /* main, other */
		                                                                                       : 0;
	CHECK_EQ(lines, want);
out:
	config_free(c);
	unlink(tok);
	free(tok);
}

struct changes {
	char when[3][1024];
};

static void collect_change(void *arg, enum config_when when, const char *text)
{
	struct changes *ch = arg;
	size_t used = strlen(ch->when[when]);
	snprintf(ch->when[when] + used, sizeof ch->when[when] - used, "%s%s", used ? "; " : "", text);
}

static void test_changes_are_classed_by_when_a_reload_applies_them(void)
{
	struct config *a = load_ok("[database]\nconninfo = dbname=a\n" MIN_PROVIDER MIN_STAGE);
	struct config *b = load_ok("[daemon]\ncontrol_socket = /run/o.sock\n[database]\nconninfo = dbname=b\n"
	                           "max_outage = 1m\n" MIN_PROVIDER "rate_limit = 50\nmax_connections = 2\n" MIN_STAGE
	                           "concurrency = 4\n");
	struct changes ch;
	memset(&ch, 0, sizeof ch);
	CHECK(a && b);
	if (!a || !b)
		goto out;
	config_each_change(a, b, collect_change, &ch);
	CHECK_STR(ch.when[CONFIG_WHEN_LIVE], "[database] max_outage 5m -> 1m; [provider main] max_connections 16 -> 2; "
	                                     "[provider main] rate_limit 0 -> 50; [stage races] concurrency 1 -> 4");
	CHECK_STR(ch.when[CONFIG_WHEN_BETWEEN], "[database] conninfo 'dbname=a' -> 'dbname=b'");
	CHECK_STR(ch.when[CONFIG_WHEN_RESTART], "[daemon] control_socket '/run/raced/raced.sock' -> '/run/o.sock'");
	CHECK(!config_store_same(a, b));
out:
	config_free(a);
	config_free(b);
}

static void test_apply_live_copies_live_values_and_lines_only(void)
{
	struct config *a = load_ok("[daemon]\nadmin_group = a\n[database]\nconninfo = dbname=a\n" MIN_PROVIDER MIN_STAGE);
	struct config *b = load_ok("# a comment moves every line\n[daemon]\nadmin_group = b\n[database]\n"
	                           "conninfo = dbname=b\n" MIN_PROVIDER "rate_limit = 50\n" MIN_STAGE "concurrency = 4\n");
	CHECK(a && b);
	if (!a || !b)
		goto out;
	CHECK_EQ(config_apply_live(a, b), 3);
	CHECK(a->providers[0].rate_limit == 50);
	CHECK_STR(a->admin_group, "b");
	CHECK_STR(a->conninfo, "dbname=a");          /* between imports: waits */
	CHECK_EQ(a->stages[0].concurrency, 4u);   /* live */
	CHECK_STR(a->stages[0].url, "/races");
	const struct key_def *url = NULL, *conninfo = NULL;
	for (size_t i = 0; i < config_n_keys; i++) {
		if (config_keys[i].section == SECT_STAGE && strcmp(config_keys[i].name, "url") == 0)
			url = &config_keys[i];
		if (strcmp(config_keys[i].name, "conninfo") == 0)
			conninfo = &config_keys[i];
	}
	CHECK(url && conninfo);
	if (url && conninfo) {
		CHECK_EQ(a->stages[0].key_line[url - config_keys], b->stages[0].key_line[url - config_keys]);
		CHECK_EQ(a->key_line[conninfo - config_keys], 4u); /* the old value's line stays (b has it on 5) */
	}
	CHECK_EQ(config_apply_live(a, b), 0);
	/* restart keys: the next configuration says what is in force */
	struct config *r = load_ok("[daemon]\ncontrol_socket = /run/o.sock\nresume = no\n" MIN_PROVIDER MIN_STAGE);
	CHECK(r != NULL);
	if (r) {
		CHECK_EQ(config_keep_restart(r, a), 0);
		CHECK_STR(r->control_socket, "/run/raced/raced.sock");
		CHECK_EQ(r->resume, CONFIG_RESUME_AUTO);
		CHECK(r->metrics == NULL);
	}
	config_free(r);
	for (size_t i = 0; i < config_n_keys; i++)
		if (config_keys[i].flags & KF_RESTART)
			CHECK_EQ(config_keys[i].section, SECT_DAEMON); /* config_keep_restart's assumption */
	/* synchronous_commit is [database]: another store; batch_size is live,
	 * given to the store kept */
	struct config *c = load_ok("[database]\nconninfo = dbname=a\nsynchronous_commit = off\n" MIN_PROVIDER MIN_STAGE);
	struct config *c2 = load_ok("[database]\nconninfo = dbname=a\nbatch_size = 7\n" MIN_PROVIDER MIN_STAGE);
	CHECK(c2 && config_store_same(a, c2));
	config_free(c2);
	struct config *d = load_ok("[database]\nconninfo = dbname=a\n" MIN_PROVIDER "rate_limit = 3\n" MIN_STAGE);
	struct config *e = load_ok("[database]\nconninfo = dbname=a\n" MIN_PROVIDER MIN_STAGE
	                           "[stage x]\nparent = races\nprovider = main\nurl = /x/{id}\nkey = /id\n");
	CHECK(c && d && e);
	if (c && d && e) {
		CHECK(!config_store_same(a, c));
		CHECK(config_store_same(a, d));  /* a provider's key: the same store */
		CHECK(!config_store_same(d, e)); /* another table */
	}
	/* typed columns are set up as the store connects: another store */
	struct config *f = load_ok("[database]\nconninfo = dbname=a\n" MIN_PROVIDER MIN_STAGE "columns = n int /n\n");
	CHECK(f && d && !config_store_same(d, f));
	config_free(f);
	config_free(c);
	config_free(d);
	config_free(e);
out:
	config_free(a);
	config_free(b);
}

/* ---- import state across runs (issues 15 and 20) ---- */

#define ROOT_HEAD MIN_PROVIDER "[stage races]\nprovider = main\nkey = /id\n"
#define CHILD_ENTRIES "[stage entries]\nparent = races\nprovider = main\nurl = /races/{id}/entries\nkey = /id\n"

static void test_state_keys_default_to_revalidate_resume_and_durable_commits(void)
{
	struct config *c = load_ok(MIN_PROVIDER MIN_STAGE CHILD_ENTRIES);
	CHECK(c != NULL);
	if (!c)
		return;
	CHECK_EQ(c->resume, CONFIG_RESUME_AUTO);
	CHECK_EQ(c->synchronous_commit, CONFIG_SYNC_ON);
	CHECK_STR(config_synchronous_commit_values[c->synchronous_commit], "on");
	CHECK_EQ(c->max_outage_ms, 300000);
	for (size_t i = 0; i < 2; i++) {
		CHECK_EQ(c->stages[i].refresh_ms, 0);
		CHECK_EQ(c->stages[i].lag_ms, 0);
		CHECK(c->stages[i].cursor == NULL && c->stages[i].initial == NULL);
	}
	config_free(c);
}

static void test_state_keys_are_read_in_their_sections(void)
{
	struct config *c = load_ok("[daemon]\nresume = no\n[database]\nsynchronous_commit = remote_apply\n"
	                           "max_outage = 0\n" ROOT_HEAD "url = /races?after={cursor}\ncursor = /updated_at\n"
	                           "lag = 10m\ninitial = 2024-01-01T00:00:00Z\n"
	                           "[stage entries]\nparent = races\nprovider = main\nurl = /e/{id}\nkey = /id\n"
	                           "refresh = 1h\n");
	CHECK(c != NULL);
	if (!c)
		return;
	CHECK_EQ(c->resume, CONFIG_RESUME_NO);
	CHECK_STR(config_synchronous_commit_values[c->synchronous_commit], "remote_apply");
	CHECK_EQ(c->max_outage_ms, 0);
	const struct stage_conf *r = config_stage(c, "races");
	CHECK_STR(r->cursor, "/updated_at");
	CHECK_EQ(r->lag_ms, 600000);
	CHECK_STR(r->initial, "2024-01-01T00:00:00Z");
	CHECK_EQ(config_stage(c, "entries")->refresh_ms, 3600000);
	config_free(c);
	c = load_ok(ROOT_HEAD "url = /races?since={last_success}\ninitial = 2024-01-01\n");
	CHECK(c && strcmp(config_stage(c, "races")->initial, "2024-01-01") == 0);
	config_free(c);
	c = load_ok(ROOT_HEAD "url = /races?after={cursor}\ncursor = /seq\ninitial = -1.5\n");
	CHECK(c != NULL);
	config_free(c);
}

static void test_choices_and_state_values_say_what_is_accepted(void)
{
	CHECK(fails_with("[daemon]\nresume = yes\n", ":2: [daemon] resume: 'yes' is not valid (expected no or auto)"));
	CHECK(fails_with("[database]\nsynchronous_commit = maybe\n",
	                 ":2: [database] synchronous_commit: 'maybe' is not valid (expected on, off, local, remote_write "
	                 "or remote_apply)"));
	CHECK(fails_with("[database]\nmax_outage = soon\n",
	                 ":2: [database] max_outage: 'soon' is not a duration (expected a whole number with ms, s, m, h "
	                 "or d, e.g. 250ms, 30s, 2m, 1h; a bare number is seconds)"));
	CHECK(fails_with(MIN_PROVIDER MIN_STAGE "refresh = 1 week\n",
	                 ":7: [stage races] refresh: '1 week' is not a duration (expected a whole number with ms, s, m, h "
	                 "or d, e.g. 250ms, 30s, 2m, 1h; a bare number is seconds)"));
	CHECK(fails_with(ROOT_HEAD "url = /r?a={cursor}\ninitial = 0\ncursor = updated_at\n",
	                 ":8: [stage races] cursor: 'updated_at' is not a JSON pointer (expected a pointer starting with "
	                 "'/', e.g. /updated_at)"));
	CHECK(fails_with(ROOT_HEAD "url = /r?a={cursor}\ninitial = 0\ncursor = /a~2\n",
	                 ":8: [stage races] cursor: '/a~2' is not a valid JSON pointer ('~' must be followed by 0 or 1; "
	                 "write ~1 for '/' and ~0 for '~' in a name)"));
	CHECK(fails_with(ROOT_HEAD "url = /r?a={cursor}\ninitial = 0\ncursor =\n",
	                 ":8: [stage races] cursor: empty value (a value is required)"));
	const char *bad_initial[] = {"yesterday", "2024-02-30", "2024-01-01T10:00", "2024-13-01", "1e5", "--1",
	                             "2024-01-01T25:00:00Z", "2024-01-01 10:00:00Z", "1.", ""};
	for (size_t i = 0; i < sizeof bad_initial / sizeof bad_initial[0]; i++) {
		char text[512], tail[512];
		snprintf(text, sizeof text, ROOT_HEAD "url = /r?a={cursor}\ncursor = /x\ninitial = %s\n", bad_initial[i]);
		if (!*bad_initial[i])
			snprintf(tail, sizeof tail, ":8: [stage races] initial: empty value (a value is required)");
		else
			snprintf(tail, sizeof tail, ":8: [stage races] initial: '%s' is neither an ISO 8601 timestamp nor a "
			         "number (expected e.g. 2024-01-01T00:00:00Z, 2024-01-01 or 0)", bad_initial[i]);
		CHECK(fails_with(text, tail));
	}
	const char *good_initial[] = {"2024-02-29", "2024-01-01T10:00Z", "2024-01-01T10:00:00.123+02:00",
	                              "2024-01-01T10:00:00-0130", "0", "-3", "12.25"};
	for (size_t i = 0; i < sizeof good_initial / sizeof good_initial[0]; i++) {
		char text[512];
		snprintf(text, sizeof text, ROOT_HEAD "url = /r?a={cursor}\ncursor = /x\ninitial = %s\n",
		         good_initial[i]);
		struct config *c = load_ok(text);
		CHECK(c != NULL);
		config_free(c);
	}
}

static void test_cursor_lag_and_initial_belong_to_the_root_only(void)
{
	CHECK(fails_with(MIN_PROVIDER MIN_STAGE CHILD_ENTRIES "cursor = /updated_at\n",
	                 ":12: [stage entries] cursor: only the root stage (the one without a parent) may set it; this "
	                 "stage's parent is 'races': move cursor to the root stage or remove it"));
	/* the parent may come after the key: the check waits for the section's end */
	CHECK(fails_with(MIN_PROVIDER MIN_STAGE "[stage entries]\nlag = 5m\nparent = races\nprovider = main\n"
	                 "url = /races/{id}/entries\nkey = /id\n",
	                 ":8: [stage entries] lag: only the root stage (the one without a parent) may set it; this "
	                 "stage's parent is 'races': move lag to the root stage or remove it"));
	CHECK(fails_with(MIN_PROVIDER MIN_STAGE CHILD_ENTRIES "initial = 0\n",
	                 ":12: [stage entries] initial: only the root stage (the one without a parent) may set it; this "
	                 "stage's parent is 'races': move initial to the root stage or remove it"));
	/* refresh is any stage's */
	struct config *c = load_ok(MIN_PROVIDER MIN_STAGE "refresh = 30m\n" CHILD_ENTRIES "refresh = 7d\n");
	CHECK(c && c->stages[0].refresh_ms == 1800000 && c->stages[1].refresh_ms == 604800000);
	config_free(c);
}

static void test_root_placeholders_need_their_settings(void)
{
	CHECK(fails_with(ROOT_HEAD "url = /races?since={last_success}\n",
	                 ":6: [stage races] url: '{last_success}' needs 'initial', the value the first import uses "
	                 "(e.g. initial = 2024-01-01T00:00:00Z)"));
	CHECK(fails_with(ROOT_HEAD "url = /races?after={cursor}\ninitial = 0\n",
	                 ":6: [stage races] url: '{cursor}' needs 'cursor = /pointer', the field of the root's items "
	                 "whose largest stored value it stands for (e.g. cursor = /updated_at)"));
	CHECK(fails_with(ROOT_HEAD "url = /races?after={cursor}\ncursor = /seq\n",
	                 ":6: [stage races] url: '{cursor}' needs 'initial', the value the first import uses "
	                 "(e.g. initial = 2024-01-01T00:00:00Z or initial = 0)"));
	CHECK(fails_with(ROOT_HEAD "url = /races?since={last_success}\ninitial = 0\n",
	                 ":7: [stage races] initial: '0' is not an ISO 8601 timestamp, but {last_success} is a time "
	                 "(expected e.g. 2024-01-01T00:00:00Z)"));
	CHECK(fails_with(MIN_PROVIDER MIN_STAGE "cursor = /updated_at\n",
	                 ":7: [stage races] cursor: set, but url '/races' does not use {cursor}: add {cursor} to the url "
	                 "or remove cursor"));
	CHECK(fails_with(MIN_PROVIDER MIN_STAGE "initial = 0\n",
	                 ":7: [stage races] initial: set, but url '/races' uses neither {last_success} nor {cursor}: add "
	                 "one to the url or remove initial"));
	CHECK(fails_with(MIN_PROVIDER MIN_STAGE "lag = 1m\n",
	                 ":7: [stage races] lag: set, but url '/races' uses neither {last_success} nor {cursor}: add one "
	                 "to the url or remove lag"));
}

static void test_root_placeholders_are_refused_in_a_child_stage(void)
{
	CHECK(fails_with(MIN_PROVIDER MIN_STAGE "[stage entries]\nparent = races\nprovider = main\nkey = /id\n"
	                 "url = /e?since={last_success}\n",
	                 ":11: [stage entries] url: '{last_success}' may only be used in the root stage's url (it is the "
	                 "import's state, not a field of the parent item); to use a parent field of that name write "
	                 "{/last_success}"));
	CHECK(fails_with(MIN_PROVIDER MIN_STAGE "[stage entries]\nparent = races\nprovider = main\nkey = /id\n"
	                 "url = /e/{cursor}\n",
	                 ":11: [stage entries] url: '{cursor}' may only be used in the root stage's url (it is the "
	                 "import's state, not a field of the parent item); to use a parent field of that name write "
	                 "{/cursor}"));
	struct config *c = load_ok(MIN_PROVIDER MIN_STAGE "[stage entries]\nparent = races\nprovider = main\n"
	                           "key = /id\nurl = /e/{/cursor}\n");
	CHECK(c != NULL);
	config_free(c);
}

/* The root's url with {last_success} and {cursor} is a template the
 * import expands with named values (urltemplate_expand_named). */
static void test_root_url_with_state_placeholders_expands_with_named_values(void)
{
	struct config *c = load_ok(ROOT_HEAD "url = /races?since={last_success}&after={cursor}\ncursor = /seq\n"
	                           "initial = 2024-01-01T00:00:00Z\n");
	CHECK(c != NULL);
	if (!c)
		return;
	char err[ERR_MAX] = "", *url = NULL;
	struct urltemplate *t = urltemplate_parse(config_stage(c, "races")->url, err);
	const struct urltemplate_value v[] = {{CONFIG_URL_LAST_SUCCESS, "2024-01-01T00:00:00Z"},
	                                      {CONFIG_URL_CURSOR, "41"}};
	CHECK(t && urltemplate_expand_named(t, v, 2, &url, err) == 0);
	CHECK_STR(url, "/races?since=2024-01-01T00%3A00%3A00Z&after=41");
	free(url);
	urltemplate_free(t);
	config_free(c);
}

/* raced names its connection unless the conninfo does: a keyword, a URI
 * parameter (after ? or &), or nothing added. */
static void test_conninfo_gets_an_application_name_unless_it_has_one(void)
{
	static const char *const cases[][2] = {
		{ "dbname=races", "fallback_application_name=raced dbname=races" },
		{ "", "fallback_application_name=raced" },
		{ "postgresql:///races", "postgresql:///races?fallback_application_name=raced" },
		{ "postgres://u@/races?host=/run", "postgres://u@/races?host=/run&fallback_application_name=raced" },
		{ "dbname=races application_name=etl", "dbname=races application_name=etl" },
		{ "postgresql:///races?application_name=etl", "postgresql:///races?application_name=etl" },
		{ "dbname=races fallback_application_name=x", "dbname=races fallback_application_name=x" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char *got = config_value_conninfo_named(cases[i][0], "raced");
		CHECK_STR(got, cases[i][1]);
		free(got);
	}
}

int main(void)
{
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		return EXIT_FAILURE;
	}
	RUN(test_shipped_config_loads_with_the_documented_pipeline);
	RUN(test_conninfo_gets_an_application_name_unless_it_has_one);
	RUN(test_every_key_is_in_the_man_page_and_the_shipped_file);
	RUN(test_defaults_fill_every_unset_key);
	RUN(test_child_stage_defaults_follow_max_demand_and_concurrency_8);
	RUN(test_durations_are_ms_s_m_or_bare_seconds);
	RUN(test_sizes_and_booleans_accept_the_documented_forms);
	RUN(test_inline_comments_end_values_and_empty_items_is_allowed);
	RUN(test_values_longer_than_inih_default_buffer_are_kept_whole);
	RUN(test_unknown_key_suggests_nearest);
	RUN(test_unknown_or_malformed_section_is_an_error);
	RUN(test_syntax_errors_name_the_line);
	RUN(test_duplicate_key_and_section_name_the_first);
	RUN(test_bad_values_say_what_is_accepted);
	RUN(test_paging_styles_take_their_companions);
	RUN(test_max_connections_is_a_number_or_auto_with_a_ceiling);
	RUN(test_base_url_must_be_an_absolute_http_url);
	RUN(test_url_templates_need_closed_nonempty_braces);
	RUN(test_stray_close_brace_is_literal_text_as_the_import_reads_it);
	RUN(test_url_placeholder_pointers_must_be_valid);
	RUN(test_root_stage_url_cannot_use_parent_fields);
	RUN(test_missing_required_keys_name_the_section_line);
	RUN(test_min_demand_must_be_below_max_demand);
	RUN(test_columns_and_index_parse_and_name_each_mistake);
	RUN(test_schema_takes_odd_names_but_not_reserved_ones);
	RUN(test_stages_name_defined_providers_and_parents);
	RUN(test_cycle_of_parents_is_refused);
	RUN(test_exactly_one_stage_is_the_root);
	RUN(test_stages_are_ordered_parents_first);
	RUN(test_unreadable_config_file_names_the_path_and_errno);
	RUN(test_token_file_is_read_and_trimmed);
	RUN(test_bad_token_file_names_the_file_and_the_reason);
	RUN(test_ca_file_and_http_version);
	RUN(test_bad_ca_file_names_the_file_the_reason_and_the_fix);
	RUN(test_http_version_2_over_plain_http_needs_a_libcurl_that_speaks_it);
	RUN(test_token_comes_from_credentials_directory_when_present);
	RUN(test_auth_defaults_to_bearer_with_a_token_else_none);
	RUN(test_each_method_reads_its_secret_and_names);
	RUN(test_auth_errors_name_the_line_the_key_and_the_fix);
	RUN(test_static_headers_are_checked_where_they_are_set);
	RUN(test_describe_changes_lists_each_change_once);
	RUN(test_metrics_address_is_loopback_or_a_socket_path);
	RUN(test_state_keys_default_to_revalidate_resume_and_durable_commits);
	RUN(test_state_keys_are_read_in_their_sections);
	RUN(test_choices_and_state_values_say_what_is_accepted);
	RUN(test_cursor_lag_and_initial_belong_to_the_root_only);
	RUN(test_root_placeholders_need_their_settings);
	RUN(test_root_placeholders_are_refused_in_a_child_stage);
	RUN(test_root_url_with_state_placeholders_expands_with_named_values);
	RUN(test_each_entry_lists_every_key_with_its_line_or_default_and_masks_secrets);
	RUN(test_changes_are_classed_by_when_a_reload_applies_them);
	RUN(test_apply_live_copies_live_values_and_lines_only);
	rmdir(tmpdir);
	return CHECK_DONE();
}
