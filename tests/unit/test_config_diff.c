/* Unit tests for config_diff (config_describe_changes): what a reload's log
 * line says, on configurations built by hand.  Values are shown in the
 * file's own syntax, secrets masked or only named, and keys a reload cannot apply are
 * marked. */
#include "check.h"
#include "config.h"

#include <stdbool.h>

/* One provider and one root stage with the documented defaults. */
struct pair {
	struct config c;
	struct provider_conf p;
	struct stage_conf s;
};

static void fill(struct pair *x)
{
	memset(x, 0, sizeof *x);
	x->p = (struct provider_conf){.name = "main", .base_url = "https://api.example.com/v1", .max_connections = 16,
	                              .timeout_ms = 30000, .max_retries = 5, .max_body = 16u << 20, .max_redirects = 5};
	x->s = (struct stage_conf){.name = "races", .provider = "main", .url = "/races", .items = "/data", .key = "/id",
	                           .next = NEXT_NONE, .max_demand = 500, .min_demand = 250, .buffer_size = 500,
	                           .concurrency = 1};
	x->c = (struct config){.control_socket = "/run/raced/raced.sock", .admin_group = "raced-admin",
	                       .max_clients = 64, .stop_timeout_ms = 20000, .conninfo = "dbname=races",
	                       .batch_size = 500, .providers = &x->p, .n_providers = 1, .stages = &x->s, .n_stages = 1};
}

static void fill_both(struct pair *a, struct pair *b)
{
	fill(a);
	fill(b);
}

static const char *diff(const struct pair *a, const struct pair *b)
{
	static char buf[1024];
	config_describe_changes(&a->c, &b->c, buf, sizeof buf);
	return buf;
}

static void test_same_configuration_is_nothing_changed(void)
{
	struct pair a, b;
	fill_both(&a, &b);
	CHECK_STR(diff(&a, &b), "nothing changed");
}

static void test_no_previous_configuration_is_said(void)
{
	struct pair a;
	char buf[64];
	fill(&a);
	config_describe_changes(NULL, &a.c, buf, sizeof buf);
	CHECK_STR(buf, "no previous configuration");
}

static void test_values_are_shown_as_the_file_writes_them(void)
{
	struct pair a, b;
	fill_both(&a, &b);
	b.p.timeout_ms = 120000;
	b.p.max_body = 1u << 30;
	b.p.rate_limit = 2.5;
	b.s.next = NEXT_POINTER;
	b.s.next_pointer = "/next";
	b.s.dedupe = true;
	b.c.stop_timeout_ms = 250;
	b.p.token_file = "main.token";
	CHECK_STR(diff(&a, &b), "[daemon] stop_timeout 20s -> 250ms; [provider main] token_file (none) -> 'main.token'; "
	                        "[provider main] rate_limit 0 -> 2.5; "
	                        "[provider main] timeout 30s -> 2m; [provider main] max_body 16MiB -> 1GiB; "
	                        "[stage races] next none -> /next; [stage races] dedupe no -> yes");
}

static void test_state_keys_are_shown_and_resume_waits_for_a_restart(void)
{
	struct pair a, b;
	fill_both(&a, &b);
	a.c.resume = CONFIG_RESUME_AUTO;
	b.c.resume = CONFIG_RESUME_NO;
	b.c.synchronous_commit = CONFIG_SYNC_OFF;
	a.c.max_outage_ms = 300000;
	b.c.max_outage_ms = 0;
	b.s.refresh_ms = 3600000;
	b.s.cursor = "/updated_at";
	b.s.lag_ms = 600000;
	b.s.initial = "2024-01-01";
	b.s.url = "/races?after={cursor}";
	CHECK_STR(diff(&a, &b), "[daemon] resume auto -> no (at the next restart); [database] synchronous_commit on -> off; "
	                        "[database] max_outage 5m -> 0s; [stage races] url '/races' -> '/races?after={cursor}'; "
	                        "[stage races] refresh 0s -> 1h; [stage races] cursor (none) -> '/updated_at'; "
	                        "[stage races] lag 0s -> 10m; [stage races] initial (none) -> '2024-01-01'");
}

static void test_tokens_are_named_never_shown(void)
{
	static const struct { const char *was, *now, *says; } tokens[] = {
		{NULL, "t0ken", "token added"}, {"old", "t0ken", "token changed"}, {"old", NULL, "token removed"}};
	struct pair a, b;
	char want[256];
	fill_both(&a, &b);
	for (size_t i = 0; i < sizeof tokens / sizeof tokens[0]; i++) {
		a.p.token = (char *)tokens[i].was;
		b.p.token = (char *)tokens[i].now;
		snprintf(want, sizeof want, "[provider main] %s", tokens[i].says);
		CHECK_STR(diff(&a, &b), want);
	}
}

/* auth's keys are shown; a password, like a token, only named. */
static void test_auth_changes_are_shown_and_a_password_only_named(void)
{
	struct pair a, b;
	fill_both(&a, &b);
	char *lines[] = {"Accept: application/vnd.x+json", "X-Api-Version: 2"};
	unsigned nos[] = {3, 4};
	b.p.auth = AUTH_BASIC;
	b.p.username = "u";
	b.p.password = "s3cret";
	b.p.headers = lines;
	b.p.header_lines = nos;
	b.p.n_headers = 2;
	CHECK_STR(diff(&a, &b), "[provider main] auth none -> basic; [provider main] username (none) -> 'u'; "
	                        "[provider main] header (none) -> 'Accept: application/vnd.x+json', "
	                        "'X-Api-Version: 2'; [provider main] password added");
	a.p = b.p;
	a.p.password = "old";
	CHECK_STR(diff(&a, &b), "[provider main] password changed");
}

static void test_conninfo_and_urls_are_shown_masked_and_a_hidden_change_is_said(void)
{
	static const char base[] = "https://api.example.com/v1";
	static const struct { const char *ci0, *ci1, *url0, *url1, *says; } cases[] = {
		{"dbname=races", "dbname=races password=hunter2 sslpassword=k3y", base,
		 "https://alice:s3cret@api.example.com/v1",
		 "[database] conninfo 'dbname=races' -> 'password=*** dbname=races sslpassword=***'; "
		 "[provider main] base_url 'https://api.example.com/v1' -> 'https://alice:***@api.example.com/v1'"},
		{"postgresql://raced:old@db/races", "postgresql://raced:new@db/races", base, base,
		 "[database] conninfo changed (a secret changed)"},
		{"dbname=races", "dbname=races", "https://alice:old@api.example.com/v1",
		 "https://alice:new@api.example.com/v1", "[provider main] base_url changed (a secret changed)"},
	};
	struct pair a, b;
	fill_both(&a, &b);
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		a.c.conninfo = (char *)cases[i].ci0;
		b.c.conninfo = (char *)cases[i].ci1;
		a.p.base_url = (char *)cases[i].url0;
		b.p.base_url = (char *)cases[i].url1;
		CHECK_STR(diff(&a, &b), cases[i].says);
	}
}

static void test_keys_a_reload_cannot_apply_are_marked(void)
{
	struct pair a, b;
	fill_both(&a, &b);
	b.c.control_socket = "/run/other.sock";
	CHECK_STR(diff(&a, &b),
	          "[daemon] control_socket '/run/raced/raced.sock' -> '/run/other.sock' (at the next restart)");
}

static void test_sections_are_matched_by_name(void)
{
	struct pair a, b;
	fill_both(&a, &b);
	b.p.name = "people";
	b.s.name = "entries";
	b.s.provider = "people";
	CHECK_STR(diff(&a, &b), "provider 'people' added; provider 'main' removed; stage 'entries' added; "
	                        "stage 'races' removed");
}

static void test_a_summary_that_does_not_fit_ends_in_dots(void)
{
	struct pair a, b;
	char small[24];
	fill_both(&a, &b);
	b.c.max_clients = 65;
	b.c.batch_size = 1;
	config_describe_changes(&a.c, &b.c, small, sizeof small);
	CHECK_STR(small, "[daemon] max_clients...");
	char three[3] = "##";
	config_describe_changes(&a.c, &b.c, three, sizeof three);
	CHECK_STR(three, "[d");
}

int main(void)
{
	RUN(test_state_keys_are_shown_and_resume_waits_for_a_restart);
	RUN(test_same_configuration_is_nothing_changed);
	RUN(test_no_previous_configuration_is_said);
	RUN(test_values_are_shown_as_the_file_writes_them);
	RUN(test_tokens_are_named_never_shown);
	RUN(test_auth_changes_are_shown_and_a_password_only_named);
	RUN(test_conninfo_and_urls_are_shown_masked_and_a_hidden_change_is_said);
	RUN(test_keys_a_reload_cannot_apply_are_marked);
	RUN(test_sections_are_matched_by_name);
	RUN(test_a_summary_that_does_not_fit_ends_in_dots);
	return CHECK_DONE();
}
