/* tokenfile — see tokenfile.h.  The whole file is read into one buffer of
 * TOKENFILE_MAX + 1 bytes: one byte more than allowed tells "too large"
 * apart from "exactly the limit" without a stat (which a FIFO would defeat). */
#include "tokenfile.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

char *tokenfile_path(const char *config_path, const char *token_file)
{
	if (token_file[0] == '/')
		return strdup(token_file);
	const char *slash = strrchr(config_path, '/');
	int dir_len = slash ? (int)(slash - config_path) : 1;
	char *path;
	if (asprintf(&path, "%.*s/%s", dir_len, slash ? config_path : ".", token_file) < 0)
		return NULL;
	return path;
}

int tokenfile_credential_path(const char *name, char **path, char *err)
{
	return tokenfile_credential_path_ext(name, "token", path, err);
}

int tokenfile_credential_path_ext(const char *name, const char *ext, char **path, char *err)
{
	const char *dir = getenv("CREDENTIALS_DIRECTORY");
	*path = NULL;
	if (!dir || !*dir)
		return 0;
	if (asprintf(path, "%s/%s.%s", dir, name, ext) < 0) {
		*path = NULL;
		return err_set_class(err, ENOMEM, "out of memory");
	}
	return 0;
}

/* Reads fd whole into buf (TOKENFILE_MAX + 1 bytes): its length, or -errno. */
static long read_all(int fd, char *buf)
{
	size_t len = 0;
	for (;;) {
		ssize_t n = read(fd, buf + len, TOKENFILE_MAX + 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		len += (size_t)n;
		if (n == 0 || len > TOKENFILE_MAX)
			return (long)len;
	}
}

/* Trims blanks in place; the token's length. */
static size_t trim(char *buf, size_t len)
{
	while (len && isspace((unsigned char)buf[len - 1]))
		len--;
	buf[len] = '\0';
	size_t start = strspn(buf, " \t\r\n");
	memmove(buf, buf + start, len - start + 1);
	return len - start;
}

static int check_token(const char *buf, size_t len, const char *path, const char *noun, char *err)
{
	if (!len)
		return err_set_class(err, EINVAL, "%s'%s' is empty", noun, path);
	for (size_t i = 0; i < len; i++)
		if (iscntrl((unsigned char)buf[i]))
			return err_set_class(err, EINVAL,
			                     "%s'%s' holds more than one line or control characters; it must hold just "
			                     "the token", noun, path);
	return 0;
}

int tokenfile_read(const char *path, const char *noun, char **token, char *err)
{
	*token = NULL;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		int e = errno;
		return err_set_class(err, e, "cannot read %s'%s': %s", noun, path, strerror(e));
	}
	char *buf = malloc(TOKENFILE_MAX + 1);
	if (!buf) {
		close(fd);
		return err_set_class(err, ENOMEM, "out of memory");
	}
	long n = read_all(fd, buf);
	close(fd);
	int rc;
	if (n < 0)
		rc = err_set_class(err, (int)-n, "cannot read %s'%s': %s", noun, path, strerror((int)-n));
	else if (n > TOKENFILE_MAX)
		rc = err_set_class(err, EFBIG, "%s'%s' is larger than %d bytes; it must hold just the token", noun,
		                   path, TOKENFILE_MAX);
	else
		rc = check_token(buf, trim(buf, (size_t)n), path, noun, err);
	if (rc < 0) {
		explicit_bzero(buf, TOKENFILE_MAX + 1);
		free(buf);
		return rc;
	}
	*token = buf;
	return 0;
}

void tokenfile_free(char *token)
{
	if (token)
		explicit_bzero(token, strlen(token));
	free(token);
}
