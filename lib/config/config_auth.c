/* config_auth — see config_auth.h. */
#include "config_auth.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "redact.h"
#include "tokenfile.h"

__attribute__((format(printf, 3, 4)))
static int fault(struct config_auth_fault *f, const char *key, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(f->msg, sizeof f->msg, fmt, ap);
	va_end(ap);
	f->key = key;
	return -1;
}

static const char *method(const struct provider_conf *p)
{
	return auth_kind_names[p->auth];
}

/* A key set that the method in force does not use. */
static int stray_key(const struct provider_conf *p, struct config_auth_fault *f)
{
	static const struct {
		const char *key;
		size_t offset;
		unsigned methods; /* bit per enum auth_kind that uses it */
		const char *hint;
	} keys[] = {
		{"token_file", offsetof(struct provider_conf, token_file),
		 1u << AUTH_BEARER | 1u << AUTH_HEADER | 1u << AUTH_QUERY, "bearer, header or query"},
		{"username", offsetof(struct provider_conf, username), 1u << AUTH_BASIC, "basic"},
		{"password_file", offsetof(struct provider_conf, password_file), 1u << AUTH_BASIC, "basic"},
		{"auth_header", offsetof(struct provider_conf, auth_header), 1u << AUTH_HEADER, "header"},
		{"auth_param", offsetof(struct provider_conf, auth_param), 1u << AUTH_QUERY, "query"},
	};
	for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) {
		const char *v;
		memcpy(&v, (const char *)p + keys[i].offset, sizeof v);
		if (v && !(keys[i].methods & (1u << p->auth)))
			return fault(f, keys[i].key, "%s is for auth = %s, but auth is %s: remove %s or set auth = %s",
			             keys[i].key, keys[i].hint, method(p), keys[i].key,
			             strchr(keys[i].hint, ' ') ? "bearer" : keys[i].hint);
	}
	return 0;
}

/* The password of auth = basic: password_file, else the credential. */
static int load_password(struct provider_conf *p, const char *config_path, struct config_auth_fault *f)
{
	char *path = NULL;
	int rc;
	if (p->password_file) {
		if (!(path = tokenfile_path(config_path, p->password_file)))
			return fault(f, NULL, "out of memory");
		rc = tokenfile_read(path, "", &p->password, f->msg);
		free(path);
		if (rc < 0) {
			char msg[ERR_MAX];
			snprintf(msg, sizeof msg, "%s", f->msg);
			return fault(f, "password_file", "password_file: %s", msg);
		}
		return 0;
	}
	if (tokenfile_credential_path_ext(p->name, "password", &path, f->msg) < 0)
		return fault(f, NULL, "out of memory");
	rc = path ? tokenfile_read(path, "credential ", &p->password, f->msg) : -ENOENT;
	free(path);
	if (rc == -ENOENT)
		return fault(f, "auth", "auth = basic needs a password: set password_file = PATH (a file holding just "
		             "the password), or give systemd the credential %s.password", p->name);
	if (rc < 0) {
		char msg[ERR_MAX];
		snprintf(msg, sizeof msg, "%s", f->msg);
		return fault(f, "auth", "%s", msg);
	}
	return 0;
}

static int check_method(struct provider_conf *p, const char *config_path, struct config_auth_fault *f)
{
	char msg[ERR_MAX];
	switch (p->auth) {
	case AUTH_NONE:
		return 0;
	case AUTH_BASIC:
		if (!p->username)
			return fault(f, "auth", "auth = basic needs username = NAME");
		if (strchr(p->username, ':'))
			return fault(f, "username", "username must not hold ':' (it ends the user name in basic auth)");
		return load_password(p, config_path, f);
	case AUTH_HEADER:
	case AUTH_QUERY: {
		const char *key = p->auth == AUTH_HEADER ? "auth_header" : "auth_param";
		const char *name = p->auth == AUTH_HEADER ? p->auth_header : p->auth_param;
		if (!name)
			return fault(f, "auth", "auth = %s needs %s = %s", method(p), key,
			             p->auth == AUTH_HEADER ? "HEADER-NAME (e.g. X-Api-Key)" : "PARAMETER (e.g. api_key)");
		if (auth_name_check(p->auth, name, msg, sizeof msg) < 0)
			return fault(f, key, "%s", msg);
		if (p->auth == AUTH_QUERY && redact_add_param(name) < 0)
			return fault(f, key, "more than %d distinct auth_param names in all", REDACT_PARAMS_MAX);
	}
		/* fall through */
	case AUTH_BEARER:
		if (!p->token)
			return fault(f, "auth", "auth = %s needs a token: set token_file = PATH (a file holding just the "
			             "token), or give systemd the credential %s.token", method(p), p->name);
		return 0;
	}
	return 0;
}

/* Whether url has a password in its userinfo (scheme://user:pw@host). */
static bool url_has_password(const char *url)
{
	const char *a = strstr(url, "://");
	if (!a)
		return false;
	a += 3;
	size_t auth_len = strcspn(a, "/?#");
	const char *at = memrchr(a, '@', auth_len);
	return at && memchr(a, ':', (size_t)(at - a));
}

static int check_headers(const struct provider_conf *p, struct config_auth_fault *f)
{
	const char *name = p->auth == AUTH_HEADER ? p->auth_header : NULL;
	if (p->n_headers > AUTH_HEADERS_MAX) {
		f->header = AUTH_HEADERS_MAX;
		return fault(f, "header", "more than %d header lines", AUTH_HEADERS_MAX);
	}
	for (size_t i = 0; i < p->n_headers; i++) {
		f->header = i;
		char msg[ERR_MAX - 16];
		if (auth_header_check(p->headers[i], p->auth, name, msg, sizeof msg) < 0)
			return fault(f, "header", "header: %s", msg);
		size_t len = strcspn(p->headers[i], ":");
		for (size_t j = 0; j < i; j++)
			if (strncasecmp(p->headers[j], p->headers[i], len) == 0 && p->headers[j][len] == ':')
				return fault(f, "header", "header %.*s is set twice (first on line %u): keep one", (int)len,
				             p->headers[i], p->header_lines[j]);
	}
	return 0;
}

int config_auth_settle(struct provider_conf *p, const char *config_path, bool auth_set,
                       struct config_auth_fault *f)
{
	f->key = NULL;
	f->header = 0;
	f->msg[0] = '\0';
	if (!auth_set)
		p->auth = p->token ? AUTH_BEARER : AUTH_NONE;
	else if ((p->auth == AUTH_NONE || p->auth == AUTH_BASIC) && !p->token_file && p->token)
		tokenfile_free(p->token), p->token = NULL; /* a credential the method does not use */
	if (stray_key(p, f) < 0 || check_method(p, config_path, f) < 0)
		return -1;
	if (p->auth != AUTH_NONE && url_has_password(p->base_url))
		return fault(f, "auth", "base_url holds user:password, which is basic auth by itself, and auth is %s: "
		             "use one (for basic auth, better auth = basic with username and password_file)", method(p));
	return check_headers(p, f);
}
