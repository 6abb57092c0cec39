#include "error.h"

#include <stdarg.h>
#include <stdio.h>

static void format(char *err, const char *fmt, va_list ap)
{
	if (err)
		vsnprintf(err, ERR_MAX, fmt, ap);
}

int err_set(char *err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	format(err, fmt, ap);
	va_end(ap);
	return -1;
}

int err_set_class(char *err, int errnum, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	format(err, fmt, ap);
	va_end(ap);
	return errnum > 0 ? -errnum : -1;
}
