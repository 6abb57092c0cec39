/* Unit tests for tokenfile: where a provider's token file is, and what a
 * token file may hold.  Real files in a temporary directory; each failure
 * is asserted by its class (a negated errno) and its exact message. */
#include "check.h"
#include "tokenfile.h"

#include <errno.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <unistd.h>

static char tmpdir[] = "/tmp/raced-test-tokenfile-XXXXXX";

/* Writes len bytes of text to tmpdir/name; returns its malloc'd path. */
static char *write_file(const char *name, const char *text, size_t len)
{
	char *path;
	if (asprintf(&path, "%s/%s", tmpdir, name) < 0)
		abort();
	FILE *f = fopen(path, "w");
	if (!f || fwrite(text, 1, len, f) != len)
		abort();
	fclose(f);
	return path;
}

static void test_an_absolute_token_file_is_itself(void)
{
	char *p = tokenfile_path("/etc/raced/raced.conf", "/run/keys/main.token");
	CHECK_STR(p, "/run/keys/main.token");
	free(p);
}

static void test_a_relative_token_file_is_next_to_the_configuration(void)
{
	char *p = tokenfile_path("/etc/raced/raced.conf", "main.token");
	CHECK_STR(p, "/etc/raced/main.token");
	free(p);
	p = tokenfile_path("raced.conf", "keys/main.token");
	CHECK_STR(p, "./keys/main.token");
	free(p);
	p = tokenfile_path("/raced.conf", "main.token");
	CHECK_STR(p, "/main.token");
	free(p);
}

static void test_a_credential_is_looked_for_only_with_a_credentials_directory(void)
{
	char err[ERR_MAX] = "", *p = (char *)"unset";
	unsetenv("CREDENTIALS_DIRECTORY");
	CHECK_EQ(tokenfile_credential_path("main", &p, err), 0);
	CHECK(p == NULL);
	setenv("CREDENTIALS_DIRECTORY", "", 1);
	CHECK_EQ(tokenfile_credential_path("main", &p, err), 0);
	CHECK(p == NULL);
	setenv("CREDENTIALS_DIRECTORY", "/run/credentials/raced.service", 1);
	CHECK_EQ(tokenfile_credential_path("main", &p, err), 0);
	CHECK_STR(p, "/run/credentials/raced.service/main.token");
	free(p);
	unsetenv("CREDENTIALS_DIRECTORY");
}

static void test_a_token_is_trimmed_of_surrounding_blanks(void)
{
	char err[ERR_MAX] = "", *tok = NULL;
	char *path = write_file("t", " \t s3cret-token \r\n\n", 19);
	CHECK_EQ(tokenfile_read(path, "", &tok, err), 0);
	CHECK_STR(tok, "s3cret-token");
	tokenfile_free(tok);
	tokenfile_free(NULL);
	unlink(path);
	free(path);
}

static void test_an_absent_file_is_enoent_so_a_credential_may_be_absent(void)
{
	char err[ERR_MAX] = "", *tok = (char *)"unset", want[ERR_MAX];
	char path[256];
	snprintf(path, sizeof path, "%s/absent", tmpdir);
	CHECK_EQ(tokenfile_read(path, "credential ", &tok, err), -ENOENT);
	CHECK(tok == NULL);
	snprintf(want, sizeof want, "cannot read credential '%s': No such file or directory", path);
	CHECK_STR(err, want);
	CHECK_EQ(tokenfile_read(tmpdir, "", &tok, err), -EISDIR);
	snprintf(want, sizeof want, "cannot read '%s': Is a directory", tmpdir);
	CHECK_STR(err, want);
}

static void test_an_empty_or_multi_line_file_is_einval(void)
{
	char err[ERR_MAX] = "", *tok = NULL, want[ERR_MAX];
	char *empty = write_file("empty", " \n\n", 3);
	char *two = write_file("two", "abc\ndef\n", 8);
	char *ctl = write_file("ctl", "ab\001c", 4);
	CHECK_EQ(tokenfile_read(empty, "", &tok, err), -EINVAL);
	snprintf(want, sizeof want, "'%s' is empty", empty);
	CHECK_STR(err, want);
	CHECK_EQ(tokenfile_read(two, "credential ", &tok, err), -EINVAL);
	snprintf(want, sizeof want,
	         "credential '%s' holds more than one line or control characters; it must hold just the token", two);
	CHECK_STR(err, want);
	CHECK_EQ(tokenfile_read(ctl, "", &tok, err), -EINVAL);
	CHECK(tok == NULL);
	unlink(empty);
	unlink(two);
	unlink(ctl);
	free(empty);
	free(two);
	free(ctl);
}

static void test_a_file_may_hold_tokenfile_max_bytes_and_no_more(void)
{
	char err[ERR_MAX] = "", *tok = NULL, want[ERR_MAX];
	char *text = malloc(TOKENFILE_MAX + 1);
	memset(text, 'k', TOKENFILE_MAX + 1);
	char *max = write_file("max", text, TOKENFILE_MAX);
	char *over = write_file("over", text, TOKENFILE_MAX + 1);
	CHECK_EQ(tokenfile_read(max, "", &tok, err), 0);
	CHECK_EQ(tok ? strlen(tok) : 0, TOKENFILE_MAX);
	tokenfile_free(tok);
	CHECK_EQ(tokenfile_read(over, "", &tok, err), -EFBIG);
	snprintf(want, sizeof want, "'%s' is larger than 65536 bytes; it must hold just the token", over);
	CHECK_STR(err, want);
	unlink(max);
	unlink(over);
	free(max);
	free(over);
	free(text);
}

int main(void)
{
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		return EXIT_FAILURE;
	}
	RUN(test_an_absolute_token_file_is_itself);
	RUN(test_a_relative_token_file_is_next_to_the_configuration);
	RUN(test_a_credential_is_looked_for_only_with_a_credentials_directory);
	RUN(test_a_token_is_trimmed_of_surrounding_blanks);
	RUN(test_an_absent_file_is_enoent_so_a_credential_may_be_absent);
	RUN(test_an_empty_or_multi_line_file_is_einval);
	RUN(test_a_file_may_hold_tokenfile_max_bytes_and_no_more);
	rmdir(tmpdir);
	return CHECK_DONE();
}
